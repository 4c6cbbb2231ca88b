// SMYRF clustering: argument checks, hash directions, XBOX+ hashing and sorting into plans, and
// the causal snapshots.
#include "kernels/cpu/smyrf_plan.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <sstream>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

#include "kernels/cpu/philox.h"

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>

#include "kernels/cpu/transpose_avx2.h"
#endif

namespace smyrf::kernels::cpu {
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

[[noreturn]] void fail(const SmyrfParams& p, const std::string& what, const std::string& hint) {
  std::ostringstream os;
  os << "[smyrf_attention] " << what << ": BH=" << p.batch_heads << " heads=" << p.heads
     << " Nq=" << p.nq << " Nk=" << p.nk << " d=" << p.d << " dv=" << p.dv
     << " n_hashes=" << p.n_hashes << " Cq=" << p.cq << " Ck=" << p.ck
     << (p.causal ? " causal" : "");
  if (!hint.empty()) os << "; hint: " << hint;
  throw std::invalid_argument(os.str());
}

template <typename T>
double dot(const double* a, const T* x, int64_t d) {
  double acc = 0;
  for (int64_t c = 0; c < d; ++c) acc += a[c] * static_cast<double>(x[c]);
  return acc;
}

template <typename T>
double sq_norm(const T* x, int64_t d) {
  double acc = 0;
  for (int64_t c = 0; c < d; ++c) acc += static_cast<double>(x[c]) * static_cast<double>(x[c]);
  return acc;
}

// Order-preserving map of a double onto uint64 (negative numbers flipped whole, positive ones get
// the sign bit): a < b as doubles iff key(a) < key(b) as integers, for non-NaN values; -0.0 is
// first turned into +0.0 so that equal hashes stay ties.
inline uint64_t sort_key(double x) {
  x += 0.0;  // -0.0 + 0.0 = +0.0 (no fast-math here)
  uint64_t u;
  std::memcpy(&u, &x, sizeof u);
  return (u >> 63) ? ~u : (u | (uint64_t(1) << 63));
}

// Stable sort of (key, index) items by key (radix_sort below). Items enter in index order, so ties
// stay in index order.
struct RadixScratch {
  std::vector<uint64_t> k0, k1;
  std::vector<int32_t> i0, i1;
  std::vector<uint32_t> bucket, start;  // bucket_sort
};

// Sorts by the high 32 bits of the keys (3 digits of 11 bits, counted in one pass), then puts the
// rare runs of equal high halves in full-key order by a stable insertion sort: the same order as a
// stable sort by the whole key, in half the passes of a 64-bit LSD sort.
void radix_sort(RadixScratch& rs, int64_t n) {
  constexpr int kBits = 11, kDigits = 3, kBuckets = 1 << kBits;
  rs.k1.resize(n);
  rs.i1.resize(n);
  std::vector<uint32_t> count(kDigits * kBuckets, 0u);
  for (int64_t t = 0; t < n; ++t) {
    const uint32_t hi = static_cast<uint32_t>(rs.k0[t] >> 32);
    ++count[hi & (kBuckets - 1)];
    ++count[kBuckets + ((hi >> kBits) & (kBuckets - 1))];
    ++count[2 * kBuckets + (hi >> (2 * kBits))];
  }
  for (int digit = 0; digit < kDigits; ++digit) {
    uint32_t* c = count.data() + digit * kBuckets;
    const int shift = 32 + digit * kBits;
    if (n == 0 || c[(rs.k0[0] >> shift) & (kBuckets - 1)] == n) continue;  // all agree
    uint32_t sum = 0;
    for (int b = 0; b < kBuckets; ++b) {
      const uint32_t c0 = c[b];
      c[b] = sum;
      sum += c0;
    }
    for (int64_t t = 0; t < n; ++t) {
      const uint32_t pos = c[(rs.k0[t] >> shift) & (kBuckets - 1)]++;
      rs.k1[pos] = rs.k0[t];
      rs.i1[pos] = rs.i0[t];
    }
    rs.k0.swap(rs.k1);
    rs.i0.swap(rs.i1);
  }
  for (int64_t a = 0; a < n;) {
    int64_t b = a + 1;
    while (b < n && (rs.k0[b] >> 32) == (rs.k0[a] >> 32)) ++b;
    for (int64_t t = a + 1; t < b; ++t) {  // stable: moves an item only past larger keys
      const uint64_t key = rs.k0[t];
      const int32_t idx = rs.i0[t];
      int64_t u = t;
      for (; u > a && rs.k0[u - 1] > key; --u) rs.k0[u] = rs.k0[u - 1], rs.i0[u] = rs.i0[u - 1];
      rs.k0[u] = key;
      rs.i0[u] = idx;
    }
    a = b;
  }
}

// The same order as radix_sort for finite hashes (items k0 = sort_key(hash[i0]), in index order),
// in fewer passes over the items: a stable counting pass into about one bucket per item by the
// hash's place between the smallest and the largest, (h - min) * (buckets / (max - min)) rounded
// down, which never decreases as h grows (IEEE subtraction and multiplication are monotone), so
// bucket order is key order; then a stable insertion sort by full key inside each bucket (one or
// two items on spread hashes; a bucket above kBig items, from bunched hashes, is stable-sorted).
// Returns false, touching nothing, where the hashes are not finite or their range gives no finite
// scale: radix_sort handles those.
bool bucket_sort(RadixScratch& rs, const double* hash, int64_t n) {
  constexpr int64_t kBig = 48;
  if (n < 2) return true;
  double lo = hash[rs.i0[0]], hi = lo;
  bool finite = true;
  for (int64_t t = 0; t < n; ++t) {
    const double h = hash[rs.i0[t]];
    finite = finite && std::isfinite(h);
    lo = std::min(lo, h);
    hi = std::max(hi, h);
  }
  if (!finite) return false;
  if (lo == hi) return true;  // all keys equal (sort_key maps -0 to +0): index order is sorted
  const double scale = static_cast<double>(n) / (hi - lo);
  if (!std::isfinite(scale)) return false;
  rs.bucket.resize(n);
  rs.start.assign(n + 1, 0u);
  for (int64_t t = 0; t < n; ++t) {
    const double x = (hash[rs.i0[t]] - lo) * scale;
    const uint32_t b =
        x >= static_cast<double>(n - 1) ? static_cast<uint32_t>(n - 1) : static_cast<uint32_t>(x);
    rs.bucket[t] = b;
    ++rs.start[b + 1];
  }
  for (int64_t b = 0; b < n; ++b) rs.start[b + 1] += rs.start[b];
  rs.k1.resize(n);
  rs.i1.resize(n);
  for (int64_t t = 0; t < n; ++t) {  // stable: items keep index order inside a bucket
    const uint32_t pos = rs.start[rs.bucket[t]]++;
    rs.k1[pos] = rs.k0[t];
    rs.i1[pos] = rs.i0[t];
  }
  // start[b] is now the end of bucket b (= the start of bucket b + 1)
  int64_t a = 0;
  for (int64_t b = 0; b < n; ++b) {
    const int64_t e = rs.start[b];
    if (e - a > kBig) {
      std::vector<std::pair<uint64_t, int32_t>> items(static_cast<size_t>(e - a));
      for (int64_t t = a; t < e; ++t) items[t - a] = {rs.k1[t], rs.i1[t]};
      std::stable_sort(items.begin(), items.end(),
                       [](const auto& x, const auto& y) { return x.first < y.first; });
      for (int64_t t = a; t < e; ++t) rs.k1[t] = items[t - a].first, rs.i1[t] = items[t - a].second;
    } else {
      for (int64_t t = a + 1; t < e; ++t) {  // stable: moves an item only past larger keys
        const uint64_t key = rs.k1[t];
        const int32_t idx = rs.i1[t];
        int64_t u = t;
        for (; u > a && rs.k1[u - 1] > key; --u) rs.k1[u] = rs.k1[u - 1], rs.i1[u] = rs.i1[u - 1];
        rs.k1[u] = key;
        rs.i1[u] = idx;
      }
    }
    a = e;
  }
  rs.k0.swap(rs.k1);
  rs.i0.swap(rs.i1);
  return true;
}

// Sorts tokens by (padded, hash, index) and records order, chunk ids and the real count: the real
// tokens, entered in index order, are sorted by hash (stable; bucket_sort, or radix_sort for
// non-finite hashes), the padded ones follow in index order. Same order as a stable sort by
// (padded, hash) for non-NaN hashes.
void sort_tokens(const double* hash, const uint8_t* mask, int64_t n, int64_t chunk, int32_t* order,
                 int32_t* cluster, int32_t* real, RadixScratch& rs) {
  rs.k0.resize(n);
  rs.i0.resize(n);
  int64_t count = 0;
  for (int64_t t = 0; t < n; ++t)
    if (!mask || mask[t]) {
      rs.k0[count] = sort_key(hash[t]);
      rs.i0[count++] = static_cast<int32_t>(t);
    }
  if (!bucket_sort(rs, hash, count)) radix_sort(rs, count);
  std::copy(rs.i0.begin(), rs.i0.begin() + count, order);
  int64_t tail = count;
  if (mask)
    for (int64_t t = 0; t < n; ++t)
      if (!mask[t]) order[tail++] = static_cast<int32_t>(t);
  *real = static_cast<int32_t>(count);
  for (int64_t c = 0, pos = 0; pos < count; ++c)  // chunk by chunk: no division per token
    for (const int64_t end = std::min(count, pos + chunk); pos < end; ++pos)
      cluster[order[pos]] = static_cast<int32_t>(c);
  for (int64_t pos = count; pos < n; ++pos) cluster[order[pos]] = -1;
}

#if defined(__GNUC__) && defined(__x86_64__)
// norms_and_dots for float rows, eight at a time in AVX double vectors (lane = row): the block's
// rows are transposed and widened once into xt (d x 8 doubles), then every chain runs serially
// over c as dot() does, product rounded before the add (the "avx" target has no FMA to contract
// into), so the hashes are bit-identical to the scalar ones. Returns the rows done (a multiple of
// 8); the caller does the rest.
__attribute__((target("avx"))) int64_t norms_and_dots_avx(
    const float* x, int64_t n, int64_t d, const std::vector<std::vector<double>>& dirs,
    double* norms, double* dots) {
  const int64_t R = static_cast<int64_t>(dirs.size());
  std::vector<double> xt_buf(static_cast<size_t>(d * 8 + 4));
  double* xt = xt_buf.data();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const float* x0 = x + i * d;
    int64_t c = 0;
    for (; c + 8 <= d; c += 8) {  // 8 x 8 transpose of the block's columns c..c+7
      __m256 col[8];
      for (int t = 0; t < 8; ++t) col[t] = _mm256_loadu_ps(x0 + t * d + c);
      avx2::transpose8x8_ps(col);
      for (int t = 0; t < 8; ++t) {
        _mm256_storeu_pd(xt + (c + t) * 8, _mm256_cvtps_pd(_mm256_castps256_ps128(col[t])));
        _mm256_storeu_pd(xt + (c + t) * 8 + 4, _mm256_cvtps_pd(_mm256_extractf128_ps(col[t], 1)));
      }
    }
    for (; c < d; ++c)
      for (int t = 0; t < 8; ++t) xt[c * 8 + t] = static_cast<double>(x0[t * d + c]);
    __m256d na = _mm256_setzero_pd(), nb = na;
    for (int64_t cc = 0; cc < d; ++cc) {
      const __m256d xa = _mm256_loadu_pd(xt + cc * 8), xb = _mm256_loadu_pd(xt + cc * 8 + 4);
      na = _mm256_add_pd(na, _mm256_mul_pd(xa, xa));
      nb = _mm256_add_pd(nb, _mm256_mul_pd(xb, xb));
    }
    _mm256_storeu_pd(norms + i, na);
    _mm256_storeu_pd(norms + i + 4, nb);
    for (int64_t r = 0; r < R; r += 4) {  // 8 chains: 4 rounds x 2 vectors of rows
      const int64_t g = std::min<int64_t>(4, R - r);
      const double* a[4];
      for (int64_t t = 0; t < 4; ++t) a[t] = dirs[r + std::min(t, g - 1)].data();
      __m256d s0a = _mm256_setzero_pd(), s0b = s0a, s1a = s0a, s1b = s0a, s2a = s0a, s2b = s0a,
              s3a = s0a, s3b = s0a;
      for (int64_t cc = 0; cc < d; ++cc) {
        const __m256d xa = _mm256_loadu_pd(xt + cc * 8), xb = _mm256_loadu_pd(xt + cc * 8 + 4);
        const __m256d a0 = _mm256_broadcast_sd(a[0] + cc), a1 = _mm256_broadcast_sd(a[1] + cc);
        const __m256d a2 = _mm256_broadcast_sd(a[2] + cc), a3 = _mm256_broadcast_sd(a[3] + cc);
        s0a = _mm256_add_pd(s0a, _mm256_mul_pd(a0, xa));
        s0b = _mm256_add_pd(s0b, _mm256_mul_pd(a0, xb));
        s1a = _mm256_add_pd(s1a, _mm256_mul_pd(a1, xa));
        s1b = _mm256_add_pd(s1b, _mm256_mul_pd(a1, xb));
        s2a = _mm256_add_pd(s2a, _mm256_mul_pd(a2, xa));
        s2b = _mm256_add_pd(s2b, _mm256_mul_pd(a2, xb));
        s3a = _mm256_add_pd(s3a, _mm256_mul_pd(a3, xa));
        s3b = _mm256_add_pd(s3b, _mm256_mul_pd(a3, xb));
      }
      const __m256d sa[4] = {s0a, s1a, s2a, s3a}, sb[4] = {s0b, s1b, s2b, s3b};
      for (int64_t t = 0; t < g; ++t) {
        _mm256_storeu_pd(dots + (r + t) * n + i, sa[t]);
        _mm256_storeu_pd(dots + (r + t) * n + i + 4, sb[t]);
      }
    }
  }
  return i;
}
#endif

}  // namespace

