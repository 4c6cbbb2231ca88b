// Joining and indexing: cat, stack, split, chunk, gather, index_select, scatter_add, index_add,
// one_hot, sort / argsort / topk (stable, NaN last), against loops over std::vector.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "core_test_util.h"

using namespace smyrf;
using namespace smyrf::test;

namespace {
const double kNaN = std::numeric_limits<double>::quiet_NaN();
}

TEST_CASE("cat along every dim with promotion and non-contiguous inputs") {
  std::vector<double> av = int_values(2 * 3 * 4, 1), bv = int_values(2 * 3 * 5, 2);
  Tensor a = make(av, {2, 3, 4}, kInt32);
  Tensor bbase = make(bv, {2, 5, 3}, kFloat32);
  Tensor b = bbase.transpose(1, 2);  // (2, 3, 5), non-contiguous
  std::vector<double> bvv = read_view(bv, b);
  Tensor c = cat({a, b}, -1);
  CHECK(c.dtype() == kFloat32);
  std::vector<double> want;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j) {
      for (int k = 0; k < 4; ++k) want.push_back(av[(i * 3 + j) * 4 + k]);
      for (int k = 0; k < 5; ++k) want.push_back(bvv[(i * 3 + j) * 5 + k]);
    }
  check_values(c, {2, 3, 9}, want, 0, 0);
  // dim 0, three pieces including an empty one
  Tensor d = cat({a, zeros({0, 3, 4}, kInt32), a.slice(0, 1, 2)}, 0);
  CHECK(d.shape() == Shape{3, 3, 4});
  std::vector<double> want0 = av;
  want0.insert(want0.end(), av.begin() + 12, av.end());
  check_values(d, {3, 3, 4}, want0, 0, 0);
  CHECK(cat({a}, 1).shape() == a.shape());
}

TEST_CASE("stack inserts a new dim") {
  Tensor a = make({1, 2, 3}, {3}), b = make({4, 5, 6}, {3});
  check_values(stack({a, b}), {2, 3}, {1, 2, 3, 4, 5, 6}, 0, 0);
  check_values(stack({a, b}, 1), {3, 2}, {1, 4, 2, 5, 3, 6}, 0, 0);
  check_values(stack({a, b}, -1), {3, 2}, {1, 4, 2, 5, 3, 6}, 0, 0);
}

TEST_CASE("split and chunk return views covering the dim") {
  std::vector<double> v = uniform_values(7 * 4, 3);
  Tensor x = make(v, {7, 4}, kFloat64);
  auto parts = split(x, 3, 0);
  REQUIRE(parts.size() == 3);
  CHECK(parts[0].shape() == Shape{3, 4});
  CHECK(parts[2].shape() == Shape{1, 4});
  CHECK(parts[1].storage() == x.storage());
  check_values(parts[1], {3, 4}, std::vector<double>(v.begin() + 12, v.begin() + 24), 0, 0);
  auto sizes = split(x, std::vector<int64_t>{1, 0, 3}, 1);
  REQUIRE(sizes.size() == 3);
  CHECK(sizes[1].shape() == Shape{7, 0});
  CHECK(sizes[2].shape() == Shape{7, 3});
  check_values(sizes[0], {7, 1}, {v[0], v[4], v[8], v[12], v[16], v[20], v[24]}, 0, 0);
  auto ch = chunk(x, 3, 0);  // 7 rows in 3 chunks: 3, 3, 1
  REQUIRE(ch.size() == 3);
  CHECK(ch[0].size(0) == 3);
  CHECK(ch[2].size(0) == 1);
  auto ch2 = chunk(x, 2, 1);
  REQUIRE(ch2.size() == 2);
  check_values(cat(ch2, 1), {7, 4}, v, 0, 0);
  // writes through a split piece reach the base
  parts[2].fill_(-1);
  CHECK(x.select(0, 6).select(0, 3).item() == -1.0);
}

