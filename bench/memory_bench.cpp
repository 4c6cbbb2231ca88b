// Memory-bound CPU kernels against the machine's own bandwidth: every workload first runs the
// STREAM triad (a = b + s c) in the same process, and each kernel's GB/s is reported as a
// percent of a triad measured right after it (triad_beside). Kernels are called directly
// (kernels/cpu/*.h), on preallocated, pre-faulted buffers.
//   gbps = bytes the kernel must move (each input read once, each output written once) / median
//   time. Write-allocate traffic is not counted, as in STREAM.
#include <omp.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "autograd/grad_mode.h"
#include "autograd/ops_conv.h"
#include "bench/cuda_bench.h"
#include "bench/registry.h"
#include "core/ops.h"
#include "core/random.h"
#include "core/storage.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/norm.h"
#include "kernels/cpu/reduce.h"
#include "kernels/cpu/softmax.h"

namespace smyrf::bench {
namespace {

using namespace smyrf::kernels::cpu;

constexpr int64_t kN = 1 << 24;  // 16M floats = 64 MiB per operand, far beyond the caches

// A float buffer from cpu_alloc (what a tensor of that size gets).
class Buf {
 public:
  explicit Buf(int64_t n) : p_(static_cast<float*>(cpu_alloc(sizeof(float) * n))) {}
  ~Buf() { cpu_free(p_); }
  Buf(Buf&& o) noexcept : p_(o.p_) { o.p_ = nullptr; }
  Buf(const Buf&) = delete;
  Buf& operator=(const Buf&) = delete;
  float* data() const { return p_; }
  float& operator[](int64_t i) const { return p_[i]; }

 private:
  float* p_;
};

// i.i.d. N(0, 1) values, like the PyTorch baseline's torch.randn. (Smooth data, as this used to
// make, flattered the kernels that branch on lane values: gelu's all-|x| < sqrt 2 shortcut took
// nearly every vector, 2.7x faster than on randn data.) Blocks of 64K get their own generator so
// the fill runs in parallel and first touch spreads pages like the kernels' static schedules.
Buf buffer(int64_t n, uint32_t seed) {
  Buf v(n);
  constexpr int64_t kBlock = 1 << 16;
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < (n + kBlock - 1) / kBlock; ++b) {
    std::mt19937 gen(seed * 1000003u + static_cast<uint32_t>(b));
    std::normal_distribution<float> d(0.f, 1.f);
    const int64_t e = (b + 1) * kBlock < n ? (b + 1) * kBlock : n;
    for (int64_t i = b * kBlock; i < e; ++i) v[i] = d(gen);
  }
  return v;
}

void triad_kernel(float* a, const float* b, const float* c, float s, int64_t n) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) a[i] = b[i] + s * c[i];
}

// The triad on buffers kept for the process (made on first use), timed as `measure` does.
Timing measure_triad(const Options& opt, int repeats, double min_seconds) {
  static Buf a = buffer(kN, 1), b = buffer(kN, 2), c = buffer(kN, 3);
  return measure([&] { triad_kernel(a.data(), b.data(), c.data(), 3.f, kN); }, opt.warmup, repeats,
                 min_seconds);
}

double triad_gbps(const Timing& t) { return 3.0 * 4 * kN / (t.median_ms * 1e6); }

// The triad measured again right after a kernel (0.1 s): the host's bandwidth drifts within
// seconds (the first triad of a process read 46-69 GB/s across one compare run, PyTorch's
// 47-85), so each kernel's pct_triad is taken against the triad of the same moment, not the
// process's first one.
double triad_beside(const Options& opt) { return triad_gbps(measure_triad(opt, 0, 0.1)); }

void setup_threads(const Options& opt) {
  if (opt.threads > 0) omp_set_num_threads(opt.threads);
}

void report(const Options& opt, const char* workload, const std::string& op,
            const std::string& shape, const std::string& layout, const Timing& t, double bytes) {
  const double gbps = bytes / (t.median_ms * 1e6);
  const double triad = triad_beside(opt);
  Record(workload)
      .set("op", op)
      .set("shape", shape)
      .set("layout", layout)
      .set("threads", effective_threads(opt))
      .set("isa", isa_name(active_isa()))
      .timing(t)
      .set("gbps", gbps)
      .set("pct_triad", 100.0 * gbps / triad)
      .set("triad_gbps", triad)
      .print(opt);
}

