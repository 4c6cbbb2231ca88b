// Learning-rate schedule: linear warm-up then cosine decay (GPT-2 / nanoGPT style).
//
//   step < warmup:           max_lr * (step + 1) / warmup
//   warmup <= step < total:  min_lr + (max_lr - min_lr) * (1 + cos(pi * progress)) / 2,
//                            progress = (step - warmup) / (total - warmup)
//   step >= total:           min_lr
//
// step counts optimizer updates from 0. A pure function of the step, so a resumed run needs no
// scheduler state.
#pragma once
#include <cmath>
#include <cstdint>

namespace smyrf::train {

inline double warmup_cosine_lr(int64_t step, int64_t warmup, int64_t total, double max_lr,
                               double min_lr) {
  if (step < warmup) return max_lr * static_cast<double>(step + 1) / static_cast<double>(warmup);
  if (step >= total || total <= warmup) return min_lr;
  const double progress = static_cast<double>(step - warmup) / static_cast<double>(total - warmup);
  return min_lr + (max_lr - min_lr) * 0.5 * (1.0 + std::cos(M_PI * progress));
}

}  // namespace smyrf::train
