#include "kernels/cpu/elementwise.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <type_traits>

#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/elementwise_avx2.h"
#include "kernels/cpu/nd_loop.h"
#include "kernels/cpu/short_row_runs.h"
#include "kernels/cpu/streaming_store.h"

namespace smyrf::kernels::cpu {

double unary_scalar(UnaryOp op, double x, double a, double b) {
  constexpr double kInvSqrt2 = 0.70710678118654752440;
  constexpr double kInvSqrt2Pi = 0.39894228040143267794;
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
      return 1.0 / std::sqrt(x);
    case UnaryOp::Abs:
      return std::fabs(x);
    case UnaryOp::Sign:
      return (x > 0) - (x < 0);
    case UnaryOp::Tanh:
      return std::tanh(x);
    case UnaryOp::Sigmoid:
      return 1.0 / (1.0 + std::exp(-x));
    case UnaryOp::Relu:
      return x > 0 ? x : 0.0;
    case UnaryOp::LeakyRelu:
      return x > 0 ? x : a * x;
    // erfc(-z) == 1 + erf(z), without the cancellation that flushed gelu(x < -8.3) to 0
    case UnaryOp::Gelu:
      return 0.5 * x * std::erfc(-x * kInvSqrt2);
    case UnaryOp::Silu:
      return x / (1.0 + std::exp(-x));
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
      return 1.0 / x;
    case UnaryOp::Sin:
      return std::sin(x);
    case UnaryOp::Cos:
      return std::cos(x);
    case UnaryOp::Expm1:
      return std::expm1(x);
    case UnaryOp::GeluGrad:
      return 0.5 * std::erfc(-x * kInvSqrt2) + x * kInvSqrt2Pi * std::exp(-0.5 * x * x);
    case UnaryOp::TanhGradFromOut:
      return 1.0 - x * x;
    case UnaryOp::SigmoidGradFromOut:
      return x * (1.0 - x);
    case UnaryOp::ReluGrad:
      return x > 0 ? 1.0 : 0.0;
    case UnaryOp::SiluGrad: {
      const double s = 1.0 / (1.0 + std::exp(-x));
      return s * (1.0 + x * (1.0 - s));
    }
  }
  return x;
}

