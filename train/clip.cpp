#include "train/clip.h"

#include <cmath>

#include "autograd/grad_mode.h"

namespace smyrf::train {

double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm) {
  double sq = 0;
  for (const Tensor& p : params) {
    Tensor g = p.grad();
    if (!g.defined()) continue;
    SMYRF_CHECK_HINT(g.device().is_cpu() && g.is_floating_point(), "clip_grad_norm_",
                     "gradient of shape " << shape_str(g.shape()) << " is " << dtype_name(g.dtype())
                                          << " on " << g.device().str(),
                     "CPU float gradients only");
    // accumulate in double: millions of float squares lose digits in float
    Tensor c = g.contiguous();
    if (c.dtype() == kFloat32) {
      const float* d = c.data_ptr<float>();
      for (int64_t i = 0, n = c.numel(); i < n; ++i) sq += double(d[i]) * d[i];
    } else {
      const double* d = c.data_ptr<double>();
      for (int64_t i = 0, n = c.numel(); i < n; ++i) sq += d[i] * d[i];
    }
  }
  const double norm = std::sqrt(sq);
  if (max_norm > 0 && std::isfinite(norm) && norm > max_norm) {
    NoGradGuard ng;
    const double scale = max_norm / (norm + 1e-6);
    for (const Tensor& p : params) {
      Tensor g = p.grad();
      if (g.defined()) g.mul_(scale);
    }
  }
  return norm;
}

}  // namespace smyrf::train
