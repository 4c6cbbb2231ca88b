// The softmax / log_softmax / cross-entropy row kernels beyond test_memory_kernels.cpp (their
// exp: test_row_math_avx2.cpp): the AVX2 rows against the scalar reference on outputs large enough
// for streaming stores (kernels/cpu/streaming_store.h; the short rows and the softmax backward
// stream, the longer forward and cross-entropy rows write with plain stores at any size), with
// unaligned rows, rows shorter than a vector, rows longer than a chunk and edge values.
#include <doctest/doctest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/norm.h"
#include "kernels/cpu/softmax.h"
#include "kernels/cpu/softmax_avx2.h"
#include "kernels/cpu/streaming_store.h"
#include "tests/kernels/kernel_test_util.h"

using namespace smyrf::kernels::cpu;
using kernel_test::both;
using kernel_test::close;
using kernel_test::IsaGuard;
using kernel_test::randn;

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
const float kNaN = std::numeric_limits<float>::quiet_NaN();

// n floats starting one float past a 32-byte boundary, plus a guard float after the end
using Buf = kernel_test::SkewedBuf;

void check_close(const float* got, const float* want, int64_t n, double rel, double abs,
                 const std::string& what) {
  int64_t bad = -1;
  for (int64_t i = 0; i < n && bad < 0; ++i)
    if (!close(got[i], want[i], rel, abs)) bad = i;
  INFO(what << " n=" << n << " first mismatch at " << bad << ": got " << (bad >= 0 ? got[bad] : 0.f)
            << " want " << (bad >= 0 ? want[bad] : 0.f));
  CHECK(bad < 0);
}

// rows x n logits with edge rows: all -inf, half -inf, a NaN, a +inf, huge, tiny, near the exp
// overflow, (for long rows) the first chunk all -inf, and a late outlier
std::vector<float> edge_rows(int64_t rows, int64_t n, uint32_t seed) {
  auto v = randn(static_cast<size_t>(rows * n), seed, 4.f);
  auto row = [&](int64_t r) { return v.data() + (r % rows) * n; };
  for (int64_t i = 0; i < n; ++i) row(1)[i] = -kInf;
  for (int64_t i = 0; i < n; i += 2) row(2)[i] = -kInf;
  row(3)[n / 2] = kNaN;
  row(4)[n / 3] = kInf;
  for (int64_t i = 0; i < n; ++i) row(5)[i] *= 1e30f;
  for (int64_t i = 0; i < n; ++i) row(6)[i] *= 1e-30f;
  for (int64_t i = 0; i < n; ++i) row(7)[i] += 80.f;
  for (int64_t i = 0; i < std::min<int64_t>(n - 1, 20000); ++i) row(8)[i] = -kInf;
  // a late outlier far above the first 8 values (the single-pass guess): the two-pass path
  row(9)[n - 1] = 200.f;
  return v;
}

bool streams(int64_t elems) { return use_streaming_stores(elems * int64_t(sizeof(float))); }

}  // namespace

