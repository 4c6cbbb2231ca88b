// 2-D convolution, pooling and nearest upsampling on raw contiguous NCHW buffers, forward and
// backward, float and double (no tensors here).
//
// Convolution is im2col + GEMM through our own sgemm/dgemm (kernels/cpu/gemm.h): for each image
// and group, Y_g (K/g, P*Q) = W_g (K/g, C/g*R*S) @ col (C/g*R*S, P*Q). 1x1 kernels with stride 1
// and no padding skip im2col (the image already is the column matrix). Images are split across
// the OpenMP threads (each runs its GEMMs single-threaded); with fewer images than threads the
// GEMM itself is threaded instead. float32 convolutions with stride 1, one group, a kernel above
// 1x1 and at most 64 input or output channels run the direct kernels of conv_direct.h instead
// (no column matrix; chosen by measurement, see conv2d_direct_applies). float32 3x3 convolutions
// with stride 1 and many channels on both sides (conv2d_winograd_applies) run Winograd
// F(4x4, 3x3) (winograd.h): 4x fewer multiplications, float32 error ~1e-5 of the output's scale.
//
// Pooling and upsampling work on N*C independent planes, split across threads.
#pragma once
#include <cstdint>

namespace smyrf::kernels::cpu {

// Shapes of one convolution. Input (N, C, H, W), weight (K, C/groups, R, S), output (N, K, P, Q)
// with P = (H + 2 pad_h - dil_h (R - 1) - 1) / stride_h + 1 (and Q likewise). The caller
// validates (conv2d_out_size does the arithmetic); the kernels trust these numbers.
struct Conv2dGeometry {
  int64_t N = 1, C = 1, H = 1, W = 1;  // input
  int64_t K = 1, R = 1, S = 1;         // output channels, kernel height, kernel width
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dil_h = 1, dil_w = 1;
  int64_t groups = 1;
  int64_t P = 1, Q = 1;  // output height, width
};

// Output extent of one spatial dim (may be <= 0 when the kernel does not fit).
inline int64_t conv2d_out_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad,
                               int64_t dil) {
  const int64_t span = dil * (kernel - 1) + 1;
  const int64_t padded = in + 2 * pad;
  return padded < span ? 0 : (padded - span) / stride + 1;
}

// y (N, K, P, Q) = conv(x, w) + bias (bias may be null).
template <typename T>
void conv2d_forward(const Conv2dGeometry& g, const T* x, const T* w, const T* bias, T* y);

// dx (N, C, H, W) = the gradient of <y, dy> with respect to x (overwritten).
template <typename T>
void conv2d_backward_data(const Conv2dGeometry& g, const T* dy, const T* w, T* dx);

// dw (K, C/groups, R, S) and dbias (K) overwritten; dbias may be null (no bias gradient).
template <typename T>
void conv2d_backward_filter(const Conv2dGeometry& g, const T* x, const T* dy, T* dw, T* dbias);

// dbias (K) = the sums of dy (N, K, P, Q) over N, P and Q (overwritten; accumulated in double).
// The bias gradient of every convolution algorithm (im2col, direct, Winograd).
template <typename T>
void conv2d_backward_bias(const Conv2dGeometry& g, const T* dy, T* dbias);

// Pooling over `planes` = N*C planes of (H, W) into (P, Q). Padding is implicit: padded cells
// count as -inf for max and (with count_include_pad) as zeros in the average divisor, as in
// PyTorch with ceil_mode=False.
struct Pool2dGeometry {
  int64_t planes = 1, H = 1, W = 1;
  int64_t kh = 1, kw = 1, stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
  int64_t P = 1, Q = 1;
};

template <typename T>
void avg_pool2d_forward(const Pool2dGeometry& g, const T* x, T* y, bool count_include_pad);
// dx overwritten.
template <typename T>
void avg_pool2d_backward(const Pool2dGeometry& g, const T* dy, T* dx, bool count_include_pad);

// indices: for every output cell the flat index (h * W + w) of the maximum within its input
// plane, PyTorch's convention. NaN wins (propagates); ties keep the first maximum in scan order.
template <typename T>
void max_pool2d_forward(const Pool2dGeometry& g, const T* x, T* y, int64_t* indices);
// dx overwritten: each dy is added to the input cell its index names.
template <typename T>
void max_pool2d_backward(const Pool2dGeometry& g, const T* dy, const int64_t* indices, T* dx);

// y (planes, H*fh, W*fw): every input pixel repeated fh x fw times.
template <typename T>
void upsample_nearest2d_forward(int64_t planes, int64_t H, int64_t W, int64_t fh, int64_t fw,
                                const T* x, T* y);
// dx (planes, H, W) = sum of dy over each pixel's fh x fw block (overwritten).
template <typename T>
void upsample_nearest2d_backward(int64_t planes, int64_t H, int64_t W, int64_t fh, int64_t fw,
                                 const T* dy, T* dx);

}  // namespace smyrf::kernels::cpu
