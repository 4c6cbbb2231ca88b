// The float32 elementwise paths beyond the plain contiguous loop: non-temporal stores for large
// outputs (aligned head, streamed body, masked tail), the transposed-input tiles (column-block
// gather with prefetches) and the broadcast-input unary (computed once, then copied). Each is
// checked against the scalar reference, or bit for bit against the plain vector loop where the
// arithmetic is the same.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/elementwise_avx2.h"
#include "kernels/cpu/streaming_store.h"
#include "tests/kernels/kernel_test_util.h"

using namespace smyrf::kernels::cpu;
using kernel_test::close;
using kernel_test::IsaGuard;
using kernel_test::randn;

namespace {

const float kNaN = std::numeric_limits<float>::quiet_NaN();
const float kInf = std::numeric_limits<float>::infinity();

bool have_avx2() {
  if (!cpu_has_avx2_fma()) MESSAGE("no AVX2+FMA here: AVX2 paths skipped");
  return cpu_has_avx2_fma();
}

bool same_bits(float a, float b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  return std::memcmp(&a, &b, 4) == 0;
}

// first index where got and want differ (bitwise when rel < 0), or -1
int64_t first_mismatch(const float* got, const float* want, int64_t n, double rel = -1,
                       double abs = 0) {
  for (int64_t i = 0; i < n; ++i)
    if (rel < 0 ? !same_bits(got[i], want[i]) : !close(got[i], want[i], rel, abs)) return i;
  return -1;
}

}  // namespace

TEST_CASE("streamed unary / binary / copy runs equal the plain ones bit for bit, any alignment") {
  if (!have_avx2()) return;
  // 64 floats of slack on both sides: nothing outside [off, off + n) may change
  auto x = randn(400, 1, 3.f), b = randn(400, 2);
  x[5] = kNaN, x[17] = -kInf, x[40] = 1e-45f;
  for (int64_t off = 0; off < 8; ++off)
    for (int64_t n : {0, 1, 7, 8, 9, 15, 16, 17, 31, 33, 64, 100, 257}) {
      CAPTURE(off);
      CAPTURE(n);
      alignas(32) float plain[400], streamed[400];
      for (UnaryOp op : {UnaryOp::Gelu, UnaryOp::Exp, UnaryOp::Neg, UnaryOp::GeluGrad}) {
        std::fill(plain, plain + 400, 7.f);
        std::fill(streamed, streamed + 400, 7.f);
        REQUIRE(avx2::unary_f32(op, 0, 0, x.data() + 3, plain + 64 + off, n, false));
        REQUIRE(avx2::unary_f32(op, 0, 0, x.data() + 3, streamed + 64 + off, n, true));
        streaming_store_fence();
        CHECK(first_mismatch(streamed, plain, 400) == -1);
      }
      for (int64_t bs : {0, 1}) {
        std::fill(plain, plain + 400, 7.f);
        std::fill(streamed, streamed + 400, 7.f);
        avx2::binary_f32(BinaryOp::Mul, x.data() + 1, 1, b.data() + 2, bs, plain + 64 + off, n,
                         false);
        avx2::binary_f32(BinaryOp::Mul, x.data() + 1, 1, b.data() + 2, bs, streamed + 64 + off, n,
                         true);
        CHECK(first_mismatch(streamed, plain, 400) == -1);
      }
      for (int64_t xs : {0, 1}) {
        std::fill(streamed, streamed + 400, 7.f);
        avx2::copy_f32(x.data() + 2, xs, streamed + 64 + off, n, true);
        streaming_store_fence();
        for (int64_t i = 0; i < 400; ++i) {
          const int64_t k = i - 64 - off;
          const float want = k >= 0 && k < n ? x[2 + (xs ? k : 0)] : 7.f;
          if (!same_bits(streamed[i], want)) {
            INFO("copy xs=" << xs << " at " << i);
            CHECK(false);
            break;
          }
        }
      }
    }
}

