// AVX2 variants of the Winograd tile transforms (see winograd.h): one tile per vector lane, the
// expressions of winograd_transforms.h on 8-float vectors. Compiled with -mavx2 -mfma (the
// CMake rule for *_avx2.cpp); only called when cpuid reports AVX2.
#include "kernels/cpu/winograd.h"

#if defined(__AVX2__)
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "kernels/cpu/transpose_avx2.h"
#include "kernels/cpu/winograd_transforms.h"

namespace smyrf::kernels::cpu::winograd {
namespace {

// Just enough of a value type for the transform templates (no FMA, like the scalar twin).
struct V8 {
  __m256 v;
};
inline V8 operator+(V8 a, V8 b) { return {_mm256_add_ps(a.v, b.v)}; }
inline V8 operator-(V8 a, V8 b) { return {_mm256_sub_ps(a.v, b.v)}; }
inline V8 operator*(V8 a, float s) { return {_mm256_mul_ps(a.v, _mm256_set1_ps(s))}; }

// The patches of 8 side-by-side tiles of one plane (lane l's origin at (h0, w0 + 4 l)): every
// patch row a is the plane row's 40 floats from w0 (5 masked loads: columns outside [0, W) read
// as 0), and patch column b of lane l is float 4 l + b of them, so the 8 x 6 of a row come from a
// 4-way deinterleave of the first 32 floats (b < 4) and that shifted by one tile (b = 4, 5). 17
// shuffles a row against the general path's 8 masked loads and 8 x 8 transpose.
void gather_row_run(const float* plane, int64_t h0, int64_t w0, int64_t H, int64_t W, float* d) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  __m256i valid[5];  // lanes of vector v whose column w0 + 8 v + lane lies in [0, W)
  for (int v = 0; v < 5; ++v) {
    const __m256i col = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(w0 + 8 * v)), idx);
    valid[v] = _mm256_andnot_si256(_mm256_cmpgt_epi32(_mm256_setzero_si256(), col),
                                   _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(W)), col));
  }
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  const __m256i next_tile = _mm256_setr_epi32(1, 2, 3, 4, 5, 6, 7, 0);
  for (int a = 0; a < 6; ++a) {
    float* drow = d + 6 * a * 8;
    const int64_t h = h0 + a;
    if (h < 0 || h >= H) {
      for (int b = 0; b < 6; ++b) _mm256_storeu_ps(drow + b * 8, _mm256_setzero_ps());
      continue;
    }
    // the address is formed as an integer: the row's origin may lie before the plane
    const uintptr_t row =
        reinterpret_cast<uintptr_t>(plane) +
        static_cast<uintptr_t>((h * W + w0) * static_cast<int64_t>(sizeof(float)));
    __m256 x[5];
    for (int v = 0; v < 5; ++v)
      x[v] = _mm256_maskload_ps(reinterpret_cast<const float*>(row) + 8 * v, valid[v]);
    // x[0..4) hold tiles 0-1, 2-3, 4-5, 6-7 (4 floats each); the unpacks and shuffles leave
    // column b of tiles 0 2 4 6 | 1 3 5 7, which `order` puts in tile order
    const __m256 t0 = _mm256_unpacklo_ps(x[0], x[1]), t1 = _mm256_unpackhi_ps(x[0], x[1]);
    const __m256 t2 = _mm256_unpacklo_ps(x[2], x[3]), t3 = _mm256_unpackhi_ps(x[2], x[3]);
    __m256 col[4];
    col[0] = _mm256_permutevar8x32_ps(_mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0)), order);
    col[1] = _mm256_permutevar8x32_ps(_mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2)), order);
    col[2] = _mm256_permutevar8x32_ps(_mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0)), order);
    col[3] = _mm256_permutevar8x32_ps(_mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2)), order);
    for (int b = 0; b < 4; ++b) _mm256_storeu_ps(drow + b * 8, col[b]);
    // columns 4 and 5 of tile l are columns 0 and 1 of tile l + 1; tile 7's are floats 32, 33
    const __m256 past0 = _mm256_permutevar8x32_ps(x[4], _mm256_setzero_si256());
    const __m256 past1 = _mm256_permutevar8x32_ps(x[4], _mm256_set1_epi32(1));
    _mm256_storeu_ps(drow + 4 * 8,
                     _mm256_blend_ps(_mm256_permutevar8x32_ps(col[0], next_tile), past0, 0x80));
    _mm256_storeu_ps(drow + 5 * 8,
                     _mm256_blend_ps(_mm256_permutevar8x32_ps(col[1], next_tile), past1, 0x80));
  }
}

}  // namespace

