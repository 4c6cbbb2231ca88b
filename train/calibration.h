// Calibration of the FCD/KID protocol (docs/biggan.md, evaluation step 4): what the numbers of
// the frozen classifier look like for real images and for real images made worse on purpose.
//
// The stand-in for a perfect generator is a class-balanced subset of the *training* images
// (per_class of each class, like 1k generated images per class); every row compares some set of
// images against the test set, exactly as generated samples are compared:
//   real train vs test            the floor: what sampling noise alone costs
//   noise sigma                   train subset + N(0, sigma^2) in [-1, 1] units, clamped
//   blur sigma                    Gaussian blur with standard deviation sigma pixels
//   occlusion side                a side x side mid-grey (0) square at a random place inside the
//                                 central 28x28 (where the garment is) of every image
//   uniform noise                 i.i.d. U(-1, 1) pixels: a ceiling (what an untrained G is near)
// All images are quantised to 8 bits before the classifier (train/metrics.h).
#pragma once
#include <string>
#include <vector>

#include "data/image_dataset.h"
#include "models/classifier.h"
#include "train/metrics.h"

namespace smyrf::train {

enum class Distortion { Noise, Blur, Occlusion };
const char* distortion_name(Distortion d);

// images (N, C, H, W) float in [-1, 1] -> a distorted copy (float32). Deterministic given seed.
// strength: noise sigma, blur sigma (pixels; the kernel spans +-ceil(3 sigma), image edges
// replicate), occlusion side (pixels, at most the image side).
Tensor distort_images(const Tensor& images, Distortion kind, double strength, uint64_t seed);

// The first per_class images of every class, in dataset order (deterministic).
data::ImageDataset class_balanced_subset(const data::ImageDataset& ds, int64_t per_class);

struct CalibrationOptions {
  int64_t per_class = 1000;
  std::vector<double> noise = {0.1, 0.2, 0.4};
  std::vector<double> blur = {0.6, 1.0, 1.6};
  std::vector<double> occlusion = {6, 10, 14};
  bool uniform_noise_ceiling = true;
  SampleMetricsOptions metrics;
  uint64_t seed = 0;
};

struct CalibrationRow {
  std::string name;       // "real train vs test", "noise", "blur", "occlusion", "uniform noise"
  double strength = 0;    // 0 where not applicable
  SampleMetrics metrics;  // accuracy is against the images' true labels
};

// test: the reference set (all of it). Rows in the order listed above.
std::vector<CalibrationRow> run_calibration(models::Classifier& model,
                                            const data::ImageDataset& train,
                                            const data::ImageDataset& test,
                                            const CalibrationOptions& options = {});

// A fixed-width text table of the rows, headed by the classifier version.
std::string format_calibration(const std::vector<CalibrationRow>& rows, const std::string& version);

}  // namespace smyrf::train
