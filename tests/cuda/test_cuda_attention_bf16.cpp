// bfloat16 dense and SMYRF attention on CUDA (the tensor-core kernels) against the CPU float32
// kernels run on the bfloat16-rounded inputs: outputs, LSE and the gradients of q, k and v from a
// rounded upstream gradient, over odd lengths, head sizes that are not multiples of 16 (or of 8),
// cross-attention, key and query masks, causal, bias, dropout and both duplicate semantics. The
// raw CUDA ops (core/ops_cuda_nn.h) are called directly: the autograd ops allocate their LSE in
// q's dtype, and the bfloat16 kernels keep it in float32.
//
// Tolerances (bfloat16 has an 8-bit mantissa, unit roundoff 2^-9 = 0.2%): the scores are exact
// products of bfloat16 values summed in float32, so the LSE agrees to 1e-3 absolute. The outputs
// and gradients are rounded to bfloat16 once (0.2%) and the products take P and dS rounded to
// bfloat16, errors that average out over a row: we require a relative L2 error of at most 1.5e-2
// per tensor and every element within 4e-2 of the largest reference magnitude. A wrong fragment
// layout, a missed rescale or a lost round gives errors of order 1.
//
// Every case runs under both pipelines of the tensor-core kernels (set_attention_pipeline_stages:
// 2, cp.async double buffering; 1, one synchronously loaded buffer): the cases' odd lengths give
// one-tile, two-tile and many-tile loops with partial last tiles, where a buffer read before its
// copy landed or overwritten while still read would show.
//
// Runs only with a GPU (exit 77 = skipped otherwise). All passed on an NVIDIA H200 (first GPU run,
// 2026-11-28) with the single-buffer kernels of that day; the two-stage pipeline and the MaxHead
// template (2026-11-29) have not run on a GPU yet.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "autograd/attention_ops.h"
#include "core/ops_cuda_nn.h"
#include "cuda_test_util.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/smyrf.h"

using namespace smyrf;
using namespace smyrf::cuda_test;
namespace kc = smyrf::kernels::cpu;

namespace {

// x rounded to bfloat16 and back: the values both sides compute with.
Tensor rounded(const Tensor& x) { return x.to(kBFloat16).to(kFloat32).contiguous(); }

std::vector<float> rounded_values(std::vector<float> v) {
  for (float& e : v) e = bf16_bits_to_float(float_to_bf16_bits(e));
  return v;
}

std::vector<float> host_f32(const Tensor& t) {
  return host(t).to(kFloat32).contiguous().to_vector<float>();
}

void check_bf16_close(const Tensor& gpu, const std::vector<float>& ref, double lse_like_atol,
                      const std::string& what) {
  INFO(what);
  const std::vector<float> g = host_f32(gpu);
  REQUIRE(g.size() == ref.size());
  if (lse_like_atol > 0) {  // elementwise absolute (the LSE, with -inf for empty rows)
    size_t bad = 0;
    for (size_t i = 0; i < g.size(); ++i) {
      const bool ok =
          (std::isinf(ref[i]) && g[i] == ref[i]) || std::fabs(g[i] - ref[i]) <= lse_like_atol;
      if (!ok && bad++ == 0)
        FAIL_CHECK(what << ": first mismatch at " << i << ": cuda " << g[i] << " vs cpu "
                        << ref[i]);
    }
    CHECK(bad == 0);
    return;
  }
  double num = 0, den = 0, peak = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    REQUIRE_MESSAGE(std::isfinite(g[i]), what << ": non-finite value at " << i);
    num += (g[i] - ref[i]) * static_cast<double>(g[i] - ref[i]);
    den += ref[i] * static_cast<double>(ref[i]);
    peak = std::max(peak, static_cast<double>(std::fabs(ref[i])));
  }
  const double rel = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  CHECK_MESSAGE(rel <= 1.5e-2, what << ": relative L2 error " << rel);
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < g.size(); ++i)
    if (std::fabs(g[i] - ref[i]) > 4e-2 * peak + 1e-6 && bad++ == 0) first = i;
  CHECK_MESSAGE(bad == 0, what << ": " << bad << " elements off by more than 4e-2 * " << peak
                               << "; first at " << first << ": cuda " << g[first] << " vs cpu "
                               << ref[first]);
}

struct Inputs {
  Tensor q, k, v, up;  // float32, already rounded to bfloat16 values, host
};

