// Tensors: dtypes, factories, views sharing storage, copies and conversions, printing, in-place
// writes and the storage version counter.
#include <doctest/doctest.h>

#include <limits>
#include <sstream>

#include "core_test_util.h"

using namespace smyrf;
using namespace smyrf::test;

namespace {
const DType kAllDTypes[] = {kBool, kInt32, kInt64, kFloat32, kFloat64};
}

TEST_CASE("dtype sizes, names, classes and promotion") {
  CHECK(dtype_size(kBool) == 1);
  CHECK(dtype_size(kInt32) == 4);
  CHECK(dtype_size(kInt64) == 8);
  CHECK(dtype_size(kFloat32) == 4);
  CHECK(dtype_size(kFloat64) == 8);
  CHECK(std::string(dtype_name(kFloat32)) == "float32");
  CHECK(std::string(dtype_name(kInt64)) == "int64");
  CHECK(is_floating(kFloat64));
  CHECK_FALSE(is_floating(kInt32));
  CHECK(is_integral(kInt32));
  CHECK_FALSE(is_integral(kBool));
  CHECK(promote_types(kBool, kInt32) == kInt32);
  CHECK(promote_types(kInt64, kInt32) == kInt64);
  CHECK(promote_types(kInt64, kFloat32) == kFloat32);
  CHECK(promote_types(kFloat64, kFloat32) == kFloat64);
  // binary ops follow the same promotion
  Tensor i = make({1, 2}, {2}, kInt32), f = make({0.5, 0.5}, {2}, kFloat32),
         d = make({1, 1}, {2}, kFloat64);
  CHECK((i + f).dtype() == kFloat32);
  CHECK((f + d).dtype() == kFloat64);
  check_values(i + f, {2}, {1.5, 2.5});
}

TEST_CASE("from_vector, tensor() and item in every dtype") {
  for (DType dt : kAllDTypes) {
    CAPTURE(dtype_name(dt));
    std::vector<double> v{0, 1, -3, 7, 2, 0};
    Tensor t = make(v, {2, 3}, dt);
    CHECK(t.dtype() == dt);
    CHECK(t.shape() == Shape{2, 3});
    CHECK(t.strides() == Shape{3, 1});
    CHECK(t.is_contiguous());
    check_values(t, {2, 3}, as_stored(v, dt), 0, 0);
    CHECK(t.select(0, 1).select(0, 0).item() == (dt == kBool ? 1.0 : 7.0));
  }
  CHECK(tensor({1.5f, 2.5f}).dtype() == kFloat32);
  CHECK(tensor({1.5, 2.5}).dtype() == kFloat64);
  CHECK(tensor({int64_t{3}}).dtype() == kInt64);
  CHECK(tensor({int64_t{3}}).item<int64_t>() == 3);
  Tensor b = from_vector(std::vector<bool>{true, false, true}, {3});
  CHECK(b.dtype() == kBool);
  CHECK(b.to_vector<int64_t>() == std::vector<int64_t>{1, 0, 1});
  // the requested dtype converts
  Tensor c = from_vector(std::vector<int64_t>{1, 2}, {2}, kFloat64);
  CHECK(c.dtype() == kFloat64);
  CHECK(c.to_vector<double>() == std::vector<double>{1.0, 2.0});
  CHECK(scalar_tensor(4.25).item<float>() == 4.25f);
  CHECK(scalar_tensor(4.25).dim() == 0);
  CHECK(scalar_tensor(4.25).numel() == 1);
}

TEST_CASE("zeros, ones, full and the _like factories") {
  for (DType dt : kAllDTypes) {
    CAPTURE(dtype_name(dt));
    check_values(zeros({7}, dt), {7}, std::vector<double>(7, 0.0), 0, 0);
    check_values(ones({1, 33}, dt), {1, 33}, std::vector<double>(33, 1.0), 0, 0);
    check_values(full({3, 1}, 5, dt), {3, 1}, std::vector<double>(3, dt == kBool ? 1.0 : 5.0), 0,
                 0);
    Tensor like = full_like(ones({2, 2}, dt), 2);
    CHECK(like.dtype() == dt);
    CHECK(like.shape() == Shape{2, 2});
  }
  CHECK(zeros_like(ones({4}, kInt32)).dtype() == kInt32);
  CHECK(empty_like(ones({4, 5})).shape() == Shape{4, 5});
  check_values(
      full({2}, -std::numeric_limits<double>::infinity()), {2},
      {-std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity()});
  CHECK(zeros({0, 3}).numel() == 0);
  CHECK(zeros({}).dim() == 0);
}