namespace {

template <typename T>
T unary_int(UnaryOp op, T x, double a, double b) {
  // bool compares as int (x < 0 on a bool is always false and GCC warns)
  const std::conditional_t<std::is_same_v<T, bool>, int, T> w = x;
  switch (op) {
    case UnaryOp::Neg:
      return static_cast<T>(-x);
    case UnaryOp::Abs:
      return w < 0 ? static_cast<T>(-w) : x;
    case UnaryOp::Sign:
      return static_cast<T>((w > 0) - (w < 0));
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
      return static_cast<T>(unary_scalar(op, static_cast<double>(x), a, b));
  }
}

template <typename T>
inline T apply_unary(UnaryOp op, T x, double a, double b) {
  if constexpr (std::is_floating_point_v<T>) {
    // the plain ops in T and inline (unary_scalar's formulas; Sign and Clamp compare x with the
    // double scalars as it does), so plain_unary_run's loops vectorise; the transcendental ops
    // through unary_scalar in double for accuracy
    switch (op) {
      case UnaryOp::Neg:
        return -x;
      case UnaryOp::Relu:
        return x > 0 ? x : T(0);
      case UnaryOp::MulScalar:
        return x * static_cast<T>(a);
      case UnaryOp::AddScalar:
        return x + static_cast<T>(a);
      case UnaryOp::Square:
        return x * x;
      case UnaryOp::Abs:
        return std::fabs(x);
      case UnaryOp::Sign:
        return static_cast<T>((x > 0) - (x < 0));
      case UnaryOp::Clamp:
        return x < a ? static_cast<T>(a) : (x > b ? static_cast<T>(b) : x);
      default:
        return static_cast<T>(unary_scalar(op, x, a, b));
    }
  } else {
    return unary_int<T>(op, x, a, b);
  }
}

template <typename T>
inline T apply_binary(BinaryOp op, T a, T b) {
  switch (op) {
    case BinaryOp::Add:
      return static_cast<T>(a + b);
    case BinaryOp::Sub:
      return static_cast<T>(a - b);
    case BinaryOp::Mul:
      return static_cast<T>(a * b);
    case BinaryOp::Div:
      if constexpr (std::is_integral_v<T>) {
        // floor division like PyTorch's div(rounding_mode='floor'); x / 0 gives 0, not a trap
        if (b == 0) return T(0);
        T q = static_cast<T>(a / b);
        if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
        return q;
      } else {
        return a / b;
      }
    case BinaryOp::Pow:
      return static_cast<T>(std::pow(static_cast<double>(a), static_cast<double>(b)));
    case BinaryOp::Maximum:
      if constexpr (std::is_floating_point_v<T>) {
        if (std::isnan(a) || std::isnan(b)) return std::numeric_limits<T>::quiet_NaN();
      }
      return a > b ? a : b;
    case BinaryOp::Minimum:
      if constexpr (std::is_floating_point_v<T>) {
        if (std::isnan(a) || std::isnan(b)) return std::numeric_limits<T>::quiet_NaN();
      }
      return a < b ? a : b;
    case BinaryOp::ReluBackward:
      return b > T(0) ? a : T(0);
    case BinaryOp::GeluBackward:  // gelu' in double, as the unary GeluGrad
      return static_cast<T>(static_cast<double>(a) *
                            unary_scalar(UnaryOp::GeluGrad, static_cast<double>(b), 0, 0));
  }
  return a;
}

template <>
inline bool apply_binary<bool>(BinaryOp op, bool a, bool b) {
  switch (op) {
    case BinaryOp::Add:
    case BinaryOp::Maximum:
      return a || b;
    case BinaryOp::Mul:
    case BinaryOp::Minimum:
      return a && b;
    case BinaryOp::Sub:
      return a != b;
    case BinaryOp::ReluBackward:
      return a && b;
    default:
      return a;
  }
}

template <typename T>
inline bool apply_compare(CompareOp op, T a, T b) {
  switch (op) {
    case CompareOp::Eq:
      return a == b;
    case CompareOp::Ne:
      return a != b;
    case CompareOp::Lt:
      return a < b;
    case CompareOp::Le:
      return a <= b;
    case CompareOp::Gt:
      return a > b;
    case CompareOp::Ge:
      return a >= b;
  }
  return false;
}

// Transposed float inputs under AVX2: when the output runs along the last dim but an input is
// strided there and contiguous along another dim p, the plain row loop would read one element
// per cache line. Instead the (p, last) plane is cut into tiles of 64 rows x 128 columns; each
// tile's transposed input is gathered through 8x8 register transposes into a 32 KiB buffer (a
// column block of 8 source runs of 256 B at a time, each run read whole: runs of a power-of-two
// transposed matrix all share one L1 set, so the old 8-row strips, which came back to each run
// four times, fetched it from L3 four times), and the contiguous vector kernel runs on the
// buffer's rows, written in 512 B runs.
//   The tile's shape trades source runs against output runs. On the Xeon of the earlier sessions
// 32 x 256 (128 B source runs, 1 KiB output runs) was best and 64 x 64 1.3x slower; on the
// 2-vCPU EPYC (Zen 5, 1 MiB L2), 4096^2 with a transposed operand, medians of 5 interleaved
// rounds, GB/s 32 x 256 -> 64 x 128: add 23 -> 31, mul 23 -> 32, exp 21 -> 24, gelu 17 -> 18
// (64 x 64, 128 x 64, 32 x 128 and 128 x 128 in between). Our target machines are EPYCs.
//   Overlap: while a tile computes its rows, the source runs of the tile to its right (the next
// one this thread visits) are prefetched into L2, a share per row, so exp and gelu, whose
// compute is as long as the memory traffic, no longer wait for the next gather's misses; the
// gather itself prefetches 32 columns ahead for ops that compute nothing to hide behind.
constexpr int64_t kTileRows = 64, kTileCols = 128;

// The dim (other than the last) along which operand strides `s` are smallest in magnitude, or -1
// when no such dim beats the last one (then reading along the last dim is already best).
inline int tile_dim(int ndim, const int64_t* sizes, const int64_t* s) {
  const int last = ndim - 1;
  auto mag = [](int64_t v) { return v < 0 ? -v : v; };
  int best = -1;
  for (int d = 0; d < last; ++d)
    if (sizes[d] > 1 && s[d] != 0 && (best < 0 || mag(s[d]) < mag(s[best]))) best = d;
  if (best >= 0 && mag(s[best]) >= mag(s[last])) return -1;
  return best;
}

inline bool strided_inner(const int64_t* s, int ndim) {
  const int64_t v = s[ndim - 1];
  return v != 0 && v != 1;
}

inline int64_t total_size(int ndim, const int64_t* sizes) {
  int64_t t = 1;
  for (int d = 0; d < ndim; ++d) t *= sizes[d];
  return t;
}

// Prefetch, for output row i of a rows x cols tile, its share of the next tile's lines: the
// source runs (rows long, s_col apart) of a transposed operand, or row i's next cols elements
// of a row-contiguous one.
inline void prefetch_next_transposed(const float* src, int64_t s_col, int64_t rows, int64_t cols,
                                     int64_t i) {
  const int64_t per = (cols + rows - 1) / rows;
  if (i * per < cols) avx2::prefetch_columns_f32(src, s_col, rows, cols + i * per, per);
}
inline void prefetch_next_row(const float* row, int64_t cols) {
  avx2::prefetch_columns_f32(row + cols, 0, cols, 0, 1);
}

// The tiled path for one transposed float input x: row(src, dst, cols, stream) turns each
// gathered tile row (contiguous) into its output row. False when x is not transposed.
template <typename Row>
bool tiled_rows_f32(int ndim, const int64_t* sizes, const float* x, const int64_t* xs, float* y,
                    const int64_t* ys, Row row) {
  if (ndim < 2 || ys[ndim - 1] != 1 || !strided_inner(xs, ndim) || sizes[ndim - 1] < 8)
    return false;
  const int p = tile_dim(ndim, sizes, xs);
  if (p < 0) return false;
  const bool stream = use_streaming_stores(total_size(ndim, sizes) * int64_t(sizeof(float)));
  nd_loop_tiles<2>(ndim, sizes, {xs, ys}, p, kTileRows, kTileCols,
                   [&](const std::array<int64_t, 2>& off, int64_t rows, int64_t cols,
                       const std::array<int64_t, 2>& rs, const std::array<int64_t, 2>& cs) {
                     alignas(32) float buf[kTileRows * kTileCols];
                     const float* xt = x + off[0];
                     avx2::gather_tile_f32(xt, rs[0], cs[0], rows, cols, buf, kTileCols);
                     for (int64_t i = 0; i < rows; ++i) {
                       if (rs[0] == 1) prefetch_next_transposed(xt, cs[0], rows, cols, i);
                       row(buf + i * kTileCols, y + off[1] + i * rs[1], cols, stream);
                     }
                   });
  return true;
}

// Runs with a non-unit stride that no tile dim beats (a slice with a step, x[:, ::2]) go through
// the vector kernels in pieces of kStridedPiece elements: each strided operand is gathered into
// a contiguous stack buffer, a strided output is computed in one and scattered. The element loop
// called the scalar function per element: exp of x[:, ::2] (4096 x 8192) took 38 ms, against
// 2.3 for a contiguous 4096 x 4096.
constexpr int64_t kStridedPiece = 512;
constexpr int64_t kStridedMin = 16;  // shorter runs stay in the element loop

// p[0, s, 2s, ...] of m elements, or p itself where s is 1 (or 0 for an operand the vector
// kernel broadcasts, with keep_zero)
inline const float* gathered(const float* p, int64_t s, int64_t m, float* buf,
                             bool keep_zero = false) {
  if (s == 1 || (keep_zero && s == 0)) return p;
  for (int64_t i = 0; i < m; ++i) buf[i] = p[i * s];
  return buf;
}
inline void scatter(const float* buf, float* p, int64_t s, int64_t m) {
  for (int64_t i = 0; i < m; ++i) p[i * s] = buf[i];
}

bool unary_strided_run_f32(UnaryOp op, float a, float b, const float* x, int64_t xs, float* y,
                           int64_t ys, int64_t n) {
  if (!avx2::unary_f32_supported(op, a, b)) return false;
  alignas(32) float xb[kStridedPiece], yb[kStridedPiece];
  for (int64_t i = 0; i < n; i += kStridedPiece) {
    const int64_t m = n - i < kStridedPiece ? n - i : kStridedPiece;
    float* out = ys == 1 ? y + i : yb;
    avx2::unary_f32(op, a, b, gathered(x + i * xs, xs, m, xb), out, m, false);
    if (ys != 1) scatter(yb, y + i * ys, ys, m);
  }
  return true;
}

bool binary_strided_run_f32(BinaryOp op, const float* a, int64_t as, const float* b, int64_t bs,
                            float* y, int64_t ys, int64_t n) {
  alignas(32) float ab[kStridedPiece], bb[kStridedPiece], yb[kStridedPiece];
  for (int64_t i = 0; i < n; i += kStridedPiece) {
    const int64_t m = n - i < kStridedPiece ? n - i : kStridedPiece;
    const float* ap = gathered(a + i * as, as, m, ab, true);
    const float* bp = gathered(b + i * bs, bs, m, bb, true);
    float* out = ys == 1 ? y + i : yb;
    avx2::binary_f32(op, ap, as == 0 ? 0 : 1, bp, bs == 0 ? 0 : 1, out, m, false);
    if (ys != 1) scatter(yb, y + i * ys, ys, m);
  }
  return true;
}

bool unary_streams(UnaryOp op);

// (The tiles' rows stream only for the ops whose contiguous form streams, unary_streams below:
// exp / gelu of a transposed 4096^2, `smyrf bench elementwise`, 3 alternated runs, ms, streamed
// -> plain: exp 6.64-6.78 -> 6.36-6.42, gelu 8.90-8.99 -> 8.20-8.38.)
bool unary_tiled_f32(UnaryOp op, float a, float b, int ndim, const int64_t* sizes, const float* x,
                     const int64_t* xs, float* y, const int64_t* ys) {
  if (!avx2::unary_f32_supported(op, a, b)) return false;
  return tiled_rows_f32(ndim, sizes, x, xs, y, ys,
                        [&](const float* src, float* dst, int64_t cols, bool stream) {
                          avx2::unary_f32(op, a, b, src, dst, cols, stream && unary_streams(op));
                        });
}

// A float copy (contiguous(), clone, copy_into) of a transposed or permuted source: the tiled
// path with plain row copies. The element loop read one float per cache line of a transposed
// source: contiguous() of a transposed 4096^2 matrix took 74 ms, 5x an add of two 4096^2
// matrices, and softmax over dim 0 (which transposes there and back) 233 ms.
bool copy_tiled_f32(int ndim, const int64_t* sizes, const float* x, const int64_t* xs, float* y,
                    const int64_t* ys) {
  return tiled_rows_f32(ndim, sizes, x, xs, y, ys,
                        [](const float* src, float* dst, int64_t cols, bool stream) {
                          avx2::copy_f32(src, 1, dst, cols, stream);
                        });
}

bool binary_tiled_f32(BinaryOp op, int ndim, const int64_t* sizes, const float* a,
                      const int64_t* as, const float* b, const int64_t* bs, float* y,
                      const int64_t* ys) {
  if (ndim < 2 || ys[ndim - 1] != 1 || sizes[ndim - 1] < 8) return false;
  const bool ta = strided_inner(as, ndim), tb = strided_inner(bs, ndim);
  if (!(ta || tb)) return false;
  const int p = tile_dim(ndim, sizes, ta ? as : bs);
  if (p < 0) return false;
  const bool stream = use_streaming_stores(total_size(ndim, sizes) * int64_t(sizeof(float)));
  nd_loop_tiles<3>(ndim, sizes, {as, bs, ys}, p, kTileRows, kTileCols,
                   [&](const std::array<int64_t, 3>& off, int64_t rows, int64_t cols,
                       const std::array<int64_t, 3>& rs, const std::array<int64_t, 3>& cs) {
                     alignas(32) float buf_a[kTileRows * kTileCols];
                     alignas(32) float buf_b[kTileRows * kTileCols];
                     const float* a0 = a + off[0];
                     const float* b0 = b + off[1];
                     if (ta) avx2::gather_tile_f32(a0, rs[0], cs[0], rows, cols, buf_a, kTileCols);
                     if (tb) avx2::gather_tile_f32(b0, rs[1], cs[1], rows, cols, buf_b, kTileCols);
                     for (int64_t i = 0; i < rows; ++i) {
                       const float* ap = ta ? buf_a + i * kTileCols : a0 + i * rs[0];
                       const float* bp = tb ? buf_b + i * kTileCols : b0 + i * rs[1];
                       if (ta && rs[0] == 1) prefetch_next_transposed(a0, cs[0], rows, cols, i);
                       if (tb && rs[1] == 1) prefetch_next_transposed(b0, cs[1], rows, cols, i);
                       if (!ta && cs[0] == 1) prefetch_next_row(ap, cols);
                       if (!tb && cs[1] == 1) prefetch_next_row(bp, cols);
                       avx2::binary_f32(op, ap, ta ? 1 : cs[0], bp, tb ? 1 : cs[1],
                                        y + off[2] + i * rs[2], cols, stream);
                     }
                   });
  return true;
}

// y (R, n) = a op b over short rows with a broadcast row or column (kernels/cpu/short_row_runs.h).
bool binary_short_rows_f32(BinaryOp op, int ndim, const int64_t* sizes, const float* a,
                           const int64_t* as, const float* b, const int64_t* bs, float* y,
                           const int64_t* ys) {
  const bool stream = use_streaming_stores(total_size(ndim, sizes) * int64_t(sizeof(float)));
  return short_row_runs<2>(
      ndim, sizes, ys, {RunOperand{a, 4, as}, RunOperand{b, 4, bs}}, stream,
      [&](const std::array<const void*, 2>& p, const std::array<int64_t, 2>& st, int64_t y_off,
          int64_t L) {
        avx2::binary_f32(op, static_cast<const float*>(p[0]), st[0],
                         static_cast<const float*>(p[1]), st[1], y + y_off, L, stream);
      },
      [&](int64_t done) {
        const int64_t rest[2] = {sizes[0] - done, sizes[1]};
        binary<float>(op, 2, rest, a + done * as[0], as, b + done * bs[0], bs, y + done * ys[0],
                      ys);
      });
}

// Unary op on an input broadcast (stride 0) along some dims: y is constant along them, so the
// op runs once on the distinct inputs, into y's first slice, and that slice is copied along the
// broadcast dims (the copy moves as many bytes as recomputing would read, without the compute:
// a broadcast gelu or exp costs a fill instead of a full evaluation per element).
bool unary_broadcast_f32(UnaryOp op, float a, float b, int ndim, const int64_t* sizes,
                         const float* x, const int64_t* xs, float* y, const int64_t* ys) {
  if (!avx2::unary_f32_supported(op, a, b)) return false;
  int nb = 0;
  for (int d = 0; d < ndim; ++d) {
    if (sizes[d] <= 1) continue;
    if (ys[d] == 0) return false;  // an output that overlaps itself: leave it to the plain loop
    if (xs[d] == 0) ++nb;
  }
  if (nb == 0) return false;
  // 1. the distinct inputs: the dims that x is not broadcast along
  int64_t sz[kMaxDims], sx[kMaxDims], sy[kMaxDims];
  int nd = 0;
  for (int d = 0; d < ndim; ++d)
    if (sizes[d] > 1 && xs[d] != 0) sz[nd] = sizes[d], sx[nd] = xs[d], sy[nd] = ys[d], ++nd;
  unary<float>(op, a, b, nd, sz, x, sx, y, sy);
  // 2. copy y's first slice (y at the same index with the broadcast coordinates at 0) over the
  // whole index space; the first slice's own runs are skipped (copying them onto themselves)
  int64_t src_st[kMaxDims];
  for (int d = 0; d < ndim; ++d) src_st[d] = xs[d] == 0 ? 0 : ys[d];
  const bool stream = use_streaming_stores(total_size(ndim, sizes) * int64_t(sizeof(float)));
  nd_loop<2>(ndim, sizes, {src_st, ys},
             [&](const std::array<int64_t, 2>& off, int64_t n, const std::array<int64_t, 2>& st) {
               if (st[0] != 0 && off[0] == off[1]) return;  // a run of the first slice
               if (st[1] == 1 && (st[0] == 0 || st[0] == 1)) {
                 avx2::copy_f32(y + off[0], st[0], y + off[1], n, stream);
               } else {
                 const float v0 = y[off[0]];
                 for (int64_t i = 0; i < n; ++i)
                   y[off[1] + i * st[1]] = st[0] ? y[off[0] + i * st[0]] : v0;
               }
             });
  return true;
}

// Whether a contiguous unary op's large output should go out as streaming stores. Not for the
// ops whose vector math is long (exp and what is built on it, log, the erf of gelu): between two
// stores of a line they compute long enough that, on the EPYC, plain stores came out ahead.
// 4096^2, 2 threads, medians of 9 calls, three interleaved rounds, ms streamed -> plain: exp
// 3.2-4.1 -> 2.9-3.0, log 6.8-8.1 -> 6.3-6.4, tanh 6.2-7.5 -> 5.8, sigmoid 4.6-5.9 -> 4.3-4.4,
// gelu 4.6-6.2 -> 4.5, silu 4.7-6.2 -> 4.6, gelu' 8.6-9.1 -> 7.2-7.5; a negation stays streamed
// (1.4-2.7 against 2.3-2.8 plain). The library before / after this choice, three interleaved
// rounds later (a faster host state): log 6.0-6.5 -> 5.5-5.6, tanh 5.3-5.5 -> 4.9-5.0, gelu'
// 7.2-7.7 -> 6.5-6.7, sigmoid 3.8-4.1 -> 3.7-3.8, gelu 3.9-4.2 -> 3.9-4.0, exp even.
bool unary_streams(UnaryOp op) {
  switch (op) {
    case UnaryOp::Exp:
    case UnaryOp::Expm1:
    case UnaryOp::Log:
    case UnaryOp::Log1p:
    case UnaryOp::Tanh:
    case UnaryOp::Sigmoid:
    case UnaryOp::Gelu:
    case UnaryOp::Silu:
    case UnaryOp::GeluGrad:
    case UnaryOp::SiluGrad:
    case UnaryOp::PowScalar:
      return false;
    default:
      return true;
  }
}

}  // namespace