Inputs make_inputs(int64_t bh, int64_t nq, int64_t nk, int64_t d, int64_t dv, uint32_t seed) {
  return {rounded(rnd({bh, nq, d}, seed)), rounded(rnd({bh, nk, d}, seed + 1)),
          rounded(rnd({bh, nk, dv}, seed + 2)), rounded(rnd({bh, nq, dv}, seed + 3))};
}

// Masks: host bytes for the CPU kernels, the same bytes on the device for CUDA.
struct Mask {
  std::vector<uint8_t> host;
  Tensor dev;
  const uint8_t* cpu_ptr() const { return host.empty() ? nullptr : host.data(); }
  const uint8_t* cuda_ptr() const {
    return dev.defined() ? static_cast<const uint8_t*>(dev.raw_data()) : nullptr;
  }
};

Mask tail_mask(int64_t B, int64_t n, int64_t step) {
  Mask m;
  m.host.assign(static_cast<size_t>(B * n), 1);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t j = std::max<int64_t>(0, n - 1 - step * (b + 1)); j < n; ++j)
      m.host[b * n + j] = 0;
  std::vector<float> f(m.host.begin(), m.host.end());
  m.dev = cu(from_vector(f, {B, n}).to(kBool));
  return m;
}

struct Grads {
  Tensor out, lse, dq, dk, dv;
};

Grads cuda_empty(const Inputs& x) {
  const TensorOptions bf = TensorOptions(kBFloat16).set_device(Device::cuda(0));
  const TensorOptions f = TensorOptions(kFloat32).set_device(Device::cuda(0));
  Grads g;
  g.out = empty(x.up.shape(), bf);
  g.lse = empty({x.q.size(0), x.q.size(1)}, f);
  g.dq = empty(x.q.shape(), bf);
  g.dk = empty(x.k.shape(), bf);
  g.dv = empty(x.v.shape(), bf);
  return g;
}

// float32 CPU reference values of out, lse, dq, dk, dv.
struct Ref {
  std::vector<float> out, lse, dq, dk, dv;
};

Ref cpu_sized(const Inputs& x) {
  Ref r;
  r.out.resize(x.up.numel());
  r.lse.resize(x.q.size(0) * x.q.size(1));
  r.dq.resize(x.q.numel());
  r.dk.resize(x.k.numel());
  r.dv.resize(x.v.numel());
  return r;
}

void compare(const Grads& g, const Ref& r, const std::string& what) {
  check_bf16_close(g.lse, r.lse, 1e-3, what + ": lse");
  check_bf16_close(g.out, r.out, 0, what + ": out");
  check_bf16_close(g.dq, r.dq, 0, what + ": dq");
  check_bf16_close(g.dk, r.dk, 0, what + ": dk");
  check_bf16_close(g.dv, r.dv, 0, what + ": dv");
}

struct DenseCase {
  int64_t B, H, nq, nk, d, dv;
  bool causal, key_mask, query_mask, bias;
  double dropout;
};

