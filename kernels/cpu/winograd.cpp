// Winograd F(4x4, 3x3) convolution: the tiling driver, the scalar twins of the tile transforms
// and the filter transforms (see winograd.h).
#include "kernels/cpu/winograd.h"

#include <omp.h>
#include <xmmintrin.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/winograd_transforms.h"

namespace smyrf::kernels::cpu {
namespace {

constexpr int64_t kAlpha2 = 36;  // points of the 6x6 transform domain
// Tiles per block: 64 keeps a block's GEMMs (K x 64 x C) on sgemm's small path (the 64 KiB
// transformed filter read in place, no packing per call) and the two per-thread buffers
// (36 x 128 x 64 floats each at 128 channels) at 1.2 MB, about L2: with 128 tiles (2.4 MB each)
// the transforms' writes and the GEMMs' reads of V and M went through L3. A/B 128 -> 64
// (2026-11-30): `bench gan-step --shapes cpu` 0.968x (4 rounds), `bench conv2d` 128 -> 128
// channels fwd+bwd at 16^2 / 32^2 0.97 / 0.96-0.98x, 64 x 32^2 x 32 channels 0.97x, small
// shapes even (their blocks were already at most 64 tiles); 32 tiles measured even with 64.
constexpr int64_t kTileBlock = 64;

// Grow-only scratch of the calling thread (its OpenMP team indexes into it): fresh multi-MB
// vectors per call cost page faults and zero-filling (~5% of a 4x4-image convolution).
enum ScratchUse { kScratchV, kScratchM, kScratchDU, kScratchCount };
float* scratch(ScratchUse use, size_t n) {
  thread_local std::vector<float> bufs[kScratchCount];
  std::vector<float>& b = bufs[use];
  if (b.size() < n) b.resize(n);
  return b.data();
}

int64_t round_up(int64_t a, int64_t b) { return (a + b - 1) / b * b; }
int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

using GatherFn = void (*)(const winograd::PatchLanes&, int64_t, int64_t, float*);
using ScatterFn = void (*)(const float*, const winograd::TileLanes&, int64_t);
using GatherTilesFn = void (*)(const winograd::ConstTileLanes&, int64_t, float*);
using InputFn = void (*)(const float*, float*, int64_t);
using OutputFn = void (*)(const float*, int64_t, float, float*);
using GradOutputFn = void (*)(const float*, float*, int64_t);

struct Transforms {
  GatherFn gather;
  InputFn input;
  OutputFn output;
  GradOutputFn grad_output;
  ScatterFn scatter;
  GatherTilesFn gather_tiles;
};
Transforms transforms() {
  if (active_isa() == Isa::Avx2)
    return {winograd::gather_patches_avx2,   winograd::input_transform_avx2,
            winograd::output_transform_avx2, winograd::grad_output_transform_avx2,
            winograd::scatter_tiles_avx2,    winograd::gather_tiles_avx2};
  return {winograd::gather_patches_scalar,   winograd::input_transform_scalar,
          winograd::output_transform_scalar, winograd::grad_output_transform_scalar,
          winograd::scatter_tiles_scalar,    winograd::gather_tiles_scalar};
}

// One stride-1 3x3 convolution of N images (Cin, Hin, Win) padded by (ph, pw) into (Cout, P, Q),
// cut into 4x4 output tiles numbered image by image, row by row, in blocks of Tb tiles.
struct Plan {
  int64_t N, Cin, Hin, Win, Cout, ph, pw, P, Q, th, tw, tpi, T, Tb, blocks;
  int nt;
  Plan(int64_t n, int64_t cin, int64_t hin, int64_t win, int64_t cout, int64_t ph_, int64_t pw_)
      : N(n), Cin(cin), Hin(hin), Win(win), Cout(cout), ph(ph_), pw(pw_) {
    P = Hin + 2 * ph - 2, Q = Win + 2 * pw - 2;
    th = ceil_div(P, 4), tw = ceil_div(Q, 4), tpi = th * tw, T = N * tpi;
    const int max_nt = omp_in_parallel() ? 1 : omp_get_max_threads();
    // no more than one block per thread below kTileBlock tiles each (small images, batch 32:
    // both threads get work), whole 8-tile lane groups
    Tb = std::min(kTileBlock, round_up(ceil_div(T, max_nt), 8));
    blocks = ceil_div(T, Tb);
    nt = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(max_nt, blocks)));
  }
  size_t v_size() const { return static_cast<size_t>(kAlpha2 * Cin * Tb); }
  size_t m_size() const { return static_cast<size_t>(kAlpha2 * Cout * Tb); }
};

