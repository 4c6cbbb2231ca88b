// Helpers shared by the gradient study's files (not part of its interface, train/grad_study.h):
// what kind of run a folder holds, and a GAN run's training images with the study's errors.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/image_dataset.h"
#include "train/gan_train.h"

namespace smyrf::train::study_detail {

// True when the run folder was written by `smyrf lm train` (it has a tokenizer.json); otherwise
// the study treats it as an `smyrf gan train` run.
bool is_lm_run(const std::string& dir);

// The run's training images (load_gan_data), checked to fit D: (N, C, R, R) with the model's
// channels and resolution. `what` says what needs them ("capturing 'D.blocks.0.1'"), `hint` how
// to do without. Throws smyrf::Error (op "grad_study") naming the image path when they cannot be
// read or do not fit.
data::ImageDataset gan_training_images(const LoadedGan& l, const std::string& what,
                                       const std::string& hint);

// Cosine and relative error of `approx` against `exact`, both rows x w (row-major): per row and
// over everything. A row counts as zero when its norm is at most 1e-5 of the largest exact
// row's; zero against zero is cosine 1 and error 0, a zero exact row against a nonzero one
// cosine 0 and error NaN.
void compare_rows(const std::vector<double>& approx, const std::vector<double>& exact, int64_t w,
                  std::vector<double>& cos_rows, std::vector<double>& err_rows, double& cos_all,
                  double& err_all);

}  // namespace smyrf::train::study_detail
