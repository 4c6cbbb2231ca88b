// SMYRF_CPU=scalar against the default path: a set of float32 ops run once under the scalar
// reference kernels and once under AVX2 in the same process, compared element by element.
#include <doctest/doctest.h>

#include <map>

#include "core/random.h"
#include "core_test_util.h"

using namespace smyrf;
using namespace smyrf::test;
using kernels::cpu::Isa;

namespace {
// Every op's result on fixed inputs (odd sizes, a transposed view, a broadcast operand).
std::map<std::string, Tensor> run_ops() {
  Generator g(77);
  Tensor x = randn({7, 33}, kFloat32, &g);
  Tensor y = randn({33, 7}, kFloat32, &g).t();  // (7, 33), transposed
  Tensor row = randn({33}, kFloat32, &g);
  Tensor pos = rand({7, 33}, kFloat32, &g) + 0.1;
  Tensor big = randn({1000, 33}, kFloat32, &g);  // long enough for the vector main loops
  Tensor w = randn({33}, kFloat32, &g), b = randn({33}, kFloat32, &g);
  Tensor target = randint(0, 33, {1000}, kInt64, &g);
  Tensor m = randn({33, 65}, kFloat32, &g);
  std::map<std::string, Tensor> r;
  r["exp"] = exp(big);
  r["log"] = log(pos);
  r["sqrt"] = sqrt(pos);
  r["rsqrt"] = rsqrt(pos);
  r["tanh"] = tanh(big);
  r["sigmoid"] = sigmoid(big);
  r["gelu"] = gelu(big);
  r["silu"] = silu(big);
  r["relu"] = relu(y);
  r["abs"] = abs(y);
  r["neg"] = neg(y);
  r["add"] = x + y;
  r["sub"] = x - row;
  r["mul"] = y * row;
  r["div"] = x / pos;
  r["maximum"] = maximum(x, y);
  r["minimum"] = minimum(big, row);
  r["sum_rows"] = sum(big, {1});
  r["sum_cols"] = sum(big, {0});
  r["sum_all"] = sum(big);
  r["amax"] = amax(big, {1});
  r["amin_cols"] = amin(big, {0});
  r["mean_t"] = mean(y, {0});
  r["softmax"] = softmax(big, 1);
  r["softmax_dim0"] = softmax(x, 0);
  r["log_softmax"] = log_softmax(big, -1);
  r["layer_norm"] = layer_norm(big, {33}, w, b);
  r["layer_norm_plain"] = layer_norm(y, {33});
  r["cross_entropy"] = cross_entropy(big, target, -100, 0.0, Reduction::None);
  r["cross_entropy_smooth"] = cross_entropy(big, target, 3, 0.1, Reduction::None);
  r["matmul"] = matmul(x, m);
  r["matmul_t"] = matmul(big.slice(0, 0, 65), y.t());
  return r;
}
}  // namespace

TEST_CASE("float32 ops agree between the scalar reference and AVX2") {
  if (!kernels::cpu::cpu_has_avx2_fma()) {
    MESSAGE("no AVX2+FMA on this machine or build: nothing to compare");
    return;
  }
  std::map<std::string, Tensor> scalar, avx2;
  {
    IsaGuard guard(Isa::Scalar);
    REQUIRE(kernels::cpu::active_isa() == Isa::Scalar);
    scalar = run_ops();
  }
  const Isa before = kernels::cpu::active_isa();
  {
    IsaGuard guard(Isa::Avx2);
    REQUIRE(kernels::cpu::active_isa() == Isa::Avx2);
    avx2 = run_ops();
  }
  CHECK(kernels::cpu::active_isa() == before);  // the guard restored the previous variant
  REQUIRE(scalar.size() == avx2.size());
  for (const auto& [name, s] : scalar) {
    CAPTURE(name);
    const Tensor& a = avx2.at(name);
    CHECK(a.shape() == s.shape());
    CHECK(a.dtype() == s.dtype());
    // vectorised transcendental approximations and re-associated sums: a few ulp apart
    check_values(a, s.shape(), s.to_vector<double>(), 1e-5, 1e-5);
  }
}

TEST_CASE("set_active_isa returns the previous variant") {
  const Isa start = kernels::cpu::active_isa();
  const Isa prev = kernels::cpu::set_active_isa(Isa::Scalar);
  CHECK(prev == start);
  CHECK(kernels::cpu::active_isa() == Isa::Scalar);
  CHECK(std::string(kernels::cpu::isa_name(Isa::Scalar)) == "scalar");
  kernels::cpu::set_active_isa(start);
  CHECK(kernels::cpu::active_isa() == start);
}
