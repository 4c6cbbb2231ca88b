// Internal to attention.cu (included after attention_tiles.cuh, whose Problem and pair helpers it
// shares): the bfloat16 tensor-core kernels of dense and SMYRF attention.
//
// Inputs q, k, v, dout are bfloat16 (raw bit patterns, uint16_t); every product runs on the
// tensor cores as mma.sync.m16n8k16 with bfloat16 operands and float32 accumulation; softmax,
// LSE, the round merge and the SMYRF gradient sums stay in float32.
//
// Tiles. A block is 4 warps (128 threads); each warp owns 16 rows of the block's 64 owned rows
// (queries in forward and dq, keys in dk/dv), so all of a row's values live in one thread quad.
// The other side is staged through shared memory in tiles (64 keys for forward/dq, 32 queries for
// dk/dv), every row gathered through the cluster permutation while it is loaded (no permuted
// copies); rows past the end and head columns past d are zero-filled so the products need no
// bounds. Shared tiles are row-major with a row stride of (head rounded up to 16) + 8 elements:
// the 8-element skew makes the 32-bit fragment loads and the ldmatrix row reads conflict-free.
//
// Pipeline (template Stages, chosen at launch; attention.h's set_attention_pipeline_stages):
//   2: two buffers of the other side's tiles; tile t + 1 is copied with cp.async (16-byte
//      chunks, zero-filled where a row is padding or past d) while tile t is computed, so the
//      gather's global latency overlaps the tensor-core work. Needs 16-byte rows (MmaDims::vec_*);
//      other layouts load synchronously into the same two buffers.
//   1: one buffer, loaded with plain loads and stores before each tile is computed (the layout
//      that ran on the H200 on 2026-11-28).
// Register arrays are sized by the template MaxHead (64 or 128, the padded head rounded up), so
// heads up to 64 do not carry the accumulators of a 128-wide head; the forward kernel keeps the
// owned rows' Q fragments in registers for the whole key loop.
//
// Fragments (PTX ISA, mma.m16n8k16, .row.col): with lane = 4 g + t,
//   A (16x16): a0 = A[g][2t..2t+1], a1 = A[g+8][2t..], a2 = A[g][2t+8..], a3 = A[g+8][2t+8..]
//   B (16x8):  b0 = B[2t..2t+1][g], b1 = B[2t+8..2t+9][g]
//   C (16x8):  c0,c1 = C[g][2t], C[g][2t+1]; c2,c3 = C[g+8][2t], C[g+8][2t+1]
// so two adjacent C blocks (16 columns) repack into one A fragment in registers (P and dS never
// touch shared memory). Every fragment read from shared memory is one ldmatrix.x4: A fragments
// whole, B operands that are another tile's rows (Q K^T, dO V^T: B[k][n] = X[n][k]) two 8-column
// blocks at a time, and B operands that are a tile itself (P V, dS K, P^T dO, dS^T Q:
// B[k][n] = X[k][n]) two blocks at a time with .trans.
//
// Softmax in log2 units: scores are scaled by scale * log2(e) in one multiply and every
// probability is one ex2.approx (2^-inf = 0, so masked scores need no test; a row with nothing
// yet uses 0 as its reference max); the LSE is stored in natural units, and the backward turns it
// into log2 units once per row (+inf for a row that attends nothing, so its pr are 0). The
// backward's dS leaves out the scale, applied once to dQ and dK when they are written.
//
// Determinism without atomics, as in the float32 kernels: one block owns each output row; the
// SMYRF rounds are separate launches that merge (forward) or add (backward) into float32
// workspaces in a fixed order, converted to bfloat16 once at the end.
//
// Register arrays are indexed only inside fully unrolled loops with a runtime guard (the head's
// actual 8- and 16-column block counts), so they stay in registers for every head size.
//
// Status: ran on an NVIDIA H200 (driver 580.159.04) on 2026-11-29 with runtime head sizes only
// (MaxHead 64 / 128, both pipeline depths, ldmatrix.x4 fragments, log2-unit softmax): tests/cuda
// all passing, scripts/gpu-check. Measured there (bf16, BH 8, N 16384, d 64, one launch): dense
// forward 6.1 ms (89 TFLOP/s; PyTorch's FlashAttention 1.9 ms), SMYRF (4, 256) per round forward
// 195 us, dq 320 us, dk/dv 404 us (before the x4 loads and log2 softmax: 214 / 331 / 460). ncu's
// instruction mix for the dense forward: 18.7 instructions per mma, a third of them integer
// address and guard work on the runtime head sizes; the kernels issue-bound at ~18% occupancy
// (164 registers, 3 blocks an SM). The Exact instantiations (kernel_dims), pack_bf16's
// cvt.rn.bf16x2, row_dot_bf16_vec_kernel and f32_to_bf16_x4_kernel, written after that run, ran on
// an NVIDIA H200 on 2026-11-30 (tests/cuda 42/42 passing; scripts/gpu-check): SMYRF fwd+bwd at that
// shape 4.49 -> 3.22 ms (2.1x FlashAttention), dense forward 6.1 -> 3.7 ms.
// tests/cuda/test_cuda_attention_bf16.cpp covers both the exact (d 64, 128) and the runtime (d 16,
// 20, 32, 40, 72) instantiations.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "core/bfloat16.h"
#include "kernels/cuda/attention_tiles.cuh"
#include "kernels/cuda/smyrf_stored_ds.h"