// Run loops for the types without AVX2 kernels (bool, int32, int64, double; and float under
// SMYRF_CPU=scalar is left to the element loop, the reference): the op is chosen once a run and
// the element functions (apply_unary / apply_binary / apply_compare) are called with it as a
// constant, so their switch folds away and the compiler vectorises the loop. Through the
// per-element switch, over 4096^2: int32 add 30.6 ms, int64 == 35, float64 abs 62 and * 2.0 66,
// a float64 where 93, logical_and 24 (PyTorch's kernels 8-11 ms). Operand strides are 0 or 1, the
// output's 1. False (nothing done) for the ops not listed.
template <typename T>
constexpr bool kPlainRunType = std::is_same_v<T, bool> || std::is_same_v<T, int32_t> ||
                               std::is_same_v<T, int64_t> || std::is_same_v<T, double>;

// c ? u : v through a bit mask: the compiler keeps `c ? u : v` over doubles as a branch (baseline
// x86-64 has no blend), which mispredicts half the time on a random mask (where over 4096^2
// float64: 88 ms); masks vectorise
template <typename T>
inline T select_bits(bool c, T u, T v) {
  using U = std::conditional_t<sizeof(T) == 8, uint64_t,
                               std::conditional_t<sizeof(T) == 4, uint32_t, uint8_t>>;
  static_assert(sizeof(U) == sizeof(T), "1-, 4- or 8-byte elements");
  U ub, vb;
  std::memcpy(&ub, &u, sizeof(T));
  std::memcpy(&vb, &v, sizeof(T));
  const U m = static_cast<U>(U(0) - static_cast<U>(c));
  const U r = static_cast<U>((ub & m) | (vb & static_cast<U>(~m)));
  T out;
  std::memcpy(&out, &r, sizeof(T));
  return out;
}