// Where tile t sits: image n (-1 past the last tile), output origin (oh, ow).
struct TileRef {
  int64_t n, oh, ow;
};
void tile_refs(const Plan& pl, int64_t t0, TileRef* refs) {
  for (int64_t i = 0; i < pl.Tb; ++i) {
    const int64_t t = t0 + i;
    if (t >= pl.T) {
      refs[i] = {-1, 0, 0};
      continue;
    }
    const int64_t n = t / pl.tpi, r = t % pl.tpi;
    refs[i] = {n, (r / pl.tw) * 4, (r % pl.tw) * 4};
  }
}

// Per group of 8 tiles of the block `refs`, each lane's output-tile origin in channel 0 of the
// (N, channels, P, Q) array y (null past the last tile) and its rows / columns inside (P, Q):
// the output's scatter and the filter gradient's dY gather.
template <typename P>
void output_tile_lanes(const Plan& pl, const TileRef* refs, P y, int64_t channels,
                       winograd::TileLanesOf<P>* lanes) {
  for (int64_t g = 0; g < pl.Tb; g += 8)
    for (int l = 0; l < 8; ++l) {
      const TileRef& r = refs[g + l];
      winograd::TileLanesOf<P>& t = lanes[g / 8];
      t.origin[l] = r.n < 0 ? nullptr : y + (r.n * channels * pl.P + r.oh) * pl.Q + r.ow;
      t.np[l] = static_cast<int>(std::min<int64_t>(4, pl.P - r.oh));
      t.nq[l] = static_cast<int>(std::min<int64_t>(4, pl.Q - r.ow));
    }
}
// The lanes moved by `offset` elements (to another channel plane); empty lanes stay empty.
template <typename P>
winograd::TileLanesOf<P> in_channel(winograd::TileLanesOf<P> t, int64_t offset) {
  for (int l = 0; l < 8; ++l)
    if (t.origin[l]) t.origin[l] += offset;
  return t;
}

// Prefetches the patch rows of lanes 0 and 7 (the ends of a row of tiles) `ahead` floats past
// their planes (a later channel): the gather's loads otherwise wait on each plane's first lines.
inline void prefetch_patches(const winograd::PatchLanes& p, int64_t H, int64_t W, int64_t ahead) {
  for (int l : {0, 7}) {
    if (!p.plane[l]) continue;
    for (int a = 0; a < 6; ++a) {
      const int64_t h = p.h0[l] + a;
      if (h < 0 || h >= H) continue;
      const int64_t w = std::clamp<int64_t>(p.w0[l], 0, W - 1);
      _mm_prefetch(reinterpret_cast<const char*>(p.plane[l] + ahead + h * W + w), _MM_HINT_T0);
    }
  }
}

