// Labelled image datasets held in memory as tensors, and the readers that build them.
//
//   images (N, C, H, W) float32 scaled to [-1, 1];  labels (N) int64 in [0, num_classes)
//
// Readers throw smyrf::Error (op "fashion_mnist" / "image_folder") naming the path and what is
// wrong, with a hint: a missing path, a truncated or corrupt file (wrong magic number, sizes
// that disagree), an empty folder.
#pragma once
#include <string>
#include <vector>

#include "core/tensor.h"

namespace smyrf::data {

struct ImageDataset {
  Tensor images;  // (N, C, H, W) float32 in [-1, 1]
  Tensor labels;  // (N) int64
  int64_t num_classes = 0;
  std::vector<std::string> class_names;
  int64_t size() const { return images.defined() ? images.size(0) : 0; }
};

// Where Debian's dataset-fashion-mnist package installs the IDX files.
constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

// Fashion-MNIST from its four gzip'd IDX files in `dir` ("train": 60k images, "test": 10k),
// 28x28 grayscale zero-padded (value -1, the background) to pad_to x pad_to (28 = no padding).
ImageDataset load_fashion_mnist(const std::string& dir, const std::string& split,
                                int64_t pad_to = 32);

// The class names of Fashion-MNIST, in label order.
const std::vector<std::string>& fashion_mnist_classes();

// Reads one IDX file (gzip'd or plain): returns the dims and the raw unsigned bytes. Throws on a
// wrong magic number (expects unsigned-byte data, 0x0008), a truncated file or a size mismatch.
struct IdxArray {
  std::vector<int64_t> dims;
  std::vector<uint8_t> data;
};
IdxArray read_idx(const std::string& path);

// A folder of images with one subfolder per class (sorted by name = label order); PNG, JPEG,
// BMP, TGA, GIF files are read with stb_image, converted to `channels` (1 or 3) and resized to
// image_size x image_size with area averaging (downscale) or bilinear interpolation (upscale).
ImageDataset load_image_folder(const std::string& root, int64_t image_size, int64_t channels = 3);

}  // namespace smyrf::data