TEST_CASE("arange, linspace, eye") {
  check_values(arange(5), {5}, {0, 1, 2, 3, 4}, 0, 0);
  CHECK(arange(5).dtype() == kInt64);
  check_values(arange(1.0, 2.0, 0.25), {4}, {1.0, 1.25, 1.5, 1.75});
  check_values(arange(3.0, 0.0, -1.0), {3}, {3, 2, 1});
  CHECK(arange(2.0, 1.0, 1.0).numel() == 0);
  // the end is exclusive even when step does not divide the range
  check_values(arange(0.0, 1.0, 0.3, kFloat64), {4}, {0.0, 0.3, 0.6, 0.9}, 1e-12, 1e-12);
  check_values(linspace(-1, 1, 5), {5}, {-1, -0.5, 0, 0.5, 1});
  check_values(linspace(2, 3, 1), {1}, {2});
  CHECK(linspace(0, 1, 0).numel() == 0);
  Tensor l = linspace(0, 1, 33, kFloat64);
  CHECK(l.select(0, 32).item() == 1.0);  // the end point is hit exactly
  check_values(eye(3), {3, 3}, {1, 0, 0, 0, 1, 0, 0, 0, 1}, 0, 0);
  check_values(eye(2, 3, kInt32), {2, 3}, {1, 0, 0, 0, 1, 0}, 0, 0);
  CHECK(eye(2, 3, kInt32).dtype() == kInt32);
}

TEST_CASE("reshape and view share storage; a write through a view shows in the base") {
  std::vector<double> v = uniform_values(2 * 3 * 7, 1);
  Tensor base = make(v, {2, 3, 7}, kFloat64);
  Tensor r = base.reshape({6, 7});
  CHECK(r.storage() == base.storage());
  CHECK(r.strides() == Shape{7, 1});
  Tensor w = base.view({-1});
  CHECK(w.shape() == Shape{42});
  CHECK(w.storage() == base.storage());
  check_values(w, {42}, v, 0, 0);
  w.select(0, 8).fill_(100.0);  // element (0, 1, 1)
  CHECK(base.select(0, 0).select(0, 1).select(0, 1).item() == 100.0);
  CHECK(r.select(0, 1).select(0, 1).item() == 100.0);
  // a -1 is inferred; size-1 dims are fine anywhere
  CHECK(base.view({2, 1, -1, 1}).shape() == Shape{2, 1, 21, 1});
  // a transposed view can still be viewed when the merged dims stay contiguous
  Tensor p = base.permute({2, 0, 1});  // (7, 2, 3), the last two dims are still contiguous together
  Tensor pv = p.view({7, 6});
  CHECK(pv.storage() == base.storage());
  check_values(pv, {7, 6}, read_view(base.to_vector<double>(), p));
}

TEST_CASE("view on a non-contiguous tensor throws with a hint; reshape copies") {
  std::vector<double> v = uniform_values(4 * 5, 2);
  Tensor base = make(v, {4, 5});
  Tensor t = base.t();
  CHECK_FALSE(t.is_contiguous());
  check_error([&] { t.view({20}); }, {"[view]", "(5, 4)", "(20,)", "reshape"});
  Tensor r = t.reshape({20});
  CHECK(r.storage() != base.storage());
  CHECK(r.is_contiguous());
  check_values(r, {20}, read_view(as_stored(v, kFloat32), t), 0, 0);
  // the copy is independent of the base
  r.fill_(0);
  check_values(base, {4, 5}, as_stored(v, kFloat32), 0, 0);
  // a stepped slice cannot be flattened without a copy either
  Tensor s = base.slice(1, 0, 5, 2);
  check_error([&] { s.view({-1}); }, {"[view]", "(4, 3)"});
  CHECK(s.reshape({-1}).numel() == 12);
}

TEST_CASE("permute, transpose and t() swap shapes and strides") {
  std::vector<double> v = uniform_values(2 * 3 * 4, 3);
  Tensor x = make(v, {2, 3, 4}, kFloat64);
  Tensor p = x.permute({2, 0, 1});
  CHECK(p.shape() == Shape{4, 2, 3});
  CHECK(p.strides() == Shape{1, 12, 4});
  CHECK(p.storage() == x.storage());
  Tensor tr = x.transpose(0, -1);
  CHECK(tr.shape() == Shape{4, 3, 2});
  CHECK(tr.strides() == Shape{1, 4, 12});
  // values: p[k][i][j] == x[i][j][k]
  std::vector<double> want(24);
  for (int k = 0; k < 4; ++k)
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 3; ++j) want[(k * 2 + i) * 3 + j] = v[(i * 3 + j) * 4 + k];
  check_values(p.contiguous(), {4, 2, 3}, want, 0, 0);
  CHECK(make({1, 2, 3, 4, 5, 6}, {2, 3}).t().shape() == Shape{3, 2});
  // transposing twice is the identity view
  Tensor tt = x.transpose(1, 2).transpose(1, 2);
  CHECK(tt.strides() == x.strides());
}

