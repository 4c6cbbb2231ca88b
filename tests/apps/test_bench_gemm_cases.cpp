// The --shapes filter of `smyrf bench gemm` / `gemm-batched` (bench/gemm_cases.h).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "bench/gemm_cases.h"

using smyrf::bench::adhoc_cases;
using smyrf::bench::GemmCase;
using smyrf::bench::selected;
using smyrf::bench::shape_string;

TEST_CASE("gemm bench: ad-hoc shapes keep their transposes, however many are given") {
  // Regression: the cases once pointed into strings held by a growing std::vector, so with
  // several ad-hoc tokens the earlier cases' transposes dangled (printed as garbage, measured
  // as whatever the bytes said).
  const std::vector<GemmCase> listed = {{1, 128, 128, 128, "NN"}};
  const std::string shapes =
      "1x4096x4096:NN,4096x1x4096:NT,7x5x3:TN,9x4x2:TT,6x6x6:NT,5x3x2:TN,128x128x128:NN,"
      "11x12x13:TT,2x3:NN,4x4x4:XY,8x8x8";
  const std::vector<GemmCase> got = adhoc_cases(shapes, false, listed);
  const std::vector<std::pair<std::string, std::string>> want = {
      {"1x4096x4096", "NN"}, {"4096x1x4096", "NT"}, {"7x5x3", "TN"},   {"9x4x2", "TT"},
      {"6x6x6", "NT"},       {"5x3x2", "TN"},       {"11x12x13", "TT"}};
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    CAPTURE(i);
    CHECK(shape_string(got[i]) == want[i].first);
    CHECK(std::string(got[i].trans) == want[i].second);
    CHECK(got[i].batch == 1);
  }
}

TEST_CASE("gemm-batched bench: ad-hoc batches need a batch above 1") {
  const std::vector<GemmCase> got =
      adhoc_cases("16x8x8x8:NT,1x8x8x8:NN,8x8x8:NN,32x4x4x4:TT", true, {});
  REQUIRE(got.size() == 2);
  CHECK(shape_string(got[0]) == "16x8x8x8");
  CHECK(std::string(got[0].trans) == "NT");
  CHECK(std::string(got[1].trans) == "TT");
}

TEST_CASE("gemm bench: --shapes selects listed cases by shape, transpose or square size") {
  const GemmCase c{1, 512, 512, 512, "NT"};
  CHECK(selected("", c));
  CHECK(selected("512", c));
  CHECK(selected("100,512x512x512:NT", c));
  CHECK_FALSE(selected("512x512x512:NN", c));
  CHECK_FALSE(selected("256", c));
}
