#include "core/bf16_cast.h"

#include "core/dtype.h"
#include "kernels/cpu/nd_loop.h"

namespace smyrf::detail {
namespace {

template <typename S, typename D>
void convert_typed(const IterPlan& p, const S* x, D* y) {
  kernels::cpu::nd_loop<2>(
      p.ndim, p.sizes, {p.s(0), p.s(1)},
      [&](const std::array<int64_t, 2>& off, int64_t n, const std::array<int64_t, 2>& st) {
        const S* xp = x + off[0];
        D* yp = y + off[1];
        for (int64_t i = 0; i < n; ++i) yp[i * st[1]] = static_cast<D>(xp[i * st[0]]);
      });
}

}  // namespace

void convert_cpu_bf16(const IterPlan& p, const Tensor& src, const Tensor& dst) {
  SMYRF_DISPATCH_CAST(src.dtype(), "copy_", [&] {
    using S = scalar_t;
    SMYRF_DISPATCH_CAST(dst.dtype(), "copy_", [&] {
      convert_typed<S, scalar_t>(p, static_cast<const S*>(src.raw_data()),
                                 static_cast<scalar_t*>(dst.raw_data()));
    });
  });
}

void fill_cpu_bf16(const IterPlan& p, const Tensor& dst, double value) {
  const bfloat16 v(static_cast<float>(value));
  auto* y = static_cast<bfloat16*>(dst.raw_data());
  kernels::cpu::nd_loop<1>(
      p.ndim, p.sizes, {p.s(0)},
      [&](const std::array<int64_t, 1>& off, int64_t n, const std::array<int64_t, 1>& st) {
        for (int64_t i = 0; i < n; ++i) y[off[0] + i * st[0]] = v;
      });
}

}  // namespace smyrf::detail