namespace smyrf::kernels::cuda::attn {

using bf16_t = uint16_t;  // bit pattern

constexpr int kMmaThreads = 128;  // 4 warps
constexpr int kMmaRows = 64;      // owned rows per block: 16 per warp
constexpr int kMmaKeys = 64;      // key tile of forward and dq
constexpr int kMmaQueries = 32;   // query tile of dk/dv (fewer accumulators next to dK and dV)

// Blocks each SM should hold at once (__launch_bounds__' second argument, which caps the
// registers a thread may use at 65536 / (128 x blocks)): 3 for heads up to 64 (<= 168 registers;
// ptxas -v: 158-166 used, no spills), 2 for wider ones (206-216 used). 4 blocks (128 registers)
// made ptxas spill 24-48 bytes a thread; not measured on a GPU.
template <int MaxHead>
constexpr int kMmaMinBlocks = MaxHead <= 64 ? 3 : 2;

// Head sizes rounded up to the mma's k (16) and the shared row strides.
struct MmaDims {
  int d = 0, dv = 0, dpad = 0, dvpad = 0, sd = 0, sv = 0;
  bool vec_qk = false, vec_v = false;  // 16-byte loads possible (d % 8 == 0 and aligned)
};

// The dims a kernel works with. Exact kernels (d == dv == MaxHead, 16-byte rows: heads of 64 and
// 128, the common case) get them as constants, so every shared-memory offset folds into an
// immediate and every head-size guard disappears: the runtime strides cost ~3 integer
// instructions per mma (IMAD / ISETP / LOP3: 18.7 instructions per mma in the dense forward on
// an H200, 2026-11-29).
template <int MaxHead, bool Exact>
__device__ __forceinline__ MmaDims kernel_dims(const MmaDims& runtime) {
  if constexpr (Exact) {
    MmaDims L;
    L.d = L.dv = L.dpad = L.dvpad = MaxHead;
    L.sd = L.sv = MaxHead + 8;
    L.vec_qk = L.vec_v = true;
    return L;
  } else {
    return runtime;
  }
}

__device__ __forceinline__ void mma_bf16(float (&c)[4], const uint32_t (&a)[4],
                                         const uint32_t (&b)[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const bf16_t* p) {
  const uint32_t addr = static_cast<uint32_t>(__cvta_generic_to_shared(p));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const bf16_t* p) {
  const uint32_t addr = static_cast<uint32_t>(__cvta_generic_to_shared(p));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// The A fragment of rows [r0, r0 + 16) and columns [k0, k0 + 16) of a row-major tile in one
// ldmatrix.x4 (one instruction instead of four 32-bit loads): lanes 0-7 name the
// rows of a0's 8 x 8 block (rows r0.., columns k0..), 8-15 a1's (r0 + 8..), 16-23 a2's (columns
// k0 + 8..), 24-31 a3's. Rows must be 16-byte aligned (the tiles' strides are).
__device__ __forceinline__ void load_a_x4(uint32_t (&a)[4], const bf16_t* tile, int stride, int r0,
                                          int k0, int lane) {
  ldmatrix_x4(a, tile + (r0 + (lane & 7) + ((lane >> 3) & 1) * 8) * stride + k0 + (lane >> 4) * 8);
}

// The B fragments with B[k][n] = X[n0 + n][k0 + k] (rows of X are the B columns) for two
// adjacent 8-column blocks, n0 (b0) and n0 + 8 (b1): one ldmatrix.x4.
__device__ __forceinline__ void load_b_rows_x2(uint32_t (&b0)[2], uint32_t (&b1)[2],
                                               const bf16_t* tile, int stride, int n0, int k0,
                                               int lane) {
  uint32_t r[4];
  ldmatrix_x4(r, tile + (n0 + (lane & 7) + (lane >> 4) * 8) * stride + k0 + ((lane >> 3) & 1) * 8);
  b0[0] = r[0];
  b0[1] = r[1];
  b1[0] = r[2];
  b1[1] = r[3];
}

// The B fragments with B[k][n] = X[k0 + k][n0 + n] for two adjacent 8-column blocks, n0 (b0) and
// n0 + 8 (b1): one ldmatrix.x4.trans, lanes 0-15 naming rows k0..k0+15 at n0, 16-31 at n0 + 8.
__device__ __forceinline__ void load_b_trans_x2(uint32_t (&b0)[2], uint32_t (&b1)[2],
                                                const bf16_t* tile, int stride, int k0, int n0,
                                                int lane) {
  uint32_t r[4];
  ldmatrix_x4_trans(r, tile + (k0 + (lane & 15)) * stride + n0 + (lane >> 4) * 8);
  b0[0] = r[0];
  b0[1] = r[1];
  b1[0] = r[2];
  b1[1] = r[3];
}

// 2^x on the special-function unit (ex2.approx: about 2 ulp; 2^-inf = +0, so a -inf score
// needs no test).
__device__ __forceinline__ float ex2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

// Two floats rounded to nearest even into one bfloat16 pair (lo in the low half): one cvt
// instruction (the bit-twiddling float_to_bf16_bits took ~5 a value).
__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  uint32_t r;
  asm("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
  return r;
}

// A fragment of the 16 columns [16 kb, 16 kb + 16) of a 16-row C tile held as 8-column blocks.
template <int NB>
__device__ __forceinline__ void c_to_a(uint32_t (&a)[4], const float (&c)[NB][4], int kb) {
  a[0] = pack_bf16(c[2 * kb][0], c[2 * kb][1]);
  a[1] = pack_bf16(c[2 * kb][2], c[2 * kb][3]);
  a[2] = pack_bf16(c[2 * kb + 1][0], c[2 * kb + 1][1]);
  a[3] = pack_bf16(c[2 * kb + 1][2], c[2 * kb + 1][3]);
}

__device__ __forceinline__ float quad_max(float x) {
  x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
  return fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
}
__device__ __forceinline__ float quad_sum(float x) {
  x += __shfl_xor_sync(0xffffffffu, x, 1);
  return x + __shfl_xor_sync(0xffffffffu, x, 2);
}

// Calls f(r, c) for every row r < nrows and 8-element chunk c (column c * 8) of a tile, spread
// over the block's kMmaThreads threads. When the chunks of a row divide the block, each thread
// keeps one chunk column and steps over rows (no division in the loop: a runtime division is
// ~20 instructions, and these loops run once per tile).
template <typename F>
__device__ __forceinline__ void for_tile_chunks(int nrows, int chunks, F&& f) {
  if (kMmaThreads % chunks == 0) {
    const int per = kMmaThreads / chunks, c = threadIdx.x % chunks;
    for (int r = threadIdx.x / chunks; r < nrows; r += per) f(r, c);
    return;
  }
  for (int e = threadIdx.x; e < nrows * chunks; e += kMmaThreads) f(e / chunks, e % chunks);
}

// Copies rows idx[r] (r < nrows; -1 = zero row) of the (rows, w) bfloat16 matrix src into a tile
// of row stride `stride`, columns [w, wpad) zero. No barrier inside.
__device__ __forceinline__ void load_tile(bf16_t* tile, int stride, int nrows, const int64_t* idx,
                                          const bf16_t* __restrict__ src, int w, int wpad,
                                          bool vec) {
  if (vec) {  // 8 elements (16 bytes) at a time; w % 8 == 0
    for_tile_chunks(nrows, wpad / 8, [&](int r, int chunk) {
      const int c = chunk * 8;
      uint4 val = make_uint4(0, 0, 0, 0);
      if (idx[r] >= 0 && c < w) val = *reinterpret_cast<const uint4*>(src + idx[r] * w + c);
      *reinterpret_cast<uint4*>(tile + r * stride + c) = val;
    });
    return;
  }
  for (int e = threadIdx.x; e < nrows * wpad; e += blockDim.x) {
    const int r = e / wpad, c = e % wpad;
    tile[r * stride + c] = idx[r] >= 0 && c < w ? src[idx[r] * w + c] : bf16_t(0);
  }
}

// cp.async (sm_80+): a 16-byte global -> shared copy that bypasses the registers; with fill
// false nothing is read and the 16 bytes are zeroed (src must still be a valid address).
__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool fill) {
  const uint32_t d = static_cast<uint32_t>(__cvta_generic_to_shared(dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(d), "l"(src),
               "r"(fill ? 16 : 0)
               : "memory");
}
__device__ __forceinline__ void cp_async_commit() {
  asm volatile("cp.async.commit_group;\n" ::: "memory");
}
// Waits until at most N of this thread's committed groups are still in flight.
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

// load_tile for a pipelined tile: with Stages 2 and 16-byte rows, cp.async copies (the caller
// commits and waits); otherwise load_tile's plain loads. No barrier inside.
template <int Stages>
__device__ __forceinline__ void load_rows(bf16_t* tile, int stride, int nrows, const int64_t* idx,
                                          const bf16_t* __restrict__ src, int w, int wpad,
                                          bool vec) {
  if (Stages == 1 || !vec) {
    load_tile(tile, stride, nrows, idx, src, w, wpad, vec);
    return;
  }
  for_tile_chunks(nrows, wpad / 8, [&](int r, int chunk) {
    const int c = chunk * 8;
    const bool fill = idx[r] >= 0 && c < w;
    cp_async16(tile + r * stride + c, fill ? src + idx[r] * w + c : src, fill);
  });
}

// The tiles of the other side, [lo, end) in steps of `step`.
__device__ __forceinline__ int tile_count(int64_t lo, int64_t end, int step) {
  return end > lo ? static_cast<int>((end - lo + step - 1) / step) : 0;
}

// Before computing tile `it`: with one stage, stage it now (stage(it, 0)) and it is complete;
// with two, stage tile it + 1 into the other buffer (tile 0 was staged before the loop) and wait
// for tile it's copies. The caller's __syncthreads() then makes every thread's copies visible.
// stage(tile, buf) must write the tile's indices, __syncthreads(), issue the row copies and
// commit one cp.async group.
template <int Stages, typename Stage>
__device__ __forceinline__ void next_tile(int it, int ntiles, Stage&& stage) {
  if (Stages == 1) {
    stage(it, 0);
    cp_async_wait<0>();
  } else if (it + 1 < ntiles) {
    stage(it + 1, (it + 1) & 1);
    cp_async_wait<1>();
  } else {
    cp_async_wait<0>();
  }
}

// Stages the key tile of positions [t0, t0 + kMmaKeys) (those from kend on are padding) of the
// forward and dq kernels: original indices into skj, then the K rows into sKV and the V rows
// right after them (kMmaKeys * L.sd elements on); commits one cp.async group. Every thread of the
// block calls it (it synchronises once, after the indices).
template <int Stages>
__device__ __forceinline__ void stage_key_tile(const Problem& P, const MmaDims& L, int64_t bh,
                                               int64_t t0, int64_t kend, int64_t* skj, bf16_t* sKV,
                                               const bf16_t* __restrict__ k,
                                               const bf16_t* __restrict__ v) {
  if (threadIdx.x < kMmaKeys)
    skj[threadIdx.x] = t0 + threadIdx.x < kend ? row_index(P, false, bh, t0 + threadIdx.x) : -1;
  __syncthreads();  // the indices are visible (no thread still reads this buffer: see callers)
  load_rows<Stages>(sKV, L.sd, kMmaKeys, skj, k + bh * P.nk * L.d, L.d, L.dpad, L.vec_qk);
  load_rows<Stages>(sKV + kMmaKeys * L.sd, L.sv, kMmaKeys, skj, v + bh * P.nk * L.dv, L.dv, L.dvpad,
                    L.vec_v);
  cp_async_commit();
}

// Whether no pair needs more than the scale: no masks, causality, bias or set semantics (the
// common case skips the per-element index work).
__device__ __forceinline__ bool plain_scores(const Problem& P) {
  return !P.causal && !P.key_mask && !P.query_mask && !P.bias && !P.set_semantics;
}

// The score of query i (-1: none) and key j (-1: none) from their dot product.
__device__ __forceinline__ float mma_score(const Problem& P, bool plain, int64_t bh, int64_t i,
                                           int64_t j, float dot) {
  if (i < 0 || j < 0) return -INFINITY;
  if (plain) return P.scale * dot;
  if (!pair_allowed(P, bh, i, j)) return -INFINITY;
  return pair_score(P, bh, i, j, dot);
}

// Dense causal: keys past this bound are never attended by queries up to qmax.
__device__ __forceinline__ int64_t causal_key_end(const Problem& P, int64_t khi, int64_t qmax) {
  if (cluster_mode(P) || !P.causal) return khi;
  return min(khi, max(static_cast<int64_t>(0), qmax + (P.nk - P.nq) + 1));
}

// Forward over one problem. Dense: out_bf and lse written. Cluster mode: the round's (out, LSE)
// merged into the float32 running merge out32/lse (original token order).
template <int MaxHead, int Stages, bool Exact>
__global__ void __launch_bounds__(kMmaThreads, kMmaMinBlocks<MaxHead>)
    mma_forward_kernel(Problem P, MmaDims runtime_dims, const bf16_t* __restrict__ q,
                       const bf16_t* __restrict__ k, const bf16_t* __restrict__ v,
                       bf16_t* __restrict__ out_bf, float* __restrict__ out32,
                       float* __restrict__ lse) {
  constexpr int kNb = MaxHead / 8, kKs = MaxHead / 16;
  const MmaDims L = kernel_dims<MaxHead, Exact>(runtime_dims);
  extern __shared__ __align__(16) unsigned char mma_smem[];
  bf16_t* sQ = reinterpret_cast<bf16_t*>(mma_smem);
  bf16_t* sKV = sQ + kMmaRows * L.sd;  // Stages x (K tile, V tile)
  const int kv_elems = kMmaKeys * (L.sd + L.sv);
  __shared__ int64_t sqi[kMmaRows], skj_buf[Stages][kMmaKeys];
  __shared__ bool sqok[kMmaRows];
  const int tid = threadIdx.x, lane = tid & 31, g = lane >> 2, t = lane & 3;
  const int r0 = (tid >> 5) * 16;
  const int64_t bh = blockIdx.z;
  int64_t qlo, qhi, klo, khi;
  row_range(P, true, bh, blockIdx.y, &qlo, &qhi);
  row_range(P, false, bh, blockIdx.y, &klo, &khi);
  const int64_t q0 = qlo + static_cast<int64_t>(blockIdx.x) * kMmaRows;
  if (q0 >= qhi) return;  // uniform over the block
  if (tid < kMmaRows) {
    const int64_t pos = q0 + tid;
    const int64_t i = pos < qhi ? row_index(P, true, bh, pos) : -1;
    sqi[tid] = i;
    sqok[tid] = i >= 0 && !query_is_padding(P, bh, i);
  }
  __syncthreads();
  load_tile(sQ, L.sd, kMmaRows, sqi, q + bh * P.nq * L.d, L.d, L.dpad, L.vec_qk);
  const bool plain = plain_scores(P);
  const int nks = L.dpad / 16, nbv = L.dvpad / 8;
  const int64_t row_i[2] = {sqok[r0 + g] ? sqi[r0 + g] : -1,
                            sqok[r0 + g + 8] ? sqi[r0 + g + 8] : -1};
  const int64_t kend = causal_key_end(P, khi, min(q0 + kMmaRows, qhi) - 1);
  const int ntiles = tile_count(klo, kend, kMmaKeys);
  auto stage = [&](int tile, int buf) {
    stage_key_tile<Stages>(P, L, bh, klo + static_cast<int64_t>(tile) * kMmaKeys, kend,
                           skj_buf[buf], sKV + buf * kv_elems, k, v);
  };
  if (Stages == 2 && ntiles > 0) stage(0, 0);
  __syncthreads();  // sQ is written
  // the owned rows' Q fragments, read once for the whole key loop
  uint32_t qa[kKs][4];
#pragma unroll
  for (int ks = 0; ks < kKs; ++ks)
    if (ks < nks) load_a_x4(qa[ks], sQ, L.sd, r0, ks * 16, lane);

  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};  // m in log2 units
  const float scale2 = P.scale * kLog2e;
  float o[kNb][4];
#pragma unroll
  for (int nb = 0; nb < kNb; ++nb) o[nb][0] = o[nb][1] = o[nb][2] = o[nb][3] = 0.0f;

  for (int it = 0; it < ntiles; ++it) {
    next_tile<Stages>(it, ntiles, stage);
    __syncthreads();  // every thread's rows of tile `it` are in shared memory
    const int buf = Stages == 2 ? (it & 1) : 0;
    const int64_t* skj = skj_buf[buf];
    const bf16_t* sK = sKV + buf * kv_elems;
    const bf16_t* sV = sK + kMmaKeys * L.sd;
    const int64_t t0 = klo + static_cast<int64_t>(it) * kMmaKeys;
    const int n = static_cast<int>(min(static_cast<int64_t>(kMmaKeys), kend - t0));

    float s[kMmaKeys / 8][4];
#pragma unroll
    for (int nb = 0; nb < kMmaKeys / 8; ++nb) s[nb][0] = s[nb][1] = s[nb][2] = s[nb][3] = 0.0f;
#pragma unroll
    for (int ks = 0; ks < kKs; ++ks) {
      if (ks >= nks) break;
#pragma unroll
      for (int nb = 0; nb < kMmaKeys / 8; nb += 2) {
        uint32_t b0[2], b1[2];
        load_b_rows_x2(b0, b1, sK, L.sd, nb * 8, ks * 16, lane);
        mma_bf16(s[nb], qa[ks], b0);
        mma_bf16(s[nb + 1], qa[ks], b1);
      }
    }
    // scores in log2 units (score * log2 e), so that each probability is one ex2
    float mx[2] = {m[0], m[1]};
    const bool full = plain && n == kMmaKeys;  // every key real: only the scale (dead rows: end)
#pragma unroll
    for (int nb = 0; nb < kMmaKeys / 8; ++nb)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        s[nb][e] = full ? s[nb][e] * scale2
                        : kLog2e * mma_score(P, plain, bh, row_i[e >> 1],
                                             skj[nb * 8 + 2 * t + (e & 1)], s[nb][e]);
        mx[e >> 1] = fmaxf(mx[e >> 1], s[nb][e]);
      }
    float corr[2], mref[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      mx[h] = quad_max(mx[h]);
      mref[h] = mx[h] == -INFINITY ? 0.0f : mx[h];  // a row with nothing yet: every pr is 0
      corr[h] = ex2(m[h] - mref[h]);                // rescale the old partials (0 when none)
      m[h] = mx[h];
      l[h] *= corr[h];
    }
#pragma unroll
    for (int nb = 0; nb < kNb; ++nb) {
      o[nb][0] *= corr[0];
      o[nb][1] *= corr[0];
      o[nb][2] *= corr[1];
      o[nb][3] *= corr[1];
    }
#pragma unroll
    for (int nb = 0; nb < kMmaKeys / 8; ++nb)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float pr = ex2(s[nb][e] - mref[e >> 1]);
        l[e >> 1] += pr;  // the LSE is the pre-dropout normaliser
        s[nb][e] = pr != 0.0f && P.dropout
                       ? pr * dropout_factor(P, bh, row_i[e >> 1], skj[nb * 8 + 2 * t + (e & 1)])
                       : pr;
      }
#pragma unroll
    for (int kb = 0; kb < kMmaKeys / 16; ++kb) {
      uint32_t a[4];
      c_to_a(a, s, kb);
#pragma unroll
      for (int nb = 0; nb < kNb; nb += 2) {  // nbv is even (heads padded to 16)
        if (nb >= nbv) break;
        uint32_t b0[2], b1[2];
        load_b_trans_x2(b0, b1, sV, L.sv, kb * 16, nb * 8, lane);
        mma_bf16(o[nb], a, b0);
        mma_bf16(o[nb + 1], a, b1);
      }
    }
    __syncthreads();  // this buffer is read; the next stage may overwrite it
  }

