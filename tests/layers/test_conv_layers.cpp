// Conv2d, pooling layers, BatchNorm2d, ConditionalBatchNorm2d, SpectralNorm and the initialisers:
// PyTorch names, running statistics against torch 1.13, spectral-norm behaviour, orthogonality,
// and the error messages of the conv ops.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "autograd/grad_mode.h"
#include "autograd/gradcheck.h"
#include "autograd/ops_conv.h"
#include "layers/conv.h"
#include "layers/init.h"
#include "layers/linear.h"
#include "layers/norm.h"
#include "layers/spectral_norm.h"

using namespace smyrf;
using namespace smyrf::layers;

namespace {

std::vector<std::string> names(const NamedTensors& nt) {
  std::vector<std::string> out;
  for (auto& [n, t] : nt) out.push_back(n);
  return out;
}

// The same deterministic input as make() in the Python snippet below.
Tensor make(const Shape& shape, double offset, DType dt = kFloat64) {
  std::vector<double> v(static_cast<size_t>(shape_numel(shape)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = std::sin(0.37 * i + offset) + 0.05 * i;
  return from_vector<double>(v, shape, TensorOptions(dt));
}

void check_values(const Tensor& got, const std::vector<double>& want, double tol) {
  std::vector<double> g = got.to_vector<double>();
  REQUIRE(g.size() == want.size());
  for (size_t i = 0; i < g.size(); ++i) {
    INFO("element " << i);
    CHECK(g[i] == doctest::Approx(want[i]).epsilon(tol));
  }
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("Conv2d has PyTorch's parameter names, shapes and init bounds") {
  Generator gen(3);
  Conv2d conv(4, 8, 3, 1, 1, 1, 2, true, &gen);
  CHECK(names(conv.named_parameters()) == std::vector<std::string>{"weight", "bias"});
  CHECK(conv.weight.shape() == Shape{8, 2, 3, 3});
  CHECK(conv.bias.shape() == Shape{8});
  const double bound = 1.0 / std::sqrt(2.0 * 9.0);
  CHECK(amax(abs(conv.weight)).item<double>() <= bound);
  CHECK(amax(abs(conv.weight)).item<double>() > 0.8 * bound);
  Tensor y = conv.forward(randn({2, 4, 5, 5}, {}, &gen));
  CHECK(y.shape() == Shape{2, 8, 5, 5});
  CHECK(Conv2d(3, 5, 1, 1, 0, 1, 1, false).named_parameters().size() == 1);
}

TEST_CASE("pooling and upsampling layers") {
  Tensor x = make({1, 1, 4, 4}, 0.0, kFloat32);
  CHECK(AvgPool2d(2).forward(x).shape() == Shape{1, 1, 2, 2});
  CHECK(MaxPool2d(3, 1, 1).forward(x).shape() == Shape{1, 1, 4, 4});
  Tensor up = Upsample(2).forward(x);
  CHECK(up.shape() == Shape{1, 1, 8, 8});
  // nearest: output (3, 5) reads input (1, 2)
  CHECK(up.select(2, 3).select(2, 5).item<double>() == x.select(2, 1).select(2, 2).item<double>());
  // average of the 2x2 upsampled block gives back the input
  check_values(AvgPool2d(2).forward(up), x.to_vector<double>(), 1e-6);
}

// Expected numbers from torch 1.13 (float64), written by:
//   import torch
//   def make(shape, offset):
//       n = 1
//       for s in shape: n *= s
//       i = torch.arange(n, dtype=torch.float64)
//       return (torch.sin(0.37 * i + offset) + 0.05 * i).reshape(shape)
//   bn = torch.nn.BatchNorm2d(2, eps=1e-5, momentum=0.1).double()
//   with torch.no_grad():
//       bn.weight.copy_(torch.tensor([1.5, -0.5], dtype=torch.float64))
//       bn.bias.copy_(torch.tensor([0.25, 2.0], dtype=torch.float64))
//   x1 = make((3, 2, 2, 3), 0.0); x2 = make((3, 2, 2, 3), 1.0) * 2.0
//   y1 = bn(x1); y2 = bn(x2)
//   print(bn.running_mean.tolist(), bn.running_var.tolist(), bn.num_batches_tracked.item())
//   print(y2[0, :, 0, :].flatten().tolist())
//   bn.eval(); print(bn(x1)[1, :, 1, :].flatten().tolist())
//   bnc = torch.nn.BatchNorm2d(2, momentum=None).double(); bnc(x1); bnc(x2)
//   print(bnc.running_mean.tolist(), bnc.running_var.tolist())
TEST_CASE("BatchNorm2d matches torch: names, running statistics, training and eval outputs") {
  BatchNorm2d bn(2, 1e-5, 0.1, true, true, kFloat64);
  CHECK(names(bn.named_parameters()) == std::vector<std::string>{"weight", "bias"});
  CHECK(names(bn.named_buffers()) ==
        std::vector<std::string>{"running_mean", "running_var", "num_batches_tracked"});
  CHECK(bn.num_batches_tracked.dtype() == kInt64);
  {
    NoGradGuard ng;
    bn.weight.copy_(from_vector<double>({1.5, -0.5}, {2}, kFloat64));
    bn.bias.copy_(from_vector<double>({0.25, 2.0}, {2}, kFloat64));
  }
  Tensor x1 = make({3, 2, 2, 3}, 0.0), x2 = make({3, 2, 2, 3}, 1.0) * 2.0;
  bn.forward(x1);
  Tensor y2 = bn.forward(x2);
  check_values(bn.running_mean, {0.2033570533359485, 0.32669886239218965}, 1e-12);
  check_values(bn.running_var, {0.9207641208036944, 1.344280377168388}, 1e-12);
  CHECK(bn.num_batches_tracked.item<int64_t>() == 2);
  check_values(y2.select(0, 0).select(1, 0).flatten(),
               {0.6240297431497684, 1.2873268865785754, 1.4837816153254928, 2.4194781461667203,
                2.562307222634885, 2.677676973383391},
               1e-10);
  bn.eval();
  Tensor ye = bn.forward(x1);
  check_values(ye.select(0, 1).select(1, 1).flatten(),
               {0.058356438547939884, 0.6273400286214985, 1.2714852768730653, 1.2583559218254947,
                1.2527932059181608, 1.303226230048698},
               1e-10);
  // eval mode leaves the statistics alone
  check_values(bn.running_mean, {0.2033570533359485, 0.32669886239218965}, 1e-12);
  CHECK(bn.num_batches_tracked.item<int64_t>() == 2);

  BatchNorm2d cumulative(2, 1e-5, -1.0, true, true, kFloat64);  // momentum=None
  cumulative.forward(x1);
  cumulative.forward(x2);
  check_values(cumulative.running_mean, {1.0480711500672104, 1.6907677372846455}, 1e-12);
  check_values(cumulative.running_var, {0.57262906234542, 2.6996299602118827}, 1e-12);
}

TEST_CASE("BatchNorm2d float32 in training mode gives zero-mean unit-variance channels") {
  Generator gen(5);
  BatchNorm2d bn(3);
  Tensor x = randn({4, 3, 5, 5}, {}, &gen) * 3.0 + 2.0;
  Tensor y = bn.forward(x);
  Tensor m = mean(y, {0, 2, 3}), v = var(y, {0, 2, 3}, 0);
  for (int64_t c = 0; c < 3; ++c) {
    CHECK(std::fabs(m.select(0, c).item<double>()) < 1e-5);
    CHECK(v.select(0, c).item<double>() == doctest::Approx(1.0).epsilon(1e-3));
  }
}

TEST_CASE(
    "ConditionalBatchNorm2d: names, 1 + gain(y) and bias(y) applied per sample, gradients reach "
    "both") {
  Generator gen(7);
  ConditionalBatchNorm2d cbn(3, 4, true, 1e-5, 0.1, &gen, kFloat64);
  CHECK(names(cbn.state_dict()) ==
        std::vector<std::string>{"gain.weight_orig", "gain.weight_u", "gain.weight_v",
                                 "bias.weight_orig", "bias.weight_u", "bias.weight_v",
                                 "bn.running_mean", "bn.running_var", "bn.num_batches_tracked"});
  Tensor x = randn({2, 3, 4, 4}, kFloat64, &gen), y = randn({2, 4}, kFloat64, &gen);
  Tensor out = cbn.forward(x, y);
  // the same thing from separate ops, in eval mode (u, v fixed after the step above)
  cbn.eval();
  Tensor out_eval = cbn.forward(x, y);
  Tensor g = 1.0 + cbn.gain->forward(y), b = cbn.bias->forward(y);
  Tensor plain =
      batch_norm(x, cbn.bn->running_mean, cbn.bn->running_var, Tensor(), Tensor(), false);
  Tensor manual = plain * g.reshape({2, 3, 1, 1}) + b.reshape({2, 3, 1, 1});
  CHECK(amax(abs(out_eval - manual)).item<double>() < 1e-12);
  // training output: normalised with batch statistics, so the per-sample affine is recoverable
  cbn.train();
  Tensor loss = sum(cbn.forward(x, y) * x);
  loss.backward();
  auto sn_gain = std::dynamic_pointer_cast<SpectralNorm>(cbn.gain);
  REQUIRE(sn_gain);
  CHECK(sn_gain->weight_orig.grad().defined());
  CHECK(std::dynamic_pointer_cast<SpectralNorm>(cbn.bias)->weight_orig.grad().defined());
  CHECK(out.shape() == x.shape());
}

TEST_CASE(
    "SpectralNorm: PyTorch names, sigma converges to the top singular value, no update in eval") {
  Generator gen(11);
  auto lin = std::make_shared<Linear>(8, 5, true, &gen, kFloat64);
  // W = U diag(s) V^T with orthonormal U (5x5) and V (8x5): singular values known exactly
  Tensor U = empty({5, 5}, kFloat64), V = empty({8, 5}, kFloat64);
  init::orthogonal_(U, 1.0, &gen);
  init::orthogonal_(V, 1.0, &gen);
  Tensor s = from_vector<double>({3.0, 2.0, 1.0, 0.5, 0.1}, {1, 5}, kFloat64);
  {
    NoGradGuard ng;
    lin->weight.copy_(matmul(U * s, V.t()));
  }
  SpectralNorm sn(lin, 1, 1e-12, &gen);
  CHECK(names(sn.named_parameters()) == std::vector<std::string>{"bias", "weight_orig"});
  CHECK(names(sn.named_buffers()) == std::vector<std::string>{"weight_u", "weight_v"});
  CHECK(sn.weight_u.shape() == Shape{5});
  CHECK(sn.weight_v.shape() == Shape{8});

  Tensor x = randn({4, 8}, kFloat64, &gen);
  for (int i = 0; i < 60; ++i) sn.forward(x);
  CHECK(sn.last_sigma() == doctest::Approx(3.0).epsilon(1e-6));
  // the installed weight has spectral norm 1: its largest singular value via W^T W power iteration
  Tensor w = lin->weight.detach();
  Tensor v = ones({8}, kFloat64);
  for (int i = 0; i < 200; ++i) v = matmul(w.t(), matmul(w, v)), v = v / norm(v);
  CHECK(norm(matmul(w, v)).item<double>() == doctest::Approx(1.0).epsilon(1e-6));

  sn.eval();
  std::vector<double> u_before = sn.weight_u.to_vector<double>(),
                      v_before = sn.weight_v.to_vector<double>();
  Tensor y_eval = sn.forward(x);
  CHECK(sn.weight_u.to_vector<double>() == u_before);
  CHECK(sn.weight_v.to_vector<double>() == v_before);
  Tensor sigma = sum(sn.weight_u * matmul(sn.weight_orig.detach(), sn.weight_v));
  Tensor want = linear(x, sn.weight_orig.detach() / sigma, lin->bias.detach());
  CHECK(amax(abs(y_eval - want)).item<double>() < 1e-12);
}

TEST_CASE(
    "SpectralNorm is differentiable through sigma (gradcheck in eval mode) and wraps Conv2d") {
  Generator gen(13);
  auto conv = std::make_shared<Conv2d>(2, 3, 3, 1, 1, 1, 1, true, &gen, kFloat64);
  auto sn = std::make_shared<SpectralNorm>(conv, 1, 1e-12, &gen);
  CHECK(names(sn->state_dict()) ==
        std::vector<std::string>{"bias", "weight_orig", "weight_u", "weight_v"});
  sn->forward(randn({1, 2, 4, 4}, kFloat64, &gen));  // one training step moves u, v
  sn->eval();
  Tensor x = randn({2, 2, 4, 4}, kFloat64, &gen);
  Tensor w0 = sn->weight_orig.detach().clone().requires_grad_();
  Tensor u = sn->weight_u.clone(), v = sn->weight_v.clone();
  // gradient of the normalised conv w.r.t. W, with sigma = u^T W v part of the graph
  GradcheckResult r = gradcheck(
      [&](const std::vector<Tensor>& in) {
        Tensor sigma = sum(u * matmul(in[0].reshape({3, -1}), v));
        return conv2d(x, in[0] / sigma, Tensor(), 1, 1);
      },
      {w0});
  INFO(r.message);
  CHECK(r.ok);
  // and the module's own backward gives the same gradient as that function
  Tensor loss = sum(sn->forward(x) * x.sum({1}, true));
  loss.backward();
  Tensor sigma = sum(u * matmul(w0.reshape({3, -1}), v));
  Tensor loss2 =
      sum((conv2d(x, w0 / sigma, Tensor(), 1, 1) + conv->bias.detach().reshape({1, 3, 1, 1})) *
          x.sum({1}, true));
  loss2.backward();
  CHECK(amax(abs(sn->weight_orig.grad() - w0.grad())).item<double>() < 1e-10);
}

TEST_CASE("init: orthogonal_ gives W W^T = I (or W^T W = I), xavier and normal bounds") {
  Generator gen(17);
  for (Shape shape : {Shape{5, 12}, Shape{12, 5}, Shape{8, 2, 3, 3}, Shape{6, 6}}) {
    INFO("shape " << shape_str(shape));
    Tensor w = empty(shape, kFloat32);
    init::orthogonal_(w, 2.0, &gen);
    Tensor m = w.reshape({shape[0], -1}).to(kFloat64);
    const bool wide = m.size(0) <= m.size(1);
    Tensor gram = wide ? matmul(m, m.t()) : matmul(m.t(), m);
    const int64_t n = gram.size(0);
    CHECK(amax(abs(gram - 4.0 * eye(n, -1, kFloat64))).item<double>() < 1e-5);
  }
  Tensor xw = empty({30, 20}, kFloat32);
  init::xavier_uniform_(xw, 1.0, &gen);
  const double bound = std::sqrt(6.0 / 50.0);
  CHECK(amax(abs(xw)).item<double>() <= bound + 1e-7);
  CHECK(amax(abs(xw)).item<double>() > 0.9 * bound);
  Tensor nw = empty({100, 100}, kFloat32);
  init::normal_(nw, 0.0, 0.02, &gen);
  CHECK(smyrf::std(nw).item<double>() == doctest::Approx(0.02).epsilon(0.05));
  CHECK(std::fabs(mean(nw).item<double>()) < 0.002);
}

TEST_CASE("conv ops reject bad arguments with messages naming the op and shapes") {
  Tensor x = randn({2, 6, 5, 5});
  std::string e = error_of([&] { conv2d(x, randn({8, 4, 3, 3})); });
  CHECK(e.find("[conv2d]") != std::string::npos);
  CHECK(e.find("(8, 4, 3, 3)") != std::string::npos);
  e = error_of([&] { conv2d(x, randn({8, 2, 3, 3}), Tensor(), 1, 0, 1, 4); });
  CHECK(e.find("not divisible by groups=4") != std::string::npos);
  e = error_of([&] { conv2d(x, randn({8, 6, 7, 7})); });
  CHECK(e.find("larger than the padded input") != std::string::npos);
  CHECK(error_of([&] { conv2d(x, randn({8, 6, 7, 7}), Tensor(), 1, 1); }).empty());
  e = error_of([&] { conv2d(x, randn({8, 6, 3, 3}), randn({7})); });
  CHECK(e.find("bias") != std::string::npos);
  e = error_of([&] { conv2d(randn({6, 5, 5}), randn({8, 6, 3, 3})); });
  CHECK(e.find("(N, C, H, W)") != std::string::npos);
  e = error_of([&] { max_pool2d(x, 3, 1, 2); });
  CHECK(e.find("[max_pool2d]") != std::string::npos);
  e = error_of([&] { batch_norm(randn({1, 3}), Tensor(), Tensor(), Tensor(), Tensor(), true); });
  CHECK(e.find("more than one value per channel") != std::string::npos);
  e = error_of([&] { BatchNorm2d(4).forward(x); });
  CHECK(e.find("BatchNorm2d") != std::string::npos);
}