// For rows x[0..n) (length d): norms[i] = |x_i|^2 and dots[r * n + i] = a_r . x_i for every round
// r. Each sum runs serially over c, as dot() and sq_norm() do (so the hashes do not depend on
// this batching), but many chains are interleaved, since one chain is latency-bound: float rows
// eight at a time in AVX (norms_and_dots_avx), then four rows at a time in two-lane double vectors
// (lane = row, the same serial sum per lane) times up to four rounds, then one row at a time.
template <typename T>
void smyrf_norms_and_dots(const T* x, int64_t n, int64_t d,
                          const std::vector<std::vector<double>>& dirs, double* norms,
                          double* dots) {
  const int64_t R = static_cast<int64_t>(dirs.size());
  int64_t i = 0;
#if defined(__GNUC__) && defined(__x86_64__)
  if constexpr (std::is_same_v<T, float>) {
    static const bool avx = __builtin_cpu_supports("avx");
    if (avx) i = norms_and_dots_avx(x, n, d, dirs, norms, dots);
  }
#endif
#if defined(__GNUC__)
  typedef double v2d __attribute__((vector_size(16)));
  for (; i + 4 <= n; i += 4) {  // the rows the AVX path left (or all, for double or no AVX)
    const T *x0 = x + i * d, *x1 = x0 + d, *x2 = x1 + d, *x3 = x2 + d;
    v2d na = {0.0, 0.0}, nb = na;
    for (int64_t c = 0; c < d; ++c) {
      const v2d xa = {static_cast<double>(x0[c]), static_cast<double>(x1[c])};
      const v2d xb = {static_cast<double>(x2[c]), static_cast<double>(x3[c])};
      na += xa * xa;
      nb += xb * xb;
    }
    norms[i] = na[0], norms[i + 1] = na[1], norms[i + 2] = nb[0], norms[i + 3] = nb[1];
    for (int64_t r = 0; r < R; r += 4) {
      const int64_t g = std::min<int64_t>(4, R - r);
      const double* a[4];
      for (int64_t t = 0; t < 4; ++t) a[t] = dirs[r + std::min(t, g - 1)].data();
      v2d s0a = {0.0, 0.0}, s0b = s0a, s1a = s0a, s1b = s0a, s2a = s0a, s2b = s0a, s3a = s0a,
          s3b = s0a;
      for (int64_t c = 0; c < d; ++c) {
        const v2d xa = {static_cast<double>(x0[c]), static_cast<double>(x1[c])};
        const v2d xb = {static_cast<double>(x2[c]), static_cast<double>(x3[c])};
        const v2d a0 = {a[0][c], a[0][c]}, a1 = {a[1][c], a[1][c]};
        const v2d a2 = {a[2][c], a[2][c]}, a3 = {a[3][c], a[3][c]};
        s0a += a0 * xa, s0b += a0 * xb;
        s1a += a1 * xa, s1b += a1 * xb;
        s2a += a2 * xa, s2b += a2 * xb;
        s3a += a3 * xa, s3b += a3 * xb;
      }
      const v2d sa[4] = {s0a, s1a, s2a, s3a}, sb[4] = {s0b, s1b, s2b, s3b};
      for (int64_t t = 0; t < g; ++t) {
        double* o = dots + (r + t) * n + i;
        o[0] = sa[t][0], o[1] = sa[t][1], o[2] = sb[t][0], o[3] = sb[t][1];
      }
    }
  }
#endif
  for (; i < n; ++i) {
    const T* xi = x + i * d;
    norms[i] = sq_norm(xi, d);
    for (int64_t r = 0; r < R; ++r) dots[r * n + i] = dot(dirs[r].data(), xi, d);
  }
}

