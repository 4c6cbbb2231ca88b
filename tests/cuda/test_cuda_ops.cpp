// Every CUDA op of the raw layer against the same op on the CPU: random and odd shapes,
// non-contiguous (transposed, strided, broadcast) inputs, all dtypes each kernel supports.
// Runs only with a GPU (main_cuda.cpp exits 77 = skipped otherwise). All pass on an NVIDIA H200
// (first GPU run, 2026-11-28).
#include <doctest/doctest.h>

#include <limits>

#include "core/ops_cuda.h"
#include "cuda_test_util.h"

using namespace smyrf;
using namespace smyrf::cuda_test;
using raw::BinaryKind;
using raw::CompareKind;
using raw::ReduceKind;
using raw::UnaryKind;

namespace {
const DType kAll[] = {kBool, kInt32, kInt64, kFloat32, kFloat64};
double tol(DType dt) { return dt == kFloat32 ? 2e-5 : (dt == kFloat64 ? 1e-12 : 0); }
}  // namespace

TEST_CASE("cuda: unary ops match the CPU on transposed float inputs") {
  for (DType dt : {kFloat32, kFloat64}) {
    Tensor x = rnd({37, 129}, 1, dt).transpose(0, 1);  // non-contiguous
    Tensor pos = rnd({37, 129}, 2, dt, 0.05, 3).transpose(0, 1);
    for (int k = 0; k <= static_cast<int>(UnaryKind::SiluGrad); ++k) {
      const auto kind = static_cast<UnaryKind>(k);
      const bool needs_pos = kind == UnaryKind::Log || kind == UnaryKind::Sqrt ||
                             kind == UnaryKind::Rsqrt || kind == UnaryKind::PowScalar ||
                             kind == UnaryKind::Log1p || kind == UnaryKind::Reciprocal;
      const Tensor& in = needs_pos ? pos : x;
      Tensor c = raw::unary(kind, in, 0.7, 1.3);
      Tensor g = raw::unary(kind, cu(in), 0.7, 1.3);
      check_close(g, c, dt == kFloat32 ? 1e-5 : 1e-12, dt == kFloat32 ? 1e-6 : 1e-14,
                  "unary " + std::to_string(k) + " " + dtype_name(dt));
    }
  }
}

TEST_CASE("cuda: integer unary ops are exact") {
  for (DType dt : {kInt32, kInt64}) {
    Tensor x = rnd({5, 77}, 3, kFloat64, -50, 50).to(dt);
    for (UnaryKind kind :
         {UnaryKind::Neg, UnaryKind::Abs, UnaryKind::Sign, UnaryKind::Relu, UnaryKind::Clamp,
          UnaryKind::MulScalar, UnaryKind::AddScalar, UnaryKind::Square})
      check_equal(raw::unary(kind, cu(x), -3, 7), raw::unary(kind, x, -3, 7), "int unary");
  }
}

TEST_CASE("cuda: binary ops broadcast over every dtype") {
  for (DType dt : kAll) {
    Tensor a = rnd({3, 1, 65}, 4, kFloat64, -9, 9).to(dt);
    Tensor b = rnd({7, 65}, 5, kFloat64, -9, 9).to(dt);
    for (int k = 0; k <= static_cast<int>(BinaryKind::GeluBackward); ++k) {
      const auto kind = static_cast<BinaryKind>(k);
      if (kind == BinaryKind::Pow && dt != kFloat32 && dt != kFloat64) continue;
      Tensor aa = kind == BinaryKind::Pow ? raw::unary(UnaryKind::Abs, a) : a;
      check_close(raw::binary(kind, cu(aa), cu(b)), raw::binary(kind, aa, b), tol(dt), tol(dt),
                  "binary " + std::to_string(k) + " " + dtype_name(dt));
    }
  }
}

