// FCD / KID building blocks (train/metrics.h) against closed forms and known answers, the image
// distortions of the calibration, and SHA-256 (core/sha256.h) against the FIPS 180-4 vectors.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <vector>

#include "autograd/ops.h"
#include "core/random.h"
#include "core/sha256.h"
#include "train/calibration.h"
#include "train/metrics.h"

using namespace smyrf;
using namespace smyrf::train;

namespace {

// A random symmetric positive-definite n x n matrix: Q diag(l) Q^T with Q from a Jacobi solve of
// a random symmetric matrix (so it is not diagonal) and eigenvalues l in [0.5, 2.5].
std::vector<double> random_spd(int64_t n, uint64_t seed,
                               std::vector<double>* eigenvalues = nullptr) {
  Generator g(seed);
  std::vector<double> r = randn({n, n}, kFloat64, &g).to_vector<double>();
  std::vector<double> s(n * n);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) s[i * n + j] = r[i * n + j] + r[j * n + i];
  const SymmetricEigen e = symmetric_eigen(s, n);
  std::vector<double> l = uniform({n}, 0.5, 2.5, kFloat64, &g).to_vector<double>();
  std::vector<double> a(n * n, 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j)
      for (int64_t k = 0; k < n; ++k)
        a[i * n + j] += e.vectors[i * n + k] * l[k] * e.vectors[j * n + k];
  if (eigenvalues) *eigenvalues = l;
  return a;
}

GaussianStats stats(std::vector<double> mean, std::vector<double> cov) {
  GaussianStats g;
  g.dim = static_cast<int64_t>(mean.size()), g.count = 1000;
  g.mean = std::move(mean), g.cov = std::move(cov);
  return g;
}

double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

}  // namespace