TEST_CASE("gather along each dim, with a smaller index and non-contiguous input") {
  std::vector<double> v = uniform_values(5 * 7, 4);
  Tensor base = make(v, {7, 5}, kFloat64);
  Tensor x = base.t();  // (5, 7)
  std::vector<double> xv = read_view(v, x);
  // dim 1: index (4, 3) with values in [0, 7)
  std::vector<int64_t> iv{0, 6, 3, 1, 1, 1, 5, 2, 0, 6, 6, 4};
  Tensor idx = from_vector(iv, {4, 3});
  std::vector<double> want;
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 3; ++j) want.push_back(xv[i * 7 + iv[i * 3 + j]]);
  check_values(gather(x, 1, idx), {4, 3}, want, 0, 0);
  // dim 0: index (2, 7) with values in [0, 5), int32 indices
  std::vector<int32_t> jv{4, 0, 1, 2, 3, 4, 0, 1, 1, 1, 1, 1, 1, 0};
  Tensor jdx = from_vector(jv, {2, 7});
  want.clear();
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 7; ++j) want.push_back(xv[jv[i * 7 + j] * 7 + j]);
  check_values(gather(x, 0, jdx), {2, 7}, want, 0, 0);
  // integer and bool inputs
  Tensor b = make({1, 0, 0, 1}, {2, 2}).to(kBool);
  check_values(gather(b, 1, from_vector(std::vector<int64_t>{1, 1, 0, 0}, {2, 2})), {2, 2},
               {0, 0, 0, 0}, 0, 0);
}

TEST_CASE("index_select and index_add along each dim") {
  std::vector<double> v = int_values(3 * 7 * 4, 5);
  for (DType dt : {kInt32, kInt64, kFloat32, kFloat64}) {
    CAPTURE(dtype_name(dt));
    Tensor x = make(v, {3, 7, 4}, dt);
    std::vector<int64_t> iv{6, 0, 0, 3, 6};
    Tensor idx = from_vector(iv, {5});
    std::vector<double> want;
    for (int i = 0; i < 3; ++i)
      for (int64_t k : iv)
        for (int j = 0; j < 4; ++j) want.push_back(v[(i * 7 + k) * 4 + j]);
    check_values(index_select(x, 1, idx), {3, 5, 4}, want, 0, 0);
    // on a transposed view along its last dim
    Tensor xt = x.transpose(1, 2);  // (3, 4, 7)
    std::vector<double> xtv = read_view(as_stored(v, dt), xt);
    want.clear();
    for (int i = 0; i < 3 * 4; ++i)
      for (int64_t k : iv) want.push_back(xtv[i * 7 + k]);
    check_values(index_select(xt, 2, idx), {3, 4, 5}, want, 0, 0);
    // index_add: duplicates accumulate; the input is not modified
    std::vector<double> sv = int_values(3 * 5 * 4, 6);
    Tensor src = make(sv, {3, 5, 4}, dt);
    std::vector<double> acc = v;
    for (int i = 0; i < 3; ++i)
      for (size_t r = 0; r < iv.size(); ++r)
        for (int j = 0; j < 4; ++j) acc[(i * 7 + iv[r]) * 4 + j] += sv[(i * 5 + r) * 4 + j];
    check_values(index_add(x, 1, idx, src), {3, 7, 4}, acc, 0, 0);
    check_values(x, {3, 7, 4}, v, 0, 0);
  }
  // along the last dim of a matrix large enough for the threads (the flat per-row loop)
  std::vector<double> big = int_values(300 * 200, 8);
  std::vector<int64_t> bi;
  for (int64_t i = 0; i < 150; ++i) bi.push_back((i * 37 + 11) % 200);
  std::vector<double> want;
  for (int64_t r = 0; r < 300; ++r)
    for (int64_t k : bi) want.push_back(big[r * 200 + k]);
  check_values(index_select(make(big, {300, 200}, kFloat32), 1, from_vector(bi, {150})), {300, 150},
               want, 0, 0);
}

