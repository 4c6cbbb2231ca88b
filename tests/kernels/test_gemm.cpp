// sgemm (AVX2 and scalar variants), batched sgemm and dgemm against naive references.
//
// Tolerance: each element may differ from the double-accumulated reference by a few float32
// roundings per term, i.e. |err| <= 4 * eps * (K + 2) * (|alpha| sum_k |a||b| + |beta c|). The
// magnitude term is computed per element, so the check is tight for cancelling sums and still
// fails on any real indexing, edge or alpha/beta mistake (those are O(1) relative errors).
#include <doctest/doctest.h>
#include <omp.h>

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <random>
#include <vector>

#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/gemm.h"

using namespace smyrf::kernels::cpu;

namespace {

constexpr float kSentinel = 12345.0f;  // written around C to catch out-of-bounds stores

struct Problem {
  bool ta = false, tb = false;
  int64_t M = 1, N = 1, K = 1;
  int64_t pad_a = 0, pad_b = 0, pad_c = 0;  // extra elements per row beyond the minimum
  float alpha = 1.0f, beta = 0.0f;
  bool nan_c = false;  // fill C with NaN (only meaningful with beta == 0)
};

struct Buffers {
  std::vector<float> A, B, C;
  int64_t lda, ldb, ldc;
};

Buffers make_buffers(const Problem& p, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  Buffers b;
  const int64_t a_rows = p.ta ? p.K : p.M, a_cols = p.ta ? p.M : p.K;
  const int64_t b_rows = p.tb ? p.N : p.K, b_cols = p.tb ? p.K : p.N;
  b.lda = a_cols + p.pad_a;
  b.ldb = b_cols + p.pad_b;
  b.ldc = p.N + p.pad_c;
  b.A.assign(static_cast<size_t>(std::max<int64_t>(1, a_rows * b.lda)), 0.0f);
  b.B.assign(static_cast<size_t>(std::max<int64_t>(1, b_rows * b.ldb)), 0.0f);
  b.C.assign(static_cast<size_t>(std::max<int64_t>(1, p.M * b.ldc)), kSentinel);
  for (auto& x : b.A) x = u(rng);
  for (auto& x : b.B) x = u(rng);
  for (int64_t i = 0; i < p.M; ++i)
    for (int64_t j = 0; j < p.N; ++j)
      b.C[i * b.ldc + j] = p.nan_c ? std::numeric_limits<float>::quiet_NaN() : u(rng);
  return b;
}

std::vector<float> absolute(const std::vector<float>& v) {
  std::vector<float> r(v.size());
  for (size_t i = 0; i < v.size(); ++i) r[i] = std::fabs(v[i]);
  return r;
}

// Runs sgemm on one problem and compares every element of C (and the padding) to the reference.
void check_sgemm(const Problem& p, uint32_t seed = 7) {
  CAPTURE(p.ta);
  CAPTURE(p.tb);
  CAPTURE(p.M);
  CAPTURE(p.N);
  CAPTURE(p.K);
  CAPTURE(p.alpha);
  CAPTURE(p.beta);
  Buffers b = make_buffers(p, seed);
  std::vector<float> ref = b.C, mag = absolute(b.C);
  sgemm_reference(p.ta, p.tb, p.M, p.N, p.K, p.alpha, b.A.data(), b.lda, b.B.data(), b.ldb, p.beta,
                  ref.data(), b.ldc);
  const std::vector<float> absA = absolute(b.A), absB = absolute(b.B);
  if (p.nan_c) std::fill(mag.begin(), mag.end(), 0.0f);
  sgemm_reference(p.ta, p.tb, p.M, p.N, p.K, std::fabs(p.alpha), absA.data(), b.lda, absB.data(),
                  b.ldb, std::fabs(p.beta), mag.data(), b.ldc);
  sgemm(p.ta, p.tb, p.M, p.N, p.K, p.alpha, b.A.data(), b.lda, b.B.data(), b.ldb, p.beta,
        b.C.data(), b.ldc);
  const double eps = std::numeric_limits<float>::epsilon();
  int bad = 0;
  for (int64_t i = 0; i < p.M; ++i) {
    for (int64_t j = 0; j < b.ldc; ++j) {
      const float got = b.C[i * b.ldc + j];
      if (j >= p.N) {
        if (got != kSentinel && bad++ < 5)
          FAIL_CHECK("wrote padding at (" << i << ", " << j << ")");
        continue;
      }
      const double want = ref[i * b.ldc + j];
      const double tol = 4.0 * eps * (p.K + 2) * mag[i * b.ldc + j] + 1e-30;
      if (!(std::fabs(got - want) <= tol) && bad++ < 5)
        FAIL_CHECK("C(" << i << ", " << j << ") = " << got << ", want " << want << " +- " << tol);
    }
  }
  CHECK(bad == 0);
}

// Runs body once per available ISA (AVX2 when the CPU has it, and always scalar).
template <typename F>
void for_each_isa(F body) {
  for (Isa isa : {Isa::Avx2, Isa::Scalar}) {
    const Isa prev = set_active_isa(isa);
    if (active_isa() == isa) {
      CAPTURE(isa_name(isa));
      body();
    }
    set_active_isa(prev);
  }
}

// The largest |a[i] - b[i]| (a and b of equal size).
double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, double(std::fabs(a[i] - b[i])));
  return worst;
}

