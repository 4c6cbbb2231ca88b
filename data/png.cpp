#include "data/png.h"

#include <stb_image_write.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/atomic_file.h"
#include "core/ops.h"

namespace smyrf::data {
namespace {
void append_bytes(void* ctx, void* data, int size) {
  auto* out = static_cast<std::vector<char>*>(ctx);
  out->insert(out->end(), static_cast<char*>(data), static_cast<char*>(data) + size);
}
}  // namespace

uint8_t quantize_pixel(float x) {
  float v = std::round((std::clamp(x, -1.0f, 1.0f) + 1.0f) * 127.5f);
  return static_cast<uint8_t>(v);
}

void write_png(const std::string& path, const uint8_t* pixels, int64_t w, int64_t h, int64_t c) {
  SMYRF_CHECK(c == 1 || c == 3 || c == 4, "write_png", "channels must be 1, 3 or 4, got " << c);
  SMYRF_CHECK(w > 0 && h > 0, "write_png", "empty image " << w << "x" << h);
  std::vector<char> bytes;
  int ok = stbi_write_png_to_func(append_bytes, &bytes, static_cast<int>(w), static_cast<int>(h),
                                  static_cast<int>(c), pixels, static_cast<int>(w * c));
  SMYRF_CHECK(ok, "write_png", "PNG encoding failed for " << path);
  write_file_atomic(path, std::string(bytes.begin(), bytes.end()), "write_png");
}

void save_image_grid(const std::string& path, const Tensor& images0, int64_t nrow, int64_t pad,
                     double pad_value) {
  SMYRF_CHECK_HINT(images0.dim() == 4 && (images0.size(1) == 1 || images0.size(1) == 3),
                   "save_image_grid",
                   "expected (N, 1 or 3, H, W) images, got " << shape_str(images0.shape()),
                   "reshape a single image to (1, C, H, W)");
  Tensor images = raw::contiguous(raw::to_dtype(images0, kFloat32));
  const int64_t n = images.size(0), c = images.size(1), h = images.size(2), w = images.size(3);
  nrow = std::max<int64_t>(1, std::min(nrow, n));
  const int64_t rows = (n + nrow - 1) / nrow;
  const int64_t gw = nrow * (w + pad) + pad, gh = rows * (h + pad) + pad;
  std::vector<uint8_t> px(static_cast<size_t>(gw) * gh * c,
                          quantize_pixel(static_cast<float>(pad_value)));
  const float* src = images.data_ptr<float>();
  for (int64_t i = 0; i < n; ++i) {
    int64_t oy = pad + (i / nrow) * (h + pad), ox = pad + (i % nrow) * (w + pad);
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x)
          px[((oy + y) * gw + ox + x) * c + ch] =
              quantize_pixel(src[((i * c + ch) * h + y) * w + x]);
  }
  write_png(path, px.data(), gw, gh, c);
}

}  // namespace smyrf::data