std::string shape_str(int64_t r, int64_t c) { return std::to_string(r) + "x" + std::to_string(c); }

// (rows, n) shapes of 16M elements unless --shapes "r1xn1,r2xn2" says otherwise
std::vector<std::pair<int64_t, int64_t>> row_shapes(const Options& opt,
                                                    std::vector<std::pair<int64_t, int64_t>> def) {
  if (opt.shapes.empty()) return def;
  std::vector<std::pair<int64_t, int64_t>> out;
  for (const std::string& s : list_entries(opt.shapes)) {
    const size_t x = s.find('x');
    if (x != std::string::npos)
      out.emplace_back(std::stoll(s.substr(0, x)), std::stoll(s.substr(x + 1)));
  }
  return out;
}

// Whether --shapes (a comma-separated list of op names, or op:layout; empty: everything) names
// this case of the layouts workload.
bool case_selected(const Options& opt, const std::string& op, const std::string& layout) {
  if (opt.shapes.empty()) return true;
  for (const std::string& s : list_entries(opt.shapes))
    if (s == op || s == op + ":" + layout) return true;
  return false;
}

void report_triad(const Options& opt) {
  const Timing t = measure_triad(opt, opt.repeats, 0.5);
  const double g = triad_gbps(t);
  Record("triad")
      .set("op", "triad")
      .set("shape", std::to_string(kN))
      .set("layout", "contiguous")
      .set("threads", effective_threads(opt))
      .set("isa", "auto")
      .timing(t)
      .set("gbps", g)
      .set("pct_triad", 100.0)
      .print(opt);
}

}  // namespace

SMYRF_BENCH_WORKLOAD("triad", "STREAM triad a = b + s c on 16M floats: the bandwidth reference") {
  setup_threads(opt);
  report_triad(opt);
}

SMYRF_BENCH_WORKLOAD("elementwise",
                     "add, mul, exp, gelu on 4096x4096 floats: contiguous, transposed, broadcast") {
  if (opt.device == "cuda") {  // GPU kernels against a device-to-device copy
    run_cuda_elementwise(opt);
    return;
  }
  setup_threads(opt);
  report_triad(opt);
  const int64_t R = 4096, C = kN / R;
  Buf a = buffer(kN, 11), b = buffer(kN, 12), y = buffer(kN, 13);
  Buf col = buffer(R, 14);
  const int64_t sizes[2] = {R, C};
  const int64_t contig[2] = {C, 1}, trans[2] = {1, R}, bcast_col[2] = {1, 0}, bcast_row[2] = {0, 1};
  const std::string shape = shape_str(R, C);
  for (const char* name : {"add", "mul"}) {
    const BinaryOp op = name[0] == 'a' ? BinaryOp::Add : BinaryOp::Mul;
    struct L {
      const char* layout;
      const int64_t* as;
      const int64_t* bs;
      const float* bp;
      double bytes;
    } layouts[] = {
        {"contiguous", contig, contig, b.data(), 3.0 * 4 * kN},
        {"transposed", trans, contig, b.data(), 3.0 * 4 * kN},  // a is a (C, R) buffer viewed as .T
        {"broadcast", contig, bcast_col, col.data(), 2.0 * 4 * kN + 4.0 * R},  // b is (R, 1)
    };
    for (const auto& l : layouts) {
      Timing t = measure(
          [&] { binary<float>(op, 2, sizes, a.data(), l.as, l.bp, l.bs, y.data(), contig); },
          opt.warmup, opt.repeats);
      report(opt, "elementwise", name, shape, l.layout, t, l.bytes);
    }
  }
  for (const char* name : {"exp", "gelu"}) {
    const UnaryOp op = name[0] == 'e' ? UnaryOp::Exp : UnaryOp::Gelu;
    struct L {
      const char* layout;
      const int64_t* xs;
      double bytes;
    } layouts[] = {
        {"contiguous", contig, 2.0 * 4 * kN},
        {"transposed", trans, 2.0 * 4 * kN},
        {"broadcast", bcast_row, 1.0 * 4 * kN + 4.0 * C},  // x is (1, C) expanded to (R, C)
    };
    for (const auto& l : layouts) {
      Timing t =
          measure([&] { unary<float>(op, 0, 0, 2, sizes, a.data(), l.xs, y.data(), contig); },
                  opt.warmup, opt.repeats);
      report(opt, "elementwise", name, shape, l.layout, t, l.bytes);
    }
  }
}