TEST_CASE("gather_tile_f32: column-block order equals the naive gather on ragged tiles") {
  if (!have_avx2()) return;
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{8, 8},
                            {32, 256},
                            {9, 17},
                            {31, 255},
                            {40, 3},
                            {7, 40},
                            {32, 100}}) {
    for (int64_t s_col : {rows, rows + 5, int64_t{1031}}) {
      const auto src = randn(static_cast<size_t>(s_col * cols + rows), 3);
      const int64_t ld = 260;
      std::vector<float> got(static_cast<size_t>(rows * ld), 7.f), want(got);
      avx2::gather_tile_f32(src.data(), 1, s_col, rows, cols, got.data(), ld);
      for (int64_t i = 0; i < rows; ++i)
        for (int64_t j = 0; j < cols; ++j) want[i * ld + j] = src[i + j * s_col];
      INFO(rows << "x" << cols << " s_col " << s_col);
      CHECK(first_mismatch(got.data(), want.data(), rows * ld) == -1);
    }
  }
}

TEST_CASE("unary on broadcast inputs: computed once, copied along the broadcast dims") {
  if (!have_avx2()) return;
  struct Case {
    std::vector<int64_t> sizes, xs;
  };
  // row (1, C) and column (R, 1) broadcasts, a scalar, a middle dim, an outer dim of a
  // transposed input, and odd sizes that leave vector tails in every copy run
  const Case cases[] = {
      {{37, 517}, {0, 1}},           {{300, 21}, {1, 0}},       {{13, 9}, {0, 0}},
      {{5, 7, 33}, {33, 0, 1}},      {{4, 40, 50}, {0, 1, 40}}, {{3, 1, 19}, {0, 0, 1}},
      {{2, 3, 11, 5}, {0, 5, 0, 1}},
  };
  for (const auto& c : cases) {
    const int nd = static_cast<int>(c.sizes.size());
    int64_t total = 1, extent = 1;
    for (int d = 0; d < nd; ++d) {
      total *= c.sizes[d];
      extent += (c.sizes[d] - 1) * c.xs[d];
    }
    auto x = randn(static_cast<size_t>(extent), 5, 2.5f);
    x[0] = kNaN;
    if (extent > 3) x[3] = -kInf;
    // padded output rows: the padding must stay untouched
    std::vector<int64_t> ys(nd);
    int64_t span = 1;
    for (int d = nd - 1; d >= 0; --d) {
      ys[d] = span;
      span *= c.sizes[d] + (d == nd - 1 ? 2 : 0);
    }
    for (UnaryOp op : {UnaryOp::Gelu, UnaryOp::Exp, UnaryOp::Sin, UnaryOp::AddScalar}) {
      std::vector<float> yr(span, 7.f), yv(span, 7.f);
      for (Isa isa : {Isa::Scalar, Isa::Avx2}) {
        IsaGuard g(isa);
        unary<float>(op, 0.5, 0, nd, c.sizes.data(), x.data(), c.xs.data(),
                     isa == Isa::Scalar ? yr.data() : yv.data(), ys.data());
      }
      std::string shape;
      for (auto s : c.sizes) shape += std::to_string(s) + " ";
      INFO("sizes " << shape << "op " << static_cast<int>(op));
      CHECK(first_mismatch(yv.data(), yr.data(), span, 2e-6, 1e-44) == -1);
    }
  }
}