void run_dense(const DenseCase& c, uint32_t seed) {
  const std::string what =
      "dense B=" + std::to_string(c.B) + " H=" + std::to_string(c.H) +
      " nq=" + std::to_string(c.nq) + " nk=" + std::to_string(c.nk) + " d=" + std::to_string(c.d) +
      " dv=" + std::to_string(c.dv) + (c.causal ? " causal" : "") + (c.key_mask ? " kmask" : "") +
      (c.query_mask ? " qmask" : "") + (c.bias ? " bias" : "") + (c.dropout > 0 ? " dropout" : "");
  const int64_t bh = c.B * c.H;
  const Inputs x = make_inputs(bh, c.nq, c.nk, c.d, c.dv, seed);
  const Mask km = c.key_mask ? tail_mask(c.B, c.nk, 5) : Mask{};
  const Mask qm = c.query_mask ? tail_mask(c.B, c.nq, 3) : Mask{};
  const Tensor bias = c.bias ? rounded(rnd({c.nq, c.nk}, seed + 9) * 0.5) : Tensor();
  kc::AttentionParams p;
  p.batch_heads = bh;
  p.heads = c.H;
  p.nq = c.nq, p.nk = c.nk, p.d = c.d, p.dv = c.dv;
  p.scale = 1.0 / std::sqrt(static_cast<double>(c.d));
  p.causal = c.causal;
  p.dropout_p = c.dropout;
  p.dropout_seed = 77;

  Ref r = cpu_sized(x);
  {
    kc::AttentionParams hp = p;
    hp.key_mask = km.cpu_ptr();
    hp.query_mask = qm.cpu_ptr();
    const float* b = c.bias ? bias.data_ptr<float>() : nullptr;
    kc::attention_forward<float>(hp, x.q.data_ptr<float>(), x.k.data_ptr<float>(),
                                 x.v.data_ptr<float>(), b, r.out.data(), r.lse.data());
    // the CUDA backward reads its bfloat16 out (D_i = dout_i . out_i): so does the reference
    const std::vector<float> out_r = rounded_values(r.out);
    kc::attention_backward<float>(hp, x.q.data_ptr<float>(), x.k.data_ptr<float>(),
                                  x.v.data_ptr<float>(), b, out_r.data(), r.lse.data(),
                                  x.up.data_ptr<float>(), r.dq.data(), r.dk.data(), r.dv.data());
  }
  Grads g = cuda_empty(x);
  kc::AttentionParams dp = p;
  dp.key_mask = km.cuda_ptr();
  dp.query_mask = qm.cuda_ptr();
  const Tensor qb = cu(x.q.to(kBFloat16)), kb = cu(x.k.to(kBFloat16)), vb = cu(x.v.to(kBFloat16));
  const Tensor ub = cu(x.up.to(kBFloat16));
  const Tensor bias_dev = c.bias ? cu(bias) : Tensor();
  cuda_ops::attention_forward(dp, qb, kb, vb, bias_dev, g.out, g.lse);
  cuda_ops::attention_backward(dp, qb, kb, vb, bias_dev, g.out, g.lse, ub, g.dq, g.dk, g.dv);
  compare(g, r, what);
}

struct SmyrfCase {
  int64_t B, H, nq, nk, d, dv, n_hashes, cq, ck;
  bool key_mask;
  kc::SmyrfDuplicates dup;
  double dropout;
};

void run_smyrf(const SmyrfCase& c, uint32_t seed) {
  const std::string what = "smyrf nq=" + std::to_string(c.nq) + " nk=" + std::to_string(c.nk) +
                           " d=" + std::to_string(c.d) + " dv=" + std::to_string(c.dv) +
                           " R=" + std::to_string(c.n_hashes) + " cq=" + std::to_string(c.cq) +
                           " ck=" + std::to_string(c.ck) + (c.key_mask ? " kmask" : "") +
                           (c.dup == kc::SmyrfDuplicates::Set ? " set" : "") +
                           (c.dropout > 0 ? " dropout" : "");
  const int64_t bh = c.B * c.H;
  const Inputs x = make_inputs(bh, c.nq, c.nk, c.d, c.dv, seed);
  const Mask km = c.key_mask ? tail_mask(c.B, c.nk, 7) : Mask{};
  kc::SmyrfParams p;
  p.batch_heads = bh;
  p.heads = c.H;
  p.nq = c.nq, p.nk = c.nk, p.d = c.d, p.dv = c.dv;
  p.n_hashes = c.n_hashes;
  p.cq = c.cq, p.ck = c.ck;
  p.scale = 1.0 / std::sqrt(static_cast<double>(c.d));
  p.duplicates = c.dup;
  p.seed = 4321;
  p.dropout_p = c.dropout;
  p.dropout_seed = 99;

  Ref r = cpu_sized(x);
  {
    kc::SmyrfParams hp = p;
    hp.key_mask = km.cpu_ptr();
    const kc::SmyrfPlan plan =
        kc::smyrf_make_plan<float>(hp, x.q.data_ptr<float>(), x.k.data_ptr<float>());
    kc::smyrf_forward<float>(hp, plan, x.q.data_ptr<float>(), x.k.data_ptr<float>(),
                             x.v.data_ptr<float>(), r.out.data(), r.lse.data());
    const std::vector<float> out_r = rounded_values(r.out);
    kc::smyrf_backward<float>(hp, plan, x.q.data_ptr<float>(), x.k.data_ptr<float>(),
                              x.v.data_ptr<float>(), out_r.data(), r.lse.data(),
                              x.up.data_ptr<float>(), r.dq.data(), r.dk.data(), r.dv.data());
  }
  Grads g = cuda_empty(x);
  kc::SmyrfParams dp = p;
  dp.key_mask = km.cuda_ptr();
  const Tensor qb = cu(x.q.to(kBFloat16)), kb = cu(x.k.to(kBFloat16)), vb = cu(x.v.to(kBFloat16));
  const Tensor ub = cu(x.up.to(kBFloat16));
  const auto plan = cuda_ops::smyrf_make_plan(dp, qb, kb);
  cuda_ops::smyrf_forward(dp, *plan, qb, kb, vb, g.out, g.lse);
  cuda_ops::smyrf_backward(dp, *plan, qb, kb, vb, g.out, g.lse, ub, g.dq, g.dk, g.dv);
  compare(g, r, what);
}