TEST_CASE("cuda: the rows path of the strided pointwise kernels matches the CPU") {
  // set_pointwise_rows_min_inner(1) sends every strided index space of 2+ dims through
  // pointwise_rows_kernel: partial steps (inner < 1024), whole steps (2100 = 2 x 1024 + 52), an
  // outer extent past the grid's 65535 rows (70000 x 3), transposed inner strides, broadcasts
  struct Restore {
    int64_t prev = cuda_ops::set_pointwise_rows_min_inner(1);
    ~Restore() { cuda_ops::set_pointwise_rows_min_inner(prev); }
  } restore;
  for (DType dt : kAll) {
    CAPTURE(dtype_name(dt));
    for (const auto& shapes :
         {std::pair<Shape, Shape>{{3, 1, 65}, {7, 65}}, std::pair<Shape, Shape>{{3, 2100}, {2100}},
          std::pair<Shape, Shape>{{70000, 3}, {3}},
          std::pair<Shape, Shape>{{2100, 1}, {2, 2100, 5}}}) {
      const Tensor a = rnd(shapes.first, 11, kFloat64, -9, 9).to(dt);
      const Tensor b = rnd(shapes.second, 12, kFloat64, -9, 9).to(dt);
      for (BinaryKind kind : {BinaryKind::Add, BinaryKind::Mul, BinaryKind::Maximum})
        check_close(raw::binary(kind, cu(a), cu(b)), raw::binary(kind, a, b), tol(dt), tol(dt),
                    "rows binary " + std::to_string(static_cast<int>(kind)));
      check_equal(raw::compare(CompareKind::Gt, cu(a), cu(b)), raw::compare(CompareKind::Gt, a, b),
                  "rows compare");
      const Tensor cond = raw::compare(CompareKind::Lt, a, b);
      check_equal(raw::where(cu(cond), cu(a), cu(b)), raw::where(cond, a, b), "rows where");
    }
    // transposed: the inner dim's stride is not 1
    const Tensor x = rnd({1300, 7}, 13, kFloat64, -5, 5).to(dt).transpose(0, 1);
    check_equal(raw::to_dtype(cu(x), kFloat64), raw::to_dtype(x, kFloat64), "rows convert");
    if (dt == kFloat32 || dt == kFloat64)
      check_close(raw::unary(UnaryKind::Exp, cu(x)), raw::unary(UnaryKind::Exp, x), tol(dt), 0,
                  "rows exp");
  }
  CHECK(cuda_ops::set_pointwise_rows_min_inner(1) == 1);
  CHECK_THROWS_AS(cuda_ops::set_pointwise_rows_min_inner(-1), Error);
}

TEST_CASE("cuda: a 0-d CPU scalar follows a CUDA operand") {
  Tensor x = rnd({17}, 6);
  check_close(raw::binary(BinaryKind::Mul, cu(x), scalar_tensor(2.5)),
              raw::binary(BinaryKind::Mul, x, scalar_tensor(2.5)), 0, 0, "scalar");
  check_equal(raw::compare_scalar(CompareKind::Gt, cu(x), 0.25),
              raw::compare_scalar(CompareKind::Gt, x, 0.25), "compare_scalar");
}

TEST_CASE("cuda: in-place binary, compare, where, masked_fill") {
  Tensor a = rnd({9, 33}, 7), b = rnd({33}, 8);
  Tensor ga = cu(a).clone();
  raw::binary_(BinaryKind::Add, ga, cu(b));
  Tensor ca = a.clone();
  raw::binary_(BinaryKind::Add, ca, b);
  check_equal(ga, ca, "binary_");
  for (int k = 0; k <= static_cast<int>(CompareKind::Ge); ++k) {
    const auto kind = static_cast<CompareKind>(k);
    check_equal(raw::compare(kind, cu(a), cu(b)), raw::compare(kind, a, b), "compare");
  }
  Tensor cond = raw::compare(CompareKind::Gt, a, b);
  check_equal(raw::where(cu(cond), cu(a), cu(b)), raw::where(cond, a, b), "where");
  check_equal(raw::masked_fill(cu(a), cu(cond), -1), raw::masked_fill(a, cond, -1), "masked_fill");
}