// Fills each vector with uniform [-1, 1) values from one generator, in order.
void fill_uniform(std::mt19937& rng, std::initializer_list<std::vector<float>*> vectors) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (std::vector<float>* v : vectors)
    for (auto& x : *v) x = u(rng);
}

// Turns split-K off (or on) for one test and restores the previous setting: the team paths
// are only reached with K that split-K would otherwise take.
struct SplitKGuard {
  bool prev;
  explicit SplitKGuard(bool on) : prev(set_sgemm_split_k(on)) {}
  ~SplitKGuard() { set_sgemm_split_k(prev); }
};

// Runs body() on teams of 2 and 3 OpenMP threads (the team and split-K paths), restoring the
// thread count afterwards.
template <typename F>
void with_teams(F body) {
  const int prev_threads = omp_get_max_threads();
  for (int threads : {2, 3}) {
    omp_set_num_threads(threads);
    CAPTURE(threads);
    body();
  }
  omp_set_num_threads(prev_threads);
}

// The four transpose combinations as problems with everything else at its default.
std::vector<Problem> transposes() {
  std::vector<Problem> out(4);
  for (int t = 0; t < 4; ++t) out[t].ta = t & 1, out[t].tb = t & 2;
  return out;
}

}  // namespace

TEST_CASE("sgemm_reference computes a known 2x2 product with alpha and beta") {
  // [[1,2],[3,4]] @ [[5,6],[7,8]] = [[19,22],[43,50]]
  const float A[] = {1, 2, 3, 4}, B[] = {5, 6, 7, 8};
  float C[] = {1, 1, 1, 1};
  sgemm_reference(false, false, 2, 2, 2, 2.0f, A, 2, B, 2, 0.5f, C, 2);
  CHECK(C[0] == 38.5f);
  CHECK(C[1] == 44.5f);
  CHECK(C[2] == 86.5f);
  CHECK(C[3] == 100.5f);
  // A^T @ B^T = (B A)^T: [[1,3],[2,4]] @ [[5,7],[6,8]] = [[23,31],[34,46]]
  sgemm_reference(true, true, 2, 2, 2, 1.0f, A, 2, B, 2, 0.0f, C, 2);
  CHECK(C[0] == 23.0f);
  CHECK(C[1] == 31.0f);
  CHECK(C[2] == 34.0f);
  CHECK(C[3] == 46.0f);
}

TEST_CASE("sgemm matches the reference on odd sizes and every transpose") {
  const int64_t sizes[] = {1, 7, 16, 33, 65, 100};
  for_each_isa([&] {
    for (int t = 0; t < 4; ++t)
      for (int64_t M : sizes)
        for (int64_t N : {int64_t{1}, int64_t{17}, int64_t{33}, int64_t{100}})
          for (int64_t K : {int64_t{1}, int64_t{7}, int64_t{65}}) {
            Problem p;
            p.ta = t & 1;
            p.tb = t & 2;
            p.M = M, p.N = N, p.K = K;
            check_sgemm(p);
          }
  });
}

TEST_CASE("sgemm small path: every row count to 26 (the last 7-9 rows as two tiles)") {
  // M % 6 of 1-3 above 6 rows runs its last 7-9 rows as two tiles (4 + 3, 4 + 4, 5 + 4); the
  // others as full tiles and one short one. Padded C rows catch a tile that writes too far.
  for_each_isa([&] {
    for (int t = 0; t < 4; ++t)
      for (int64_t M = 1; M <= 26; ++M)
        for (int64_t N : {int64_t{16}, int64_t{33}})
          for (int64_t K : {int64_t{9}, int64_t{64}}) {
            Problem p;
            p.ta = t & 1;
            p.tb = t & 2;
            p.M = M, p.N = N, p.K = K;
            p.pad_c = 3;
            p.beta = 0.5f;
            check_sgemm(p);
          }
  });
}

