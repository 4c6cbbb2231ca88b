// Helpers shared by the gradient study's files (not part of its interface, train/grad_study.h):
// what kind of run a folder holds, and a GAN run's training images with the study's errors.
#pragma once
#include <string>

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

}  // namespace smyrf::train::study_detail