TEST_CASE("scatter_add accumulates duplicates in every dtype") {
  for (DType dt : {kInt32, kInt64, kFloat32, kFloat64}) {
    CAPTURE(dtype_name(dt));
    std::vector<double> xv = int_values(4 * 3, 7);
    Tensor x = make(xv, {4, 3}, dt);
    std::vector<int64_t> iv{0, 3, 3, 0, 0, 1, 2, 2, 2};  // (3, 3) along dim 0
    std::vector<double> sv = int_values(9, 8);
    Tensor out = scatter_add(x, 0, from_vector(iv, {3, 3}), make(sv, {3, 3}, dt));
    std::vector<double> want = xv;
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 3; ++j) want[iv[i * 3 + j] * 3 + j] += sv[i * 3 + j];
    check_values(out, {4, 3}, want, 0, 0);
    // along the last dim of a transposed input
    Tensor xt = make(xv, {3, 4}, dt).t();  // (4, 3)
    std::vector<double> xtv = read_view(xv, xt), want2 = xtv;
    std::vector<int64_t> jv{2, 2, 0, 1, 1, 1, 0, 0, 0, 2, 1, 0};  // (4, 3) along dim 1
    std::vector<double> s2 = int_values(12, 9);
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 3; ++j) want2[i * 3 + jv[i * 3 + j]] += s2[i * 3 + j];
    check_values(scatter_add(xt, 1, from_vector(jv, {4, 3}), make(s2, {4, 3}, dt)), {4, 3}, want2,
                 0, 0);
  }
  // along the last dim of a matrix large enough for the threads (the flat per-row loop), with
  // duplicate indices in every row
  std::vector<double> base = int_values(300 * 200, 10), src = int_values(300 * 150, 11);
  std::vector<int64_t> bi(300 * 150);
  for (size_t i = 0; i < bi.size(); ++i) bi[i] = static_cast<int64_t>((i * 37 + i / 150) % 200);
  std::vector<double> want = base;
  for (int64_t r = 0; r < 300; ++r)
    for (int64_t c = 0; c < 150; ++c) want[r * 200 + bi[r * 150 + c]] += src[r * 150 + c];
  check_values(scatter_add(make(base, {300, 200}, kFloat32), 1, from_vector(bi, {300, 150}),
                           make(src, {300, 150}, kFloat32)),
               {300, 200}, want, 0, 0);
}

TEST_CASE("scatter_add_ / index_add_ add in place: contiguous, strided and aliased destinations") {
  std::vector<double> xv = int_values(4 * 6, 12), sv = int_values(4 * 3, 13);
  std::vector<int64_t> iv{5, 0, 5, 2, 2, 2, 0, 1, 3, 4, 4, 0};  // (4, 3) along dim 1
  std::vector<double> want = xv;
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 3; ++j) want[i * 6 + iv[i * 3 + j]] += sv[i * 3 + j];
  // contiguous: the same storage, updated, version bumped
  Tensor x = make(xv, {4, 6});
  const void* p = x.data_ptr<float>();
  const uint64_t v0 = x.version();
  raw::scatter_add_(x, 1, from_vector(iv, {4, 3}), make(sv, {4, 3}));
  CHECK(x.data_ptr<float>() == p);
  CHECK(x.version() > v0);
  check_values(x, {4, 6}, want, 0, 0);
  // a transposed view: its base changes where the view lies, and only there
  Tensor base = make(std::vector<double>(6 * 5, 100.0), {6, 5});
  Tensor view = raw::slice(base, 1, 1, 5, 1).t();  // (4, 6), strides (1, 5)
  raw::copy_into(view, make(xv, {4, 6}));
  raw::scatter_add_(view, 1, from_vector(iv, {4, 3}), make(sv, {4, 3}));
  check_values(view, {4, 6}, want, 0, 0);
  std::vector<double> b = base.to_vector<double>();
  for (int r = 0; r < 6; ++r) CHECK(b[r * 5] == 100.0);  // column 0 lies outside the view
  // src aliasing dst: the result of the out-of-place op on the old values
  Tensor y = make(int_values(4 * 4, 14), {4, 4});
  std::vector<int64_t> jv{3, 3, 0, 1, 2, 2, 2, 2, 0, 1, 2, 3, 1, 1, 0, 0};
  Tensor jdx = from_vector(jv, {4, 4});
  Tensor expect = scatter_add(y, 1, jdx, y);
  raw::scatter_add_(y, 1, jdx, y);
  check_values(y, {4, 4}, expect.to_vector<double>(), 0, 0);
  // index_add_ on a contiguous destination, and on itself as the source
  Tensor z = make(xv, {4, 6});
  std::vector<int64_t> kv{2, 0, 2};
  Tensor kdx = from_vector(kv, {3});
  Tensor zsrc = make(sv, {4, 3});
  Tensor zwant = index_add(z, 1, kdx, zsrc);
  const void* zp = z.data_ptr<float>();
  raw::index_add_(z, 1, kdx, zsrc);
  CHECK(z.data_ptr<float>() == zp);
  check_values(z, {4, 6}, zwant.to_vector<double>(), 0, 0);
  Tensor w = make(int_values(3 * 3, 15), {3, 3});
  Tensor wwant = index_add(w, 0, from_vector(std::vector<int64_t>{1, 1, 0}, {3}), w);
  raw::index_add_(w, 0, from_vector(std::vector<int64_t>{1, 1, 0}, {3}), w);
  check_values(w, {3, 3}, wwant.to_vector<double>(), 0, 0);
}