template void smyrf_norms_and_dots<float>(const float*, int64_t, int64_t,
                                          const std::vector<std::vector<double>>&, double*,
                                          double*);
template void smyrf_norms_and_dots<double>(const double*, int64_t, int64_t,
                                           const std::vector<std::vector<double>>&, double*,
                                           double*);

void smyrf_check(const SmyrfParams& p) {
  if (p.batch_heads < 0 || p.nq < 0 || p.nk < 0) fail(p, "negative size", "");
  if (p.d <= 0 || p.dv <= 0) fail(p, "head sizes must be positive", "");
  if (p.heads <= 0 || p.batch_heads % p.heads != 0)
    fail(p, "heads must divide batch*heads", "BH is batch * heads; heads indexes the masks");
  if (p.n_hashes <= 0) fail(p, "n_hashes must be positive", "");
  if (p.cq <= 0 || p.ck <= 0) fail(p, "cluster sizes must be positive", "");
  if (!(p.dropout_p >= 0.0 && p.dropout_p < 1.0))
    fail(p, "dropout_p must lie in [0, 1), got " + std::to_string(p.dropout_p), "");
  if (p.nq > INT32_MAX || p.nk > INT32_MAX) fail(p, "sequence too long for 32-bit indices", "");
  if (p.causal) {
    if (p.nq != p.nk) fail(p, "causal SMYRF needs Nq == Nk", "causal mode is for self-attention");
    return;
  }
  const int64_t cq = ceil_div(p.nq, p.cq), ck = ceil_div(p.nk, p.ck);
  if (cq != ck) {
    std::ostringstream hint;
    hint << "ceil(Nq/Cq) = " << cq << " query chunks but ceil(Nk/Ck) = " << ck
         << " key chunks; query chunk c attends key chunk c, so choose Ck = Cq * Nk / Nq";
    if (p.nq > 0 && p.nk > 0) hint << " (here about " << ceil_div(p.cq * p.nk, p.nq) << ")";
    fail(p, "query and key chunk counts differ", hint.str());
  }
}

