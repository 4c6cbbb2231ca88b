// Naive double-precision convolution (forward, data, filter and bias gradients) over every
// (n, k, p, q, c, r, s) term: the reference the optimised CPU convolution kernels are tested
// against (tests/kernels/test_conv_kernels.cpp, test_winograd.cpp).
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/cpu/conv.h"

namespace smyrf::test {

// Visits every (n, k, p, q, c, r, s) term of the convolution with the flat indices it touches.
template <typename F>
void for_each_conv_term(const kernels::cpu::Conv2dGeometry& g, F f) {
  const int64_t Cg = g.C / g.groups, Kg = g.K / g.groups;
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t k = 0; k < g.K; ++k)
      for (int64_t p = 0; p < g.P; ++p)
        for (int64_t q = 0; q < g.Q; ++q)
          for (int64_t cl = 0; cl < Cg; ++cl)
            for (int64_t r = 0; r < g.R; ++r)
              for (int64_t s = 0; s < g.S; ++s) {
                const int64_t h = p * g.stride_h - g.pad_h + r * g.dil_h;
                const int64_t w = q * g.stride_w - g.pad_w + s * g.dil_w;
                if (h < 0 || h >= g.H || w < 0 || w >= g.W) continue;
                const int64_t c = (k / Kg) * Cg + cl;
                f(((n * g.C + c) * g.H + h) * g.W + w, ((k * Cg + cl) * g.R + r) * g.S + s,
                  ((n * g.K + k) * g.P + p) * g.Q + q);
              }
}

struct ConvReference {
  std::vector<double> y, dx, dw, db;
};

// y = conv(x, w) + b and, for the upstream gradient dy, dx, dw and db, all accumulated in double.
// x (N, C, H, W), w (K, C / groups, R, S), b (K) or empty, dy (N, K, P, Q); T float or double.
template <typename T>
ConvReference conv_reference(const kernels::cpu::Conv2dGeometry& g, const std::vector<T>& x,
                             const std::vector<T>& w, const std::vector<T>& b,
                             const std::vector<T>& dy) {
  ConvReference ref;
  const int64_t PQ = g.P * g.Q;
  ref.y.assign(static_cast<size_t>(g.N * g.K * PQ), 0.0);
  ref.dx.assign(x.size(), 0.0);
  ref.dw.assign(w.size(), 0.0);
  ref.db.assign(static_cast<size_t>(g.K), 0.0);
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t k = 0; k < g.K; ++k)
      for (int64_t i = 0; i < PQ; ++i) {
        ref.y[(n * g.K + k) * PQ + i] = b.empty() ? 0.0 : static_cast<double>(b[k]);
        ref.db[k] += static_cast<double>(dy[(n * g.K + k) * PQ + i]);
      }
  for_each_conv_term(g, [&](int64_t xi, int64_t wi, int64_t yi) {
    const double xv = x[xi], wv = w[wi], dyv = dy[yi];
    ref.y[yi] += xv * wv;
    ref.dx[xi] += wv * dyv;
    ref.dw[wi] += xv * dyv;
  });
  return ref;
}

}  // namespace smyrf::test
