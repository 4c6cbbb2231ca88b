// safetensors writer/reader and atomic file writes: round trips, the exact byte layout, every
// corruption the reader must reject with a clear message, and interrupted writes.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>

#include "autograd/ops.h"
#include "core/atomic_file.h"
#include "core/safetensors.h"

using namespace smyrf;
namespace fs = std::filesystem;

namespace {

// A fresh directory under /tmp, removed with its contents at scope exit.
struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "smyrf_st_XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::permissions(path, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(path, ec);
  }
  std::string operator/(const std::string& f) const { return (path / f).string(); }
  size_t count() const {
    return static_cast<size_t>(std::distance(fs::directory_iterator(path), {}));
  }
};

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string le64(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>(n >> (8 * i));
  return s;
}

// A file from a hand-written header (padded like the writer pads) and data buffer.
std::string craft(std::string header, const std::string& data) {
  header.append((8 - header.size() % 8) % 8, ' ');
  return le64(header.size()) + header + data;
}

// The message of the smyrf::Error that f throws ("" when it does not throw).
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

bool has(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}
// Checks that a message contains `part` and shows the whole message when it does not.
#define CHECK_HAS(msg, part)                              \
  do {                                                    \
    const std::string check_has_m_ = (msg);               \
    CHECK_MESSAGE(has(check_has_m_, part), check_has_m_); \
  } while (0)

std::string load_error(const std::string& bytes, const TempDir& dir) {
  const std::string p = dir / "bad.safetensors";
  write_bytes(p, bytes);
  return error_of([&] { load_safetensors(p); });
}

NamedTensors sample() {
  return {{"w", from_vector<float>({1.5f, -2.f, 3.25f, 0.f, -0.f, 7.f}, {2, 3})},
          {"mask", from_vector<bool>({true, false, true}, {3})},
          {"idx", from_vector<int64_t>({-1, 0, std::numeric_limits<int64_t>::max()}, {3, 1})}};
}

}  // namespace

TEST_CASE("safetensors: round trip of every dtype, scalars and empty tensors") {
  TempDir dir;
  const float inf = std::numeric_limits<float>::infinity();
  NamedTensors in = {
      {"f32", from_vector<float>({1.f, -0.5f, inf, -inf, 1e-40f, 3.4e38f}, {2, 3})},
      {"f64", from_vector<double>({M_PI, -1e-300, 2.0}, {3})},
      {"i32", from_vector<int32_t>({std::numeric_limits<int32_t>::min(), -1, 0, 7}, {2, 2})},
      {"i64", from_vector<int64_t>({std::numeric_limits<int64_t>::min(), 42}, {1, 2, 1})},
      {"bool", from_vector<bool>({true, false, false, true, true}, {5})},
      {"scalar", scalar_tensor(2.5, kFloat64)},
      {"empty", zeros({0, 4})},
  };
  save_safetensors(dir / "t.safetensors", in, {});
  SafetensorsContents out = load_safetensors(dir / "t.safetensors");
  REQUIRE(out.tensors.size() == in.size());
  CHECK(out.metadata.empty());
  for (size_t i = 0; i < in.size(); ++i) {
    const auto& [name, t] = in[i];
    CAPTURE(name);
    // header order is the caller's order, whatever order the data buffer uses
    CHECK(out.tensors[i].first == name);
    const Tensor& u = out.tensors[i].second;
    CHECK(u.dtype() == t.dtype());
    CHECK(u.shape() == t.shape());
    CHECK(u.is_contiguous());
    CHECK_FALSE(u.requires_grad());
  }
  CHECK(out.tensors[0].second.to_vector<float>() == in[0].second.to_vector<float>());
  CHECK(out.tensors[1].second.to_vector<double>() == in[1].second.to_vector<double>());
  CHECK(out.tensors[2].second.to_vector<int32_t>() == in[2].second.to_vector<int32_t>());
  CHECK(out.tensors[3].second.to_vector<int64_t>() == in[3].second.to_vector<int64_t>());
  CHECK(out.tensors[4].second.to_vector<bool>() == in[4].second.to_vector<bool>());
  CHECK(out.tensors[5].second.item<double>() == 2.5);
  CHECK(out.tensors[6].second.numel() == 0);
  // NaN survives bit-exactly too (compare the bits, NaN != NaN)
  Tensor nan = full({2}, std::nan(""), kFloat32);
  const std::string bytes = safetensors_serialize({{"n", nan}});
  Tensor back = safetensors_parse(bytes).tensors[0].second;
  CHECK(std::memcmp(back.raw_data(), nan.raw_data(), 8) == 0);
}