std::vector<double> smyrf_hash_direction(uint64_t seed, int64_t round, int64_t d) {
  std::vector<double> a(static_cast<size_t>(d + 2));
  const uint32_t key[2] = {static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)};
  for (int64_t c = 0; 2 * c < d + 2; ++c) {
    const uint32_t ctr[4] = {static_cast<uint32_t>(c), static_cast<uint32_t>(round),
                             static_cast<uint32_t>(static_cast<uint64_t>(round) >> 32),
                             0x534D5952u};  // "SMYR": the hash-direction stream
    const Normal2d z = normal2_double(ctr, key);
    a[2 * c] = z.v[0];
    if (2 * c + 1 < d + 2) a[2 * c + 1] = z.v[1];
  }
  return a;
}

template <typename T>
SmyrfPlan smyrf_make_plan(const SmyrfParams& p, const T* q, const T* k) {
  smyrf_check(p);
  const int64_t BH = p.batch_heads, R = p.n_hashes, nq = p.nq, nk = p.nk, d = p.d;
  SmyrfPlan plan;
  plan.batch_heads = BH;
  plan.rounds = R;
  plan.nq = nq;
  plan.nk = nk;
  plan.causal = p.causal;
  plan.n_chunks = p.causal ? 0 : ceil_div(nq, p.cq);
  std::vector<std::vector<double>> dirs(static_cast<size_t>(R));
  for (int64_t r = 0; r < R; ++r) dirs[r] = smyrf_hash_direction(p.seed, r, d);
  if (p.causal) {
    plan.q_hash.resize(BH * R * nq);
    plan.k_hash.resize(BH * R * nk);
    // Unit vectors lifted with M2 = 2: [x/|x|, 0, 1] for queries, [x/|x|, 1, 0] for keys.
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t bh = 0; bh < BH; ++bh) {
      for (int64_t r = 0; r < R; ++r) {
        const double* a = dirs[r].data();
        for (int64_t i = 0; i < nq; ++i) {
          const T* x = q + (bh * nq + i) * d;
          const double n = std::sqrt(sq_norm(x, d));
          plan.q_hash[(bh * R + r) * nq + i] = (n > 0 ? dot(a, x, d) / n : 0.0) + a[d + 1];
        }
        for (int64_t j = 0; j < nk; ++j) {
          const T* x = k + (bh * nk + j) * d;
          const double n = std::sqrt(sq_norm(x, d));
          plan.k_hash[(bh * R + r) * nk + j] = (n > 0 ? dot(a, x, d) / n : 0.0) + a[d];
        }
      }
    }
    return plan;
  }
  plan.q_order.resize(BH * R * nq);
  plan.k_order.resize(BH * R * nk);
  plan.q_cluster.resize(BH * R * nq);
  plan.k_cluster.resize(BH * R * nk);
  plan.q_real.resize(BH);
  plan.k_real.resize(BH);
  // Pass 1: norms once per token and the dot products of all rounds (rows in blocks of 256).
  HostArray<double> qn(BH * nq), kn(BH * nk), qh(BH * R * nq), kh(BH * R * nk);
  constexpr int64_t kRows = 256;
  const int64_t qb = ceil_div(nq, kRows), kb = ceil_div(nk, kRows);