// V (36, Cin, Tb) of the block whose tiles are `refs`, from x (N, Cin, Hin, Win): per channel,
// per group of 8 tiles, the patches gathered (tf.gather) and transformed (tf.input).
void transform_inputs(const Plan& pl, const Transforms& tf, const float* x, const TileRef* refs,
                      float* v) {
  alignas(32) float d[kAlpha2 * 8];
  const int64_t plane = pl.Hin * pl.Win;
  constexpr int64_t kGroups = kTileBlock / 8;
  winograd::PatchLanes lanes[kGroups];
  const float* image[kGroups][8];  // channel 0 of each lane's image, null for an empty lane
  for (int64_t g = 0; g < pl.Tb; g += 8)
    for (int l = 0; l < 8; ++l) {
      const TileRef& r = refs[g + l];
      image[g / 8][l] = r.n < 0 ? nullptr : x + r.n * pl.Cin * plane;
      lanes[g / 8].h0[l] = r.oh - pl.ph;
      lanes[g / 8].w0[l] = r.ow - pl.pw;
    }
  for (int64_t c = 0; c < pl.Cin; ++c)
    for (int64_t g = 0; g < pl.Tb; g += 8) {
      winograd::PatchLanes& pg = lanes[g / 8];
      for (int l = 0; l < 8; ++l)
        pg.plane[l] = image[g / 8][l] ? image[g / 8][l] + c * plane : nullptr;
      if (c + 2 < pl.Cin) prefetch_patches(pg, pl.Hin, pl.Win, 2 * plane);
      tf.gather(pg, pl.Hin, pl.Win, d);
      tf.input(d, v + c * pl.Tb + g, pl.Cin * pl.Tb);
    }
}

// y (N, Cout, P, Q) = conv(x) under `pl` with transformed filter u (36, Cout, Cin), plus bias.
void run_forward(const Plan& pl, const float* x, const float* u, const float* bias, float* y) {
  const Transforms tf = transforms();
  float* vs = scratch(kScratchV, pl.nt * pl.v_size());
  float* ms = scratch(kScratchM, pl.nt * pl.m_size());
  std::vector<TileRef> refss(static_cast<size_t>(pl.nt * pl.Tb));
  const int64_t PQ = pl.P * pl.Q;
#pragma omp parallel num_threads(pl.nt) if (pl.nt > 1)
  {
    const int tid = omp_get_thread_num();
    float* v = vs + tid * pl.v_size();
    float* m = ms + tid * pl.m_size();
    TileRef* refs = refss.data() + tid * pl.Tb;
    alignas(32) float out[16 * 8];
#pragma omp for schedule(static)
    for (int64_t blk = 0; blk < pl.blocks; ++blk) {
      tile_refs(pl, blk * pl.Tb, refs);
      transform_inputs(pl, tf, x, refs, v);
      for (int64_t xi = 0; xi < kAlpha2; ++xi)
        sgemm(false, false, pl.Cout, pl.Tb, pl.Cin, 1.0f, u + xi * pl.Cout * pl.Cin, pl.Cin,
              v + xi * pl.Cin * pl.Tb, pl.Tb, 0.0f, m + xi * pl.Cout * pl.Tb, pl.Tb);
      winograd::TileLanes lanes[kTileBlock / 8];
      output_tile_lanes(pl, refs, y, pl.Cout, lanes);
      for (int64_t k = 0; k < pl.Cout; ++k) {
        const float b = bias ? bias[k] : 0.0f;
        for (int64_t g = 0; g < pl.Tb; g += 8) {
          tf.output(m + k * pl.Tb + g, pl.Cout * pl.Tb, b, out);
          tf.scatter(out, in_channel(lanes[g / 8], k * PQ), pl.Q);
        }
      }
    }
  }
}

}  // namespace

namespace winograd {
void scatter_tiles_scalar(const float* y, const TileLanes& t, int64_t ldy) {
  for (int l = 0; l < 8; ++l) {
    if (!t.origin[l]) continue;
    for (int p = 0; p < t.np[l]; ++p)
      for (int q = 0; q < t.nq[l]; ++q) t.origin[l][p * ldy + q] = y[(p * 4 + q) * 8 + l];
  }
}

void gather_tiles_scalar(const ConstTileLanes& t, int64_t ldy, float* y) {
  for (int l = 0; l < 8; ++l)
    for (int p = 0; p < 4; ++p)
      for (int q = 0; q < 4; ++q)
        y[(p * 4 + q) * 8 + l] =
            t.origin[l] && p < t.np[l] && q < t.nq[l] ? t.origin[l][p * ldy + q] : 0.0f;
}

void gather_patches_scalar(const PatchLanes& p, int64_t H, int64_t W, float* d) {
  for (int l = 0; l < 8; ++l)
    for (int a = 0; a < 6; ++a) {
      float* drow = d + a * 6 * 8 + l;
      const int64_t h = p.h0[l] + a;
      for (int b = 0; b < 6; ++b) {
        const int64_t w = p.w0[l] + b;
        drow[b * 8] =
            (p.plane[l] && h >= 0 && h < H && w >= 0 && w < W) ? p.plane[l][h * W + w] : 0.0f;
      }
    }
}
}  // namespace winograd

