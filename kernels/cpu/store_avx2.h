// Vector stores shared by the AVX2 elementwise kernels (elementwise_avx2.cpp, mask_ops_avx2.cpp):
// plain or non-temporal ("streaming", streaming_store.h) by a template flag, and the head of a
// run that precedes its first 32-byte boundary (streaming stores need aligned addresses). No
// fence here: the caller fences once per thread (nd_loop and nd_loop_tiles do), not per run.
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace smyrf::kernels::cpu::avx2 {

template <bool Stream>
inline void store(float* p, __m256 v) {
  if constexpr (Stream)
    _mm256_stream_ps(p, v);
  else
    _mm256_storeu_ps(p, v);
}

// Elements before y's first 32-byte boundary (y is at least float-aligned), at most n.
inline int64_t head_to_align(const float* y, int64_t n) {
  const int64_t h = static_cast<int64_t>((32 - (reinterpret_cast<uintptr_t>(y) & 31)) & 31) / 4;
  return h < n ? h : n;
}

}  // namespace smyrf::kernels::cpu::avx2
