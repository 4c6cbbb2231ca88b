// Direct stride-1 convolution over zero-padded images (see conv_direct.h).
#include "kernels/cpu/conv_direct.h"

#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "kernels/cpu/cpu_features.h"

namespace smyrf::kernels::cpu {
namespace {

// Extra floats after every padded image and output row: the kernels run whole register tiles
// (up to 64 floats) past the last pixel instead of testing bounds.
constexpr int64_t kSlack = 64;

int64_t round_up(int64_t a, int64_t b) { return (a + b - 1) / b * b; }

int threads_for(int64_t items) {
  if (omp_in_parallel()) return 1;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(omp_get_max_threads(), items)));
}

void taps_forward(const float* in, const int64_t* off, int64_t T, const float* wt, int64_t K,
                  float* out, int64_t ldo, int64_t L) {
  if (active_isa() == Isa::Avx2)
    direct::taps_forward_avx2(in, off, T, wt, K, out, ldo, L);
  else
    direct::taps_forward_scalar(in, off, T, wt, K, out, ldo, L);
}

void taps_filter(const float* a, int64_t lda, int64_t K, const float* in, const int64_t* off,
                 int64_t T, int64_t L8, float* acc) {
  if (active_isa() == Isa::Avx2)
    direct::taps_filter_avx2(a, lda, K, in, off, T, L8, acc);
  else
    direct::taps_filter_scalar(a, lda, K, in, off, T, L8, acc);
}

// One stride-1 convolution seen as a 1-D one over padded images: `Cin` channels of Hin x Win,
// padded by (ph, pw), a kernel R x S with dilation (dh, dw).
struct Flat {
  int64_t Cin, Hin, Win, ph, pw, R, S, dh, dw;
  int64_t Hp, Wp, plane, P, Q, L, T;
  Flat(int64_t cin, int64_t hin, int64_t win, int64_t ph_, int64_t pw_, int64_t r, int64_t s,
       int64_t dh_, int64_t dw_)
      : Cin(cin), Hin(hin), Win(win), ph(ph_), pw(pw_), R(r), S(s), dh(dh_), dw(dw_) {
    Hp = Hin + 2 * ph, Wp = Win + 2 * pw, plane = Hp * Wp;
    P = Hp - dh * (R - 1), Q = Wp - dw * (S - 1);
    L = (P - 1) * Wp + Q;  // one past the last output pixel
    T = Cin * R * S;
  }
  size_t in_size() const { return static_cast<size_t>(Cin * plane + kSlack); }
  // Tap t = (c, r, s), in the weight's (c, r, s) order.
  std::vector<int64_t> offsets() const {
    std::vector<int64_t> off(static_cast<size_t>(T));
    for (int64_t c = 0; c < Cin; ++c)
      for (int64_t r = 0; r < R; ++r)
        for (int64_t s = 0; s < S; ++s) off[(c * R + r) * S + s] = c * plane + r * dh * Wp + s * dw;
    return off;
  }
  // The interior of `dst` (zeroed padding, written once by the caller) from src (Cin, Hin, Win).
  void fill(const float* src, float* dst) const {
    for (int64_t c = 0; c < Cin; ++c)
      for (int64_t h = 0; h < Hin; ++h) {
        const float* s = src + (c * Hin + h) * Win;
        std::copy(s, s + Win, dst + c * plane + (h + ph) * Wp + pw);
      }
  }
};

// The kernel's weight layout: output channels in blocks of 4, each block (T, 4), so the 4 weights
// a tap broadcasts are adjacent and a block's weights are read in order; zero past K.
std::vector<float> blocked_weights(int64_t T, int64_t K) {
  return std::vector<float>(static_cast<size_t>(round_up(K, 4) * T), 0.0f);
}
int64_t block_index(int64_t T, int64_t k, int64_t t) { return ((k / 4) * T + t) * 4 + k % 4; }

