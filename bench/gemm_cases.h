// The cases of `smyrf bench gemm` / `gemm-batched` and their --shapes filter
// (bench/gemm_bench.cpp).
//
// --shapes: comma-separated tokens, each a shape as printed ("512x512x512", "4096x64x64x64"),
// optionally with ":TRANS" ("1024x1024x1024:NT"), or one number N meaning the square NxNxN. A
// full "MxNxK:TRANS" (or "BxMxNxK:TRANS" for gemm-batched) that matches no listed case is run as
// given (adhoc_cases), so any shape and transpose can be measured.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace smyrf::bench {

struct GemmCase {
  int64_t batch;  // 1 for a single product
  int64_t m, n, k;
  const char* trans;  // "NN", "NT", "TN" or "TT": a string literal, never owned
};

// "MxNxK", or "BxMxNxK" for a batch
std::string shape_string(const GemmCase& c);

// Whether --shapes (empty: everything) selects the listed case c.
bool selected(const std::string& shapes, const GemmCase& c);

// The tokens of --shapes that name a full shape with a transpose and match none of `listed`,
// as cases (malformed tokens are skipped). Their trans points at a string literal, so the cases
// stay valid however many there are.
std::vector<GemmCase> adhoc_cases(const std::string& shapes, bool batched,
                                  const std::vector<GemmCase>& listed);

}  // namespace smyrf::bench
