// AVX2 inner loops for the float32 elementwise ops. Ops without a vector form return false.
// Tails use masked loads and stores so every element goes through the same vector formula,
// whatever its position or the pointer's alignment.
#include "kernels/cpu/elementwise_avx2.h"

#include <immintrin.h>

#include <cstdint>

#include "kernels/cpu/store_avx2.h"
#include "kernels/cpu/vec_math_avx2.h"

namespace smyrf::kernels::cpu::avx2 {
namespace {

// The loop bodies are flattened: with a streamed and a plain instantiation of every op, GCC ran
// out of inlining budget in unary_f32 and called exp_ps, gelu_ps, ... out of line once per
// vector (4096^2 contiguous exp, one thread: 14.4 -> 18.2 ms).

// Stores: plain, or (Stream) non-temporal ones for outputs too large to be read back from the
// cache (store_avx2.h): the head up to the first 32-byte boundary of y and the tail go through
// masked plain stores, the body through _mm256_stream_ps.

// Software prefetch distance of the contiguous loops, in floats (4 KiB). The hardware
// prefetchers stop at every 4 KiB boundary and an op with real compute per element (exp, gelu)
// keeps too few misses in flight on its own, so without this its time was the memory time plus
// the compute time: 4096^2 floats on 2 threads, exp 9 -> 5.2 ms and gelu 15 -> 9 ms with it,
// add and mul unchanged within noise (distances 256 / 1024 / 4096 measured; 1024 best). Lines
// past the end of the data are hinted too: a prefetch never faults, the hint is just wasted.
// Runs shorter than the distance (the transposed path's 256-float tile rows, which are in L1
// and prefetch their next tile themselves) skip it: there it only cost time.
constexpr int64_t kPrefetchAhead = 1024;

inline void prefetch_ahead(const float* p) {
  // integer arithmetic: the address may lie past the end of the array
  const uintptr_t a = reinterpret_cast<uintptr_t>(p) + kPrefetchAhead * sizeof(float);
  _mm_prefetch(reinterpret_cast<const char*>(a), _MM_HINT_T0);
}

template <bool Stream, typename F>
[[gnu::flatten]] inline void map1_body(const float* x, float* y, int64_t n, F f) {
  int64_t i = 0;
  const bool pf = n >= kPrefetchAhead;
  for (; i + 16 <= n; i += 16) {  // 16 floats: one 64-byte line per iteration
    if (pf) prefetch_ahead(x + i);
    __m256 v0 = _mm256_loadu_ps(x + i), v1 = _mm256_loadu_ps(x + i + 8);
    store<Stream>(y + i, f(v0));
    store<Stream>(y + i + 8, f(v1));
  }
  for (; i + 8 <= n; i += 8) store<Stream>(y + i, f(_mm256_loadu_ps(x + i)));
  if (i < n) {
    const __m256i m = tail_mask(n - i);
    _mm256_maskstore_ps(y + i, m, f(_mm256_maskload_ps(x + i, m)));
  }
}

template <typename F>
inline void map1(const float* x, float* y, int64_t n, bool stream, F f) {
  if (!stream) return map1_body<false>(x, y, n, f);
  const int64_t h = head_to_align(y, n);
  if (h > 0) {
    const __m256i m = tail_mask(h);
    _mm256_maskstore_ps(y, m, f(_mm256_maskload_ps(x, m)));
  }
  map1_body<true>(x + h, y + h, n - h, f);
}

inline __m256 load_s(const float* p, int64_t s, int64_t i) {
  return s ? _mm256_loadu_ps(p + i) : _mm256_broadcast_ss(p);
}
inline __m256 maskload_s(const float* p, int64_t s, int64_t i, __m256i m) {
  return s ? _mm256_maskload_ps(p + i, m) : _mm256_broadcast_ss(p);
}

template <bool Stream, typename F>
[[gnu::flatten]] inline void map2_body(const float* a, int64_t as, const float* b, int64_t bs,
                                       float* y, int64_t n, F f) {
  int64_t i = 0;
  const bool pfa = as && n >= kPrefetchAhead, pfb = bs && n >= kPrefetchAhead;
  for (; i + 16 <= n; i += 16) {
    if (pfa) prefetch_ahead(a + i);
    if (pfb) prefetch_ahead(b + i);
    __m256 r0 = f(load_s(a, as, i), load_s(b, bs, i));
    __m256 r1 = f(load_s(a, as, i + 8), load_s(b, bs, i + 8));
    store<Stream>(y + i, r0);
    store<Stream>(y + i + 8, r1);
  }
  for (; i + 8 <= n; i += 8) store<Stream>(y + i, f(load_s(a, as, i), load_s(b, bs, i)));
  if (i < n) {
    const __m256i m = tail_mask(n - i);
    _mm256_maskstore_ps(y + i, m, f(maskload_s(a, as, i, m), maskload_s(b, bs, i, m)));
  }
}

template <typename F>
inline void map2(const float* a, int64_t as, const float* b, int64_t bs, float* y, int64_t n,
                 bool stream, F f) {
  if (!stream) return map2_body<false>(a, as, b, bs, y, n, f);
  const int64_t h = head_to_align(y, n);
  if (h > 0) map2_body<false>(a, as, b, bs, y, h, f);  // h < 8: one masked vector
  map2_body<true>(a + as * h, as, b + bs * h, bs, y + h, n - h, f);
}

}  // namespace

bool unary_f32_supported(UnaryOp op, float a, float b) {
  switch (op) {
    case UnaryOp::Neg:
    case UnaryOp::Exp:
    case UnaryOp::Log:
    case UnaryOp::Sqrt:
    case UnaryOp::Rsqrt:
    case UnaryOp::Abs:
    case UnaryOp::Sign:
    case UnaryOp::Tanh:
    case UnaryOp::Sigmoid:
    case UnaryOp::Relu:
    case UnaryOp::LeakyRelu:
    case UnaryOp::Gelu:
    case UnaryOp::Silu:
    case UnaryOp::MulScalar:
    case UnaryOp::AddScalar:
    case UnaryOp::Square:
    case UnaryOp::Reciprocal:
    case UnaryOp::GeluGrad:
    case UnaryOp::TanhGradFromOut:
    case UnaryOp::SigmoidGradFromOut:
    case UnaryOp::ReluGrad:
    case UnaryOp::SiluGrad:
    case UnaryOp::Sin:
    case UnaryOp::Cos:
    case UnaryOp::Expm1:
    case UnaryOp::Log1p:
    case UnaryOp::PowScalar:
      return true;
    // the reference clamps to a first, so a > b (or NaN bounds) would differ from min(max())
    case UnaryOp::Clamp:
      return a <= b;
    default:
      return false;
  }
}

bool unary_f32(UnaryOp op, float a, float b, const float* x, float* y, int64_t n, bool stream) {
  if (!unary_f32_supported(op, a, b)) return false;
  const __m256 va = _mm256_set1_ps(a), vb = _mm256_set1_ps(b);
  const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f);
  const __m256 sign_bit = _mm256_set1_ps(-0.0f);
  switch (op) {
    case UnaryOp::Neg:
      map1(x, y, n, stream, [&](__m256 v) { return _mm256_xor_ps(v, sign_bit); });
      break;
    case UnaryOp::Exp:
      map1(x, y, n, stream, [](__m256 v) { return exp_inrange_first_ps(v); });
      break;
    case UnaryOp::Log:
      map1(x, y, n, stream, [](__m256 v) { return log_ps(v); });
      break;
    case UnaryOp::Sqrt:
      map1(x, y, n, stream, [](__m256 v) { return _mm256_sqrt_ps(v); });
      break;
    case UnaryOp::Rsqrt:
      // a true division, not rsqrt_ps: the reference is correctly rounded 1 / sqrt(x)
      map1(x, y, n, stream, [&](__m256 v) { return _mm256_div_ps(one, _mm256_sqrt_ps(v)); });
      break;
    case UnaryOp::Abs:
      map1(x, y, n, stream, [](__m256 v) { return abs_ps(v); });
      break;
    case UnaryOp::Sign:
      map1(x, y, n, stream, [&](__m256 v) {
        return _mm256_sub_ps(_mm256_and_ps(_mm256_cmp_ps(v, zero, _CMP_GT_OQ), one),
                             _mm256_and_ps(_mm256_cmp_ps(v, zero, _CMP_LT_OQ), one));
      });
      break;
    case UnaryOp::Tanh:
      map1(x, y, n, stream, [](__m256 v) { return tanh_ps(v); });
      break;
    case UnaryOp::Sin:
      map1(x, y, n, stream, [](__m256 v) { return sincos_ps(v, false); });
      break;
    case UnaryOp::Cos:
      map1(x, y, n, stream, [](__m256 v) { return sincos_ps(v, true); });
      break;
    case UnaryOp::Sigmoid:
      map1(x, y, n, stream, [](__m256 v) { return sigmoid_ps(v); });
      break;
    // max_ps returns its second operand for NaN and for +-0 pairs: NaN -> 0, -0 -> +0, as the
    // reference's x > 0 ? x : 0
    case UnaryOp::Relu:
      map1(x, y, n, stream, [&](__m256 v) { return _mm256_max_ps(v, zero); });
      break;
    case UnaryOp::LeakyRelu:
      map1(x, y, n, stream, [&](__m256 v) {
        return _mm256_blendv_ps(_mm256_mul_ps(v, va), v, _mm256_cmp_ps(v, zero, _CMP_GT_OQ));
      });
      break;
    case UnaryOp::Gelu:
      map1(x, y, n, stream, [](__m256 v) { return gelu_ps(v); });
      break;
    case UnaryOp::Silu:
      map1(x, y, n, stream, [](__m256 v) { return silu_ps(v); });
      break;
    case UnaryOp::Expm1:
      map1(x, y, n, stream, [](__m256 v) { return expm1_ps(v); });
      break;
    case UnaryOp::Log1p:
      map1(x, y, n, stream, [](__m256 v) { return log1p_ps(v); });
      break;
    // x^2 and x^1 exactly as the reference rounds them; other exponents through pow_ps (<= 1
    // ulp; the caller passes only exponents that are exact in float)
    case UnaryOp::PowScalar:
      if (a == 2.0f)
        map1(x, y, n, stream, [](__m256 v) { return _mm256_mul_ps(v, v); });
      else if (a == 1.0f)
        map1(x, y, n, stream, [](__m256 v) { return v; });
      else
        map1(x, y, n, stream, [&](__m256 v) { return pow_ps(v, va); });
      break;
    case UnaryOp::Clamp:
      // x second in max_ps keeps NaN; then NaN second in min_ps keeps it too
      map1(x, y, n, stream, [&](__m256 v) { return _mm256_min_ps(vb, _mm256_max_ps(va, v)); });
      break;
    case UnaryOp::MulScalar:
      map1(x, y, n, stream, [&](__m256 v) { return _mm256_mul_ps(v, va); });
      break;
    case UnaryOp::AddScalar:
      map1(x, y, n, stream, [&](__m256 v) { return _mm256_add_ps(v, va); });
      break;
    case UnaryOp::Square:
      map1(x, y, n, stream, [](__m256 v) { return _mm256_mul_ps(v, v); });
      break;
    case UnaryOp::Reciprocal:
      map1(x, y, n, stream, [&](__m256 v) { return _mm256_div_ps(one, v); });
      break;
    case UnaryOp::GeluGrad:
      map1(x, y, n, stream, [](__m256 v) { return gelu_grad_ps(v); });
      break;
    // one rounding of the exact 1 - y^2 and y - y^2: the same as the reference in double
    case UnaryOp::TanhGradFromOut:
      map1(x, y, n, stream, [&](__m256 v) { return _mm256_fnmadd_ps(v, v, one); });
      break;
    case UnaryOp::SigmoidGradFromOut:
      // y - y^2 is inf - inf for y = +-inf, where the reference's y (1 - y) is -inf
      map1(x, y, n, stream, [&](__m256 v) {
        const __m256 inf = _mm256_cmp_ps(abs_ps(v), _mm256_set1_ps(__builtin_inff()), _CMP_EQ_OQ);
        return _mm256_blendv_ps(_mm256_fnmadd_ps(v, v, v), _mm256_mul_ps(v, _mm256_sub_ps(one, v)),
                                inf);
      });
      break;
    case UnaryOp::ReluGrad:  // (an ordered compare: NaN -> 0, as the reference)
      map1(x, y, n, stream, [&](__m256 v) {
        return _mm256_and_ps(_mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_GT_OQ), one);
      });
      break;
    case UnaryOp::SiluGrad:
      map1(x, y, n, stream, [](__m256 v) { return silu_grad_ps(v); });
      break;
    default:
      return false;
  }
  return true;
}

