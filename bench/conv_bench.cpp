// `smyrf bench conv2d`: the convolutions of SMYRF-BigGAN's CPU configurations (docs/biggan.md),
// batch 32, forward and forward+backward (data, filter and bias gradients), median ms and GFLOP/s.
// bench/baselines/torch_conv.py times the same shapes in PyTorch with 2 threads.
//
// --shapes filters by the case name as printed, e.g. "n32c32h32w32k32r3s1p1" (comma-separated).
#include <cstdint>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "bench/registry.h"
#include "kernels/cpu/conv.h"
#include "kernels/cpu/cpu_features.h"

namespace smyrf::bench {
namespace {

struct ConvCase {
  int64_t n, c, h, k, r, stride, pad;  // square images and kernels
};

std::string case_name(const ConvCase& c) {
  std::ostringstream os;
  os << "n" << c.n << "c" << c.c << "h" << c.h << "w" << c.h << "k" << c.k << "r" << c.r << "s"
     << c.stride << "p" << c.pad;
  return os.str();
}

bool selected(const Options& opt, const std::string& name) {
  if (opt.shapes.empty()) return true;
  std::stringstream ss(opt.shapes);
  std::string tok;
  while (std::getline(ss, tok, ','))
    if (tok == name) return true;
  return false;
}

std::vector<float> random_buffer(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-0.5f, 0.5f);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = u(rng);
  return v;
}

void run_case(const Options& opt, const ConvCase& cc) {
  using namespace kernels::cpu;
  Conv2dGeometry g;
  g.N = cc.n, g.C = cc.c, g.H = cc.h, g.W = cc.h, g.K = cc.k, g.R = cc.r, g.S = cc.r;
  g.stride_h = g.stride_w = cc.stride, g.pad_h = g.pad_w = cc.pad;
  g.P = conv2d_out_size(g.H, g.R, g.stride_h, g.pad_h, 1);
  g.Q = conv2d_out_size(g.W, g.S, g.stride_w, g.pad_w, 1);
  const int64_t xs = g.N * g.C * g.H * g.W, ws = g.K * g.C * g.R * g.S, ys = g.N * g.K * g.P * g.Q;
  std::vector<float> x = random_buffer(xs, 1), w = random_buffer(ws, 2), b = random_buffer(g.K, 3);
  std::vector<float> dy = random_buffer(ys, 4), y(static_cast<size_t>(ys)),
                     dx(static_cast<size_t>(xs)), dw(static_cast<size_t>(ws)),
                     db(static_cast<size_t>(g.K));
  const double flop = 2.0 * g.N * g.K * g.P * g.Q * g.C * g.R * g.S;
  const int threads = effective_threads(opt);
  auto fwd = [&] { conv2d_forward<float>(g, x.data(), w.data(), b.data(), y.data()); };
  auto fwd_bwd = [&] {
    fwd();
    conv2d_backward_data<float>(g, dy.data(), w.data(), dx.data());
    conv2d_backward_filter<float>(g, x.data(), dy.data(), dw.data(), db.data());
  };
  for (int pass = 0; pass < 2; ++pass) {
    const Timing t =
        measure(pass == 0 ? std::function<void()>(fwd) : std::function<void()>(fwd_bwd), opt.warmup,
                opt.repeats);
    const double gflops = (pass == 0 ? flop : 3 * flop) / (t.median_ms * 1e6);
    Record("conv2d")
        .set("shape", case_name(cc))
        .set("pass", pass == 0 ? "fwd" : "fwd+bwd")
        .set("isa", isa_name(active_isa()))
        .set("threads", threads)
        .timing(t)
        .set("gflops", gflops)
        .print(opt);
  }
}

}  // namespace

// CPU smoke config (ch 8: widths 32) and one-GPU widths (ch 32: 128), batch 32: G's 3x3 convs
// after each 2x upsample, 1x1 skips, the image-to-features and features-to-image convs; D's
// batch-64 convs of the CPU configuration.
SMYRF_BENCH_WORKLOAD("conv2d",
                     "conv2d fwd and fwd+bwd GFLOP/s on BigGAN CPU-config shapes (batch 32)") {
  const ConvCase cases[] = {
      {32, 32, 8, 32, 3, 1, 1},
      {32, 32, 16, 32, 3, 1, 1},
      {32, 32, 32, 32, 3, 1, 1},
      {32, 32, 16, 32, 1, 1, 0},
      {32, 3, 32, 32, 3, 1, 1},
      {32, 32, 32, 3, 3, 1, 1},
      {32, 128, 4, 128, 3, 1, 1},
      {32, 128, 8, 128, 3, 1, 1},
      {32, 128, 16, 128, 3, 1, 1},
      {32, 128, 32, 128, 3, 1, 1},
      {32, 128, 16, 128, 1, 1, 0},
      // the CPU configuration's D runs on cat(fake, real), batch 64, and starts from 1 channel;
      // its G ends in a 32 -> 1 conv; the ch-32 G ends in 128 -> 3
      {64, 1, 32, 32, 3, 1, 1},
      {64, 32, 32, 32, 3, 1, 1},
      {64, 32, 16, 32, 3, 1, 1},
      {32, 32, 32, 1, 3, 1, 1},
      {32, 128, 32, 3, 3, 1, 1},
  };
  for (const ConvCase& c : cases)
    if (selected(opt, case_name(c))) run_case(opt, c);
}

}  // namespace smyrf::bench
