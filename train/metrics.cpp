#include "train/metrics.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "core/random.h"
#include "data/png.h"

namespace smyrf::train {
namespace {

// Row-major n x n product (small matrices: the feature dimension, ~128).
std::vector<double> matmul_nn(const std::vector<double>& a, const std::vector<double>& b,
                              int64_t n) {
  std::vector<double> c(static_cast<size_t>(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < n; ++k) {
      const double aik = a[i * n + k];
      if (aik == 0) continue;
      const double* brow = &b[k * n];
      double* crow = &c[i * n];
      for (int64_t j = 0; j < n; ++j) crow[j] += aik * brow[j];
    }
  return c;
}

Tensor as_float64_2d(const Tensor& t, const char* op) {
  SMYRF_CHECK_HINT(t.defined() && t.dim() == 2 && t.is_floating_point(), op,
                   "expected a floating (N, D) feature matrix, got "
                       << (t.defined() ? shape_str(t.shape()) : std::string("undefined")),
                   "pass the classifier's features, e.g. classify_images(...).features");
  return t.detach().to(kFloat64).contiguous();
}

}  // namespace

SymmetricEigen symmetric_eigen(const std::vector<double>& a_in, int64_t n, double rel_tol,
                               int max_sweeps) {
  SMYRF_CHECK(n >= 1 && static_cast<int64_t>(a_in.size()) == n * n, "symmetric_eigen",
              "expected " << n << " x " << n << " = " << n * n << " values, got " << a_in.size());
  double frob = 0, asym = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      frob += a_in[i * n + j] * a_in[i * n + j];
      asym = std::max(asym, std::abs(a_in[i * n + j] - a_in[j * n + i]));
    }
  frob = std::sqrt(frob);
  SMYRF_CHECK(std::isfinite(frob), "symmetric_eigen", "the matrix holds NaN or Inf");
  SMYRF_CHECK_HINT(asym <= 1e-10 * std::max(frob, 1e-300), "symmetric_eigen",
                   "the matrix is not symmetric (max |a_ij - a_ji| = " << asym << ")",
                   "symmetrise it first: (A + A^T) / 2");
  std::vector<double> a = a_in;
  // Exactly symmetric from here on: the rotations below rely on a_pq == a_qp.
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = i + 1; j < n; ++j)
      a[i * n + j] = a[j * n + i] = 0.5 * (a[i * n + j] + a[j * n + i]);
  std::vector<double> v(static_cast<size_t>(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i) v[i * n + i] = 1.0;

  const double stop = rel_tol * frob;
  for (int sweep = 0; sweep < max_sweeps; ++sweep) {
    double off = 0;
    for (int64_t p = 0; p < n; ++p)
      for (int64_t q = p + 1; q < n; ++q) off += a[p * n + q] * a[p * n + q];
    if (std::sqrt(2 * off) <= stop) break;
    for (int64_t p = 0; p < n; ++p)
      for (int64_t q = p + 1; q < n; ++q) {
        const double apq = a[p * n + q];
        if (apq == 0) continue;
        // The rotation angle that zeroes a_pq; t = tan of it, taken as the smaller root of
        // t^2 + 2 theta t - 1 = 0 so the rotation is at most 45 degrees (stable, converges).
        const double theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
        const double t =
            (theta >= 0 ? 1.0 : -1.0) / (std::abs(theta) + std::sqrt(theta * theta + 1));
        const double c = 1 / std::sqrt(t * t + 1), s = t * c;
        for (int64_t k = 0; k < n; ++k) {  // A <- A J (columns p, q)
          const double akp = a[k * n + p], akq = a[k * n + q];
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (int64_t k = 0; k < n; ++k) {  // A <- J^T A (rows p, q)
          const double apk = a[p * n + k], aqk = a[q * n + k];
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        a[p * n + q] = a[q * n + p] = 0;   // zero by construction; drop the rounding residue
        for (int64_t k = 0; k < n; ++k) {  // V <- V J
          const double vkp = v[k * n + p], vkq = v[k * n + q];
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
  }
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t i, int64_t j) { return a[i * n + i] < a[j * n + j]; });
  SymmetricEigen out;
  out.values.resize(static_cast<size_t>(n));
  out.vectors.resize(static_cast<size_t>(n * n));
  for (int64_t j = 0; j < n; ++j) {
    out.values[j] = a[order[j] * n + order[j]];
    for (int64_t k = 0; k < n; ++k) out.vectors[k * n + j] = v[k * n + order[j]];
  }
  return out;
}

std::vector<double> symmetric_sqrt(const std::vector<double>& a, int64_t n) {
  const SymmetricEigen e = symmetric_eigen(a, n);
  std::vector<double> r(static_cast<size_t>(n * n), 0.0);
  for (int64_t j = 0; j < n; ++j) {
    const double s = std::sqrt(std::max(e.values[j], 0.0));
    if (s == 0) continue;
    for (int64_t i = 0; i < n; ++i) {
      const double vis = e.vectors[i * n + j] * s;
      for (int64_t k = 0; k < n; ++k) r[i * n + k] += vis * e.vectors[k * n + j];
    }
  }
  return r;
}

GaussianStats fit_gaussian(const Tensor& features) {
  Tensor x = as_float64_2d(features, "fit_gaussian");
  const int64_t n = x.size(0), d = x.size(1);
  SMYRF_CHECK(n >= 2, "fit_gaussian", "need at least 2 samples for a covariance, got " << n);
  GaussianStats g;
  g.dim = d, g.count = n;
  Tensor mu = mean(x, {0}, true);
  Tensor xc = x - mu;
  // float64 GEMM; dividing by n - 1 gives the unbiased covariance (numpy.cov's default).
  Tensor cov = matmul(xc.t(), xc) / static_cast<double>(n - 1);
  g.mean = mu.to_vector<double>();
  g.cov = cov.contiguous().to_vector<double>();
  for (int64_t i = 0; i < d; ++i)  // the GEMM is symmetric only up to rounding
    for (int64_t j = i + 1; j < d; ++j)
      g.cov[i * d + j] = g.cov[j * d + i] = 0.5 * (g.cov[i * d + j] + g.cov[j * d + i]);
  return g;
}

double trace_sqrt_product(const std::vector<double>& s1, const std::vector<double>& s2, int64_t n) {
  // S1^1/2 S2 S1^1/2 is symmetric PSD and similar to S1 S2, so it has the same eigenvalues; unlike
  // S1 S2 it can be diagonalised by the symmetric solver, with no complex round-off to discard.
  const std::vector<double> r = symmetric_sqrt(s1, n);
  std::vector<double> m = matmul_nn(matmul_nn(r, s2, n), r, n);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = i + 1; j < n; ++j)
      m[i * n + j] = m[j * n + i] = 0.5 * (m[i * n + j] + m[j * n + i]);
  const SymmetricEigen e = symmetric_eigen(m, n);
  double tr = 0;
  for (double l : e.values) tr += std::sqrt(std::max(l, 0.0));
  return tr;
}

double frechet_distance(const GaussianStats& a, const GaussianStats& b) {
  SMYRF_CHECK(a.dim == b.dim && a.dim > 0, "frechet_distance",
              "feature dimensions differ: " << a.dim << " vs " << b.dim);
  const int64_t d = a.dim;
  double dist = 0;
  for (int64_t i = 0; i < d; ++i) dist += (a.mean[i] - b.mean[i]) * (a.mean[i] - b.mean[i]);
  for (int64_t i = 0; i < d; ++i) dist += a.cov[i * d + i] + b.cov[i * d + i];
  dist -= 2 * trace_sqrt_product(a.cov, b.cov, d);
  return dist;
}

KidResult kernel_inception_distance(const Tensor& x_in, const Tensor& y_in, int64_t subsets,
                                    int64_t subset_size, uint64_t seed) {
  Tensor x = as_float64_2d(x_in, "kernel_inception_distance");
  Tensor y = as_float64_2d(y_in, "kernel_inception_distance");
  SMYRF_CHECK(x.size(1) == y.size(1), "kernel_inception_distance",
              "feature dimensions differ: " << x.size(1) << " vs " << y.size(1));
  SMYRF_CHECK(subsets >= 1, "kernel_inception_distance", "subsets must be >= 1, got " << subsets);
  const int64_t m = std::min({subset_size, x.size(0), y.size(0)});
  SMYRF_CHECK(m >= 2, "kernel_inception_distance", "need at least 2 samples per subset, got " << m);
  const double d = static_cast<double>(x.size(1));
  Generator gen(seed);
  std::vector<double> values;
  for (int64_t s = 0; s < subsets; ++s) {
    Tensor xs = index_select(x, 0, randperm(x.size(0), &gen).slice(0, 0, m));
    Tensor ys = index_select(y, 0, randperm(y.size(0), &gen).slice(0, 0, m));
    auto kernel = [&](const Tensor& a, const Tensor& b) {
      return pow(matmul(a, b.t()) / d + 1.0, 3.0).contiguous().to_vector<double>();
    };
    const std::vector<double> kxx = kernel(xs, xs), kyy = kernel(ys, ys), kxy = kernel(xs, ys);
    double sxx = 0, syy = 0, sxy = 0;
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < m; ++j) {
        sxy += kxy[i * m + j];
        if (i == j) continue;  // the unbiased estimate leaves out k(x_i, x_i)
        sxx += kxx[i * m + j];
        syy += kyy[i * m + j];
      }
    const double md = static_cast<double>(m);
    values.push_back((sxx + syy) / (md * (md - 1)) - 2 * sxy / (md * md));
  }
  KidResult r;
  r.subsets = subsets, r.subset_size = m;
  r.mean = std::accumulate(values.begin(), values.end(), 0.0) / static_cast<double>(subsets);
  if (subsets > 1) {
    double ss = 0;
    for (double v : values) ss += (v - r.mean) * (v - r.mean);
    r.std = std::sqrt(ss / static_cast<double>(subsets - 1));
  }
  return r;
}

Tensor quantize_images(const Tensor& images) {
  SMYRF_CHECK(images.defined() && images.is_floating_point(), "quantize_images",
              "expected floating images in [-1, 1]");
  Tensor src = images.detach().to(kFloat32).contiguous();
  Tensor out = empty(src.shape(), TensorOptions(kFloat32));
  const float* s = src.data_ptr<float>();
  float* o = out.data_ptr<float>();
  for (int64_t i = 0, n = src.numel(); i < n; ++i)
    o[i] = static_cast<float>(data::quantize_pixel(s[i])) / 127.5f - 1.0f;  // as the IDX reader
  return out;
}

double label_accuracy(const Tensor& logits, const Tensor& labels) {
  SMYRF_CHECK(logits.dim() == 2 && labels.dim() == 1 && logits.size(0) == labels.size(0),
              "label_accuracy",
              "expected logits (N, C) and labels (N), got " << shape_str(logits.shape()) << " and "
                                                            << shape_str(labels.shape()));
  NoGradGuard ng;
  const std::vector<int64_t> pred = argmax(logits.detach(), 1).to_vector<int64_t>();
  const std::vector<int64_t> lab = labels.to(kInt64).to_vector<int64_t>();
  int64_t hit = 0;
  for (size_t i = 0; i < pred.size(); ++i) hit += pred[i] == lab[i];
  return pred.empty() ? 0.0 : static_cast<double>(hit) / static_cast<double>(pred.size());
}

std::vector<int64_t> predicted_histogram(const Tensor& logits, int64_t num_classes) {
  NoGradGuard ng;
  std::vector<int64_t> h(static_cast<size_t>(num_classes), 0);
  for (int64_t p : argmax(logits.detach(), 1).to_vector<int64_t>()) {
    SMYRF_CHECK(p >= 0 && p < num_classes, "predicted_histogram",
                "class " << p << " outside [0, " << num_classes << ")");
    ++h[p];
  }
  return h;
}

ClassifierOutputs classify_images(models::Classifier& model, const Tensor& images,
                                  int64_t batch_size) {
  SMYRF_CHECK(images.defined() && images.dim() == 4, "classify_images",
              "expected images (N, C, H, W)");
  NoGradGuard ng;
  const bool was_training = model.is_training();
  model.eval();
  std::vector<Tensor> feats, logits;
  for (int64_t i = 0; i < images.size(0); i += batch_size) {
    const int64_t n = std::min(batch_size, images.size(0) - i);
    auto [f, l] =
        model.features_and_logits(quantize_images(images.narrow(0, i, n)).to(model.device()));
    feats.push_back(f.to(Device::cpu()).contiguous());
    logits.push_back(l.to(Device::cpu()).contiguous());
  }
  model.train(was_training);
  return {cat(feats, 0), cat(logits, 0)};
}

SampleMetrics evaluate_samples(models::Classifier& model, const Tensor& images,
                               const Tensor& labels, const ClassifierOutputs& reference,
                               const GaussianStats& reference_stats,
                               const SampleMetricsOptions& options) {
  const ClassifierOutputs out = classify_images(model, images);
  SampleMetrics m;
  m.fcd = frechet_distance(fit_gaussian(out.features), reference_stats);
  m.kid = kernel_inception_distance(out.features, reference.features, options.kid_subsets,
                                    options.kid_subset_size, options.kid_seed);
  if (labels.defined()) m.accuracy = label_accuracy(out.logits, labels);
  m.histogram = predicted_histogram(out.logits, model.config().num_classes);
  return m;
}

}  // namespace smyrf::train
