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

TEST_CASE("cuda: an op without a CUDA kernel names the op and the device") {
  // one_hot has no CUDA kernel (yet): it must refuse with the op and device, not read device memory
  Tensor d = zeros({4}, TensorOptions(kInt64).set_device(Device::cuda(0)));
  CHECK_THROWS_WITH_AS(one_hot(d, 3), doctest::Contains("cuda:0"), Error);
}