void repeat_each_f32(const float* x, int64_t xs, int64_t rows, int64_t n, float* dst) {
  // row j's vector stores run up to 7 floats into row j + 1's place, which row j + 1's stores
  // then overwrite (rows go in order)
  for (int64_t j = 0; j < rows; ++j) {
    const __m256 v = _mm256_set1_ps(x[j * xs]);
    for (int64_t c = 0; c < n; c += 8) _mm256_storeu_ps(dst + j * n + c, v);
  }
}

bool binary_f32(BinaryOp op, const float* a, int64_t as, const float* b, int64_t bs, float* y,
                int64_t n, bool stream) {
  switch (op) {
    case BinaryOp::Add:
      map2(a, as, b, bs, y, n, stream, [](__m256 u, __m256 v) { return _mm256_add_ps(u, v); });
      break;
    case BinaryOp::Sub:
      map2(a, as, b, bs, y, n, stream, [](__m256 u, __m256 v) { return _mm256_sub_ps(u, v); });
      break;
    case BinaryOp::Mul:
      map2(a, as, b, bs, y, n, stream, [](__m256 u, __m256 v) { return _mm256_mul_ps(u, v); });
      break;
    case BinaryOp::Div:
      map2(a, as, b, bs, y, n, stream, [](__m256 u, __m256 v) { return _mm256_div_ps(u, v); });
      break;
    case BinaryOp::Pow:
      map2(a, as, b, bs, y, n, stream, [](__m256 u, __m256 v) { return pow_ps(u, v); });
      break;
    // max_ps(u, v) is exactly u > v ? u : v (the reference's choice, +-0 included); lanes with
    // a NaN take u + v, which is NaN
    case BinaryOp::Maximum:
      map2(a, as, b, bs, y, n, stream, [](__m256 u, __m256 v) {
        return _mm256_blendv_ps(_mm256_max_ps(u, v), _mm256_add_ps(u, v),
                                _mm256_cmp_ps(u, v, _CMP_UNORD_Q));
      });
      break;
    case BinaryOp::Minimum:
      map2(a, as, b, bs, y, n, stream, [](__m256 u, __m256 v) {
        return _mm256_blendv_ps(_mm256_min_ps(u, v), _mm256_add_ps(u, v),
                                _mm256_cmp_ps(u, v, _CMP_UNORD_Q));
      });
      break;
    case BinaryOp::GeluBackward:
      map2(a, as, b, bs, y, n, stream,
           [](__m256 g, __m256 x) { return _mm256_mul_ps(g, gelu_grad_ps(x)); });
      break;
    case BinaryOp::ReluBackward:  // g where x > 0 (ordered: NaN x gives 0), else +0
      map2(a, as, b, bs, y, n, stream, [](__m256 g, __m256 x) {
        return _mm256_and_ps(g, _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GT_OQ));
      });
      break;
    default:
      return false;
  }
  return true;
}

