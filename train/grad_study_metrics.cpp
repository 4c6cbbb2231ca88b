// Metrics of the gradient study for one input under one SMYRF configuration: per (batch, head),
// dense attention's output and gradients against SMYRF's with n_seeds hash seeds.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "train/grad_study.h"
#include "train/grad_study_internal.h"

namespace smyrf::train {

namespace {
constexpr const char* kOp = "grad_study";

struct Grads {
  std::vector<double> out, dq, dk, dv;  // row-major (N, d) each
};

// One head (1, 1, N, d) through dense (smyrf == nullptr) or SMYRF attention, forward and
// backward with the upstream gradient dout, on `device` (CUDA: float32 copies; the results come
// back as float64 host values).
Grads run_head(const Tensor& q0, const Tensor& k0, const Tensor& v0, const Tensor& dout,
               const StudyInput& in, const SmyrfOptions* smyrf, const Device& device) {
  auto place = [&](const Tensor& t) {
    return device.is_cuda() ? t.to(kFloat32).to(device) : t.clone();
  };
  Tensor q = place(q0).requires_grad_(), k = place(k0).requires_grad_(),
         v = place(v0).requires_grad_();
  Tensor out;
  if (smyrf) {
    out = smyrf_attention(q, k, v, *smyrf);
  } else {
    AttentionOptions o;
    o.scale = in.scale;
    o.causal = in.causal;
    out = attention(q, k, v, o);
  }
  out.backward(device.is_cuda() ? place(dout) : dout);
  auto host = [](const Tensor& t) {
    return t.to(Device::cpu()).to(kFloat64).contiguous().to_vector<double>();
  };
  return {host(out.detach()), host(q.grad()), host(k.grad()), host(v.grad())};
}

double dot(const double* a, const double* b, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

std::vector<double> concat(const Grads& g) {
  std::vector<double> all = g.dq;
  all.insert(all.end(), g.dk.begin(), g.dk.end());
  all.insert(all.end(), g.dv.begin(), g.dv.end());
  return all;
}

// The s-th hash seed of a configuration: a pure function of (seed, s).
uint64_t hash_seed(uint64_t seed, int64_t s) {
  uint64_t h = seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(s) * 0xBF58476D1CE4E5B9ull;
  h ^= h >> 31;
  return h * 0x94D049BB133111EBull + 1;
}
}  // namespace

namespace study_detail {
void compare_rows(const std::vector<double>& approx, const std::vector<double>& exact, int64_t w,
                  std::vector<double>& cos_rows, std::vector<double>& err_rows, double& cos_all,
                  double& err_all) {
  const int64_t rows = static_cast<int64_t>(exact.size()) / w;
  cos_rows.assign(rows, 0), err_rows.assign(rows, 0);
  std::vector<double> diff(exact.size());
  for (size_t i = 0; i < exact.size(); ++i) diff[i] = approx[i] - exact[i];
  // A row counts as zero when its norm is at most kZeroRow times the largest exact row's: a
  // token whose exact gradient is 0 (a causal first token attends to itself alone) comes out as
  // float32 rounding noise on CUDA, ~1e-7 of its neighbours', and comparing noise with 0 gave
  // cosine 0 against the CPU's exact 1 (the first GPU run, 2026-11-28: mean cos_dq off by 1/64).
  constexpr double kZeroRow = 1e-5;
  std::vector<double> bb(rows);
  double max_bb = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const double* b = exact.data() + r * w;
    bb[r] = dot(b, b, w);
    max_bb = std::max(max_bb, bb[r]);
  }
  const double zero_bb = kZeroRow * kZeroRow * max_bb;
  auto cosine = [](double ab, double aa, double bb, double zero) {
    if (aa <= zero && bb <= zero) return 1.0;
    if (aa <= zero || bb <= zero) return 0.0;
    return ab / std::sqrt(aa * bb);
  };
  auto rel = [](double dd, double bb, double zero) {
    if (bb <= zero) return dd <= zero ? 0.0 : std::numeric_limits<double>::quiet_NaN();
    return std::sqrt(dd / bb);
  };
  for (int64_t r = 0; r < rows; ++r) {
    const double* a = approx.data() + r * w;
    const double* b = exact.data() + r * w;
    const double* e = diff.data() + r * w;
    cos_rows[r] = cosine(dot(a, b, w), dot(a, a, w), bb[r], zero_bb);
    err_rows[r] = rel(dot(e, e, w), bb[r], zero_bb);
  }
  const int64_t n = static_cast<int64_t>(exact.size());
  cos_all = cosine(dot(approx.data(), exact.data(), n), dot(approx.data(), approx.data(), n),
                   dot(exact.data(), exact.data(), n), 0.0);
  err_all = rel(dot(diff.data(), diff.data(), n), dot(exact.data(), exact.data(), n), 0.0);
}

}  // namespace study_detail

void diagnostics_from_clusters(const std::vector<double>& q, const std::vector<double>& k,
                               int64_t nq, int64_t nk, int64_t d, double scale,
                               const std::vector<int32_t>& qcl, const std::vector<int32_t>& kcl,
                               int64_t rounds, std::vector<int32_t>& M,
                               std::vector<double>& coverage) {
  M.assign(nq * nk, 0);
  for (int64_t r = 0; r < rounds; ++r)
    for (int64_t i = 0; i < nq; ++i) {
      const int32_t c = qcl[r * nq + i];
      if (c < 0) continue;
      for (int64_t j = 0; j < nk; ++j) M[i * nk + j] += kcl[r * nk + j] == c;
    }
  coverage.assign(nq, 0);
  std::vector<double> s(nk);
  for (int64_t i = 0; i < nq; ++i) {
    double mx = -std::numeric_limits<double>::infinity();
    for (int64_t j = 0; j < nk; ++j) {
      double dot = 0;
      for (int64_t e = 0; e < d; ++e) dot += q[i * d + e] * k[j * d + e];
      s[j] = scale * dot;
      mx = std::max(mx, s[j]);
    }
    double all = 0, seen = 0;
    for (int64_t j = 0; j < nk; ++j) {
      const double p = std::exp(s[j] - mx);
      all += p;
      if (M[i * nk + j] > 0) seen += p;
    }
    coverage[i] = all > 0 ? seen / all : 0;
  }
}

Dist distribution(std::vector<double> v) {
  v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return !std::isfinite(x); }), v.end());
  Dist d;
  if (v.empty()) return d;
  std::sort(v.begin(), v.end());
  d.mean = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
  // linear interpolation between order statistics (numpy's default)
  auto q = [&](double p) {
    const double pos = p * static_cast<double>(v.size() - 1);
    const size_t lo = static_cast<size_t>(std::floor(pos));
    const size_t hi = std::min(v.size() - 1, lo + 1);
    return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
  };
  d.p10 = q(0.1), d.p50 = q(0.5), d.p90 = q(0.9);
  return d;
}