TEST_CASE("sgemm on sizes that cross the cache blocks and the thread split") {
  for_each_isa([&] {
    for (int t = 0; t < 4; ++t) {
      Problem p;
      p.ta = t & 1;
      p.tb = t & 2;
      p.M = 257, p.N = 130, p.K = 600;  // K spans several K blocks, M several M blocks
      check_sgemm(p);
      p.M = 70, p.N = 300, p.K = 257;  // N > M: threads split the columns
      p.alpha = -0.5f, p.beta = 2.0f;
      check_sgemm(p);
    }
    Problem wide;  // more columns than one N block
    wide.M = 7, wide.N = 4200, wide.K = 9, wide.beta = 1.0f;
    check_sgemm(wide);
  });
}

TEST_CASE("sgemm team path: shared packed B, dynamic row blocks, 2 and 3 threads") {
  // Tall or square blocked products from ~400^3 (M * N * K >= 2^26) run as a team: B packed once
  // per (NC, KC) step into a double-buffered shared block, A row blocks handed out dynamically. The
  // shapes cover K cut into three equal steps (so both B buffers are reused), row counts that leave
  // a partial 6-row tile, two NC column blocks, padded strides, beta = 0 over NaN and an odd team
  // size.
  if (active_isa() != Isa::Avx2) return;
  SplitKGuard no_split(false);
  with_teams([] {
    for (Problem p : transposes()) {
      p.M = 6 * 83 + 1, p.N = 131, p.K = 1100;  // 3 K steps of 367, 84 tiles, last one 1 row
      p.pad_a = 3, p.pad_b = 1, p.pad_c = 7;
      p.alpha = -0.75f, p.beta = 0.5f;
      check_sgemm(p);
      p.M = 301, p.N = 300, p.K = 750;  // 2 K steps of 375; 51 tiles over 6 blocks
      p.alpha = 1.0f, p.beta = 0.0f, p.nan_c = true;
      check_sgemm(p);
    }
    Problem two_nc;  // N past one NC block: the steps run over (column block, K step) pairs
    two_nc.M = 4101, two_nc.N = 4099, two_nc.K = 5, two_nc.beta = 1.0f;
    check_sgemm(two_nc);
  });
}

TEST_CASE("sgemm wide team path: shared packed A, dynamic column blocks, 2 and 3 threads") {
  // Wide blocked products (fewer rows than columns, M * N * K >= 2^26) share the packed rows of A
  // per (row chunk, KC) step and hand out column blocks of C. Shapes: three K steps with a partial
  // last 6-row panel and a partial 16-column panel, padded strides; beta = 0 over NaN; more rows
  // than one row chunk (3840), so the steps run over (row chunk, K step) pairs.
  if (active_isa() != Isa::Avx2) return;
  SplitKGuard no_split(false);
  with_teams([] {
    for (Problem p : transposes()) {
      p.M = 6 * 9 + 5, p.N = 1500 + 7, p.K = 1100;  // 3 K steps of 367; 95 column tiles
      p.pad_a = 2, p.pad_b = 5, p.pad_c = 3;
      p.alpha = 0.5f, p.beta = -1.0f;
      check_sgemm(p);
      p.M = 270, p.N = 333, p.K = 768;  // 2 K steps of 384
      p.alpha = 1.0f, p.beta = 0.0f, p.nan_c = true;
      check_sgemm(p);
    }
    Problem two_chunks;
    two_chunks.M = 3900, two_chunks.N = 3950, two_chunks.K = 5, two_chunks.beta = 2.0f;
    check_sgemm(two_chunks);
  });
}

TEST_CASE("sgemm split-K path: K shared among 2 and 3 threads, partials added into C") {
  // From K >= 256 * threads (128 or 192 * threads for outputs up to 256 x 256 or 512 x 512;
  // small enough partials; not for wide products, N >= 16 M) each thread runs a share of K over
  // all of C: thread 0 into C with
  // beta, the others into private partials added afterwards. The shapes: a single 6-row tile (which
  // the row slicing would give one thread), odd shares of K (K not divisible by the team), partial
  // tiles, padded strides, beta = 0 over NaN (thread 0's share must not read C) and a non-trivial
  // beta with a negative alpha.
  if (active_isa() != Isa::Avx2) return;
  SplitKGuard split(true);
  with_teams([] {
    for (Problem p : transposes()) {
      p.M = 6, p.N = 40, p.K = 3001;
      check_sgemm(p);
      p.M = 131, p.N = 77, p.K = 2311;
      p.pad_a = 3, p.pad_b = 1, p.pad_c = 5;
      p.alpha = -0.75f, p.beta = 0.5f;
      check_sgemm(p);
      p.M = 20, p.N = 300, p.K = 4000;
      p.alpha = 1.0f, p.beta = 0.0f, p.nan_c = true;
      check_sgemm(p);
      p.M = 250, p.N = 251, p.K = 301;  // split only under the small-output rule (2 threads)
      p.nan_c = false, p.beta = -1.5f;
      check_sgemm(p);
      p.M = 300, p.N = 290, p.K = 401;  // and under the medium-output rule
      check_sgemm(p);
      p.M = 13, p.N = 208, p.K = 2000;  // N = 16 M: the column split instead
      check_sgemm(p);
    }
  });
}