SMYRF_BENCH_WORKLOAD("softmax",
                     "softmax / log_softmax rows x n (16M floats), forward and backward") {
  setup_threads(opt);
  report_triad(opt);
  for (auto [rows, n] :
       row_shapes(opt, {{1048576, 16}, {16384, 1024}, {4096, 4096}, {1024, 16384}, {64, 262144}})) {
    const int64_t N = rows * n;
    Buf x = buffer(N, 21), y = buffer(N, 22), dy = buffer(N, 23), dx = buffer(N, 24);
    const std::string shape = shape_str(rows, n);
    Timing t = measure([&] { softmax_rows<float>(x.data(), y.data(), rows, n, false); }, opt.warmup,
                       opt.repeats);
    report(opt, "softmax", "softmax_fwd", shape, "contiguous", t, 2.0 * 4 * N);
    t = measure(
        [&] { softmax_rows_backward<float>(y.data(), dy.data(), dx.data(), rows, n, false); },
        opt.warmup, opt.repeats);
    report(opt, "softmax", "softmax_bwd", shape, "contiguous", t, 3.0 * 4 * N);
    t = measure([&] { softmax_rows<float>(x.data(), y.data(), rows, n, true); }, opt.warmup,
                opt.repeats);
    report(opt, "softmax", "log_softmax_fwd", shape, "contiguous", t, 2.0 * 4 * N);
  }
}

SMYRF_BENCH_WORKLOAD("layernorm",
                     "layer norm rows x n (16M floats) with affine, forward and backward") {
  setup_threads(opt);
  report_triad(opt);
  for (auto [rows, n] :
       row_shapes(opt, {{1048576, 16}, {16384, 1024}, {4096, 4096}, {1024, 16384}})) {
    const int64_t N = rows * n;
    Buf x = buffer(N, 31), y = buffer(N, 32), dy = buffer(N, 33), dx = buffer(N, 34);
    Buf w = buffer(n, 35), b = buffer(n, 36);
    std::vector<float> dw(n), db(n), mean(rows), rstd(rows);
    const std::string shape = shape_str(rows, n);
    Timing t = measure(
        [&] {
          layernorm_rows<float>(x.data(), w.data(), b.data(), y.data(), mean.data(), rstd.data(),
                                rows, n, 1e-5);
        },
        opt.warmup, opt.repeats);
    report(opt, "layernorm", "layernorm_fwd", shape, "contiguous", t,
           2.0 * 4 * N + 8.0 * rows + 8.0 * n);  // + mean, rstd a row; w, b
    t = measure(
        [&] {
          layernorm_rows_backward<float>(dy.data(), x.data(), mean.data(), rstd.data(), w.data(),
                                         dx.data(), dw.data(), db.data(), rows, n);
        },
        opt.warmup, opt.repeats);
    report(opt, "layernorm", "layernorm_bwd", shape, "contiguous", t,
           3.0 * 4 * N + 8.0 * rows + 12.0 * n);  // + mean, rstd; w, dw, db
  }
}