TEST_CASE("slice and narrow with steps and negative bounds") {
  std::vector<double> v = uniform_values(7 * 33, 4);
  Tensor x = make(v, {7, 33}, kFloat64);
  Tensor s = x.slice(1, 1, 33, 3);  // columns 1, 4, ..., 31
  CHECK(s.shape() == Shape{7, 11});
  CHECK(s.strides() == Shape{33, 3});
  CHECK(s.offset() == 1);
  std::vector<double> want;
  for (int i = 0; i < 7; ++i)
    for (int j = 1; j < 33; j += 3) want.push_back(v[i * 33 + j]);
  check_values(s, {7, 11}, want, 0, 0);
  // negative bounds count from the end; out-of-range bounds clamp
  CHECK(x.slice(0, -3, 7).shape() == Shape{3, 33});
  CHECK(x.slice(0, -100, 100).shape() == Shape{7, 33});
  CHECK(x.slice(0, 5, 2).shape() == Shape{0, 33});
  // slices of slices compose
  Tensor ss = s.slice(0, 1, 7, 2).slice(1, 2, 11, 4);  // rows 1,3,5; cols 7, 19, 31
  std::vector<double> want2;
  for (int i = 1; i < 7; i += 2)
    for (int j : {7, 19, 31}) want2.push_back(v[i * 33 + j]);
  check_values(ss, {3, 3}, want2, 0, 0);
  Tensor n = x.narrow(1, 30, 3);
  CHECK(n.shape() == Shape{7, 3});
  CHECK(n.offset() == 30);
  check_error([&] { x.narrow(1, 31, 3); }, {"[narrow]", "(7, 33)"});
  // a write through a stepped slice lands in the base at the right places
  Tensor y = zeros({10}, kInt64);
  y.slice(0, 1, 10, 4).fill_(5);
  check_values(y, {10}, {0, 5, 0, 0, 0, 5, 0, 0, 0, 5}, 0, 0);
}

TEST_CASE("select, expand, squeeze, unsqueeze, flatten") {
  std::vector<double> v = uniform_values(3 * 1 * 4, 5);
  Tensor x = make(v, {3, 1, 4}, kFloat64);
  Tensor sel = x.select(2, -1);
  CHECK(sel.shape() == Shape{3, 1});
  check_values(sel, {3, 1}, {v[3], v[7], v[11]}, 0, 0);
  Tensor e = x.expand({2, 3, 5, 4});
  CHECK(e.shape() == Shape{2, 3, 5, 4});
  CHECK(e.strides() == Shape{0, 4, 0, 1});
  CHECK(e.storage() == x.storage());
  check_values(e, {2, 3, 5, 4}, read_view(v, e), 0, 0);
  CHECK(x.expand({-1, 6, -1}).shape() == Shape{3, 6, 4});
  Tensor sq = x.squeeze(1);
  CHECK(sq.shape() == Shape{3, 4});
  CHECK(x.squeeze(0).shape() == x.shape());  // not size 1: unchanged
  CHECK(make({1}, {1, 1, 1}).squeeze().dim() == 0);
  Tensor u = sq.unsqueeze(-1);
  CHECK(u.shape() == Shape{3, 4, 1});
  CHECK(sq.unsqueeze(0).shape() == Shape{1, 3, 4});
  CHECK(u.storage() == x.storage());
  Tensor f = make(uniform_values(2 * 3 * 4 * 5, 6), {2, 3, 4, 5}).flatten(1, 2);
  CHECK(f.shape() == Shape{2, 12, 5});
  CHECK(make({1, 2, 3, 4}, {2, 2}).flatten().shape() == Shape{4});
  CHECK(scalar_tensor(1).flatten().shape() == Shape{1});
}