// y[i] = f(a[i * as], b[i * bs]) with the stride-0 operands read once
template <typename A, typename B, typename Y, typename F>
inline void run2(const A* a, int64_t as, const B* b, int64_t bs, Y* y, int64_t n, F f) {
  if (as == 1 && bs == 1) {
    for (int64_t i = 0; i < n; ++i) y[i] = f(a[i], b[i]);
  } else if (as == 0 && bs == 1) {
    const A av = *a;
    for (int64_t i = 0; i < n; ++i) y[i] = f(av, b[i]);
  } else if (as == 1 && bs == 0) {
    const B bv = *b;
    for (int64_t i = 0; i < n; ++i) y[i] = f(a[i], bv);
  } else {
    const Y v = f(*a, *b);
    for (int64_t i = 0; i < n; ++i) y[i] = v;
  }
}

// Calls f(std::integral_constant<E, V>{}) for the V among Vs equal to op and returns true; false
// when op is none of them. f sees the op as a compile-time constant.
template <typename E, E... Vs, typename F>
bool with_constant_op(E op, F f) {
  return ((op == Vs ? (f(std::integral_constant<E, Vs>{}), true) : false) || ...);
}

inline bool unit_stride(int64_t s) { return s == 0 || s == 1; }

// The run loops themselves: false (nothing done) for other types, ops or strides (operands 0 or
// 1, the output 1).
template <typename T>
bool plain_binary_run(BinaryOp op, const T* a, int64_t as, const T* b, int64_t bs, T* y, int64_t ys,
                      int64_t n) {
  if constexpr (!kPlainRunType<T>) {
    return false;
  } else {
    using O = BinaryOp;
    return ys == 1 && unit_stride(as) && unit_stride(bs) &&
           with_constant_op<O, O::Add, O::Sub, O::Mul, O::Maximum, O::Minimum>(op, [&](auto k) {
             run2(a, as, b, bs, y, n,
                  [](T u, T v) { return apply_binary<T>(decltype(k)::value, u, v); });
           });
  }
}