TEST_CASE("cuda: conversions between all dtypes, strided copies and fill") {
  Tensor x = rnd({13, 21}, 9, kFloat64, -5, 5).transpose(0, 1);
  for (DType from : kAll)
    for (DType to : kAll) {
      Tensor src = x.to(from);
      check_equal(raw::to_dtype(cu(src), to), raw::to_dtype(src, to),
                  std::string("convert ") + dtype_name(from) + " -> " + dtype_name(to));
    }
  // strided destination on the device, broadcast source from the host
  Tensor dst = zeros({8, 10}, TensorOptions(kFloat32).set_device(Device::cuda(0)));
  Tensor view = raw::slice(dst, 1, 1, 10, 2);  // (8, 5), stride 2
  Tensor src = rnd({5}, 10);
  raw::copy_into(view, src);
  Tensor cdst = zeros({8, 10});
  raw::copy_into(raw::slice(cdst, 1, 1, 10, 2), src);
  check_equal(dst, cdst, "copy_ into a strided view from the host");
  Tensor f = zeros({3, 1000}, TensorOptions(kInt32).set_device(Device::cuda(0)));
  raw::fill(raw::slice(f, 0, 0, 3, 2), 7);
  Tensor cf = zeros({3, 1000}, TensorOptions(kInt32));
  raw::fill(raw::slice(cf, 0, 0, 3, 2), 7);
  check_equal(f, cf, "fill_ of a strided view");
  // device -> host into a non-contiguous host view
  Tensor h = zeros({6, 4});
  raw::copy_into(raw::transpose(h, 0, 1), cu(rnd({4, 6}, 11)));
  Tensor ch = zeros({6, 4});
  raw::copy_into(raw::transpose(ch, 0, 1), rnd({4, 6}, 11));
  CHECK(h.to_vector<float>() == ch.to_vector<float>());
}

TEST_CASE("cuda: contiguous elementwise ops (the unrolled path) at sizes around its steps") {
  // pointwise_kernel takes contiguous operands four grid strides a step and leaves the rest to a
  // one-element loop: sizes below one step, at and past block and unroll boundaries, and large
  for (int64_t n : {int64_t{1}, int64_t{3}, int64_t{255}, int64_t{1000}, int64_t{1025},
                    int64_t{4 * 4096 + 3}, int64_t{(1 << 20) + 17}}) {
    CAPTURE(n);
    const Tensor x = rnd({n}, 12), y = rnd({n}, 13), pos = rnd({n}, 14, kFloat32, 0.05, 3);
    for (UnaryKind kind : {UnaryKind::Neg, UnaryKind::Exp, UnaryKind::Log, UnaryKind::Gelu,
                           UnaryKind::Relu, UnaryKind::MulScalar}) {
      const Tensor& in = kind == UnaryKind::Log ? pos : x;
      check_close(raw::unary(kind, cu(in), 0.7, 1.3), raw::unary(kind, in, 0.7, 1.3), 1e-5, 1e-6,
                  "contiguous unary " + std::to_string(static_cast<int>(kind)));
    }
    for (DType dt : kAll) {
      const Tensor a = raw::unary(UnaryKind::MulScalar, x.to(kFloat64), 9).to(dt);
      const Tensor b = raw::unary(UnaryKind::MulScalar, y.to(kFloat64), 9).to(dt);
      check_close(raw::binary(BinaryKind::Mul, cu(a), cu(b)), raw::binary(BinaryKind::Mul, a, b),
                  tol(dt), tol(dt), std::string("contiguous mul ") + dtype_name(dt));
      check_equal(raw::to_dtype(cu(a), kFloat64), raw::to_dtype(a, kFloat64), "contiguous convert");
    }
    const Tensor cond = raw::compare(CompareKind::Gt, x, y);
    check_equal(raw::compare(CompareKind::Gt, cu(x), cu(y)), cond, "contiguous compare");
    check_equal(raw::where(cu(cond), cu(x), cu(y)), raw::where(cond, x, y), "contiguous where");
    Tensor g = cu(x).clone();
    raw::binary_(BinaryKind::Add, g, cu(y));  // in place: the output is an input
    Tensor c = x.clone();
    raw::binary_(BinaryKind::Add, c, y);
    check_equal(g, c, "contiguous in-place add");
    Tensor f = zeros({n}, TensorOptions(kInt64).set_device(Device::cuda(0)));
    raw::fill(f, 5);
    Tensor cf = zeros({n}, TensorOptions(kInt64));
    raw::fill(cf, 5);
    check_equal(f, cf, "contiguous fill");
  }
}

