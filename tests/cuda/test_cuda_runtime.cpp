// The CUDA runtime seen from core: Philox draws equal to the CPU's, the caching allocator's
// statistics (a steady state makes no cudaMalloc), the out-of-memory message, optimizer updates,
// and gradients of a small network computed on the GPU against the CPU. Runs only with a GPU;
// All pass on an NVIDIA H200 (2026-11-28 to 2026-11-30).
#include <doctest/doctest.h>

#include "core/ops_cuda.h"
#include "cuda_test_util.h"
#include "kernels/cpu/optim.h"
#include "train/clip.h"

using namespace smyrf;
using namespace smyrf::cuda_test;

TEST_CASE("cuda: Philox draws equal the CPU's for the same seed and offset") {
  const TensorOptions gpu32 = TensorOptions(kFloat32).set_device(Device::cuda(0));
  const TensorOptions gpu64 = TensorOptions(kFloat64).set_device(Device::cuda(0));
  for (int64_t n : {1, 3, 4, 5, 1001, 100003}) {
    Generator a(1234), b(1234);
    a.advance(7), b.advance(7);  // a nonzero offset
    // uniforms and integers are bit-identical
    CHECK(values_of(rand({n}, kFloat32, &a)) == values_of(rand({n}, gpu32, &b)));
    CHECK(values_of(uniform({n}, -3, 5, kFloat64, &a)) ==
          values_of(uniform({n}, -3, 5, gpu64, &b)));
    CHECK(values_of(randint(-7, 1000, {n}, kInt64, &a)) ==
          values_of(randint(-7, 1000, {n}, TensorOptions(kInt64).set_device(Device::cuda(0)), &b)));
    CHECK(a.offset() == b.offset());
    // normals go through logf/sinf/cosf: a few ulp
    check_close(randn({n}, gpu32, &b), randn({n}, kFloat32, &a), 1e-5, 1e-6, "randn f32");
    check_close(randn({n}, gpu64, &b), randn({n}, kFloat64, &a), 1e-13, 1e-14, "randn f64");
  }
}

TEST_CASE("cuda: the caching allocator reuses blocks in a steady state") {
  cuda_synchronize();
  // start from an empty cache: blocks that earlier test cases freed would otherwise serve the
  // first steps too (an H200 run, 2026-11-30: 1237 mallocs before and after them)
  cuda_empty_cache();
  const CudaMemoryStats before = cuda_memory_stats(0);
  auto step = [] {
    Tensor x = randn({256, 512}, TensorOptions(kFloat32).set_device(Device::cuda(0)));
    Tensor w = randn({512, 128}, TensorOptions(kFloat32).set_device(Device::cuda(0)));
    Tensor y = raw::softmax(raw::matmul(x, w), 1, true);
    return raw::reduce(raw::ReduceKind::Sum, y, {}, false).to(Device::cpu()).item();
  };
  step();
  step();
  const CudaMemoryStats warm = cuda_memory_stats(0);
  CHECK(warm.num_mallocs > before.num_mallocs);  // the first steps did allocate
  for (int i = 0; i < 5; ++i) step();
  const CudaMemoryStats steady = cuda_memory_stats(0);
  CHECK(steady.num_mallocs == warm.num_mallocs);  // no cudaMalloc in the steady state
  CHECK(steady.allocated == warm.allocated);      // every tensor of a step was returned
  CHECK(steady.peak_allocated >= 256 * 512 * 4);
  CHECK(steady.cached > 0);
  {
    Tensor t = empty({1 << 20}, TensorOptions(kFloat32).set_device(Device::cuda(0)));
    CHECK(cuda_memory_stats(0).allocated >= steady.allocated + (size_t{4} << 20));
  }
  cuda_empty_cache();
  const CudaMemoryStats emptied = cuda_memory_stats(0);
  CHECK(emptied.cached == 0);
  CHECK(emptied.num_frees > steady.num_frees);
}

TEST_CASE("cuda: out of memory reports requested, free and cached bytes") {
  const int64_t huge = int64_t{1} << 48;  // 1 PiB of float32: never fits
  try {
    Tensor t = empty({huge}, TensorOptions(kFloat32).set_device(Device::cuda(0)));
    FAIL("allocating 1 PiB did not throw");
  } catch (const Error& e) {
    const std::string m = e.what();
    CHECK(m.find("out of memory") != std::string::npos);
    CHECK(m.find("requested") != std::string::npos);
    CHECK(m.find("free") != std::string::npos);
    CHECK(m.find("cached") != std::string::npos);
    CHECK(m.find("cuda:0") != std::string::npos);
  }
  // the allocator still works afterwards
  CHECK(cu(ones({3})).to(Device::cpu()).sum().item() == 3.0);
}

TEST_CASE("cuda: Adam/AdamW and SGD updates match the CPU kernels") {
  const int64_t n = 10007;
  Tensor p = rnd({n}, 90), g = rnd({n}, 91), m = rnd({n}, 92, kFloat32, 0, 0.1),
         v = rnd({n}, 93, kFloat32, 0, 0.1);
  for (bool decoupled : {false, true}) {
    Tensor cp = p.clone(), cm = m.clone(), cv = v.clone();
    Tensor gp = cu(p), gm = cu(m), gv = cu(v);
    for (int64_t step = 1; step <= 3; ++step) {
      kernels::cpu::adam_update<float>(cp.data_ptr<float>(), g.data_ptr<float>(),
                                       cm.data_ptr<float>(), cv.data_ptr<float>(), n, 1e-3, 0.9,
                                       0.999, 1e-8, 0.01, decoupled, step);
      cuda_ops::adam_update(gp, cu(g), gm, gv, 1e-3, 0.9, 0.999, 1e-8, 0.01, decoupled, step);
    }
    check_close(gp, cp, 1e-6, 1e-7, "adam param");
    check_close(gv, cv, 1e-6, 1e-9, "adam v");
  }
  Tensor cp = p.clone(), cb = zeros({n}), gp = cu(p), gb = cu(zeros({n}));
  for (int step = 0; step < 3; ++step) {
    kernels::cpu::sgd_update<float>(cp.data_ptr<float>(), g.data_ptr<float>(), cb.data_ptr<float>(),
                                    n, 0.1, 0.9, 1e-4, true, step == 0);
    cuda_ops::sgd_update(gp, cu(g), gb, 0.1, 0.9, 1e-4, true, step == 0);
  }
  check_close(gp, cp, 1e-6, 1e-7, "sgd param");
}