template <typename T>
bool plain_unary_run(UnaryOp op, double a, double b, const T* x, int64_t xs, T* y, int64_t ys,
                     int64_t n) {
  if constexpr (!kPlainRunType<T> || std::is_same_v<T, bool>) {
    return false;
  } else {
    using O = UnaryOp;
    return xs == 1 && ys == 1 &&
           with_constant_op<O, O::Neg, O::Abs, O::Sign, O::Relu, O::Clamp, O::MulScalar,
                            O::AddScalar, O::Square>(op, [&](auto k) {
             for (int64_t i = 0; i < n; ++i) y[i] = apply_unary<T>(decltype(k)::value, x[i], a, b);
           });
  }
}

template <typename T>
bool plain_compare_run(CompareOp op, const T* a, int64_t as, const T* b, int64_t bs, bool* y,
                       int64_t ys, int64_t n) {
  if constexpr (!kPlainRunType<T>) {
    return false;
  } else {
    using O = CompareOp;
    return ys == 1 && unit_stride(as) && unit_stride(bs) &&
           with_constant_op<O, O::Eq, O::Ne, O::Lt, O::Le, O::Gt, O::Ge>(op, [&](auto k) {
             run2(a, as, b, bs, y, n,
                  [](T u, T v) { return apply_compare<T>(decltype(k)::value, u, v); });
           });
  }
}

