// softmax_cols (kernels/cpu/softmax_cols.h): softmax / log_softmax down the columns of a
// contiguous (outer, n, inner) buffer, forward and backward. The scalar path must equal the row
// kernels' reference on the transposed data bit for bit (same formulas per column, in double),
// and the AVX2 blocks must stay within the row kernels' tolerances of it, edge columns included.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/softmax.h"
#include "kernels/cpu/softmax_cols.h"
#include "tests/kernels/kernel_test_util.h"

using namespace smyrf::kernels::cpu;
using kernel_test::close;
using kernel_test::IsaGuard;
using kernel_test::randn;

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
const float kNaN = std::numeric_limits<float>::quiet_NaN();

struct Dims {
  int64_t outer, n, inner;
  int64_t size() const { return outer * n * inner; }
};

// (outer, n, inner) -> (outer, inner, n), or back with `back`
std::vector<float> swap_inner(const std::vector<float>& v, const Dims& d, bool back = false) {
  std::vector<float> t(v.size());
  for (int64_t o = 0; o < d.outer; ++o)
    for (int64_t r = 0; r < d.n; ++r)
      for (int64_t j = 0; j < d.inner; ++j) {
        const int64_t cols = (o * d.n + r) * d.inner + j, rows = (o * d.inner + j) * d.n + r;
        t[back ? cols : rows] = v[back ? rows : cols];
      }
  return t;
}

// random columns with edge columns: all -inf, half -inf, a NaN, a +inf, huge, near the exp
// overflow, and one -inf entry
std::vector<float> edge_columns(const Dims& d, uint32_t seed) {
  auto v = randn(static_cast<size_t>(d.size()), seed, 4.f);
  auto at = [&](int64_t r, int64_t j) -> float& { return v[r * d.inner + j % d.inner]; };
  for (int64_t r = 0; r < d.n; ++r) {
    at(r, 1) = -kInf;
    if (r % 2 == 0) at(r, 2) = -kInf;
    at(r, 5) *= 1e30f;
    at(r, 6) += 80.f;
  }
  at(d.n / 2, 3) = kNaN;
  at(d.n / 3, 4) = kInf;
  at(d.n - 1, 7) = -kInf;
  // past the first block of 2048 columns (wrapped onto the ones above in narrower data), in
  // blocks of their own: a NaN after finite entries, +inf first entries in a full vector and in
  // the tail
  at(d.n / 2, 2064) = kNaN;
  at(0, 4100) = kInf;
  at(0, d.inner - 1) = kInf;
  return v;
}

int64_t first_bad(const std::vector<float>& got, const std::vector<float>& want, double rel,
                  double abs) {
  for (size_t i = 0; i < got.size(); ++i)
    if (rel < 0 ? !(got[i] == want[i] || (std::isnan(got[i]) && std::isnan(want[i])))
                : !close(got[i], want[i], rel, abs))
      return static_cast<int64_t>(i);
  return -1;
}

// The AVX2 columns (forward, and backward from the reference output) against the row kernels'
// scalar reference on the transposed data, softmax and log_softmax.
void check_avx2_against_rows(const std::vector<float>& x, const std::vector<float>& dy,
                             const Dims& d) {
  for (bool log : {false, true}) {
    CAPTURE(log);
    std::vector<float> yt(x.size()), dxt(x.size());
    {
      IsaGuard g(Isa::Scalar);
      const auto xt = swap_inner(x, d), dyt = swap_inner(dy, d);
      softmax_rows<float>(xt.data(), yt.data(), d.outer * d.inner, d.n, log);
      softmax_rows_backward<float>(yt.data(), dyt.data(), dxt.data(), d.outer * d.inner, d.n, log);
    }
    const auto y_ref = swap_inner(yt, d, true), dx_ref = swap_inner(dxt, d, true);
    IsaGuard g(Isa::Avx2);
    std::vector<float> y(x.size(), 3.f), dx(x.size(), 3.f);
    softmax_cols<float>(x.data(), y.data(), d.outer, d.n, d.inner, log);
    CHECK(first_bad(y, y_ref, log ? 1e-6 : 3e-6, log ? 1e-5 : 1e-12) == -1);
    softmax_cols_backward<float>(y_ref.data(), dy.data(), dx.data(), d.outer, d.n, d.inner, log);
    CHECK(first_bad(dx, dx_ref, 2e-5, 1e-6 * std::sqrt(double(d.n))) == -1);
  }
}

}  // namespace

