#include "core/safetensors.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>

#include "core/atomic_file.h"
#include "core/ops.h"

// The format is little-endian and we copy tensor bytes verbatim.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "safetensors I/O assumes a little-endian host");

namespace smyrf {
namespace {

using ojson = nlohmann::ordered_json;
constexpr const char* kOp = "safetensors";
// The reference implementation refuses headers above 100 MB; a larger length is corruption.
constexpr uint64_t kMaxHeader = 100ull << 20;

[[noreturn]] void fail(const std::string& path, const std::string& msg, const std::string& hint) {
  throw Error(kOp, "'" + path + "': " + msg, hint);
}

bool parse_dtype(const std::string& s, DType& out) {
  static const std::pair<const char*, DType> table[] = {{"F32", kFloat32},   {"F64", kFloat64},
                                                        {"BF16", kBFloat16}, {"I32", kInt32},
                                                        {"I64", kInt64},     {"BOOL", kBool}};
  for (auto& [name, dt] : table)
    if (s == name) return out = dt, true;
  return false;
}

// Tensors prepared for writing: contiguous CPU data plus their place in the data buffer.
struct Planned {
  std::string name;
  Tensor data;
  uint64_t begin = 0, end = 0;
};

// Validates everything before the first byte is written, so a bad argument never costs a file.
std::vector<Planned> plan(const NamedTensors& tensors, const SafetensorsMetadata& metadata,
                          std::string& header, const std::string& path) {
  std::set<std::string> seen;
  std::vector<Planned> items;
  for (auto& [name, t] : tensors) {
    if (name.empty()) fail(path, "cannot save a tensor with an empty name", "name every tensor");
    if (name == "__metadata__")
      fail(path, "the name '__metadata__' is reserved by the format", "rename the tensor");
    if (!seen.insert(name).second)
      fail(path, "tensor name '" + name + "' appears twice",
           "names in a safetensors file must be unique");
    if (!t.defined()) fail(path, "tensor '" + name + "' is undefined", "pass only defined tensors");
    Tensor c = t.device().is_cpu() ? t : raw::to_device(t, Device::cpu());
    items.push_back({name, raw::contiguous(c)});
  }
  // Largest element size first (stable): with a header of a multiple of 8 bytes, every tensor
  // then starts at a multiple of its own element size, so readers may map it in place.
  std::vector<size_t> order(items.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return dtype_size(items[a].data.dtype()) > dtype_size(items[b].data.dtype());
  });
  uint64_t pos = 0;
  for (size_t i : order) {
    items[i].begin = pos;
    pos += static_cast<uint64_t>(items[i].data.numel()) * dtype_size(items[i].data.dtype());
    items[i].end = pos;
  }
  // The header lists tensors in the caller's order (state_dict order), metadata first.
  ojson h = ojson::object();
  if (!metadata.empty()) {
    ojson m = ojson::object();
    for (auto& [k, v] : metadata) m[k] = v;
    h["__metadata__"] = m;
  }
  for (auto& it : items) {
    ojson e = ojson::object();
    e["dtype"] = safetensors_dtype(it.data.dtype());
    e["shape"] = it.data.shape();
    e["data_offsets"] = {it.begin, it.end};
    h[it.name] = e;
  }
  header = h.dump();
  header.append((8 - header.size() % 8) % 8, ' ');
  // Hand the tensors back in data-buffer order, the order they must be written in.
  std::vector<Planned> by_offset;
  for (size_t i : order) by_offset.push_back(std::move(items[i]));
  return by_offset;
}

void emit(const std::string& header, const std::vector<Planned>& items,
          const std::function<void(const void*, size_t)>& out) {
  unsigned char len[8];
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(n >> (8 * i));
  out(len, 8);
  out(header.data(), header.size());
  for (auto& it : items) out(it.data.raw_data(), it.end - it.begin);
}

// One tensor as described by the header, validated against the data buffer size.
struct Entry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin, end;
};

uint64_t as_u64(const ojson& v, const std::string& path, const std::string& what) {
  if (!v.is_number_integer() ||
      (v.is_number_integer() && !v.is_number_unsigned() && v.get<int64_t>() < 0))
    fail(path, what + " must be a non-negative integer, got " + v.dump(), "the header is corrupt");
  return v.get<uint64_t>();
}