TEST_CASE("cuda: reductions over kept and reduced strided dims") {
  std::mt19937 gen(12);
  for (int trial = 0; trial < 12; ++trial) {
    Shape s = {odd_size(gen), odd_size(gen), odd_size(gen)};
    if (s[0] * s[1] * s[2] > 300000) s[0] = 3;
    for (DType dt : {kInt32, kInt64, kFloat32, kFloat64}) {
      Tensor x = raw::permute(rnd(s, 13 + trial, kFloat64, -3, 3).to(dt), {2, 0, 1});
      for (auto dims : std::vector<std::vector<int64_t>>{{0}, {2}, {0, 2}, {1}, {}}) {
        for (ReduceKind k : {ReduceKind::Sum, ReduceKind::Mean, ReduceKind::Max, ReduceKind::Min}) {
          const double t = dt == kFloat32 ? 1e-5 : 1e-10;
          check_close(raw::reduce(k, cu(x), dims, trial % 2), raw::reduce(k, x, dims, trial % 2), t,
                      t, "reduce " + shape_str(s) + " " + dtype_name(dt));
        }
      }
      check_equal(raw::argreduce(true, cu(x), 1, false), raw::argreduce(true, x, 1, false),
                  "argmax");
      check_equal(raw::argreduce(false, cu(x), 2, true), raw::argreduce(false, x, 2, true),
                  "argmin");
    }
  }
  // prod on small values, ties and NaN in argmax, var and logsumexp
  Tensor p = rnd({7, 9}, 20, kFloat64, 0.5, 1.5);
  check_close(raw::reduce(ReduceKind::Prod, cu(p), {1}, false),
              raw::reduce(ReduceKind::Prod, p, {1}, false), 1e-12, 0, "prod");
  Tensor t = from_vector<float>({1, 3, 3, NAN, 2, 5, 5, 1}, {2, 4});
  check_equal(raw::argreduce(true, cu(t), 1, false), raw::argreduce(true, t, 1, false),
              "argmax ties/NaN");
  Tensor v = rnd({33, 1500}, 21);
  check_close(raw::var(cu(v), {1}, 1, false), raw::var(v, {1}, 1, false), 1e-5, 1e-6, "var");
  check_close(raw::logsumexp(cu(v), {0}, false), raw::logsumexp(v, {0}, false), 1e-5, 1e-6,
              "logsumexp");
  // the split path (few outputs over long ranges): a full reduction of 1M transposed values, and
  // 3 outputs over 2^17 + 5 each, against the CPU; deterministic from one call to the next
  Tensor big = raw::permute(rnd({1024, 1031}, 22, kFloat64, -3, 3), {1, 0});
  Tensor tall = rnd({131077, 3}, 23, kFloat64, -3, 3).to(kFloat32);
  for (ReduceKind k : {ReduceKind::Sum, ReduceKind::Max, ReduceKind::Min, ReduceKind::Mean}) {
    check_close(raw::reduce(k, cu(big), {0, 1}, false), raw::reduce(k, big, {0, 1}, false), 1e-10,
                1e-10, "full reduce 1031x1024");
    check_close(raw::reduce(k, cu(tall), {0}, false), raw::reduce(k, tall, {0}, false), 1e-5, 1e-5,
                "3 outputs over 131077");
  }
  check_equal(raw::reduce(ReduceKind::Sum, cu(tall), {0}, false),
              host(raw::reduce(ReduceKind::Sum, cu(tall), {0}, false)), "split sum repeatable");
}

TEST_CASE("cuda: softmax and log_softmax forward and backward, short and long rows") {
  for (int64_t n : {1, 7, 1000, 1025, 5000}) {
    for (DType dt : {kFloat32, kFloat64}) {
      Tensor x = rnd({n, 9}, 30, dt, -8, 8);  // softmax over dim 0: transposed internally
      for (bool log : {false, true}) {
        Tensor c = raw::softmax(x, 0, log), g = raw::softmax(cu(x), 0, log);
        const double t = dt == kFloat32 ? 1e-5 : 1e-12;
        check_close(g, c, t, t, "softmax n=" + std::to_string(n));
        Tensor dy = rnd({n, 9}, 31, dt);
        check_close(raw::softmax_backward(g, cu(dy), 0, log), raw::softmax_backward(c, dy, 0, log),
                    t * 10, t, "softmax_backward n=" + std::to_string(n));
      }
    }
  }
  const float inf = std::numeric_limits<float>::infinity();
  Tensor edge = from_vector<float>({-inf, -inf, -inf, 1, NAN, 2, 0, 0, 0}, {3, 3});
  for (bool log : {false, true})
    check_equal(raw::softmax(cu(edge), 1, log), raw::softmax(edge, 1, log), "softmax edge rows");
}

