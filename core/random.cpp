#include "core/random.h"

#include <algorithm>
#include <numeric>

#include "core/ops.h"
#include "core/ops_cuda.h"
#include "kernels/cpu/philox.h"
#include "kernels/cpu/random_fill.h"

namespace smyrf {
namespace kc = kernels::cpu;

uint64_t Generator::next_u64() {
  uint64_t c = advance(1);
  auto r = kernels::philox4x32(static_cast<uint32_t>(c), static_cast<uint32_t>(c >> 32), 0x5eed5eedu, 0u, seed_);
  return (static_cast<uint64_t>(r.v[0]) << 32) | r.v[1];
}

Generator& default_generator() {
  static Generator g(0x5317f0ull);
  return g;
}

void manual_seed(uint64_t seed) { default_generator().manual_seed(seed); }

namespace {
Generator& pick(Generator* g) { return g ? *g : default_generator(); }

// Draws on the CPU, then moves to the requested device and sets requires_grad.
Tensor finish(Tensor t, const TensorOptions& opts) {
  if (opts.device.is_cuda()) t = raw::to_device(t, opts.device);
  if (opts.requires_grad) {
    SMYRF_CHECK(is_floating(t.dtype()), "random", "only floating tensors can require gradients");
    t.impl()->requires_grad = true;
  }
  return t;
}

Tensor real_draw(const Shape& shape, TensorOptions opts, Generator* gen, bool normal_dist, double a, double b,
                 const char* op) {
  SMYRF_CHECK_HINT(is_floating(opts.dtype), op, "needs a floating dtype, got " << dtype_name(opts.dtype),
                   "use randint for integers");
  Tensor t = empty(shape, TensorOptions(opts.dtype).set_device(opts.device));
  const int64_t n = t.numel();
  Generator& g = pick(gen);
  const bool wide = opts.dtype == DType::Float64;
  const uint64_t off = g.advance(kc::random_blocks(n, wide));
  if (t.device().is_cuda()) {  // drawn on the GPU: the same Philox numbers as the CPU path
    normal_dist ? cuda_ops::random_normal(t, g.seed(), off, a, b) : cuda_ops::random_uniform(t, g.seed(), off, a, b);
    return finish(t, opts);
  }
  if (wide) {
    double* p = t.data_ptr<double>();
    normal_dist ? kc::random_normal_f64(p, n, g.seed(), off, a, b) : kc::random_uniform_f64(p, n, g.seed(), off, a, b);
  } else {
    float* p = t.data_ptr<float>();
    normal_dist ? kc::random_normal_f32(p, n, g.seed(), off, static_cast<float>(a), static_cast<float>(b))
                : kc::random_uniform_f32(p, n, g.seed(), off, static_cast<float>(a), static_cast<float>(b));
  }
  return finish(t, opts);
}
}  // namespace

Tensor rand(const Shape& shape, TensorOptions opts, Generator* gen) {
  return real_draw(shape, opts, gen, false, 0.0, 1.0, "rand");
}
Tensor uniform(const Shape& shape, double low, double high, TensorOptions opts, Generator* gen) {
  SMYRF_CHECK(low <= high, "uniform", "low " << low << " > high " << high);
  return real_draw(shape, opts, gen, false, low, high, "uniform");
}
Tensor randn(const Shape& shape, TensorOptions opts, Generator* gen) {
  return real_draw(shape, opts, gen, true, 0.0, 1.0, "randn");
}
Tensor normal(const Shape& shape, double mean, double std, TensorOptions opts, Generator* gen) {
  SMYRF_CHECK(std >= 0, "normal", "std must be >= 0, got " << std);
  return real_draw(shape, opts, gen, true, mean, std, "normal");
}

Tensor randint(int64_t low, int64_t high, const Shape& shape, TensorOptions opts, Generator* gen) {
  SMYRF_CHECK_HINT(high > low, "randint", "empty range [" << low << ", " << high << ")", "high must exceed low");
  Tensor t = empty(shape, TensorOptions(DType::Int64).set_device(opts.device));
  Generator& g = pick(gen);
  const uint64_t off = g.advance(kc::random_blocks(t.numel(), true));
  if (t.device().is_cuda())
    cuda_ops::random_int64(t, g.seed(), off, low, high);
  else
    kc::random_int64(t.data_ptr<int64_t>(), t.numel(), g.seed(), off, low, high);
  TensorOptions o = opts;
  o.requires_grad = false;
  return finish(raw::to_dtype(t, opts.dtype), o);
}

Tensor bernoulli(const Shape& shape, double p, Generator* gen, Device device) {
  SMYRF_CHECK(p >= 0 && p <= 1, "bernoulli", "probability must be in [0, 1], got " << p);
  Tensor t = empty(shape, TensorOptions(DType::Bool).set_device(device));
  Generator& g = pick(gen);
  const uint64_t off = g.advance(kc::random_blocks(t.numel(), false));
  if (t.device().is_cuda()) {
    cuda_ops::random_bernoulli(t, g.seed(), off, p);
    return t;
  }
  kc::random_bernoulli(t.data_ptr<bool>(), t.numel(), g.seed(), off, p);
  return t;
}

Tensor randperm(int64_t n, Generator* gen) {
  // argsort of uniform keys: a uniformly random permutation, reproducible from the generator
  Tensor keys = rand({n}, TensorOptions(DType::Float64), gen);
  return raw::sort(keys, 0, false).second;
}

}  // namespace smyrf
