// smyrf_pairs: the plan's attended pairs with their multiplicity (see smyrf_pairs.h).
//
// Built query by query: the keys a query meets in every round are collected, sorted and counted
// (M_ij = the number of rounds that pair i with j). In causal mode the window keys come from the
// same CausalWalker the kernels use, and the local keys [block start, i] (met in every round, so
// M = n_hashes) are appended after them: they are all later than any window key, which lies before
// the block, so each row stays sorted. The code is independent of smyrf_multiplicity, which the
// tests use as its oracle.
#include "kernels/cpu/smyrf_pairs.h"

#include <algorithm>

#include "kernels/cpu/smyrf_plan.h"

namespace smyrf::kernels::cpu {

namespace {

// One bh's query-major rows: per query (in order) its pairs appended to keys / mult, and the
// number of pairs of each query in counts[i].
struct RowsOfBh {
  std::vector<int64_t> counts;
  std::vector<int32_t> keys;
  std::vector<int32_t> mult;
};

// Sorts the round keys `met` and appends each distinct key with its count.
void append_counted(std::vector<int32_t>& met, RowsOfBh& out) {
  std::sort(met.begin(), met.end());
  for (size_t a = 0; a < met.size();) {
    size_t b = a + 1;
    while (b < met.size() && met[b] == met[a]) ++b;
    out.keys.push_back(met[a]);
    out.mult.push_back(static_cast<int32_t>(b - a));
    a = b;
  }
}

RowsOfBh causal_rows(const SmyrfParams& p, const SmyrfPlan& plan, int64_t bh) {
  RowsOfBh rows;
  rows.counts.assign(static_cast<size_t>(p.nq), 0);
  const uint8_t* qm = p.query_mask ? p.query_mask + (bh / p.heads) * p.nq : nullptr;
  const uint8_t* km = p.key_mask ? p.key_mask + (bh / p.heads) * p.nk : nullptr;
  CausalWalker w(p, plan, bh);
  std::vector<int32_t> met;
  for (int64_t b = 0; b * p.cq < p.nq; ++b) {
    const int64_t s = b * p.cq;
    for (int64_t i = s; i < std::min(p.nq, s + p.cq); ++i) {
      if (qm && !qm[i]) continue;
      const size_t before = rows.keys.size();
      met.clear();
      for (int64_t r = 0; r < p.n_hashes; ++r) {
        int64_t start, len;
        w.window(r, i, &start, &len);
        causal_key_list(w, p, bh, r, i, start, len, met, /*with_local=*/false);
      }
      append_counted(met, rows);
      for (int64_t j = s; j <= i; ++j)
        if (!km || km[j]) {
          rows.keys.push_back(static_cast<int32_t>(j));
          rows.mult.push_back(static_cast<int32_t>(p.n_hashes));
        }
      rows.counts[i] = static_cast<int64_t>(rows.keys.size() - before);
    }
    w.add_block(b);
  }
  return rows;
}

RowsOfBh clustered_rows(const SmyrfParams& p, const SmyrfPlan& plan, int64_t bh) {
  RowsOfBh rows;
  rows.counts.assign(static_cast<size_t>(p.nq), 0);
  const int64_t R = p.n_hashes;
  // position of each query in each round's sorted order (-1: padding, never in a chunk)
  std::vector<int64_t> pos(static_cast<size_t>(R * p.nq), -1);
  for (int64_t r = 0; r < R; ++r) {
    const int32_t* qo = plan.q_order.data() + (bh * R + r) * p.nq;
    for (int64_t a = 0; a < plan.q_real[bh]; ++a) pos[r * p.nq + qo[a]] = a;
  }
  std::vector<int32_t> met;
  for (int64_t i = 0; i < p.nq; ++i) {
    met.clear();
    for (int64_t r = 0; r < R; ++r) {
      const int64_t a = pos[r * p.nq + i];
      if (a < 0) continue;
      const int32_t* ko = plan.k_order.data() + (bh * R + r) * p.nk;
      const int64_t c = a / p.cq, k0 = c * p.ck, k1 = std::min<int64_t>(k0 + p.ck, plan.k_real[bh]);
      met.insert(met.end(), ko + std::min(k0, k1), ko + k1);
    }
    const size_t before = rows.keys.size();
    append_counted(met, rows);
    rows.counts[i] = static_cast<int64_t>(rows.keys.size() - before);
  }
  return rows;
}

}  // namespace

SmyrfPairs smyrf_pairs(const SmyrfParams& p, const SmyrfPlan& plan) {
  smyrf_check_plan(p, plan);
  const int64_t BH = p.batch_heads, nq = p.nq, nk = p.nk;
  std::vector<RowsOfBh> per_bh(static_cast<size_t>(BH));
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t bh = 0; bh < BH; ++bh)
    per_bh[bh] = plan.causal ? causal_rows(p, plan, bh) : clustered_rows(p, plan, bh);

  SmyrfPairs out;
  out.batch_heads = BH, out.nq = nq, out.nk = nk;
  out.q_offsets.assign(static_cast<size_t>(BH * nq + 1), 0);
  int64_t total = 0;
  for (int64_t bh = 0; bh < BH; ++bh)
    for (int64_t i = 0; i < nq; ++i) {
      out.q_offsets[bh * nq + i] = total;
      total += per_bh[bh].counts[i];
    }
  out.q_offsets[BH * nq] = total;
  out.q_keys.reserve(static_cast<size_t>(total));
  out.q_mult.reserve(static_cast<size_t>(total));
  const bool set = p.duplicates == SmyrfDuplicates::Set;
  for (const RowsOfBh& rows : per_bh) {
    out.q_keys.insert(out.q_keys.end(), rows.keys.begin(), rows.keys.end());
    for (int32_t m : rows.mult) out.q_mult.push_back(set ? 1 : m);
  }
  per_bh.clear();

  // key-major view: a counting sort of each bh's pairs by key, queries kept ascending
  out.k_offsets.assign(static_cast<size_t>(BH * nk + 1), 0);
  for (int64_t bh = 0; bh < BH; ++bh)
    for (int64_t e = out.q_offsets[bh * nq]; e < out.q_offsets[(bh + 1) * nq]; ++e)
      ++out.k_offsets[bh * nk + out.q_keys[e] + 1];
  for (int64_t r = 0; r < BH * nk; ++r) out.k_offsets[r + 1] += out.k_offsets[r];
  out.k_queries.resize(static_cast<size_t>(total));
  out.k_mult.resize(static_cast<size_t>(total));
  std::vector<int64_t> next(out.k_offsets.begin(), out.k_offsets.end() - 1);
  for (int64_t bh = 0; bh < BH; ++bh)
    for (int64_t i = 0; i < nq; ++i)
      for (int64_t e = out.q_offsets[bh * nq + i]; e < out.q_offsets[bh * nq + i + 1]; ++e) {
        const int64_t at = next[bh * nk + out.q_keys[e]]++;
        out.k_queries[at] = static_cast<int32_t>(i);
        out.k_mult[at] = out.q_mult[e];
      }
  return out;
}

}  // namespace smyrf::kernels::cpu
