// Writing images: a PNG from 8-bit pixels, and a grid of a batch of images in [-1, 1].
// Files are written atomically (temp file, fsync, rename): a crash never leaves half a PNG.
#pragma once
#include <cstdint>
#include <string>

#include "core/tensor.h"

namespace smyrf::data {

// pixels: h * w * channels bytes, row-major, interleaved channels (1, 3 or 4).
void write_png(const std::string& path, const uint8_t* pixels, int64_t width, int64_t height,
               int64_t channels);

// images (N, C, H, W) float in [-1, 1] (clamped), C = 1 or 3, laid out nrow per row with a
// `pad`-pixel border of `pad_value` (in [-1, 1]).
void save_image_grid(const std::string& path, const Tensor& images, int64_t nrow = 8,
                     int64_t pad = 2, double pad_value = 1.0);

// Quantises [-1, 1] floats to uint8 exactly as image files do: round((x + 1) * 127.5), clamped.
uint8_t quantize_pixel(float x);

}  // namespace smyrf::data
