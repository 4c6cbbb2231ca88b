// Internal to kernels/cpu/smyrf*.cpp: the sorted past-key snapshots of causal SMYRF (see the
// causal design in smyrf.h), shared by forward, backward and the multiplicity diagnostic so the
// three enumerate exactly the same pairs.
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/cpu/smyrf.h"

namespace smyrf::kernels::cpu {

// For rows x[0..n) (length d): norms[i] = |x_i|^2 and dots[r * n + i] = dirs[r] . x_i (the first
// d entries of each direction), each a serial double sum over c, product rounded before the add,
// exactly as a plain loop computes it, whatever vector path runs (the plan's hashes, and so the
// cluster order, must not depend on it). Declared here for the tests.
template <typename T>
void smyrf_norms_and_dots(const T* x, int64_t n, int64_t d,
                          const std::vector<std::vector<double>>& dirs, double* norms,
                          double* dots);

// Throws std::invalid_argument when `plan` was made for other parameters (BH, rounds, sizes,
// causal) than p, or p itself is invalid (smyrf_check).
void smyrf_check_plan(const SmyrfParams& p, const SmyrfPlan& plan);

class CausalWalker {
 public:
  // Starts with an empty past (before block 0) for row bh of a causal plan.
  CausalWalker(const SmyrfParams& p, const SmyrfPlan& plan, int64_t bh);

  // Window of query i in round r over the current snapshot: positions [*start, *start + *len).
  void window(int64_t r, int64_t i, int64_t* start, int64_t* len) const;
  // Real past keys of round r in (hash, index) order.
  const int32_t* snapshot(int64_t r) const { return sorted_[r].data(); }
  // Position of key j in snapshot(r); only meaningful for keys in the snapshot.
  int64_t rank(int64_t r, int32_t j) const { return rank_[r][j]; }
  // Adds the real keys of block b (tokens [b L, (b + 1) L)) to every round's snapshot.
  void add_block(int64_t b);

 private:
  int64_t rounds_, nq_, nk_, block_, window_;
  const double* q_hash_;  // (R, Nq) of this bh
  const double* k_hash_;  // (R, Nk)
  const uint8_t* key_mask_;
  std::vector<std::vector<int32_t>> sorted_, rank_;
  std::vector<int32_t> scratch_, fresh_;
};

// Appends to keys the key list of query i in round r: the window, then (with_local) the real
// local keys [block start, i]. Returns the number appended.
int64_t causal_key_list(const CausalWalker& w, const SmyrfParams& p, int64_t bh, int64_t r,
                        int64_t i, int64_t start, int64_t len, std::vector<int32_t>& keys,
                        bool with_local = true);

}  // namespace smyrf::kernels::cpu