TEST_CASE("sgemm packs a transposed A on every panel remainder (TN, blocked path)") {
  // The blocked path packs op(A) = A^T row by row of A and deals each row out to 6-row panels;
  // M = 96 + r leaves an edge panel of r rows (r = 0..5) in the last M block, K = 400 crosses
  // the K block, and a padded lda checks the row walk does not assume lda == M.
  for_each_isa([&] {
    for (int64_t r = 0; r < 6; ++r)
      for (int64_t pad : {int64_t{0}, int64_t{3}}) {
        Problem p;
        p.ta = true;
        p.tb = (r & 1) != 0;
        p.M = 96 + r, p.N = 37, p.K = 400;
        p.pad_a = pad;
        p.beta = r == 2 ? 1.0f : 0.0f;
        check_sgemm(p);
        p.M = 193 + r, p.K = 130;  // several M blocks, one thread per row slice
        check_sgemm(p);
      }
  });
}

TEST_CASE("sgemm matrix-vector products (M = 1 or N = 1): every layout, strides, 1-3 threads") {
  // sgemm_avx2 hands these to gemv_avx2.cpp: dot products of rows (A not transposed with N = 1,
  // B transposed with M = 1) or sums of scaled rows (the other two layouts), the vector copied
  // when strided (B's column with N = 1, A's column with M = 1), the output strided with N = 1.
  // Sizes: row blocks of 4 with remainders, K around the 8- and 16-float steps, outputs wider
  // than one 4096-column block, and products large enough for the thread split.
  const int prev_threads = omp_get_max_threads();
  for (int threads : {1, 2, 3}) {
    omp_set_num_threads(threads);
    CAPTURE(threads);
    for_each_isa([&] {
      for (int t = 0; t < 4; ++t)
        for (bool column : {true, false})
          for (int64_t n : {1, 3, 4, 5, 33, 4099, 9001})
            for (int64_t K : {1, 7, 8, 9, 17, 300}) {
              if (n * K > 600000) continue;
              Problem p;
              p.ta = t & 1;
              p.tb = t & 2;
              (column ? p.M : p.N) = n;
              p.K = K;
              p.pad_a = 3, p.pad_b = 2, p.pad_c = 5;
              const bool nan = (n + K) % 2 == 0;
              p.alpha = nan ? 1.0f : -1.5f;
              p.beta = nan ? 0.0f : 0.5f;
              p.nan_c = nan;
              check_sgemm(p);
            }
    });
  }
  omp_set_num_threads(prev_threads);
}

TEST_CASE("sgemm on strided submatrices (lda, ldb, ldc above the minimum)") {
  for_each_isa([&] {
    for (int t = 0; t < 4; ++t)
      for (int64_t n : {int64_t{5}, int64_t{33}, int64_t{129}}) {
        Problem p;
        p.ta = t & 1;
        p.tb = t & 2;
        p.M = n, p.N = n + 3, p.K = n + 1;
        p.pad_a = 3, p.pad_b = 11, p.pad_c = 5;
        p.alpha = 1.5f, p.beta = -1.0f;
        check_sgemm(p);
      }
  });
}

TEST_CASE("sgemm small products whose B rows all fall in one L1 set (ldb 1024, 4096)") {
  // K <= 64 rows of B, ldb a large power of two (a slice of a wide matrix): the small path packs
  // B instead of reading its strips in place, strip by strip (N = 16, 24) or all at once
  // (N = 40, 100, 300: up to 75 KiB; the last strip partial); ldb 1040 (65 lines: every set)
  // stays in place.
  for_each_isa([&] {
    for (int64_t ldb : {int64_t{1024}, int64_t{1040}, int64_t{4096}})
      for (int64_t N : {int64_t{16}, int64_t{24}, int64_t{40}, int64_t{100}, int64_t{300}})
        for (int64_t K : {int64_t{7}, int64_t{33}, int64_t{64}}) {
          Problem p;
          p.M = 20, p.N = N, p.K = K, p.pad_b = ldb - N, p.pad_c = 3;
          p.alpha = 0.5f, p.beta = K == 33 ? 0.0f : -1.0f;
          check_sgemm(p);
        }
  });
}

