// smyrf_pairs: the plan's attended pairs with their multiplicity (see smyrf_pairs.h).
//
// Built query by query: the keys a query meets in every round are counted (M_ij = the number of
// rounds that pair i with j). In causal mode the window keys come from the same CausalWalker the
// kernels use, and the local keys [block start, i] (met in every round, so M = n_hashes) are
// appended after them. The code is independent of smyrf_multiplicity, which the tests use as its
// oracle.
#include "kernels/cpu/smyrf_pairs.h"

#include <algorithm>

#include "kernels/cpu/smyrf_plan.h"

namespace smyrf::kernels::cpu {

namespace {

// One bh's query-major rows: per query (in order) its pairs appended to keys / mult (size() of
// them, in arrays sized for the most a row can hold: host_memory's cached pages, not a growing
// vector's fresh ones, which faulted on every call), and the number of pairs of each query in
// counts[i].
struct RowsOfBh {
  std::vector<int64_t> counts;
  HostArray<int32_t> keys, mult;
  size_t n = 0;
  RowsOfBh() = default;
  RowsOfBh(int64_t queries, int64_t most_per_query)
      : counts(static_cast<size_t>(queries), 0),
        keys(static_cast<size_t>(queries * most_per_query)),
        mult(static_cast<size_t>(queries * most_per_query)) {}
  size_t size() const { return n; }
  void push(int32_t key, int32_t m) {
    keys[n] = key;
    mult[n] = m;
    ++n;
  }
};

// Counts the keys met in a query's rounds: add() each key of each round, then flush() appends
// every distinct key once, in first-met order, with its count, and resets the counters of only
// the keys it touched (O(keys met), no sort: sorting each query's keys took 90% of the build).
class KeyCounter {
 public:
  explicit KeyCounter(int64_t nk) : count_(static_cast<size_t>(nk), 0) {}
  void add(int32_t j) {
    if (count_[j]++ == 0) met_.push_back(j);
  }
  template <typename It>
  void add(It first, It last) {
    for (; first != last; ++first) add(*first);
  }
  void flush(RowsOfBh& out) {
    for (int32_t j : met_) {
      out.push(j, count_[j]);
      count_[j] = 0;
    }
    met_.clear();
  }

 private:
  std::vector<int32_t> count_, met_;
};

RowsOfBh causal_rows(const SmyrfParams& p, const SmyrfPlan& plan, int64_t bh) {
  // at most n_hashes windows and a block a query
  RowsOfBh rows(p.nq, p.n_hashes * std::min(p.ck, p.nk) + p.cq);
  const uint8_t* qm = p.query_mask ? p.query_mask + (bh / p.heads) * p.nq : nullptr;
  const uint8_t* km = p.key_mask ? p.key_mask + (bh / p.heads) * p.nk : nullptr;
  CausalWalker w(p, plan, bh);
  KeyCounter counter(p.nk);
  for (int64_t b = 0; b * p.cq < p.nq; ++b) {
    const int64_t s = b * p.cq;
    for (int64_t i = s; i < std::min(p.nq, s + p.cq); ++i) {
      if (qm && !qm[i]) continue;
      const size_t before = rows.size();
      for (int64_t r = 0; r < p.n_hashes; ++r) {
        int64_t start, len;
        w.window(r, i, &start, &len);
        counter.add(w.snapshot(r) + start, w.snapshot(r) + start + len);
      }
      counter.flush(rows);
      for (int64_t j = s; j <= i; ++j)
        if (!km || km[j]) rows.push(static_cast<int32_t>(j), static_cast<int32_t>(p.n_hashes));
      rows.counts[i] = static_cast<int64_t>(rows.size() - before);
    }
    w.add_block(b);
  }
  return rows;
}

RowsOfBh clustered_rows(const SmyrfParams& p, const SmyrfPlan& plan, int64_t bh) {
  const int64_t R = p.n_hashes;
  RowsOfBh rows(p.nq, R * std::min(p.ck, p.nk));  // at most a key chunk a round
  // position of each query in each round's sorted order (-1: padding, never in a chunk)
  std::vector<int64_t> pos(static_cast<size_t>(R * p.nq), -1);
  for (int64_t r = 0; r < R; ++r) {
    const int32_t* qo = plan.q_order.data() + (bh * R + r) * p.nq;
    for (int64_t a = 0; a < plan.q_real[bh]; ++a) pos[r * p.nq + qo[a]] = a;
  }
  KeyCounter counter(p.nk);
  for (int64_t i = 0; i < p.nq; ++i) {
    for (int64_t r = 0; r < R; ++r) {
      const int64_t a = pos[r * p.nq + i];
      if (a < 0) continue;
      const int32_t* ko = plan.k_order.data() + (bh * R + r) * p.nk;
      const int64_t c = a / p.cq, k0 = c * p.ck, k1 = std::min<int64_t>(k0 + p.ck, plan.k_real[bh]);
      counter.add(ko + std::min(k0, k1), ko + k1);
    }
    const size_t before = rows.size();
    counter.flush(rows);
    rows.counts[i] = static_cast<int64_t>(rows.size() - before);
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
  out.q_offsets.resize(static_cast<size_t>(BH * nq + 1));
  int64_t total = 0;
  for (int64_t bh = 0; bh < BH; ++bh)
    for (int64_t i = 0; i < nq; ++i) {
      out.q_offsets[bh * nq + i] = total;
      total += per_bh[bh].counts[i];
    }
  out.q_offsets[BH * nq] = total;
  out.q_keys.resize(static_cast<size_t>(total));
  out.q_mult.resize(static_cast<size_t>(total));
  out.k_offsets.resize(static_cast<size_t>(BH * nk + 1));
  out.k_offsets[BH * nk] = total;
  out.k_queries.resize(static_cast<size_t>(total));
  out.k_mult.resize(static_cast<size_t>(total));
  const bool set = p.duplicates == SmyrfDuplicates::Set;
  // Each bh owns the same span [q_offsets[bh nq], q_offsets[(bh + 1) nq]) of both views, so the
  // bh run independently. The key-major view is a counting sort of the bh's pairs by key, queries
  // kept ascending.
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t bh = 0; bh < BH; ++bh) {
    RowsOfBh& rows = per_bh[bh];
    const int64_t base = out.q_offsets[bh * nq], n = static_cast<int64_t>(rows.size());
    std::copy(rows.keys.data(), rows.keys.data() + n, out.q_keys.data() + base);
    for (int64_t e = 0; e < n; ++e) out.q_mult[base + e] = set ? 1 : rows.mult[e];
    int64_t* koff = out.k_offsets.data() + bh * nk;
    std::vector<int64_t> next(static_cast<size_t>(nk) + 1, 0);
    for (int64_t e = 0; e < n; ++e) ++next[rows.keys[e] + 1];
    for (int64_t j = 0; j < nk; ++j) next[j + 1] += next[j];
    for (int64_t j = 0; j < nk; ++j) koff[j] = base + next[j];
    int64_t e = base;
    for (int64_t i = 0; i < nq; ++i)
      for (int64_t c = 0; c < rows.counts[i]; ++c, ++e) {
        const int64_t at = base + next[out.q_keys[e]]++;
        out.k_queries[at] = static_cast<int32_t>(i);
        out.k_mult[at] = out.q_mult[e];
      }
    rows = RowsOfBh();  // free as we go
  }
  return out;
}

}  // namespace smyrf::kernels::cpu
