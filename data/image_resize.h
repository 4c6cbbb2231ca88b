// Resizing one float image plane: area averaging when shrinking (no aliasing), bilinear
// interpolation (pixel centres aligned, as PyTorch's align_corners=False) when growing.
#pragma once
#include <cstdint>

namespace smyrf::data {
void resize_plane(const float* src, int64_t sh, int64_t sw, float* dst, int64_t dh, int64_t dw);
}  // namespace smyrf::data
