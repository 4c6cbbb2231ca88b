// Which CPU kernel variant runs: decided once, at first use, from cpuid and SMYRF_CPU.
//
// SMYRF_CPU=scalar forces the scalar reference kernels everywhere (for comparison and debugging);
// SMYRF_CPU=avx2 or unset uses AVX2+FMA when the processor and the build support it.
#pragma once

namespace smyrf::kernels::cpu {

enum class Isa { Scalar, Avx2 };

// The variant in force for this process (cached after the first call).
Isa active_isa();

// Tests use this to run both variants in one process; it overrides the cached choice.
// Requesting Avx2 on a machine without it keeps Scalar. Returns the previous value.
Isa set_active_isa(Isa isa);

bool cpu_has_avx2_fma();
const char* isa_name(Isa isa);

}  // namespace smyrf::kernels::cpu