TEST_CASE("safetensors: bfloat16 tensors are written as BF16 and read back bit-exactly") {
  // values exact in bfloat16 (8 significant bits), plus infinities
  const float inf = std::numeric_limits<float>::infinity();
  Tensor f = from_vector<float>({1.f, -0.5f, 3.f, 256.f, inf, -inf}, {2, 3});
  Tensor b = f.to(kBFloat16);
  const std::string bytes = safetensors_serialize({{"b", b}});
  CHECK(bytes.find("\"BF16\"") != std::string::npos);
  Tensor back = safetensors_parse(bytes).tensors[0].second;
  CHECK(back.dtype() == kBFloat16);
  CHECK(back.shape() == b.shape());
  CHECK(std::memcmp(back.raw_data(), b.raw_data(), 12) == 0);
  CHECK(back.to(kFloat32).to_vector<float>() == f.to_vector<float>());
}

TEST_CASE("safetensors: data is aligned to each tensor's element size") {
  // bool first, then f64: the writer must put the 8-byte tensor first in the data buffer
  const std::string bytes = safetensors_serialize(
      {{"b", from_vector<bool>({true}, {1})}, {"d", from_vector<double>({1.0, 2.0}, {2})}});
  CHECK_HAS(bytes, "\"d\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,16]}");
  CHECK_HAS(bytes, "\"b\":{\"dtype\":\"BOOL\",\"shape\":[1],\"data_offsets\":[16,17]}");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
  CHECK((8 + n) % 8 == 0);
}

TEST_CASE("safetensors: non-contiguous tensors are written contiguous") {
  Tensor base = arange(0.0, 12.0, 1.0, kFloat32).reshape({3, 4});
  Tensor tr = base.t();                             // (4, 3), strides (1, 4)
  Tensor sl = base.slice(1, 0, 4, 2);               // (3, 2), every other column
  Tensor ex = tensor({1.0f, 2.0f}).expand({3, 2});  // stride 0
  REQUIRE_FALSE(tr.is_contiguous());
  REQUIRE_FALSE(sl.is_contiguous());
  SafetensorsContents c =
      safetensors_parse(safetensors_serialize({{"tr", tr}, {"sl", sl}, {"ex", ex}}));
  CHECK(c.tensors[0].second.shape() == Shape{4, 3});
  CHECK(c.tensors[0].second.to_vector<float>() ==
        std::vector<float>{0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11});
  CHECK(c.tensors[1].second.to_vector<float>() == std::vector<float>{0, 2, 4, 6, 8, 10});
  CHECK(c.tensors[2].second.to_vector<float>() == std::vector<float>{1, 2, 1, 2, 1, 2});
}

TEST_CASE("safetensors: metadata round trip") {
  TempDir dir;
  SafetensorsMetadata meta = {
      {"format", "pt"}, {"note", "quotes \" and\nnewlines, ünïcode"}, {"empty", ""}};
  save_safetensors(dir / "m.safetensors", sample(), meta);
  SafetensorsContents c = load_safetensors(dir / "m.safetensors");
  CHECK(c.metadata == meta);
  CHECK(c.tensors.size() == 3);
  // metadata-only file (no tensors) is valid
  SafetensorsContents e = safetensors_parse(safetensors_serialize({}, {{"a", "b"}}));
  CHECK(e.tensors.empty());
  CHECK(e.metadata.at("a") == "b");
}