TEST_CASE("cuda: softmax down the columns, logsumexp and var rows, edge values included") {
  // (written 2026-11-30 without a GPU: compiled, not yet run on one)
  // softmax over a middle or first dim with >= 16384 columns runs a thread a column
  // (kernels/cuda/norm.h softmax_cols); columns 3, 4, 5 hold a NaN, all -inf and a +inf
  const float inf = std::numeric_limits<float>::infinity();
  for (DType dt : {kFloat32, kFloat64}) {
    for (const Shape& sh : {Shape{37, 20000}, Shape{2, 50, 9000}}) {
      const int64_t dim = sh.size() == 2 ? 0 : 1;
      Tensor x = rnd(sh, 32, kFloat32, -8, 8);
      std::vector<float> v = x.to_vector<float>();
      const int64_t n = sh[dim], inner = sh.back();
      for (int64_t r = 0; r < n; ++r) {
        v[r * inner + 4] = -inf;
        if (r == n / 2) v[r * inner + 3] = NAN, v[r * inner + 5] = inf;
      }
      x = from_vector<float>(v, sh).to(dt);
      const double t = dt == kFloat32 ? 1e-5 : 1e-12;
      for (bool log : {false, true}) {
        Tensor c = raw::softmax(x, dim, log), g = raw::softmax(cu(x), dim, log);
        check_close(g, c, t, t, "softmax over columns");
        Tensor y = raw::softmax(rnd(sh, 33, dt, -4, 4), dim, log), dy = rnd(sh, 34, dt);
        check_close(raw::softmax_backward(cu(y), cu(dy), dim, log),
                    raw::softmax_backward(y, dy, dim, log), t * 10, t,
                    "softmax_backward over columns");
      }
    }
  }
  // logsumexp and var through the row kernels, over each dim of a matrix with edge rows:
  // +inf, all -inf and NaN rows for logsumexp, inf for var, and a divisor <= 0 (correction n)
  Tensor e = rnd({6, 700}, 35, kFloat32, -5, 5);
  std::vector<float> ev = e.to_vector<float>();
  ev[1 * 700 + 9] = inf;
  for (int i = 0; i < 700; ++i) ev[2 * 700 + i] = -inf;
  ev[3 * 700 + 100] = NAN;
  e = from_vector<float>(ev, {6, 700});
  for (DType dt : {kFloat32, kFloat64}) {
    const Tensor x = e.to(dt);
    for (int64_t d : {0, 1}) {
      check_close(raw::logsumexp(cu(x), {d}, false), raw::logsumexp(x, {d}, false), 1e-5, 1e-6,
                  "logsumexp edge rows");
      check_close(raw::var(cu(x), {d}, 0, true), raw::var(x, {d}, 0, true), 1e-5, 1e-6,
                  "var edge rows");
    }
    const Tensor few = rnd({5, 3}, 36, dt);
    check_close(raw::var(cu(few), {1}, 3, false), raw::var(few, {1}, 3, false), 0, 0,
                "var with divisor 0");
  }
}

TEST_CASE("cuda: layer_norm forward and backward") {
  for (int64_t n : {7, 768, 1500}) {
    for (bool affine : {false, true}) {
      Tensor x = rnd({3, 11, n}, 40);
      Tensor w = affine ? rnd({n}, 41) : Tensor(), b = affine ? rnd({n}, 42) : Tensor();
      auto c = raw::layer_norm(x, n, w, b, 1e-5);
      auto g =
          raw::layer_norm(cu(x), n, affine ? cu(w) : Tensor(), affine ? cu(b) : Tensor(), 1e-5);
      check_close(g.y, c.y, 1e-5, 1e-5, "layer_norm y");
      check_close(g.rstd, c.rstd, 1e-5, 1e-6, "layer_norm rstd");
      Tensor dy = rnd({3, 11, n}, 43);
      auto cg = raw::layer_norm_backward(dy, x, c.mean, c.rstd, w, n);
      auto gg =
          raw::layer_norm_backward(cu(dy), cu(x), g.mean, g.rstd, affine ? cu(w) : Tensor(), n);
      check_close(gg.dx, cg.dx, 1e-4, 1e-5, "layer_norm dx");
      check_close(gg.dweight, cg.dweight, 1e-4, 1e-4, "layer_norm dw");
      check_close(gg.dbias, cg.dbias, 1e-4, 1e-4, "layer_norm db");
    }
  }
}

