// The AVX2 layer-norm kernels (kernels/cpu/norm*.cpp) against the scalar double reference:
// odd and tiny row lengths, rows longer than L1, large offsets (mean >> std), constant rows,
// every affine combination, odd row counts (the backward takes rows two at a time), uneven
// thread splits, unaligned buffers and the streaming-store path for outputs of 16 MiB and up.
// The row kernels are also called directly: the stream flag must not change a single bit.
#include <doctest/doctest.h>
#include <omp.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/norm.h"
#include "kernels/cpu/norm_avx2.h"
#include "kernels/cpu/row_avx2.h"
#include "kernels/cpu/short_rows_avx2.h"
#include "kernels/cpu/streaming_store.h"
#include "tests/kernels/kernel_test_util.h"

using namespace smyrf::kernels::cpu;
using kernel_test::close;
using kernel_test::IsaGuard;

namespace {

bool have_avx2() {
  if (!cpu_has_avx2_fma()) MESSAGE("no AVX2+FMA here: AVX2 layer-norm checks skipped");
  return cpu_has_avx2_fma();
}

struct ThreadGuard {
  int prev = omp_get_max_threads();
  explicit ThreadGuard(int n) { omp_set_num_threads(n); }
  ~ThreadGuard() { omp_set_num_threads(prev); }
};

// A float buffer whose data starts `skew` floats past a 32-byte boundary (streaming stores
// must peel to alignment first), with guard values after the end that must survive.
struct Buf {
  static constexpr float kGuard = -777.f;
  std::vector<float> store;
  float* p;
  int64_t n;
  Buf(int64_t n_, int skew, float fill = 0.f) : store(n_ + 16 + 8, kGuard), n(n_) {
    auto addr = reinterpret_cast<uintptr_t>(store.data());
    p = store.data() + ((32 - addr % 32) % 32) / sizeof(float) + skew;
    std::fill(p, p + n, fill);
  }
  bool guard_ok() const {
    for (int i = 0; i < 8; ++i)
      if (p[n + i] != kGuard) return false;
    return true;
  }
};

void fill_randn(float* p, int64_t n, uint32_t seed, float scale, float offset) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> d(0.f, scale);
  for (int64_t i = 0; i < n; ++i) p[i] = offset + d(gen);
}

void check_close(const float* got, const float* want, int64_t n, double rel, double abs,
                 const std::string& what) {
  int64_t bad = -1;
  for (int64_t i = 0; i < n && bad < 0; ++i)
    if (!close(got[i], want[i], rel, abs)) bad = i;
  INFO(what << ": n=" << n << " first mismatch at " << bad << ": got "
            << (bad >= 0 ? got[bad] : 0.f) << " want " << (bad >= 0 ? want[bad] : 0.f));
  CHECK(bad < 0);
}

// Inputs of one case: x rows with per-row offsets (row 1 far from zero, row 2 constant when
// there are enough rows), weight, bias and dy.
struct Case {
  int64_t rows, n;
  Buf x, w, b, dy;
  Case(int64_t rows_, int64_t n_, float offset, int skew)
      : rows(rows_), n(n_), x(rows_ * n_, skew), w(n_, 0), b(n_, 3), dy(rows_ * n_, skew) {
    fill_randn(x.p, rows * n, static_cast<uint32_t>(rows * 7919 + n), 2.f, 0.f);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t i = 0; i < n; ++i) x.p[r * n + i] += (r % 3 == 1) ? offset : 0.5f * r;
    if (rows > 2)
      for (int64_t i = 0; i < n; ++i) x.p[2 * n + i] = 3.7f;  // a constant row: xhat = 0
    fill_randn(w.p, n, 11, 1.f, 1.f);
    fill_randn(b.p, n, 12, 1.f, 0.f);
    fill_randn(dy.p, rows * n, 13, 1.f, 0.f);
  }
};