bool conv2d_winograd_supports(const Conv2dGeometry& g) {
  return g.R == 3 && g.S == 3 && g.stride_h == 1 && g.stride_w == 1 && g.dil_h == 1 &&
         g.dil_w == 1 && g.groups == 1 && g.pad_h >= 0 && g.pad_h <= 2 && g.pad_w >= 0 &&
         g.pad_w <= 2 && g.P > 0 && g.Q > 0 && g.P == g.H + 2 * g.pad_h - 2 &&
         g.Q == g.W + 2 * g.pad_w - 2;
}

bool conv2d_winograd_applies(const Conv2dGeometry& g, ConvPass pass) {
  // SMYRF_CONV_WINOGRAD=0 keeps these convolutions on the direct or im2col paths
  static const bool enabled = [] {
    const char* e = std::getenv("SMYRF_CONV_WINOGRAD");
    return !(e && std::string(e) == "0");
  }();
  if (!enabled || !conv2d_winograd_supports(g)) return false;
  // Measured (one thread, batch 32, CPU ms against the direct kernels at 32 channels and im2col
  // at 128): 128 -> 128 at 4/8/32 px 1.4/4.0/51 ms vs 3.3/10.7/146 (forward; the backward passes
  // alike); 32 -> 32 at 8/16/32 px forward 0.60/2.1/6.3 vs 0.92/2.8/9.4, filter gradient
  // 0.79/3.0/11.9 vs 1.45/3.5/10.2, so the 32-channel filter gradient of large images stays
  // direct. Thin layers (3 -> 128, 128 -> 3) stay direct: their GEMMs would be 3 wide.
  if (g.C < 32 || g.K < 32) return false;
  if (pass == ConvPass::BackwardFilter && (g.C < 64 || g.K < 64)) return g.P * g.Q <= 16 * 16;
  return true;
}

void conv2d_winograd_forward(const Conv2dGeometry& g, const float* x, const float* w,
                             const float* bias, float* y) {
  std::vector<float> u(static_cast<size_t>(kAlpha2 * g.K * g.C));
  winograd::filter_transform(w, g.K, g.C, u.data());
  run_forward(Plan(g.N, g.C, g.H, g.W, g.K, g.pad_h, g.pad_w), x, u.data(), bias, y);
}

void conv2d_winograd_backward_data(const Conv2dGeometry& g, const float* dy, const float* w,
                                   float* dx) {
  // dx = conv(dy padded by 2 - pad, w'), w'[c][k][r][s] = w[k][c][2-r][2-s]
  std::vector<float> wt(static_cast<size_t>(g.C * g.K * 9));
  for (int64_t k = 0; k < g.K; ++k)
    for (int64_t c = 0; c < g.C; ++c)
      for (int64_t rs = 0; rs < 9; ++rs) wt[(c * g.K + k) * 9 + rs] = w[(k * g.C + c) * 9 + 8 - rs];
  std::vector<float> u(static_cast<size_t>(kAlpha2 * g.K * g.C));
  winograd::filter_transform(wt.data(), g.C, g.K, u.data());
  run_forward(Plan(g.N, g.K, g.P, g.Q, g.C, 2 - g.pad_h, 2 - g.pad_w), dy, u.data(), nullptr, dx);
}