template <typename T>
void unary(UnaryOp op, double a, double b, int ndim, const int64_t* sizes, const T* x,
           const int64_t* xs, T* y, const int64_t* ys) {
  // pow's vector kernel takes a float exponent: others (1 / 3) keep the reference's double one
  const bool vec = std::is_same_v<T, float> && active_isa() == Isa::Avx2 &&
                   !(op == UnaryOp::PowScalar && static_cast<double>(static_cast<float>(a)) != a);
  const bool vec64 = std::is_same_v<T, double> && active_isa() == Isa::Avx2;
  bool stream = false;
  if constexpr (std::is_same_v<T, float>) {
    const float fa = static_cast<float>(a), fb = static_cast<float>(b);
    if (vec && (unary_broadcast_f32(op, fa, fb, ndim, sizes, x, xs, y, ys) ||
                unary_tiled_f32(op, fa, fb, ndim, sizes, x, xs, y, ys)))
      return;
    stream = vec && unary_streams(op) &&
             use_streaming_stores(total_size(ndim, sizes) * int64_t(sizeof(float)));
  }
  nd_loop<2>(
      ndim, sizes, {xs, ys},
      [&](const std::array<int64_t, 2>& off, int64_t n, const std::array<int64_t, 2>& st) {
        const T* xp = x + off[0];
        T* yp = y + off[1];
        if constexpr (std::is_same_v<T, float>) {
          if (vec && st[0] == 1 && st[1] == 1 &&
              avx2::unary_f32(op, static_cast<float>(a), static_cast<float>(b), xp, yp, n, stream))
            return;
          if (vec && n >= kStridedMin &&
              unary_strided_run_f32(op, static_cast<float>(a), static_cast<float>(b), xp, st[0], yp,
                                    st[1], n))
            return;
        }
        if constexpr (std::is_same_v<T, double>) {
          if (vec64 && st[0] == 1 && st[1] == 1 && avx2::unary_f64(op, xp, yp, n)) return;
        }
        if (plain_unary_run<T>(op, a, b, xp, st[0], yp, st[1], n)) return;
        for (int64_t i = 0; i < n; ++i) yp[i * st[1]] = apply_unary<T>(op, xp[i * st[0]], a, b);
      });
}

template <typename T>
void binary(BinaryOp op, int ndim, const int64_t* sizes, const T* a, const int64_t* as, const T* b,
            const int64_t* bs, T* y, const int64_t* ys) {
  const bool vec = std::is_same_v<T, float> && active_isa() == Isa::Avx2;
  bool stream = false;
  if constexpr (std::is_same_v<T, float>) {
    if (vec && (binary_short_rows_f32(op, ndim, sizes, a, as, b, bs, y, ys) ||
                binary_tiled_f32(op, ndim, sizes, a, as, b, bs, y, ys)))
      return;
    stream = vec && use_streaming_stores(total_size(ndim, sizes) * int64_t(sizeof(float)));
  }
  nd_loop<3>(ndim, sizes, {as, bs, ys},
             [&](const std::array<int64_t, 3>& off, int64_t n, const std::array<int64_t, 3>& st) {
               const T* ap = a + off[0];
               const T* bp = b + off[1];
               T* yp = y + off[2];
               if constexpr (std::is_same_v<T, float>) {
                 // (0 or 1 exactly: a negative stride, from a flipped view, is not a contiguous
                 // run)
                 if (vec && st[2] == 1 && unit_stride(st[0]) && unit_stride(st[1]) &&
                     avx2::binary_f32(op, ap, st[0], bp, st[1], yp, n, stream))
                   return;
                 if (vec && n >= kStridedMin &&
                     binary_strided_run_f32(op, ap, st[0], bp, st[1], yp, st[2], n))
                   return;
               }
               if (plain_binary_run<T>(op, ap, st[0], bp, st[1], yp, st[2], n)) return;
               for (int64_t i = 0; i < n; ++i)
                 yp[i * st[2]] = apply_binary<T>(op, ap[i * st[0]], bp[i * st[1]]);
             });
}

template <typename T>
void compare(CompareOp op, int ndim, const int64_t* sizes, const T* a, const int64_t* as,
             const T* b, const int64_t* bs, bool* y, const int64_t* ys) {
  const bool vec = std::is_same_v<T, float> && active_isa() == Isa::Avx2;
  if constexpr (std::is_same_v<T, float>) {
    if (vec && short_row_runs<2>(
                   ndim, sizes, ys, {RunOperand{a, 4, as}, RunOperand{b, 4, bs}}, false,
                   [&](const std::array<const void*, 2>& p, const std::array<int64_t, 2>& st,
                       int64_t y_off, int64_t L) {
                     avx2::compare_f32(op, static_cast<const float*>(p[0]), st[0],
                                       static_cast<const float*>(p[1]), st[1], y + y_off, L);
                   },
                   [&](int64_t done) {
                     const int64_t rest[2] = {sizes[0] - done, sizes[1]};
                     compare<float>(op, 2, rest, a + done * as[0], as, b + done * bs[0], bs,
                                    y + done * ys[0], ys);
                   }))
      return;
  }
  nd_loop<3>(
      ndim, sizes, {as, bs, ys},
      [&](const std::array<int64_t, 3>& off, int64_t n, const std::array<int64_t, 3>& st) {
        if constexpr (std::is_same_v<T, float>) {
          if (vec && st[2] == 1 && unit_stride(st[0]) && unit_stride(st[1])) {
            avx2::compare_f32(op, a + off[0], st[0], b + off[1], st[1], y + off[2], n);
            return;
          }
        }
        if (plain_compare_run<T>(op, a + off[0], st[0], b + off[1], st[1], y + off[2], st[2], n))
          return;
        for (int64_t i = 0; i < n; ++i)
          y[off[2] + i * st[2]] =
              apply_compare<T>(op, a[off[0] + i * st[0]], b[off[1] + i * st[1]]);
      });
}