// Forward and backward under the scalar reference and under AVX2, compared.
// inf_row: a row holding an inf, whose mean is not compared (the reference's is inf; the AVX2
// kernels, which take the moments about a shift, give NaN; y and dx are NaN in both).
void compare_to_scalar(const Case& c, bool use_w, bool use_b, bool want_dw, bool want_db, int skew,
                       int64_t inf_row = -1) {
  const int64_t N = c.rows * c.n;
  const float* wp = use_w ? c.w.p : nullptr;
  const float* bp = use_b ? c.b.p : nullptr;
  Buf y_ref(N, skew), y_vec(N, skew), dx_ref(N, skew), dx_vec(N, skew);
  std::vector<float> m_ref(c.rows), m_vec(c.rows), s_ref(c.rows), s_vec(c.rows);
  Buf dw_ref(c.n, 1), dw_vec(c.n, 1), db_ref(c.n, 1), db_vec(c.n, 1);
  for (Isa isa : {Isa::Scalar, Isa::Avx2}) {
    IsaGuard g(isa);
    const bool v = isa == Isa::Avx2;
    layernorm_rows<float>(c.x.p, wp, bp, v ? y_vec.p : y_ref.p, v ? m_vec.data() : m_ref.data(),
                          v ? s_vec.data() : s_ref.data(), c.rows, c.n, 1e-5);
    // both backward runs take the reference statistics, so dx compares the backward alone
    layernorm_rows_backward<float>(c.dy.p, c.x.p, m_ref.data(), s_ref.data(), wp,
                                   v ? dx_vec.p : dx_ref.p,
                                   want_dw ? (v ? dw_vec.p : dw_ref.p) : nullptr,
                                   want_db ? (v ? db_vec.p : db_ref.p) : nullptr, c.rows, c.n);
  }
  check_close(y_vec.p, y_ref.p, N, 2e-5, 2e-5, "y");
  if (inf_row >= 0) m_vec[inf_row] = m_ref[inf_row];
  check_close(m_vec.data(), m_ref.data(), c.rows, 1e-6, 1e-6, "mean");
  check_close(s_vec.data(), s_ref.data(), c.rows, 1e-5, 0, "rstd");
  check_close(dx_vec.p, dx_ref.p, N, 1e-4, 1e-4, "dx");
  if (want_dw) check_close(dw_vec.p, dw_ref.p, c.n, 1e-4, 1e-4 * c.rows, "dw");
  if (want_db) check_close(db_vec.p, db_ref.p, c.n, 1e-5, 1e-5 * c.rows, "db");
  CHECK(y_vec.guard_ok());
  CHECK(dx_vec.guard_ok());
  CHECK(dw_vec.guard_ok());
  CHECK(db_vec.guard_ok());
  if (!want_dw) CHECK(dw_vec.p[0] == 0.f);  // a null dw is not written
}

}  // namespace

TEST_CASE("layernorm AVX2 vs scalar: row lengths, offsets, constant rows, affine variants") {
  if (!have_avx2()) return;
  // 1-17: tails only and around one vector; 1025 / 4099: past the kFlush fold; 20011 and
  // 70001 (80 KiB, 280 KiB): rows longer than L1 (the passes after the first come from L2)
  for (int64_t n : {1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 33, 100, 1025, 4099, 20011, 70001}) {
    for (int64_t rows : {1, 2, 3, 17, 40}) {
      if (rows * n > 600000 && rows > 3) continue;
      for (float offset : {0.f, 1000.f, -30000.f}) {
        const Case c(rows, n, offset, 1);
        for (int affine = 0; affine < 4; ++affine) {
          CAPTURE(n);
          CAPTURE(rows);
          CAPTURE(offset);
          CAPTURE(affine);
          const bool use_w = affine & 1, use_b = affine & 2;
          compare_to_scalar(c, use_w, use_b, use_w, use_b, 1);
        }
      }
    }
  }
}

TEST_CASE("layernorm AVX2 backward: dw only, db only, neither; odd rows over uneven threads") {
  if (!have_avx2()) return;
  for (int threads : {1, 2, 3}) {
    ThreadGuard tg(threads);
    // rows * n >= 32768 so the kernels go parallel; 41 and 37 rows split unevenly, and each
    // thread's block may end in a single row after its pairs
    for (auto [rows, n] : {std::pair<int64_t, int64_t>{41, 1023}, {37, 4096}, {2, 20000}}) {
      const Case c(rows, n, 100.f, 3);
      for (int mode = 0; mode < 3; ++mode) {
        CAPTURE(threads);
        CAPTURE(rows);
        CAPTURE(n);
        CAPTURE(mode);
        compare_to_scalar(c, true, true, mode == 0, mode == 1, 5);
      }
    }
  }
}

