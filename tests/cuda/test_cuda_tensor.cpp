// CUDA device tensors against the CPU. Runs only on a machine with a GPU (see main_cuda.cpp).
#include <doctest/doctest.h>

#include "autograd/ops.h"
#include "core/ops.h"

using namespace smyrf;

TEST_CASE("cuda: host -> device -> host round trip keeps every value") {
  Tensor a = randn({37, 129}, TensorOptions(kFloat32));
  Tensor d = a.to(Device::cuda(0));
  CHECK(d.device().is_cuda());
  Tensor back = d.to(Device::cpu());
  CHECK(back.to_vector<float>() == a.to_vector<float>());
}

TEST_CASE("cuda: fill_ on a device tensor matches the CPU") {
  Tensor d = zeros({1000}, TensorOptions(kFloat32).set_device(Device::cuda(0)));
  d.fill_(2.5);
  for (float v : d.to(Device::cpu()).to_vector<float>()) CHECK(v == 2.5f);
}

TEST_CASE("cuda: one_hot on the device matches the CPU; a bad index is refused by name") {
  // (one_hot on CUDA written 2026-11-30 without a GPU: compiled, not yet run on one)
  const Tensor idx = from_vector<int64_t>({2, 0, 1, 2, 4, 3}, {2, 3});
  const Tensor c = one_hot(idx, 5), g = one_hot(idx.to(Device::cuda(0)), 5);
  CHECK(g.device().is_cuda());
  CHECK(g.dtype() == kInt64);
  CHECK(g.shape() == c.shape());
  CHECK(g.to(Device::cpu()).to_vector<int64_t>() == c.to_vector<int64_t>());
  const Tensor bad = from_vector<int64_t>({0, 5}, {2}).to(Device::cuda(0));
  CHECK_THROWS_WITH_AS(one_hot(bad, 5), doctest::Contains("[one_hot]"), Error);
  // a device tensor's memory is never read on the host: data_ptr refuses with the device
  CHECK_THROWS_WITH_AS(g.data_ptr<int64_t>(), doctest::Contains("cuda:0"), Error);
}