// Runs body under each pipeline depth, then restores the previous setting.
template <typename Body>
void for_each_pipeline(Body&& body) {
  const int before = cuda_ops::attention_pipeline_stages();
  for (int stages : {2, 1}) {
    CAPTURE(stages);
    cuda_ops::set_attention_pipeline_stages(stages);
    body(stages);
  }
  cuda_ops::set_attention_pipeline_stages(before);
}

}  // namespace

TEST_CASE("cuda bf16: dense attention (tensor cores) matches the CPU float32 op") {
  const DenseCase cases[] = {
      {1, 2, 1, 1, 16, 16, false, false, false, false, 0.0},        // one pair
      {2, 3, 33, 33, 64, 64, false, false, false, false, 0.0},      // odd N, aligned heads
      {1, 2, 130, 130, 128, 128, false, false, false, false, 0.0},  // widest head, 3 tiles
      {2, 2, 77, 77, 40, 24, true, false, false, false, 0.0},       // causal, d % 16 != 0
      {2, 2, 37, 71, 20, 13, false, true, true, true, 0.0},         // cross, masks, bias, odd dv
      {1, 2, 71, 37, 64, 64, true, false, false, false, 0.0},       // causal cross Nq > Nk
      {1, 2, 50, 50, 32, 32, false, false, false, false, 0.25},     // dropout
      {1, 2, 300, 520, 64, 64, false, false, false, false, 0.0},    // 9 key and 10 query tiles
  };
  for_each_pipeline([&](int) {
    uint32_t seed = 200;
    for (const DenseCase& c : cases) run_dense(c, seed += 10);
  });
}

TEST_CASE("cuda bf16: SMYRF attention (tensor cores) matches the CPU float32 op") {
  using D = kc::SmyrfDuplicates;
  const SmyrfCase cases[] = {
      {2, 2, 128, 128, 32, 32, 1, 32, 32, false, D::Multiset, 0.0},
      {1, 2, 256, 256, 64, 64, 4, 64, 64, false, D::Multiset, 0.0},
      {2, 2, 200, 200, 64, 64, 3, 32, 32, true, D::Set, 0.0},          // tail clusters, mask, set
      {2, 2, 256, 64, 32, 48, 2, 64, 16, false, D::Multiset, 0.0},     // cross, small key clusters
      {1, 2, 97, 97, 128, 128, 2, 128, 128, true, D::Multiset, 0.0},   // one partial cluster
      {1, 2, 300, 300, 72, 72, 2, 100, 100, false, D::Multiset, 0.0},  // cluster not /64, d % 16
      {1, 1, 256, 256, 64, 64, 2, 256, 256, false, D::Multiset, 0.2},  // dropout, cluster 256
  };
  for_each_pipeline([&](int) {
    uint32_t seed = 500;
    for (const SmyrfCase& c : cases) run_smyrf(c, seed += 10);
  });
  // the stored-dS dq path (set_smyrf_stored_ds): dS per cluster from the dk/dv kernel, then dQ =
  // scale dS K through cuBLAS and a scatter into token order, round by round: the same cases
  // (tail clusters, masks, set semantics, cq != ck, clusters not a multiple of 64, dropout)
  struct Restore {
    bool prev = cuda_ops::set_smyrf_stored_ds(true);
    ~Restore() { cuda_ops::set_smyrf_stored_ds(prev); }
  } restore;
  for_each_pipeline([&](int) {
    uint32_t seed = 500;
    for (const SmyrfCase& c : cases) run_smyrf(c, seed += 10);
  });
}