// y (N, K, P, Q) = conv of x (N, Cin, Hin, Win) under `f` with weights wt (blocked_weights layout),
// plus bias.
void run_forward(const Flat& f, int64_t N, const float* x, const float* wt, int64_t K,
                 const float* bias, float* y) {
  const std::vector<int64_t> off = f.offsets();
  const int64_t ldo = round_up(f.L + kSlack, 8);
  const int nt = threads_for(N);
  std::vector<float> ins(static_cast<size_t>(nt) * f.in_size(), 0.0f);
  const int64_t K4 = round_up(K, 4);  // the kernel runs whole 4-channel blocks
  std::vector<float> outs(static_cast<size_t>(nt * K4 * ldo));
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    const int tid = omp_get_thread_num();
    float* in = ins.data() + tid * f.in_size();
    float* out = outs.data() + tid * K4 * ldo;
#pragma omp for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
      f.fill(x + n * f.Cin * f.Hin * f.Win, in);
      taps_forward(in, off.data(), f.T, wt, K, out, ldo, f.L);
      float* yn = y + n * K * f.P * f.Q;
      for (int64_t k = 0; k < K; ++k) {
        const float b = bias ? bias[k] : 0.0f;
        for (int64_t p = 0; p < f.P; ++p) {
          const float* src = out + k * ldo + p * f.Wp;
          float* dst = yn + (k * f.P + p) * f.Q;
          for (int64_t q = 0; q < f.Q; ++q) dst[q] = src[q] + b;
        }
      }
    }
  }
}

}  // namespace

bool conv2d_direct_supports(const Conv2dGeometry& g, ConvPass pass) {
  if (g.stride_h != 1 || g.stride_w != 1 || g.groups != 1 || g.R * g.S <= 1) return false;
  if (g.P <= 0 || g.Q <= 0 || g.pad_h < 0 || g.pad_w < 0) return false;
  if (pass == ConvPass::BackwardData)
    return g.pad_h <= g.dil_h * (g.R - 1) && g.pad_w <= g.dil_w * (g.S - 1);
  return true;
}

bool conv2d_direct_applies(const Conv2dGeometry& g, ConvPass pass) {
  // SMYRF_CONV_DIRECT=0 keeps every convolution on im2col + GEMM (for comparisons)
  static const bool enabled = [] {
    const char* e = std::getenv("SMYRF_CONV_DIRECT");
    return !(e && std::string(e) == "0");
  }();
  if (!enabled) return false;
  // Measured (one thread, batch 32, 3x3): direct wins wherever one side has few channels, where
  // im2col's column matrix costs more than the thin GEMM it feeds (32 -> 32 channels at 32x32:
  // 2.5x; 128 -> 3 or 128 -> 1, BigGAN's image layers: 5-10x; 3 or 1 -> 128: equal to 1.15x);
  // at 128 -> 128 the GEMM's larger register tiles win (im2col 1.1-1.3x faster).
  return conv2d_direct_supports(g, pass) && (g.K <= 64 || g.C <= 64);
}

void conv2d_direct_forward(const Conv2dGeometry& g, const float* x, const float* w,
                           const float* bias, float* y) {
  const Flat f(g.C, g.H, g.W, g.pad_h, g.pad_w, g.R, g.S, g.dil_h, g.dil_w);
  std::vector<float> wt = blocked_weights(f.T, g.K);
  for (int64_t k = 0; k < g.K; ++k)
    for (int64_t t = 0; t < f.T; ++t) wt[block_index(f.T, k, t)] = w[k * f.T + t];
  run_forward(f, g.N, x, wt.data(), g.K, bias, y);
}

