// Baseline for `bench/compare gemm`: times Debian's OpenBLAS cblas_sgemm on one shape and prints
// one JSON line in the same units as `smyrf bench gemm --json` (median over timed runs).
//
//   openblas_gemm SHAPE TRANS        SHAPE = MxNxK, TRANS = NN|NT|TN|TT
//   openblas_gemm BxMxNxK TRANS      batched: B independent products, cblas_sgemm in a loop
//   openblas_gemm SHAPE TRANS f64    the same with cblas_dgemm (bench/compare gemm-f64)
//
// Build: cc -O2 openblas_gemm.c -o openblas_gemm -lopenblas (bench/compare does this).
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static int cmp_double(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

static float uniform(unsigned* s) {
  *s = *s * 1664525u + 1013904223u;
  return (float)((*s >> 8) & 0xffff) / 65536.0f - 0.5f;
}

static void fill(float* p, size_t n) {
  unsigned s = 12345u;
  for (size_t i = 0; i < n; ++i) p[i] = uniform(&s);
}

static void fill_d(double* p, size_t n) {
  unsigned s = 12345u;
  for (size_t i = 0; i < n; ++i) p[i] = uniform(&s);
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s [B x]MxNxK NN|NT|TN|TT [f64]\n", argv[0]);
    return 2;
  }
  long d[4] = {1, 0, 0, 0};
  int nd = sscanf(argv[1], "%ldx%ldx%ldx%ld", &d[0], &d[1], &d[2], &d[3]);
  long B = 1, M, N, K;
  if (nd == 4) {
    B = d[0], M = d[1], N = d[2], K = d[3];
  } else if (nd == 3) {
    M = d[0], N = d[1], K = d[2];
  } else {
    fprintf(stderr, "bad shape %s\n", argv[1]);
    return 2;
  }
  const char* trans = argv[2];
  int ta = trans[0] == 'T', tb = trans[1] == 'T';
  int f64 = argc > 3 && strcmp(argv[3], "f64") == 0;
  size_t sa = (size_t)M * K, sb = (size_t)K * N, sc = (size_t)M * N;
  size_t es = f64 ? sizeof(double) : sizeof(float);
  float* A = malloc(es * sa * B);
  float* Bm = malloc(es * sb * B);
  float* C = malloc(es * sc * B);
  double *Ad = (double*)A, *Bd = (double*)Bm, *Cd = (double*)C;
  if (f64) {
    fill_d(Ad, sa * B);
    fill_d(Bd, sb * B);
  } else {
    fill(A, sa * B);
    fill(Bm, sb * B);
  }
  memset(C, 0, es * sc * B);
  long lda = ta ? M : K, ldb = tb ? K : N;

  double times[1000];
  int runs = 0;
  double total = 0;
  for (int it = -2; runs < 1000; ++it) {
    double t0 = now_ms();
    for (long b = 0; b < B; ++b) {
      if (f64)
        cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                    M, N, K, 1.0, Ad + b * sa, lda, Bd + b * sb, ldb, 0.0, Cd + b * sc, N);
      else
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                    M, N, K, 1.0f, A + b * sa, lda, Bm + b * sb, ldb, 0.0f, C + b * sc, N);
    }
    double t = now_ms() - t0;
    if (it < 0) continue;  // warm-up
    times[runs++] = t;
    total += t;
    if (runs >= 3 && total >= 300.0) break;
  }
  qsort(times, runs, sizeof(double), cmp_double);
  double med = runs % 2 ? times[runs / 2] : 0.5 * (times[runs / 2 - 1] + times[runs / 2]);
  double gflops = 2.0 * B * M * N * K / (med * 1e6);
  printf(
      "{\"impl\": \"openblas\", \"shape\": \"%s\", \"trans\": \"%s\", \"median_ms\": %.6g, "
      "\"min_ms\": %.6g, \"gflops\": %.6g, \"core\": \"%s\"}\n",
      argv[1], trans, med, times[0], gflops, openblas_get_corename());
  free(A);
  free(Bm);
  free(C);
  return 0;
}