#pragma omp parallel for schedule(dynamic)
  for (int64_t task = 0; task < BH * (qb + kb); ++task) {
    const int64_t bh = task / (qb + kb), t = task % (qb + kb);
    const bool is_q = t < qb;
    const int64_t n = is_q ? nq : nk;
    const int64_t i0 = (is_q ? t : t - qb) * kRows, cnt = std::min(kRows, n - i0);
    const T* x = (is_q ? q + bh * nq * d : k + bh * nk * d) + i0 * d;
    std::vector<double> dots(static_cast<size_t>(R * cnt));
    double* norms = (is_q ? qn.data() + bh * nq : kn.data() + bh * nk) + i0;
    smyrf_norms_and_dots(x, cnt, d, dirs, norms, dots.data());
    double* h = (is_q ? qh.data() : kh.data()) + bh * R * n + i0;
    for (int64_t r = 0; r < R; ++r)
      std::copy(dots.data() + r * cnt, dots.data() + (r + 1) * cnt, h + r * n);
  }
  // Pass 2: per bh, the largest squared norms over real tokens and the lifting magnitudes
  // sqrt(M2 - |x|^2), the same in every round (only their direction coefficient differs).
  HostArray<double> ql(BH * nq), kl(BH * nk);
#pragma omp parallel for schedule(static)
  for (int64_t bh = 0; bh < BH; ++bh) {
    const int64_t b = bh / p.heads;
    const uint8_t* qm = p.query_mask ? p.query_mask + b * nq : nullptr;
    const uint8_t* km = p.key_mask ? p.key_mask + b * nk : nullptr;
    const double* qnb = qn.data() + bh * nq;
    const double* knb = kn.data() + bh * nk;
    // max is exact in any order: four running maxima instead of one serial chain
    auto max_real = [](const double* x, const uint8_t* m, int64_t n) {
      double mx[4] = {0, 0, 0, 0};
      int64_t i = 0;
      if (!m)
        for (; i + 4 <= n; i += 4)
          for (int t = 0; t < 4; ++t) mx[t] = std::max(mx[t], x[i + t]);
      for (; i < n; ++i)
        if (!m || m[i]) mx[0] = std::max(mx[0], x[i]);
      return std::max(std::max(mx[0], mx[1]), std::max(mx[2], mx[3]));
    };
    const double m2 = max_real(qnb, qm, nq) + max_real(knb, km, nk);
    for (int64_t i = 0; i < nq; ++i) ql[bh * nq + i] = std::sqrt(std::max(0.0, m2 - qnb[i]));
    for (int64_t j = 0; j < nk; ++j) kl[bh * nk + j] = std::sqrt(std::max(0.0, m2 - knb[j]));
  }
  // Pass 3: the lifted hashes, then the sorts, per (bh, round).
