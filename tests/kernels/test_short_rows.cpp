// The short-row kernels (kernels/cpu/short_rows_avx2.h: rows up to each op's cap,
// eight to a block, blocks in groups) against the scalar reference: every row length up to the
// cap and just past it, row counts that leave partial groups and tail rows, edge rows that make
// a block decline (all -inf, +inf) or propagate (NaN, masked -inf entries, huge and tiny values),
// aligned and unaligned buffers, and outputs large enough for streaming stores.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/norm.h"
#include "kernels/cpu/short_rows_avx2.h"
#include "kernels/cpu/softmax.h"
#include "kernels/cpu/streaming_store.h"
#include "tests/kernels/kernel_test_util.h"

using namespace smyrf::kernels::cpu;
using kernel_test::both;
using kernel_test::close;
using kernel_test::randn;

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
const float kNaN = std::numeric_limits<float>::quiet_NaN();

using Buf = kernel_test::SkewedBuf;

// the first mismatch of got against want, or -1
int64_t mismatch(const float* got, const float* want, int64_t n, double rel, double abs) {
  for (int64_t i = 0; i < n; ++i)
    if (!close(got[i], want[i], rel, abs)) return i;
  return -1;
}

#define CHECK_ROWS(got, want, count, rel, abs, what)                                          \
  do {                                                                                        \
    const int64_t bad_ = mismatch(got, want, count, rel, abs);                                \
    INFO(what << ": first mismatch at " << bad_ << " got " << (bad_ >= 0 ? (got)[bad_] : 0.f) \
              << " want " << (bad_ >= 0 ? (want)[bad_] : 0.f));                               \
    CHECK(bad_ < 0);                                                                          \
  } while (0)

// rows x n values ~ N(0, 4^2) with edge rows spread over the blocks: all -inf (block 1: the
// block is declined), half -inf (block 2: finite max, masked entries), a NaN (block 3), a +inf
// (block 4: declined), huge (block 5), tiny (block 6), near the float exp overflow (block 7),
// and one row far above the others of its block (block 8)
std::vector<float> edge_rows(int64_t rows, int64_t n, uint32_t seed) {
  auto v = randn(static_cast<size_t>(rows * n), seed, 4.f);
  auto row = [&](int64_t r) -> float* { return r < rows ? v.data() + r * n : nullptr; };
  if (float* r = row(8 + 3))
    for (int64_t i = 0; i < n; ++i) r[i] = -kInf;
  if (float* r = row(16 + 5))
    for (int64_t i = 0; i < n; i += 2) r[i] = -kInf;
  if (float* r = row(24 + 7)) r[n / 2] = kNaN;
  if (float* r = row(32)) r[n - 1] = kInf;
  if (float* r = row(40 + 1))
    for (int64_t i = 0; i < n; ++i) r[i] *= 1e30f;
  if (float* r = row(48 + 2))
    for (int64_t i = 0; i < n; ++i) r[i] *= 1e-30f;
  if (float* r = row(56 + 6))
    for (int64_t i = 0; i < n; ++i) r[i] += 85.f;
  if (float* r = row(64 + 4))
    for (int64_t i = 0; i < n; ++i) r[i] += 1000.f;
  return v;
}

// softmax / log_softmax forward and backward of rows x n, AVX2 against scalar
void check_softmax(int64_t rows, int64_t n, size_t skew) {
  const int64_t N = rows * n;
  const auto v = edge_rows(rows, n, static_cast<uint32_t>(7 * n + rows));
  const auto g = randn(static_cast<size_t>(N), static_cast<uint32_t>(n), 1.f);
  Buf x(N, skew), dy(N, skew), yr(N, skew), yv(N, skew), dr(N, skew), dv(N, skew);
  std::copy(v.begin(), v.end(), x.p);
  std::copy(g.begin(), g.end(), dy.p);
  for (bool log : {false, true}) {
    CAPTURE(log);
    both([&](bool vec) { softmax_rows<float>(x.p, vec ? yv.p : yr.p, rows, n, log); });
    CHECK_ROWS(yv.p, yr.p, N, log ? 1e-6 : 2e-6, log ? 1e-5 : 1e-12, "softmax fwd");
    CHECK(yv.p[N] == 0.f);
    both([&](bool vec) {
      softmax_rows_backward<float>(yr.p, dy.p, vec ? dv.p : dr.p, rows, n, log);
    });
    // y (dy - s) in float cancels where dy ~ s: an absolute bound of a few ulps of dy ~ N(0, 1)
    CHECK_ROWS(dv.p, dr.p, N, 2e-5, 1e-6 * std::sqrt(double(n)), "softmax bwd");
    CHECK(dv.p[N] == 0.f);
  }
}