template <typename T>
void where(int ndim, const int64_t* sizes, const bool* c, const int64_t* cs, const T* a,
           const int64_t* as, const T* b, const int64_t* bs, T* y, const int64_t* ys) {
  const bool vec = std::is_same_v<T, float> && active_isa() == Isa::Avx2;
  const bool stream = vec && use_streaming_stores(total_size(ndim, sizes) * int64_t(sizeof(T)));
  if constexpr (std::is_same_v<T, float>) {
    if (vec && short_row_runs<3>(
                   ndim, sizes, ys,
                   {RunOperand{c, 1, cs}, RunOperand{a, 4, as}, RunOperand{b, 4, bs}}, stream,
                   [&](const std::array<const void*, 3>& p, const std::array<int64_t, 3>& st,
                       int64_t y_off, int64_t L) {
                     avx2::where_f32(static_cast<const bool*>(p[0]), st[0],
                                     static_cast<const float*>(p[1]), st[1],
                                     static_cast<const float*>(p[2]), st[2], y + y_off, L, stream);
                   },
                   [&](int64_t done) {
                     const int64_t rest[2] = {sizes[0] - done, sizes[1]};
                     where<float>(2, rest, c + done * cs[0], cs, a + done * as[0], as,
                                  b + done * bs[0], bs, y + done * ys[0], ys);
                   }))
      return;
  }
  nd_loop<4>(
      ndim, sizes, {cs, as, bs, ys},
      [&](const std::array<int64_t, 4>& off, int64_t n, const std::array<int64_t, 4>& st) {
        if constexpr (std::is_same_v<T, float>) {
          if (vec && st[3] == 1 && unit_stride(st[0]) && unit_stride(st[1]) && unit_stride(st[2])) {
            avx2::where_f32(c + off[0], st[0], a + off[1], st[1], b + off[2], st[2], y + off[3], n,
                            stream);
            return;
          }
        }
        if (kPlainRunType<T> && st[0] == 1 && st[1] == 1 && st[2] == 1 && st[3] == 1) {
          // a select the compiler vectorises (the branch mispredicted on random masks)
          const bool* cp = c + off[0];
          const T* ap = a + off[1];
          const T* bp = b + off[2];
          T* yp = y + off[3];
          for (int64_t i = 0; i < n; ++i) yp[i] = select_bits(cp[i], ap[i], bp[i]);
          return;
        }
        for (int64_t i = 0; i < n; ++i)
          y[off[3] + i * st[3]] =
              c[off[0] + i * st[0]] ? a[off[1] + i * st[1]] : b[off[2] + i * st[2]];
      });
}

namespace {
// Runs this long (elements, contiguous on both sides) make a permuted copy loop in the source's
// memory order; shorter ones would leave partial cache lines of the destination per write.
constexpr int64_t kSourceOrderMinRun = 16;

// The outer dims of a copy whose innermost dim is contiguous in both operands, reordered to the
// source's memory order (strides descending; the innermost dim stays last), into sz / xo / yo.
// False (nothing written) when the copy does not qualify or is already in that order. Looping in
// the destination's order read the source in runs scattered across pages, which the hardware
// prefetchers do not follow: splitting attention heads, permute(0, 2, 1, 3) of (64, 128, 12, 64)
// floats, 1.7-1.9 -> 0.97-1.0 ms (kernel alone, 2 threads); the destination's runs, whole lines,
// are written where they go.
bool source_order(int ndim, const int64_t* sizes, const int64_t* xs, const int64_t* ys, int64_t* sz,
                  int64_t* xo, int64_t* yo) {
  const int last = ndim - 1;
  if (ndim < 3 || xs[last] != 1 || ys[last] != 1 || sizes[last] < kSourceOrderMinRun) return false;
  int order[kMaxDims];
  for (int d = 0; d < last; ++d) order[d] = d;
  std::stable_sort(order, order + last,
                   [&](int a, int b) { return std::abs(xs[a]) > std::abs(xs[b]); });
  bool moved = false;
  for (int d = 0; d < last; ++d) moved = moved || order[d] != d;
  if (!moved) return false;
  for (int d = 0; d < last; ++d) {
    sz[d] = sizes[order[d]];
    xo[d] = xs[order[d]];
    yo[d] = ys[order[d]];
  }
  sz[last] = sizes[last];
  xo[last] = yo[last] = 1;
  return true;
}
}  // namespace