TEST_CASE("contiguous, clone and to(dtype)") {
  std::vector<double> v = uniform_values(5 * 7, 7);
  Tensor x = make(v, {5, 7}, kFloat64);
  CHECK(x.contiguous().is_same(x));  // already contiguous: the same tensor
  Tensor t = x.t();
  Tensor c = t.contiguous();
  CHECK(c.is_contiguous());
  CHECK(c.storage() != x.storage());
  check_values(c, {7, 5}, read_view(v, t), 0, 0);
  Tensor cl = x.clone();
  CHECK(cl.storage() != x.storage());
  cl.fill_(0);
  check_values(x, {5, 7}, v, 0, 0);
  // conversions between every pair of dtypes
  std::vector<double> small{0, 1, -2, 3, 7, -1};
  for (DType from : kAllDTypes)
    for (DType to : kAllDTypes) {
      CAPTURE(dtype_name(from));
      CAPTURE(dtype_name(to));
      Tensor a = make(small, {2, 3}, from);
      Tensor b = a.to(to);
      CHECK(b.dtype() == to);
      check_values(b, {2, 3}, as_stored(as_stored(small, from), to), 0, 0);
      // of a transposed view too
      check_values(a.t().to(to), {3, 2}, read_view(as_stored(as_stored(small, from), to), a.t()), 0,
                   0);
    }
  // float -> int truncates toward zero
  check_values(make({1.7, -1.7, 2.5}, {3}).to(kInt32), {3}, {1, -1, 2}, 0, 0);
  CHECK(x.to(kFloat64).is_same(x));  // same dtype: no copy
}

TEST_CASE("copy_ broadcasts and converts; fill_ writes through views") {
  Tensor dst = zeros({3, 4}, kFloat64);
  dst.copy_(make({1, 2, 3, 4}, {4}, kInt32));
  check_values(dst, {3, 4}, {1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4}, 0, 0);
  // into a transposed view: dst.t() has shape (4, 3); copy a (4, 1) column
  dst.t().copy_(make({10, 20, 30, 40}, {4, 1}));
  check_values(dst, {3, 4}, {10, 20, 30, 40, 10, 20, 30, 40, 10, 20, 30, 40}, 0, 0);
  check_error([&] { dst.copy_(ones({5})); }, {"[copy_]", "(5,)", "(3, 4)"});
  Tensor y = zeros({4, 4}, kInt32);
  y.slice(0, 0, 4, 2).slice(1, 1, 4, 2).fill_(9);
  check_values(y, {4, 4}, {0, 9, 0, 9, 0, 0, 0, 0, 0, 9, 0, 9, 0, 0, 0, 0}, 0, 0);
  y.zero_();
  check_values(y, {4, 4}, std::vector<double>(16, 0), 0, 0);
}

TEST_CASE("item on a one-element view; to_vector of a non-contiguous tensor") {
  Tensor x = make({1, 2, 3, 4, 5, 6}, {2, 3});
  CHECK(x.select(1, 2).select(0, 1).item() == 6.0);
  CHECK(x.slice(1, 1, 2).slice(0, 1, 2).item<int32_t>() == 5);
  CHECK(x.t().to_vector<double>() == std::vector<double>{1, 4, 2, 5, 3, 6});
}

TEST_CASE("in-place writes bump the version of the shared storage") {
  Tensor x = zeros({4, 4});
  Tensor v = x.slice(0, 1, 3);
  const uint64_t v0 = x.version();
  x.fill_(1);
  CHECK(x.version() == v0 + 1);
  CHECK(v.version() == x.version());  // views share the counter
  v.zero_();
  CHECK(x.version() == v0 + 2);
  x.copy_(ones({4}));
  CHECK(x.version() == v0 + 3);
  x.add_(ones({4, 4}));
  CHECK(x.version() == v0 + 4);
  x.mul_(2.0);
  CHECK(x.version() == v0 + 5);
  x.add_(1.0);
  x.mul_(ones({4}));
  CHECK(x.version() == v0 + 7);
  check_values(x, {4, 4}, std::vector<double>(16, 5.0), 0, 0);
  // out-of-place ops do not touch the input's version
  Tensor y = x + x;
  CHECK(x.version() == v0 + 7);
  CHECK(y.version() == 0);
  // a clone has its own counter
  Tensor c = x.clone();
  c.fill_(0);
  CHECK(x.version() == v0 + 7);
}