TEST_CASE("cuda: gradients of a small network equal the CPU's") {
  // linear -> gelu -> layer_norm -> linear -> cross-entropy, plus softmax/gather/index_select
  // branches: the backward pass runs the same raw ops, so it exercises the CUDA kernels
  auto run = [](Device dev) {
    Tensor x = rnd({16, 33}, 100).to(dev).requires_grad_();
    Tensor w1 = rnd({64, 33}, 101, kFloat32, -0.3, 0.3).to(dev).requires_grad_();
    Tensor b1 = rnd({64}, 102).to(dev).requires_grad_();
    Tensor w2 = rnd({10, 64}, 103, kFloat32, -0.3, 0.3).to(dev).requires_grad_();
    Tensor emb = rnd({20, 64}, 104).to(dev).requires_grad_();
    Tensor tokens =
        from_vector<int64_t>({3, 3, 7, 0, 19, 3, 5, 5, 1, 2, 3, 4, 5, 6, 7, 8}, {16}).to(dev);
    Tensor target =
        from_vector<int64_t>({1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4, 5, -100}, {16}).to(dev);
    Tensor h = gelu(linear(x, w1, b1)) + embedding(emb, tokens);
    h = layer_norm(h, {64});
    Tensor logits = linear(h, w2);
    Tensor loss = cross_entropy(logits, target, -100, 0.1) +
                  mean(softmax(logits, 1) * log_softmax(logits, 0)) + mean(amax(logits, {1}));
    loss.backward();
    return std::vector<Tensor>{loss, x.grad(), w1.grad(), b1.grad(), w2.grad(), emb.grad()};
  };
  auto c = run(Device::cpu());
  auto g = run(Device::cuda(0));
  const char* names[] = {"loss", "dx", "dw1", "db1", "dw2", "demb"};
  for (size_t i = 0; i < c.size(); ++i) check_close(g[i], c[i], 1e-4, 1e-5, names[i]);
}

TEST_CASE("cuda: dropout draws the same mask on the GPU as on the CPU") {
  Tensor x = rnd({37, 101}, 110);
  Generator a(5), b(5);
  check_close(dropout(cu(x), 0.3, true, &b), dropout(x, 0.3, true, &a), 1e-7, 0, "dropout");
  CHECK(values_of(bernoulli({1001}, 0.4, &a)) ==
        values_of(bernoulli({1001}, 0.4, &b, Device::cuda(0))));
}

TEST_CASE("cuda: dropout's backward and clip_grad_norm_ on device gradients match the CPU") {
  // dropout's backward (the saved bool mask through raw::masked_scale's CUDA branch) and the
  // global-norm clip of gradients living on the GPU (raw::sum_squares composed of device ops)
  auto run = [](Device dev) {
    Tensor x = rnd({37, 101}, 120).to(dev).requires_grad_();
    Tensor w = rnd({101, 13}, 121, kFloat32, -0.3, 0.3).to(dev).requires_grad_();
    Generator g(9);
    Tensor loss = sum(matmul(dropout(x, 0.3, true, &g), w) * rnd({37, 13}, 122).to(dev));
    loss.backward();
    const double norm = train::clip_grad_norm_({x, w}, 0.5);  // clips: the norm is far above
    return std::make_pair(norm, std::vector<Tensor>{x.grad(), w.grad()});
  };
  const auto c = run(Device::cpu());
  const auto g = run(Device::cuda(0));
  CHECK(g.first == doctest::Approx(c.first).epsilon(1e-5));
  CHECK(c.first > 0.5);
  check_close(g.second[0], c.second[0], 1e-5, 1e-6, "dx (dropout backward, clipped)");
  check_close(g.second[1], c.second[1], 1e-5, 1e-6, "dw (clipped)");
}

TEST_CASE("cuda: masked_scale's one kernel matches the CPU, NaN and inf entries included") {
  // (the fused kernel written 2026-11-30 without a GPU: compiled, not yet run on one)
  for (DType dt : {kFloat32, kFloat64}) {
    Tensor x = rnd({3, 1001}, 123, dt);
    std::vector<double> v = values_of(x);
    v[5] = std::nan(""), v[6] = INFINITY, v[7] = -INFINITY;  // dropped or kept, as drawn
    x = from_vector<double>(v, {3, 1001}).to(dt);
    Generator g(4);
    const Tensor keep = bernoulli({3, 1001}, 0.6, &g);
    check_close(raw::masked_scale(cu(x), cu(keep), 1.0 / 0.6),
                raw::masked_scale(x, keep, 1.0 / 0.6), 0, 0, "masked_scale");
    // a strided view goes through the contiguous copy first
    const Tensor xt = raw::transpose(x, 0, 1), kt = raw::transpose(keep, 0, 1);
    check_close(raw::masked_scale(cu(xt), cu(kt), 2.0), raw::masked_scale(xt, kt, 2.0), 0, 0,
                "masked_scale of a transposed view");
  }
}