TEST_CASE("outputs past the streaming threshold: contiguous, transposed and broadcast inputs") {
  if (!have_avx2()) return;
  // 2053 x 2053 floats = 16.9 MB >= kStreamingStoreMinBytes: every path below streams (unless
  // SMYRF_STREAMING_STORES=0). The output starts one float past a 32-byte boundary, so each
  // streamed run peels an unaligned head.
  const int64_t n = 2053, total = n * n;
  REQUIRE(total * 4 >= kStreamingStoreMinBytes);
  const auto a = randn(static_cast<size_t>(total), 11, 2.f),
             b = randn(static_cast<size_t>(total), 12);
  std::vector<float> yr_store(total + 16), yv_store(total + 16);
  float* yr = yr_store.data() + 1;
  float* yv = yv_store.data() + 1;
  const int64_t sizes[2] = {n, n}, contig[2] = {n, 1}, trans[2] = {1, n}, row[2] = {0, 1},
                col[2] = {1, 0};
  auto run_unary = [&](UnaryOp op, const int64_t* xs, double rel) {
    for (Isa isa : {Isa::Scalar, Isa::Avx2}) {
      IsaGuard g(isa);
      unary<float>(op, 0, 0, 2, sizes, a.data(), xs, isa == Isa::Scalar ? yr : yv, contig);
    }
    return first_mismatch(yv, yr, total, rel, 1e-44);
  };
  auto run_binary = [&](BinaryOp op, const int64_t* as, const int64_t* bs) {
    for (Isa isa : {Isa::Scalar, Isa::Avx2}) {
      IsaGuard g(isa);
      binary<float>(op, 2, sizes, a.data(), as, b.data(), bs, isa == Isa::Scalar ? yr : yv, contig);
    }
    return first_mismatch(yv, yr, total);  // exact ops: bit for bit
  };
  CHECK(run_unary(UnaryOp::Gelu, contig, 2e-6) == -1);
  CHECK(run_unary(UnaryOp::Gelu, trans, 2e-6) == -1);
  CHECK(run_unary(UnaryOp::Exp, row, 2.5e-7) == -1);
  CHECK(run_unary(UnaryOp::Exp, col, 2.5e-7) == -1);
  CHECK(run_binary(BinaryOp::Add, contig, contig) == -1);
  CHECK(run_binary(BinaryOp::Mul, trans, contig) == -1);
  CHECK(run_binary(BinaryOp::Sub, contig, trans) == -1);
  CHECK(run_binary(BinaryOp::Mul, trans, col) == -1);
  CHECK(run_binary(BinaryOp::Div, contig, col) == -1);
  CHECK(yv_store[0] == 0.f);          // nothing written before the output
  CHECK(yv_store[total + 1] == 0.f);  // nor after it
}

TEST_CASE("strided runs through the vector kernels: steps, flips, strided outputs, broadcasts") {
  if (!have_avx2()) return;
  // (rows, cols) views whose last dim has a non-unit stride that no other dim beats: gathered
  // in pieces of 512 (elementwise.cpp binary / unary_strided_run_f32). Cols 16 .. 1100 cross the
  // piece edge and leave vector tails; strides 2, 3 and -1 (a flipped view, read from its end);
  // outputs contiguous, with a step, or flipped; partners contiguous, strided or broadcast.
  const int64_t rows = 3;
  auto x = randn(static_cast<size_t>(rows * 1100 * 3 + 8), 21, 3.f);
  auto z = randn(static_cast<size_t>(rows * 1100 * 3 + 8), 22);
  x[7] = kNaN, x[100] = -kInf, x[513] = 1e-40f;
  for (int64_t cols : {16, 17, 511, 512, 513, 1100}) {
    for (int64_t s : {2, 3, -1}) {
      // a view of rows x cols with last-dim stride s inside x (row stride |s| cols + 5)
      const int64_t rs = (s < 0 ? -s : s) * cols + 5;
      const int64_t start = s < 0 ? cols - 1 : 0;  // a flipped view starts at its last column
      const int64_t sizes[2] = {rows, cols}, xs[2] = {rs, s};
      for (int64_t ys_last : {int64_t(1), int64_t(2), int64_t(-1)}) {
        const int64_t yrow = (ys_last < 0 ? 1 : ys_last) * cols + 3;
        const int64_t ystart = ys_last < 0 ? cols - 1 : 0;
        const int64_t ys[2] = {yrow, ys_last};
        const size_t span = static_cast<size_t>(rows * yrow + 4);
        CAPTURE(cols);
        CAPTURE(s);
        CAPTURE(ys_last);
        for (UnaryOp op : {UnaryOp::Exp, UnaryOp::Gelu, UnaryOp::Neg}) {
          std::vector<float> yr(span, 7.f), yv(span, 7.f);
          for (Isa isa : {Isa::Scalar, Isa::Avx2}) {
            IsaGuard g(isa);
            unary<float>(op, 0, 0, 2, sizes, x.data() + start, xs,
                         (isa == Isa::Scalar ? yr.data() : yv.data()) + ystart, ys);
          }
          INFO("op " << static_cast<int>(op));
          CHECK(first_mismatch(yv.data(), yr.data(), static_cast<int64_t>(span), 2e-6, 1e-44) ==
                -1);
        }
        // partners: contiguous rows, the same strided layout, a broadcast row, a scalar
        const int64_t zc[2] = {cols, 1}, zrow[2] = {0, 1}, zscalar[2] = {0, 0};
        for (const int64_t* zs : {zc, static_cast<const int64_t*>(xs), zrow, zscalar}) {
          for (BinaryOp op : {BinaryOp::Add, BinaryOp::Mul, BinaryOp::Div}) {
            std::vector<float> yr(span, 7.f), yv(span, 7.f);
            const float* zp = z.data() + (zs == xs ? start : 0);
            for (bool swap : {false, true}) {
              for (Isa isa : {Isa::Scalar, Isa::Avx2}) {
                IsaGuard g(isa);
                float* out = (isa == Isa::Scalar ? yr.data() : yv.data()) + ystart;
                if (swap)
                  binary<float>(op, 2, sizes, zp, zs, x.data() + start, xs, out, ys);
                else
                  binary<float>(op, 2, sizes, x.data() + start, xs, zp, zs, out, ys);
              }
              INFO("op " << static_cast<int>(op) << " swap " << swap);
              CHECK(first_mismatch(yv.data(), yr.data(), static_cast<int64_t>(span)) == -1);
            }
          }
        }
      }
    }
  }
}

