// Fashion-MNIST / MNIST IDX files, gzip'd (as Debian ships them) or plain, read with zlib.
#include <zlib.h>

#include <filesystem>

#include "core/ops.h"
#include "data/image_dataset.h"

namespace smyrf::data {
namespace fs = std::filesystem;

namespace {
std::vector<uint8_t> read_gz(const std::string& path, const char* op) {
  SMYRF_CHECK_HINT(
      fs::exists(path), op, "file not found: " << path,
      "install Debian's dataset-fashion-mnist or pass the folder holding the IDX files");
  gzFile f = gzopen(path.c_str(), "rb");  // reads plain files transparently too
  SMYRF_CHECK_HINT(f != nullptr, op, "cannot open " << path, "check the file's permissions");
  std::vector<uint8_t> out;
  uint8_t buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof buf)) > 0) out.insert(out.end(), buf, buf + n);
  int err = 0;
  const char* msg = gzerror(f, &err);
  std::string what = msg ? msg : "";
  gzclose(f);
  SMYRF_CHECK_HINT(n == 0 && (err == Z_OK || err == Z_STREAM_END), op,
                   "corrupt or truncated gzip data in " << path << ": " << what,
                   "re-install or re-download the file");
  return out;
}

uint32_t be32(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}
}  // namespace

IdxArray read_idx(const std::string& path) {
  const char* op = "read_idx";
  std::vector<uint8_t> raw = read_gz(path, op);
  SMYRF_CHECK_HINT(raw.size() >= 4, op, path << " is truncated: " << raw.size() << " bytes",
                   "the file is damaged");
  SMYRF_CHECK_HINT(raw[0] == 0 && raw[1] == 0 && raw[2] == 0x08, op,
                   path << " has a wrong magic number (bytes " << int(raw[0]) << " " << int(raw[1])
                        << " " << int(raw[2]) << ")",
                   "expected an IDX file of unsigned bytes (magic 0x0000 08 nn)");
  const int ndim = raw[3];
  SMYRF_CHECK(ndim >= 1 && ndim <= 4, op, path << " declares " << ndim << " dims");
  SMYRF_CHECK_HINT(raw.size() >= 4 + 4 * static_cast<size_t>(ndim), op,
                   path << " is truncated in its header", "the file is damaged");
  IdxArray a;
  size_t count = 1;
  for (int i = 0; i < ndim; ++i) {
    a.dims.push_back(be32(raw.data() + 4 + 4 * i));
    count *= a.dims.back();
  }
  const size_t header = 4 + 4 * ndim;
  SMYRF_CHECK_HINT(raw.size() == header + count, op,
                   path << " holds " << raw.size() - header << " data bytes but its header "
                        << shape_str(a.dims) << " needs " << count,
                   "the file is truncated or not an IDX file");
  a.data.assign(raw.begin() + header, raw.end());
  return a;
}

const std::vector<std::string>& fashion_mnist_classes() {
  static const std::vector<std::string> names = {"t-shirt/top", "trouser",   "pullover", "dress",
                                                 "coat",        "sandal",    "shirt",    "sneaker",
                                                 "bag",         "ankle boot"};
  return names;
}

ImageDataset load_fashion_mnist(const std::string& dir, const std::string& split, int64_t pad_to) {
  const char* op = "fashion_mnist";
  SMYRF_CHECK_HINT(split == "train" || split == "test", op, "unknown split '" << split << "'",
                   "use train or test");
  SMYRF_CHECK_HINT(
      fs::is_directory(dir), op, "folder not found: " << dir,
      "install Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist)");
  const std::string prefix = dir + "/" + (split == "train" ? "train" : "t10k");
  IdxArray img = read_idx(prefix + "-images-idx3-ubyte.gz");
  IdxArray lab = read_idx(prefix + "-labels-idx1-ubyte.gz");
  SMYRF_CHECK_HINT(img.dims.size() == 3 && lab.dims.size() == 1 && img.dims[0] == lab.dims[0], op,
                   "images " << shape_str(img.dims) << " and labels " << shape_str(lab.dims)
                             << " do not pair up",
                   "expected (N, 28, 28) images and (N) labels");
  const int64_t n = img.dims[0], h = img.dims[1], w = img.dims[2];
  SMYRF_CHECK(pad_to >= h && pad_to >= w, op,
              "pad_to " << pad_to << " is smaller than the images " << h << "x" << w);
  for (uint8_t l : lab.data)
    SMYRF_CHECK(l < 10, op, "label " << int(l) << " out of range in " << prefix);
  ImageDataset ds;
  ds.images = full({n, 1, pad_to, pad_to}, -1.0, TensorOptions(kFloat32));
  float* out = ds.images.data_ptr<float>();
  const int64_t top = (pad_to - h) / 2, left = (pad_to - w) / 2;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x)
        out[(i * pad_to + top + y) * pad_to + left + x] =
            img.data[(i * h + y) * w + x] / 127.5f - 1.0f;
  std::vector<int64_t> labels(lab.data.begin(), lab.data.end());
  ds.labels = from_vector(labels, {n});
  ds.num_classes = 10;
  ds.class_names = fashion_mnist_classes();
  return ds;
}

}  // namespace smyrf::data