double pearson(const std::vector<double>& x, const std::vector<double>& y) {
  double sx = 0, sy = 0;
  int64_t n = 0;
  for (size_t i = 0; i < x.size() && i < y.size(); ++i)
    if (std::isfinite(x[i]) && std::isfinite(y[i])) sx += x[i], sy += y[i], ++n;
  if (n < 2) return 0;
  const double mx = sx / n, my = sy / n;
  double cxy = 0, cxx = 0, cyy = 0;
  for (size_t i = 0; i < x.size() && i < y.size(); ++i)
    if (std::isfinite(x[i]) && std::isfinite(y[i])) {
      cxy += (x[i] - mx) * (y[i] - my), cxx += (x[i] - mx) * (x[i] - mx),
          cyy += (y[i] - my) * (y[i] - my);
    }
  if (cxx <= 0 || cyy <= 0) return 0;
  return cxy / std::sqrt(cxx * cyy);
}

std::vector<HeadMetrics> measure(const StudyInput& in, const StudyConfig& c) {
  SMYRF_CHECK_HINT(c.n_seeds >= 1, kOp, "n_seeds must be at least 1, got " << c.n_seeds, "e.g. 1");
  SMYRF_CHECK_HINT(
      in.q.defined() && in.q.dim() == 4 && in.dout.defined() &&
          in.dout.shape() == Shape({in.q.size(0), in.q.size(1), in.q.size(2), in.v.size(3)}),
      kOp, "inputs must be q (B, H, Nq, d) and dout (B, H, Nq, dv)",
      "build them with synthetic_input or capture_input");
  require_device(c.device, kOp);
  const int64_t B = in.q.size(0), H = in.q.size(1), nq = in.q.size(2), nk = in.k.size(2);
  const int64_t d = in.q.size(3), dv = in.v.size(3);
  std::vector<HeadMetrics> result;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h) {
      // (CUDA: the float32 values the device sees, so host-side measures use the same inputs)
      auto head = [&](const Tensor& t) {
        const Tensor x = t.to(kFloat64).narrow(0, b, 1).narrow(1, h, 1).contiguous();
        return c.device.is_cuda() ? x.to(kFloat32).to(kFloat64) : x;
      };
      const Tensor q = head(in.q), k = head(in.k), v = head(in.v), dout = head(in.dout);
      const Grads dense = run_head(q, k, v, dout, in, nullptr, c.device);
      const std::vector<double> g_dense = concat(dense);
      HeadMetrics m;
      m.batch = b, m.head = h;
      std::map<std::string, std::vector<double>> token_sum;
      std::vector<double> coverage_sum(nq, 0), g_bar(g_dense.size(), 0);
      std::vector<std::vector<double>> g_seeds;
      m.mult_hist.assign(c.n_hashes + 1, 0);
      std::vector<double> err_dq_sum(nq, 0);
      for (int64_t s = 0; s < c.n_seeds; ++s) {
        SmyrfOptions o;
        o.scale = in.scale;
        o.causal = in.causal;
        o.n_hashes = c.n_hashes;
        o.q_cluster_size = c.q_cluster;
        o.k_cluster_size = c.k_cluster;
        o.duplicates = c.duplicates;
        o.seed = hash_seed(c.seed, s);
        SmyrfDiagnostics dg;
        // CUDA computes cluster ids only (non-causal; causal SMYRF builds its plan on the host
        // and reports everything): M and the coverage then come from diagnostics_from_clusters
        const bool ids_only = c.device.is_cuda() && !in.causal;
        dg.want_clusters = ids_only;
        dg.want_coverage = !ids_only;
        dg.want_multiplicity = !ids_only;
        o.diagnostics = &dg;
        Grads sm;
        try {
          sm = run_head(q, k, v, dout, in, &o, c.device);
        } catch (const Error& e) {
          throw Error(kOp,
                      std::string("configuration n_hashes ") + std::to_string(c.n_hashes) + " Cq " +
                          std::to_string(c.q_cluster) + " Ck " + std::to_string(c.k_cluster) +
                          " rejected: " + e.what(),
                      "pick cluster sizes with ceil(Nq/Cq) == ceil(Nk/Ck)");
        }
        // per-token measures
        const std::pair<const char*,
                        std::pair<const std::vector<double>*, const std::vector<double>*>>
            parts[] = {{"dq", {&sm.dq, &dense.dq}},
                       {"dk", {&sm.dk, &dense.dk}},
                       {"dv", {&sm.dv, &dense.dv}},
                       {"out", {&sm.out, &dense.out}}};
        for (auto& [name, pr] : parts) {
          const int64_t w = std::string(name) == "dq" || std::string(name) == "dk" ? d : dv;
          std::vector<double> cr, er;
          double ca, ea;
          study_detail::compare_rows(*pr.first, *pr.second, w, cr, er, ca, ea);
          auto& cs = token_sum[std::string("cos_") + name];
          auto& es = token_sum[std::string("err_") + name];
          if (cs.empty()) cs.assign(cr.size(), 0), es.assign(er.size(), 0);
          for (size_t i = 0; i < cr.size(); ++i) cs[i] += cr[i], es[i] += er[i];
          m.whole[std::string("cos_") + name] += ca / c.n_seeds;
          m.whole[std::string("err_") + name] += ea / c.n_seeds;
          if (std::string(name) == "dq")
            for (int64_t i = 0; i < nq; ++i) err_dq_sum[i] += er[i];
        }
        std::vector<double> cov;
        std::vector<int32_t> M;
        if (ids_only) {
          diagnostics_from_clusters(q.to_vector<double>(), k.to_vector<double>(), nq, nk, d,
                                    in.scale, dg.q_cluster.to(Device::cpu()).to_vector<int32_t>(),
                                    dg.k_cluster.to(Device::cpu()).to_vector<int32_t>(), c.n_hashes,
                                    M, cov);
        } else {
          cov = dg.coverage.to(Device::cpu()).to_vector<double>();
          M = dg.multiplicity.to(Device::cpu()).to_vector<int32_t>();
        }
        for (int64_t i = 0; i < nq; ++i) coverage_sum[i] += cov[i];
        // multiplicity: histogram over pairs the dense attention allows, unattended keys
        int64_t pairs = 0, no_grad = 0;
        std::vector<double> hist(c.n_hashes + 1, 0);
        std::vector<int32_t> col(nk, 0);
        for (int64_t i = 0; i < nq; ++i)
          for (int64_t j = 0; j < nk; ++j) {
            if (in.causal && j > i + (nk - nq)) continue;
            const int32_t mm = M[i * nk + j];
            hist[std::min<int64_t>(mm, c.n_hashes)] += 1, ++pairs;
            col[j] += mm;
          }
        for (int64_t j = 0; j < nk; ++j) no_grad += col[j] == 0;
        for (int64_t r = 0; r <= c.n_hashes; ++r) m.mult_hist[r] += hist[r] / pairs / c.n_seeds;
        m.keys_no_grad += static_cast<double>(no_grad) / nk / c.n_seeds;
        std::vector<double> g = concat(sm);
        for (size_t i = 0; i < g.size(); ++i) g_bar[i] += g[i] / c.n_seeds;
        g_seeds.push_back(std::move(g));
      }
      for (auto& [name, sum] : token_sum) {
        for (double& x : sum) x /= c.n_seeds;
        m.token[name] = distribution(sum);
      }
      for (double& x : coverage_sum) x /= c.n_seeds;
      for (double& x : err_dq_sum) x /= c.n_seeds;
      m.coverage = distribution(coverage_sum);
      m.corr_coverage_err_dq = pearson(coverage_sum, err_dq_sum);
      // bias and variance of the seed-averaged gradient
      const int64_t n = static_cast<int64_t>(g_dense.size());
      const double gg = dot(g_dense.data(), g_dense.data(), n);
      std::vector<double> diff(n);
      for (int64_t i = 0; i < n; ++i) diff[i] = g_bar[i] - g_dense[i];
      const double bb = dot(g_bar.data(), g_bar.data(), n);
      m.bias_err = gg > 0 ? std::sqrt(dot(diff.data(), diff.data(), n) / gg) : 0;
      m.bias_cos = gg > 0 && bb > 0 ? dot(g_bar.data(), g_dense.data(), n) / std::sqrt(gg * bb)
                                    : (gg == 0 && bb == 0 ? 1 : 0);
      double var = 0;
      for (auto& g : g_seeds)
        for (int64_t i = 0; i < n; ++i) var += (g[i] - g_bar[i]) * (g[i] - g_bar[i]);
      m.variance = gg > 0 ? var / c.n_seeds / gg : 0;
      result.push_back(std::move(m));
    }
  return result;
}

}  // namespace smyrf::train
