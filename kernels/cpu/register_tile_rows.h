// How the 6-row register micro-kernel of gemm_avx2.cpp's small path cuts M rows into tiles: full
// 6-row tiles, then the last 7-9 rows as two tiles (4 + 3, 4 + 4, 5 + 4) rather than a full tile
// and one of 1-3 rows.
//
// Why: a tile of r rows keeps 2r accumulators; with 1-3 rows (2-6 accumulators) there are too
// few independent FMAs to cover the FMA latency, and such a tile takes about as long as one of 4
// rows. Measured on the 2-vCPU EPYC (Zen 5), one thread: 128 rows as 21 x 6 + 2 took 0.8 us longer
// than 126 rows (128x128 by 128x128); as 20 x 6 + 4 + 4 about the 2 rows' share. (SMYRF's
// attention tiles, smyrf_tiles_impl.h's tile_gemm, measured even with this cut at clusters of 32
// and 128 and keep the plain one.)
#pragma once
#include <cstdint>

namespace smyrf::kernels::cpu {

constexpr int64_t kRegisterTileRows = 6;

// The rows [0, result) run as full 6-row tiles.
inline int64_t full_register_tile_rows(int64_t M) {
  const int64_t rem = M % kRegisterTileRows;
  return M > kRegisterTileRows && rem >= 1 && rem <= 3 ? M - kRegisterTileRows - rem : M - rem;
}

// The height of the next tile when `left` (1-9) rows remain past the full tiles.
inline int64_t edge_register_tile_rows(int64_t left) {
  return left > kRegisterTileRows ? (left + 1) / 2 : left;
}

}  // namespace smyrf::kernels::cpu