TEST_CASE("sgemm small path: B packed in groups of strips when all of it is too large") {
  // A few rows of A against a B of more than 256 KiB (K x N floats): the small path packs B's
  // strips a group at a time (128 columns at K = 512, 176 at K = 370), the last group and its
  // last strip partial; A untransposed and transposed, padded strides, beta 0 and not.
  for_each_isa([&] {
    for (int64_t M : {int64_t{2}, int64_t{4}, int64_t{6}})
      for (int64_t K : {int64_t{370}, int64_t{512}})
        for (int64_t N : {int64_t{600}, int64_t{803}}) {
          Problem p;
          p.ta = N == 803, p.M = M, p.N = N, p.K = K, p.pad_a = 1, p.pad_b = 5, p.pad_c = 3;
          p.alpha = 1.5f, p.beta = K == 370 ? 0.0f : 0.5f;
          check_sgemm(p);
        }
  });
}

TEST_CASE("sgemm narrow products (2 <= N <= 8): every width and transpose, K tails, blocks") {
  // gemm_narrow_avx2: A untransposed: op(B) packed as up to 8 rows, 3-row tiles of A (M % 3 = 0,
  // 1, 2), K tails of 1..7; A transposed: 12-row tiles (M % 12 = 0, 1, 2), op(B) packed 8 wide;
  // K past one 2048 block, every transpose, padded strides, beta 0 over NaN and beta != 0.
  // N = 9 takes the 6x16 path alongside.
  for_each_isa([&] {
    for (int t = 0; t < 4; ++t)
      for (int64_t N = 2; N <= 9; ++N)
        for (int64_t M : {int64_t{12}, int64_t{13}, int64_t{38}, int64_t{59}})
          for (int64_t K : {int64_t{16}, int64_t{23}, int64_t{100}}) {
            Problem p;
            p.ta = t & 1, p.tb = t & 2;
            p.M = M, p.N = N, p.K = K, p.pad_a = 5, p.pad_b = 3, p.pad_c = 2;
            p.alpha = 0.75f, p.beta = (M + N) % 2 ? 0.0f : -1.5f;
            p.nan_c = p.beta == 0.0f;
            check_sgemm(p, static_cast<uint32_t>(N * 100 + M + K));
          }
    for (int t = 0; t < 4; ++t)
      for (int64_t N : {int64_t{3}, int64_t{8}}) {  // two K blocks, the second with a tail
        Problem p;
        p.ta = t & 1, p.tb = t & 2, p.M = 40, p.N = N, p.K = 2048 + 37, p.pad_c = 1, p.beta = 0.5f;
        check_sgemm(p);         // on 2+ threads: K split between them
        p.M = 3001, p.K = 100;  // on 2+ threads: row slices
        check_sgemm(p);
      }
    // a batch of narrow products, one per thread at a time
    const int64_t batch = 9, M = 20, N = 8, K = 40, sa = M * K + 3, sb = K * N + 1, sc = M * N;
    std::mt19937 rng(5);
    std::vector<float> A(batch * sa), B(batch * sb), C(batch * sc);
    fill_uniform(rng, {&A, &B, &C});
    std::vector<float> ref = C;
    for (int64_t b = 0; b < batch; ++b)
      sgemm_reference(false, false, M, N, K, 1.25f, A.data() + b * sa, K, B.data() + b * sb, N,
                      0.5f, ref.data() + b * sc, N);
    sgemm_batched(false, false, batch, M, N, K, 1.25f, A.data(), K, sa, B.data(), N, sb, 0.5f,
                  C.data(), N, sc);
    CHECK(max_abs_diff(C, ref) < 1e-5 * (K + 2) * 4);
  });
}

TEST_CASE("sgemm alpha and beta, including beta = 0 over NaN") {
  for_each_isa([&] {
    for (float alpha : {1.0f, -2.0f, 0.25f, 0.0f})
      for (float beta : {0.0f, 1.0f, -0.5f}) {
        Problem p;
        p.M = 37, p.N = 45, p.K = 29, p.pad_c = 2;
        p.alpha = alpha, p.beta = beta;
        check_sgemm(p);
      }
    Problem p;  // beta == 0 must not read C, so NaN must not leak into the result
    p.M = 33, p.N = 50, p.K = 20, p.nan_c = true, p.pad_c = 3;
    for (int t = 0; t < 4; ++t) {
      p.ta = t & 1, p.tb = t & 2;
      check_sgemm(p);
    }
    p.alpha = 0.0f;  // even with nothing to add
    check_sgemm(p);
    p.alpha = 1.0f, p.K = 0;
    check_sgemm(p);
  });
}