TEST_CASE("cuda: cross-entropy rows with ignore_index and label smoothing") {
  for (int64_t C : {5, 1000, 2000}) {
    Tensor logits = rnd({37, C}, 50, kFloat32, -6, 6);
    Tensor target = randint(0, C, {37}, kInt64);
    raw::fill(raw::slice(target, 0, 0, 37, 5), -100);  // every fifth row ignored
    for (double eps : {0.0, 0.1}) {
      auto c = raw::cross_entropy_rows(logits, target, -100, eps);
      auto g = raw::cross_entropy_rows(cu(logits), cu(target), -100, eps);
      check_close(g.loss, c.loss, 1e-5, 1e-5, "ce loss C=" + std::to_string(C));
      check_close(g.lse, c.lse, 1e-5, 1e-5, "ce lse");
      Tensor up = rnd({37}, 51);
      check_close(
          raw::cross_entropy_rows_backward(cu(logits), cu(target), g.lse, cu(up), -100, eps),
          raw::cross_entropy_rows_backward(logits, target, c.lse, up, -100, eps), 1e-5, 1e-6,
          "ce backward");
    }
  }
  // -inf logits (masked classes) without smoothing: a finite loss on both devices, not NaN
  Tensor masked = from_vector<float>({1.f, -INFINITY, 2.f, 0.5f, 3.f, -INFINITY}, {2, 3});
  Tensor tgt = from_vector<int64_t>({0, 1}, {2});
  auto cm = raw::cross_entropy_rows(masked, tgt, -100, 0.0);
  auto gm = raw::cross_entropy_rows(cu(masked), cu(tgt), -100, 0.0);
  check_close(gm.loss, cm.loss, 1e-6, 1e-6, "ce loss with -inf logits");
  // a bad target is the same Error as on the CPU (checked on the device, named from a host copy);
  // ignore_index passes the device check, negatives and the class count do not
  Tensor bad = from_vector<int64_t>({0, 9}, {2});
  CHECK_THROWS_WITH_AS(raw::cross_entropy_rows(cu(rnd({2, 3}, 52)), cu(bad), -100, 0),
                       doctest::Contains("target 9 at row 1"), Error);
  CHECK_THROWS_WITH_AS(raw::cross_entropy_rows(cu(rnd({3, 3}, 52)),
                                               cu(from_vector<int64_t>({0, -1, 3}, {3})), -100, 0),
                       doctest::Contains("target -1 at row 1"), Error);
  CHECK_NOTHROW(raw::cross_entropy_rows(cu(rnd({3, 3}, 52)),
                                        cu(from_vector<int64_t>({2, -100, 0}, {3})), -100, 0));
}

TEST_CASE("cuda: out-of-range indices are an Error naming the index (device check)") {
  // Written 2026-11-30 without a GPU: indices are checked by a device flag, not a host copy.
  Tensor x = cu(rnd({4, 50}, 70));
  CHECK_NOTHROW(raw::index_select(x, 1, cu(from_vector<int64_t>({0, 49, 7}, {3}))));
  CHECK_THROWS_WITH_AS(raw::index_select(x, 1, cu(from_vector<int64_t>({0, 50, 7}, {3}))),
                       doctest::Contains("index 50 is out of range"), Error);
  CHECK_THROWS_WITH_AS(raw::index_select(x, 1, cu(from_vector<int64_t>({-1}, {1}))),
                       doctest::Contains("index -1 is out of range"), Error);
  // many indices, one bad one far from the start (the flag is reduced over every block)
  std::vector<int64_t> many(300000, 3);
  many[271828] = 1000;
  CHECK_THROWS_WITH_AS(raw::index_select(x, 1, cu(from_vector<int64_t>(many, {300000}))),
                       doctest::Contains("index 1000 is out of range"), Error);
  Tensor gi = cu(from_vector<int64_t>({1, 2, 3, 60}, {4, 1}));
  CHECK_THROWS_WITH_AS(raw::gather(x, 1, gi), doctest::Contains("index 60"), Error);
}