void conv2d_direct_backward_data(const Conv2dGeometry& g, const float* dy, const float* w,
                                 float* dx) {
  // dx = conv(dy padded by dil*(R-1) - pad, w'), w'[c][k][r][s] = w[k][c][R-1-r][S-1-s]
  const Flat f(g.K, g.P, g.Q, g.dil_h * (g.R - 1) - g.pad_h, g.dil_w * (g.S - 1) - g.pad_w, g.R,
               g.S, g.dil_h, g.dil_w);
  const int64_t RS = g.R * g.S;
  std::vector<float> wt = blocked_weights(f.T, g.C);
  for (int64_t k = 0; k < g.K; ++k)
    for (int64_t c = 0; c < g.C; ++c)
      for (int64_t r = 0; r < g.R; ++r)
        for (int64_t s = 0; s < g.S; ++s)
          wt[block_index(f.T, c, (k * g.R + r) * g.S + s)] =
              w[(k * g.C + c) * RS + (g.R - 1 - r) * g.S + (g.S - 1 - s)];
  run_forward(f, g.N, dy, wt.data(), g.C, nullptr, dx);
}

void conv2d_direct_backward_filter(const Conv2dGeometry& g, const float* x, const float* dy,
                                   float* dw, float* dbias) {
  const Flat f(g.C, g.H, g.W, g.pad_h, g.pad_w, g.R, g.S, g.dil_h, g.dil_w);
  const std::vector<int64_t> off = f.offsets();
  const int64_t L8 = round_up(f.L, 8), KT = g.K * f.T;
  const int nt = threads_for(g.N);
  std::vector<float> ins(static_cast<size_t>(nt) * f.in_size(), 0.0f);
  // dy of one image at the padded width: the columns past Q and the tail past L stay zero
  std::vector<float> as(static_cast<size_t>(nt * g.K * L8), 0.0f);
  std::vector<float> partial(static_cast<size_t>((nt - 1) * KT));
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    const int tid = omp_get_thread_num();
    float* in = ins.data() + tid * f.in_size();
    float* a = as.data() + tid * g.K * L8;
    float* acc = tid == 0 ? dw : partial.data() + (tid - 1) * KT;
    std::fill(acc, acc + KT, 0.0f);
#pragma omp for schedule(static)
    for (int64_t n = 0; n < g.N; ++n) {
      f.fill(x + n * g.C * g.H * g.W, in);
      for (int64_t k = 0; k < g.K; ++k)
        for (int64_t p = 0; p < g.P; ++p) {
          const float* src = dy + ((n * g.K + k) * g.P + p) * g.Q;
          std::copy(src, src + g.Q, a + k * L8 + p * f.Wp);
        }
      taps_filter(a, L8, g.K, in, off.data(), f.T, L8, acc);
    }
  }
  for (int t = 1; t < nt; ++t) {
    const float* src = partial.data() + (t - 1) * KT;
    for (int64_t i = 0; i < KT; ++i) dw[i] += src[i];
  }
  if (dbias) conv2d_backward_bias(g, dy, dbias);
}

// ---------------------------------------------------------------- scalar twins of the kernels

namespace direct {

void taps_forward_scalar(const float* in, const int64_t* off, int64_t T, const float* wt, int64_t K,
                         float* out, int64_t ldo, int64_t L) {
  for (int64_t k = 0; k < K; ++k) {
    float* o = out + k * ldo;
    std::fill(o, o + L, 0.0f);
    for (int64_t t = 0; t < T; ++t) {
      const float wv = wt[((k / 4) * T + t) * 4 + k % 4];
      const float* src = in + off[t];
      for (int64_t j = 0; j < L; ++j) o[j] += wv * src[j];
    }
  }
}

void taps_filter_scalar(const float* a, int64_t lda, int64_t K, const float* in, const int64_t* off,
                        int64_t T, int64_t L8, float* acc) {
  for (int64_t k = 0; k < K; ++k)
    for (int64_t t = 0; t < T; ++t) {
      const float* ak = a + k * lda;
      const float* src = in + off[t];
      float s = 0;
      for (int64_t j = 0; j < L8; ++j) s += ak[j] * src[j];
      acc[k * T + t] += s;
    }
}

}  // namespace direct
}  // namespace smyrf::kernels::cpu