  // finish: every quad holds one row's columns; the quad sums its partial normalisers
  const int64_t rows_i[2] = {sqi[r0 + g], sqi[r0 + g + 8]};
  float lse_r[2], inv[2], old[2] = {-INFINITY, -INFINITY};
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    // a dead row (padding, or no query) took the full tiles' scores too: it attends nothing
    const float quad_l = quad_sum(l[h]);  // every lane shuffles
    l[h] = row_i[h] < 0 ? 0.0f : quad_l;
    lse_r[h] = l[h] > 0.0f ? m[h] * kLn2 + logf(l[h]) : -INFINITY;
    inv[h] = l[h] > 0.0f ? 1.0f / l[h] : 0.0f;
    if (cluster_mode(P) && rows_i[h] >= 0) old[h] = lse[bh * P.nq + rows_i[h]];
  }
  __syncwarp();  // every lane of the quad read the old LSE before lane t == 0 replaces it
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int64_t i = rows_i[h];
    if (i < 0) continue;
    const int64_t row = bh * P.nq + i;
    if (!cluster_mode(P)) {
#pragma unroll
      for (int nb = 0; nb < kNb; ++nb) {
        if (nb >= nbv) break;
        const int c = nb * 8 + 2 * t;
        if (c < L.dv) out_bf[row * L.dv + c] = float_to_bf16_bits(o[nb][2 * h] * inv[h]);
        if (c + 1 < L.dv)
          out_bf[row * L.dv + c + 1] = float_to_bf16_bits(o[nb][2 * h + 1] * inv[h]);
      }
      if (t == 0) lse[row] = lse_r[h];
      continue;
    }
    if (lse_r[h] == -INFINITY) continue;  // nothing in this round: the running merge is unchanged
    const float merged = old[h] == -INFINITY
                             ? lse_r[h]
                             : fmaxf(old[h], lse_r[h]) + log1pf(expf(-fabsf(old[h] - lse_r[h])));
    const float a = old[h] == -INFINITY ? 0.0f : expf(old[h] - merged);
    const float b = expf(lse_r[h] - merged) * inv[h];
    float* orow = out32 + row * L.dv;
