// GPU benchmarks (see cuda_bench.h). Status: ran on H200s (scripts/gpu-check).
#include "bench/cuda_bench.h"

#include <functional>
#include <string>

#include "core/device.h"
#include "core/error.h"
#include "core/ops.h"
#include "core/ops_cuda.h"
#include "core/random.h"

namespace smyrf::bench {

void require_cuda_device(const char* what) {
  if (!built_with_cuda())
    throw Error(what, "--device cuda needs a build with CUDA, and this one was built without it",
                "configure on a machine with nvcc (cmake -DSMYRF_CUDA=ON)");
  if (cuda_device_count() == 0)
    throw Error(what, "--device cuda: no CUDA device visible on this machine",
                "run on a machine with an NVIDIA GPU and driver (scripts/gpu-check)");
}

void run_cuda_gemm(const Options& opt, const char* workload, int64_t batch, int64_t m, int64_t n,
                   int64_t k, const char* trans, const char* shape) {
  require_cuda_device(workload);
  const bool ta = trans[0] == 'T', tb = trans[1] == 'T';
  const TensorOptions dev = TensorOptions(kFloat32).set_device(Device::cuda(0));
  Generator gen(1);
  Tensor a = uniform(ta ? Shape{batch, k, m} : Shape{batch, m, k}, -0.5, 0.5, dev, &gen);
  Tensor b = uniform(tb ? Shape{batch, n, k} : Shape{batch, k, n}, -0.5, 0.5, dev, &gen);
  // transposed operands are passed to cuBLAS as transpose flags (views, no copies)
  Tensor av = ta ? raw::transpose(a, 1, 2) : a, bv = tb ? raw::transpose(b, 1, 2) : b;
  auto fn = [&] {
    Tensor c = raw::matmul(av, bv);
    cuda_synchronize();
  };
  const Timing t = measure(fn, opt.warmup, opt.repeats);
  const double gflops = 2.0 * batch * m * n * k / (t.median_ms * 1e6);
  Record(workload)
      .set("shape", shape)
      .set("trans", trans)
      .set("device", "cuda")
      .set("backend", "cublas")
      .timing(t)
      .set("gflops", gflops)
      .print(opt);
}

// Elementwise bandwidth against the device-to-device copy of the same bytes: the copy is the
// bandwidth ceiling; the target is >= 80% of it for our kernels.
void run_cuda_elementwise(const Options& opt) {
  require_cuda_device("bench elementwise");
  const TensorOptions dev = TensorOptions(kFloat32).set_device(Device::cuda(0));
  for (int64_t n : {int64_t{1} << 20, int64_t{1} << 24, int64_t{1} << 27}) {
    Generator gen(2);
    Tensor x = uniform({n}, -1, 1, dev, &gen), y = uniform({n}, -1, 1, dev, &gen);
    Tensor out = empty({n}, dev);
    const double mb = static_cast<double>(n) * 4 / 1e9;  // GB per tensor
    double copy_gbs = 0;
    struct Case {
      const char* name;
      double tensors;  // tensors read + written
      std::function<void()> fn;
    };
    const Case cases[] = {
        {"copy_d2d", 2, [&] { cuda_ops::copy_bytes(out, x); }},
        {"add", 3, [&] { raw::binary(raw::BinaryKind::Add, x, y); }},
        {"mul_scalar", 2, [&] { raw::unary(raw::UnaryKind::MulScalar, x, 1.5); }},
        {"exp", 2, [&] { raw::unary(raw::UnaryKind::Exp, x); }},
        {"gelu", 2, [&] { raw::unary(raw::UnaryKind::Gelu, x); }},
        {"add_broadcast_row", 2,
         [&] {
           raw::binary(raw::BinaryKind::Add, raw::reshape(x, {n / 1024, 1024}),
                       raw::slice(y, 0, 0, 1024, 1));
         }},
        {"sum", 1, [&] { raw::reduce(raw::ReduceKind::Sum, x, {0}, false); }},
    };
    for (const Case& c : cases) {
      const Timing t = measure(
          [&] {
            c.fn();
            cuda_synchronize();
          },
          opt.warmup, opt.repeats);
      const double gbs = c.tensors * mb / (t.median_ms * 1e-3);
      if (std::string(c.name) == "copy_d2d") copy_gbs = gbs;
      Record("elementwise")
          .set("op", c.name)
          .set("n", n)
          .set("device", "cuda")
          .timing(t)
          .set("gb_per_s", gbs)
          .set("pct_of_copy", copy_gbs > 0 ? 100.0 * gbs / copy_gbs : 0.0)
          .print(opt);
    }
  }
}

}  // namespace smyrf::bench