namespace {
// binary<T> add / sub / mul over 2-D (rows, n) with each operand contiguous, a broadcast row
// (0, 1), a broadcast column (1, 0) or a scalar (0, 0), against the same arithmetic written out
template <typename T>
void check_plain_binary(std::vector<T> va, std::vector<T> vb) {
  const int64_t rows = 37, n = 101;
  const int64_t kinds[4][2] = {{n, 1}, {0, 1}, {1, 0}, {0, 0}};
  for (BinaryOp op : {BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul}) {
    for (const auto& ka : kinds) {
      for (const auto& kb : kinds) {
        const int64_t sizes[2] = {rows, n}, ys[2] = {n, 1}, as[2] = {ka[0], ka[1]},
                      bs[2] = {kb[0], kb[1]};
        std::vector<T> y(static_cast<size_t>(rows * n + 1), T(7)), want = y;
        binary<T>(op, 2, sizes, va.data(), as, vb.data(), bs, y.data(), ys);
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t c = 0; c < n; ++c) {
            const T u = va[static_cast<size_t>(r * as[0] + c * as[1])];
            const T v = vb[static_cast<size_t>(r * bs[0] + c * bs[1])];
            want[static_cast<size_t>(r * n + c)] = op == BinaryOp::Add   ? T(u + v)
                                                   : op == BinaryOp::Sub ? T(u - v)
                                                                         : T(u * v);
          }
        CAPTURE(static_cast<int>(op));
        CAPTURE(as[0]);
        CAPTURE(as[1]);
        CAPTURE(bs[0]);
        CAPTURE(bs[1]);
        CHECK(std::memcmp(y.data(), want.data(), y.size() * sizeof(T)) == 0);
      }
    }
  }
}
}  // namespace

TEST_CASE("int32 / int64 / float64 add, sub, mul: contiguous and broadcast runs") {
  // these types have no AVX2 kernels: the run loops (op chosen once a run) against the written-out
  // arithmetic, with operand sizes covering every layout (the largest, 37 x 101, read as needed)
  const size_t m = 37 * 101;
  std::vector<int32_t> ia(m), ib(m);
  std::vector<int64_t> la(m), lb(m);
  std::vector<double> da(m), db(m);
  std::mt19937 rng(5);
  for (size_t i = 0; i < m; ++i) {
    ia[i] = static_cast<int32_t>(rng() % 2001) - 1000;
    ib[i] = static_cast<int32_t>(rng() % 2001) - 1000;
    la[i] = static_cast<int64_t>(rng()) - (int64_t(1) << 31);
    lb[i] = static_cast<int64_t>(rng() % 100000) - 50000;
    da[i] = std::ldexp(static_cast<double>(rng()), -20) - 2048.0;
    db[i] = std::ldexp(static_cast<double>(rng()), -25);
  }
  da[3] = std::numeric_limits<double>::quiet_NaN();
  db[5] = std::numeric_limits<double>::infinity();
  check_plain_binary(ia, ib);
  check_plain_binary(la, lb);
  // NaN != NaN under memcmp only if the payloads differ; both sides compute the same operation
  check_plain_binary(da, db);
}

