// Element types of tensors.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/bfloat16.h"

namespace smyrf {

// The order is the promotion order (promote_types): BFloat16 sits below Float32 so that mixing
// it with float32 promotes to float32, as in PyTorch.
enum class DType : uint8_t { Bool, Int32, Int64, BFloat16, Float32, Float64 };

constexpr DType kBool = DType::Bool;
constexpr DType kInt32 = DType::Int32;
constexpr DType kInt64 = DType::Int64;
constexpr DType kBFloat16 = DType::BFloat16;  // storage and casts; CUDA attention (bfloat16.h)
constexpr DType kFloat32 = DType::Float32;
constexpr DType kFloat64 = DType::Float64;

size_t dtype_size(DType t);
const char* dtype_name(DType t);  // "float32", ...
bool is_floating(DType t);  // bfloat16, float32, float64
bool is_integral(DType t);  // int32, int64 (not bool)

// The result type of a binary op: the "wider" of the two in the order bool < int32 < int64 <
// bfloat16 < float32 < float64 (as PyTorch does for tensors of equal rank).
DType promote_types(DType a, DType b);

// C++ type <-> DType.
template <typename T> struct DTypeOf;
template <> struct DTypeOf<bool> { static constexpr DType value = DType::Bool; };
template <> struct DTypeOf<int32_t> { static constexpr DType value = DType::Int32; };
template <> struct DTypeOf<int64_t> { static constexpr DType value = DType::Int64; };
template <> struct DTypeOf<bfloat16> { static constexpr DType value = DType::BFloat16; };
template <> struct DTypeOf<float> { static constexpr DType value = DType::Float32; };
template <> struct DTypeOf<double> { static constexpr DType value = DType::Float64; };

}  // namespace smyrf

// Calls the generic lambda-like body with `scalar_t` bound to the C++ type of `dtype`.
// SMYRF_DISPATCH_ALL covers the five arithmetic dtypes and rejects bfloat16 (no arithmetic, see
// bfloat16.h) with the hint to cast to float32; SMYRF_DISPATCH_CAST adds bfloat16 for the casts
// (copy_, fill_, to(dtype)), whose kernels only need static_cast between the types.
#define SMYRF_DISPATCH_CASE(DT, T, ...) \
  case DT: {                            \
    using scalar_t = T;                 \
    __VA_ARGS__();                      \
    break;                              \
  }
#define SMYRF_DISPATCH_ALL(dtype, op, ...)                                                 \
  switch (dtype) {                                                                         \
    SMYRF_DISPATCH_CASE(::smyrf::DType::Bool, bool, __VA_ARGS__)                           \
    SMYRF_DISPATCH_CASE(::smyrf::DType::Int32, int32_t, __VA_ARGS__)                       \
    SMYRF_DISPATCH_CASE(::smyrf::DType::Int64, int64_t, __VA_ARGS__)                       \
    SMYRF_DISPATCH_CASE(::smyrf::DType::Float32, float, __VA_ARGS__)                       \
    SMYRF_DISPATCH_CASE(::smyrf::DType::Float64, double, __VA_ARGS__)                      \
    default:                                                                               \
      ::smyrf::detail::fail_dtype(op, dtype, "bool, int32, int64, float32 or float64");    \
  }
#define SMYRF_DISPATCH_CAST(dtype, op, ...)                                                \
  switch (dtype) {                                                                         \
    SMYRF_DISPATCH_CASE(::smyrf::DType::Bool, bool, __VA_ARGS__)                           \
    SMYRF_DISPATCH_CASE(::smyrf::DType::Int32, int32_t, __VA_ARGS__)                       \
    SMYRF_DISPATCH_CASE(::smyrf::DType::Int64, int64_t, __VA_ARGS__)                       \
    SMYRF_DISPATCH_CASE(::smyrf::DType::BFloat16, ::smyrf::bfloat16, __VA_ARGS__)          \
    SMYRF_DISPATCH_CASE(::smyrf::DType::Float32, float, __VA_ARGS__)                       \
    SMYRF_DISPATCH_CASE(::smyrf::DType::Float64, double, __VA_ARGS__)                      \
  }
#define SMYRF_DISPATCH_NUMERIC(dtype, op, ...)                                             \
  switch (dtype) {                                                                         \
    SMYRF_DISPATCH_CASE(::smyrf::DType::Int32, int32_t, __VA_ARGS__)                       \
    SMYRF_DISPATCH_CASE(::smyrf::DType::Int64, int64_t, __VA_ARGS__)                       \
    SMYRF_DISPATCH_CASE(::smyrf::DType::Float32, float, __VA_ARGS__)                       \
    SMYRF_DISPATCH_CASE(::smyrf::DType::Float64, double, __VA_ARGS__)                      \
    default:                                                                               \
      ::smyrf::detail::fail_dtype(op, dtype, "a numeric dtype (int32, int64, float32, float64)"); \
  }
#define SMYRF_DISPATCH_FLOAT(dtype, op, ...)                                               \
  switch (dtype) {                                                                         \
    SMYRF_DISPATCH_CASE(::smyrf::DType::Float32, float, __VA_ARGS__)                       \
    SMYRF_DISPATCH_CASE(::smyrf::DType::Float64, double, __VA_ARGS__)                      \
    default:                                                                               \
      ::smyrf::detail::fail_dtype(op, dtype, "a floating dtype (float32 or float64)");    \
  }
#define SMYRF_DISPATCH_INDEX(dtype, op, ...)                                               \
  switch (dtype) {                                                                         \
    SMYRF_DISPATCH_CASE(::smyrf::DType::Int32, int32_t, __VA_ARGS__)                       \
    SMYRF_DISPATCH_CASE(::smyrf::DType::Int64, int64_t, __VA_ARGS__)                       \
    default:                                                                               \
      ::smyrf::detail::fail_dtype(op, dtype, "an index dtype (int32 or int64)");          \
  }

namespace smyrf::detail {
// Throws "[op] unsupported dtype X (hint: expected ...)"; for bfloat16 the hint says to cast to
// float32 (only casts and CUDA attention take bfloat16).
[[noreturn]] void fail_dtype(const char* op, DType got, const char* expected);
}