void copy_f32(const float* x, int64_t xs, float* y, int64_t n, bool stream) {
  // map2 with x as both operands and the first returned: the same head / body / tail handling
  map2(x, xs, x, xs, y, n, stream, [](__m256 u, __m256) { return u; });
}

namespace {
// Transposes the 8 x 8 block p[k * ld + i] (k, i < 8) into d[i * ld_d + k]. The 128-bit halves
// are paired at load time (the insert is a load plus a cheap ALU op, not a shuffle), so each
// lane holds a 4 x 4 block; of the in-lane 4 x 4 transposes' 16 shuffles, half are done as one
// shuffle plus two blends: 12 shuffle-port operations per block instead of 24 (the shuffle port
// is the only one the 8 x 8 register transpose keeps busy).
inline __m256 load_pair(const float* lo, const float* hi) {
  return _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(lo)), _mm_loadu_ps(hi), 1);
}
// rows (a0, a1, a2, a3) of 4 x 4 blocks in each lane -> the block's 4 columns, per lane
inline void transpose4_lanes(__m256 a0, __m256 a1, __m256 a2, __m256 a3, float* d, int64_t ld) {
  const __m256 t0 = _mm256_unpacklo_ps(a0, a1), t1 = _mm256_unpackhi_ps(a0, a1);
  const __m256 t2 = _mm256_unpacklo_ps(a2, a3), t3 = _mm256_unpackhi_ps(a2, a3);
  const __m256 v0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 3, 2));
  const __m256 v1 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 3, 2));
  _mm256_storeu_ps(d, _mm256_blend_ps(t0, v0, 0xCC));
  _mm256_storeu_ps(d + ld, _mm256_blend_ps(v0, t2, 0xCC));
  _mm256_storeu_ps(d + 2 * ld, _mm256_blend_ps(t1, v1, 0xCC));
  _mm256_storeu_ps(d + 3 * ld, _mm256_blend_ps(v1, t3, 0xCC));
}
inline void transpose8_block(const float* p, int64_t ld, float* d, int64_t ld_d) {
  // lane 0: runs 0-3, lane 1: runs 4-7; first the elements 0-3 of each run, then 4-7
  transpose4_lanes(load_pair(p, p + 4 * ld), load_pair(p + ld, p + 5 * ld),
                   load_pair(p + 2 * ld, p + 6 * ld), load_pair(p + 3 * ld, p + 7 * ld), d, ld_d);
  transpose4_lanes(load_pair(p + 4, p + 4 * ld + 4), load_pair(p + ld + 4, p + 5 * ld + 4),
                   load_pair(p + 2 * ld + 4, p + 6 * ld + 4),
                   load_pair(p + 3 * ld + 4, p + 7 * ld + 4), d + 4 * ld_d, ld_d);
}
}  // namespace

