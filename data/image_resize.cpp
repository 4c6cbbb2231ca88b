#include "data/image_resize.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace smyrf::data {
namespace {
// Weights of source pixels [lo, hi) covering destination pixel i along one axis.
struct Span {
  int64_t lo;
  std::vector<float> w;
};

std::vector<Span> axis_weights(int64_t src, int64_t dst) {
  std::vector<Span> spans(dst);
  const double scale = static_cast<double>(src) / dst;
  for (int64_t i = 0; i < dst; ++i) {
    Span& s = spans[i];
    if (scale >= 1.0) {  // area: the source interval [i*scale, (i+1)*scale)
      double a = i * scale, b = (i + 1) * scale;
      s.lo = static_cast<int64_t>(std::floor(a));
      int64_t hi = std::min<int64_t>(static_cast<int64_t>(std::ceil(b)), src);
      for (int64_t j = s.lo; j < hi; ++j)
        s.w.push_back(
            static_cast<float>((std::min<double>(b, j + 1) - std::max<double>(a, j)) / scale));
    } else {  // bilinear on pixel centres
      double x = (i + 0.5) * scale - 0.5;
      x = std::clamp(x, 0.0, static_cast<double>(src - 1));
      s.lo = static_cast<int64_t>(std::floor(x));
      double f = x - s.lo;
      s.w.push_back(static_cast<float>(1 - f));
      if (s.lo + 1 < src) s.w.push_back(static_cast<float>(f));
    }
  }
  return spans;
}
}  // namespace

void resize_plane(const float* src, int64_t sh, int64_t sw, float* dst, int64_t dh, int64_t dw) {
  std::vector<Span> ys = axis_weights(sh, dh), xs = axis_weights(sw, dw);
  std::vector<float> rows(static_cast<size_t>(sh) * dw);  // horizontal pass first
  for (int64_t y = 0; y < sh; ++y)
    for (int64_t x = 0; x < dw; ++x) {
      float acc = 0;
      for (size_t k = 0; k < xs[x].w.size(); ++k) acc += xs[x].w[k] * src[y * sw + xs[x].lo + k];
      rows[y * dw + x] = acc;
    }
  for (int64_t y = 0; y < dh; ++y)
    for (int64_t x = 0; x < dw; ++x) {
      float acc = 0;
      for (size_t k = 0; k < ys[y].w.size(); ++k) acc += ys[y].w[k] * rows[(ys[y].lo + k) * dw + x];
      dst[y * dw + x] = acc;
    }
}

}  // namespace smyrf::data