TEST_CASE("safetensors: byte-exact layout of a tiny file") {
  // Hand-computed from the format: u64 LE header length (136 = 134 bytes of JSON + 2 spaces of
  // padding to a multiple of 8), the JSON (metadata first, then tensors in the given order;
  // the f32 tensor is placed first in the data buffer because it has the larger element size),
  // then 1.0f, -2.0f little-endian (00 00 80 3f, 00 00 00 c0), then the bools 01 00 01.
  const std::string expected = std::string("\x88\0\0\0\0\0\0\0", 8) +
                               "{\"__metadata__\":{\"k\":\"v\"},"
                               "\"m\":{\"dtype\":\"BOOL\",\"shape\":[3],\"data_offsets\":[8,11]},"
                               "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}  " +
                               std::string("\x00\x00\x80\x3f\x00\x00\x00\xc0", 8) +
                               std::string("\x01\x00\x01", 3);
  NamedTensors t = {{"m", from_vector<bool>({true, false, true}, {3})},
                    {"w", tensor({1.0f, -2.0f})}};
  TempDir dir;
  save_safetensors(dir / "tiny.safetensors", t, {{"k", "v"}});
  std::ifstream f(dir / "tiny.safetensors", std::ios::binary);
  const std::string got((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  CHECK(got.size() == expected.size());
  CHECK(got == expected);
  CHECK(safetensors_serialize(t, {{"k", "v"}}) == expected);
}

TEST_CASE("safetensors: reads files from other writers (unpadded header, any key order)") {
  // The reference Python writer sorts keys and may pad differently; only offsets matter.
  std::string header =
      "{\"b\":{\"dtype\":\"I32\",\"shape\":[],\"data_offsets\":[4,8]},"
      "\"a\":{\"shape\":[1],\"data_offsets\":[0,4],\"dtype\":\"F32\"}}";
  std::string bytes =
      le64(header.size()) + header + std::string("\x00\x00\x80\x3f\x07\x00\x00\x00", 8);
  SafetensorsContents c = safetensors_parse(bytes);
  REQUIRE(c.tensors.size() == 2);
  CHECK(c.tensors[0].first == "b");
  CHECK(c.tensors[0].second.item<int32_t>() == 7);
  CHECK(c.tensors[0].second.dim() == 0);
  CHECK(c.tensors[1].second.item<float>() == 1.0f);
}

TEST_CASE("safetensors: corrupt files give clear errors naming the file") {
  TempDir dir;
  const std::string good = safetensors_serialize(sample());
  const std::string f32 = std::string("\x00\x00\x80\x3f\x00\x00\x00\x40", 8);  // 1.0f, 2.0f

  SUBCASE("missing file") {
    std::string m = error_of([&] { load_safetensors(dir / "nope.safetensors"); });
    CHECK_HAS(m, "[safetensors]");
    CHECK_HAS(m, "nope.safetensors");
    CHECK_HAS(m, "does not exist");
  }
  SUBCASE("empty and shorter than the length field") {
    CHECK_HAS(load_error("", dir), "shorter than the 8-byte header length");
    CHECK_HAS(load_error("\x10\x00\x00", dir), "shorter than the 8-byte header length");
  }
  SUBCASE("truncated in the data") {
    std::string m = load_error(good.substr(0, good.size() - 5), dir);
    CHECK_HAS(m, "bad.safetensors");
    CHECK_HAS(m, "out of range");
    CHECK_HAS(m, "truncated");
  }
  SUBCASE("truncated in the header") {
    CHECK_HAS(load_error(good.substr(0, 20), dir), "exceeds the file");
  }
  SUBCASE("header length beyond the file") {
    std::string b = good;
    b.replace(0, 8, le64(1ull << 40));
    CHECK_HAS(load_error(b, dir), "header length 1099511627776 exceeds the file");
  }
  SUBCASE("bad JSON") {
    std::string m = load_error(craft("{\"a\": {\"dtype\": \"F32\",", f32), dir);
    CHECK_HAS(m, "not valid JSON");
    CHECK_HAS(load_error(craft("[1, 2]", ""), dir), "not a JSON object");
  }
  SUBCASE("unknown dtype") {
    std::string m =
        load_error(craft(R"({"a":{"dtype":"F16","shape":[4],"data_offsets":[0,8]}})", f32), dir);
    CHECK_HAS(m, "unsupported dtype \"F16\"");
    CHECK_HAS(m, "F32, F64, BF16, I32, I64, BOOL");
  }
  SUBCASE("missing fields and wrong types") {
    CHECK_HAS(load_error(craft(R"({"a":{"dtype":"F32","shape":[2]}})", f32), dir), "needs");
    CHECK_HAS(
        load_error(craft(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", f32), dir),
        "non-negative integer");
    CHECK_HAS(
        load_error(craft(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", f32), dir),
        "data_offsets must be [begin, end]");
    CHECK_HAS(load_error(craft(R"({"__metadata__":{"k":1}})", ""), dir), "is not a string");
  }
  SUBCASE("offsets out of range") {
    std::string m =
        load_error(craft(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", f32), dir);
    CHECK_HAS(m, "tensor 'a' data_offsets [0, 16] out of range for a data buffer of 8 bytes");
    CHECK_HAS(
        load_error(craft(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}})", f32), dir),
        "out of range");
  }
  SUBCASE("overlapping tensors") {
    std::string m = load_error(craft(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                     R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                                     f32 + f32.substr(0, 4)),
                               dir);
    CHECK_HAS(m, "tensors 'a' and 'b' overlap");
  }
  SUBCASE("holes and trailing bytes") {
    CHECK_HAS(
        load_error(craft(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", f32), dir),
        "belong to no tensor");
    CHECK_HAS(
        load_error(craft(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", f32), dir),
        "trailing bytes");
  }
  SUBCASE("shape and size disagree") {
    std::string m =
        load_error(craft(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", f32), dir);
    CHECK_HAS(m, "tensor 'a' has shape (3,) F32 (3 elements) but data_offsets span 8 bytes");
    CHECK_HAS(
        load_error(
            craft(
                R"({"a":{"dtype":"I64","shape":[4294967296,4294967296,16],"data_offsets":[0,8]}})",
                f32),
            dir),
        "overflows");
  }
  SUBCASE("a directory is not a file") {
    CHECK_HAS(error_of([&] { load_safetensors(dir.path.string()); }), "not a regular file");
  }
}

TEST_CASE("safetensors: bad arguments to save are rejected before writing") {
  TempDir dir;
  const std::string p = dir / "x.safetensors";
  save_safetensors(p, sample());
  const std::string before = read_file(p);
  CHECK_HAS(error_of([&] {
              save_safetensors(p, {{"a", ones({1})}, {"a", ones({1})}});
            }),
            "appears twice");
  CHECK_HAS(error_of([&] { save_safetensors(p, {{"__metadata__", ones({1})}}); }), "reserved");
  CHECK_HAS(error_of([&] { save_safetensors(p, {{"a", Tensor()}}); }), "'a' is undefined");
  CHECK_HAS(error_of([&] { save_safetensors(p, {{"", ones({1})}}); }), "empty name");
  CHECK(read_file(p) == before);
  CHECK(dir.count() == 1);  // no temp files left behind
}

TEST_CASE("atomic_file: an interrupted write leaves the previous file intact") {
  TempDir dir;
  const std::string p = dir / "model.safetensors";
  save_safetensors(p, sample(), {{"v", "1"}});
  const std::string before = read_file(p);

  SUBCASE("the writer dies half way") {
    // A fill callback that throws after writing some bytes stands for a crash or a full disk.
    std::string m = error_of([&] {
      write_file_atomic(p, [](AtomicFileWriter& w) {
        w.write(std::string(1 << 20, 'x'));  // past the internal buffer: really on disk
        throw Error("test", "simulated failure mid-write");
      });
    });
    CHECK_HAS(m, "simulated failure mid-write");
    CHECK(read_file(p) == before);
    CHECK(dir.count() == 1);  // the temp file was removed
  }
  SUBCASE("stale temp files from a crashed run are ignored") {
    write_bytes(dir / "model.safetensors.tmp", "garbage");
    write_bytes(dir / ".model.safetensors.tmp.1.0", "garbage");
    write_bytes(dir / (".model.safetensors.tmp." + std::to_string(::getpid()) + ".0"), "garbage");
    CHECK(load_safetensors(p).metadata.at("v") == "1");
    save_safetensors(p, sample(), {{"v", "2"}});
    CHECK(load_safetensors(p).metadata.at("v") == "2");
    CHECK(read_file(dir / "model.safetensors.tmp") == "garbage");
    CHECK(dir.count() == 4);
  }
  SUBCASE("the rename fails (target is a directory)") {
    const std::string d = dir / "sub";
    fs::create_directory(d);
    write_bytes(dir / "sub/keep", "k");
    std::string m = error_of([&] { save_safetensors(d, sample()); });
    CHECK_HAS(m, "[safetensors] cannot rename");
    CHECK_HAS(m, "sub");
    CHECK(dir.count() == 2);  // model.safetensors and sub/, no temp file
    CHECK(read_file(p) == before);
  }
  SUBCASE("the directory does not exist") {
    std::string m = error_of([&] { save_safetensors(dir / "missing/x.safetensors", sample()); });
    CHECK_HAS(m, "cannot create temp file");
    CHECK_HAS(m, "must exist and be writable");
  }
  SUBCASE("read-only directory") {
    if (::geteuid() == 0) {
      MESSAGE("running as root: permissions do not stop writes; skipped");
      return;
    }
    fs::permissions(dir.path, fs::perms::owner_read | fs::perms::owner_exec);
    std::string m = error_of([&] { save_safetensors(p, sample(), {{"v", "2"}}); });
    fs::permissions(dir.path, fs::perms::owner_all);
    CHECK_HAS(m, "cannot create temp file");
    CHECK(read_file(p) == before);
  }
}

TEST_CASE("atomic_file: whole-file write and read") {
  TempDir dir;
  write_file_atomic(dir / "a.json", std::string("{\"x\": 1}\n"));
  CHECK(read_file(dir / "a.json") == "{\"x\": 1}\n");
  write_file_atomic(dir / "a.json", std::string(""));
  CHECK(read_file(dir / "a.json").empty());
  CHECK_HAS(error_of([&] { read_file(dir / "none.json", "cfg"); }), "[cfg] cannot open");
  CHECK(dir.count() == 1);
}