TEST_CASE("sgemm with K = 0 scales C by beta; M = 0 or N = 0 writes nothing") {
  for_each_isa([&] {
    Problem p;
    p.M = 9, p.N = 19, p.K = 0, p.beta = 0.5f, p.pad_c = 1;
    check_sgemm(p);  // C = 0.5 * C, computed by the reference the same way
    float C[4] = {1, 2, 3, 4};
    const float A[4] = {1, 1, 1, 1};
    sgemm(false, false, 2, 2, 0, 1.0f, A, 1, A, 2, 0.0f, C, 2);
    CHECK(C[0] == 0.0f);
    CHECK(C[3] == 0.0f);
    float D[4] = {1, 2, 3, 4};
    sgemm(false, false, 0, 2, 2, 1.0f, A, 2, A, 2, 0.0f, D, 2);
    sgemm(false, false, 2, 0, 2, 1.0f, A, 2, A, 2, 0.0f, D, 2);
    CHECK(D[0] == 1.0f);
    CHECK(D[3] == 4.0f);
  });
}

TEST_CASE("sgemm called from inside a parallel region runs on one thread, still correct") {
  for_each_isa([&] {
    Problem p;
    p.M = 90, p.N = 80, p.K = 70;
    Buffers b = make_buffers(p, 3);
    std::vector<float> ref = b.C;
    sgemm_reference(false, false, p.M, p.N, p.K, 1.0f, b.A.data(), b.lda, b.B.data(), b.ldb, 0.0f,
                    ref.data(), b.ldc);
    std::vector<std::vector<float>> outs(4, b.C);
#pragma omp parallel for num_threads(2)
    for (int r = 0; r < 4; ++r)
      sgemm(false, false, p.M, p.N, p.K, 1.0f, b.A.data(), b.lda, b.B.data(), b.ldb, 0.0f,
            outs[r].data(), b.ldc);
    for (const auto& o : outs) {
      const double worst = max_abs_diff(o, ref);
      CHECK(worst < 1e-4);
    }
  });
}

TEST_CASE("sgemm_batched matches per-matrix products, stride 0 broadcasts") {
  for_each_isa([&] {
    for (int64_t n : {int64_t{16}, int64_t{23}, int64_t{64}})
      for (int t = 0; t < 4; ++t) {
        const bool ta = t & 1, tb = t & 2;
        const int64_t batch = 9, M = n, N = n + 1, K = n - 2;
        const int64_t lda = ta ? M : K, ldb = tb ? K : N, ldc = N;
        const int64_t sa = M * K, sb = 0 /* B broadcast */, sc = M * N;
        std::mt19937 rng(11);
        std::vector<float> A(batch * sa), B(K * N), C(batch * sc);
        fill_uniform(rng, {&A, &B, &C});
        std::vector<float> ref = C;
        for (int64_t b = 0; b < batch; ++b)
          sgemm_reference(ta, tb, M, N, K, 0.5f, A.data() + b * sa, lda, B.data(), ldb, 2.0f,
                          ref.data() + b * sc, ldc);
        sgemm_batched(ta, tb, batch, M, N, K, 0.5f, A.data(), lda, sa, B.data(), ldb, sb, 2.0f,
                      C.data(), ldc, sc);
        const double worst = max_abs_diff(C, ref);
        CAPTURE(n);
        CAPTURE(t);
        CHECK(worst < 1e-5 * (K + 2) * 4);
      }
    // Many small blocks: the per-product parallel path.
    const int64_t batch = 64, M = 16, N = 16, K = 16;
    std::vector<float> A(batch * M * K), B(batch * K * N), C(batch * M * N, kSentinel);
    std::mt19937 rng(5);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    for (auto& x : A) x = u(rng);
    for (auto& x : B) x = u(rng);
    std::vector<float> ref(C.size());
    for (int64_t b = 0; b < batch; ++b)
      sgemm_reference(false, true, M, N, K, 1.0f, A.data() + b * M * K, K, B.data() + b * K * N, K,
                      0.0f, ref.data() + b * M * N, N);
    sgemm_batched(false, true, batch, M, N, K, 1.0f, A.data(), K, M * K, B.data(), K, K * N, 0.0f,
                  C.data(), N, M * N);
    const double worst = max_abs_diff(C, ref);
    CHECK(worst < 1e-5);
  });
}

