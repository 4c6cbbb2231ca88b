// CPU casts from and to bfloat16 over strided index spaces (core/ops_view.cpp's copy_ and fill_
// call these when a bfloat16 tensor is involved; kernels/cpu/elementwise covers the other five
// dtypes). Rounding: float32 -> bfloat16 to nearest even, everything else through float32 (see
// core/bfloat16.h).
#pragma once
#include "core/iter.h"
#include "core/tensor.h"

namespace smyrf::detail {

// dst = src converted elementwise; p is the copy's plan (operand 0 src, operand 1 dst), at least
// one of the two is bfloat16, both on the CPU.
void convert_cpu_bf16(const IterPlan& p, const Tensor& src, const Tensor& dst);

// Every element of the bfloat16 tensor dst = value rounded to bfloat16 (through float32).
void fill_cpu_bf16(const IterPlan& p, const Tensor& dst, double value);

}  // namespace smyrf::detail
