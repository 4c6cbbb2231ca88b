// Elementwise kernels. One kernel per (family, dtype) with the op chosen by a switch on a value
// that is uniform across the grid: the branch costs a few instructions per element of a
// bandwidth-bound kernel, and it keeps the number of instantiations (and nvcc time) small.
// Status: ran on an NVIDIA H200 on 2026-11-29 (tests/cuda, all passing; scripts/gpu-check), the
// functors' load/store split for the unrolled contiguous path included: add 102-108% of a device
// copy, exp 78-79%, gelu 62-63%, a row-broadcast add 29% (16M-128M floats). The strided split
// (load_at / store_at: unary, binary, compare, where, convert, masked_scale) was written on
// 2026-11-30 without a GPU: compiled for sm_90, not yet run; so were the ReluBackward and
// GeluBackward binary ops (session 20).
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "core/bfloat16.h"  // dependency-free scalar type (casts only)
#include "kernels/cuda/device_utils.cuh"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/env_setting.h"

namespace smyrf::kernels::cuda {
namespace {
using namespace detail;

template <typename T>
__device__ T unary_float(UnaryOp op, T x, T a, T b) {
  constexpr T kInvSqrt2 = static_cast<T>(0.70710678118654752440);
  constexpr T kInvSqrt2Pi = static_cast<T>(0.39894228040143267794);
  const T one = 1, half = static_cast<T>(0.5);
  switch (op) {
    case UnaryOp::Neg:
      return -x;
    case UnaryOp::Exp:
      return std::exp(x);
    case UnaryOp::Log:
      return std::log(x);
    case UnaryOp::Log1p:
      return std::log1p(x);
    case UnaryOp::Sqrt:
      return std::sqrt(x);
    case UnaryOp::Rsqrt:
      return one / std::sqrt(x);
    case UnaryOp::Abs:
      return std::fabs(x);
    case UnaryOp::Sign:
      return static_cast<T>((x > 0) - (x < 0));
    case UnaryOp::Tanh:
      return std::tanh(x);
    case UnaryOp::Sigmoid:
      return one / (one + std::exp(-x));
    case UnaryOp::Relu:
      return x > 0 ? x : T(0);
    case UnaryOp::LeakyRelu:
      return x > 0 ? x : a * x;
    // erfc(-z) == 1 + erf(z) without cancellation for very negative x (as the CPU)
    case UnaryOp::Gelu:
      return half * x * std::erfc(-x * kInvSqrt2);
    case UnaryOp::Silu:
      return x / (one + std::exp(-x));
    case UnaryOp::PowScalar:
      return std::pow(x, a);
    case UnaryOp::Clamp:
      return x < a ? a : (x > b ? b : x);
    case UnaryOp::MulScalar:
      return x * a;
    case UnaryOp::AddScalar:
      return x + a;
    case UnaryOp::Square:
      return x * x;
    case UnaryOp::Reciprocal:
      return one / x;
    case UnaryOp::Sin:
      return std::sin(x);
    case UnaryOp::Cos:
      return std::cos(x);
    case UnaryOp::Expm1:
      return std::expm1(x);
    case UnaryOp::GeluGrad:
      return half * std::erfc(-x * kInvSqrt2) + x * kInvSqrt2Pi * std::exp(-half * x * x);
    case UnaryOp::TanhGradFromOut:
      return one - x * x;
    case UnaryOp::SigmoidGradFromOut:
      return x * (one - x);
    case UnaryOp::ReluGrad:
      return x > T(0) ? one : T(0);
    case UnaryOp::SiluGrad: {
      const T s = one / (one + std::exp(-x));
      return s * (one + x * (one - s));
    }
  }
  return x;
}

// Integer semantics of kernels/cpu/elementwise.cpp: closed ops in the integer type, the rest
// through double and truncated back.
template <typename T>
__device__ T unary_int(UnaryOp op, T x, double a, double b) {
  switch (op) {
    case UnaryOp::Neg:
      return static_cast<T>(-x);
    case UnaryOp::Abs:
      return x < 0 ? static_cast<T>(-x) : x;
    case UnaryOp::Sign:
      return static_cast<T>((x > 0) - (x < 0));
    case UnaryOp::Relu:
      return x > 0 ? x : T(0);
    case UnaryOp::Clamp:
      return x < a ? static_cast<T>(a) : (x > b ? static_cast<T>(b) : x);
    case UnaryOp::MulScalar:
      return static_cast<T>(x * a);
    case UnaryOp::AddScalar:
      return static_cast<T>(x + a);
    case UnaryOp::Square:
      return static_cast<T>(x * x);
    default:
      return static_cast<T>(unary_float<double>(op, static_cast<double>(x), a, b));
  }
}

// The functors below do one element at per-operand offsets (operator()), and split into
// load(i) / store(i, in) at one offset i shared by every operand for the contiguous path of
// pointwise_kernel (device_utils.cuh), which loads several elements before storing any.
template <typename T>
struct UnaryF {
  UnaryOp op;
  double a, b;
  const T* x;
  T* y;
  using In = T;
  __device__ T apply(T v) const {
    if constexpr (std::is_floating_point_v<T>)
      return unary_float<T>(op, v, static_cast<T>(a), static_cast<T>(b));
    else
      return unary_int<T>(op, v, a, b);
  }
  __device__ void operator()(const int64_t (&o)[2]) const { y[o[1]] = apply(x[o[0]]); }
  __device__ In load(int64_t i) const { return x[i]; }
  __device__ void store(int64_t i, In v) const { y[i] = apply(v); }
  static constexpr bool kSplitStrided = true;
  __device__ In load_at(const int64_t (&o)[2]) const { return x[o[0]]; }
  __device__ void store_at(const int64_t (&o)[2], In v) const { y[o[1]] = apply(v); }
};

template <typename T>
__device__ T apply_binary(BinaryOp op, T a, T b) {
  if constexpr (std::is_same_v<T, bool>) {
    switch (op) {
      case BinaryOp::Add:
      case BinaryOp::Maximum:
        return a || b;
      case BinaryOp::Mul:
      case BinaryOp::Minimum:
      case BinaryOp::ReluBackward:
        return a && b;
      case BinaryOp::Sub:
        return a != b;
      default:
        return a;
    }
  } else {
    switch (op) {
      case BinaryOp::Add:
        return static_cast<T>(a + b);
      case BinaryOp::Sub:
        return static_cast<T>(a - b);
      case BinaryOp::Mul:
        return static_cast<T>(a * b);
      case BinaryOp::Div:
        if constexpr (std::is_integral_v<T>) {
          // floor division, x / 0 = 0 (as the CPU)
          if (b == 0) return T(0);
          T q = static_cast<T>(a / b);
          if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
          return q;
        } else {
          return a / b;
        }
      case BinaryOp::Pow:
        if constexpr (std::is_same_v<T, float>)
          return std::pow(a, b);
        else
          return static_cast<T>(std::pow(static_cast<double>(a), static_cast<double>(b)));
      case BinaryOp::Maximum:
        return MaxOp{}(a, b);
      case BinaryOp::Minimum:
        return MinOp{}(a, b);
      case BinaryOp::ReluBackward:
        return b > T(0) ? a : T(0);
      case BinaryOp::GeluBackward:
        if constexpr (std::is_floating_point_v<T>)
          return a * unary_float<T>(UnaryOp::GeluGrad, b, T(0), T(0));
        else
          return static_cast<T>(static_cast<double>(a) * unary_float<double>(UnaryOp::GeluGrad,
                                                                             static_cast<double>(b),
                                                                             0.0, 0.0));
    }
    return a;
  }
}

template <typename T>
struct Pair {
  T u, v;
};

template <typename T>
struct BinaryF {
  BinaryOp op;
  const T *a, *b;
  T* y;
  using In = Pair<T>;
  __device__ void operator()(const int64_t (&o)[3]) const {
    y[o[2]] = apply_binary<T>(op, a[o[0]], b[o[1]]);
  }
  __device__ In load(int64_t i) const { return {a[i], b[i]}; }
  __device__ void store(int64_t i, In in) const { y[i] = apply_binary<T>(op, in.u, in.v); }
  static constexpr bool kSplitStrided = true;
  __device__ In load_at(const int64_t (&o)[3]) const { return {a[o[0]], b[o[1]]}; }
  __device__ void store_at(const int64_t (&o)[3], In in) const {
    y[o[2]] = apply_binary<T>(op, in.u, in.v);
  }
};

template <typename T>
struct CompareF {
  CompareOp op;
  const T *a, *b;
  bool* y;
  using In = Pair<T>;
  __device__ void operator()(const int64_t (&o)[3]) const { y[o[2]] = apply(a[o[0]], b[o[1]]); }
  __device__ In load(int64_t i) const { return {a[i], b[i]}; }
  __device__ void store(int64_t i, In in) const { y[i] = apply(in.u, in.v); }
  static constexpr bool kSplitStrided = true;
  __device__ In load_at(const int64_t (&o)[3]) const { return {a[o[0]], b[o[1]]}; }
  __device__ void store_at(const int64_t (&o)[3], In in) const { y[o[2]] = apply(in.u, in.v); }
  __device__ bool apply(T u, T v) const {
    bool r = false;
    switch (op) {
      case CompareOp::Eq:
        r = u == v;
        break;
      case CompareOp::Ne:
        r = u != v;
        break;
      case CompareOp::Lt:
        r = u < v;
        break;
      case CompareOp::Le:
        r = u <= v;
        break;
      case CompareOp::Gt:
        r = u > v;
        break;
      case CompareOp::Ge:
        r = u >= v;
        break;
    }
    return r;
  }
};

template <typename T>
struct WhereF {
  const bool* c;
  const T *a, *b;
  T* y;
  using In = T;
  __device__ void operator()(const int64_t (&o)[4]) const { y[o[3]] = c[o[0]] ? a[o[1]] : b[o[2]]; }
  __device__ In load(int64_t i) const { return c[i] ? a[i] : b[i]; }
  __device__ void store(int64_t i, In v) const { y[i] = v; }
  static constexpr bool kSplitStrided = true;  // broadcast masks
  __device__ In load_at(const int64_t (&o)[4]) const { return c[o[0]] ? a[o[1]] : b[o[2]]; }
  __device__ void store_at(const int64_t (&o)[4], In v) const { y[o[3]] = v; }
};

template <typename S, typename D>
struct ConvertF {
  const S* x;
  D* y;
  using In = S;
  __device__ void operator()(const int64_t (&o)[2]) const { y[o[1]] = static_cast<D>(x[o[0]]); }
  __device__ In load(int64_t i) const { return x[i]; }
  __device__ void store(int64_t i, In v) const { y[i] = static_cast<D>(v); }
  static constexpr bool kSplitStrided = true;  // strided copies (contiguous(), transposes) too
  __device__ In load_at(const int64_t (&o)[2]) const { return x[o[0]]; }
  __device__ void store_at(const int64_t (&o)[2], In v) const { y[o[1]] = static_cast<D>(v); }
};

// y = x * (keep ? scale : 0), the CPU's form (a NaN or inf dropped entry gives NaN, as there)
template <typename T>
struct MaskedScaleF {
  const T* x;
  const bool* keep;
  T scale;
  T* y;
  struct In {
    T v;
    bool k;
  };
  __device__ void operator()(const int64_t (&o)[3]) const {
    y[o[2]] = x[o[0]] * (keep[o[1]] ? scale : T(0));
  }
  __device__ In load(int64_t i) const { return {x[i], keep[i]}; }
  __device__ void store(int64_t i, In in) const { y[i] = in.v * (in.k ? scale : T(0)); }
  static constexpr bool kSplitStrided = true;
  __device__ In load_at(const int64_t (&o)[3]) const { return {x[o[0]], keep[o[1]]}; }
  __device__ void store_at(const int64_t (&o)[3], In in) const {
    y[o[2]] = in.v * (in.k ? scale : T(0));
  }
};

template <typename T>
struct FillF {
  T* y;
  T v;
  using In = bool;  // nothing to load
  __device__ void operator()(const int64_t (&o)[1]) const { y[o[0]] = v; }
  __device__ In load(int64_t) const { return true; }
  __device__ void store(int64_t i, In) const { y[i] = v; }
};
}  // namespace

namespace {
int64_t rows_from_env() {
  const char* e = std::getenv("SMYRF_CUDA_POINTWISE_ROWS");
  if (e == nullptr || *e == '\0') return 0;
  char* end = nullptr;
  const long long v = std::strtoll(e, &end, 10);
  if (*end != '\0' || v < 0)
    throw std::invalid_argument(std::string("[cuda elementwise] SMYRF_CUDA_POINTWISE_ROWS='") + e +
                                "' is not a count; hint: the least innermost-dim length for the "
                                "rows path (e.g. 1024), or 0 for off");
  return v;
}
std::atomic<int64_t> g_rows_min_inner{-1};  // -1: not yet read from the environment
}  // namespace

namespace detail {
int64_t pointwise_rows_min_inner() {
  return setting_or_env(g_rows_min_inner, int64_t{-1}, rows_from_env);
}
}  // namespace detail

int64_t set_pointwise_rows_min_inner(int64_t n) {
  if (n < 0)
    throw std::invalid_argument("[cuda elementwise] set_pointwise_rows_min_inner(" +
                                std::to_string(n) + "); hint: 0 turns the rows path off");
  const int64_t prev = detail::pointwise_rows_min_inner();
  g_rows_min_inner.store(n);
  return prev;
}

template <typename T>
void unary(UnaryOp op, double a, double b, int ndim, const int64_t* sizes, const T* x,
           const int64_t* xs, T* y, const int64_t* ys) {
  launch_pointwise(make_strided<2>(ndim, sizes, {xs, ys}), UnaryF<T>{op, a, b, x, y});
}

template <typename T>
void binary(BinaryOp op, int ndim, const int64_t* sizes, const T* a, const int64_t* as, const T* b,
            const int64_t* bs, T* y, const int64_t* ys) {
  launch_pointwise(make_strided<3>(ndim, sizes, {as, bs, ys}), BinaryF<T>{op, a, b, y});
}

template <typename T>
void compare(CompareOp op, int ndim, const int64_t* sizes, const T* a, const int64_t* as,
             const T* b, const int64_t* bs, bool* y, const int64_t* ys) {
  launch_pointwise(make_strided<3>(ndim, sizes, {as, bs, ys}), CompareF<T>{op, a, b, y});
}

template <typename T>
void where(int ndim, const int64_t* sizes, const bool* c, const int64_t* cs, const T* a,
           const int64_t* as, const T* b, const int64_t* bs, T* y, const int64_t* ys) {
  launch_pointwise(make_strided<4>(ndim, sizes, {cs, as, bs, ys}), WhereF<T>{c, a, b, y});
}

template <typename S, typename D>
void convert(int ndim, const int64_t* sizes, const S* x, const int64_t* xs, D* y,
             const int64_t* ys) {
  launch_pointwise(make_strided<2>(ndim, sizes, {xs, ys}), ConvertF<S, D>{x, y});
}

template <typename T>
void masked_scale(const T* x, const bool* keep, T scale, T* y, int64_t n) {
  const int64_t sizes[1] = {n}, unit[1] = {1};
  launch_pointwise(make_strided<3>(1, sizes, {unit, unit, unit}),
                   MaskedScaleF<T>{x, keep, scale, y});
}

template <typename T>
void fill(int ndim, const int64_t* sizes, T* y, const int64_t* ys, T value) {
  launch_pointwise(make_strided<1>(ndim, sizes, {ys}), FillF<T>{y, value});
}

#define SMYRF_EW_ALL(T)                                                                        \
  template void binary<T>(BinaryOp, int, const int64_t*, const T*, const int64_t*, const T*,   \
                          const int64_t*, T*, const int64_t*);                                 \
  template void compare<T>(CompareOp, int, const int64_t*, const T*, const int64_t*, const T*, \
                           const int64_t*, bool*, const int64_t*);                             \
  template void where<T>(int, const int64_t*, const bool*, const int64_t*, const T*,           \
                         const int64_t*, const T*, const int64_t*, T*, const int64_t*);        \
  template void fill<T>(int, const int64_t*, T*, const int64_t*, T);                           \
  template void convert<T, bool>(int, const int64_t*, const T*, const int64_t*, bool*,         \
                                 const int64_t*);                                              \
  template void convert<T, int32_t>(int, const int64_t*, const T*, const int64_t*, int32_t*,   \
                                    const int64_t*);                                           \
  template void convert<T, int64_t>(int, const int64_t*, const T*, const int64_t*, int64_t*,   \
                                    const int64_t*);                                           \
  template void convert<T, float>(int, const int64_t*, const T*, const int64_t*, float*,       \
                                  const int64_t*);                                             \
  template void convert<T, double>(int, const int64_t*, const T*, const int64_t*, double*,     \
                                   const int64_t*);
SMYRF_EW_ALL(bool)
SMYRF_EW_ALL(int32_t)
SMYRF_EW_ALL(int64_t)
SMYRF_EW_ALL(float)
SMYRF_EW_ALL(double)
// bfloat16: casts from and to every type (static_cast through float32, round to nearest even)
// and fill; no arithmetic (core rejects bfloat16 elsewhere).
#define SMYRF_EW_BF16(T)                                                                       \
  template void convert<T, bfloat16>(int, const int64_t*, const T*, const int64_t*, bfloat16*, \
                                     const int64_t*);                                          \
  template void convert<bfloat16, T>(int, const int64_t*, const bfloat16*, const int64_t*, T*, \
                                     const int64_t*);
SMYRF_EW_BF16(bool)
SMYRF_EW_BF16(int32_t)
SMYRF_EW_BF16(int64_t)
SMYRF_EW_BF16(float)
SMYRF_EW_BF16(double)
template void convert<bfloat16, bfloat16>(int, const int64_t*, const bfloat16*, const int64_t*,
                                          bfloat16*, const int64_t*);
template void fill<bfloat16>(int, const int64_t*, bfloat16*, const int64_t*, bfloat16);
#define SMYRF_EW_UNARY(T)                                                                        \
  template void unary<T>(UnaryOp, double, double, int, const int64_t*, const T*, const int64_t*, \
                         T*, const int64_t*);
SMYRF_EW_UNARY(int32_t)
SMYRF_EW_UNARY(int64_t)
SMYRF_EW_UNARY(float)
SMYRF_EW_UNARY(double)
template void masked_scale<float>(const float*, const bool*, float, float*, int64_t);
template void masked_scale<double>(const double*, const bool*, double, double*, int64_t);

}  // namespace smyrf::kernels::cuda
