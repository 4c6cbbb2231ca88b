// Shared helpers for the core/ unit tests: naive double-precision references built from plain
// std::vectors, value comparison with NaN/inf awareness, strided reads that trust only a view's
// metadata (so a reference never goes through the copy kernels under test), and an error-message
// matcher.
#pragma once
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "core/ops.h"
#include "core/tensor.h"
#include "kernels/cpu/cpu_features.h"

namespace smyrf::test {

inline std::vector<double> uniform_values(size_t n, uint32_t seed, double lo = -2.0,
                                          double hi = 2.0) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> d(lo, hi);
  std::vector<double> v(n);
  for (auto& e : v) e = d(gen);
  return v;
}

// Small integers as doubles: exact in every dtype, so int and float paths compare exactly.
inline std::vector<double> int_values(size_t n, uint32_t seed, int lo = -9, int hi = 9) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> d(lo, hi);
  std::vector<double> v(n);
  for (auto& e : v) e = d(gen);
  return v;
}

inline Tensor make(const std::vector<double>& v, const Shape& s, DType dt = kFloat32) {
  return raw::to_dtype(from_vector(v, s), dt);
}

// Values rounded the way storing them in dtype `dt` rounds them (the reference sees exactly
// what the kernel sees).
inline std::vector<double> as_stored(std::vector<double> v, DType dt) {
  for (auto& e : v) {
    if (dt == kFloat32) e = static_cast<float>(e);
    if (dt == kInt32 || dt == kInt64) e = static_cast<double>(static_cast<int64_t>(e));
    if (dt == kBool) e = e != 0 ? 1.0 : 0.0;
  }
  return v;
}

inline std::vector<int64_t> unravel(int64_t flat, const Shape& s) {
  std::vector<int64_t> idx(s.size());
  for (int64_t d = static_cast<int64_t>(s.size()) - 1; d >= 0; --d) {
    idx[d] = s[d] ? flat % s[d] : 0;
    flat = s[d] ? flat / s[d] : 0;
  }
  return idx;
}

inline int64_t ravel(const std::vector<int64_t>& idx, const Shape& s) {
  int64_t f = 0;
  for (size_t d = 0; d < s.size(); ++d) f = f * s[d] + idx[d];
  return f;
}

// Flat row-major position in an input of shape `in` for the output multi-index `out_idx`
// under NumPy broadcasting (in may have fewer dims; size-1 dims repeat).
inline int64_t bcast_pos(const std::vector<int64_t>& out_idx, const Shape& in) {
  const size_t off = out_idx.size() - in.size();
  int64_t f = 0;
  for (size_t d = 0; d < in.size(); ++d) f = f * in[d] + (in[d] == 1 ? 0 : out_idx[off + d]);
  return f;
}

inline Shape bcast_shape(const Shape& a, const Shape& b) {
  size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    out[i] = da == 1 ? db : da;
  }
  return out;
}

// The values of `view` read straight from `base` (the row-major values of the contiguous tensor
// the view was made from, at offset 0) through the view's shape, strides and offset.
inline std::vector<double> read_view(const std::vector<double>& base, const Tensor& view) {
  std::vector<double> out(static_cast<size_t>(view.numel()));
  for (int64_t i = 0; i < view.numel(); ++i) {
    auto idx = unravel(i, view.shape());
    int64_t p = view.offset();
    for (size_t d = 0; d < idx.size(); ++d) p += idx[d] * view.strides()[d];
    out[i] = base.at(static_cast<size_t>(p));
  }
  return out;
}

inline bool same_value(double got, double want, double rtol, double atol) {
  if (std::isnan(want)) return std::isnan(got);
  if (std::isinf(want)) return got == want;
  if (std::isnan(got) || std::isinf(got)) return false;
  return std::fabs(got - want) <= atol + rtol * std::fabs(want);
}

// Checks shape and every value; reports the first few mismatches with their flat index.
inline void check_values(const Tensor& got, const Shape& shape, const std::vector<double>& want,
                         double rtol = 1e-5, double atol = 1e-6) {
  REQUIRE(got.defined());
  CHECK_MESSAGE(got.shape() == shape,
                "shape " << shape_str(got.shape()) << " != " << shape_str(shape));
  REQUIRE(static_cast<size_t>(got.numel()) == want.size());
  std::vector<double> g = got.to_vector<double>();
  int bad = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    if (!same_value(g[i], want[i], rtol, atol)) {
      if (++bad <= 5) FAIL_CHECK("at flat index " << i << ": got " << g[i] << ", want " << want[i]);
    }
  }
  CHECK_MESSAGE(bad == 0, bad << " of " << want.size() << " values differ");
}

// Runs fn and checks it throws smyrf::Error whose message contains every part (and "hint"
// unless told otherwise).
inline void check_error(const std::function<void()>& fn, const std::vector<std::string>& parts,
                        bool want_hint = true) {
  try {
    fn();
    FAIL_CHECK("no exception; expected one mentioning " << (parts.empty() ? "" : parts[0]));
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const auto& p : parts)
      CHECK_MESSAGE(msg.find(p) != std::string::npos, "'" << p << "' not in: " << msg);
    if (want_hint) CHECK_MESSAGE(msg.find("hint") != std::string::npos, "no hint in: " << msg);
  } catch (const std::exception& e) {
    FAIL_CHECK("expected smyrf::Error, got std::exception: " << e.what());
  }
}

// Restores the CPU kernel variant on scope exit.
struct IsaGuard {
  kernels::cpu::Isa prev;
  explicit IsaGuard(kernels::cpu::Isa isa) : prev(kernels::cpu::set_active_isa(isa)) {}
  ~IsaGuard() { kernels::cpu::set_active_isa(prev); }
};

}  // namespace smyrf::test