void conv2d_winograd_backward_filter(const Conv2dGeometry& g, const float* x, const float* dy,
                                     float* dw, float* dbias) {
  const Plan pl(g.N, g.C, g.H, g.W, g.K, g.pad_h, g.pad_w);
  const Transforms tf = transforms();
  const int64_t PQ = pl.P * pl.Q, KC = g.K * g.C;
  const size_t du_size = static_cast<size_t>(kAlpha2 * KC);
  float* vs = scratch(kScratchV, pl.nt * pl.v_size());
  float* ms = scratch(kScratchM, pl.nt * pl.m_size());
  float* dus = scratch(kScratchDU, pl.nt * du_size);
  std::vector<TileRef> refss(static_cast<size_t>(pl.nt * pl.Tb));
#pragma omp parallel num_threads(pl.nt) if (pl.nt > 1)
  {
    const int tid = omp_get_thread_num();
    float* v = vs + tid * pl.v_size();
    float* dm = ms + tid * pl.m_size();
    float* du = dus + tid * du_size;
    std::fill(du, du + du_size, 0.0f);
    TileRef* refs = refss.data() + tid * pl.Tb;
    alignas(32) float dyt[16 * 8];
#pragma omp for schedule(static)
    for (int64_t blk = 0; blk < pl.blocks; ++blk) {
      tile_refs(pl, blk * pl.Tb, refs);
      transform_inputs(pl, tf, x, refs, v);
      winograd::ConstTileLanes lanes[kTileBlock / 8];
      output_tile_lanes(pl, refs, dy, g.K, lanes);
      for (int64_t k = 0; k < g.K; ++k)
        for (int64_t gr = 0; gr < pl.Tb; gr += 8) {
          tf.gather_tiles(in_channel(lanes[gr / 8], k * PQ), pl.Q, dyt);
          tf.grad_output(dyt, dm + k * pl.Tb + gr, g.K * pl.Tb);
        }
      for (int64_t xi = 0; xi < kAlpha2; ++xi)
        sgemm(false, true, g.K, g.C, pl.Tb, 1.0f, dm + xi * g.K * pl.Tb, pl.Tb,
              v + xi * g.C * pl.Tb, pl.Tb, 1.0f, du + xi * KC, g.C);
    }
  }
  for (int t = 1; t < pl.nt; ++t) {  // fixed order: deterministic
    const float* src = dus + t * du_size;
    for (size_t i = 0; i < du_size; ++i) dus[i] += src[i];
  }
  winograd::filter_transform_adjoint(dus, g.K, g.C, dw);
  if (dbias) conv2d_backward_bias(g, dy, dbias);
}

// ------------------------------------------------------- filter transforms and scalar twins