#pragma unroll
    for (int nb = 0; nb < kNb; ++nb) {
      if (nb >= nbv) break;
      const int c = nb * 8 + 2 * t;
      if (c < L.dv) orow[c] = orow[c] * a + o[nb][2 * h] * b;
      if (c + 1 < L.dv) orow[c + 1] = orow[c + 1] * a + o[nb][2 * h + 1] * b;
    }
    if (t == 0) lse[row] = merged;
  }
}

// dq over one problem: dq_i (+)= scale sum_j P_ij (z_ij dO_i . v_j - D_i) k_j with P_ij from the
// global LSE. Dense: written to dq_bf; cluster mode: added to the float32 workspace dq32.
template <int MaxHead, int Stages, bool Exact>
__global__ void __launch_bounds__(kMmaThreads, kMmaMinBlocks<MaxHead>)
    mma_dq_kernel(Problem P, MmaDims runtime_dims, const bf16_t* __restrict__ q,
                  const bf16_t* __restrict__ k, const bf16_t* __restrict__ v,
                  const float* __restrict__ lse, const float* __restrict__ D,
                  const bf16_t* __restrict__ dout, bf16_t* __restrict__ dq_bf,
                  float* __restrict__ dq32) {
  constexpr int kNb = MaxHead / 8, kKs = MaxHead / 16;
  const MmaDims L = kernel_dims<MaxHead, Exact>(runtime_dims);
  extern __shared__ __align__(16) unsigned char mma_smem[];
  bf16_t* sQ = reinterpret_cast<bf16_t*>(mma_smem);
  bf16_t* sdO = sQ + kMmaRows * L.sd;
  bf16_t* sKV = sdO + kMmaRows * L.sv;  // Stages x (K tile, V tile)
  const int kv_elems = kMmaKeys * (L.sd + L.sv);
  __shared__ int64_t sqi[kMmaRows], skj_buf[Stages][kMmaKeys];
  __shared__ bool sqok[kMmaRows];
  const int tid = threadIdx.x, lane = tid & 31, g = lane >> 2, t = lane & 3;
  const int r0 = (tid >> 5) * 16;
  const int64_t bh = blockIdx.z;
  int64_t qlo, qhi, klo, khi;
  row_range(P, true, bh, blockIdx.y, &qlo, &qhi);
  row_range(P, false, bh, blockIdx.y, &klo, &khi);
  const int64_t q0 = qlo + static_cast<int64_t>(blockIdx.x) * kMmaRows;
  if (q0 >= qhi) return;
  if (tid < kMmaRows) {
    const int64_t pos = q0 + tid;
    const int64_t i = pos < qhi ? row_index(P, true, bh, pos) : -1;
    sqi[tid] = i;
    sqok[tid] = i >= 0 && !query_is_padding(P, bh, i);
  }
  __syncthreads();
  load_tile(sQ, L.sd, kMmaRows, sqi, q + bh * P.nq * L.d, L.d, L.dpad, L.vec_qk);
  load_tile(sdO, L.sv, kMmaRows, sqi, dout + bh * P.nq * L.dv, L.dv, L.dvpad, L.vec_v);
  const bool plain = plain_scores(P);
  const int nks = L.dpad / 16, nksv = L.dvpad / 16, nbd = L.dpad / 8;
  const int64_t row_i[2] = {sqok[r0 + g] ? sqi[r0 + g] : -1,
                            sqok[r0 + g + 8] ? sqi[r0 + g + 8] : -1};
  // the LSE in log2 units, +inf for a row without keys (or none): then every pr is 2^-inf = 0
  float lse2_h[2], D_h[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const float lse_i = row_i[h] >= 0 ? lse[bh * P.nq + row_i[h]] : -INFINITY;
    lse2_h[h] = lse_i == -INFINITY ? INFINITY : lse_i * kLog2e;
    D_h[h] = row_i[h] >= 0 ? D[bh * P.nq + row_i[h]] : 0.0f;
  }
  const float scale2 = P.scale * kLog2e;
  const int64_t kend = causal_key_end(P, khi, min(q0 + kMmaRows, qhi) - 1);
  const int ntiles = tile_count(klo, kend, kMmaKeys);
  auto stage = [&](int tile, int buf) {
    stage_key_tile<Stages>(P, L, bh, klo + static_cast<int64_t>(tile) * kMmaKeys, kend,
                           skj_buf[buf], sKV + buf * kv_elems, k, v);
  };
  if (Stages == 2 && ntiles > 0) stage(0, 0);

  float acc[kNb][4];
#pragma unroll
  for (int nb = 0; nb < kNb; ++nb) acc[nb][0] = acc[nb][1] = acc[nb][2] = acc[nb][3] = 0.0f;

  for (int it = 0; it < ntiles; ++it) {
    next_tile<Stages>(it, ntiles, stage);
    __syncthreads();  // tile `it` (and, the first time, sQ / sdO) is in shared memory
    const int buf = Stages == 2 ? (it & 1) : 0;
    const int64_t* skj = skj_buf[buf];
    const bf16_t* sK = sKV + buf * kv_elems;
    const bf16_t* sV = sK + kMmaKeys * L.sd;
    const int64_t t0 = klo + static_cast<int64_t>(it) * kMmaKeys;
    const int n = static_cast<int>(min(static_cast<int64_t>(kMmaKeys), kend - t0));

    float s[kMmaKeys / 8][4], dp[kMmaKeys / 8][4];
#pragma unroll
    for (int nb = 0; nb < kMmaKeys / 8; ++nb)
#pragma unroll
      for (int e = 0; e < 4; ++e) s[nb][e] = dp[nb][e] = 0.0f;
#pragma unroll
    for (int ks = 0; ks < kKs; ++ks) {
      if (ks >= nks) break;
      uint32_t a[4];
      load_a_x4(a, sQ, L.sd, r0, ks * 16, lane);
#pragma unroll
      for (int nb = 0; nb < kMmaKeys / 8; nb += 2) {
        uint32_t b0[2], b1[2];
        load_b_rows_x2(b0, b1, sK, L.sd, nb * 8, ks * 16, lane);
        mma_bf16(s[nb], a, b0);
        mma_bf16(s[nb + 1], a, b1);
      }
    }
#pragma unroll
    for (int ks = 0; ks < kKs; ++ks) {  // dP = dO V^T
      if (ks >= nksv) break;
      uint32_t a[4];
      load_a_x4(a, sdO, L.sv, r0, ks * 16, lane);
#pragma unroll
      for (int nb = 0; nb < kMmaKeys / 8; nb += 2) {
        uint32_t b0[2], b1[2];
        load_b_rows_x2(b0, b1, sV, L.sv, nb * 8, ks * 16, lane);
        mma_bf16(dp[nb], a, b0);
        mma_bf16(dp[nb + 1], a, b1);
      }
    }
    const bool full = plain && n == kMmaKeys;  // every key real: only the scale
#pragma unroll
    for (int nb = 0; nb < kMmaKeys / 8; ++nb)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int h = e >> 1;
        const int64_t j = skj[nb * 8 + 2 * t + (e & 1)];
        const float sc2 =
            full ? s[nb][e] * scale2 : kLog2e * mma_score(P, plain, bh, row_i[h], j, s[nb][e]);
        const float pr = ex2(sc2 - lse2_h[h]);
        const float z = pr != 0.0f && P.dropout ? dropout_factor(P, bh, row_i[h], j) : 1.0f;
        s[nb][e] = pr * (z * dp[nb][e] - D_h[h]);  // dS / scale (the scale is applied at the end)
      }
#pragma unroll
    for (int kb = 0; kb < kMmaKeys / 16; ++kb) {  // dQ += dS K
      uint32_t a[4];
      c_to_a(a, s, kb);
#pragma unroll
      for (int nb = 0; nb < kNb; nb += 2) {  // nbd is even (heads padded to 16)
        if (nb >= nbd) break;
        uint32_t b0[2], b1[2];
        load_b_trans_x2(b0, b1, sK, L.sd, kb * 16, nb * 8, lane);
        mma_bf16(acc[nb], a, b0);
        mma_bf16(acc[nb + 1], a, b1);
      }
    }
    __syncthreads();  // this buffer is read; the next stage may overwrite it
  }
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int64_t i = sqi[r0 + g + 8 * h];
    if (i < 0) continue;
    const int64_t row = bh * P.nq + i;