template <typename S, typename D>
void convert(int ndim, const int64_t* sizes, const S* x, const int64_t* xs, D* y,
             const int64_t* ys) {
  int64_t sz[kMaxDims], xo[kMaxDims], yo[kMaxDims];
  if (source_order(ndim, sizes, xs, ys, sz, xo, yo)) {
    convert<S, D>(ndim, sz, x, xo, y, yo);
    return;
  }
  constexpr bool f32_copy = std::is_same_v<S, float> && std::is_same_v<D, float>;
  constexpr bool bool_f32 = std::is_same_v<S, bool> && std::is_same_v<D, float>;
  const bool vec = (f32_copy || bool_f32) && active_isa() == Isa::Avx2;
  bool stream = false;
  if constexpr (f32_copy) {
    if (vec && copy_tiled_f32(ndim, sizes, x, xs, y, ys)) return;
  }
  if constexpr (f32_copy || bool_f32)
    stream = vec && use_streaming_stores(total_size(ndim, sizes) * int64_t(sizeof(float)));
  nd_loop<2>(ndim, sizes, {xs, ys},
             [&](const std::array<int64_t, 2>& off, int64_t n, const std::array<int64_t, 2>& st) {
               const S* xp = x + off[0];
               D* yp = y + off[1];
               if constexpr (bool_f32) {  // a mask to float (relu's and clamp's gradients)
                 if (vec && st[0] == 1 && st[1] == 1) {
                   avx2::bool_to_f32(xp, yp, n, stream);
                   return;
                 }
               }
               if constexpr (f32_copy) {
                 // (a copy between distinct buffers: copy_into's destination is fresh or a
                 // view the caller owns; copy_f32 streams large outputs)
                 // (runs of 64 and more: for shorter ones the call and its head / tail
                 // handling cost more than the compiler's vectorised loop below)
                 if (vec && n >= 64 && unit_stride(st[0]) && st[1] == 1) {
                   avx2::copy_f32(xp, st[0], yp, n, stream);
                   return;
                 }
               }
               if (st[0] == 1 && st[1] == 1) {
                 for (int64_t i = 0; i < n; ++i) yp[i] = static_cast<D>(xp[i]);
               } else {
                 for (int64_t i = 0; i < n; ++i) yp[i * st[1]] = static_cast<D>(xp[i * st[0]]);
               }
             });
}

template <typename T>
void masked_scale(const T* x, const bool* keep, T scale, T* y, int64_t n) {
  // one pass (dropout had composed it of a bool -> float conversion, a scaling and a multiply:
  // three passes and two temporaries the size of x), branch-free (a select on random masks
  // mispredicted)
  constexpr bool kF32 = std::is_same_v<T, float>;
  const bool vec = kF32 && active_isa() == Isa::Avx2;
  const bool stream = vec && use_streaming_stores(n * int64_t(sizeof(T)));
#pragma omp parallel if (n >= kParallelGrain && !omp_in_parallel())
  {
#pragma omp for schedule(static)
    for (int64_t c = 0; c < n; c += kParallelGrain) {
      const int64_t len = c + kParallelGrain < n ? kParallelGrain : n - c;
      if constexpr (kF32) {
        if (vec) {
          avx2::masked_scale_f32(x + c, keep + c, scale, y + c, len, stream);
          continue;
        }
      }
      for (int64_t i = c; i < c + len; ++i) y[i] = x[i] * (static_cast<T>(keep[i]) * scale);
    }
    if (stream) streaming_store_fence();  // each thread, for its own streamed stores
  }
}

template <typename T>
void fill(int ndim, const int64_t* sizes, T* y, const int64_t* ys, T value) {
  nd_loop<1>(ndim, sizes, {ys},
             [&](const std::array<int64_t, 1>& off, int64_t n, const std::array<int64_t, 1>& st) {
               for (int64_t i = 0; i < n; ++i) y[off[0] + i * st[0]] = value;
             });
}

#define SMYRF_INSTANTIATE_EW(T)                                                                  \
  template void unary<T>(UnaryOp, double, double, int, const int64_t*, const T*, const int64_t*, \
                         T*, const int64_t*);                                                    \
  template void binary<T>(BinaryOp, int, const int64_t*, const T*, const int64_t*, const T*,     \
                          const int64_t*, T*, const int64_t*);                                   \
  template void compare<T>(CompareOp, int, const int64_t*, const T*, const int64_t*, const T*,   \
                           const int64_t*, bool*, const int64_t*);                               \
  template void where<T>(int, const int64_t*, const bool*, const int64_t*, const T*,             \
                         const int64_t*, const T*, const int64_t*, T*, const int64_t*);          \
  template void fill<T>(int, const int64_t*, T*, const int64_t*, T);
SMYRF_INSTANTIATE_EW(bool)
SMYRF_INSTANTIATE_EW(int32_t)
SMYRF_INSTANTIATE_EW(int64_t)
SMYRF_INSTANTIATE_EW(float)
SMYRF_INSTANTIATE_EW(double)
template void masked_scale<float>(const float*, const bool*, float, float*, int64_t);
template void masked_scale<double>(const double*, const bool*, double, double*, int64_t);

#define SMYRF_INSTANTIATE_CONVERT_TO(S)                                                      \
  template void convert<S, bool>(int, const int64_t*, const S*, const int64_t*, bool*,       \
                                 const int64_t*);                                            \
  template void convert<S, int32_t>(int, const int64_t*, const S*, const int64_t*, int32_t*, \
                                    const int64_t*);                                         \
  template void convert<S, int64_t>(int, const int64_t*, const S*, const int64_t*, int64_t*, \
                                    const int64_t*);                                         \
  template void convert<S, float>(int, const int64_t*, const S*, const int64_t*, float*,     \
                                  const int64_t*);                                           \
  template void convert<S, double>(int, const int64_t*, const S*, const int64_t*, double*,   \
                                   const int64_t*);
SMYRF_INSTANTIATE_CONVERT_TO(bool)
SMYRF_INSTANTIATE_CONVERT_TO(int32_t)
SMYRF_INSTANTIATE_CONVERT_TO(int64_t)
SMYRF_INSTANTIATE_CONVERT_TO(float)
SMYRF_INSTANTIATE_CONVERT_TO(double)

}  // namespace smyrf::kernels::cpu