TEST_CASE("softmax / log_softmax rows on outputs of 16 MiB and more: AVX2 vs scalar") {
  if (!cpu_has_avx2_fma()) return;
  // every shape writes >= 16 MiB, so the short rows and the backward stream (unless
  // SMYRF_STREAMING_STORES=0):
  // 7-wide rows (shorter than the aligned body), odd rows that start at every alignment, rows of
  // several chunks (more than the 16 chunks kept on the stack), the row pipeline of softmax
  // (rows up to avx2::kSoftmaxPipedMax, log_softmax's up to kLogSoftmaxPipedMax) with unaligned
  // rows and edge rows inside it, and rows past both caps (each row with its own scaling pass);
  // rows of 100, 257, 1031 and 4096 take the streamed rows (avx2::kStreamedRowMax)
  struct Shape {
    int64_t rows, n;
  } shapes[] = {{600011, 7},  {1031, 4099}, {14, 300007},
                {4099, 1031}, {1027, 4096}, {10, avx2::kLogSoftmaxPipedMax + 9},
                {41947, 100}, {16411, 257}};
  for (auto [rows, n] : shapes) {
    CAPTURE(rows);
    CAPTURE(n);
    const int64_t N = rows * n;
    REQUIRE((streams(N) || !streaming_stores_enabled()));
    auto v = edge_rows(rows, n, static_cast<uint32_t>(n));
    Buf x(N), yr(N), yv(N), dy(N), dr(N), dv(N);
    std::copy(v.begin(), v.end(), x.p);
    auto g = randn(N, 7, 1.f);
    std::copy(g.begin(), g.end(), dy.p);
    for (bool log : {false, true}) {
      CAPTURE(log);
      both([&](bool vec) { softmax_rows<float>(x.p, vec ? yv.p : yr.p, rows, n, log); });
      check_close(yv.p, yr.p, N, log ? 1e-6 : 3e-6, log ? 1e-5 : 1e-12, "softmax fwd");
      CHECK(yv.guard(N) == 0.f);
      both([&](bool vec) {
        softmax_rows_backward<float>(yr.p, dy.p, vec ? dv.p : dr.p, rows, n, log);
      });
      // rows with NaN / inf (3, 4) are NaN in both; compare the finite ones. y (dy - s) in
      // float cancels where dy ~ s, so the bound is absolute: a few float ulps of dy ~ N(0, 1)
      for (int64_t r = 0; r < std::min<int64_t>(rows, 2000); ++r)
        if (r != 3 && r != 4)
          check_close(dv.p + r * n, dr.p + r * n, n, 2e-5, 1e-6 * std::sqrt(double(n)),
                      "softmax bwd");
      CHECK(dv.guard(N) == 0.f);
    }
  }
}

TEST_CASE("softmax row backward: streamed rows equal plain ones bit for bit, every 64-byte phase") {
  if (!cpu_has_avx2_fma()) return;
  // Streaming covers only the whole lines inside a row (rows::stream_lines, from 48 floats): the
  // head before the first line boundary (0..15 floats, full vectors and a masked part), the
  // streamed lines and the tail, at every offset from a 64-byte boundary; nothing is written
  // outside the row.
  for (int64_t n : {33, 47, 48, 49, 63, 100, 1000}) {
    for (int64_t skew = 0; skew < 16; ++skew) {
      CAPTURE(n);
      CAPTURE(skew);
      std::vector<float> y = randn(n, 3, 0.3f), dy = randn(n, 4);
      for (auto& v : y) v = std::fabs(v);
      std::vector<float> store(2 * (n + 48), -7.f);
      float* base = store.data() + (64 - reinterpret_cast<uintptr_t>(store.data()) % 64) % 64 / 4;
      float* plain = base + 16 + skew;
      float* streamed = base + n + 48 + skew;
      for (bool log : {false, true}) {
        avx2::softmax_row_backward_f32(y.data(), dy.data(), plain, n, log, false);
        avx2::softmax_row_backward_f32(y.data(), dy.data(), streamed, n, log, true);
        streaming_store_fence();
        CHECK(std::equal(plain, plain + n, streamed));
        CHECK(plain[-1] == -7.f);
        CHECK(plain[n] == -7.f);
        CHECK(streamed[-1] == -7.f);
        CHECK(streamed[n] == -7.f);
      }
    }
  }
}

