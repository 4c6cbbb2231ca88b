// The gradient study on inputs whose answer is known: one cluster is dense attention (cosine 1,
// error 0, full coverage); on clustered data more hash rounds cover more dense mass and give
// smaller gradient errors; the same seed reproduces the same numbers, files included.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/train/grad_study_test_util.h"
#include "train/grad_study.h"
#include "train/grad_study_internal.h"

using namespace smyrf;
using namespace smyrf::train;
using smyrf::grad_study_test::slurp;

namespace {
double mean_whole(const std::vector<HeadMetrics>& ms, const std::string& k) {
  double s = 0;
  for (auto& m : ms) s += m.whole.at(k);
  return s / static_cast<double>(ms.size());
}
double mean_coverage(const std::vector<HeadMetrics>& ms) {
  double s = 0;
  for (auto& m : ms) s += m.coverage.mean;
  return s / static_cast<double>(ms.size());
}
}  // namespace

TEST_CASE("grad study: rows of rounding noise against exact zeros compare as equal") {
  // row 0: exact 0 and float32-sized noise (a causal first token's dq on CUDA); row 1: equal;
  // row 2: exact 0 against a real value
  const std::vector<double> exact = {0, 0, 0, 1, 2, 3, 0, 0, 0};
  const std::vector<double> approx = {1e-9, -2e-9, 0, 1, 2, 3, 0.5, 0, 0};
  std::vector<double> cos, err;
  double ca = 0, ea = 0;
  train::study_detail::compare_rows(approx, exact, 3, cos, err, ca, ea);
  REQUIRE(cos.size() == 3);
  CHECK(cos[0] == 1.0);
  CHECK(err[0] == 0.0);
  CHECK(cos[1] == doctest::Approx(1.0));
  CHECK(err[1] == 0.0);
  CHECK(cos[2] == 0.0);
  CHECK(std::isnan(err[2]));
}

TEST_CASE("grad study: distribution and pearson") {
  const Dist d = distribution({4, 1, 3, 2, 5, std::nan("")});
  CHECK(d.mean == doctest::Approx(3));
  CHECK(d.p50 == doctest::Approx(3));
  CHECK(d.p10 == doctest::Approx(1.4));
  CHECK(d.p90 == doctest::Approx(4.6));
  CHECK(pearson({1, 2, 3}, {2, 4, 6}) == doctest::Approx(1));
  CHECK(pearson({1, 2, 3}, {3, 2, 1}) == doctest::Approx(-1));
  CHECK(pearson({1, 1, 1}, {3, 2, 1}) == 0);
}

TEST_CASE("grad study: one cluster gives the dense gradients exactly") {
  for (const char* kind : {"gaussian", "clustered"}) {
    const StudyInput in = synthetic_input(kind, 48, 8, 2, 0.5, 3);
    StudyConfig c;
    c.n_hashes = 3, c.q_cluster = 48, c.k_cluster = 64, c.n_seeds = 2;
    for (const HeadMetrics& m : measure(in, c)) {
      for (const char* g : {"dq", "dk", "dv", "out"}) {
        CHECK(m.whole.at(std::string("cos_") + g) == doctest::Approx(1).epsilon(1e-12));
        CHECK(m.whole.at(std::string("err_") + g) < 1e-12);
        CHECK(m.token.at(std::string("err_") + g).p90 < 1e-12);
      }
      CHECK(m.coverage.p10 == doctest::Approx(1).epsilon(1e-12));
      CHECK(m.keys_no_grad == 0);
      CHECK(m.bias_err < 1e-12);
      CHECK(m.variance < 1e-20);
      REQUIRE(m.mult_hist.size() == 4);
      CHECK(m.mult_hist[3] == 1);  // every pair shares the one cluster in all 3 rounds
    }
  }
}

TEST_CASE("grad study: more hash rounds on clustered data raise coverage and lower the error") {
  const StudyInput in = synthetic_input("clustered", 128, 16, 2, 1.0, 7);
  double prev_cov = 0, prev_err = 1e9;
  for (int64_t h : {1, 2, 4, 8}) {
    StudyConfig c;
    c.n_hashes = h, c.q_cluster = 16, c.k_cluster = 16, c.n_seeds = 3, c.seed = 11;
    const auto ms = measure(in, c);
    const double cov = mean_coverage(ms), err = mean_whole(ms, "err_dq");
    CAPTURE(h);
    CHECK(cov > prev_cov);
    CHECK(err < prev_err);
    CHECK(ms[0].mult_hist.size() == static_cast<size_t>(h + 1));
    prev_cov = cov, prev_err = err;
  }
}

