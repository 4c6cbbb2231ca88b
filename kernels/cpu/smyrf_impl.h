// Internal: the SMYRF forward and backward drivers for one instruction set (see smyrf.h).
// Included by smyrf.cpp (scalar) and smyrf_avx2.cpp (avx2) after defining SMYRF_ISA_NS.
//
// Non-causal float32 clusters without pair term or dropout run the packed tiles
// (smyrf_tiles_impl.h: gathered rows, GEMM-shaped products, the forward's merge fused in); every
// other pair enumeration goes through block_forward / block_backward (attention_impl.h) with the
// cluster members as row lists.
#pragma once
#include <atomic>
#include <memory>

#include "kernels/cpu/attention_impl.h"
#include "kernels/cpu/attention_rows_impl.h"
#include "kernels/cpu/smyrf.h"
#include "kernels/cpu/smyrf_plan.h"
#include "kernels/cpu/smyrf_tiles_impl.h"

namespace smyrf::kernels::cpu::SMYRF_ISA_NS {

// Set semantics, non-causal: pair skipped in round r when the two shared a cluster earlier.
template <typename T>
struct SetSkip {
  const int32_t* qc;  // (R, Nq) cluster ids of this bh
  const int32_t* kc;  // (R, Nk)
  int64_t nq, nk, r;
  const int32_t* qi;
  const int32_t* kj;
  T operator()(int64_t a, int64_t b) const {
    const int64_t i = qi[a], j = kj[b];
    for (int64_t rr = 0; rr < r; ++rr)
      if (qc[rr * nq + i] == kc[rr * nk + j]) return neg_inf<T>();
    return T(0);
  }
};

// Set semantics, causal: local keys count in round 0 only; a window key is skipped when an earlier
// round's window of the same query held it.
template <typename T>
struct CausalSetSkip {
  const CausalWalker* w;
  const int64_t* start;
  const int64_t* len;
  int64_t r, block_start;
  const int32_t* kj;
  T operator()(int64_t, int64_t b) const {
    const int32_t j = kj[b];
    if (j >= block_start) return r > 0 ? neg_inf<T>() : T(0);
    for (int64_t rr = 0; rr < r; ++rr) {
      const int64_t pos = w->rank(rr, j);
      if (pos >= start[rr] && pos < start[rr] + len[rr]) return neg_inf<T>();
    }
    return T(0);
  }
};

// out, lse <- the logsumexp-weighted combination of (out, lse) and one round's (o_r, lse_r).
template <typename T>
inline void merge_round(T* out, T* lse, const T* o_r, T lse_r, int64_t dv) {
  if (lse_r == neg_inf<T>()) return;
  if (*lse == neg_inf<T>()) {
    std::copy(o_r, o_r + dv, out);
    *lse = lse_r;
    return;
  }
  const T m = std::max(*lse, lse_r);
  const T wa = std::exp(*lse - m), wb = std::exp(lse_r - m), s = wa + wb;
  const T ca = wa / s, cb = wb / s;
  for (int64_t c = 0; c < dv; ++c) out[c] = ca * out[c] + cb * o_r[c];
  *lse = m + std::log(s);
}

// The packed-tile kernels (smyrf_tiles_impl.h) exist in the AVX2 build for float only; they
// serve the clusters without pair term or dropout when the sizes fit one 128 x 128 tile.
#if defined(__AVX2__) && defined(__FMA__)
constexpr bool kHaveTiles = true;
template <typename T>
using TileScratchFor = std::conditional_t<std::is_same_v<T, float>, TileScratch, char>;
#else
constexpr bool kHaveTiles = false;
template <typename T>
using TileScratchFor = char;
struct RowPrefetch {
  void clear() {}
  void add(...) {}
  void finish() {}
};
inline void tile_forward_merge(...) {}
inline void prefetch_rows(...) {}
inline void tile_backward(...) {}
#endif

template <typename T>
bool use_tiles(const SmyrfParams& p) {
#if defined(__AVX2__) && defined(__FMA__)
  return std::is_same_v<T, float> && p.dropout_p == 0 && smyrf_tiles_ok(p.cq, p.ck, p.d, p.dv);
#else
  (void)p;
  return false;
#endif
}

// Causal: whether a block's local part (block x block, no pair term or dropout) runs as one tile.
template <typename T>
bool use_local_tiles(const SmyrfParams& p) {
#if defined(__AVX2__) && defined(__FMA__)
  return std::is_same_v<T, float> && p.dropout_p == 0 &&
         p.duplicates == SmyrfDuplicates::Multiset && smyrf_tiles_ok(p.cq, p.cq, p.d, p.dv);
#else
  (void)p;
  return false;
#endif
}

// Calls f(pair, drop) with compile-time no-op functors where the options allow.
template <typename T, typename PairT, typename F>
void with_drop(const SmyrfParams& p, int64_t bh, const int32_t* qi, const int32_t* kj,
               bool use_pair, const PairT& pair, F&& f) {
  if (p.dropout_p > 0) {
    HashDrop<T> drop{p.dropout_seed,
                     bh,
                     attention_dropout_threshold(p.dropout_p),
                     static_cast<T>(1.0 / (1.0 - p.dropout_p)),
                     qi,
                     kj};
    if (use_pair)
      f(pair, drop);
    else
      f(NoPair{}, drop);
  } else {
    if (use_pair)
      f(pair, NoDrop{});
    else
      f(NoPair{}, NoDrop{});
  }
}

// Tasks (bh, cluster) of one round go to the threads in blocks of kTaskBlock consecutive
// clusters, so that a thread knows its next cluster and prefetches its rows during the current
// one (tiles path).
constexpr int64_t kTaskBlock = 8;

// One round's tasks over the team, in blocks of kTaskBlock consecutive tasks handed out in claim
// order (as schedule(dynamic) over blocks), except that a thread claims its next block as it starts
// the last task of the current one: f(task, next) then always knows the task this thread runs
// next (-1 if none), and the first task of a block gets its rows prefetched like the others (1 in
// 8 did not; blocks of 64 measured 1.7% less backward CPU, at a worse balance). counter is shared
// and starts at 0; the caller puts the barrier after the round. Which thread runs a task never
// changes its result (tasks of a round write disjoint rows).
template <typename F>
void for_round_tasks(std::atomic<int64_t>& counter, int64_t tasks, F&& f) {
  const int64_t blocks = (tasks + kTaskBlock - 1) / kTaskBlock;
  int64_t blk = counter.fetch_add(1, std::memory_order_relaxed);
  while (blk < blocks) {
    const int64_t begin = blk * kTaskBlock, end = std::min(tasks, begin + kTaskBlock);
    int64_t nxt = blocks;
    for (int64_t task = begin; task < end; ++task) {
      if (task + 1 == end) nxt = counter.fetch_add(1, std::memory_order_relaxed);
      f(task, task + 1 < end ? task + 1 : (nxt < blocks ? nxt * kTaskBlock : int64_t(-1)));
    }
    blk = nxt;
  }
}

// The sorted query and key ranges of cluster task (bh, c) in round r; false when it is empty.
struct ClusterRange {
  int64_t bh = 0;
  const int32_t* qi = nullptr;
  const int32_t* kj = nullptr;
  int64_t nq = 0, nk = 0;
};
inline bool cluster_range(const SmyrfParams& p, const SmyrfPlan& plan, int64_t r, int64_t task,
                          ClusterRange* cr) {
  const int64_t nc = plan.n_chunks, R = p.n_hashes;
  const int64_t bh = task / nc, c = task % nc;
  const int64_t q0 = c * p.cq, q1 = std::min<int64_t>(q0 + p.cq, plan.q_real[bh]);
  const int64_t k0 = c * p.ck, k1 = std::min<int64_t>(k0 + p.ck, plan.k_real[bh]);
  if (q1 <= q0 || k1 <= k0) return false;
  cr->bh = bh;
  cr->qi = plan.q_order.data() + (bh * R + r) * p.nq + q0;
  cr->kj = plan.k_order.data() + (bh * R + r) * p.nk + k0;
  cr->nq = q1 - q0;
  cr->nk = k1 - k0;
  return true;
}

// The cluster tasks of the rounds, bh group by bh group: all rounds of a group run before the next
// group's, so a group's rows (q, k, v and out, or dq, dk, dv: ~8 MB a bh at N 8192, d 64) are
// still in the last-level cache when its next round gathers them in another order. With the
// rounds outermost, every round gathered all BH heads' rows from memory again. Groups hold
// enough bh for at least kGroupTasks clusters a round (load balance); each (group, round) ends
// with the caller's barrier, which keeps every row's rounds in order (deterministic merges and
// sums).
constexpr int64_t kGroupTasks = 64;
struct RoundGroups {
  int64_t per = 1, count = 1, rounds = 1, n_chunks = 1, bh = 1;
  std::unique_ptr<std::atomic<int64_t>[]> counters;
  RoundGroups(int64_t BH, int64_t chunks, int64_t R)
      : per(std::min<int64_t>(
            BH, std::max<int64_t>(1, (kGroupTasks + chunks - 1) / std::max<int64_t>(1, chunks)))),
        count((BH + per - 1) / per),
        rounds(R),
        n_chunks(chunks),
        bh(BH),
        counters(new std::atomic<int64_t>[count * R]) {
    for (int64_t i = 0; i < count * R; ++i) counters[i].store(0);
  }
  int64_t first(int64_t g) const { return g * per * n_chunks; }
  int64_t tasks(int64_t g) const { return (std::min(bh, (g + 1) * per) - g * per) * n_chunks; }
  std::atomic<int64_t>& counter(int64_t g, int64_t r) { return counters[g * rounds + r]; }
};

template <typename T>
void smyrf_forward_chunks(const SmyrfParams& p, const SmyrfPlan& plan, const T* q, const T* k,
                          const T* v, T* out, T* lse) {
  const int64_t BH = p.batch_heads, R = p.n_hashes, nq = p.nq, nk = p.nk, d = p.d, dv = p.dv;
  const T scale = static_cast<T>(p.scale);
  const bool set = p.duplicates == SmyrfDuplicates::Set;
  const bool tiles = use_tiles<T>(p);
  // One team for all rounds; the barrier closing each round keeps the merge in round order.
  RoundGroups rg(BH, plan.n_chunks, R);
#pragma omp parallel
  {
    Workspace<T> ws;
    ws.reserve(d, dv, 2 * kQueryBlock);  // o, lse: a packed tile holds up to 128 queries
    TileScratchFor<T> ts;
    RowPrefetch pf;
    for (int64_t g = 0; g < rg.count; ++g)
      for (int64_t r = 0; r < R; ++r) {
        const bool tile_round = tiles && !(set && r > 0);
        bool fetched = false;  // this task's rows were prefetched during the previous one
        for_round_tasks(rg.counter(g, r), rg.tasks(g), [&](int64_t t, int64_t nt) {
          const int64_t task = rg.first(g) + t, next = nt < 0 ? nt : rg.first(g) + nt;
          ClusterRange cr;
          if (!cluster_range(p, plan, r, task, &cr)) {
            fetched = false;
            return;
          }
          const int64_t bh = cr.bh;
          if constexpr (std::is_same_v<T, float> && kHaveTiles) {
            if (tile_round) {
              if (!fetched) prefetch_rows(out + bh * nq * dv, dv, cr.qi, cr.nq);
              ClusterRange nx;
              pf.clear();
              fetched = next >= 0 && cluster_range(p, plan, r, next, &nx);
              if (fetched) {
                pf.add(q + nx.bh * nq * d, d, nx.qi, nx.nq);
                pf.add(k + nx.bh * nk * d, d, nx.kj, nx.nk);
                pf.add(v + nx.bh * nk * dv, dv, nx.kj, nx.nk);
                pf.add(out + nx.bh * nq * dv, dv, nx.qi, nx.nq);
                pf.add(lse + nx.bh * nq, 1, nx.qi, nx.nq);
              }
              tile_forward_merge(q + bh * nq * d, k + bh * nk * d, v + bh * nk * dv, d, dv, cr.qi,
                                 cr.nq, cr.kj, cr.nk, scale, out + bh * nq * dv, lse + bh * nq, ts,
                                 &pf, r == 0);
              pf.finish();
              return;
            }
          }
          (void)next;
          for (int64_t sub = 0; sub < cr.nq; sub += kQueryBlock) {
            const int64_t n = std::min(kQueryBlock, cr.nq - sub);
            const int32_t* qi = cr.qi + sub;
            const int32_t* kj = cr.kj;
            SetSkip<T> skip{plan.q_cluster.data() + bh * R * nq,
                            plan.k_cluster.data() + bh * R * nk,
                            nq,
                            nk,
                            r,
                            qi,
                            kj};
            with_drop<T>(p, bh, qi, kj, set && r > 0, skip, [&](auto pair, auto drop) {
              block_forward(q + bh * nq * d, d, k + bh * nk * d, d, v + bh * nk * dv, dv, d, dv, qi,
                            n, kj, cr.nk, scale, pair, drop, ws.o.data(), ws.lse.data(), ws);
            });
            for (int64_t a = 0; a < n; ++a)
              merge_round(out + (bh * nq + qi[a]) * dv, lse + bh * nq + qi[a], ws.o.data() + a * dv,
                          ws.lse[a], dv);
          }
        });
#pragma omp barrier
      }
  }
}

template <typename T>
void smyrf_backward_chunks(const SmyrfParams& p, const SmyrfPlan& plan, const T* q, const T* k,
                           const T* v, const T* lse, const T* dsum, const T* dout, T* dq, T* dk,
                           T* dvv) {
  const int64_t BH = p.batch_heads, R = p.n_hashes, nq = p.nq, nk = p.nk, d = p.d, dv = p.dv;
  const T scale = static_cast<T>(p.scale);
  const bool set = p.duplicates == SmyrfDuplicates::Set;
  const bool tiles = use_tiles<T>(p);
  // Within a round the clusters partition queries and keys, so tasks write disjoint rows; the
  // barrier closing each round orders the rounds (deterministic sums, no atomics on the data).
  RoundGroups rg(BH, plan.n_chunks, R);
#pragma omp parallel
  {
    Workspace<T> ws;
    ws.reserve(d, dv, 1);
    TileScratchFor<T> ts;
    RowPrefetch pf;
    for (int64_t g = 0; g < rg.count; ++g)
      for (int64_t r = 0; r < R; ++r) {
        const bool tile_round = tiles && !(set && r > 0);
        bool fetched = false;
        for_round_tasks(rg.counter(g, r), rg.tasks(g), [&](int64_t t, int64_t nt) {
          const int64_t task = rg.first(g) + t, next = nt < 0 ? nt : rg.first(g) + nt;
          ClusterRange cr;
          if (!cluster_range(p, plan, r, task, &cr)) {
            fetched = false;
            return;
          }
          const int64_t bh = cr.bh;
          if constexpr (std::is_same_v<T, float> && kHaveTiles) {
            if (tile_round) {
              if (!fetched) {
                prefetch_rows(dq + bh * nq * d, d, cr.qi, cr.nq);
                prefetch_rows(dk + bh * nk * d, d, cr.kj, cr.nk);
                prefetch_rows(dvv + bh * nk * dv, dv, cr.kj, cr.nk);
              }
              ClusterRange nx;
              pf.clear();
              fetched = next >= 0 && cluster_range(p, plan, r, next, &nx);
              if (fetched) {
                pf.add(q + nx.bh * nq * d, d, nx.qi, nx.nq);
                pf.add(dout + nx.bh * nq * dv, dv, nx.qi, nx.nq);
                pf.add(k + nx.bh * nk * d, d, nx.kj, nx.nk);
                pf.add(v + nx.bh * nk * dv, dv, nx.kj, nx.nk);
                pf.add(lse + nx.bh * nq, 1, nx.qi, nx.nq);
                pf.add(dsum + nx.bh * nq, 1, nx.qi, nx.nq);
                pf.add(dq + nx.bh * nq * d, d, nx.qi, nx.nq);
                pf.add(dvv + nx.bh * nk * dv, dv, nx.kj, nx.nk);
                pf.add(dk + nx.bh * nk * d, d, nx.kj, nx.nk);
              }
              tile_backward(q + bh * nq * d, k + bh * nk * d, v + bh * nk * dv, d, dv, cr.qi, cr.nq,
                            cr.kj, cr.nk, scale, lse + bh * nq, dsum + bh * nq, dout + bh * nq * dv,
                            dq + bh * nq * d, dk + bh * nk * d, dvv + bh * nk * dv, ts, &pf,
                            r == 0);
              pf.finish();
              return;
            }
          }
          (void)next;
          const int32_t* qi = cr.qi;
          const int32_t* kj = cr.kj;
          SetSkip<T> skip{plan.q_cluster.data() + bh * R * nq,
                          plan.k_cluster.data() + bh * R * nk,
                          nq,
                          nk,
                          r,
                          qi,
                          kj};
          with_drop<T>(p, bh, qi, kj, set && r > 0, skip, [&](auto pair, auto drop) {
            block_backward(q + bh * nq * d, k + bh * nk * d, v + bh * nk * dv, d, dv, qi, cr.nq, kj,
                           cr.nk, scale, pair, drop, lse + bh * nq, dsum + bh * nq,
                           dout + bh * nq * dv, dq + bh * nq * d, dk + bh * nk * d,
                           dvv + bh * nk * dv, ws);
          });
        });
#pragma omp barrier
      }
  }
}

// Causal: one thread walks the blocks of a bh in order (the snapshots grow with the blocks). With
// backward == false it writes out/lse; with backward == true it accumulates dq, dk, dv.
//
// Within a block, each round visits the queries in the order of their windows' starts: the
// windows are ranges of the sorted past keys, so neighbours in that order share most of their key
// (and dk / dv) rows, which are still in cache from the previous query. In token order each query
// gathered ck rows from random places of k, v (and read-modify-wrote dk, dv), mostly from beyond
// L2. A query's rounds still merge in round order, so its output does not depend on the visiting
// order (nor on its partner, rows2_forward); the backward's sums into dk / dv rows only change
// their order.
template <typename T>
void smyrf_causal(const SmyrfParams& p, const SmyrfPlan& plan, const T* q, const T* k, const T* v,
                  T* out, T* lse_out, bool backward, const T* lse_in, const T* dsum, const T* dout,
                  T* dq, T* dk, T* dvv) {
  const int64_t BH = p.batch_heads, R = p.n_hashes, n = p.nq, d = p.d, dv = p.dv;
  const int64_t L = p.cq;
  const int64_t blocks = (n + L - 1) / L;
  const T scale = static_cast<T>(p.scale);
  const bool set = p.duplicates == SmyrfDuplicates::Set;
  // without pair term or dropout, neighbouring queries go two at a time (rows2_forward /
  // rows2_backward share the rows their windows have in common)
  const bool plain = !set && p.dropout_p == 0;
  // ... and (float with the packed tiles) a block's local part, the same keys in every round
  // (multiplicity n_hashes), runs once for the whole block as one causal tile with a log n_hashes
  // bias, merged like another round: every query's local keys are a prefix of the block's, and
  // per query and round they were ~17-25% of the per-row work (gpt-4096 / gpt-1024 shapes).
  const bool local_tiles = use_local_tiles<T>(p);
  const T log_rounds = static_cast<T>(std::log(static_cast<double>(R)));
#pragma omp parallel
  {
    std::unique_ptr<TileScratchFor<T>> ts;  // ~0.6 MB, made on first use (local_tiles)
    std::vector<int32_t> block_keys, block_rows;
    std::vector<T> lse_local;  // backward: lse - log n_hashes of the block's rows, by token
    std::vector<T> s_buf, dp_buf, o_r(dv);  // per-row scratch (row_forward/row_backward)
    std::vector<int32_t> keys;
    // the block's windows, (R, L) each, the queries to visit and their order
    std::vector<int64_t> start(R * L), len(R * L), q_start(R), q_len(R);
    std::vector<int32_t> active, order;
    // Two queries of block b (positions a0, a1 in it, a0's window starting first) in round r
    // through rows2_forward / rows2_backward: their windows overlap by all but the distance of
    // their starts, and the shorter local list is a prefix of the longer one.
    std::vector<int32_t> keys2[2];
    std::vector<T> s2[2], dp2[2], o2[2] = {std::vector<T>(dv), std::vector<T>(dv)};
    auto pair_rows = [&](const CausalWalker& w, int64_t bh, int64_t b, int64_t r, int64_t a0,
                         int64_t a1) {
      const int64_t i[2] = {b * L + a0, b * L + a1};
      const int64_t st0 = start[r * L + a0], st1 = start[r * L + a1];
      const int64_t ln = len[r * L + a0];  // the same for every query of the block
      int64_t nk[2];
      for (int t = 0; t < 2; ++t) {
        keys2[t].clear();
        nk[t] = causal_key_list(w, p, bh, r, i[t], t ? st1 : st0, ln, keys2[t], !local_tiles);
        if (static_cast<int64_t>(s2[t].size()) < nk[t]) s2[t].resize(nk[t]), dp2[t].resize(nk[t]);
      }
      SharedRun runs[2];
      int nruns = 0;
      if (st1 < st0 + ln) runs[nruns++] = SharedRun{st1 - st0, 0, st0 + ln - st1};
      const int64_t local = std::min(nk[0], nk[1]) - ln;
      if (local > 0) runs[nruns++] = SharedRun{ln, ln, local};
      const int32_t* kj[2] = {keys2[0].data(), keys2[1].data()};
      T* sp[2] = {s2[0].data(), s2[1].data()};
      if (backward) {
        const T lse2[2] = {lse_in[bh * n + i[0]], lse_in[bh * n + i[1]]};
        const T dsum2[2] = {dsum[bh * n + i[0]], dsum[bh * n + i[1]]};
        T* dpp[2] = {dp2[0].data(), dp2[1].data()};
        rows2_backward(q + bh * n * d, k + bh * n * d, v + bh * n * dv, d, dv, i, kj, nk, runs,
                       nruns, scale, lse2, dsum2, dout + bh * n * dv, dq + bh * n * d,
                       dk + bh * n * d, dvv + bh * n * dv, sp, dpp);
      } else {
        const T* qa[2] = {q + (bh * n + i[0]) * d, q + (bh * n + i[1]) * d};
        T* op[2] = {o2[0].data(), o2[1].data()};
        T lse_r[2];
        rows2_forward(qa, k + bh * n * d, v + bh * n * dv, d, dv, kj, nk, runs, nruns, scale, op,
                      lse_r, sp);
        for (int t = 0; t < 2; ++t)
          merge_round(out + (bh * n + i[t]) * dv, lse_out + bh * n + i[t], op[t], lse_r[t], dv);
      }
    };
    // The local part of block [s0, e0) of bh as one tile (local_tiles): rows are the queries with
    // a real key in [s0, i] (and, backward, a finite lse), keys the block's real keys; the
    // forward writes out / lse (first: the rounds' windows merge into it after), the backward adds
    // into dq, dk, dv with lse - log n_hashes (the keys' multiplicity).
    auto local_part = [&](int64_t bh, int64_t s0, int64_t e0, const uint8_t* qm) {
      if constexpr (std::is_same_v<T, float> && kHaveTiles) {
        const uint8_t* km = p.key_mask ? p.key_mask + (bh / p.heads) * n : nullptr;
        block_keys.clear();
        block_rows.clear();
        for (int64_t j = s0; j < e0; ++j) {
          if (!km || km[j]) block_keys.push_back(static_cast<int32_t>(j));
          if (block_keys.empty() || (qm && !qm[j])) continue;
          if (backward && lse_in[bh * n + j] == neg_inf<T>()) continue;
          block_rows.push_back(static_cast<int32_t>(j));
        }
        if (block_rows.empty()) return;
        const int64_t nr = static_cast<int64_t>(block_rows.size());
        const int64_t nkeys = static_cast<int64_t>(block_keys.size());
        const TileCausal causal{true, 0, block_keys.data(), nkeys};
        if (!ts) ts = std::make_unique<TileScratchFor<T>>();
        const T* qb = q + bh * n * d;
        const T* kb = k + bh * n * d;
        const T* vb = v + bh * n * dv;
        if (backward) {
          if (static_cast<int64_t>(lse_local.size()) < n) lse_local.resize(n);
          for (const int32_t i : block_rows) lse_local[i] = lse_in[bh * n + i] - log_rounds;
          tile_backward(qb, kb, vb, d, dv, block_rows.data(), nr, block_keys.data(), nkeys, scale,
                        lse_local.data(), dsum + bh * n, dout + bh * n * dv, dq + bh * n * d,
                        dk + bh * n * d, dvv + bh * n * dv, *ts, nullptr, false, causal);
        } else {
          tile_forward_merge(qb, kb, vb, d, dv, block_rows.data(), nr, block_keys.data(), nkeys,
                             scale, out + bh * n * dv, lse_out + bh * n, *ts, nullptr, true,
                             causal);
          for (const int32_t i : block_rows) lse_out[bh * n + i] += log_rounds;
        }
      } else {
        (void)bh, (void)s0, (void)e0, (void)qm;
      }
    };
#pragma omp for schedule(dynamic)
    for (int64_t bh = 0; bh < BH; ++bh) {
      const uint8_t* qm = p.query_mask ? p.query_mask + (bh / p.heads) * n : nullptr;
      const T* qb = q + bh * n * d;
      const T* kb = k + bh * n * d;
      const T* vb = v + bh * n * dv;
      CausalWalker w(p, plan, bh);
      for (int64_t b = 0; b < blocks; ++b) {
        const int64_t s = b * L, e = std::min(n, s + L);
        active.clear();
        for (int64_t i = s; i < e; ++i) {
          if (!backward) {
            std::fill(out + (bh * n + i) * dv, out + (bh * n + i + 1) * dv, T(0));
            lse_out[bh * n + i] = neg_inf<T>();
          }
          if (qm && !qm[i]) continue;
          if (backward && lse_in[bh * n + i] == neg_inf<T>()) continue;
          active.push_back(static_cast<int32_t>(i - s));
          for (int64_t r = 0; r < R; ++r)
            w.window(r, i, &start[r * L + (i - s)], &len[r * L + (i - s)]);
        }
        if (local_tiles) local_part(bh, s, e, qm);
        for (int64_t r = 0; r < R; ++r) {
          order = active;
          const int64_t* st = start.data() + r * L;
          std::stable_sort(order.begin(), order.end(),
                           [&](int32_t x, int32_t y) { return st[x] < st[y]; });
          for (size_t t = 0; t < order.size();) {
            if (plain && t + 1 < order.size()) {  // two neighbours in window order at once
              pair_rows(w, bh, b, r, order[t], order[t + 1]);
              t += 2;
              continue;
            }
            const int64_t a = order[t++];
            const int64_t i = s + a;
            for (int64_t rr = 0; rr < R; ++rr)
              q_start[rr] = start[rr * L + a], q_len[rr] = len[rr * L + a];
            const int32_t qi = static_cast<int32_t>(i);
            keys.clear();
            const int64_t nk =
                causal_key_list(w, p, bh, r, i, q_start[r], q_len[r], keys, !local_tiles);
            CausalSetSkip<T> skip{&w, q_start.data(), q_len.data(), r, s, keys.data()};
            if (static_cast<int64_t>(s_buf.size()) < nk) s_buf.resize(nk), dp_buf.resize(nk);
            with_drop<T>(p, bh, &qi, keys.data(), set, skip, [&](auto pair, auto drop) {
              if (backward) {
                row_backward(qb, kb, vb, d, dv, i, keys.data(), nk, scale, pair, drop,
                             lse_in[bh * n + i], dsum[bh * n + i], dout + bh * n * dv,
                             dq + bh * n * d, dk + bh * n * d, dvv + bh * n * dv, s_buf.data(),
                             dp_buf.data());
              } else {
                T lse_r;
                row_forward(qb + i * d, kb, vb, d, dv, keys.data(), nk, scale, pair, drop,
                            o_r.data(), &lse_r, s_buf.data());
                merge_round(out + (bh * n + i) * dv, lse_out + bh * n + i, o_r.data(), lse_r, dv);
              }
            });
          }
        }
        w.add_block(b);
      }
    }
  }
}

// x[0..n) = value, in 64K-element blocks over the team: the outputs are fresh allocations, so this
// is also where their pages are first touched (faulted and zeroed by the kernel), in parallel.
template <typename T>
void fill_parallel(T* x, int64_t n, T value) {
  constexpr int64_t kBlock = int64_t(1) << 16;
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < n; b += kBlock) std::fill(x + b, x + std::min(n, b + kBlock), value);
}

