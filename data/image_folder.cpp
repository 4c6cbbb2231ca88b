// A folder of images, one subfolder per class, read with stb_image (Debian's libstb).
#include <stb_image.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "data/image_dataset.h"
#include "data/image_resize.h"

namespace smyrf::data {
namespace fs = std::filesystem;

namespace {
bool is_image(const fs::path& p) {
  std::string e = p.extension().string();
  std::transform(e.begin(), e.end(), e.begin(), ::tolower);
  return e == ".png" || e == ".jpg" || e == ".jpeg" || e == ".bmp" || e == ".tga" || e == ".gif";
}
}  // namespace

ImageDataset load_image_folder(const std::string& root, int64_t size, int64_t channels) {
  const char* op = "image_folder";
  SMYRF_CHECK_HINT(channels == 1 || channels == 3, op, "channels must be 1 or 3, got " << channels,
                   "use 1 for grayscale, 3 for RGB");
  SMYRF_CHECK(size > 0, op, "image size must be positive, got " << size);
  SMYRF_CHECK_HINT(fs::is_directory(root), op, "folder not found: " << root,
                   "pass a folder with one subfolder of images per class");
  std::vector<fs::path> classes;
  for (auto& e : fs::directory_iterator(root))
    if (e.is_directory()) classes.push_back(e.path());
  std::sort(classes.begin(), classes.end());
  SMYRF_CHECK_HINT(!classes.empty(), op, root << " has no class subfolders",
                   "put the images of each class in their own subfolder, e.g. root/cats/*.png");
  std::vector<std::pair<fs::path, int64_t>> files;
  ImageDataset ds;
  for (size_t c = 0; c < classes.size(); ++c) {
    ds.class_names.push_back(classes[c].filename().string());
    std::vector<fs::path> in_class;
    for (auto& e : fs::directory_iterator(classes[c]))
      if (e.is_regular_file() && is_image(e.path())) in_class.push_back(e.path());
    std::sort(in_class.begin(), in_class.end());
    for (auto& p : in_class) files.emplace_back(p, static_cast<int64_t>(c));
  }
  SMYRF_CHECK_HINT(!files.empty(), op, root << " has class subfolders but no images in them",
                   "supported files: .png .jpg .jpeg .bmp .tga .gif");
  const int64_t n = static_cast<int64_t>(files.size());
  ds.images = empty({n, channels, size, size}, TensorOptions(kFloat32));
  std::vector<int64_t> labels(n);
  float* out = ds.images.data_ptr<float>();
  for (int64_t i = 0; i < n; ++i) {
    int w = 0, h = 0, got = 0;
    unsigned char* px = stbi_load(files[i].first.c_str(), &w, &h, &got, static_cast<int>(channels));
    SMYRF_CHECK_HINT(px != nullptr, op,
                     "cannot decode " << files[i].first.string() << ": "
                                      << (stbi_failure_reason() ? stbi_failure_reason() : "?"),
                     "the file is corrupt or not an image");
    std::vector<float> planar(static_cast<size_t>(channels) * w * h);
    for (int64_t c = 0; c < channels; ++c)
      for (int64_t p = 0; p < static_cast<int64_t>(w) * h; ++p)
        planar[c * w * h + p] = px[p * channels + c] / 127.5f - 1.0f;
    stbi_image_free(px);
    for (int64_t c = 0; c < channels; ++c)
      resize_plane(planar.data() + c * w * h, h, w, out + ((i * channels + c) * size) * size, size,
                   size);
    labels[i] = files[i].second;
  }
  ds.labels = from_vector(labels, {n});
  ds.num_classes = static_cast<int64_t>(classes.size());
  return ds;
}

}  // namespace smyrf::data