namespace {

// The autograd ops on bfloat16 CUDA tensors (cast from float32 leaves, so the casts carry the
// gradients back) against the float32 CPU autograd ops on the same rounded values: out and the
// three gradients, with check_bf16_close's tolerances.
template <typename F>
void compare_autograd_bf16(const Inputs& x, F op, const std::string& what) {
  Tensor qc = leaf(x.q), kc = leaf(x.k), vc = leaf(x.v);
  Tensor oc = op(qc, kc, vc);
  sum(oc * x.up).backward();
  Tensor qg = leaf(cu(x.q)), kg = leaf(cu(x.k)), vg = leaf(cu(x.v));
  Tensor ob = op(qg.to(kBFloat16), kg.to(kBFloat16), vg.to(kBFloat16));
  CHECK(ob.dtype() == kBFloat16);
  CHECK(ob.device().is_cuda());
  Tensor og = ob.to(kFloat32);
  sum(og * cu(x.up)).backward();
  auto ref = [](const Tensor& t) { return t.contiguous().to_vector<float>(); };
  check_bf16_close(og, ref(oc), 0, what + ": out");
  REQUIRE(qg.grad().defined());
  check_bf16_close(qg.grad(), ref(qc.grad()), 0, what + ": dq");
  check_bf16_close(kg.grad(), ref(kc.grad()), 0, what + ": dk");
  check_bf16_close(vg.grad(), ref(vc.grad()), 0, what + ": dv");
}

}  // namespace

TEST_CASE("cuda bf16: the autograd attention ops run bfloat16 CUDA tensors on the tensor cores") {
  {
    const Inputs x = make_inputs(2, 70, 70, 32, 32, 950);
    const auto reshape4 = [](const Inputs& in) {  // (BH, N, d) -> (1, BH, N, d)
      return Inputs{in.q.unsqueeze(0), in.k.unsqueeze(0), in.v.unsqueeze(0), in.up.unsqueeze(0)};
    };
    const Inputs x4 = reshape4(x);
    compare_autograd_bf16(
        x4, [](const Tensor& q, const Tensor& k, const Tensor& v) { return attention(q, k, v); },
        "dense");
    AttentionOptions causal;
    causal.causal = true;
    compare_autograd_bf16(
        x4,
        [&](const Tensor& q, const Tensor& k, const Tensor& v) {
          return attention(q, k, v, causal);
        },
        "dense causal");
  }
  {
    const Inputs x = make_inputs(2, 128, 128, 64, 64, 960);
    const Inputs x4{x.q.unsqueeze(0), x.k.unsqueeze(0), x.v.unsqueeze(0), x.up.unsqueeze(0)};
    SmyrfOptions o;
    o.n_hashes = 2;
    o.q_cluster_size = o.k_cluster_size = 32;
    o.seed = 4242;  // both sides build the same clusters
    compare_autograd_bf16(
        x4,
        [&](const Tensor& q, const Tensor& k, const Tensor& v) {
          return smyrf_attention(q, k, v, o);
        },
        "smyrf (2, 32)");
    // causal SMYRF takes float32 on CUDA (pair-list kernels), no bfloat16: a clear error
    SmyrfOptions c = o;
    c.causal = true;
    const Tensor qb = cu(x4.q).to(kBFloat16);
    CHECK_THROWS_WITH_AS(smyrf_attention(qb, qb, qb, c), doctest::Contains("causal SMYRF"), Error);
  }
}

TEST_CASE("cuda bf16: mixed dtypes and a bfloat16 LSE are refused with a hint") {
  const Inputs x = make_inputs(2, 16, 16, 16, 16, 900);
  kc::AttentionParams p;
  p.batch_heads = 2;
  p.nq = p.nk = 16, p.d = p.dv = 16;
  const Tensor qb = cu(x.q.to(kBFloat16)), kf = cu(x.k), vb = cu(x.v.to(kBFloat16));
  Grads g = cuda_empty(x);
  CHECK_THROWS_WITH_AS(cuda_ops::attention_forward(p, qb, kf, vb, Tensor(), g.out, g.lse),
                       doctest::Contains("mixed dtypes"), Error);
  const Tensor kb = cu(x.k.to(kBFloat16));
  const Tensor lse_bf = empty({2, 16}, TensorOptions(kBFloat16).set_device(Device::cuda(0)));
  CHECK_THROWS_WITH_AS(cuda_ops::attention_forward(p, qb, kb, vb, Tensor(), g.out, lse_bf),
                       doctest::Contains("float32"), Error);
}