std::vector<Entry> parse_header(const std::string& header, uint64_t data_size,
                                const std::string& path, SafetensorsMetadata& metadata) {
  ojson h;
  try {
    h = ojson::parse(header);
  } catch (const std::exception& e) {
    fail(path, std::string("header is not valid JSON: ") + e.what(),
         "the file is truncated or not a safetensors file");
  }
  if (!h.is_object())
    fail(path, "header is not a JSON object", "the file is not a safetensors file");
  std::vector<Entry> entries;
  for (auto& [name, v] : h.items()) {
    if (name == "__metadata__") {
      if (!v.is_object())
        fail(path, "__metadata__ is not an object", "it must map strings to strings");
      for (auto& [k, s] : v.items()) {
        if (!s.is_string())
          fail(path, "__metadata__ value for '" + k + "' is not a string: " + s.dump(),
               "it must map strings to strings");
        metadata[k] = s.get<std::string>();
      }
      continue;
    }
    const std::string where = "tensor '" + name + "'";
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") ||
        !v.contains("data_offsets"))
      fail(path, where + " needs \"dtype\", \"shape\" and \"data_offsets\", got " + v.dump(),
           "the header is corrupt");
    Entry e;
    e.name = name;
    const ojson& dt = v["dtype"];
    if (!dt.is_string() || !parse_dtype(dt.get<std::string>(), e.dtype))
      fail(path, where + " has unsupported dtype " + dt.dump(),
           "supported: F32, F64, BF16, I32, I64, BOOL; convert the tensor before saving");
    const ojson& sh = v["shape"];
    if (!sh.is_array())
      fail(path, where + " shape is not an array: " + sh.dump(), "the header is corrupt");
    uint64_t numel = 1;
    for (auto& d : sh) {
      const uint64_t n = as_u64(d, path, where + " shape entry");
      if (n > static_cast<uint64_t>(INT64_MAX) || __builtin_mul_overflow(numel, n, &numel))
        fail(path, where + " shape " + sh.dump() + " overflows", "the header is corrupt");
      e.shape.push_back(static_cast<int64_t>(n));
    }
    const ojson& off = v["data_offsets"];
    if (!off.is_array() || off.size() != 2)
      fail(path, where + " data_offsets must be [begin, end], got " + off.dump(),
           "the header is corrupt");
    e.begin = as_u64(off[0], path, where + " data_offsets");
    e.end = as_u64(off[1], path, where + " data_offsets");
    if (e.begin > e.end || e.end > data_size)
      fail(path,
           where + " data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
               "] out of range for a data buffer of " + std::to_string(data_size) + " bytes",
           "the file is truncated or the header is corrupt");
    uint64_t nbytes;
    if (__builtin_mul_overflow(numel, dtype_size(e.dtype), &nbytes) || nbytes != e.end - e.begin)
      fail(path,
           where + " has shape " + shape_str(e.shape) + " " + dt.get<std::string>() + " (" +
               std::to_string(numel) + " elements) but data_offsets span " +
               std::to_string(e.end - e.begin) + " bytes",
           "the header is corrupt");
    entries.push_back(std::move(e));
  }
  // The buffer must be covered exactly once: no overlaps, no holes, nothing after the last tensor.
  std::vector<const Entry*> sorted;
  for (auto& e : entries) sorted.push_back(&e);
  std::stable_sort(sorted.begin(), sorted.end(), [](const Entry* a, const Entry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t pos = 0;
  const Entry* prev = nullptr;
  for (const Entry* e : sorted) {
    if (e->begin < pos)
      fail(path,
           "tensors '" + prev->name + "' and '" + e->name + "' overlap (bytes " +
               std::to_string(e->begin) + " to " + std::to_string(pos) + ")",
           "the header is corrupt");
    if (e->begin > pos)
      fail(path,
           "bytes " + std::to_string(pos) + " to " + std::to_string(e->begin) + " before tensor '" +
               e->name + "' belong to no tensor",
           "the header is corrupt");
    pos = e->end;
    if (e->end > e->begin) prev = e;
  }
  if (pos != data_size)
    fail(path,
         "the data buffer has " + std::to_string(data_size) + " bytes but the tensors cover " +
             std::to_string(pos),
         "the file has trailing bytes or the header is corrupt");
  return entries;
}

uint64_t read_header_len(const unsigned char* b) {
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | b[i];
  return n;
}

void check_header_len(uint64_t n, uint64_t file_size, const std::string& path) {
  if (n > file_size - 8 || n > kMaxHeader)
    fail(path,
         "header length " + std::to_string(n) + " exceeds the file (" + std::to_string(file_size) +
             " bytes)",
         "the file is truncated or not a safetensors file");
}

// Reads the entries' bytes through read(begin, nbytes, dst) into fresh tensors, header order.
SafetensorsContents build(const std::vector<Entry>& entries, SafetensorsMetadata metadata,
                          const std::function<void(uint64_t, uint64_t, void*)>& read) {
  SafetensorsContents out;
  out.metadata = std::move(metadata);
  for (auto& e : entries) {
    Tensor t = empty(e.shape, TensorOptions(e.dtype));
    if (e.end > e.begin) read(e.begin, e.end - e.begin, t.raw_data());
    // Any non-zero byte is true: never let a corrupt byte become an invalid C++ bool.
    if (e.dtype == kBool) {
      auto* p = static_cast<unsigned char*>(t.raw_data());
      const int64_t count = t.numel();  // (numel() multiplies the shape out on every call)
      for (int64_t i = 0; i < count; ++i) p[i] = p[i] != 0;
    }
    out.tensors.emplace_back(e.name, t);
  }
  return out;
}

}  // namespace