TEST_CASE("in-place add_/mul_/sub_/div_ compute on views and broadcast the source") {
  std::vector<double> v = uniform_values(3 * 5, 8);
  std::vector<double> w = uniform_values(5, 9);
  Tensor x = make(v, {3, 5}, kFloat64);
  x.add_(make(w, {5}, kFloat64), 2.0);
  std::vector<double> want(15);
  for (int i = 0; i < 15; ++i) want[i] = v[i] + 2.0 * w[i % 5];
  check_values(x, {3, 5}, want, 1e-15, 1e-15);
  // through a transposed view: x.t() is (5, 3); multiply column-wise by a (5, 1)
  x.t().mul_(make(w, {5, 1}, kFloat64));
  for (int i = 0; i < 15; ++i) want[i] *= w[i % 5];
  check_values(x, {3, 5}, want, 1e-15, 1e-15);
  x.sub_(x);
  check_values(x, {3, 5}, std::vector<double>(15, 0.0), 0, 0);
  Tensor i = make({2, 4, 6}, {3}, kInt64);
  i.mul_(3.0);  // an integral scalar keeps integer arithmetic
  check_values(i, {3}, {6, 12, 18}, 0, 0);
  // a fractional scalar cannot be stored in an int tensor: an error, not a silent truncation of
  // the scalar to 0 (which turned div_(2) into zeroing the tensor)
  check_error([&] { i.div_(2.0); }, {"int64", "float64"});
  check_error([&] { i.add_(0.5); }, {"int64", "float64"});
  check_values(i, {3}, {6, 12, 18}, 0, 0);
  // an in-place op cannot grow its destination
  check_error([&] { make({1, 2}, {2}).add_(ones({3, 2})); }, {"in-place", "(3, 2)", "(2,)"});
}

TEST_CASE("the version counter guards tensors saved for backward") {
  Tensor w = ones({3}).requires_grad_();
  Tensor a = make({1, 2, 3}, {3});
  Tensor y = (w * a).sum();  // mul saves a
  a.add_(1.0);
  check_error([&] { y.backward(); }, {"modified in place", "version"});
  // unmodified: backward works and the gradient is a
  Tensor b = make({1, 2, 3}, {3});
  Tensor z = (w * b).sum();
  z.backward();
  check_values(w.grad(), {3}, {1, 2, 3});
  // in-place on a tensor that requires grad is refused with a hint
  check_error([&] { w.add_(1.0); }, {"[add_]", "requires grad"});
  check_error([&] { w.mul_(2.0); }, {"[mul_]", "requires grad"});
  // zero_/fill_/copy_ too: a silent write into a leaf would corrupt what backward sees
  check_error([&] { w.zero_(); }, {"requires grad"});
  check_error([&] { w.copy_(zeros({3})); }, {"requires grad"});
}

TEST_CASE("printing shows shape, dtype and abbreviates long dims") {
  Tensor x = make({1.5, -2, 3}, {3});
  std::string s = x.str();
  CHECK(s.find("shape=(3,)") != std::string::npos);
  CHECK(s.find("dtype=float32") != std::string::npos);
  CHECK(s.find("[1.5, -2, 3]") != std::string::npos);
  std::ostringstream os;
  os << make({1, 2, 3, 4}, {2, 2}, kInt64);
  CHECK(os.str().find("dtype=int64") != std::string::npos);
  CHECK(os.str().find("[[1, 2],") != std::string::npos);
  CHECK(os.str().find("[3, 4]]") != std::string::npos);
  // a long dim prints its first and last three elements around "..."
  std::string l = arange(100).str();
  CHECK(l.find("[0, 1, 2, ..., 97, 98, 99]") != std::string::npos);
  CHECK(l.find("50") == std::string::npos);
  // abbreviation in an outer dim skips whole rows
  std::string m = arange(0.0, 40.0, 1.0).reshape({20, 2}).str();
  CHECK(m.find("[38, 39]") != std::string::npos);
  CHECK(m.find("[4, 5]") != std::string::npos);
  CHECK(m.find("[6, 7]") == std::string::npos);
  CHECK(m.find("...") != std::string::npos);
  // a non-contiguous view prints its own values
  CHECK(make({1, 2, 3, 4}, {2, 2}, kInt64).t().str().find("[[1, 3],") != std::string::npos);
  CHECK(scalar_tensor(2.5).str().find("shape=()") != std::string::npos);
  CHECK(Tensor().str() == "Tensor(undefined)");
  CHECK(make({1}, {1}).requires_grad_().str().find("requires_grad") != std::string::npos);
}

TEST_CASE("printing integers keeps every digit, in 0-d and n-d tensors") {
  CHECK(scalar_tensor(123456789, kInt64).str().find("123456789") != std::string::npos);
  CHECK(make({123456789, -7}, {2}, kInt64).str().find("[123456789, -7]") != std::string::npos);
  CHECK(scalar_tensor(1, kBool).str().find("dtype=bool") != std::string::npos);
  CHECK(zeros({2, 0}).str().find("shape=(2, 0)") != std::string::npos);
}
