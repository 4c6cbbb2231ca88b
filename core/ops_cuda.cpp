// CUDA dispatch for the raw op layer (see ops_cuda.h). Status: ran on an H200 (tests/cuda),
// but for the functions ops_cuda.h names as compiled only.
#include "core/ops_cuda.h"

#include <cstdlib>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "core/error.h"
#ifdef SMYRF_WITH_CUDA
#include "core/ops_cuda_run.h"
#include "kernels/cuda/blas.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/index.h"
#include "kernels/cuda/norm.h"
#include "kernels/cuda/optim.h"
#include "kernels/cuda/random_fill.h"
#include "kernels/cuda/reduce.h"
#include "kernels/cuda/runtime.h"
#endif

namespace smyrf::cuda_ops {

namespace {
void check_rows_min_inner(int64_t n) {
  if (n < 0)
    throw Error("elementwise", "rows path minimum inner length " + std::to_string(n),
                "use 0 (off) or a row length such as 1024");
}
}  // namespace

#ifdef SMYRF_WITH_CUDA
namespace kg = kernels::cuda;

using detail::ptr;
using detail::run;

int64_t set_pointwise_rows_min_inner(int64_t n) {
  check_rows_min_inner(n);
  try {
    return kg::set_pointwise_rows_min_inner(n);
  } catch (const std::invalid_argument&) {  // a bad SMYRF_CUDA_POINTWISE_ROWS
    const char* env = std::getenv("SMYRF_CUDA_POINTWISE_ROWS");
    throw Error("elementwise",
                std::string("SMYRF_CUDA_POINTWISE_ROWS='") + (env ? env : "") + "' is not a count",
                "set it to a row length such as 1024, or 0 (off), or unset it");
  }
}

void unary(kernels::cpu::UnaryOp op, double a, double b, const IterPlan& p, const Tensor& x,
           const Tensor& out) {
  run("unary", x, [&] {
    SMYRF_DISPATCH_NUMERIC(x.dtype(), "unary", [&] {
      kg::unary<scalar_t>(op, a, b, p.ndim, p.sizes, ptr<scalar_t>(x), p.s(0), ptr<scalar_t>(out),
                          p.s(1));
    });
  });
}

void binary(kernels::cpu::BinaryOp op, const IterPlan& p, const Tensor& a, const Tensor& b,
            const Tensor& out) {
  run("binary", out, [&] {
    SMYRF_DISPATCH_ALL(out.dtype(), "binary", [&] {
      kg::binary<scalar_t>(op, p.ndim, p.sizes, ptr<scalar_t>(a), p.s(0), ptr<scalar_t>(b), p.s(1),
                           ptr<scalar_t>(out), p.s(2));
    });
  });
}

void compare(kernels::cpu::CompareOp op, const IterPlan& p, const Tensor& a, const Tensor& b,
             const Tensor& out) {
  run("compare", out, [&] {
    SMYRF_DISPATCH_ALL(a.dtype(), "compare", [&] {
      kg::compare<scalar_t>(op, p.ndim, p.sizes, ptr<scalar_t>(a), p.s(0), ptr<scalar_t>(b), p.s(1),
                            ptr<bool>(out), p.s(2));
    });
  });
}

void where(const IterPlan& p, const Tensor& cond, const Tensor& a, const Tensor& b,
           const Tensor& out) {
  run("where", out, [&] {
    SMYRF_DISPATCH_ALL(out.dtype(), "where", [&] {
      kg::where<scalar_t>(p.ndim, p.sizes, ptr<bool>(cond), p.s(0), ptr<scalar_t>(a), p.s(1),
                          ptr<scalar_t>(b), p.s(2), ptr<scalar_t>(out), p.s(3));
    });
  });
}

void convert(const IterPlan& p, const Tensor& src, const Tensor& dst) {
  run("copy_", dst, [&] {
    SMYRF_DISPATCH_CAST(src.dtype(), "copy_", [&] {
      using S = scalar_t;
      SMYRF_DISPATCH_CAST(dst.dtype(), "copy_", [&] {
        kg::convert<S, scalar_t>(p.ndim, p.sizes, ptr<S>(src), p.s(0), ptr<scalar_t>(dst), p.s(1));
      });
    });
  });
}

void fill(const IterPlan& p, const Tensor& dst, double value) {
  run("fill_", dst, [&] {
    SMYRF_DISPATCH_CAST(dst.dtype(), "fill_", [&] {
      kg::fill<scalar_t>(p.ndim, p.sizes, ptr<scalar_t>(dst), p.s(0), static_cast<scalar_t>(value));
    });
  });
}

void masked_scale(const Tensor& x, const Tensor& keep, double scale, const Tensor& y) {
  run("masked_scale", x, [&] {
    SMYRF_DISPATCH_FLOAT(x.dtype(), "masked_scale", [&] {
      kg::masked_scale<scalar_t>(ptr<scalar_t>(x), ptr<bool>(keep), static_cast<scalar_t>(scale),
                                 ptr<scalar_t>(y), x.numel());
    });
  });
}

void copy_bytes(const Tensor& dst, const Tensor& src) {
  run("copy_", dst.device().is_cuda() ? dst : src, [&] {
    kg::memcpy_any(dst.raw_data(), dst.device().is_cuda(), src.raw_data(), src.device().is_cuda(),
                   static_cast<size_t>(src.numel()) * dtype_size(src.dtype()));
  });
}

void reduce(kernels::cpu::ReduceOp op, int kept_ndim, const int64_t* kept_sizes,
            const int64_t* kept_strides, const IterPlan& red, const Tensor& x, const Tensor& out) {
  run("reduce", x, [&] {
    SMYRF_DISPATCH_NUMERIC(x.dtype(), "reduce", [&] {
      kg::reduce<scalar_t>(op, kept_ndim, kept_sizes, kept_strides, red.ndim, red.sizes, red.s(0),
                           ptr<scalar_t>(x), ptr<scalar_t>(out));
    });
  });
}

void argreduce(bool is_max, int kept_ndim, const int64_t* kept_sizes, const int64_t* kept_strides,
               int64_t n, int64_t red_stride, const Tensor& x, const Tensor& out) {
  run(is_max ? "argmax" : "argmin", x, [&] {
    SMYRF_DISPATCH_NUMERIC(x.dtype(), "argreduce", [&] {
      kg::argreduce<scalar_t>(is_max, kept_ndim, kept_sizes, kept_strides, n, red_stride,
                              ptr<scalar_t>(x), ptr<int64_t>(out));
    });
  });
}

void softmax_rows(const Tensor& x, const Tensor& y, int64_t rows, int64_t n, bool log) {
  run(log ? "log_softmax" : "softmax", x, [&] {
    SMYRF_DISPATCH_FLOAT(x.dtype(), "softmax", [&] {
      kg::softmax_rows<scalar_t>(ptr<scalar_t>(x), ptr<scalar_t>(y), rows, n, log);
    });
  });
}

void softmax_rows_backward(const Tensor& y, const Tensor& dy, const Tensor& dx, int64_t rows,
                           int64_t n, bool log) {
  run("softmax_backward", y, [&] {
    SMYRF_DISPATCH_FLOAT(y.dtype(), "softmax_backward", [&] {
      kg::softmax_rows_backward<scalar_t>(ptr<scalar_t>(y), ptr<scalar_t>(dy), ptr<scalar_t>(dx),
                                          rows, n, log);
    });
  });
}

void layernorm_rows(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& y,
                    const Tensor& mean, const Tensor& rstd, int64_t rows, int64_t n, double eps) {
  run("layer_norm", x, [&] {
    SMYRF_DISPATCH_FLOAT(x.dtype(), "layer_norm", [&] {
      kg::layernorm_rows<scalar_t>(ptr<scalar_t>(x), ptr<scalar_t>(w), ptr<scalar_t>(b),
                                   ptr<scalar_t>(y), ptr<scalar_t>(mean), ptr<scalar_t>(rstd), rows,
                                   n, eps);
    });
  });
}

void layernorm_rows_backward(const Tensor& dy, const Tensor& x, const Tensor& mean,
                             const Tensor& rstd, const Tensor& w, const Tensor& dx,
                             const Tensor& dw, const Tensor& db, int64_t rows, int64_t n) {
  run("layer_norm_backward", x, [&] {
    SMYRF_DISPATCH_FLOAT(x.dtype(), "layer_norm_backward", [&] {
      kg::layernorm_rows_backward<scalar_t>(
          ptr<scalar_t>(dy), ptr<scalar_t>(x), ptr<scalar_t>(mean), ptr<scalar_t>(rstd),
          ptr<scalar_t>(w), ptr<scalar_t>(dx), ptr<scalar_t>(dw), ptr<scalar_t>(db), rows, n);
    });
  });
}

void cross_entropy_rows(const Tensor& logits, const Tensor& target, const Tensor& loss,
                        const Tensor& lse, int64_t rows, int64_t C, int64_t ignore_index,
                        double eps) {
  run("cross_entropy", logits, [&] {
    SMYRF_DISPATCH_FLOAT(logits.dtype(), "cross_entropy", [&] {
      kg::cross_entropy_rows<scalar_t>(ptr<scalar_t>(logits), ptr<int64_t>(target),
                                       ptr<scalar_t>(loss), ptr<scalar_t>(lse), rows, C,
                                       ignore_index, eps);
    });
  });
}

void cross_entropy_rows_backward(const Tensor& logits, const Tensor& target, const Tensor& lse,
                                 const Tensor& g, const Tensor& d, int64_t rows, int64_t C,
                                 int64_t ignore_index, double eps) {
  run("cross_entropy_backward", logits, [&] {
    SMYRF_DISPATCH_FLOAT(logits.dtype(), "cross_entropy_backward", [&] {
      kg::cross_entropy_rows_backward<scalar_t>(ptr<scalar_t>(logits), ptr<int64_t>(target),
                                                ptr<scalar_t>(lse), ptr<scalar_t>(g),
                                                ptr<scalar_t>(d), rows, C, ignore_index, eps);
    });
  });
}

void logsumexp_rows(const Tensor& x, const Tensor& y, int64_t rows, int64_t n) {
  run("logsumexp", x, [&] {
    SMYRF_DISPATCH_FLOAT(x.dtype(), "logsumexp", [&] {
      kg::logsumexp_rows<scalar_t>(ptr<scalar_t>(x), ptr<scalar_t>(y), rows, n);
    });
  });
}

void var_rows(const Tensor& x, const Tensor& y, int64_t rows, int64_t n, int64_t correction) {
  run("var", x, [&] {
    SMYRF_DISPATCH_FLOAT(x.dtype(), "var", [&] {
      kg::var_rows<scalar_t>(ptr<scalar_t>(x), ptr<scalar_t>(y), rows, n, correction);
    });
  });
}

void softmax_cols(const Tensor& x, const Tensor& y, int64_t outer, int64_t n, int64_t inner,
                  bool log) {
  run(log ? "log_softmax" : "softmax", x, [&] {
    SMYRF_DISPATCH_FLOAT(x.dtype(), "softmax", [&] {
      kg::softmax_cols<scalar_t>(ptr<scalar_t>(x), ptr<scalar_t>(y), outer, n, inner, log);
    });
  });
}

void softmax_cols_backward(const Tensor& y, const Tensor& dy, const Tensor& dx, int64_t outer,
                           int64_t n, int64_t inner, bool log) {
  run("softmax_backward", y, [&] {
    SMYRF_DISPATCH_FLOAT(y.dtype(), "softmax_backward", [&] {
      kg::softmax_cols_backward<scalar_t>(ptr<scalar_t>(y), ptr<scalar_t>(dy), ptr<scalar_t>(dx),
                                          outer, n, inner, log);
    });
  });
}

bool indices_in_range(const Tensor& idx, int64_t bound, std::optional<int64_t> exempt) {
  bool ok = true;
  run("index", idx, [&] {
    ok = kg::indices_in_range(ptr<int64_t>(idx), idx.numel(), bound, exempt.has_value(),
                              exempt.value_or(0));
  });
  return ok;
}

void index_select(const Tensor& x, const Tensor& idx, const Tensor& out, int64_t outer, int64_t n,
                  int64_t k, int64_t inner) {
  run("index_select", x, [&] {
    SMYRF_DISPATCH_ALL(x.dtype(), "index_select", [&] {
      kg::index_select<scalar_t>(ptr<scalar_t>(x), ptr<int64_t>(idx), ptr<scalar_t>(out), outer, n,
                                 k, inner);
    });
  });
}

void gather(const Tensor& x, const Tensor& idx, const Tensor& out, int64_t outer, int64_t n,
            int64_t k, int64_t inner) {
  run("gather", x, [&] {
    SMYRF_DISPATCH_ALL(x.dtype(), "gather", [&] {
      kg::gather<scalar_t>(ptr<scalar_t>(x), ptr<int64_t>(idx), ptr<scalar_t>(out), outer, n, k,
                           inner);
    });
  });
}

void index_add(const Tensor& y, const Tensor& idx, const Tensor& src, int64_t outer, int64_t n,
               int64_t k, int64_t inner) {
  run("index_add", y, [&] {
    SMYRF_DISPATCH_NUMERIC(y.dtype(), "index_add", [&] {
      kg::index_add<scalar_t>(ptr<scalar_t>(y), ptr<int64_t>(idx), ptr<scalar_t>(src), outer, n, k,
                              inner);
    });
  });
}

void scatter_add(const Tensor& y, const Tensor& idx, const Tensor& src, int64_t outer, int64_t n,
                 int64_t k, int64_t inner) {
  run("scatter_add", y, [&] {
    SMYRF_DISPATCH_NUMERIC(y.dtype(), "scatter_add", [&] {
      kg::scatter_add<scalar_t>(ptr<scalar_t>(y), ptr<int64_t>(idx), ptr<scalar_t>(src), outer, n,
                                k, inner);
    });
  });
}

void sort_rows(const Tensor& x, const Tensor& values, const Tensor& indices, int64_t rows,
               int64_t n, bool descending) {
  run("sort", x, [&] {
    SMYRF_DISPATCH_NUMERIC(x.dtype(), "sort", [&] {
      kg::sort_rows<scalar_t>(ptr<scalar_t>(x), ptr<scalar_t>(values), ptr<int64_t>(indices), rows,
                              n, descending);
    });
  });
}

void gemm_batched(bool ta, bool tb, int64_t batch, int64_t M, int64_t N, int64_t K, const Tensor& a,
                  int64_t off_a, int64_t lda, int64_t sa, const Tensor& b, int64_t off_b,
                  int64_t ldb, int64_t sb, const Tensor& c, int64_t off_c, int64_t ldc,
                  int64_t sc) {
  run("matmul", c, [&] {
    if (c.dtype() == DType::Float32)
      kg::sgemm_batched(ta, tb, batch, M, N, K, 1.0f, ptr<float>(a) + off_a, lda, sa,
                        ptr<float>(b) + off_b, ldb, sb, 0.0f, ptr<float>(c) + off_c, ldc, sc);
    else
      kg::dgemm_batched(ta, tb, batch, M, N, K, 1.0, ptr<double>(a) + off_a, lda, sa,
                        ptr<double>(b) + off_b, ldb, sb, 0.0, ptr<double>(c) + off_c, ldc, sc);
  });
}

void random_uniform(const Tensor& t, uint64_t seed, uint64_t offset, double lo, double hi) {
  run("rand", t, [&] {
    if (t.dtype() == DType::Float64)
      kg::random_uniform_f64(ptr<double>(t), t.numel(), seed, offset, lo, hi);
    else
      kg::random_uniform_f32(ptr<float>(t), t.numel(), seed, offset, static_cast<float>(lo),
                             static_cast<float>(hi));
  });
}

void random_normal(const Tensor& t, uint64_t seed, uint64_t offset, double mean, double std) {
  run("randn", t, [&] {
    if (t.dtype() == DType::Float64)
      kg::random_normal_f64(ptr<double>(t), t.numel(), seed, offset, mean, std);
    else
      kg::random_normal_f32(ptr<float>(t), t.numel(), seed, offset, static_cast<float>(mean),
                            static_cast<float>(std));
  });
}

void random_int64(const Tensor& t, uint64_t seed, uint64_t offset, int64_t low, int64_t high) {
  run("randint", t, [&] { kg::random_int64(ptr<int64_t>(t), t.numel(), seed, offset, low, high); });
}

void random_bernoulli(const Tensor& t, uint64_t seed, uint64_t offset, double p) {
  run("bernoulli", t, [&] { kg::random_bernoulli(ptr<bool>(t), t.numel(), seed, offset, p); });
}

void adam_update(const Tensor& p, const Tensor& g, const Tensor& m, const Tensor& v, double lr,
                 double beta1, double beta2, double eps, double weight_decay, bool decoupled,
                 int64_t step) {
  run("adam", p, [&] {
    SMYRF_DISPATCH_FLOAT(p.dtype(), "adam", [&] {
      kg::adam_update<scalar_t>(ptr<scalar_t>(p), ptr<scalar_t>(g), ptr<scalar_t>(m),
                                ptr<scalar_t>(v), p.numel(), lr, beta1, beta2, eps, weight_decay,
                                decoupled, step);
    });
  });
}

void sgd_update(const Tensor& p, const Tensor& g, const Tensor& buf, double lr, double momentum,
                double weight_decay, bool nesterov, bool first_step) {
  run("sgd", p, [&] {
    SMYRF_DISPATCH_FLOAT(p.dtype(), "sgd", [&] {
      kg::sgd_update<scalar_t>(ptr<scalar_t>(p), ptr<scalar_t>(g), ptr<scalar_t>(buf), p.numel(),
                               lr, momentum, weight_decay, nesterov, first_step);
    });
  });
}

#else  // built without CUDA: no CUDA tensor can exist, so these are unreachable

namespace {
int64_t g_rows_min_inner = 0;
}  // namespace
int64_t set_pointwise_rows_min_inner(int64_t n) {
  check_rows_min_inner(n);
  const int64_t prev = g_rows_min_inner;
  g_rows_min_inner = n;
  return prev;
}

namespace {
[[noreturn]] void no_cuda(const char* op) {
  throw Error(op, "smyrf was built without CUDA", "configure on a machine with nvcc");
}
}  // namespace
void unary(kernels::cpu::UnaryOp, double, double, const IterPlan&, const Tensor&, const Tensor&) {
  no_cuda("unary");
}
void binary(kernels::cpu::BinaryOp, const IterPlan&, const Tensor&, const Tensor&, const Tensor&) {
  no_cuda("binary");
}
void compare(kernels::cpu::CompareOp, const IterPlan&, const Tensor&, const Tensor&,
             const Tensor&) {
  no_cuda("compare");
}
void where(const IterPlan&, const Tensor&, const Tensor&, const Tensor&, const Tensor&) {
  no_cuda("where");
}
void convert(const IterPlan&, const Tensor&, const Tensor&) { no_cuda("copy_"); }
void fill(const IterPlan&, const Tensor&, double) { no_cuda("fill_"); }
void masked_scale(const Tensor&, const Tensor&, double, const Tensor&) { no_cuda("masked_scale"); }
void copy_bytes(const Tensor&, const Tensor&) { no_cuda("copy_"); }
void reduce(kernels::cpu::ReduceOp, int, const int64_t*, const int64_t*, const IterPlan&,
            const Tensor&, const Tensor&) {
  no_cuda("reduce");
}
void argreduce(bool, int, const int64_t*, const int64_t*, int64_t, int64_t, const Tensor&,
               const Tensor&) {
  no_cuda("argreduce");
}
void softmax_rows(const Tensor&, const Tensor&, int64_t, int64_t, bool) { no_cuda("softmax"); }
void logsumexp_rows(const Tensor&, const Tensor&, int64_t, int64_t) { no_cuda("logsumexp"); }
void var_rows(const Tensor&, const Tensor&, int64_t, int64_t, int64_t) { no_cuda("var"); }
void softmax_cols(const Tensor&, const Tensor&, int64_t, int64_t, int64_t, bool) {
  no_cuda("softmax");
}
void softmax_cols_backward(const Tensor&, const Tensor&, const Tensor&, int64_t, int64_t, int64_t,
                           bool) {
  no_cuda("softmax_backward");
}
void softmax_rows_backward(const Tensor&, const Tensor&, const Tensor&, int64_t, int64_t, bool) {
  no_cuda("softmax_backward");
}
void layernorm_rows(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                    const Tensor&, int64_t, int64_t, double) {
  no_cuda("layer_norm");
}
void layernorm_rows_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                             const Tensor&, const Tensor&, const Tensor&, const Tensor&, int64_t,
                             int64_t) {
  no_cuda("layer_norm_backward");
}
void cross_entropy_rows(const Tensor&, const Tensor&, const Tensor&, const Tensor&, int64_t,
                        int64_t, int64_t, double) {
  no_cuda("cross_entropy");
}
void cross_entropy_rows_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                 const Tensor&, int64_t, int64_t, int64_t, double) {
  no_cuda("cross_entropy_backward");
}
bool indices_in_range(const Tensor&, int64_t, std::optional<int64_t>) { no_cuda("index"); }
void index_select(const Tensor&, const Tensor&, const Tensor&, int64_t, int64_t, int64_t, int64_t) {
  no_cuda("index_select");
}
void gather(const Tensor&, const Tensor&, const Tensor&, int64_t, int64_t, int64_t, int64_t) {
  no_cuda("gather");
}
void index_add(const Tensor&, const Tensor&, const Tensor&, int64_t, int64_t, int64_t, int64_t) {
  no_cuda("index_add");
}
void scatter_add(const Tensor&, const Tensor&, const Tensor&, int64_t, int64_t, int64_t, int64_t) {
  no_cuda("scatter_add");
}
void sort_rows(const Tensor&, const Tensor&, const Tensor&, int64_t, int64_t, bool) {
  no_cuda("sort");
}
void gemm_batched(bool, bool, int64_t, int64_t, int64_t, int64_t, const Tensor&, int64_t, int64_t,
                  int64_t, const Tensor&, int64_t, int64_t, int64_t, const Tensor&, int64_t,
                  int64_t, int64_t) {
  no_cuda("matmul");
}
void random_uniform(const Tensor&, uint64_t, uint64_t, double, double) { no_cuda("rand"); }
void random_normal(const Tensor&, uint64_t, uint64_t, double, double) { no_cuda("randn"); }
void random_int64(const Tensor&, uint64_t, uint64_t, int64_t, int64_t) { no_cuda("randint"); }
void random_bernoulli(const Tensor&, uint64_t, uint64_t, double) { no_cuda("bernoulli"); }
void adam_update(const Tensor&, const Tensor&, const Tensor&, const Tensor&, double, double, double,
                 double, double, bool, int64_t) {
  no_cuda("adam");
}
void sgd_update(const Tensor&, const Tensor&, const Tensor&, double, double, double, bool, bool) {
  no_cuda("sgd");
}
#endif

}  // namespace smyrf::cuda_ops