namespace {
// unary (the plain ops), compare (all six) and where over contiguous runs of T, against the
// formulas written out
template <typename T>
void check_plain_runs(const std::vector<T>& va, const std::vector<T>& vb) {
  const int64_t n = static_cast<int64_t>(va.size());
  const int64_t sizes[1] = {n}, one[1] = {1}, zero[1] = {0};
  struct U {
    UnaryOp op;
    double a, b;
  };
  for (const U& u : {U{UnaryOp::Neg, 0, 0}, U{UnaryOp::Abs, 0, 0}, U{UnaryOp::Sign, 0, 0},
                     U{UnaryOp::Relu, 0, 0}, U{UnaryOp::Clamp, -3, 5}, U{UnaryOp::MulScalar, 3, 0},
                     U{UnaryOp::AddScalar, -2, 0}, U{UnaryOp::Square, 0, 0}}) {
    std::vector<T> y(va.size()), want(va.size());
    unary<T>(u.op, u.a, u.b, 1, sizes, va.data(), one, y.data(), one);
    for (size_t i = 0; i < va.size(); ++i) {
      const T x = va[i];
      const double w = static_cast<double>(x);
      switch (u.op) {
        case UnaryOp::Neg:
          want[i] = static_cast<T>(-x);
          break;
        case UnaryOp::Abs:
          want[i] = w < 0 ? static_cast<T>(-x) : x;
          break;
        case UnaryOp::Sign:
          want[i] = static_cast<T>((w > 0) - (w < 0));
          break;
        case UnaryOp::Relu:
          want[i] = w > 0 ? x : T(0);
          break;
        case UnaryOp::Clamp:
          want[i] = w < u.a ? T(u.a) : (w > u.b ? T(u.b) : x);
          break;
        case UnaryOp::MulScalar:
          want[i] = static_cast<T>(x * u.a);
          break;
        case UnaryOp::AddScalar:
          want[i] = static_cast<T>(x + u.a);
          break;
        default:
          want[i] = static_cast<T>(x * x);
      }
    }
    CAPTURE(static_cast<int>(u.op));
    bool same = true;
    for (size_t i = 0; i < y.size(); ++i)
      same = same && (y[i] == want[i] || (y[i] != y[i] && want[i] != want[i]));
    CHECK(same);
  }
  for (CompareOp op :
       {CompareOp::Eq, CompareOp::Ne, CompareOp::Lt, CompareOp::Le, CompareOp::Gt, CompareOp::Ge}) {
    for (bool scalar_b : {false, true}) {
      std::vector<uint8_t> y(va.size() + 1, 9), want(va.size() + 1, 9);
      compare<T>(op, 1, sizes, va.data(), one, vb.data(), scalar_b ? zero : one,
                 reinterpret_cast<bool*>(y.data()), one);
      for (size_t i = 0; i < va.size(); ++i) {
        const T u = va[i], v = scalar_b ? vb[0] : vb[i];
        want[i] = op == CompareOp::Eq   ? u == v
                  : op == CompareOp::Ne ? u != v
                  : op == CompareOp::Lt ? u < v
                  : op == CompareOp::Le ? u <= v
                  : op == CompareOp::Gt ? u > v
                                        : u >= v;
      }
      CAPTURE(static_cast<int>(op));
      CAPTURE(scalar_b);
      CHECK(y == want);
    }
  }
  std::vector<uint8_t> c(va.size());
  for (size_t i = 0; i < c.size(); ++i) c[i] = (i * 7 + i / 5) % 3 == 0;
  std::vector<T> y(va.size() + 1, T(7)), want(va.size() + 1, T(7));
  where<T>(1, sizes, reinterpret_cast<const bool*>(c.data()), one, va.data(), one, vb.data(), one,
           y.data(), one);
  for (size_t i = 0; i < va.size(); ++i) want[i] = c[i] ? va[i] : vb[i];
  CHECK(std::memcmp(y.data(), want.data(), y.size() * sizeof(T)) == 0);
}
}  // namespace