TEST_CASE("layernorm AVX2 short rows (blocks of 8): every n up to the cap, threads, edge rows") {
  if (!have_avx2()) return;
  // rows of n <= avx2::kShortRowForwardMax go eight at a time through
  // kernels/cpu/short_rows_avx2.h; each thread's share ends in share % 8 rows of the row kernel.
  // Rows: one block, a partial group with tail rows, and (with the thread counts) enough rows to go
  // parallel
  for (int64_t n = 1; n <= avx2::kShortRowForwardMax + 1; ++n) {
    for (int64_t rows : {int64_t(8), int64_t(141), 40000 / n + 13}) {
      for (int threads : {1, 3}) {
        if (threads > 1 && rows * n < 32768) continue;
        ThreadGuard tg(threads);
        Case c(rows, n, 1000.f, 1);
        // a row with a NaN and one with an inf: NaN rows in both
        if (rows > 20) {
          c.x.p[17 * n + n / 2] = std::numeric_limits<float>::quiet_NaN();
          c.x.p[19 * n] = std::numeric_limits<float>::infinity();
        }
        for (int affine = 0; affine < 4; ++affine) {
          CAPTURE(n);
          CAPTURE(rows);
          CAPTURE(threads);
          CAPTURE(affine);
          const bool use_w = affine & 1, use_b = affine & 2;
          // dw / db would be NaN through the NaN row: only the 8- and 141-row cases ask for them
          const bool grads = rows <= 20;
          compare_to_scalar(c, use_w, use_b, use_w && grads, use_b && grads, affine & 1,
                            rows > 20 ? 19 : -1);
        }
      }
    }
  }
  // outputs of 16 MiB and more stream when aligned (skew 0), not otherwise
  for (int64_t n : {int64_t(10), int64_t(64)}) {
    const int64_t rows = kStreamingStoreMinBytes / 4 / n + 3;
    const Case c(rows, n, 50.f, 0);
    CAPTURE(n);
    compare_to_scalar(c, true, true, true, true, 0);
    compare_to_scalar(c, true, false, false, false, 1);
  }
}

TEST_CASE("layernorm AVX2 vs scalar on outputs large enough for streaming stores") {
  if (!have_avx2()) return;
  // 1029 x 4099 floats = 16.9 MB >= 16 MiB: y and dx go out with streaming stores (unless
  // SMYRF_STREAMING_STORES=0); odd n puts every row at a different alignment
  const int64_t rows = 1029, n = 4099;
  REQUIRE(rows * n * static_cast<int64_t>(sizeof(float)) >= kStreamingStoreMinBytes);
  const Case c(rows, n, 50.f, 2);
  compare_to_scalar(c, true, true, true, true, 7);
  compare_to_scalar(c, false, false, false, false, 0);
}

