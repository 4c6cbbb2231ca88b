#include "train/clip.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "autograd/grad_mode.h"
#include "core/ops.h"

namespace smyrf::train {

double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm) {
  // one float64 running sum per device, read back once at the end (an item() per gradient
  // would be one device-to-host synchronisation per parameter on CUDA)
  std::vector<Tensor> sums;
  for (const Tensor& p : params) {
    Tensor g = p.grad();
    if (!g.defined()) continue;
    SMYRF_CHECK_HINT(
        g.is_floating_point(), "clip_grad_norm_",
        "gradient of shape " << shape_str(g.shape()) << " is " << dtype_name(g.dtype()),
        "float32 or float64 gradients only");
    // accumulated in double (millions of float squares lose digits in float), each gradient's
    // sum on its own device
    const Tensor s = raw::sum_squares(g);
    auto same = std::find_if(sums.begin(), sums.end(),
                             [&](const Tensor& t) { return t.device() == s.device(); });
    if (same == sums.end())
      sums.push_back(s);
    else
      *same = raw::binary(raw::BinaryKind::Add, *same, s);
  }
  double sq = 0;
  for (const Tensor& t : sums) sq += t.item<double>();
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
