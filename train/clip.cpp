#include "train/clip.h"

#include <cmath>

#include "autograd/grad_mode.h"
#include "core/ops.h"

namespace smyrf::train {

double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm) {
  double sq = 0;
  for (const Tensor& p : params) {
    Tensor g = p.grad();
    if (!g.defined()) continue;
    SMYRF_CHECK_HINT(
        g.is_floating_point(), "clip_grad_norm_",
        "gradient of shape " << shape_str(g.shape()) << " is " << dtype_name(g.dtype()),
        "float32 or float64 gradients only");
    // accumulated in double (millions of float squares lose digits in float), each gradient's
    // sum on its own device
    sq += raw::sum_squares(g).item<double>();
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