#pragma omp parallel
  {
    RadixScratch keys;
#pragma omp for collapse(2) schedule(dynamic)
    for (int64_t bh = 0; bh < BH; ++bh) {
      for (int64_t r = 0; r < R; ++r) {
        const int64_t b = bh / p.heads;
        const uint8_t* qm = p.query_mask ? p.query_mask + b * nq : nullptr;
        const uint8_t* km = p.key_mask ? p.key_mask + b * nk : nullptr;
        const double* a = dirs[r].data();
        double* qhr = qh.data() + (bh * R + r) * nq;
        double* khr = kh.data() + (bh * R + r) * nk;
        const double* qlb = ql.data() + bh * nq;
        const double* klb = kl.data() + bh * nk;
        for (int64_t i = 0; i < nq; ++i) qhr[i] += a[d + 1] * qlb[i];
        for (int64_t j = 0; j < nk; ++j) khr[j] += a[d] * klb[j];
        int32_t qreal = 0, kreal = 0;
        sort_tokens(qhr, qm, nq, p.cq, plan.q_order.data() + (bh * R + r) * nq,
                    plan.q_cluster.data() + (bh * R + r) * nq, &qreal, keys);
        sort_tokens(khr, km, nk, p.ck, plan.k_order.data() + (bh * R + r) * nk,
                    plan.k_cluster.data() + (bh * R + r) * nk, &kreal, keys);
        if (r == 0) {
          plan.q_real[bh] = qreal;
          plan.k_real[bh] = kreal;
        }
      }
    }
  }
  return plan;
}