#pragma unroll
    for (int nb = 0; nb < kNb; ++nb) {
      if (nb >= nbd) break;
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int c = nb * 8 + 2 * t + e;
        if (c >= L.d) continue;
        const float val = acc[nb][2 * h + e] * P.scale;
        if (cluster_mode(P))
          dq32[row * L.d + c] += val;
        else
          dq_bf[row * L.d + c] = float_to_bf16_bits(val);
      }
    }
  }
}

// dk and dv over one problem, one block per 64 keys: dv_j (+)= sum_i P_ij z_ij dO_i and
// dk_j (+)= scale sum_i dS_ij q_i, queries staged 32 at a time. Dense: written to dk_bf/dv_bf;
// cluster mode: added to the float32 workspaces dk32/dv32, and when ds_t is not null each listed
// pair's dS_ij / scale also stored there, rounded to bfloat16, transposed per cluster:
// ds_t[((bh * gridDim.y + chunk) * ck + key position) * cq + query position] (positions within
// the cluster's lists; pairs past either list are not written), for the stored-dS dq path of
// attention.cu (dQ = scale dS K as one batched product instead of mma_dq_kernel's recomputation).
template <int MaxHead, int Stages, bool Exact>
__global__ void __launch_bounds__(kMmaThreads, kMmaMinBlocks<MaxHead>)
    mma_dkv_kernel(Problem P, MmaDims runtime_dims, const bf16_t* __restrict__ q,
                   const bf16_t* __restrict__ k, const bf16_t* __restrict__ v,
                   const float* __restrict__ lse, const float* __restrict__ D,
                   const bf16_t* __restrict__ dout, bf16_t* __restrict__ dk_bf,
                   bf16_t* __restrict__ dv_bf, float* __restrict__ dk32, float* __restrict__ dv32,
                   bf16_t* __restrict__ ds_t) {
  constexpr int kNb = MaxHead / 8, kKs = MaxHead / 16;
  const MmaDims L = kernel_dims<MaxHead, Exact>(runtime_dims);
  extern __shared__ __align__(16) unsigned char mma_smem[];
  bf16_t* sK = reinterpret_cast<bf16_t*>(mma_smem);
  bf16_t* sV = sK + kMmaRows * L.sd;
  bf16_t* sQdO = sV + kMmaRows * L.sv;  // Stages x (Q tile, dO tile)
  const int qdo_elems = kMmaQueries * (L.sd + L.sv);
  __shared__ int64_t skj[kMmaRows], sqi_buf[Stages][kMmaQueries];
  __shared__ float slse_buf[Stages][kMmaQueries], sD_buf[Stages][kMmaQueries];
  const int tid = threadIdx.x, lane = tid & 31, g = lane >> 2, t = lane & 3;
  const int r0 = (tid >> 5) * 16;
  const int64_t bh = blockIdx.z;
  int64_t qlo, qhi, klo, khi;
  row_range(P, true, bh, blockIdx.y, &qlo, &qhi);
  row_range(P, false, bh, blockIdx.y, &klo, &khi);
  const int64_t k0 = klo + static_cast<int64_t>(blockIdx.x) * kMmaRows;
  if (k0 >= khi) return;
  if (tid < kMmaRows) {
    const int64_t pos = k0 + tid;
    skj[tid] = pos < khi ? row_index(P, false, bh, pos) : -1;
  }
  __syncthreads();
  load_tile(sK, L.sd, kMmaRows, skj, k + bh * P.nk * L.d, L.d, L.dpad, L.vec_qk);
  load_tile(sV, L.sv, kMmaRows, skj, v + bh * P.nk * L.dv, L.dv, L.dvpad, L.vec_v);
  const bool plain = plain_scores(P);
  const int nks = L.dpad / 16, nksv = L.dvpad / 16, nbd = L.dpad / 8, nbv = L.dvpad / 8;
  const int64_t row_j[2] = {skj[r0 + g], skj[r0 + g + 8]};
  const float scale2 = P.scale * kLog2e;
  // dense causal: queries before k0 - (Nk - Nq) see none of these keys
  int64_t qstart = qlo;
  if (!cluster_mode(P) && P.causal) qstart = max(qlo, k0 - (P.nk - P.nq));

  float gk[kNb][4], gv[kNb][4];
#pragma unroll
  for (int nb = 0; nb < kNb; ++nb)
#pragma unroll
    for (int e = 0; e < 4; ++e) gk[nb][e] = gv[nb][e] = 0.0f;

  const int ntiles = tile_count(qstart, qhi, kMmaQueries);
  // query tile `tile` into buffer `buf`: indices, LSE and D, then the Q and dO rows
  auto stage = [&](int tile, int buf) {
    const int64_t t0 = qstart + static_cast<int64_t>(tile) * kMmaQueries;
    if (tid < kMmaQueries) {
      const int64_t i = t0 + tid < qhi ? row_index(P, true, bh, t0 + tid) : -1;
      sqi_buf[buf][tid] = i;
      // the LSE in log2 units; +inf where the query attends nothing (every pr is then 0)
      const float lse_i = i >= 0 && !query_is_padding(P, bh, i) ? lse[bh * P.nq + i] : -INFINITY;
      slse_buf[buf][tid] = lse_i == -INFINITY ? INFINITY : lse_i * kLog2e;
      sD_buf[buf][tid] = i >= 0 ? D[bh * P.nq + i] : 0.0f;
    }
    __syncthreads();  // the indices are visible (no thread still reads this buffer)
    bf16_t* sQ = sQdO + buf * qdo_elems;
    load_rows<Stages>(sQ, L.sd, kMmaQueries, sqi_buf[buf], q + bh * P.nq * L.d, L.d, L.dpad,
                      L.vec_qk);
    load_rows<Stages>(sQ + kMmaQueries * L.sd, L.sv, kMmaQueries, sqi_buf[buf],
                      dout + bh * P.nq * L.dv, L.dv, L.dvpad, L.vec_v);
    cp_async_commit();
  };
  if (Stages == 2 && ntiles > 0) stage(0, 0);

  for (int it = 0; it < ntiles; ++it) {
    next_tile<Stages>(it, ntiles, stage);
    __syncthreads();  // tile `it` (and, the first time, sK / sV) is in shared memory
    const int buf = Stages == 2 ? (it & 1) : 0;
    const int64_t* sqi = sqi_buf[buf];
    const float* slse = slse_buf[buf];
    const float* sD = sD_buf[buf];
    const bf16_t* sQ = sQdO + buf * qdo_elems;
    const bf16_t* sdO = sQ + kMmaQueries * L.sd;
    const int64_t t0 = qstart + static_cast<int64_t>(it) * kMmaQueries;
    const int n = static_cast<int>(min(static_cast<int64_t>(kMmaQueries), qhi - t0));

    float st[kMmaQueries / 8][4], dpt[kMmaQueries / 8][4];
#pragma unroll
    for (int nb = 0; nb < kMmaQueries / 8; ++nb)
#pragma unroll
      for (int e = 0; e < 4; ++e) st[nb][e] = dpt[nb][e] = 0.0f;
#pragma unroll
    for (int ks = 0; ks < kKs; ++ks) {  // S^T = K Q^T
      if (ks >= nks) break;
      uint32_t a[4];
      load_a_x4(a, sK, L.sd, r0, ks * 16, lane);
#pragma unroll
      for (int nb = 0; nb < kMmaQueries / 8; nb += 2) {
        uint32_t b0[2], b1[2];
        load_b_rows_x2(b0, b1, sQ, L.sd, nb * 8, ks * 16, lane);
        mma_bf16(st[nb], a, b0);
        mma_bf16(st[nb + 1], a, b1);
      }
    }
#pragma unroll
    for (int ks = 0; ks < kKs; ++ks) {  // dP^T = V dO^T
      if (ks >= nksv) break;
      uint32_t a[4];
      load_a_x4(a, sV, L.sv, r0, ks * 16, lane);
#pragma unroll
      for (int nb = 0; nb < kMmaQueries / 8; nb += 2) {
        uint32_t b0[2], b1[2];
        load_b_rows_x2(b0, b1, sdO, L.sv, nb * 8, ks * 16, lane);
        mma_bf16(dpt[nb], a, b0);
        mma_bf16(dpt[nb + 1], a, b1);
      }
    }
    // st becomes P^T z (for dV), dpt becomes dS^T / scale (for dK; the scale is applied at the
    // end). In a full tile a key row past the list (j < 0: zero K row) gets probabilities too,
    // but only its own accumulator rows, which are never written.
    const bool full = plain && n == kMmaQueries;  // every query listed (padding: slse = +inf)
#pragma unroll
    for (int nb = 0; nb < kMmaQueries / 8; ++nb)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int col = nb * 8 + 2 * t + (e & 1);
        const int64_t i = sqi[col], j = row_j[e >> 1];
        const float sc2 =
            full ? st[nb][e] * scale2 : kLog2e * mma_score(P, plain, bh, i, j, st[nb][e]);
        const float pr = ex2(sc2 - slse[col]);
        const float z = pr != 0.0f && P.dropout ? dropout_factor(P, bh, i, j) : 1.0f;
        dpt[nb][e] = pr * (z * dpt[nb][e] - sD[col]);
        st[nb][e] = pr * z;
      }
    if (ds_t != nullptr) {  // cluster mode only (the stored-dS dq path, smyrf_stored_ds.h)
#pragma unroll
      for (int nb = 0; nb < kMmaQueries / 8; ++nb)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int col = nb * 8 + 2 * t + (e & 1);
          if (col >= n || row_j[e >> 1] < 0) continue;  // past the query or the key list
          const int64_t kpos = k0 - klo + r0 + g + 8 * (e >> 1), qpos = t0 - qlo + col;
          ds_t[stored_ds_index(bh, gridDim.y, blockIdx.y, P.ck, P.cq, kpos, qpos)] =
              float_to_bf16_bits(dpt[nb][e]);
        }
    }