// cross-entropy forward and backward of rows x C, AVX2 against scalar, with and without label
// smoothing, ignored rows, targets in the first and last column and a confident row. `ignore`:
// the ignore_index (-100; 2^32 + 1, whose low half is class 1; 0, a class that is then ignored)
void check_cross_entropy(int64_t rows, int64_t C, size_t skew, int64_t ignore = -100) {
  const int64_t N = rows * C;
  auto v = edge_rows(rows, C, static_cast<uint32_t>(11 * C + rows));
  std::vector<int64_t> t(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) t[r] = (r * 7919 + 3) % C;
  for (int64_t r = 0; r < rows; r += 13) t[r] = ignore;  // ignored, one every few blocks
  if (rows > 2) t[1] = 0, t[2] = C - 1;
  if (rows > 16 + 5) t[16 + 5] = 1 % C;  // the half -inf row: a finite target
  // a confident row: p(target) near 1, where the backward's p - 1 must not cancel
  if (rows > 70 && C > 1) {
    for (int64_t c = 0; c < C; ++c) v[70 * C + c] = 0.f;
    v[70 * C + t[70]] = 6.f;
  }
  // rows for the one-pass sums of wide rows (short_rows_avx2.cpp, one_pass_exp_sums): the first 8
  // logits masked (no finite guess: the staged path, or a declined block past kShortRowMax), a
  // late outlier 30 above the rest (the guess raised, the sum rescaled), and one that is the
  // target
  if (rows > 90 && C > 8) {
    for (int64_t c = 0; c < 8; ++c) v[75 * C + c] = -kInf;
    v[83 * C + C - 1] += 30.f;
    v[90 * C + C - 1] += 30.f;
    t[90] = C - 1;
  }
  const auto gv = randn(static_cast<size_t>(rows), 9, 1.f);
  Buf x(N, skew), dr(N, skew), dv(N, skew);
  std::copy(v.begin(), v.end(), x.p);
  for (double eps : {0.0, 0.1}) {
    CAPTURE(eps);
    std::vector<float> lr(rows), lv(rows), er(rows), ev(rows);
    both([&](bool vec) {
      cross_entropy_rows<float>(x.p, t.data(), vec ? lv.data() : lr.data(),
                                vec ? ev.data() : er.data(), rows, C, ignore, eps);
    });
    CHECK_ROWS(lv.data(), lr.data(), rows, 1e-5, 1e-5, "ce loss");
    CHECK_ROWS(ev.data(), er.data(), rows, 1e-6, 1e-6, "ce lse");
    for (int64_t r = 0; r < rows; ++r)
      if (t[r] == ignore && lv[r] != 0.f) FAIL("ignored row " << r << " has loss " << lv[r]);
    both([&](bool vec) {
      cross_entropy_rows_backward<float>(x.p, t.data(), er.data(), gv.data(), vec ? dv.p : dr.p,
                                         rows, C, ignore, eps);
    });
    CHECK_ROWS(dv.p, dr.p, N, 1e-5, 1e-7, "ce dlogits");
    CHECK(dv.p[N] == 0.f);
    // the target entries, relatively (the absolute bound above would hide a cancelled p - 1);
    // with smoothing p - (1 - eps) cancels in float where p ~ 1 - eps, so there a few float
    // ulps of eps bound it
    for (int64_t r = 0; r < rows; ++r) {
      if (t[r] == ignore) {
        for (int64_t c = 0; c < C; ++c)
          if (dv.p[r * C + c] != 0.f) FAIL("ignored row " << r << " not zero at " << c);
        continue;
      }
      const float got = dv.p[r * C + t[r]], want = dr.p[r * C + t[r]];
      if (!close(got, want, 2e-5, eps != 0 ? 3e-8 * std::fabs(gv[r]) : 1e-12))
        FAIL("row " << r << " target: " << got << " vs " << want);
    }
  }
}

}  // namespace

TEST_CASE("short rows: softmax and log_softmax blocks against the scalar reference") {
  if (!cpu_has_avx2_fma()) return;
  // 141 rows: two whole groups of blocks, a partial one and 5 rows past the last block
  // (past the forward blocks' cap the row kernels, whose log_softmax at |x| ~ 1000 must keep
  // x - max exact; past the backward's, the block-written rows with n % 8 != 0)
  for (int64_t n = 1; n <= avx2::kShortRowBackwardWriteMax + 1; ++n) {
    CAPTURE(n);
    for (int64_t rows : {int64_t(141), int64_t(8), int64_t(7)}) {
      CAPTURE(rows);
      check_softmax(rows, n, 1);
    }
    check_softmax(141, n, 0);
  }
}