TEST_CASE("softmax over columns: scalar equals the row reference, AVX2 within its tolerance") {
  // inner 8 .. 6200 (one block, a vector tail, more than one block of 2048, narrowed blocks);
  // n 1 .. 600 (the float partial sums fold into double every 256 rows)
  const Dims dims[] = {{1, 1, 8},     {1, 3, 9},    {2, 257, 13},   {3, 5, 100}, {1, 600, 31},
                       {1, 40, 2049}, {2, 7, 4100}, {1, 300, 2048}, {1, 5, 6200}};
  for (const Dims& d : dims) {
    CAPTURE(d.outer);
    CAPTURE(d.n);
    CAPTURE(d.inner);
    const auto x = edge_columns(d, static_cast<uint32_t>(d.n * 31 + d.inner));
    const auto dy = randn(static_cast<size_t>(d.size()), 77, 1.f);
    const int64_t rows = d.outer * d.inner;
    for (bool log : {false, true}) {
      CAPTURE(log);
      // the reference: the row kernels' scalar path on the transposed data
      std::vector<float> yt(x.size()), dxt(x.size());
      {
        IsaGuard g(Isa::Scalar);
        const auto xt = swap_inner(x, d);
        softmax_rows<float>(xt.data(), yt.data(), rows, d.n, log);
        const auto dyt = swap_inner(dy, d);
        softmax_rows_backward<float>(yt.data(), dyt.data(), dxt.data(), rows, d.n, log);
      }
      const auto y_ref = swap_inner(yt, d, true), dx_ref = swap_inner(dxt, d, true);
      for (Isa isa : {Isa::Scalar, Isa::Avx2}) {
        if (isa == Isa::Avx2 && !cpu_has_avx2_fma()) continue;
        IsaGuard g(isa);
        CAPTURE(static_cast<int>(isa));
        const bool exact = isa == Isa::Scalar;
        std::vector<float> y(x.size(), 3.f), dx(x.size(), 3.f);
        softmax_cols<float>(x.data(), y.data(), d.outer, d.n, d.inner, log);
        CHECK(first_bad(y, y_ref, exact ? -1 : (log ? 1e-6 : 3e-6), log ? 1e-5 : 1e-12) == -1);
        // the backward from the reference output (rows with NaN / inf give NaN in both)
        softmax_cols_backward<float>(y_ref.data(), dy.data(), dx.data(), d.outer, d.n, d.inner,
                                     log);
        CHECK(first_bad(dx, dx_ref, exact ? -1 : 2e-5, 1e-6 * std::sqrt(double(d.n))) == -1);
      }
    }
  }
}

TEST_CASE("softmax over columns in double: the reference path, equal to the rows") {
  const Dims d{2, 33, 17};
  auto xf = randn(static_cast<size_t>(d.size()), 5, 3.f);
  std::vector<double> x(xf.begin(), xf.end()), xt(x.size()), y(x.size()), yt(x.size());
  for (int64_t o = 0; o < d.outer; ++o)
    for (int64_t r = 0; r < d.n; ++r)
      for (int64_t j = 0; j < d.inner; ++j)
        xt[(o * d.inner + j) * d.n + r] = x[(o * d.n + r) * d.inner + j];
  softmax_cols<double>(x.data(), y.data(), d.outer, d.n, d.inner, false);
  softmax_rows<double>(xt.data(), yt.data(), d.outer * d.inner, d.n, false);
  for (int64_t o = 0; o < d.outer; ++o)
    for (int64_t r = 0; r < d.n; ++r)
      for (int64_t j = 0; j < d.inner; ++j)
        CHECK(y[(o * d.n + r) * d.inner + j] == yt[(o * d.inner + j) * d.n + r]);
}

TEST_CASE("softmax over columns of one slab of finite data, and a guess that fails late") {
  // one (n, inner) slab without edge columns: the single-read statistics about each column's
  // first entry stand for every block, and the writes run along whole rows split between the
  // threads; a late outlier 100 above a column's first entry fails the guess in its block (the
  // max-first pass). Against the row kernels' reference on the transposed data.
  if (!cpu_has_avx2_fma()) return;
  // (4, 30, 301): slabs written from cache right after their statistics (softmax keeps its exps
  // in y there), one of them with an outlier that fails the guess
  const Dims dims[] = {{1, 777, 1000}, {1, 4096, 64}, {1, 9, 4100}, {1, 500, 300}, {4, 30, 301}};
  for (const Dims& d : dims) {
    CAPTURE(d.n);
    CAPTURE(d.inner);
    auto x = randn(static_cast<size_t>(d.size()), static_cast<uint32_t>(d.inner), 3.f);
    if (d.inner == 300) x[400 * 300 + 5] = 100.f;
    if (d.inner == 301) x[(30 + 20) * 301 + 7] = 100.f;  // the second slab, row 20
    check_avx2_against_rows(x, randn(static_cast<size_t>(d.size()), 78, 1.f), d);
  }
}

TEST_CASE(
    "softmax over short columns: one edge column in finite data takes its block's reference") {
  // columns of n <= 8 run whole in registers (softmax_cols_short_f32); a single NaN in a middle
  // row (which max_ps drops from the max: only the sum shows it), a +inf, or a column of -inf
  // must hand the block to the reference, and the other blocks must still be right.
  if (!cpu_has_avx2_fma()) return;
  struct Edge {
    const char* what;
    float v;
    bool whole_column;
  };
  const Edge edges[] = {{"NaN", kNaN, false}, {"+inf", kInf, false}, {"-inf column", -kInf, true}};
  for (const Dims& d : {Dims{1, 6, 4100}, Dims{3, 8, 37}, Dims{2, 2, 2051}, Dims{1, 4, 19}}) {
    for (const Edge& e : edges) {
      CAPTURE(d.n);
      CAPTURE(d.inner);
      CAPTURE(e.what);
      auto x = randn(static_cast<size_t>(d.size()), static_cast<uint32_t>(d.n + d.inner), 3.f);
      const int64_t col = d.inner - 3, slab = (d.outer - 1) * d.n * d.inner;
      for (int64_t r = 0; r < d.n; ++r)
        if (e.whole_column || r == d.n / 2) x[slab + r * d.inner + col] = e.v;
      check_avx2_against_rows(x, randn(static_cast<size_t>(d.size()), 79, 1.f), d);
    }
  }
}
