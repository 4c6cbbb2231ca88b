// Data readers and the DataLoader: real Fashion-MNIST files, corrupt files, image folders,
// sample grids, and reproducible, resumable batching.
#include <doctest/doctest.h>
#include <stb_image.h>
#include <zlib.h>

#include <unistd.h>
#include <filesystem>
#include <fstream>
#include <set>

#include "core/ops.h"
#include "data/image_dataset.h"
#include "data/loader.h"
#include "data/png.h"

using namespace smyrf;
using namespace smyrf::data;
namespace fs = std::filesystem;

namespace {
fs::path scratch(const std::string& name) {
  fs::path p =
      fs::temp_directory_path() / ("smyrf_test_data_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}
void write_gz(const fs::path& p, const std::vector<uint8_t>& bytes) {
  gzFile f = gzopen(p.c_str(), "wb");
  REQUIRE(f != nullptr);
  gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(f);
}
std::vector<uint8_t> idx_header(std::vector<uint32_t> dims) {
  std::vector<uint8_t> h = {0, 0, 8, static_cast<uint8_t>(dims.size())};
  for (uint32_t d : dims)
    for (int s = 24; s >= 0; s -= 8) h.push_back(static_cast<uint8_t>(d >> s));
  return h;
}
}  // namespace

TEST_CASE("Fashion-MNIST test split: 10k images padded to 32x32 in [-1, 1], 1000 per class") {
  if (!fs::exists(kFashionMnistDir)) {
    MESSAGE("dataset-fashion-mnist is not installed; scripts/install-deps installs it");
    return;
  }
  ImageDataset ds = load_fashion_mnist(kFashionMnistDir, "test", 32);
  CHECK(ds.images.shape() == Shape{10000, 1, 32, 32});
  CHECK(ds.labels.shape() == Shape{10000});
  CHECK(ds.num_classes == 10);
  auto px = ds.images.to_vector<float>();
  float lo = 1e9, hi = -1e9;
  for (float v : px) lo = std::min(lo, v), hi = std::max(hi, v);
  CHECK(lo == doctest::Approx(-1.0f));
  CHECK(hi == doctest::Approx(1.0f));
  // the 2-pixel border added by padding is background
  for (int64_t y = 0; y < 32; ++y) CHECK(px[y * 32 + 0] == -1.0f);
  std::vector<int64_t> count(10, 0);
  for (int64_t l : ds.labels.to_vector<int64_t>()) count[l]++;
  for (int64_t c : count) CHECK(c == 1000);
}

TEST_CASE("IDX reader: wrong magic, truncated data and missing files give clear errors") {
  fs::path dir = scratch("idx");
  std::vector<uint8_t> good = idx_header({2, 3});
  for (int i = 0; i < 6; ++i) good.push_back(static_cast<uint8_t>(i));
  write_gz(dir / "good.gz", good);
  IdxArray a = read_idx((dir / "good.gz").string());
  CHECK(a.dims == std::vector<int64_t>{2, 3});
  CHECK(a.data[5] == 5);

  std::vector<uint8_t> bad = good;
  bad[2] = 0x0D;  // float data, not unsigned bytes
  write_gz(dir / "magic.gz", bad);
  CHECK_THROWS_WITH_AS(read_idx((dir / "magic.gz").string()),
                       doctest::Contains("wrong magic number"), Error);

  std::vector<uint8_t> shortf(good.begin(), good.end() - 2);
  write_gz(dir / "short.gz", shortf);
  CHECK_THROWS_WITH_AS(read_idx((dir / "short.gz").string()), doctest::Contains("truncated"),
                       Error);

  CHECK_THROWS_WITH_AS(read_idx((dir / "missing.gz").string()), doctest::Contains("file not found"),
                       Error);
  CHECK_THROWS_WITH_AS(load_fashion_mnist((dir / "nope").string(), "train"),
                       doctest::Contains("dataset-fashion-mnist"), Error);

  // images and labels that disagree in count
  write_gz(dir / "train-images-idx3-ubyte.gz", [] {
    std::vector<uint8_t> v = idx_header({2, 2, 2});
    v.resize(v.size() + 8, 7);
    return v;
  }());
  write_gz(dir / "train-labels-idx1-ubyte.gz", [] {
    std::vector<uint8_t> v = idx_header({3});
    v.resize(v.size() + 3, 1);
    return v;
  }());
  CHECK_THROWS_WITH_AS(load_fashion_mnist(dir.string(), "train", 2),
                       doctest::Contains("do not pair up"), Error);
  fs::remove_all(dir);
}

TEST_CASE("image folder: classes from subfolders, resize, and errors for empty or corrupt input") {
  fs::path root = scratch("folder");
  CHECK_THROWS_WITH_AS(load_image_folder(root.string(), 8),
                       doctest::Contains("no class subfolders"), Error);
  fs::create_directories(root / "a");
  fs::create_directories(root / "b");
  CHECK_THROWS_WITH_AS(load_image_folder(root.string(), 8), doctest::Contains("no images"), Error);
  // a: a white 16x16 image; b: a black 4x4 image (upscaled to 8)
  std::vector<uint8_t> white(16 * 16 * 3, 255), black(4 * 4 * 3, 0);
  write_png((root / "a" / "x.png").string(), white.data(), 16, 16, 3);
  write_png((root / "b" / "y.png").string(), black.data(), 4, 4, 3);
  ImageDataset ds = load_image_folder(root.string(), 8, 3);
  CHECK(ds.images.shape() == Shape{2, 3, 8, 8});
  CHECK(ds.class_names == std::vector<std::string>{"a", "b"});
  CHECK(ds.labels.to_vector<int64_t>() == std::vector<int64_t>{0, 1});
  auto px = ds.images.to_vector<float>();
  CHECK(px[0] == doctest::Approx(1.0f));
  CHECK(px[3 * 64] == doctest::Approx(-1.0f));
  std::ofstream(root / "b" / "broken.png") << "not a png";
  CHECK_THROWS_WITH_AS(load_image_folder(root.string(), 8, 3), doctest::Contains("cannot decode"),
                       Error);
  fs::remove_all(root);
}

TEST_CASE("sample grid: quantisation and layout") {
  CHECK(quantize_pixel(-1.f) == 0);
  CHECK(quantize_pixel(1.f) == 255);
  CHECK(quantize_pixel(0.f) == 128);
  CHECK(quantize_pixel(5.f) == 255);
  fs::path dir = scratch("grid");
  Tensor imgs = full({3, 1, 4, 4}, -1.0);
  save_image_grid((dir / "g.png").string(), imgs, 2, 1, 1.0);
  int w, h, c;
  unsigned char* p = stbi_load((dir / "g.png").c_str(), &w, &h, &c, 1);
  REQUIRE(p != nullptr);
  CHECK(w == 2 * 5 + 1);
  CHECK(h == 2 * 5 + 1);
  CHECK(p[0] == 255);    // border
  CHECK(p[w + 1] == 0);  // first pixel of image 0
  stbi_image_free(p);
  fs::remove_all(dir);
}

TEST_CASE("DataLoader: every index once per epoch, reproducible from the seed, resumable") {
  auto make = [](const std::vector<int64_t>& idx) {
    return Batch{from_vector(idx, {static_cast<int64_t>(idx.size())})};
  };
  DataLoader::Options o;
  o.batch_size = 4;
  o.seed = 7;
  DataLoader a(10, make, o);  // 2 batches per epoch with drop_last
  CHECK(a.batches_per_epoch() == 2);
  std::vector<std::vector<int64_t>> seen;
  for (int i = 0; i < 6; ++i) seen.push_back(a.next()[0].to_vector<int64_t>());
  std::set<int64_t> epoch0(seen[0].begin(), seen[0].end());
  epoch0.insert(seen[1].begin(), seen[1].end());
  CHECK(epoch0.size() == 8);  // no repeats within an epoch
  CHECK(seen[0] != seen[2]);  // epochs reshuffle
  CHECK(a.position().epoch == 3);

  DataLoader b(10, make, o);
  for (int i = 0; i < 6; ++i) CHECK(b.next()[0].to_vector<int64_t>() == seen[i]);

  DataLoader c(10, make, o);
  c.seek({1, 1});
  CHECK(c.next()[0].to_vector<int64_t>() == seen[3]);

  o.seed = 8;
  DataLoader d(10, make, o);
  CHECK(d.next()[0].to_vector<int64_t>() != seen[0]);
}

TEST_CASE("DataLoader: an error in make_batch reaches the caller") {
  DataLoader::Options o;
  o.batch_size = 2;
  DataLoader l(
      4, [](const std::vector<int64_t>&) -> Batch { throw Error("make_batch", "boom"); }, o);
  CHECK_THROWS_WITH_AS(l.next(), doctest::Contains("boom"), Error);
  CHECK_THROWS_WITH_AS(DataLoader(0, nullptr, o), doctest::Contains("empty"), Error);
}