TEST_CASE("short rows: cross-entropy blocks against the scalar reference") {
  if (!cpu_has_avx2_fma()) return;
  for (int64_t C = 1; C <= avx2::kShortRowCrossEntropyMax + 1; ++C) {
    CAPTURE(C);
    for (int64_t rows : {int64_t(141), int64_t(8), int64_t(7)}) {
      CAPTURE(rows);
      check_cross_entropy(rows, C, 1);
    }
    check_cross_entropy(141, C, 0);
    // the ignore_index compared as the 64-bit value it is, also where it is a valid class
    check_cross_entropy(141, C, 1, (int64_t{1} << 32) + 1);
    check_cross_entropy(141, C, 1, 0);
  }
}

TEST_CASE("short rows: outputs large enough for streaming stores, aligned and not") {
  if (!cpu_has_avx2_fma()) return;
  // >= 16 MiB of output: the block kernels stream when the output is 32-byte aligned (n = 4:
  // the in-register path of rows of 1, 2, 4 and 8; n = 100: the backward's block-written rows)
  for (int64_t n : {int64_t(4), int64_t(10), int64_t(16), int64_t(100)}) {
    const int64_t rows = (kStreamingStoreMinBytes / 4) / n + 11;
    CAPTURE(n);
    for (size_t skew : {size_t(0), size_t(1)}) {
      CAPTURE(skew);
      check_softmax(rows, n, skew);
      check_cross_entropy(rows, n, skew);
    }
  }
}

TEST_CASE("logsumexp rows: short-row blocks and row kernels against the scalar reference") {
  if (!cpu_has_avx2_fma()) return;
  // all -inf rows give -inf, +inf rows +inf, NaN rows NaN (raw::logsumexp's semantics): the
  // block kernel declines the first two, and rows the row kernel leaves NaN are redone exactly
  for (int64_t n : {1, 7, 16, 33, 48, 61, 64, 65, 100, 129, 256, 257, 1000, 5000}) {
    for (int64_t rows : {int64_t(141), int64_t(9)}) {
      CAPTURE(n);
      CAPTURE(rows);
      const auto v = edge_rows(rows, n, static_cast<uint32_t>(3 * n + rows));
      Buf x(rows * n, 1);
      std::copy(v.begin(), v.end(), x.p);
      std::vector<float> yr(rows + 1, 5.f), yv(rows + 1, 5.f);
      both([&](bool vec) { logsumexp_rows<float>(x.p, vec ? yv.data() : yr.data(), rows, n); });
      CHECK_ROWS(yv.data(), yr.data(), rows + 1, 1e-6, 1e-6, "logsumexp");
      if (rows > 8 + 3) CHECK(yr[8 + 3] == -kInf);  // the all -inf row
      if (rows > 32) CHECK(yr[32] == kInf);         // the +inf row
      if (rows > 24 + 7) CHECK(std::isnan(yr[24 + 7]));
    }
  }
}

TEST_CASE("var rows: short-row blocks and the row kernel's moments against the scalar reference") {
  if (!cpu_has_avx2_fma()) return;
  // edge_rows' rows: an offset of 1000 (block 8), huge (block 5) and tiny (block 6) values,
  // -inf / +inf / NaN rows (NaN results); plus a constant row, and correction 0, 1 and n (a
  // zero divisor: inf, or NaN where the sum of squares is 0)
  for (int64_t n : {1, 2, 7, 16, 33, 64, 65, 1000, 5000}) {
    for (int64_t rows : {int64_t(141), int64_t(9)}) {
      auto v = edge_rows(rows, n, static_cast<uint32_t>(5 * n + rows));
      for (int64_t i = 0; i < n; ++i) v[0 * n + i] = 2.5f;  // constant row
      Buf x(rows * n, 1);
      std::copy(v.begin(), v.end(), x.p);
      for (int64_t correction : {int64_t(0), int64_t(1), n}) {
        CAPTURE(n);
        CAPTURE(rows);
        CAPTURE(correction);
        std::vector<float> yr(rows + 1, 5.f), yv(rows + 1, 5.f);
        both([&](bool vec) {
          var_rows<float>(x.p, vec ? yv.data() : yr.data(), rows, n, correction);
        });
        if (correction == n) {  // a zero divisor: inf or NaN in both (the tiny row's squares
          // underflow to 0 in float lanes, 0 * inf = NaN, where the double reference has inf)
          for (int64_t r = 0; r < rows; ++r)
            if (std::isfinite(yv[r]) || std::isfinite(yr[r]))
              FAIL("row " << r << ": " << yv[r] << " vs " << yr[r]);
          continue;
        }
        // float moments of rows of 1e30 x N(0, 16) values: relative error of a few float ulps
        CHECK_ROWS(yv.data(), yr.data(), rows + 1, 2e-5, 1e-30, "var");
      }
    }
  }
}
