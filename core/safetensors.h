// safetensors I/O (https://github.com/huggingface/safetensors), so weights written here load in
// PyTorch and back.
//
// File layout: an 8-byte little-endian u64 N, then N bytes of UTF-8 JSON, then the data buffer.
// The JSON maps each tensor name to {"dtype": "F32"|"F64"|"I32"|"I64"|"BOOL", "shape": [...],
// "data_offsets": [begin, end]} (byte offsets into the data buffer), plus an optional
// "__metadata__" object of string -> string. The header is padded with spaces to a multiple of 8
// and tensors are stored row-major, little-endian, contiguous, without holes.
//
// save_safetensors: non-contiguous tensors (views) and CUDA tensors are written as contiguous CPU
// data. The header lists tensors in the given order; the data buffer orders them by element size
// (largest first, stable) so every tensor is aligned to its element size, as the reference
// writer does. The file is written atomically (core/atomic_file.h). Throws on a duplicate or
// empty name, the reserved name "__metadata__", or an undefined tensor.
//
// load_safetensors: returns the tensors (contiguous, CPU, requires_grad false) in header order,
// and the metadata. Every inconsistency is an smyrf::Error with op "safetensors", the path and a
// hint: missing/unreadable file, truncated file, header length beyond the file, bad JSON, an
// unsupported dtype, offsets out of range, overlapping or leaving holes, and a byte size that
// does not match the shape.
#pragma once
#include <map>
#include <string>

#include "core/named_tensors.h"

namespace smyrf {

using SafetensorsMetadata = std::map<std::string, std::string>;

struct SafetensorsContents {
  NamedTensors tensors;
  SafetensorsMetadata metadata;
};

void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const SafetensorsMetadata& metadata = {});
SafetensorsContents load_safetensors(const std::string& path);

// The exact bytes save_safetensors writes (for tests and in-memory use) and the matching parser;
// `path` only labels error messages.
std::string safetensors_serialize(const NamedTensors& tensors,
                                  const SafetensorsMetadata& metadata = {});
SafetensorsContents safetensors_parse(const std::string& bytes,
                                      const std::string& path = "<memory>");

// The safetensors dtype code ("F32", ...) of a dtype.
const char* safetensors_dtype(DType dtype);

}  // namespace smyrf