template SmyrfPlan smyrf_make_plan<float>(const SmyrfParams&, const float*, const float*);
template SmyrfPlan smyrf_make_plan<double>(const SmyrfParams&, const double*, const double*);

CausalWalker::CausalWalker(const SmyrfParams& p, const SmyrfPlan& plan, int64_t bh)
    : rounds_(plan.rounds),
      nq_(plan.nq),
      nk_(plan.nk),
      block_(p.cq),
      window_(p.ck),
      q_hash_(plan.q_hash.data() + bh * plan.rounds * plan.nq),
      k_hash_(plan.k_hash.data() + bh * plan.rounds * plan.nk),
      key_mask_(p.key_mask ? p.key_mask + (bh / p.heads) * p.nk : nullptr),
      sorted_(static_cast<size_t>(plan.rounds)),
      rank_(static_cast<size_t>(plan.rounds), std::vector<int32_t>(plan.nk, -1)) {}

void CausalWalker::window(int64_t r, int64_t i, int64_t* start, int64_t* len) const {
  const std::vector<int32_t>& s = sorted_[r];
  const double* kh = k_hash_ + r * nk_;
  const double h = q_hash_[r * nq_ + i];
  const int64_t n = static_cast<int64_t>(s.size());
  const int64_t pos =
      std::lower_bound(s.begin(), s.end(), h, [&](int32_t j, double v) { return kh[j] < v; }) -
      s.begin();
  *len = std::min(window_, n);
  *start = std::clamp<int64_t>(pos - window_ / 2, 0, n - *len);
}