#pragma unroll
    for (int kb = 0; kb < kMmaQueries / 16; ++kb) {
      uint32_t a[4];
      c_to_a(a, st, kb);  // dV += (P z)^T dO
#pragma unroll
      for (int nb = 0; nb < kNb; nb += 2) {  // nbv, nbd are even (heads padded to 16)
        if (nb >= nbv) break;
        uint32_t b0[2], b1[2];
        load_b_trans_x2(b0, b1, sdO, L.sv, kb * 16, nb * 8, lane);
        mma_bf16(gv[nb], a, b0);
        mma_bf16(gv[nb + 1], a, b1);
      }
      c_to_a(a, dpt, kb);  // dK += dS^T Q
#pragma unroll
      for (int nb = 0; nb < kNb; nb += 2) {
        if (nb >= nbd) break;
        uint32_t b0[2], b1[2];
        load_b_trans_x2(b0, b1, sQ, L.sd, kb * 16, nb * 8, lane);
        mma_bf16(gk[nb], a, b0);
        mma_bf16(gk[nb + 1], a, b1);
      }
    }
    __syncthreads();  // this buffer is read; the next stage may overwrite it
  }
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int64_t j = row_j[h];
    if (j < 0) continue;
    const int64_t row = bh * P.nk + j;
#pragma unroll
    for (int nb = 0; nb < kNb; ++nb)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int c = nb * 8 + 2 * t + e;
        if (nb < nbd && c < L.d) {
          const float val = gk[nb][2 * h + e] * P.scale;
          if (cluster_mode(P))
            dk32[row * L.d + c] += val;
          else
            dk_bf[row * L.d + c] = float_to_bf16_bits(val);
        }
        if (nb < nbv && c < L.dv) {
          if (cluster_mode(P))
            dv32[row * L.dv + c] += gv[nb][2 * h + e];
          else
            dv_bf[row * L.dv + c] = float_to_bf16_bits(gv[nb][2 * h + e]);
        }
      }
  }
}