TEST_CASE("softmax / log_softmax rows split between threads: AVX2 vs scalar, edges in one part") {
  if (!cpu_has_avx2_fma()) return;
  // rows of >= 2^17 floats, fewer than two a thread: each row is split into one part per thread
  // (kernels/cpu/split_rows.h) whose statistics combine after a barrier. Edge values sit in one
  // part only, so a part's NaN, +inf, all -inf run or late outlier must reach every part's write
  const int saved = omp_get_max_threads();
  for (int threads : {2, 3, 4}) {
    omp_set_num_threads(threads);
    for (int64_t n : {int64_t{1} << 17, (int64_t{3} << 16) + 3}) {
      const int64_t rows = 6;  // split when rows < 2 x threads: every count here but 2 splits
      CAPTURE(threads);
      CAPTURE(n);
      const int64_t N = rows * n;
      auto v = randn(static_cast<size_t>(N), static_cast<uint32_t>(n + threads), 4.f);
      float* row0 = v.data();
      for (int64_t i = 0; i < 20000; ++i) row0[i] = -kInf;       // part 0's guess is not finite
      row0[n - 1] = 200.f;                                       // the last part's late outlier
      v[1 * n + n - 3] = kNaN;                                   // a NaN in the last part only
      for (int64_t i = 0; i < n / 2; ++i) v[2 * n + i] = -kInf;  // the first half all -inf
      v[3 * n + 5] = kInf;                                       // +inf in the first part
      for (int64_t i = 0; i < n; ++i) v[4 * n + i] = -kInf;      // the whole row -inf
      for (int64_t i = n / 2; i < n; ++i) v[5 * n + i] += 60.f;  // parts with distant maxima
      Buf x(N), yr(N), yv(N), dy(N), dr(N), dv(N);
      std::copy(v.begin(), v.end(), x.p);
      auto g = randn(N, 11, 1.f);
      std::copy(g.begin(), g.end(), dy.p);
      for (bool log : {false, true}) {
        CAPTURE(log);
        both([&](bool vec) { softmax_rows<float>(x.p, vec ? yv.p : yr.p, rows, n, log); });
        check_close(yv.p, yr.p, N, log ? 1e-6 : 3e-6, log ? 1e-5 : 1e-12, "split softmax fwd");
        CHECK(yv.guard(N) == 0.f);
        both([&](bool vec) {
          softmax_rows_backward<float>(yr.p, dy.p, vec ? dv.p : dr.p, rows, n, log);
        });
        for (int64_t r = 0; r < rows; ++r)
          if (r != 1 && r != 3)  // NaN rows: NaN in both (the forward check covers them)
            check_close(dv.p + r * n, dr.p + r * n, n, 2e-5, 1e-6 * std::sqrt(double(n)),
                        "split softmax bwd");
        CHECK(dv.guard(N) == 0.f);
      }
    }
  }
  omp_set_num_threads(saved);
}

TEST_CASE("logsumexp and var of rows split between threads: AVX2 vs scalar, edges in one part") {
  if (!cpu_has_avx2_fma()) return;
  const int saved = omp_get_max_threads();
  for (int threads : {2, 3}) {
    omp_set_num_threads(threads);
    const int64_t n = (int64_t{3} << 16) + 7, rows = 5;  // split: fewer than two rows a thread
    CAPTURE(threads);
    auto v = randn(static_cast<size_t>(rows * n), static_cast<uint32_t>(threads), 4.f);
    for (int64_t i = n / 2; i < n; ++i) v[i] += 60.f;  // parts with distant maxima and means
    v[1 * n + n - 2] = kNaN;                           // NaN in the last part only
    v[2 * n + 3] = kInf;                               // +inf in the first part
    for (int64_t i = 0; i < n; ++i) v[3 * n + i] = -kInf;
    for (int64_t i = 0; i < n / 2; ++i) v[4 * n + i] = -kInf;  // the first half -inf
    std::vector<float> lr(rows), lv(rows);
    both([&](bool vec) { logsumexp_rows<float>(v.data(), vec ? lv.data() : lr.data(), rows, n); });
    for (int64_t r = 0; r < rows; ++r) {
      CAPTURE(r);
      if (std::isnan(lr[r])) {
        CHECK(std::isnan(lv[r]));
      } else if (std::isinf(lr[r])) {
        CHECK(lv[r] == lr[r]);
      } else {
        CHECK(lv[r] == doctest::Approx(lr[r]).epsilon(1e-6));
      }
    }
    // var on finite rows (rows 0 and a shifted copy)
    for (int64_t i = 0; i < n; ++i) v[1 * n + i] = v[i] * 0.5f + 1000.f;
    std::vector<float> vr(2), vv(2);
    both([&](bool vec) { var_rows<float>(v.data(), vec ? vv.data() : vr.data(), 2, n, 1); });
    CHECK(vv[0] == doctest::Approx(vr[0]).epsilon(1e-6));
    CHECK(vv[1] == doctest::Approx(vr[1]).epsilon(1e-6));
  }
  omp_set_num_threads(saved);
}