TEST_CASE("grad study: causal inputs and rejected configurations") {
  StudyInput in = synthetic_input("gaussian", 32, 8, 1, 1.0, 2);
  in.causal = true;
  StudyConfig c;
  c.n_hashes = 2, c.q_cluster = 8, c.k_cluster = 8;
  const auto ms = measure(in, c);
  REQUIRE(ms.size() == 1);
  CHECK(ms[0].coverage.mean > 0);
  CHECK(ms[0].coverage.mean <= 1 + 1e-12);
  in.causal = false;
  c.q_cluster = 8, c.k_cluster = 5;  // 4 query chunks, 7 key chunks
  CHECK_THROWS_WITH_AS(measure(in, c), doctest::Contains("grad_study"), Error);
  CHECK_THROWS_AS(synthetic_input("uniform", 8, 8, 1, 1, 1), Error);
}

TEST_CASE("grad study: the same seed reproduces the same numbers and files") {
  namespace fs = std::filesystem;
  StudyOptions o = grad_study_test::small_study_options();
  const fs::path base = fs::temp_directory_path() / "smyrf_test_grad_study";
  fs::remove_all(base);
  o.out = (base / "a").string();
  const StudyResult a = run_grad_study(o);
  o.out = (base / "b").string();
  const StudyResult b = run_grad_study(o);
  REQUIRE(!a.rows.empty());
  REQUIRE(a.rows.size() == b.rows.size());
  for (size_t i = 0; i < a.rows.size(); ++i) CHECK(a.rows[i].value == b.rows[i].value);
  CHECK(slurp((base / "a" / "measurements.csv").string()) ==
        slurp((base / "b" / "measurements.csv").string()));
  const std::string report = slurp((base / "a" / "report.md").string());
  CHECK(report.find("Budget 0.25") != std::string::npos);
  for (const char* f :
       {"error_vs_budget.png", "cosine_vs_coverage.png", "bias_variance_vs_seeds.png"})
    CHECK(fs::file_size(base / "a" / f) > 100);
  o.seed = 2;
  o.out = (base / "c").string();
  const StudyResult c = run_grad_study(o);
  bool differs = false;
  for (size_t i = 0; i < c.rows.size() && i < a.rows.size(); ++i)
    differs |= c.rows[i].value != a.rows[i].value;
  CHECK(differs);
  fs::remove_all(base);
}

TEST_CASE("grad study: multiplicity and coverage from cluster ids match the op's diagnostics") {
  // the CUDA study's host-side diagnostics, checked here against the CPU op's own
  for (int64_t nq : {40, 56}) {
    const int64_t nk = 56, d = 8, R = 3;
    Generator g(static_cast<uint64_t>(nq));
    const Tensor q = randn({1, 1, nq, d}, kFloat64, &g), k = randn({1, 1, nk, d}, kFloat64, &g),
                 v = randn({1, 1, nk, d}, kFloat64, &g);
    SmyrfOptions o;
    o.n_hashes = R, o.q_cluster_size = nq / 4, o.k_cluster_size = nk / 4, o.seed = 3;
    o.scale = 0.7;
    SmyrfDiagnostics dg;
    dg.want_clusters = dg.want_multiplicity = dg.want_coverage = true;
    o.diagnostics = &dg;
    smyrf_attention(q, k, v, o);
    std::vector<int32_t> M;
    std::vector<double> cov;
    diagnostics_from_clusters(q.to_vector<double>(), k.to_vector<double>(), nq, nk, d, 0.7,
                              dg.q_cluster.to_vector<int32_t>(), dg.k_cluster.to_vector<int32_t>(),
                              R, M, cov);
    CHECK(M == dg.multiplicity.to_vector<int32_t>());
    const std::vector<double> want = dg.coverage.to_vector<double>();
    REQUIRE(cov.size() == want.size());
    double worst = 0, lo = 1;
    for (size_t i = 0; i < cov.size(); ++i)
      worst = std::max(worst, std::abs(cov[i] - want[i])), lo = std::min(lo, want[i]);
    CHECK(worst < 1e-12);
    CHECK(lo < 1);  // some queries miss dense mass: the comparison is not of all-ones
  }
}