// D_i = dout_i . out_i (bfloat16 rows, float32 sum): one thread a row (any dv or alignment).
__global__ void row_dot_bf16_kernel(const bf16_t* __restrict__ dout, const bf16_t* __restrict__ out,
                                    float* __restrict__ D, int64_t rows, int dv) {
  const int64_t r = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (r >= rows) return;
  float acc = 0.0f;
  for (int c = 0; c < dv; ++c)
    acc += bf16_bits_to_float(dout[r * dv + c]) * bf16_bits_to_float(out[r * dv + c]);
  D[r] = acc;
}

// The same for rows of 16-byte multiples on 16-byte boundaries: kDotLanes lanes a row, one
// 16-byte load of each row (8 columns) a lane a step, partial sums joined by shuffles (a thread
// a row read 32 rows 128 bytes apart per warp load: 70 us for 131072 rows of 64 on an H200).
// Threads: rows * kDotLanes, in whole warps.
constexpr int kDotLanes = 8;
__global__ void row_dot_bf16_vec_kernel(const bf16_t* __restrict__ dout,
                                        const bf16_t* __restrict__ out, float* __restrict__ D,
                                        int64_t rows, int dv) {
  const int64_t tid = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  const int64_t r = tid / kDotLanes;
  const int part = static_cast<int>(tid % kDotLanes);
  float acc = 0.0f;
  if (r < rows) {
    for (int c = part * 8; c < dv; c += kDotLanes * 8) {
      const uint4 a = *reinterpret_cast<const uint4*>(dout + r * dv + c);
      const uint4 b = *reinterpret_cast<const uint4*>(out + r * dv + c);
      const uint32_t aw[4] = {a.x, a.y, a.z, a.w}, bw[4] = {b.x, b.y, b.z, b.w};
#pragma unroll
      for (int w = 0; w < 4; ++w) {
        acc += __uint_as_float(aw[w] << 16) * __uint_as_float(bw[w] << 16);
        acc += __uint_as_float(aw[w] & 0xffff0000u) * __uint_as_float(bw[w] & 0xffff0000u);
      }
    }
  }
  for (int off = kDotLanes / 2; off > 0; off /= 2) acc += __shfl_xor_sync(0xffffffffu, acc, off);
  if (part == 0 && r < rows) D[r] = acc;
}

__global__ void f32_to_bf16_kernel(const float* __restrict__ x, bf16_t* __restrict__ y, int64_t n) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i < n) y[i] = float_to_bf16_bits(x[i]);
}

// Four at a time (n4 = n / 4; x 16-byte and y 8-byte aligned): 16-byte loads, 8-byte stores.
__global__ void f32_to_bf16_x4_kernel(const float4* __restrict__ x, uint2* __restrict__ y,
                                      int64_t n4) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= n4) return;
  const float4 v = x[i];
  y[i] =
      make_uint2(float_to_bf16_bits(v.x) | (static_cast<uint32_t>(float_to_bf16_bits(v.y)) << 16),
                 float_to_bf16_bits(v.z) | (static_cast<uint32_t>(float_to_bf16_bits(v.w)) << 16));
}

}  // namespace smyrf::kernels::cuda::attn
