#include "train/calibration.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "core/random.h"

namespace smyrf::train {

const char* distortion_name(Distortion d) {
  switch (d) {
    case Distortion::Noise:
      return "noise";
    case Distortion::Blur:
      return "blur";
    case Distortion::Occlusion:
      return "occlusion";
  }
  return "?";
}

namespace {

// Separable Gaussian blur of every (H, W) plane, edges replicated (the padded border is uniform
// background, so replication adds no artificial edge).
void blur_planes(float* data, int64_t planes, int64_t h, int64_t w, double sigma) {
  const int64_t r = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(3 * sigma)));
  std::vector<double> k(static_cast<size_t>(2 * r + 1));
  double total = 0;
  for (int64_t i = -r; i <= r; ++i)
    total += k[i + r] = std::exp(-0.5 * double(i * i) / (sigma * sigma));
  for (double& v : k) v /= total;
  std::vector<double> tmp(static_cast<size_t>(h * w));
  for (int64_t p = 0; p < planes; ++p) {
    float* img = data + p * h * w;
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x) {
        double s = 0;
        for (int64_t i = -r; i <= r; ++i)
          s += k[i + r] * img[y * w + std::clamp<int64_t>(x + i, 0, w - 1)];
        tmp[y * w + x] = s;
      }
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x) {
        double s = 0;
        for (int64_t i = -r; i <= r; ++i)
          s += k[i + r] * tmp[std::clamp<int64_t>(y + i, 0, h - 1) * w + x];
        img[y * w + x] = static_cast<float>(s);
      }
  }
}

}  // namespace

Tensor distort_images(const Tensor& images, Distortion kind, double strength, uint64_t seed) {
  SMYRF_CHECK(images.defined() && images.dim() == 4, "distort_images", "expected (N, C, H, W)");
  SMYRF_CHECK(strength >= 0 && std::isfinite(strength), "distort_images",
              "strength must be finite and >= 0, got " << strength);
  NoGradGuard ng;
  Tensor out = images.detach().to(kFloat32).contiguous().clone();
  const int64_t n = out.size(0), c = out.size(1), h = out.size(2), w = out.size(3);
  Generator gen(seed);
  float* d = out.data_ptr<float>();
  switch (kind) {
    case Distortion::Noise: {
      if (strength == 0) break;
      const std::vector<float> z =
          randn({out.numel()}, TensorOptions(kFloat32), &gen).to_vector<float>();
      const int64_t count = out.numel();  // (numel() multiplies the shape out on every call)
      for (int64_t i = 0; i < count; ++i)
        d[i] = std::clamp(d[i] + static_cast<float>(strength) * z[i], -1.0f, 1.0f);
      break;
    }
    case Distortion::Blur:
      if (strength > 0) blur_planes(d, n * c, h, w, strength);
      break;
    case Distortion::Occlusion: {
      const int64_t side = static_cast<int64_t>(std::lround(strength));
      SMYRF_CHECK(side <= std::min(h, w), "distort_images",
                  "occlusion side " << side << " exceeds the image " << h << "x" << w);
      if (side == 0) break;
      // Positions inside the central 28x28 (the Fashion-MNIST content of a 32x32 image), so the
      // patch hides garment rather than padding; the whole image when it is smaller.
      const int64_t y0 = std::max<int64_t>(0, (h - 28) / 2),
                    x0 = std::max<int64_t>(0, (w - 28) / 2);
      const int64_t span_y = std::max<int64_t>(1, std::min<int64_t>(h, 28) - side + 1);
      const int64_t span_x = std::max<int64_t>(1, std::min<int64_t>(w, 28) - side + 1);
      const std::vector<int64_t> pos =
          randint(0, span_y * span_x, {n}, DType::Int64, &gen).to_vector<int64_t>();
      for (int64_t i = 0; i < n; ++i) {
        const int64_t py = std::min(y0 + pos[i] / span_x, h - side),
                      px = std::min(x0 + pos[i] % span_x, w - side);
        for (int64_t ch = 0; ch < c; ++ch)
          for (int64_t y = py; y < py + side; ++y)
            for (int64_t x = px; x < px + side; ++x) d[((i * c + ch) * h + y) * w + x] = 0.0f;
      }
      break;
    }
  }
  return out;
}

data::ImageDataset class_balanced_subset(const data::ImageDataset& ds, int64_t per_class) {
  SMYRF_CHECK(per_class >= 1, "class_balanced_subset", "per_class must be >= 1");
  const std::vector<int64_t> labels = ds.labels.to(kInt64).to_vector<int64_t>();
  std::vector<int64_t> taken(static_cast<size_t>(ds.num_classes), 0), idx;
  for (int64_t i = 0; i < static_cast<int64_t>(labels.size()); ++i)
    if (taken[labels[i]] < per_class) ++taken[labels[i]], idx.push_back(i);
  for (int64_t k = 0; k < ds.num_classes; ++k)
    SMYRF_CHECK(taken[k] == per_class, "class_balanced_subset",
                "class " << k << " has only " << taken[k] << " images, " << per_class << " wanted");
  data::ImageDataset out = ds;
  Tensor index = from_vector(idx, {static_cast<int64_t>(idx.size())});
  out.images = index_select(ds.images, 0, index).contiguous();
  out.labels = index_select(ds.labels, 0, index).contiguous();
  return out;
}

std::vector<CalibrationRow> run_calibration(models::Classifier& model,
                                            const data::ImageDataset& train,
                                            const data::ImageDataset& test,
                                            const CalibrationOptions& o) {
  const ClassifierOutputs ref = classify_images(model, test.images);
  const GaussianStats ref_stats = fit_gaussian(ref.features);
  const data::ImageDataset real = class_balanced_subset(train, o.per_class);
  std::vector<CalibrationRow> rows;
  auto add = [&](const std::string& name, double strength, const Tensor& images) {
    rows.push_back(
        {name, strength, evaluate_samples(model, images, real.labels, ref, ref_stats, o.metrics)});
  };
  add("real train vs test", 0, real.images);
  uint64_t seed = o.seed;
  for (double s : o.noise)
    add("noise", s, distort_images(real.images, Distortion::Noise, s, ++seed));
  for (double s : o.blur) add("blur", s, distort_images(real.images, Distortion::Blur, s, ++seed));
  for (double s : o.occlusion)
    add("occlusion", s, distort_images(real.images, Distortion::Occlusion, s, ++seed));
  if (o.uniform_noise_ceiling) {
    Generator g(++seed);
    add("uniform noise", 0, uniform(real.images.shape(), -1, 1, TensorOptions(kFloat32), &g));
  }
  return rows;
}

std::string format_calibration(const std::vector<CalibrationRow>& rows,
                               const std::string& version) {
  std::ostringstream os;
  char buf[256];
  os << "FCD-FMNIST (" << version << "), reference: the test images\n";
  std::snprintf(buf, sizeof buf, "%-20s %8s %12s %12s %10s %8s\n", "images", "strength", "FCD",
                "KID x1e3", "+-std", "acc %");
  os << buf;
  for (const auto& r : rows) {
    std::snprintf(buf, sizeof buf, "%-20s %8.2f %12.4f %12.4f %10.4f %8.2f\n", r.name.c_str(),
                  r.strength, r.metrics.fcd, 1e3 * r.metrics.kid.mean, 1e3 * r.metrics.kid.std,
                  100.0 * r.metrics.accuracy);
    os << buf;
  }
  return os.str();
}

}  // namespace smyrf::train