SMYRF_BENCH_WORKLOAD("cross-entropy",
                     "cross-entropy rows x classes (16M logits), forward and backward") {
  setup_threads(opt);
  report_triad(opt);
  for (auto [rows, C] :
       row_shapes(opt, {{1048576, 16}, {16384, 1024}, {2048, 8192}, {512, 32768}})) {
    const int64_t N = rows * C;
    Buf x = buffer(N, 41), dx = buffer(N, 42);
    std::vector<float> loss(rows), lse(rows), g(rows, 1.f / rows);
    std::vector<int64_t> target(rows);
    for (int64_t r = 0; r < rows; ++r) target[r] = (r * 7919) % C;
    const std::string shape = shape_str(rows, C);
    Timing t = measure(
        [&] {
          cross_entropy_rows<float>(x.data(), target.data(), loss.data(), lse.data(), rows, C, -100,
                                    0.0);
        },
        opt.warmup, opt.repeats);
    // the bytes a row moves besides its logits count too: its int64 target, loss and lse out (a
    // fifth of the traffic at 16 classes)
    report(opt, "cross-entropy", "ce_fwd", shape, "contiguous", t, 4.0 * N + 16.0 * rows);
    t = measure(
        [&] {
          cross_entropy_rows_backward<float>(x.data(), target.data(), lse.data(), g.data(),
                                             dx.data(), rows, C, -100, 0.0);
        },
        opt.warmup, opt.repeats);
    report(opt, "cross-entropy", "ce_bwd", shape, "contiguous", t,
           2.0 * 4 * N + 16.0 * rows);  // + target, lse, g
  }
}

SMYRF_BENCH_WORKLOAD("reduce", "sum / max over 16M floats: all, rows, columns, transposed rows") {
  setup_threads(opt);
  report_triad(opt);
  const int64_t R = 4096, C = kN / R;
  Buf x = buffer(kN, 51);
  std::vector<float> y(static_cast<size_t>(R > C ? R : C));
  const std::string shape = shape_str(R, C);
  struct Case {
    const char* layout;
    int kept_nd;
    int64_t ks[1], kst[1], rsz[1], rst[1];
  };
  // x is (R, C) row-major; "transposed" reduces the last dim of its (C, R) transpose view, which
  // walks memory with stride C
  const Case cases[] = {
      {"all", 0, {1}, {0}, {kN}, {1}},
      {"rows", 1, {R}, {C}, {C}, {1}},
      {"columns", 1, {C}, {1}, {R}, {C}},
      {"transposed", 1, {C}, {1}, {R}, {C}},
  };
  for (const char* name : {"sum", "max"}) {
    const ReduceOp op = name[0] == 's' ? ReduceOp::Sum : ReduceOp::Max;
    for (const auto& c : cases) {
      Timing t = measure(
          [&] { reduce<float>(op, c.kept_nd, c.ks, c.kst, 1, c.rsz, c.rst, x.data(), y.data()); },
          opt.warmup, opt.repeats);
      report(opt, "reduce", name, shape, c.layout, t, 4.0 * kN);
    }
  }
}