// The tiles path's round 0 writes (not merges or adds) every row its clusters hold, so the
// outputs need no clearing pass; this sets the rows no round-0 cluster holds: in sorted order, the
// queries from position min(q_real, (key chunks) * Cq) on (padding, and the real queries of chunks
// without keys), or with keys == true the keys from min(k_real, (query chunks) * Ck) on. Row
// idx gets x[idx * w .. + w) = 0 and, when lse is given, lse[idx] = -inf.
template <typename T>
void clear_uncovered(const SmyrfParams& p, const SmyrfPlan& plan, bool keys, T* x, int64_t w,
                     T* lse) {
  const int64_t n = keys ? p.nk : p.nq;
#pragma omp parallel for schedule(static)
  for (int64_t bh = 0; bh < p.batch_heads; ++bh) {
    const int64_t qr = plan.q_real[bh], kr = plan.k_real[bh];
    const int64_t covered = keys ? std::min(kr, (qr + p.cq - 1) / p.cq * p.ck)
                                 : std::min(qr, (kr + p.ck - 1) / p.ck * p.cq);
    const int32_t* order = (keys ? plan.k_order.data() : plan.q_order.data()) + bh * p.n_hashes * n;
    for (int64_t pos = covered; pos < n; ++pos) {
      const int64_t i = order[pos];
      std::fill(x + (bh * n + i) * w, x + (bh * n + i + 1) * w, T(0));
      if (lse) lse[bh * n + i] = neg_inf<T>();
    }
  }
}