TEST_CASE("int32 / int64 / float64 unary, compare and where runs") {
  const size_t m = 1003;
  std::vector<int32_t> ia(m), ib(m);
  std::vector<int64_t> la(m), lb(m);
  std::vector<double> da(m), db(m);
  std::mt19937 rng(6);
  for (size_t i = 0; i < m; ++i) {
    ia[i] = static_cast<int32_t>(rng() % 21) - 10;
    ib[i] = static_cast<int32_t>(rng() % 21) - 10;
    la[i] = static_cast<int64_t>(rng() % 21) - 10;
    lb[i] = static_cast<int64_t>(rng() % 21) - 10;
    da[i] = (static_cast<double>(rng() % 4001) - 2000) / 200;
    db[i] = (static_cast<double>(rng() % 4001) - 2000) / 200;
  }
  da[4] = std::numeric_limits<double>::quiet_NaN();
  db[9] = -0.0;
  da[9] = 0.0;
  check_plain_runs(ia, ib);
  check_plain_runs(la, lb);
  check_plain_runs(da, db);
}

namespace {
// y = x through convert<S, D> over (sizes, xs, ys), against a naive multi-index copy
template <typename S, typename D>
void check_permuted_copy(const std::vector<int64_t>& sizes, const std::vector<int64_t>& xs,
                         const std::vector<int64_t>& ys, int64_t x_len, int64_t y_len) {
  std::vector<S> x(static_cast<size_t>(x_len));
  for (int64_t i = 0; i < x_len; ++i) x[i] = static_cast<S>((i * 7919) % 1000 - 300);
  const D canary = static_cast<D>(-12345);
  std::vector<D> y(static_cast<size_t>(y_len), canary), want(static_cast<size_t>(y_len), canary);
  const int nd = static_cast<int>(sizes.size());
  int64_t total = 1;
  for (int64_t v : sizes) total *= v;
  for (int64_t i = 0; i < total; ++i) {
    int64_t rem = i, xo = 0, yo = 0;
    for (int d = nd - 1; d >= 0; --d) {
      const int64_t k = rem % sizes[d];
      rem /= sizes[d];
      xo += k * xs[d];
      yo += k * ys[d];
    }
    want[yo] = static_cast<D>(x[xo]);
  }
  convert<S, D>(nd, sizes.data(), x.data(), xs.data(), y.data(), ys.data());
  int64_t bad = -1;
  for (int64_t i = 0; i < y_len && bad < 0; ++i)
    if (!(y[i] == want[i])) bad = i;
  CHECK(bad == -1);
}
}  // namespace