void gather_patches_avx2(const PatchLanes& p, int64_t H, int64_t W, float* d) {
  bool row_run = p.plane[0] != nullptr;
  for (int l = 1; l < 8; ++l)
    row_run =
        row_run && p.plane[l] == p.plane[0] && p.h0[l] == p.h0[0] && p.w0[l] == p.w0[0] + 4 * l;
  if (row_run) {
    gather_row_run(p.plane[0], p.h0[0], p.w0[0], H, W, d);
    return;
  }
  // lane l's columns inside the plane: b in [lo, hi) of its 6; a masked load reads no other
  __m256i cols[8];
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (int l = 0; l < 8; ++l) {
    const int64_t lo = std::max<int64_t>(0, -p.w0[l]), hi = std::min<int64_t>(6, W - p.w0[l]);
    cols[l] = _mm256_andnot_si256(
        _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(lo)), idx),
        _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(std::max(hi, lo))), idx));
  }
  for (int a = 0; a < 6; ++a) {
    __m256 r[8];
    for (int l = 0; l < 8; ++l) {
      const int64_t h = p.h0[l] + a;
      r[l] = _mm256_setzero_ps();
      if (!p.plane[l] || h < 0 || h >= H) continue;
      // the row's origin may lie before the plane (w0 < 0): only in-plane lanes are loaded, and
      // the address is formed as an integer so no pointer leaves the array
      const float* src = reinterpret_cast<const float*>(
          reinterpret_cast<uintptr_t>(p.plane[l]) +
          static_cast<uintptr_t>((h * W + p.w0[l]) * static_cast<int64_t>(sizeof(float))));
      r[l] = _mm256_maskload_ps(src, cols[l]);
    }
    ::smyrf::kernels::cpu::avx2::transpose8x8_ps(r);
    for (int b = 0; b < 6; ++b) _mm256_storeu_ps(d + (6 * a + b) * 8, r[b]);
  }
}

void scatter_tiles_avx2(const float* y, const TileLanes& t, int64_t ldy) {
  const __m128i lane = _mm_setr_epi32(0, 1, 2, 3);
  for (int p = 0; p < 4; ++p) {
    __m256 r[8];
    for (int q = 0; q < 4; ++q) r[q] = _mm256_loadu_ps(y + (p * 4 + q) * 8);
    for (int q = 4; q < 8; ++q) r[q] = _mm256_setzero_ps();
    ::smyrf::kernels::cpu::avx2::transpose8x8_ps(r);  // r[l]'s low 4 lanes: row p of lane l
    for (int l = 0; l < 8; ++l) {
      if (!t.origin[l] || p >= t.np[l]) continue;
      float* dst = t.origin[l] + p * ldy;
      const __m128 v = _mm256_castps256_ps128(r[l]);
      if (t.nq[l] == 4) {
        _mm_storeu_ps(dst, v);
      } else {  // a partial tile at the right edge: its first nq columns
        _mm_maskstore_ps(dst, _mm_cmpgt_epi32(_mm_set1_epi32(t.nq[l]), lane), v);
      }
    }
  }
}

void gather_tiles_avx2(const ConstTileLanes& t, int64_t ldy, float* y) {
  const __m128i lane = _mm_setr_epi32(0, 1, 2, 3);
  for (int p = 0; p < 4; ++p) {
    __m256 r[8];
    for (int l = 0; l < 8; ++l) {
      __m128 v = _mm_setzero_ps();
      if (t.origin[l] && p < t.np[l]) {
        const float* src = t.origin[l] + p * ldy;
        v = t.nq[l] == 4 ? _mm_loadu_ps(src)
                         : _mm_maskload_ps(src, _mm_cmpgt_epi32(_mm_set1_epi32(t.nq[l]), lane));
      }
      r[l] = _mm256_insertf128_ps(_mm256_setzero_ps(), v, 0);
    }
    ::smyrf::kernels::cpu::avx2::transpose8x8_ps(r);  // r[q]: column q of row p, lane l
    for (int q = 0; q < 4; ++q) _mm256_storeu_ps(y + (p * 4 + q) * 8, r[q]);
  }
}

void input_transform_avx2(const float* d, float* v, int64_t ldv) {
  V8 in[36], out[36];
  for (int i = 0; i < 36; ++i) in[i].v = _mm256_loadu_ps(d + i * 8);
  input_tile(in, out);
  for (int i = 0; i < 36; ++i) _mm256_storeu_ps(v + i * ldv, out[i].v);
}

void output_transform_avx2(const float* m, int64_t ldm, float bias, float* y) {
  V8 in[36], out[16];
  for (int i = 0; i < 36; ++i) in[i].v = _mm256_loadu_ps(m + i * ldm);
  output_tile(in, out);
  const __m256 b = _mm256_set1_ps(bias);
  for (int i = 0; i < 16; ++i) _mm256_storeu_ps(y + i * 8, _mm256_add_ps(out[i].v, b));
}

void grad_output_transform_avx2(const float* dy, float* dm, int64_t ldm) {
  V8 in[16], out[36];
  for (int i = 0; i < 16; ++i) in[i].v = _mm256_loadu_ps(dy + i * 8);
  grad_output_tile(in, out);
  for (int i = 0; i < 36; ++i) _mm256_storeu_ps(dm + i * ldm, out[i].v);
}

}  // namespace smyrf::kernels::cpu::winograd

#else  // a compiler without AVX2: never dispatched (active_isa() stays Scalar)

namespace smyrf::kernels::cpu::winograd {
void gather_patches_avx2(const PatchLanes& p, int64_t H, int64_t W, float* d) {
  gather_patches_scalar(p, H, W, d);
}
void scatter_tiles_avx2(const float* y, const TileLanes& t, int64_t ldy) {
  scatter_tiles_scalar(y, t, ldy);
}
void gather_tiles_avx2(const ConstTileLanes& t, int64_t ldy, float* y) {
  gather_tiles_scalar(t, ldy, y);
}
void input_transform_avx2(const float* d, float* v, int64_t ldv) {
  input_transform_scalar(d, v, ldv);
}
void output_transform_avx2(const float* m, int64_t ldm, float bias, float* y) {
  output_transform_scalar(m, ldm, bias, y);
}
void grad_output_transform_avx2(const float* dy, float* dm, int64_t ldm) {
  grad_output_transform_scalar(dy, dm, ldm);
}
}  // namespace smyrf::kernels::cpu::winograd
#endif
