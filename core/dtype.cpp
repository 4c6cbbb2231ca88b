#include "core/dtype.h"

#include "core/error.h"

namespace smyrf {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::Bool:
      return 1;
    case DType::Int32:
      return 4;
    case DType::Int64:
      return 8;
    case DType::BFloat16:
      return 2;
    case DType::Float32:
      return 4;
    case DType::Float64:
      return 8;
  }
  return 0;
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::Bool:
      return "bool";
    case DType::Int32:
      return "int32";
    case DType::Int64:
      return "int64";
    case DType::BFloat16:
      return "bfloat16";
    case DType::Float32:
      return "float32";
    case DType::Float64:
      return "float64";
  }
  return "?";
}

bool is_floating(DType t) {
  return t == DType::BFloat16 || t == DType::Float32 || t == DType::Float64;
}
bool is_integral(DType t) { return t == DType::Int32 || t == DType::Int64; }

DType promote_types(DType a, DType b) {
  return static_cast<uint8_t>(a) >= static_cast<uint8_t>(b) ? a : b;
}

namespace detail {
void fail_dtype(const char* op, DType got, const char* expected) {
  if (got == DType::BFloat16)
    throw Error(op, std::string("unsupported dtype bfloat16 (expected ") + expected + ")",
                "cast to float32 with .to(kFloat32): bfloat16 tensors support casts and CUDA "
                "attention only");
  throw Error(op, std::string("unsupported dtype ") + dtype_name(got),
              std::string("expected ") + expected);
}
}  // namespace detail

}  // namespace smyrf