TEST_CASE("layernorm AVX2 row kernels: streaming stores change no bit; two rows = one + one") {
  if (!have_avx2()) return;
  for (int64_t n : {1, 3, 7, 8, 12, 31, 40, 48, 49, 63, 100, 1000, 1031, 5000}) {
    for (int skew = 0; skew <= 8; skew += 2) {
      CAPTURE(n);
      CAPTURE(skew);
      const Case c(2, n, 10.f, skew);
      Buf y0(2 * n, skew), y1(2 * n, skew);
      double mean[2], rstd[2];
      for (int r = 0; r < 2; ++r) {
        avx2::layernorm_row_f32(c.x.p + r * n, c.w.p, c.b.p, y0.p + r * n, n, 1e-5, &mean[r],
                                &rstd[r], nullptr, false);
        double m2, s2;
        avx2::layernorm_row_f32(c.x.p + r * n, c.w.p, c.b.p, y1.p + r * n, n, 1e-5, &m2, &s2,
                                c.x.p + (r + 1) * n, true);
        CHECK(m2 == mean[r]);
        CHECK(s2 == rstd[r]);
      }
      CHECK(std::equal(y0.p, y0.p + 2 * n, y1.p));
      // the backward streamed: both rows through one LineWriter (rows of 16 floats and more),
      // which assembles the line the two rows share
      avx2::rows::LineWriter lw;
      avx2::rows::LineWriter* out = n >= 16 ? &lw : nullptr;
      CHECK(y1.guard_ok());
      // backward: two rows in one call (streamed) against one row per call (plain)
      Buf dx_pair(2 * n, skew), dx_one(2 * n, skew);
      Buf tw_pair(n, 0), tb_pair(n, 0), tw_one(n, 0), tb_one(n, 0);
      avx2::layernorm_rows_backward_f32(c.dy.p, c.x.p, mean, rstd, 2, c.w.p, dx_pair.p, tw_pair.p,
                                        tb_pair.p, n, nullptr, nullptr, out);
      lw.finish();
      streaming_store_fence();
      for (int r = 0; r < 2; ++r)
        avx2::layernorm_rows_backward_f32(c.dy.p + r * n, c.x.p + r * n, mean + r, rstd + r, 1,
                                          c.w.p, dx_one.p + r * n, tw_one.p, tb_one.p, n,
                                          c.dy.p + (r + 1) * n, c.x.p + (r + 1) * n, nullptr);
      check_close(dx_pair.p, dx_one.p, 2 * n, 1e-5, 1e-6, "dx pair vs single");
      check_close(tw_pair.p, tw_one.p, n, 1e-6, 1e-6, "dw partial pair vs single");
      check_close(tb_pair.p, tb_one.p, n, 1e-6, 1e-6, "db partial pair vs single");
      CHECK(dx_pair.guard_ok());
      CHECK(tw_pair.guard_ok());
    }
  }
}

TEST_CASE("layernorm AVX2 forward: rows whose first values sit far from the mean") {
  if (!have_avx2()) return;
  // The forward takes both moments in one read about the mean of the first 8 values and falls
  // back to the two-pass variance when that shift is far from the mean (in units of the row's
  // spread). Bumps of 2.5 and 3 sigma on the first 8 values sit under and over the fallback
  // threshold; 50 and 1000 sigma, ramps and a ramp on a large offset need the fallback.
  for (int64_t n : {9, 16, 100, 1025, 4099, 20011}) {
    const int64_t rows = 8;
    Buf x(rows * n, 1);
    fill_randn(x.p, rows * n, static_cast<uint32_t>(n), 1.f, 0.f);
    const float bumps[] = {2.5f, 3.f, 50.f, 1000.f};
    for (int r = 0; r < 4; ++r)
      for (int64_t i = 0; i < 8; ++i) x.p[r * n + i] += bumps[r];
    for (int64_t i = 0; i < n; ++i) {
      x.p[4 * n + i] = 0.01f * i;                  // ascending ramp
      x.p[5 * n + i] = 5.f - 0.001f * i;           // descending ramp
      x.p[6 * n + i] = 4096.f + 0.01f * (i % 97);  // a sawtooth on a large offset
      x.p[7 * n + i] = (i < n / 2) ? -3.f : 3.f;   // two levels
    }
    Buf y_ref(rows * n, 1), y_vec(rows * n, 1);
    std::vector<float> m_ref(rows), m_vec(rows), s_ref(rows), s_vec(rows);
    for (Isa isa : {Isa::Scalar, Isa::Avx2}) {
      IsaGuard g(isa);
      const bool v = isa == Isa::Avx2;
      layernorm_rows<float>(x.p, nullptr, nullptr, v ? y_vec.p : y_ref.p,
                            v ? m_vec.data() : m_ref.data(), v ? s_vec.data() : s_ref.data(), rows,
                            n, 1e-5);
    }
    CAPTURE(n);
    check_close(s_vec.data(), s_ref.data(), rows, 2e-6, 0, "rstd");
    check_close(m_vec.data(), m_ref.data(), rows, 1e-6, 1e-6, "mean");
    check_close(y_vec.p, y_ref.p, rows * n, 1e-5, 1e-5, "y");
  }
}