TEST_CASE("sgemm_batched per-product path on 1, 2 and 3 threads: strides, transposes, chunks") {
  // Products of 32^3 and up in a batch run one per thread in chunks, each pulling the next
  // product's A and B (padded rows here, or one dense run) into L2 while it computes. Batches
  // that are no multiple of the chunk, every transpose, padded leading dimensions and batch
  // strides, alpha / beta, and a broadcast A (stride 0: nothing to prefetch) on 1, 2 and 3 threads.
  const int prev_threads = omp_get_max_threads();
  for_each_isa([&] {
    for (int threads : {1, 2, 3}) {
      omp_set_num_threads(threads);
      CAPTURE(threads);
      for (int t = 0; t < 4; ++t) {
        // 100: B (99 x 103) small enough to be packed whole, last strip partial
        for (int64_t n : {int64_t{32}, int64_t{45}, int64_t{100}, int64_t{128}}) {
          const bool ta = t & 1, tb = t & 2;
          const int64_t batch = n == 128 ? 7 : 37, M = n, N = n + 3, K = n - 1;
          const int64_t pad = n == 45 ? 0 : 5;  // 45: dense rows (one contiguous run)
          const int64_t lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + 2;
          const int64_t sa = (ta ? K : M) * lda + (n == 32 ? 0 : 9);
          const int64_t sb = (tb ? N : K) * ldb + 3, sc = M * ldc + 1;
          const bool broadcast_a = n == 32;
          std::mt19937 rng(static_cast<uint32_t>(13 + t + n));
          std::vector<float> A((broadcast_a ? 1 : batch) * sa), B(batch * sb), C(batch * sc);
          fill_uniform(rng, {&A, &B, &C});
          std::vector<float> ref = C;
          const int64_t sa_eff = broadcast_a ? 0 : sa;
          for (int64_t b = 0; b < batch; ++b)
            sgemm_reference(ta, tb, M, N, K, -0.5f, A.data() + b * sa_eff, lda, B.data() + b * sb,
                            ldb, 1.5f, ref.data() + b * sc, ldc);
          sgemm_batched(ta, tb, batch, M, N, K, -0.5f, A.data(), lda, sa_eff, B.data(), ldb, sb,
                        1.5f, C.data(), ldc, sc);
          const double worst = max_abs_diff(C, ref);
          CAPTURE(t);
          CAPTURE(n);
          CHECK(worst < 1e-5 * (K + 2) * 4);
        }
      }
    }
  });
  omp_set_num_threads(prev_threads);
}

namespace {
void dgemm_naive(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const double* A,
                 int64_t lda, const double* B, int64_t ldb, double beta, double* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      long double acc = 0;
      for (int64_t k = 0; k < K; ++k)
        acc += (long double)(ta ? A[k * lda + i] : A[i * lda + k]) *
               (tb ? B[j * ldb + k] : B[k * ldb + j]);
      C[i * ldc + j] =
          double(alpha * acc + (beta == 0.0 ? 0.0L : (long double)beta * C[i * ldc + j]));
    }
}
}  // namespace

TEST_CASE("sgemm_batched small products with a transposed A whose rows share few L1 sets") {
  // op(A) = A^T read in place by the small path, down k rows lda apart: lda a multiple of 128
  // floats (8 or 4 of the L1's 64 sets) with K past 64, M = 100 (a 4-row last tile), beta 0
  // and 1.5. (Packing such an A into panels measured even in alternated runs, so it is read in
  // place; this case keeps that path covered.)
  for_each_isa([&] {
    for (int64_t lda : {int64_t{128}, int64_t{256}}) {
      for (int64_t K : {int64_t{65}, int64_t{120}}) {
        for (float beta : {0.0f, 1.5f}) {
          const int64_t batch = 5, M = 100, N = 37, ldb = N, ldc = N;
          const int64_t sa = K * lda, sb = K * ldb, sc = M * ldc;
          std::mt19937 rng(static_cast<uint32_t>(lda + K));
          std::vector<float> A(batch * sa), B(batch * sb), C(batch * sc);
          fill_uniform(rng, {&A, &B, &C});
          std::vector<float> ref = C;
          for (int64_t b = 0; b < batch; ++b)
            sgemm_reference(true, false, M, N, K, 0.75f, A.data() + b * sa, lda, B.data() + b * sb,
                            ldb, beta, ref.data() + b * sc, ldc);
          sgemm_batched(true, false, batch, M, N, K, 0.75f, A.data(), lda, sa, B.data(), ldb, sb,
                        beta, C.data(), ldc, sc);
          const double worst = max_abs_diff(C, ref);
          CAPTURE(lda);
          CAPTURE(K);
          CAPTURE(beta);
          CHECK(worst < 1e-5 * (K + 2) * 4);
        }
      }
    }
  });
}