TEST_CASE("cuda: index_select, gather, index_add, scatter_add (deterministic), sort, topk") {
  Tensor x = rnd({6, 50, 7}, 60);
  Tensor idx = randint(0, 50, {80}, kInt64);  // many duplicates
  check_equal(raw::index_select(cu(x), 1, cu(idx)), raw::index_select(x, 1, idx), "index_select");
  Tensor src = rnd({6, 80, 7}, 61);
  Tensor ia = raw::index_add(cu(x), 1, cu(idx), cu(src));
  check_close(ia, raw::index_add(x, 1, idx, src), 1e-6, 1e-6, "index_add");
  CHECK(values_of(ia) == values_of(raw::index_add(cu(x), 1, cu(idx), cu(src))));  // run to run
  Tensor gi = randint(0, 50, {6, 30, 7}, kInt64);
  check_equal(raw::gather(cu(x), 1, cu(gi)), raw::gather(x, 1, gi), "gather");
  Tensor ssrc = rnd({6, 30, 7}, 62);
  Tensor sa = raw::scatter_add(cu(x), 1, cu(gi), cu(ssrc));
  check_close(sa, raw::scatter_add(x, 1, gi, ssrc), 1e-6, 1e-6, "scatter_add");
  CHECK(values_of(sa) == values_of(raw::scatter_add(cu(x), 1, cu(gi), cu(ssrc))));
  // last-dim scatter (inner == 1)
  Tensor li = randint(0, 7, {6, 50, 12}, kInt64);
  Tensor ls = rnd({6, 50, 12}, 63);
  check_close(raw::scatter_add(cu(x), 2, cu(li), cu(ls)), raw::scatter_add(x, 2, li, ls), 1e-6,
              1e-6, "scatter_add last dim");
  // stable sort with ties, NaN and signed zeros: values and indices equal the CPU's
  for (DType dt : {kInt32, kInt64, kFloat32, kFloat64}) {
    Tensor s = rnd({9, 301}, 64, kFloat64, -4, 4).to(dt);
    if (dt == kInt32 || dt == kInt64) s = raw::binary(BinaryKind::Div, s, scalar_tensor(2, dt));
    for (bool desc : {false, true})
      for (int64_t dim : {0, 1}) {
        auto [cv, ci] = raw::sort(s, dim, desc);
        auto [gv, gi2] = raw::sort(cu(s), dim, desc);
        check_equal(gv, cv, std::string("sort values ") + dtype_name(dt));
        check_equal(gi2, ci, std::string("sort indices ") + dtype_name(dt));
      }
  }
  Tensor special = from_vector<float>({1, NAN, -0.0f, 0.0f, -1, NAN, 1, 0.0f, -0.0f}, {9});
  for (bool desc : {false, true}) {
    auto [cv, ci] = raw::sort(special, 0, desc);
    auto [gv, gi2] = raw::sort(cu(special), 0, desc);
    check_equal(gi2, ci, "sort NaN/signed zero indices");
  }
  auto [tv, ti] = raw::topk(cu(x), 5, 1, true);
  auto [ctv, cti] = raw::topk(x, 5, 1, true);
  check_equal(tv, ctv, "topk values");
  check_equal(ti, cti, "topk indices");
}

TEST_CASE("cuda: matmul through cuBLAS, every transpose combination and batch broadcasting") {
  std::mt19937 gen(70);
  for (DType dt : {kFloat32, kFloat64}) {
    for (int trial = 0; trial < 8; ++trial) {
      const int64_t M = odd_size(gen), N = odd_size(gen), K = odd_size(gen);
      for (int t = 0; t < 4; ++t) {
        const bool ta = t & 1, tb = t & 2;
        Tensor a = ta ? rnd({3, K, M}, 71 + t, dt).transpose(1, 2) : rnd({3, M, K}, 71 + t, dt);
        Tensor b = tb ? rnd({N, K}, 75 + t, dt).transpose(0, 1) : rnd({K, N}, 75 + t, dt);
        const double tl = dt == kFloat32 ? 1e-4 : 1e-11;
        check_close(
            raw::matmul(cu(a), cu(b)), raw::matmul(a, b), tl, tl * K,
            "matmul " + std::to_string(M) + "x" + std::to_string(N) + "x" + std::to_string(K));
      }
    }
  }
  Tensor v = rnd({33}, 80), m = rnd({4, 33, 9}, 81);
  check_close(raw::matmul(cu(v), cu(m)), raw::matmul(v, m), 1e-4, 1e-4, "vector @ batch");
  Tensor big = rnd({2, 1, 64, 48}, 82), other = rnd({5, 48, 40}, 83);
  check_close(raw::matmul(cu(big), cu(other)), raw::matmul(big, other), 1e-4, 1e-4,
              "broadcast batches");
}
