#include "layers/init.h"

#include <cmath>
#include <vector>

#include "autograd/grad_mode.h"

namespace smyrf::layers::init {
namespace {
void assign(const Tensor& t, const Tensor& values) {
  NoGradGuard no_grad;  // initialisers write parameters that require grad
  Tensor dst = t;
  dst.copy_(values);
}
}  // namespace

void normal_(const Tensor& t, double mean, double std, Generator* gen) {
  assign(t, normal(t.shape(), mean, std, TensorOptions(kFloat64), gen));
}

void xavier_uniform_(const Tensor& t, double gain, Generator* gen) {
  SMYRF_CHECK_HINT(t.dim() >= 2, "xavier_uniform_",
                   "needs a tensor with at least 2 dims, got " << shape_str(t.shape()),
                   "fan-in and fan-out are undefined for vectors");
  const double receptive =
      static_cast<double>(t.numel()) / static_cast<double>(t.size(0) * t.size(1));
  const double fan_in = t.size(1) * receptive, fan_out = t.size(0) * receptive;
  const double bound = gain * std::sqrt(6.0 / (fan_in + fan_out));
  assign(t, uniform(t.shape(), -bound, bound, TensorOptions(kFloat64), gen));
}

void orthogonal_(const Tensor& t, double gain, Generator* gen) {
  SMYRF_CHECK_HINT(t.dim() >= 2, "orthogonal_",
                   "needs a tensor with at least 2 dims, got " << shape_str(t.shape()),
                   "reshape a vector to (1, n)");
  const int64_t rows = t.size(0), cols = t.numel() / rows;
  if (t.numel() == 0) return;
  // Orthonormalise the n = min(rows, cols) columns of an (m x n) Gaussian matrix, m = max.
  const int64_t m = std::max(rows, cols), n = std::min(rows, cols);
  std::vector<double> a =
      randn({n, m}, TensorOptions(kFloat64), gen).to_vector<double>();  // column j at a[j*m]
  for (int64_t j = 0; j < n; ++j) {
    double* qj = a.data() + j * m;
    // modified Gram-Schmidt, run twice: the second pass removes what rounding left behind
    for (int pass = 0; pass < 2; ++pass) {
      for (int64_t i = 0; i < j; ++i) {
        const double* qi = a.data() + i * m;
        double d = 0;
        for (int64_t k = 0; k < m; ++k) d += qi[k] * qj[k];
        for (int64_t k = 0; k < m; ++k) qj[k] -= d * qi[k];
      }
    }
    double norm = 0;
    for (int64_t k = 0; k < m; ++k) norm += qj[k] * qj[k];
    norm = std::sqrt(norm);
    SMYRF_CHECK(norm > 1e-300, "orthogonal_",
                "degenerate random matrix (column " << j << " has zero norm)");
    for (int64_t k = 0; k < m; ++k)
      qj[k] /= norm;  // gain comes last: projections need unit vectors
  }
  // a holds Q^T (n x m): that is the (rows x cols) matrix when rows <= cols, its transpose
  // otherwise.
  std::vector<double> out(static_cast<size_t>(rows * cols));
  for (int64_t j = 0; j < n; ++j)
    for (int64_t k = 0; k < m; ++k) {
      if (rows <= cols)
        out[j * cols + k] = gain * a[j * m + k];
      else
        out[k * cols + j] = gain * a[j * m + k];
    }
  assign(t, from_vector<double>(out, t.shape(), kFloat64));
}

}  // namespace smyrf::layers::init