TEST_CASE("sgemm_batched with M = 1 or N = 1: each product a matrix-vector product") {
  // The per-product path hands such products to gemv_avx2.cpp on the calling thread: every
  // layout, padded leading dimensions (a strided vector copied on the stack, or in heap past 1024
  // floats) and batch strides, alpha / beta, 1 and 2 threads.
  const int prev_threads = omp_get_max_threads();
  for_each_isa([&] {
    for (int threads : {1, 2}) {
      omp_set_num_threads(threads);
      for (int t = 0; t < 4; ++t)
        for (bool column : {true, false})
          for (int64_t n : {int64_t{1}, int64_t{5}, int64_t{64}, int64_t{200}})
            for (int64_t K : {int64_t{3}, int64_t{64}, int64_t{1500}}) {
              const bool ta = t & 1, tb = t & 2;
              const int64_t batch = 21, M = column ? n : 1, N = column ? 1 : n;
              const int64_t lda = (ta ? M : K) + 2, ldb = (tb ? K : N) + 3, ldc = N + 1;
              const int64_t sa = (ta ? K : M) * lda + 5, sb = (tb ? N : K) * ldb + 7;
              const int64_t sc = M * ldc + 2;
              std::mt19937 rng(static_cast<uint32_t>(100 + t + n + K));
              std::vector<float> A(batch * sa), B(batch * sb), C(batch * sc);
              fill_uniform(rng, {&A, &B, &C});
              std::vector<float> ref = C;
              for (int64_t b = 0; b < batch; ++b)
                sgemm_reference(ta, tb, M, N, K, 0.75f, A.data() + b * sa, lda, B.data() + b * sb,
                                ldb, -0.5f, ref.data() + b * sc, ldc);
              sgemm_batched(ta, tb, batch, M, N, K, 0.75f, A.data(), lda, sa, B.data(), ldb, sb,
                            -0.5f, C.data(), ldc, sc);
              const double worst = max_abs_diff(C, ref);
              CAPTURE(threads);
              CAPTURE(t);
              CAPTURE(column);
              CAPTURE(n);
              CAPTURE(K);
              CHECK(worst < 1e-6 * (K + 2) * 4);
            }
    }
  });
  omp_set_num_threads(prev_threads);
}

TEST_CASE("dgemm matches a naive double product for every transpose and stride") {
  // AVX2 (kernels/cpu/dgemm_avx2.cpp: 6x8 tiles, K in steps of 256, N in blocks of 2048, row
  // blocks shrunk to give each thread rows; products up to 640^3 cut into row or column slices
  // per thread) and the portable loop, 1, 2 and 3 threads; beta 0 must not read C (NaN there),
  // the columns between N and ldc must stay untouched.
  struct Shape {
    int64_t M, N, K;
  };
  const Shape shapes[] = {{1, 3, 6},      {7, 9, 12},   {70, 72, 75}, {300, 302, 305},
                          {7, 2100, 300}, {97, 5, 513}, {6, 8, 256},  {5, 4, 0}};
  const int prev_threads = omp_get_max_threads();
  for_each_isa([&] {
    for (int threads : {1, 2, 3}) {
      omp_set_num_threads(threads);
      std::mt19937 rng(9);
      std::uniform_real_distribution<double> u(-1.0, 1.0);
      for (int t = 0; t < 4; ++t)
        for (const Shape& sh : shapes) {
          const bool ta = t & 1, tb = t & 2;
          const int64_t M = sh.M, N = sh.N, K = sh.K;
          const int64_t lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 1, ldc = N + 4;
          std::vector<double> A((ta ? K : M) * lda), B((tb ? N : K) * ldb), C(M * ldc);
          for (auto& x : A) x = u(rng);
          for (auto& x : B) x = u(rng);
          for (auto& x : C) x = u(rng);
          for (double beta : {0.0, -1.5}) {
            std::vector<double> got = C, ref = C;
            if (beta == 0.0)
              for (int64_t i = 0; i < M; ++i)
                got[i * ldc] = std::numeric_limits<double>::quiet_NaN();
            dgemm(ta, tb, M, N, K, 0.75, A.data(), lda, B.data(), ldb, beta, got.data(), ldc);
            dgemm_naive(ta, tb, M, N, K, 0.75, A.data(), lda, B.data(), ldb, beta, ref.data(), ldc);
            double worst = 0;
            for (int64_t i = 0; i < M; ++i)
              for (int64_t j = 0; j < ldc; ++j) {
                const double d = std::fabs(got[i * ldc + j] - ref[i * ldc + j]);
                worst = std::isnan(d) ? INFINITY : std::max(worst, d);
              }
            CAPTURE(threads);
            CAPTURE(M);
            CAPTURE(N);
            CAPTURE(K);
            CAPTURE(t);
            CAPTURE(beta);
            CHECK(worst < 1e-13 * (K + 2));
          }
        }
    }
  });
  omp_set_num_threads(prev_threads);
  std::vector<double> A(4, 1.0), C(6, 2.0);  // batched, A broadcast
  dgemm_batched(false, false, 3, 1, 2, 2, 1.0, A.data(), 2, 0, A.data(), 2, 0, 1.0, C.data(), 2, 2);
  for (double c : C) CHECK(c == 4.0);
}