TEST_CASE("softmax rows: one exp per element keeps the sum at 1 on long rows") {
  if (!cpu_has_avx2_fma()) return;
  IsaGuard g(Isa::Avx2);
  // a long row with a wide spread: chunks with very different maxima must combine exactly
  const int64_t n = 100003;
  std::vector<float> x(n), y(n);
  for (int64_t i = 0; i < n; ++i) x[i] = static_cast<float>((i % 1000) * 0.05 - (i / 20000) * 30);
  softmax_rows<float>(x.data(), y.data(), 1, n, false);
  double s = 0;
  for (float e : y) s += e;
  CHECK(s == doctest::Approx(1.0).epsilon(1e-5));
}

TEST_CASE("cross-entropy rows on large outputs: AVX2 vs scalar, masked logits") {
  if (!cpu_has_avx2_fma()) return;
  struct Shape {
    int64_t rows, C;
  } shapes[] = {{131, 32771}, {6, 700001}, {32771, 131}};  // (131: one LineWriter a thread)
  for (auto [rows, C] : shapes) {
    const int64_t N = rows * C;
    auto v = randn(N, static_cast<uint32_t>(C), 3.f);
    for (int64_t i = 0; i < C; i += 3) v[2 * C + i] = -kInf;  // masked classes
    for (int64_t i = 0; i < C; ++i) v[3 * C + i] += 70.f;
    v[4 * C + 5] = kNaN;
    if (rows > 7) {
      // the single-pass logsumexp's guess (the max of the first 8 logits) fails: a late outlier
      // far above it, and a row whose first 8 logits are -inf (both take the two-pass path)
      v[6 * C + C - 2] = 150.f;
      for (int64_t i = 0; i < 8; ++i) v[7 * C + i] = -kInf;
    }
    Buf x(N), dr(N), dv(N);
    std::copy(v.begin(), v.end(), x.p);
    std::vector<int64_t> t(rows);
    for (int64_t r = 0; r < rows; ++r) t[r] = (r * 7919 + 1) % C;
    t[2] = 1;      // a finite target in the masked row
    t[1] = 0;      // target in the first lane of an unaligned row
    t[0] = C - 1;  // and in the tail
    t[5] = -100;   // ignored
    auto gv = randn(rows, 9, 1.f);
    for (double eps : {0.0, 0.1}) {
      CAPTURE(C);
      CAPTURE(eps);
      std::vector<float> lr(rows), lv(rows), er(rows), ev(rows);
      both([&](bool vec) {
        cross_entropy_rows<float>(x.p, t.data(), vec ? lv.data() : lr.data(),
                                  vec ? ev.data() : er.data(), rows, C, -100, eps);
      });
      check_close(lv.data(), lr.data(), rows, 1e-5, 1e-5, "ce loss");
      check_close(ev.data(), er.data(), rows, 1e-6, 1e-6, "ce lse");
      // without smoothing, masked (-inf) classes leave the loss finite
      if (eps == 0) CHECK(std::isfinite(lr[2]));
      both([&](bool vec) {
        cross_entropy_rows_backward<float>(x.p, t.data(), er.data(), gv.data(), vec ? dv.p : dr.p,
                                           rows, C, -100, eps);
      });
      check_close(dv.p, dr.p, N, 1e-5, 1e-7, "ce dlogits");
      CHECK(dv.guard(N) == 0.f);
      for (int64_t c = 0; c < C; ++c)
        if (dv.p[5 * C + c] != 0.f) FAIL("ignored row not zero at " << c);
    }
  }
}
