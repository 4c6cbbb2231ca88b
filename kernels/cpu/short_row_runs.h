// Elementwise ops over short rows with a broadcast operand, as long runs. Header-only, internal
// to kernels/cpu (elementwise.cpp's binary, compare and where use it).
//
// y (R, n) = f(operands) where n is short (< kShortRun) and the operands are each a contiguous
// (R, n) block ("full", strides (n, 1)), one row broadcast down ((0, 1), a bias), one value per
// row broadcast along it ((s, 0), an (R, 1) column such as a per-row scale or mask) or a scalar
// ((0, 0)). The strided loop calls the vector kernel once per n-element row, and for short rows
// its per-call cost dominated: 1M x 16 + (16,) 22.5 / 24.9 ms (PyTorch 22); (4M, 4) + (4M, 1)
// 29-42 ms, `where` over 4M x 4 rows 76 ms and a compare 20 ms, against 8-11, 9 and 2 ms for the
// same 16M elements in long rows. Here runs of k = ceil(kShortRun / n) rows go to the kernel as
// one run of k n elements: full operands as they are, a broadcast row repeated k times (built
// once), a column's values each repeated n times (built per run), a scalar as a stride-0 operand.
// The last R % k rows go back to the caller's general path.
#pragma once
#include <omp.h>

#include <array>
#include <cstdint>
#include <cstring>

#include "kernels/cpu/elementwise_avx2.h"
#include "kernels/cpu/nd_loop.h"
#include "kernels/cpu/streaming_store.h"

namespace smyrf::kernels::cpu {

constexpr int64_t kShortRun = 256;

// One operand of the op: its data, element size (1 or 4 bytes) and (row, column) strides.
struct RunOperand {
  const void* p;
  int esize;
  const int64_t* strides;
};

namespace short_runs {

enum class Kind { Full, Row, Column, Scalar, Other };

inline Kind kind_of(const RunOperand& o, int64_t n) {
  const int64_t s0 = o.strides[0], s1 = o.strides[1];
  if (s0 == n && s1 == 1) return Kind::Full;
  if (s0 == 0 && s1 == 1) return Kind::Row;
  if (s0 != 0 && s1 == 0 && n > 1) return Kind::Column;
  if (s0 == 0 && s1 == 0) return Kind::Scalar;
  return Kind::Other;
}

// dst = each of the k values at x, x + xs, ... repeated n times (k n elements of esize bytes,
// up to 7 floats or 7 bytes written past the end).
inline void repeat_each(const void* x, int esize, int64_t xs, int64_t k, int64_t n, char* dst) {
  if (esize == 4) {
    avx2::repeat_each_f32(static_cast<const float*>(x), xs, k, n, reinterpret_cast<float*>(dst));
  } else if (n <= 8) {
    // one 8-byte store a value: a memset call per value of a 4-wide bool column cost more than
    // the select itself (`where` with a (4M, 1) mask over (4M, 4))
    const unsigned char* b = static_cast<const unsigned char*>(x);
    for (int64_t j = 0; j < k; ++j) {
      const uint64_t v = b[j * xs] * uint64_t{0x0101010101010101};
      std::memcpy(dst + j * n, &v, 8);
    }
  } else {
    const unsigned char* b = static_cast<const unsigned char*>(x);
    for (int64_t j = 0; j < k; ++j) std::memset(dst + j * n, b[j * xs], static_cast<size_t>(n));
  }
}

}  // namespace short_runs

// Runs the op as described above when the shapes fit (2-D index space, 1 <= n < kShortRun, y
// contiguous (R, n), every operand one of the four kinds, at least one row or column, R >= 2 k)
// and returns true; false (nothing done) otherwise.
//   run(ptrs, strides, y_off, L): the op over one run of L elements: operand i at ptrs[i] with
// stride strides[i] (0 or 1), the output at element offset y_off. Runs are split over the OpenMP
// threads; each thread ends with a store fence when `stream` (run may stream its stores).
//   rest(done): rows [done, R) through the caller's general path (the same sizes and strides,
// pointers advanced by `done` rows).
template <size_t N, typename Run, typename Rest>
bool short_row_runs(int ndim, const int64_t* sizes, const int64_t* ys,
                    const std::array<RunOperand, N>& ops, bool stream, Run run, Rest rest) {
  using short_runs::Kind;
  if (ndim != 2) return false;
  const int64_t R = sizes[0], n = sizes[1];
  if (n >= kShortRun || n < 1 || ys[0] != n || ys[1] != 1) return false;
  const int64_t k = (kShortRun + n - 1) / n;
  if (R < 2 * k) return false;
  std::array<Kind, N> kinds;
  bool broadcast = false;
  for (size_t i = 0; i < N; ++i) {
    kinds[i] = short_runs::kind_of(ops[i], n);
    if (kinds[i] == Kind::Other || (ops[i].esize != 1 && ops[i].esize != 4)) return false;
    broadcast |= kinds[i] == Kind::Row || kinds[i] == Kind::Column;
  }
  if (!broadcast) return false;
  constexpr int64_t kBuf = (2 * kShortRun + 8) * 4;  // k n < 2 kShortRun elements, + 7 floats
  alignas(32) char rows_rep[N][kBuf];                // the broadcast rows, repeated k times
  for (size_t i = 0; i < N; ++i)
    if (kinds[i] == Kind::Row)
      for (int64_t j = 0; j < k; ++j)
        std::memcpy(rows_rep[i] + j * n * ops[i].esize, ops[i].p,
                    static_cast<size_t>(n * ops[i].esize));
  const int64_t R2 = R / k, L = k * n;
#pragma omp parallel if (rows_parallel_ok(R2, L))
  {
    alignas(32) char cols_rep[N][kBuf];  // this run's column values, each repeated n times
#pragma omp for schedule(static) nowait
    for (int64_t q = 0; q < R2; ++q) {
      const int64_t r0 = q * k;
      std::array<const void*, N> ptr;
      std::array<int64_t, N> st;
      for (size_t i = 0; i < N; ++i) {
        const char* p = static_cast<const char*>(ops[i].p);
        const int e = ops[i].esize;
        st[i] = 1;
        switch (kinds[i]) {
          case Kind::Full:
            ptr[i] = p + r0 * n * e;
            break;
          case Kind::Row:
            ptr[i] = rows_rep[i];
            break;
          case Kind::Column:
            short_runs::repeat_each(p + r0 * ops[i].strides[0] * e, e, ops[i].strides[0], k, n,
                                    cols_rep[i]);
            ptr[i] = cols_rep[i];
            break;
          default:  // Scalar
            ptr[i] = p;
            st[i] = 0;
        }
      }
      run(ptr, st, r0 * n, L);
    }
    if (stream) streaming_store_fence();
  }
  if (R2 * k < R) rest(R2 * k);
  return true;
}

}  // namespace smyrf::kernels::cpu