template <typename T>
void smyrf_forward_impl(const SmyrfParams& p, const SmyrfPlan& plan, const T* q, const T* k,
                        const T* v, T* out, T* lse) {
  if (p.causal) {
    smyrf_causal<T>(p, plan, q, k, v, out, lse, false, nullptr, nullptr, nullptr, nullptr, nullptr,
                    nullptr);
    return;
  }
  if (use_tiles<T>(p)) {
    clear_uncovered(p, plan, false, out, p.dv, lse);
  } else {
    fill_parallel(out, p.batch_heads * p.nq * p.dv, T(0));
    fill_parallel(lse, p.batch_heads * p.nq, neg_inf<T>());
  }
  smyrf_forward_chunks<T>(p, plan, q, k, v, out, lse);
}

template <typename T>
void smyrf_backward_impl(const SmyrfParams& p, const SmyrfPlan& plan, const T* q, const T* k,
                         const T* v, const T* out, const T* lse, const T* dout, T* dq, T* dk,
                         T* dv) {
  HostArray<T> dsum(static_cast<size_t>(p.batch_heads * p.nq));  // every entry written below
  row_dots(dout, out, p.batch_heads * p.nq, p.dv, dsum.data());
  if (!p.causal && use_tiles<T>(p)) {
    clear_uncovered(p, plan, false, dq, p.d, static_cast<T*>(nullptr));
    clear_uncovered(p, plan, true, dk, p.d, static_cast<T*>(nullptr));
    clear_uncovered(p, plan, true, dv, p.dv, static_cast<T*>(nullptr));
  } else {
    fill_parallel(dq, p.batch_heads * p.nq * p.d, T(0));
    fill_parallel(dk, p.batch_heads * p.nk * p.d, T(0));
    fill_parallel(dv, p.batch_heads * p.nk * p.dv, T(0));
  }
  if (p.causal)
    smyrf_causal<T>(p, plan, q, k, v, nullptr, nullptr, true, lse, dsum.data(), dout, dq, dk, dv);
  else
    smyrf_backward_chunks<T>(p, plan, q, k, v, lse, dsum.data(), dout, dq, dk, dv);
}

}  // namespace smyrf::kernels::cpu::SMYRF_ISA_NS
