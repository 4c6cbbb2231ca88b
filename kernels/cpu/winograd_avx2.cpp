// AVX2 variants of the Winograd tile transforms (see winograd.h): one tile per vector lane, the
// expressions of winograd_transforms.h on 8-float vectors. Compiled with -mavx2 -mfma (the
// CMake rule for *_avx2.cpp); only called when cpuid reports AVX2.
#include "kernels/cpu/winograd.h"

#if defined(__AVX2__)
#include <immintrin.h>

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

}  // namespace

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