TEST_CASE("sha256: FIPS 180-4 known answers") {
  CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  CHECK(sha256_hex(std::string(1000000, 'a')) ==
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  // 55, 56 and 64 bytes: the lengths where the padding spills into a second block.
  CHECK(sha256_hex(std::string(55, 'a')) ==
        "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
  CHECK(sha256_hex(std::string(56, 'a')) ==
        "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
  CHECK(sha256_hex(std::string(64, 'a')) ==
        "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
}

TEST_CASE("sha256: incremental updates and files agree with one shot") {
  std::string msg;
  for (int i = 0; i < 1000; ++i) msg += static_cast<char>(i * 7 + 3);
  Sha256 h;
  for (size_t i = 0; i < msg.size(); i += 37) h.update(msg.substr(i, 37));
  CHECK(h.hex_digest() == sha256_hex(msg));
  CHECK_THROWS(h.update("x"));  // finished

  const auto path = std::filesystem::temp_directory_path() / "smyrf_sha256_test.bin";
  {
    std::ofstream f(path, std::ios::binary);
    f << msg;
  }
  CHECK(sha256_file_hex(path.string()) == sha256_hex(msg));
  std::filesystem::remove(path);
  CHECK_THROWS(sha256_file_hex(path.string()));
}

TEST_CASE("symmetric_eigen: known matrices") {
  SUBCASE("2x2") {
    const SymmetricEigen e = symmetric_eigen({2, 1, 1, 2}, 2);
    CHECK(e.values[0] == doctest::Approx(1.0).epsilon(1e-14));
    CHECK(e.values[1] == doctest::Approx(3.0).epsilon(1e-14));
    // eigenvector of 3 is (1, 1)/sqrt 2 up to sign
    CHECK(std::abs(e.vectors[0 * 2 + 1]) == doctest::Approx(std::sqrt(0.5)));
    CHECK(e.vectors[0 * 2 + 1] * e.vectors[1 * 2 + 1] > 0);
  }
  SUBCASE("tridiagonal (2, -1): eigenvalues 2 - sqrt2, 2, 2 + sqrt2") {
    const SymmetricEigen e = symmetric_eigen({2, -1, 0, -1, 2, -1, 0, -1, 2}, 3);
    CHECK(e.values[0] == doctest::Approx(2 - std::sqrt(2.0)).epsilon(1e-13));
    CHECK(e.values[1] == doctest::Approx(2.0).epsilon(1e-13));
    CHECK(e.values[2] == doctest::Approx(2 + std::sqrt(2.0)).epsilon(1e-13));
  }
  SUBCASE("diagonal and repeated eigenvalues") {
    const SymmetricEigen e = symmetric_eigen({5, 0, 0, 0, -1, 0, 0, 0, 5}, 3);
    CHECK(e.values == std::vector<double>{-1, 5, 5});
  }
  SUBCASE("random 40x40: A V = V diag(l), V orthonormal, eigenvalues as built") {
    const int64_t n = 40;
    std::vector<double> l;
    const std::vector<double> a = random_spd(n, 7, &l);
    const SymmetricEigen e = symmetric_eigen(a, n);
    std::sort(l.begin(), l.end());
    CHECK(max_abs_diff(e.values, l) < 1e-12);
    double resid = 0, ortho = 0;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double av = 0, vv = 0;
        for (int64_t k = 0; k < n; ++k) {
          av += a[i * n + k] * e.vectors[k * n + j];
          vv += e.vectors[k * n + i] * e.vectors[k * n + j];
        }
        resid = std::max(resid, std::abs(av - e.values[j] * e.vectors[i * n + j]));
        ortho = std::max(ortho, std::abs(vv - (i == j ? 1.0 : 0.0)));
      }
    CHECK(resid < 1e-12);
    CHECK(ortho < 1e-12);
  }
  CHECK_THROWS(symmetric_eigen({1, 2, 3, 4}, 2));  // not symmetric
  CHECK_THROWS(symmetric_eigen({1, 2, 3}, 2));     // wrong size
}

TEST_CASE("symmetric_sqrt squares back; negative rounding eigenvalues are clipped") {
  const int64_t n = 12;
  const std::vector<double> a = random_spd(n, 3);
  const std::vector<double> r = symmetric_sqrt(a, n);
  std::vector<double> rr(n * n, 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j)
      for (int64_t k = 0; k < n; ++k) rr[i * n + j] += r[i * n + k] * r[k * n + j];
  CHECK(max_abs_diff(rr, a) < 1e-12);
  // A PSD matrix of rank 1 perturbed below zero: the root stays real and squares back closely.
  const std::vector<double> p = {1, 1, 1, 1 - 1e-17};
  const std::vector<double> rp = symmetric_sqrt(p, 2);
  for (double v : rp) CHECK(std::isfinite(v));
}

TEST_CASE("FCD: identical Gaussians give 0") {
  Generator g(1);
  Tensor x = randn({3000, 16}, kFloat32, &g) * 2.0 + 1.0;
  const GaussianStats s = fit_gaussian(x);
  CHECK(std::abs(frechet_distance(s, s)) < 1e-9);
  const GaussianStats spd = stats(std::vector<double>(30, 0.3), random_spd(30, 11));
  CHECK(std::abs(frechet_distance(spd, spd)) < 1e-9);
}

TEST_CASE("FCD: closed forms") {
  SUBCASE("diagonal covariances: |dmu|^2 + sum (sqrt a - sqrt b)^2") {
    const std::vector<double> a = {1, 4, 0.25, 9}, b = {4, 1, 1, 0.01};
    std::vector<double> ca(16, 0.0), cb(16, 0.0);
    double expect = 1 * 1 + 2 * 2;  // means (0,0,0,0) and (1,-2,0,0)
    for (int i = 0; i < 4; ++i) {
      ca[i * 5] = a[i], cb[i * 5] = b[i];
      expect += std::pow(std::sqrt(a[i]) - std::sqrt(b[i]), 2);
    }
    const double fd = frechet_distance(stats({0, 0, 0, 0}, ca), stats({1, -2, 0, 0}, cb));
    CHECK(fd == doctest::Approx(expect).epsilon(1e-12));
  }
  SUBCASE("full covariances S and c^2 S: (1 - c)^2 tr S") {
    const int64_t n = 24;
    const std::vector<double> s = random_spd(n, 5);
    std::vector<double> s4 = s;
    for (double& v : s4) v *= 4.0;  // c = 2
    double tr = 0;
    for (int64_t i = 0; i < n; ++i) tr += s[i * n + i];
    const std::vector<double> zero(n, 0.0);
    CHECK(frechet_distance(stats(zero, s), stats(zero, s4)) == doctest::Approx(tr).epsilon(1e-10));
    CHECK(trace_sqrt_product(s, s4, n) == doctest::Approx(2 * tr).epsilon(1e-10));
  }
  SUBCASE("FCD is symmetric and positive for different full covariances") {
    const int64_t n = 16;
    const GaussianStats a = stats(std::vector<double>(n, 0.0), random_spd(n, 21));
    const GaussianStats b = stats(std::vector<double>(n, 0.1), random_spd(n, 22));
    const double ab = frechet_distance(a, b), ba = frechet_distance(b, a);
    CHECK(ab > 0.01);
    CHECK(ab == doctest::Approx(ba).epsilon(1e-10));
  }
}

TEST_CASE("FCD of samples: N(0, I) vs N(mu, I) approaches |mu|^2") {
  const int64_t d = 8, n = 20000;
  Generator g(4);
  Tensor x = randn({n, d}, kFloat32, &g);
  std::vector<float> mu(d, 0.0f);
  mu[0] = 1.0f, mu[3] = -1.0f, mu[5] = 0.5f;  // |mu|^2 = 2.25
  Tensor y = randn({n, d}, kFloat32, &g) + from_vector(mu, {1, d});
  const double fd = frechet_distance(fit_gaussian(x), fit_gaussian(y));
  CHECK(fd == doctest::Approx(2.25).epsilon(0.02));  // sampling error ~ d^2 / n
  CHECK(fd > 2.25 - 0.02);
  CHECK(fit_gaussian(x).count == n);
  CHECK_THROWS(fit_gaussian(x.narrow(0, 0, 1)));
}

TEST_CASE("KID: near 0 for one distribution, clearly positive for a shift") {
  const int64_t d = 16;
  Generator g(9);
  Tensor x = randn({2000, d}, kFloat32, &g), y = randn({2000, d}, kFloat32, &g);
  Tensor z = randn({2000, d}, kFloat32, &g) + 0.5;
  const KidResult same = kernel_inception_distance(x, y, 20, 500, 1);
  const KidResult shifted = kernel_inception_distance(x, z, 20, 500, 1);
  CHECK(same.subsets == 20);
  CHECK(same.subset_size == 500);
  CHECK(std::abs(same.mean) < 3 * same.std + 1e-3);
  CHECK(std::abs(same.mean) < 0.01);
  CHECK(shifted.mean > 10 * std::max(same.std, std::abs(same.mean)));
  CHECK(shifted.mean > 5 * shifted.std / std::sqrt(20.0));
  // Deterministic given the seed.
  CHECK(kernel_inception_distance(x, z, 3, 200, 5).mean ==
        kernel_inception_distance(x, z, 3, 200, 5).mean);
  // Exact value on a tiny case: x = {0, 0}, y = {1, 1} in 1-D: kxx = 1, kyy = 8, kxy = 1
  // -> MMD^2 = 1 + 8 - 2 = 7.
  const KidResult tiny = kernel_inception_distance(zeros({2, 1}), ones({2, 1}), 1, 2, 0);
  CHECK(tiny.mean == doctest::Approx(7.0));
}

TEST_CASE("quantize_images: 8-bit grid, idempotent on real images") {
  Tensor x = from_vector<float>(
      {-1.0f, 1.0f, 0.0f, 0.5f, 2.0f, -3.0f, 1.0f / 127.5f - 1.0f + 0.001f}, {1, 1, 1, 7});
  const std::vector<float> q = quantize_images(x).to_vector<float>();
  CHECK(q[0] == -1.0f);
  CHECK(q[1] == 1.0f);
  CHECK(q[2] == doctest::Approx(128 / 127.5 - 1));  // round(127.5) = 128
  CHECK(q[4] == 1.0f);                              // clamped
  CHECK(q[5] == -1.0f);
  CHECK(q[6] == doctest::Approx(1 / 127.5 - 1));
  for (int v = 0; v < 256; ++v) {  // a real pixel survives the round trip exactly
    const float real = v / 127.5f - 1.0f;
    CHECK(quantize_images(full({1, 1, 1, 1}, real)).item<float>() == real);
  }
}

TEST_CASE("label_accuracy and predicted_histogram") {
  Tensor logits = from_vector<float>({3, 1, 0, 0, 2, 1, 0, 0, 5, 4, 3, 1}, {4, 3});
  Tensor labels = from_vector<int64_t>({0, 1, 0, 0}, {4});
  CHECK(label_accuracy(logits, labels) == doctest::Approx(0.75));
  CHECK(predicted_histogram(logits, 3) == std::vector<int64_t>{2, 1, 1});
  CHECK_THROWS(label_accuracy(logits, labels.narrow(0, 0, 3)));
}

TEST_CASE("distortions: strength 0 is the identity; what each one changes") {
  Generator g(2);
  Tensor x = uniform({4, 1, 32, 32}, -1, 1, kFloat32, &g);
  for (Distortion d : {Distortion::Noise, Distortion::Blur, Distortion::Occlusion})
    CHECK(max_abs_diff(distort_images(x, d, 0, 1).to(kFloat64).to_vector<double>(),
                       x.to(kFloat64).to_vector<double>()) == 0);
  // Noise: the requested standard deviation where nothing is clamped.
  Tensor mid = zeros({8, 1, 32, 32});
  CHECK(smyrf::std(distort_images(mid, Distortion::Noise, 0.1, 3)).item() ==
        doctest::Approx(0.1).epsilon(0.05));
  // Blur keeps a constant image and smooths a random one.
  Tensor c = full({1, 1, 32, 32}, 0.25);
  CHECK(max_abs_diff(distort_images(c, Distortion::Blur, 1.0, 0).to(kFloat64).to_vector<double>(),
                     c.to(kFloat64).to_vector<double>()) < 1e-6);
  CHECK(smyrf::std(distort_images(x, Distortion::Blur, 1.0, 0)).item() <
        0.5 * smyrf::std(x).item());
  // Occlusion: exactly side^2 pixels per image become 0, inside the central 28x28.
  Tensor ones_img = ones({3, 1, 32, 32});
  Tensor occ = distort_images(ones_img, Distortion::Occlusion, 10, 4);
  for (int64_t i = 0; i < 3; ++i) {
    Tensor im = occ.select(0, i);
    CHECK(sum(eq(im, zeros({1}))).item() == 100);
    CHECK(sum(eq(im.slice(1, 2, 30).slice(2, 2, 30), zeros({1}))).item() == 100);
  }
  CHECK_THROWS(distort_images(x, Distortion::Occlusion, 40, 0));
  CHECK_THROWS(distort_images(x, Distortion::Noise, -1, 0));
}