TEST_CASE("one_hot") {
  Tensor oh = one_hot(from_vector(std::vector<int64_t>{2, 0, 1, 2}, {2, 2}), 3);
  CHECK(oh.dtype() == kInt64);
  check_values(oh, {2, 2, 3}, {0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 1}, 0, 0);
  check_values(one_hot(from_vector(std::vector<int32_t>{0}, {1}), 1), {1, 1}, {1}, 0, 0);
  // a non-contiguous index
  Tensor idx = from_vector(std::vector<int64_t>{0, 1, 2, 3}, {2, 2}).t();  // [[0, 2], [1, 3]]
  check_values(one_hot(idx, 4), {2, 2, 4}, {1, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1}, 0, 0);
}

TEST_CASE("sort and argsort are stable along any dim, ascending and descending") {
  // many ties so stability is visible
  std::vector<double> v = int_values(7 * 33, 10, 0, 4);
  for (DType dt : {kInt32, kInt64, kFloat32, kFloat64}) {
    Tensor base = make(v, {7, 33}, dt);
    for (const Tensor& x : {base, base.t()}) {
      std::vector<double> xv = read_view(v, x);
      for (int64_t d : {0, 1})
        for (bool desc : {false, true}) {
          CAPTURE(dtype_name(dt));
          CAPTURE(shape_str(x.shape()));
          CAPTURE(d);
          CAPTURE(desc);
          const int64_t n = x.size(d), m = x.size(1 - d);
          auto pos = [&](int64_t o, int64_t i) { return d == 1 ? o * n + i : i * m + o; };
          std::vector<double> wv(xv.size()), wi(xv.size());
          for (int64_t o = 0; o < m; ++o) {
            std::vector<int64_t> order(n);
            std::iota(order.begin(), order.end(), 0);
            std::stable_sort(order.begin(), order.end(), [&](int64_t p, int64_t q) {
              return desc ? xv[pos(o, p)] > xv[pos(o, q)] : xv[pos(o, p)] < xv[pos(o, q)];
            });
            for (int64_t i = 0; i < n; ++i) {
              wv[pos(o, i)] = xv[pos(o, order[i])];
              wi[pos(o, i)] = static_cast<double>(order[i]);
            }
          }
          auto [sv, si] = sort(x, d, desc);
          CHECK(sv.dtype() == dt);
          CHECK(si.dtype() == kInt64);
          check_values(sv, x.shape(), wv, 0, 0);
          check_values(si, x.shape(), wi, 0, 0);
          check_values(argsort(x, d, desc), x.shape(), wi, 0, 0);
        }
    }
  }
}

TEST_CASE("sort puts NaN last ascending and first descending; topk") {
  Tensor x = make({3, kNaN, -1, 7, 3}, {5});
  auto [a, ai] = sort(x);
  check_values(a, {5}, {-1, 3, 3, 7, kNaN}, 0, 0);
  check_values(ai, {5}, {2, 0, 4, 3, 1}, 0, 0);
  auto [d, di] = sort(x, 0, true);
  check_values(d, {5}, {kNaN, 7, 3, 3, -1}, 0, 0);
  check_values(di, {5}, {1, 3, 0, 4, 2}, 0, 0);
  // topk: largest and smallest, stable on ties, along dim 0 of a matrix
  Tensor m = make({5, 1, 5, 2, 0, 2, 5, 9, 1, 0, 3, 3}, {4, 3}, kInt64);
  auto [tv, ti] = topk(m, 2, 0);
  check_values(tv, {2, 3}, {5, 9, 5, 5, 3, 3}, 0, 0);
  check_values(ti, {2, 3}, {0, 2, 0, 2, 3, 3}, 0, 0);
  auto [bv, bi] = topk(m, 3, -1, false);
  check_values(bv, {4, 3}, {1, 5, 5, 0, 2, 2, 1, 5, 9, 0, 3, 3}, 0, 0);
  check_values(bi, {4, 3}, {1, 0, 2, 1, 0, 2, 2, 0, 1, 0, 1, 2}, 0, 0);
  CHECK(topk(m, 0, 1).first.shape() == Shape{4, 0});
  // bool sorts as 0/1
  auto [bs, bsi] = sort(make({1, 0, 1, 0}, {4}).to(kBool));
  CHECK(bs.dtype() == kBool);
  check_values(bs, {4}, {0, 0, 1, 1}, 0, 0);
  check_values(bsi, {4}, {1, 3, 0, 2}, 0, 0);
}