void prefetch_columns_f32(const float* src, int64_t s_col, int64_t rows, int64_t j_begin,
                          int64_t cols) {
  // integer addresses: the runs may lie past the end of the data (then the hint is wasted)
  const uintptr_t base = reinterpret_cast<uintptr_t>(src);
  const int64_t bytes = rows * 4;
  for (int64_t j = j_begin; j < j_begin + cols; ++j) {
    const uintptr_t p = base + static_cast<uintptr_t>(j * s_col * 4);
    // every line of the run (an unaligned 128-byte run touches three)
    for (int64_t off = 0; off < bytes; off += 64)
      _mm_prefetch(reinterpret_cast<const char*>(p + off), _MM_HINT_T1);
    _mm_prefetch(reinterpret_cast<const char*>(p + bytes - 4), _MM_HINT_T1);
  }
}

void gather_tile_f32(const float* src, int64_t s_row, int64_t s_col, int64_t rows, int64_t cols,
                     float* dst, int64_t ld) {
  if (s_row == 1 && rows >= 8) {
    // Column-block order: the 8 source runs of a block of 8 columns (src[j * s_col + i] for all
    // rows i, contiguous) are read whole, 8 x 8 at a time, before the next block. Runs of a
    // transposed power-of-two matrix are a multiple of 4 KiB apart and all fall into the same
    // L1 set (and a handful of L2 sets), so a run that is left and come back to later (as the
    // row-strip order did) has been evicted and is fetched again from L3.
    //   The runs kAheadCols columns on are prefetched into L2; past `cols` those are the
    // runs of the tile to the right (same rows), which the tiled loop visits next.
    constexpr int64_t kAheadCols = 32;
    const int64_t rows8 = rows & ~int64_t{7};
    int64_t j0 = 0;
    for (; j0 + 8 <= cols; j0 += 8) {
      prefetch_columns_f32(src, s_col, rows, j0 + kAheadCols, 8);
      const float* s = src + j0 * s_col;
      for (int64_t i0 = 0; i0 < rows8; i0 += 8)
        transpose8_block(s + i0, s_col, dst + i0 * ld + j0, ld);
      for (int64_t i = rows8; i < rows; ++i)
        for (int64_t j = j0; j < j0 + 8; ++j) dst[i * ld + j] = src[i + j * s_col];
    }
    for (; j0 < cols; ++j0)
      for (int64_t i = 0; i < rows; ++i) dst[i * ld + j0] = src[i + j0 * s_col];
    return;
  }
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) dst[i * ld + j] = src[i * s_row + j * s_col];
}

}  // namespace smyrf::kernels::cpu::avx2