TEST_CASE("permuted copies with contiguous runs loop in the source's order, same result") {
  // (B, N, H, D) read as (B, H, N, D): attention's head split, and its inverse; a 5-d
  // permutation; a broadcast source dim; runs just at and below the source-order threshold
  const int64_t B = 3, N = 37, H = 5, D = 16;
  const int64_t len = B * N * H * D;
  for (int64_t d : {D, int64_t(15), int64_t(40)}) {
    CAPTURE(d);
    const int64_t L = B * N * H * d;
    // source (B, N, H, d) contiguous, destination (B, H, N, d) contiguous, iterated as (B, H, N)
    check_permuted_copy<float, float>({B, H, N, d}, {N * H * d, d, H * d, 1},
                                      {H * N * d, N * d, d, 1}, L, L);
    check_permuted_copy<float, float>({B, N, H, d}, {H * N * d, d, N * d, 1},
                                      {N * H * d, H * d, d, 1}, L, L);
    check_permuted_copy<double, float>({B, H, N, d}, {N * H * d, d, H * d, 1},
                                       {H * N * d, N * d, d, 1}, L, L);
    check_permuted_copy<int64_t, int64_t>({B, H, N, d}, {N * H * d, d, H * d, 1},
                                          {H * N * d, N * d, d, 1}, L, L);
  }
  // 5-d: source (2, 3, 4, 5, 16) permuted (3, 1, 4, 0, 2) in the destination's order
  check_permuted_copy<float, float>({5, 3, 4, 2, 16}, {16, 4 * 5 * 16, 5 * 16, 3 * 4 * 5 * 16, 1},
                                    {3 * 4 * 2 * 16, 4 * 2 * 16, 2 * 16, 16, 1}, 2 * 3 * 4 * 5 * 16,
                                    2 * 3 * 4 * 5 * 16);
  // a source broadcast along H (stride 0) and a flipped N (negative stride, from the end)
  std::vector<int64_t> sizes{B, H, N, D}, ys{H * N * D, N * D, D, 1};
  check_permuted_copy<float, float>(sizes, {N * D, 0, D, 1}, ys, B * N * D, len);
  {
    std::vector<float> x(static_cast<size_t>(len));
    for (int64_t i = 0; i < len; ++i) x[i] = static_cast<float>(i);
    std::vector<float> y(static_cast<size_t>(len)), want(static_cast<size_t>(len));
    const int64_t xs[4] = {N * H * D, D, -H * D, 1};
    const float* x0 = x.data() + (N - 1) * H * D;  // row N - 1 first
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t n = 0; n < N; ++n)
          for (int64_t e = 0; e < D; ++e)
            want[((b * H + h) * N + n) * D + e] = x0[b * xs[0] + h * xs[1] + n * xs[2] + e];
    convert<float, float>(4, sizes.data(), x0, xs, y.data(), ys.data());
    CHECK(y == want);
  }
}

TEST_CASE("masked_scale: AVX2 equals the scalar loop bit for bit; dropped NaN and inf give NaN") {
  if (!have_avx2()) return;
  // past the streaming threshold too (aligned and not), a short run, and in place
  for (int64_t n : {int64_t(1), int64_t(37), int64_t(1000), kStreamingStoreMinBytes / 4 + 13}) {
    for (size_t skew : {size_t(0), size_t(1)}) {
      CAPTURE(n);
      CAPTURE(skew);
      std::vector<float> xs(static_cast<size_t>(n) + skew + 1);
      float* x = xs.data() + skew;
      for (int64_t i = 0; i < n; ++i) x[i] = static_cast<float>((i * 7919) % 1001) * 0.37f - 100.f;
      std::vector<char> kb(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) kb[i] = ((i * 2654435761u) >> 7) % 10 < 7;
      const bool* keep = reinterpret_cast<const bool*>(kb.data());
      if (n > 8) {
        x[3] = kNaN, kb[3] = 0;  // dropped NaN: NaN (x * 0)
        x[4] = kInf, kb[4] = 0;  // dropped inf: NaN
        x[5] = kInf, kb[5] = 1;  // kept inf: inf
      }
      std::vector<float> yv(static_cast<size_t>(n) + skew + 1, -5.f), ys(yv);
      {
        IsaGuard g(Isa::Scalar);
        masked_scale<float>(x, keep, 1.25f, ys.data() + skew, n);
      }
      masked_scale<float>(x, keep, 1.25f, yv.data() + skew, n);
      CHECK(first_mismatch(yv.data(), ys.data(), n + static_cast<int64_t>(skew) + 1) == -1);
      for (int64_t i = 0; i < n; ++i) {
        const float want = kb[i] ? x[i] * 1.25f : x[i] * 0.f;
        if (!same_bits(yv[skew + i], want)) {
          FAIL("element " << i << ": " << yv[skew + i] << " vs " << want);
          break;
        }
      }
      if (n > 8) {
        CHECK(std::isnan(yv[skew + 3]));
        CHECK(std::isnan(yv[skew + 4]));
        CHECK(yv[skew + 5] == kInf);
      }
      // in place
      std::vector<float> in(xs);
      masked_scale<float>(in.data() + skew, keep, 1.25f, in.data() + skew, n);
      CHECK(first_mismatch(in.data() + skew, yv.data() + skew, n) == -1);
    }
  }
}