void CausalWalker::add_block(int64_t b) {
  const int64_t j0 = b * block_, j1 = std::min(nk_, j0 + block_);
  for (int64_t r = 0; r < rounds_; ++r) {
    const double* kh = k_hash_ + r * nk_;
    auto less = [&](int32_t x, int32_t y) { return kh[x] < kh[y] || (kh[x] == kh[y] && x < y); };
    fresh_.clear();
    for (int64_t j = j0; j < j1; ++j)
      if (!key_mask_ || key_mask_[j]) fresh_.push_back(static_cast<int32_t>(j));
    std::sort(fresh_.begin(), fresh_.end(), less);
    std::vector<int32_t>& s = sorted_[r];
    scratch_.resize(s.size() + fresh_.size());
    std::merge(s.begin(), s.end(), fresh_.begin(), fresh_.end(), scratch_.begin(), less);
    s.swap(scratch_);
    for (size_t pos = 0; pos < s.size(); ++pos) rank_[r][s[pos]] = static_cast<int32_t>(pos);
  }
}

int64_t causal_key_list(const CausalWalker& w, const SmyrfParams& p, int64_t bh, int64_t r,
                        int64_t i, int64_t start, int64_t len, std::vector<int32_t>& keys,
                        bool with_local) {
  const size_t before = keys.size();
  const int32_t* snap = w.snapshot(r);
  keys.insert(keys.end(), snap + start, snap + start + len);
  if (!with_local) return static_cast<int64_t>(keys.size() - before);
  const uint8_t* km = p.key_mask ? p.key_mask + (bh / p.heads) * p.nk : nullptr;
  for (int64_t j = (i / p.cq) * p.cq; j <= i; ++j)
    if (!km || km[j]) keys.push_back(static_cast<int32_t>(j));
  return static_cast<int64_t>(keys.size() - before);
}

}  // namespace smyrf::kernels::cpu
