// Sample-quality metrics in the feature space of the frozen Fashion-MNIST classifier
// (docs/biggan.md, "Evaluation without Inception weights"). Nothing here is FID: the features
// come from models::Classifier, and every report names its version ("classifier vN").
//
//   FCD  Frechet distance between Gaussians fitted to two feature sets:
//        |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr(sqrt(S1^1/2 S2 S1^1/2)), all in float64; the
//        square roots come from a Jacobi eigendecomposition of symmetric matrices, with
//        eigenvalues that rounding pushed below zero clipped to zero (covariances are PSD).
//   KID  unbiased MMD^2 with the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3, averaged over
//        random subsets (mean and standard deviation over subsets), as in Binkowski et al. 2018.
//   accuracy of the classifier on generated images against their conditioning labels, and the
//        histogram of predicted classes (mode collapse shows as a skewed histogram).
//
// Images are quantised to 8 bits before the classifier sees them (quantize_images), so
// generated samples are judged exactly as they would be after a round trip through PNG files.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "models/classifier.h"

namespace smyrf::train {

// ---- linear algebra (float64, row-major n x n) ----
struct SymmetricEigen {
  std::vector<double> values;   // ascending
  std::vector<double> vectors;  // n x n row-major; column j is the eigenvector of values[j]
};
// Cyclic Jacobi rotations until the off-diagonal mass is below rel_tol times the Frobenius norm.
// Throws when a is not n x n or not symmetric (relative asymmetry above 1e-10).
SymmetricEigen symmetric_eigen(const std::vector<double>& a, int64_t n, double rel_tol = 1e-15,
                               int max_sweeps = 100);
// The PSD square root V diag(sqrt(max(l, 0))) V^T of a symmetric matrix.
std::vector<double> symmetric_sqrt(const std::vector<double>& a, int64_t n);

// ---- Gaussian fits and FCD ----
struct GaussianStats {
  int64_t dim = 0, count = 0;
  std::vector<double> mean;  // dim
  std::vector<double> cov;   // dim x dim, unbiased (divides by count - 1)
};
// features (N, D) float32 or float64, N >= 2.
GaussianStats fit_gaussian(const Tensor& features);
// tr(sqrt(S1^1/2 S2 S1^1/2)) (= tr(sqrt(S1 S2)) for PSD S1, S2), computed symmetrically.
double trace_sqrt_product(const std::vector<double>& s1, const std::vector<double>& s2, int64_t n);
double frechet_distance(const GaussianStats& a, const GaussianStats& b);

// ---- KID ----
struct KidResult {
  double mean = 0, std = 0;  // over subsets (std with divisor subsets - 1; 0 for one subset)
  int64_t subsets = 0, subset_size = 0;
};
// x (N, D), y (M, D): `subsets` times draw subset_size rows of each without replacement
// (clamped to min(N, M)) and average the unbiased MMD^2. Deterministic given seed.
KidResult kernel_inception_distance(const Tensor& x, const Tensor& y, int64_t subsets = 100,
                                    int64_t subset_size = 1000, uint64_t seed = 0);

// ---- classifier outputs ----
// [-1, 1] floats -> 8 bits (data::quantize_pixel) -> back to [-1, 1]; float32 result. Real
// Fashion-MNIST images come through unchanged (they are already on the 8-bit grid).
Tensor quantize_images(const Tensor& images);
// Fraction of rows of logits (N, C) whose argmax equals labels (N).
double label_accuracy(const Tensor& logits, const Tensor& labels);
// Counts of argmax classes, length num_classes.
std::vector<int64_t> predicted_histogram(const Tensor& logits, int64_t num_classes);

struct ClassifierOutputs {
  Tensor features;  // (N, feature_dim) float32
  Tensor logits;    // (N, num_classes) float32
};
// Runs the classifier in eval mode without gradients over images (N, C, H, W) in batches, after
// quantize_images, each batch on the model's device, the outputs on the CPU. Restores the
// model's previous train/eval mode.
ClassifierOutputs classify_images(models::Classifier& model, const Tensor& images,
                                  int64_t batch_size = 500);

// Everything a report needs about one set of images against a reference feature set.
struct SampleMetrics {
  double fcd = 0;
  KidResult kid;
  double accuracy = -1;            // against labels; -1 when no labels were given
  std::vector<int64_t> histogram;  // predicted classes
};
struct SampleMetricsOptions {
  int64_t kid_subsets = 100, kid_subset_size = 1000;
  uint64_t kid_seed = 0;
};
// images (N, C, H, W) in [-1, 1]; labels (N) int64 or undefined; reference: the classifier's
// outputs on the reference images (e.g. the 10k test images) and their Gaussian fit.
SampleMetrics evaluate_samples(models::Classifier& model, const Tensor& images,
                               const Tensor& labels, const ClassifierOutputs& reference,
                               const GaussianStats& reference_stats,
                               const SampleMetricsOptions& options = {});

}  // namespace smyrf::train