TEST_CASE("sort of float and int32 rows (keyed radix / std::sort) against a stable reference") {
  // float and int32 rows sort as (key, index) integers: rows of 64 and more by radix, rows of 16
  // and fewer by compare-selects, the others by std::sort; all must be the stable sort with NaN
  // largest and -0 == +0 (index order)
  for (DType dt : {kInt32, kFloat32, kInt64, kFloat64}) {
    for (int64_t n : {int64_t(1), int64_t(5), int64_t(16), int64_t(17), int64_t(63), int64_t(64),
                      int64_t(65), int64_t(300)}) {
      const int64_t rows = 3;
      std::vector<double> v = int_values(static_cast<size_t>(rows * n), 88, -4, 4);
      if (dt == kFloat32 || dt == kFloat64) {
        for (size_t i = 0; i < v.size(); i += 7) v[i] = kNaN;
        for (size_t i = 3; i < v.size(); i += 11) v[i] = -0.0;
        for (size_t i = 5; i < v.size(); i += 13) v[i] = 0.0;
        for (size_t i = 2; i < v.size(); i += 17) v[i] = -std::numeric_limits<double>::infinity();
        for (size_t i = 1; i < v.size(); i += 19) v[i] += 0.25;
        for (size_t i = 4; i < v.size(); i += 23) v[i] = std::numeric_limits<double>::infinity();
      } else {
        for (size_t i = 0; i < v.size(); i += 9) v[i] = i % 2 ? 2147483647.0 : -2147483648.0;
      }
      Tensor x = make(v, {rows, n}, dt);
      for (bool desc : {false, true}) {
        CAPTURE(dtype_name(dt));
        CAPTURE(n);
        CAPTURE(desc);
        std::vector<double> want_v, want_i;
        for (int64_t r = 0; r < rows; ++r) {
          std::vector<int64_t> ir(static_cast<size_t>(n));
          std::iota(ir.begin(), ir.end(), int64_t{0});
          const double* xr = v.data() + r * n;
          std::stable_sort(ir.begin(), ir.end(), [&](int64_t a, int64_t b) {
            const bool na = std::isnan(xr[a]), nb = std::isnan(xr[b]);
            if (na || nb) return desc ? (na && !nb) : (!na && nb);
            return desc ? xr[a] > xr[b] : xr[a] < xr[b];
          });
          for (int64_t i : ir) want_v.push_back(xr[i]), want_i.push_back(static_cast<double>(i));
        }
        auto [sv, si] = sort(x, 1, desc);
        check_values(sv, {rows, n}, want_v, 0, 0);
        check_values(si, {rows, n}, want_i, 0, 0);
      }
    }
  }
}

TEST_CASE("topk by selection equals the stable sort's first k: ties, NaN, dims, dtypes") {
  // k <= 16 takes a selection (float / int32 rows with n <= 64 or n k <= 512 through
  // compare-selects, the others by insertion), larger k <= n / 8 the partial sort
  // (kernels/cpu/index.cpp topk_rows), other k the full sort; every result must be the stable
  // full sort's first k, indices included, with ties everywhere (integers in [0, 2]), NaN and
  // -0, on 200-long and 6-long rows and columns
  for (DType dt : {kInt32, kInt64, kFloat32, kFloat64}) {
    std::vector<double> v = int_values(6 * 200, 77, 0, 2);  // mostly ties
    if (dt == kFloat32 || dt == kFloat64)
      for (size_t i = 0; i < v.size(); i += 37) v[i] = kNaN;
    if (dt == kFloat32 || dt == kFloat64)
      for (size_t i = 5; i < v.size(); i += 41) v[i] = -0.0;
    Tensor x = make(v, {6, 200}, dt);
    for (const Tensor& xs : {x, x.t().contiguous()}) {
      for (int64_t dim : {int64_t(0), int64_t(1)}) {
        const int64_t n = xs.shape()[static_cast<size_t>(dim)];
        for (bool largest : {true, false}) {
          for (int64_t k : {int64_t(1), int64_t(3), int64_t(5), int64_t(6), int64_t(16),
                            int64_t(17), int64_t(25), int64_t(30)}) {
            if (k > n) continue;
            CAPTURE(dtype_name(dt));
            CAPTURE(xs.shape()[0]);
            CAPTURE(dim);
            CAPTURE(largest);
            CAPTURE(k);
            auto [sv, si] = sort(xs, dim, largest);
            auto [tv, ti] = topk(xs, k, dim, largest);
            Shape s = xs.shape();
            s[static_cast<size_t>(dim)] = k;
            check_values(tv, s, sv.slice(dim, 0, k).contiguous().to_vector<double>(), 0, 0);
            check_values(ti, s, si.slice(dim, 0, k).contiguous().to_vector<double>(), 0, 0);
          }
        }
      }
    }
  }
}