// Layouts and ops the workloads above do not name, through the tensor ops (smyrf::raw, outputs
// allocated per call, as a user's code gets them): permuted and strided operands, broadcasts
// along a middle dim, reductions over middle / outer dims, softmax along a dim other than the
// last, indexing and joining. bench/baselines/torch_memory.py runs the same cases through
// PyTorch's allocating ops.
SMYRF_BENCH_WORKLOAD("layouts",
                     "tensor ops on layouts the other memory workloads do not name (permuted, "
                     "strided, middle-dim broadcasts and reductions, softmax over dim 0, "
                     "index_select, cat, column var / argmax, few very long rows), outputs "
                     "allocated per call; --shapes op[:layout],... picks cases") {
  setup_threads(opt);
  report_triad(opt);
  using namespace smyrf::raw;
  const double F = 4.0;
  const Tensor a3 = randn({64, 512, 512}), b3 = randn({64, 512, 512}), m3 = randn({64, 1, 512});
  const Tensor wide = randn({4096, 8192}), a2 = randn({4096, 4096}), b2 = randn({4096, 4096});
  const Tensor r1 = randn({4096});
  const Tensor half1 = randn({4096, 2048}), half2 = randn({4096, 2048});
  const Tensor table = randn({65536, 256});
  const Tensor idx = randint(0, 65536, {65536});
  const Tensor cond = compare_scalar(CompareKind::Gt, randn({4096, 4096}), 0.0);
  const double N = 16777216.0;
  auto run = [&](const char* op, const char* shape, const char* layout, double bytes, auto fn) {
    if (!case_selected(opt, op, layout)) return;
    report(opt, "layouts", op, shape, layout, measure(fn, opt.warmup, opt.repeats), bytes);
  };
  const Tensor b3t = permute(b3, {0, 2, 1});
  const Tensor step2 = slice(wide, 1, 0, 8192, 2);
  run("add", "64x512x512", "permute021", 3 * F * N, [&] { binary(BinaryKind::Add, a3, b3t); });
  run("add", "4096x4096", "step2", 3 * F * N, [&] { binary(BinaryKind::Add, step2, b2); });
  run("add", "64x512x512", "bcast-mid", 2 * F * N, [&] { binary(BinaryKind::Add, a3, m3); });
  run("mul", "4096x4096", "bcast-row", 2 * F * N, [&] { binary(BinaryKind::Mul, a2, r1); });
  run("exp", "4096x4096", "step2", 2 * F * N, [&] { unary(UnaryKind::Exp, step2); });
  run("copy", "64x512x512", "permute021", 2 * F * N, [&] { contiguous(b3t); });
  run("copy", "64x512x512", "permute201", 2 * F * N, [&] { contiguous(permute(a3, {2, 0, 1})); });
  run("sum", "64x512x512", "dim1", F * N, [&] { reduce(ReduceKind::Sum, a3, {1}, false); });
  run("sum", "64x512x512", "dims02", F * N, [&] { reduce(ReduceKind::Sum, a3, {0, 2}, false); });
  run("mean", "4096x4096", "dim1", F * N, [&] { reduce(ReduceKind::Mean, a2, {1}, false); });
  run("max", "4096x4096", "dim0", F * N, [&] { reduce(ReduceKind::Max, a2, {0}, false); });
  run("var", "4096x4096", "dim1", F * N, [&] { var(a2, {1}, 1, false); });
  run("logsumexp", "4096x4096", "dim1", F * N, [&] { logsumexp(a2, {1}, false); });
  run("argmax", "4096x4096", "dim1", F * N, [&] { argreduce(true, a2, 1, false); });
  run("softmax", "4096x4096", "dim0", 2 * F * N, [&] { softmax(a2, 0, false); });
  // the same softmax along the rows, allocated the same way: the reference dim 0 is held to
  run("softmax", "4096x4096", "dim1", 2 * F * N, [&] { softmax(a2, 1, false); });
  run("softmax", "64x512x512", "dim1", 2 * F * N, [&] { softmax(a3, 1, false); });
  run("where", "4096x4096", "contiguous", (3 * F + 1) * N, [&] { where(cond, a2, b2); });
  run("index_select", "65536x256", "dim0", 2 * F * N + 8.0 * 65536,
      [&] { index_select(table, 0, idx); });
  run("cat", "4096x4096", "dim1", 2 * F * N, [&] { cat({half1, half2}, 1); });
  // reductions down the columns, and few very long rows (split between the threads)
  const Tensor flat = reshape(a2, {1, 16777216}), pair = reshape(a2, {2, 8388608});
  run("var", "4096x4096", "dim0", F * N, [&] { var(a2, {0}, 1, false); });
  run("argmax", "4096x4096", "dim0", F * N, [&] { argreduce(true, a2, 0, false); });
  run("mean", "16x1048576", "dim0", F * N, [&] {
    reduce(ReduceKind::Mean, reshape(a2, {16, 1048576}), {0}, false);
  });
  run("softmax", "2x8388608", "dim0", 2 * F * N, [&] { softmax(pair, 0, false); });
  run("softmax", "1x16777216", "dim1", 2 * F * N, [&] { softmax(flat, 1, false); });
  run("logsumexp", "1x16777216", "dim1", F * N, [&] { logsumexp(flat, {1}, false); });
  run("var", "1x16777216", "dim1", F * N, [&] { var(flat, {1}, 1, false); });
  const Tensor gidx = randint(0, 4096, {4096, 4096});
  run("gather", "4096x4096", "dim1", 2 * F * N + 8.0 * N, [&] { gather(a2, 1, gidx); });
  // session 13: short rows with a broadcast column, reductions over permuted views, selections,
  // float64 / integer element loops, expm1
  const Tensor n4 = reshape(a2, {4194304, 4}), c4 = randn({4194304, 1});
  const Tensor cond4 = compare_scalar(CompareKind::Gt, c4, 0.0);
  run("add", "4194304x4", "bcast-col", 2 * F * N + F * N / 4,
      [&] { binary(BinaryKind::Add, n4, c4); });
  run("where", "4194304x4", "cond-col", 2 * F * N + N / 4, [&] {
    where(cond4, n4, b2.reshape({4194304, 4}));
  });
  run("sum", "64x512x512", "all-permute201", F * N, [&] {
    reduce(ReduceKind::Sum, permute(a3, {2, 0, 1}), {}, false);
  });
  run("topk1", "4194304x4", "dim1", F * N + 12.0 * N / 4, [&] { topk(n4, 1, 1, true); });
  // session 15: a mixture-of-experts router's top 2 of 8, and short rows sorted whole
  const Tensor n8 = reshape(a2, {2097152, 8});
  run("topk2", "2097152x8", "dim1", F * N + 12.0 * N / 4, [&] { topk(n8, 2, 1, true); });
  run("sort", "4194304x4", "dim1", F * N + 12.0 * N, [&] { sort(n4, 1, false); });
  const Tensor sel = randint(0, 4096, {2048});
  run("index_select", "4096x4096", "dim1", F * N + 8.0 * 2048, [&] { index_select(a2, 1, sel); });
  run("expm1", "4096x4096", "contiguous", 2 * F * N, [&] { unary(UnaryKind::Expm1, a2); });
  const Tensor d2 = to_dtype(half1, DType::Float64),
               i2 = to_dtype(randint(0, 1000, {4096, 2048}), DType::Int64);
  const double H = N / 2;  // 4096 x 2048 elements of 8 bytes: the same bytes as 16M floats
  run("abs-f64", "4096x2048", "contiguous", 2 * 8 * H, [&] { unary(UnaryKind::Abs, d2); });
  run("sum-f64", "4096x2048", "dim1", 8 * H, [&] { reduce(ReduceKind::Sum, d2, {1}, false); });
  run("sum-f64", "4096x2048", "dim0", 8 * H, [&] { reduce(ReduceKind::Sum, d2, {0}, false); });
  run("eq-i64", "4096x2048", "contiguous", 2 * 8 * H + H,
      [&] { compare(CompareKind::Eq, i2, i2); });
  run("max-i64", "4096x2048", "dim1", 8 * H, [&] { reduce(ReduceKind::Max, i2, {1}, false); });
  // session 16: attention's head split, a dropout mask drawn and applied, a 2 x 2 max pool
  const Tensor h4 = randn({64, 128, 12, 64}), px = randn({32, 128, 32, 32});
  const double H4 = 64.0 * 128 * 12 * 64;
  run("copy", "64x128x12x64", "permute0213", 2 * F * H4, [&] {
    contiguous(permute(h4, {0, 2, 1, 3}));
  });
  run("dropout", "4096x4096", "p0.1", 2 * F * N + N,
      [&] { masked_scale(a2, bernoulli(a2.shape(), 0.9), 1.0 / 0.9); });
  run("max_pool2d", "32x128x32x32", "2x2", F * (N / 4 + N / 16), [&] {
    NoGradGuard no_grad;
    max_pool2d(px, 2);
  });
  // session 22: a bias broadcast over rows whose width is no multiple of a cache line (each row
  // one run of the element loop, its ends sharing lines with the neighbouring rows)
  const Tensor o33 = randn({508400, 33}), v33 = randn({33});
  const Tensor o100 = randn({167772, 100}), v100 = randn({100});
  run("add", "508400x33", "bcast-row", 2 * F * 508400 * 33,
      [&] { binary(BinaryKind::Add, o33, v33); });
  run("mul", "167772x100", "bcast-row", 2 * F * 167772 * 100,
      [&] { binary(BinaryKind::Mul, o100, v100); });
}

}  // namespace smyrf::bench