namespace winograd {
namespace {
// u = G g for 3 values (G of F(4x4, 3x3)):
//   G = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]
// written out because the compiler may not drop the products with G's zeros.
// Products with the reciprocals, not divisions: a double division costs ~15 cycles and the
// transform of 128 x 128 filters was half the time of a 4x4-image convolution with them.
constexpr double k4 = 1.0 / 4, k6 = 1.0 / 6, k12 = 1.0 / 12, k24 = 1.0 / 24;
inline void g3(const double g[3], double u[6]) {
  const double e = g[0] + g[2], e24 = g[0] * k24 + g[2] * k6;
  u[0] = g[0] * k4;
  u[1] = -(e + g[1]) * k6;
  u[2] = -(e - g[1]) * k6;
  u[3] = e24 + g[1] * k12;
  u[4] = e24 - g[1] * k12;
  u[5] = g[2];
}
// dg = G^T du (6 -> 3), the adjoint of g3.
inline void gt6(const double du[6], double dg[3]) {
  const double s12 = (du[1] + du[2]) * k6, d12 = (du[2] - du[1]) * k6;
  const double s34 = du[3] + du[4], d34 = du[3] - du[4];
  dg[0] = du[0] * k4 - s12 + s34 * k24;
  dg[1] = d12 + d34 * k12;
  dg[2] = -s12 + s34 * k6 + du[5];
}
// Threads for the K*C filter transforms (inside a parallel region: one).
int filter_threads(int64_t KC) {
  if (omp_in_parallel() || KC < 256) return 1;
  return omp_get_max_threads();
}
}  // namespace

// Filters are transformed in chunks of kFilterChunk through a local (36, chunk) buffer: writing
// (or reading) the 36 planes of u directly, K*C floats apart (64 KiB at 128 x 128, the same
// cache set for every plane), missed the cache on every access and took as long as the whole
// 4x4-image convolution.
constexpr int64_t kFilterChunk = 64;

void filter_transform(const float* w, int64_t K, int64_t C, float* u) {
  const int64_t KC = K * C, chunks = (KC + kFilterChunk - 1) / kFilterChunk;
  const int nt = filter_threads(KC);
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
  for (int64_t ch = 0; ch < chunks; ++ch) {
    const int64_t kc0 = ch * kFilterChunk, cnt = std::min(kFilterChunk, KC - kc0);
    float buf[36][kFilterChunk];
    for (int64_t i0 = 0; i0 < cnt; ++i0) {
      const float* g = w + (kc0 + i0) * 9;
      double t[3][6];  // (G g)^T: t[s][i] = (G g)[i][s]
      for (int s = 0; s < 3; ++s) {
        const double col[3] = {g[s], g[3 + s], g[6 + s]};
        g3(col, t[s]);
      }
      for (int i = 0; i < 6; ++i) {  // row i of (G g) G^T = G applied to (G g)[i][:]
        const double row[3] = {t[0][i], t[1][i], t[2][i]};
        double o[6];
        g3(row, o);
        for (int j = 0; j < 6; ++j) buf[i * 6 + j][i0] = static_cast<float>(o[j]);
      }
    }
    for (int xi = 0; xi < 36; ++xi) std::copy(buf[xi], buf[xi] + cnt, u + xi * KC + kc0);
  }
}

void filter_transform_adjoint(const float* du, int64_t K, int64_t C, float* dw) {
  const int64_t KC = K * C, chunks = (KC + kFilterChunk - 1) / kFilterChunk;
  const int nt = filter_threads(KC);
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
  for (int64_t ch = 0; ch < chunks; ++ch) {
    const int64_t kc0 = ch * kFilterChunk, cnt = std::min(kFilterChunk, KC - kc0);
    float buf[36][kFilterChunk];
    for (int xi = 0; xi < 36; ++xi)
      std::copy(du + xi * KC + kc0, du + xi * KC + kc0 + cnt, buf[xi]);
    for (int64_t i0 = 0; i0 < cnt; ++i0) {
      double t[6][3];  // du G: t[i][s] = (G^T applied to row i of du)[s]
      for (int i = 0; i < 6; ++i) {
        double row[6];
        for (int j = 0; j < 6; ++j) row[j] = buf[i * 6 + j][i0];
        gt6(row, t[i]);
      }
      for (int s = 0; s < 3; ++s) {  // G^T (du G), column s
        const double col[6] = {t[0][s], t[1][s], t[2][s], t[3][s], t[4][s], t[5][s]};
        double o[3];
        gt6(col, o);
        for (int r = 0; r < 3; ++r) dw[(kc0 + i0) * 9 + r * 3 + s] = static_cast<float>(o[r]);
      }
    }
  }
}

void input_transform_scalar(const float* d, float* v, int64_t ldv) {
  for (int l = 0; l < 8; ++l) {
    float in[36], out[36];
    for (int i = 0; i < 36; ++i) in[i] = d[i * 8 + l];
    input_tile(in, out);
    for (int i = 0; i < 36; ++i) v[i * ldv + l] = out[i];
  }
}

void output_transform_scalar(const float* m, int64_t ldm, float bias, float* y) {
  for (int l = 0; l < 8; ++l) {
    float in[36], out[16];
    for (int i = 0; i < 36; ++i) in[i] = m[i * ldm + l];
    output_tile(in, out);
    for (int i = 0; i < 16; ++i) y[i * 8 + l] = out[i] + bias;
  }
}

void grad_output_transform_scalar(const float* dy, float* dm, int64_t ldm) {
  for (int l = 0; l < 8; ++l) {
    float in[16], out[36];
    for (int i = 0; i < 16; ++i) in[i] = dy[i * 8 + l];
    grad_output_tile(in, out);
    for (int i = 0; i < 36; ++i) dm[i * ldm + l] = out[i];
  }
}

}  // namespace winograd
}  // namespace smyrf::kernels::cpu
