// Elementwise kernels over strided n-d index spaces (sizes and per-operand strides in elements).
// The caller has already broadcast (stride 0) and coalesced dims; ndim <= kMaxDims.
// Templates are instantiated for bool, int32_t, int64_t, float and double where they make sense.
// float runs use the AVX2 variants (elementwise_avx2.h) on contiguous runs when active_isa() is
// Avx2; the scalar code here is the reference those variants are tested against. Under AVX2,
// float outputs of 16 MiB and more are written with streaming stores (streaming_store.h),
// inputs transposed against the output go through 32 x 256 gathered tiles, and a unary op on an
// input broadcast along some dims runs once on the distinct inputs and is then copied along
// them (elementwise.cpp says why for each).
#pragma once
#include <cstdint>

namespace smyrf::kernels::cpu {

enum class UnaryOp {
  Neg,
  Exp,
  Log,
  Log1p,
  Sqrt,
  Rsqrt,
  Abs,
  Sign,
  Tanh,
  Sigmoid,
  Relu,
  LeakyRelu,
  Gelu,
  Silu,
  PowScalar,
  Clamp,
  MulScalar,
  AddScalar,
  Square,
  Reciprocal,
  Sin,
  Cos,
  Expm1,
  GeluGrad,            // d/dx gelu(x) (tanh-free, erf form)
  TanhGradFromOut,     // 1 - y^2
  SigmoidGradFromOut,  // y (1 - y)
  ReluGrad,            // d/dx relu(x): 1 for x > 0, else 0 (NaN -> 0)
  SiluGrad,            // d/dx silu(x) = s (1 + x (1 - s)), s = sigmoid(x)
};
// ReluBackward(g, x) = x > 0 ? g : 0: relu's backward in one pass (0 where x <= 0 or NaN, even
// for an inf / NaN g, as PyTorch's threshold_backward; ReluGrad times g gave NaN there).
// GeluBackward(g, x) = g * gelu'(x) (GeluGrad's formula and accuracy) in one pass.
enum class BinaryOp { Add, Sub, Mul, Div, Pow, Maximum, Minimum, ReluBackward, GeluBackward };
enum class CompareOp { Eq, Ne, Lt, Le, Gt, Ge };

// y = op(x; a, b). a, b: LeakyRelu slope (a); PowScalar exponent (a); Clamp [a, b];
// MulScalar / AddScalar scalar (a).
template <typename T>
void unary(UnaryOp op, double a, double b, int ndim, const int64_t* sizes, const T* x,
           const int64_t* xs, T* y, const int64_t* ys);

template <typename T>
void binary(BinaryOp op, int ndim, const int64_t* sizes, const T* a, const int64_t* as, const T* b,
            const int64_t* bs, T* y, const int64_t* ys);

template <typename T>
void compare(CompareOp op, int ndim, const int64_t* sizes, const T* a, const int64_t* as,
             const T* b, const int64_t* bs, bool* y, const int64_t* ys);

template <typename T>
void where(int ndim, const int64_t* sizes, const bool* c, const int64_t* cs, const T* a,
           const int64_t* as, const T* b, const int64_t* bs, T* y, const int64_t* ys);

// y[i] = x[i] * (keep[i] ? scale : 0) over n contiguous elements (dropout's mask applied, forward
// and backward: a dropped NaN or inf stays NaN, as x * 0). y may be x.
template <typename T>
void masked_scale(const T* x, const bool* keep, T scale, T* y, int64_t n);

template <typename S, typename D>
void convert(int ndim, const int64_t* sizes, const S* x, const int64_t* xs, D* y,
             const int64_t* ys);

template <typename T>
void fill(int ndim, const int64_t* sizes, T* y, const int64_t* ys, T value);

// Scalar definitions of the float ops, shared by the reference loops and AVX2 tails.
double unary_scalar(UnaryOp op, double x, double a, double b);

}  // namespace smyrf::kernels::cpu