const char* safetensors_dtype(DType dtype) {
  switch (dtype) {
    case kFloat32:
      return "F32";
    case kFloat64:
      return "F64";
    case kInt32:
      return "I32";
    case kInt64:
      return "I64";
    case kBool:
      return "BOOL";
    case kBFloat16:
      return "BF16";
  }
  throw Error(kOp, "unknown dtype");
}

std::string safetensors_serialize(const NamedTensors& tensors,
                                  const SafetensorsMetadata& metadata) {
  std::string header, out;
  std::vector<Planned> items = plan(tensors, metadata, header, "<memory>");
  emit(header, items, [&](const void* p, size_t n) { out.append(static_cast<const char*>(p), n); });
  return out;
}

void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const SafetensorsMetadata& metadata) {
  std::string header;
  std::vector<Planned> items = plan(tensors, metadata, header, path);
  write_file_atomic(
      path,
      [&](AtomicFileWriter& w) {
        emit(header, items, [&](const void* p, size_t n) { w.write(p, n); });
      },
      kOp);
}

SafetensorsContents safetensors_parse(const std::string& bytes, const std::string& path) {
  if (bytes.size() < 8)
    fail(
        path,
        "file is " + std::to_string(bytes.size()) + " bytes, shorter than the 8-byte header length",
        "the file is truncated or empty");
  const uint64_t n = read_header_len(reinterpret_cast<const unsigned char*>(bytes.data()));
  check_header_len(n, bytes.size(), path);
  SafetensorsMetadata metadata;
  const uint64_t data_size = bytes.size() - 8 - n;
  std::vector<Entry> entries = parse_header(bytes.substr(8, n), data_size, path, metadata);
  const char* data = bytes.data() + 8 + n;
  return build(entries, std::move(metadata), [&](uint64_t begin, uint64_t nbytes, void* dst) {
    std::memcpy(dst, data + begin, nbytes);
  });
}

SafetensorsContents load_safetensors(const std::string& path) {
  // Streams each tensor straight into its storage, so loading needs no second copy of the file.
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) {
    const int e = errno;
    fail(path, std::string("cannot open: ") + std::strerror(e),
         e == ENOENT ? "the file does not exist; check the path" : "check the file's permissions");
  }
  struct Closer {
    std::FILE* f;
    ~Closer() { std::fclose(f); }
  } closer{f};
  struct stat st;
  if (::fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode))
    fail(path, "not a regular file", "pass the path of a .safetensors file");
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  unsigned char len[8];
  if (size < 8 || std::fread(len, 1, 8, f) != 8)
    fail(path, "file is " + std::to_string(size) + " bytes, shorter than the 8-byte header length",
         "the file is truncated or empty");
  const uint64_t n = read_header_len(len);
  check_header_len(n, size, path);
  std::string header(n, '\0');
  if (std::fread(header.data(), 1, n, f) != n)
    fail(path, "short read of the header", "the file changed while reading");
  SafetensorsMetadata metadata;
  std::vector<Entry> entries = parse_header(header, size - 8 - n, path, metadata);
  const uint64_t data_start = 8 + n;
  return build(entries, std::move(metadata), [&](uint64_t begin, uint64_t nbytes, void* dst) {
    if (::fseeko(f, static_cast<off_t>(data_start + begin), SEEK_SET) != 0 ||
        std::fread(dst, 1, nbytes, f) != nbytes)
      fail(path, "short read of tensor data at byte " + std::to_string(data_start + begin),
           "the file changed while reading");
  });
}

}  // namespace smyrf
