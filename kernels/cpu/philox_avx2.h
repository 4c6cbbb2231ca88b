// AVX2 Philox4x32-10 (kernels/cpu/philox.h) for sixteen consecutive counters at once: the same
// 32-bit arithmetic lane by lane, so the same words as philox4x32 bit for bit (the CPU generator,
// its CUDA twin and the backward's recomputations must agree).
//
// Why: the random fills (dropout's mask, rand, randn, bernoulli) drew one block of four words at
// a time through two 64-bit multiplies per round; eight blocks a vector take four 32 x 32 -> 64-bit
// vector multiplies per round (vpmuludq on the even lanes, then on the odd ones).
#pragma once
#include <cstdint>

#include "kernels/cpu/philox.h"

namespace smyrf::kernels::cpu::avx2 {
// words[4 k + l] = philox4x32(lo32(c), hi32(c), 0, 0, seed).v[l] for c = counter + k, k = 0..15
// (random_fill's block counters), l = 0..3.
void philox4x32_blocks16(uint64_t seed, uint64_t counter, uint32_t words[64]);
}  // namespace smyrf::kernels::cpu::avx2