TEST_CASE("topk over long rows: the key scan under AVX2 and scalar, sorted and tied input") {
  // float / int32 rows of 5003 (kernels/cpu/index.cpp select_long_keyed: entries below the k-th
  // key found eight at a time under AVX2, one at a time under the scalar kernels; a sorted array
  // for k <= 16, a heap above): random values with NaN and signed zeros, ascending rows (every
  // entry enters, for largest), descending rows and rows of equal values (ties: first indices);
  // NaN with either sign bit
  const int64_t n = 5003;
  std::vector<double> v = int_values(4 * n, 91, -2000, 2000);
  for (int64_t i = 0; i < n; ++i) {
    v[static_cast<size_t>(n + i)] = static_cast<double>(i);          // ascending
    v[static_cast<size_t>(2 * n + i)] = static_cast<double>(n - i);  // descending
    v[static_cast<size_t>(3 * n + i)] = 7;                           // all equal
  }
  for (DType dt : {kInt32, kFloat32}) {
    std::vector<double> w = v;
    if (dt == kFloat32) {
      for (int64_t i = 0; i < n; i += 97) w[static_cast<size_t>(i)] = kNaN;
      for (int64_t i = 3; i < n; i += 89) w[static_cast<size_t>(i)] = -kNaN;  // sign bit set
      for (int64_t i = 5; i < n; i += 101) w[static_cast<size_t>(i)] = -0.0;
      for (int64_t i = 7; i < n; i += 103) w[static_cast<size_t>(i)] = 0.0;
    }
    const Tensor x = make(w, {4, n}, dt);
    for (auto isa : {kernels::cpu::Isa::Avx2, kernels::cpu::Isa::Scalar}) {
      IsaGuard g(isa);
      for (bool largest : {true, false}) {
        auto [sv, si] = sort(x, 1, largest);
        for (int64_t k :
             {int64_t(1), int64_t(5), int64_t(16), int64_t(17), int64_t(40), int64_t(300)}) {
          CAPTURE(dtype_name(dt));
          CAPTURE(static_cast<int>(isa));
          CAPTURE(largest);
          CAPTURE(k);
          auto [tv, ti] = topk(x, k, 1, largest);
          check_values(tv, {4, k}, sv.slice(1, 0, k).contiguous().to_vector<double>(), 0, 0);
          check_values(ti, {4, k}, si.slice(1, 0, k).contiguous().to_vector<double>(), 0, 0);
        }
      }
    }
  }
}

TEST_CASE("edge shapes: empty sorts, chunks beyond the size, 1-D cross_entropy, 0-d stack") {
  auto [v, i] = sort(zeros({3, 0}), 1);
  CHECK(v.shape() == Shape{3, 0});
  CHECK(i.shape() == Shape{3, 0});
  auto ch = chunk(make({1, 2}, {2}), 5);
  REQUIRE(ch.size() == 2);
  CHECK(ch[1].item() == 2.0);
  check_values(stack({scalar_tensor(1), scalar_tensor(2)}), {2}, {1, 2}, 0, 0);
  // 1-D logits (C) with a 0-d target
  Tensor l = make({1, 2, 3}, {3}, kFloat64);
  const double lse = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0));
  check_values(cross_entropy(l, scalar_tensor(2, kInt64), -100, 0.0, Reduction::None), {},
               {lse - 3}, 1e-14, 0);
}
