// Malformed calls raise smyrf::Error naming the op, the shapes or dtypes involved, and a hint.
// Nothing aborts: every case here would otherwise crash or silently compute garbage.
#include <doctest/doctest.h>

#include "core/ops_cuda.h"
#include "core/ops_cuda_nn.h"
#include "core_test_util.h"

using namespace smyrf;
using namespace smyrf::test;

TEST_CASE("matmul: inner dimensions, rank, dtype") {
  check_error(
      [] {
        matmul(zeros({8, 64}), zeros({32, 16}));
      },
      {"[matmul] inner dimensions differ: (8, 64) @ (32, 16)"});
  check_error(
      [] {
        matmul(zeros({2, 3, 4}), zeros({5, 4, 2}));
      },
      {"[matmul]", "(2,)", "(5,)", "broadcast"});
  check_error(
      [] {
        matmul(zeros({2, 3}), zeros({3, 2}, kFloat64));
      },
      {"[matmul]", "float32", "float64"});
  check_error([] { matmul(zeros({2, 3}, kInt64), zeros({3, 2}, kInt64)); }, {"[matmul]", "int64"});
  check_error([] { bmm(zeros({2, 3, 4}), zeros({3, 4, 5})); }, {"[bmm]", "(2, 3, 4)", "(3, 4, 5)"});
  check_error([] { matmul(scalar_tensor(1), zeros({2})); }, {"[matmul]", "()", "(2,)"}, false);
}

TEST_CASE("broadcast failures name both shapes") {
  check_error(
      [] {
        zeros({2, 3}) + zeros({4, 3});
      },
      {"[add]", "cannot broadcast", "(2, 3)", "(4, 3)"});
  check_error([] { mul(zeros({7}), zeros({33})); }, {"[mul]", "(7,)", "(33,)"});
  // every binary op has its name (a name table indexed by the enum overran for the newest op)
  check_error([] { raw::binary(raw::BinaryKind::ReluBackward, zeros({7}), zeros({33})); },
              {"[relu_backward]", "(7,)", "(33,)"});
  check_error([] { raw::binary(raw::BinaryKind::Minimum, zeros({2}), zeros({5})); },
              {"[minimum]", "(2,)", "(5,)"});
  check_error([] { lt(zeros({2}), zeros({3})); }, {"[compare]", "(2,)", "(3,)"});
  check_error([] { where(zeros({2}) > 0.0, zeros({3}), zeros({3})); }, {"[where]", "(2,)", "(3,)"});
  check_error([] { zeros({3}).expand({2, 4}); }, {"[expand]", "(3,)", "(2, 4)"});
  check_error(
      [] {
        masked_fill(zeros({3}), zeros({2, 3}) > 0.0, 1);
      },
      {"[masked_fill]", "(2, 3)", "(3,)"});
}

TEST_CASE("dtype mismatches") {
  check_error([] { where(zeros({2}), zeros({2}), zeros({2})); }, {"[where]", "bool", "float32"});
  check_error([] { masked_fill(zeros({2}), zeros({2}, kInt64), 1); },
              {"[masked_fill]", "bool", "int64"});
  check_error([] { softmax(zeros({2, 3}, kInt64), 1); }, {"[softmax]", "int64"});
  check_error([] { log_softmax(zeros({2, 3}, kInt32), 1); }, {"[log_softmax]", "int32"});
  check_error(
      [] {
        cross_entropy(zeros({2, 3}), zeros({2}));
      },
      {"[cross_entropy]", "float32", "target"});
  check_error([] { gather(zeros({2, 3}), 1, zeros({2, 3})); }, {"[gather]", "float32", "index"});
  check_error([] { zeros({2}).data_ptr<double>(); }, {"[data_ptr]", "float64", "float32"});
  check_error([] { randn({2}, kInt64); }, {"[randn]", "int64"});
}

TEST_CASE("requires_grad on integer tensors") {
  check_error([] { zeros({2}, kInt64).requires_grad_(); }, {"[requires_grad_]", "int64"});
  check_error([] { empty({2}, TensorOptions(kInt32).set_requires_grad()); },
              {"[requires_grad]", "int32"});
  check_error([] { zeros({2}, TensorOptions(kInt32).set_requires_grad()); },
              {"int32", "gradients"});
  check_error(
      [] {
        from_vector(std::vector<int64_t>{1, 2}, {2}, TensorOptions(kInt64).set_requires_grad());
      },
      {"int64", "gradients"});
}

TEST_CASE("out-of-range dims") {
  check_error([] { sum(zeros({2, 3}), {2}); }, {"[sum]", "dim 2", "rank 2", "-2 .. 1"});
  check_error([] { softmax(zeros({2, 3}), -3); }, {"[softmax]", "dim -3", "rank 2"});
  check_error([] { zeros({2, 3}).transpose(0, 5); }, {"[transpose]", "dim 5"});
  check_error([] { cat({zeros({2}), zeros({2})}, 1); }, {"[cat]", "dim 1", "rank 1"});
  check_error([] { zeros({2, 3}).select(1, 3); }, {"[select]", "index 3", "size 3"});
  check_error([] { argmax(zeros({4}), 1); }, {"[argmax]", "dim 1"});
  check_error([] { zeros({2, 3}).permute({0, 0}); }, {"[permute]", "repeated"}, false);
}

TEST_CASE("out-of-range indices in gather, index_select, scatter_add, one_hot and cross_entropy") {
  Tensor x = zeros({3, 4});
  check_error(
      [&] {
        gather(x, 1, from_vector(std::vector<int64_t>{0, 4, 1}, {3, 1}));
      },
      {"[gather]", "index 4", "size 4"});
  check_error(
      [&] {
        gather(x, 1, from_vector(std::vector<int64_t>{-1, 0, 1}, {3, 1}));
      },
      {"[gather]", "index -1"});
  check_error(
      [&] {
        index_select(x, 0, from_vector(std::vector<int64_t>{0, 3}, {2}));
      },
      {"[index_select]", "index 3", "size 3"});
  {
    // rows of 40 (the CPU kernel checks them as it reads them, a vector block at a time), int32
    // indices, and a middle dim
    std::vector<int32_t> rows(3 * 40, 1);
    rows[2 * 40 + 17] = 40;
    Tensor wide = zeros({3, 40});
    check_error(
        [&] {
          gather(wide, 1, from_vector(rows, {3, 40}));
        },
        {"[gather]", "index 40", "size 40"});
    rows[2 * 40 + 17] = 39;
    CHECK(gather(wide, 1, from_vector(rows, {3, 40})).size(1) == 40);
    check_error(
        [&] {
          gather(zeros({2, 3, 4}), 1, full({2, 2, 4}, -2.0, TensorOptions(kInt64)));
        },
        {"[gather]", "index -2", "size 3"});
  }
  {
    // a long index (the parallel range check) with one bad entry far in: named in the error
    std::vector<int64_t> many(1 << 20, 2);
    many[700001] = -5;
    const Tensor idx = from_vector(many, {1 << 20});
    check_error([&] { index_select(x, 0, idx); }, {"[index_select]", "index -5", "size 3"});
    many[700001] = 1;
    CHECK(index_select(x, 0, from_vector(many, {1 << 20})).size(0) == (1 << 20));
  }
  check_error(
      [&] {
        scatter_add(x, 0, from_vector(std::vector<int64_t>{5, 0, 0, 0}, {1, 4}), ones({1, 4}));
      },
      {"[scatter_add]", "index 5"});
  check_error(
      [&] {
        index_add(x, 1, from_vector(std::vector<int64_t>{9}, {1}), ones({3, 1}));
      },
      {"[index_add]", "index 9"});
  check_error(
      [] {
        one_hot(from_vector(std::vector<int64_t>{0, 3}, {2}), 3);
      },
      {"[one_hot]", "index 3"});
  check_error(
      [&] {
        cross_entropy(x, from_vector(std::vector<int64_t>{0, 4, 1}, {3}));
      },
      {"[cross_entropy]", "target 4", "4 classes", "ignore_index"});
  {
    // enough rows for the threaded check: the first bad target is still the one named, and
    // ignore_index rows pass
    const int64_t rows = 300000;
    std::vector<int64_t> t(rows, 1);
    t[5] = -100;
    t[rows - 2] = 2;
    t[rows - 1] = -1;
    const Tensor big = zeros({rows, 2});
    check_error([&] { cross_entropy(big, from_vector(t, {rows})); },
                {"[cross_entropy]", "target 2 at row 299998", "2 classes"});
    t[rows - 2] = 1;  // a negative target other than ignore_index
    check_error([&] { cross_entropy(big, from_vector(t, {rows})); },
                {"[cross_entropy]", "target -1 at row 299999"});
    t[rows - 1] = -100;
    CHECK_NOTHROW(cross_entropy(big, from_vector(t, {rows})));
  }
  check_error(
      [&] {
        cross_entropy(x, from_vector(std::vector<int64_t>{0, 1}, {2}));
      },
      {"[cross_entropy]", "(2,)", "(3, 4)"});
}

TEST_CASE("view and reshape of incompatible shapes") {
  check_error([] { zeros({2, 3}).view({4}); }, {"[view]", "(2, 3)", "(4,)", "6 elements"});
  check_error([] { zeros({2, 3}).reshape({-1, 4}); }, {"[reshape]", "(2, 3)", "(-1, 4)"});
  check_error([] { zeros({2, 3}).reshape({-1, -1}); }, {"[reshape]", "only one dimension"}, false);
  check_error([] { zeros({4, 5}).t().view({20}); }, {"[view]", "strides", "contiguous()"});
}

TEST_CASE("item on a multi-element tensor") {
  check_error([] { zeros({2, 3}).item(); }, {"[item]", "(2, 3)", "6 elements"});
  check_error([] { zeros({0}).item(); }, {"[item]", "(0,)"});
}

TEST_CASE("a CUDA device is refused clearly where there is none") {
  if (cuda_device_count() > 0) {
    MESSAGE("a GPU is present: the no-GPU error is not exercised");
    return;
  }
  // without CUDA in the build, or without a GPU on the machine: an Error naming the device
  check_error([] { zeros({2}, TensorOptions().set_device(Device::cuda(0))); }, {"cuda:0"});
  check_error([] { zeros({2}).to(Device::cuda(0)); }, {"cuda:0"});
  CHECK(Device::cuda(1).str() == "cuda:1");
}

TEST_CASE("the CUDA attention pipeline depth accepts 1 and 2 only") {
  // a host-side setting: validated with or without CUDA in the build or a GPU on the machine
  const int before = cuda_ops::attention_pipeline_stages();
  CHECK((before == 1 || before == 2));
  check_error([] { cuda_ops::set_attention_pipeline_stages(3); },
              {"[attention]", "pipeline stages 3", "use 1"});
  check_error([] { cuda_ops::set_attention_pipeline_stages(0); }, {"[attention]", "stages 0"});
  CHECK(cuda_ops::attention_pipeline_stages() == before);
  cuda_ops::set_attention_pipeline_stages(1);
  CHECK(cuda_ops::attention_pipeline_stages() == 1);
  cuda_ops::set_attention_pipeline_stages(before);
}

TEST_CASE("the CUDA elementwise rows path takes a non-negative row length") {
  // host-side, as the pipeline depth: validated with or without CUDA or a GPU
  check_error([] { cuda_ops::set_pointwise_rows_min_inner(-1); },
              {"[elementwise]", "minimum inner length -1", "0 (off)"});
  const int64_t before = cuda_ops::set_pointwise_rows_min_inner(1024);
  CHECK(cuda_ops::set_pointwise_rows_min_inner(before) == 1024);
}

TEST_CASE("the bfloat16 SMYRF dq mode switch round-trips") {
  // host-side: with or without CUDA or a GPU
  const bool before = cuda_ops::set_smyrf_stored_ds(true);
  CHECK(cuda_ops::smyrf_stored_ds());
  CHECK(cuda_ops::set_smyrf_stored_ds(false));
  CHECK_FALSE(cuda_ops::smyrf_stored_ds());
  cuda_ops::set_smyrf_stored_ds(before);
}

TEST_CASE("cat and stack of mismatched shapes") {
  check_error(
      [] {
        cat({zeros({2, 3}), zeros({2, 4})}, 0);
      },
      {"[cat]", "(2, 4)", "(2, 3)", "dim 0"});
  check_error([] { cat({zeros({2, 3}), zeros({6})}, 0); }, {"[cat]", "(6,)", "rank"});
  check_error([] { cat({scalar_tensor(1), scalar_tensor(2)}, 0); }, {"[cat]", "()"});
  check_error([] { stack({zeros({2}), zeros({3})}); }, {"[stack]", "(3,)", "(2,)"});
  check_error([] { split(zeros({5}), std::vector<int64_t>{2, 2}, 0); }, {"[split]", "(5,)", "4"});
}

TEST_CASE("layer_norm with a mismatched weight or shape") {
  check_error(
      [] {
        layer_norm(zeros({2, 8}), {8}, ones({7}));
      },
      {"[layer_norm]", "weight", "(7,)", "8"});
  check_error(
      [] {
        layer_norm(zeros({2, 8}), {8}, ones({8}, kFloat64));
      },
      {"[layer_norm]", "float64", "float32"});
  check_error([] { layer_norm(zeros({2, 8}), {4}); }, {"[layer_norm]", "(4,)", "(2, 8)"});
}

TEST_CASE("other malformed calls") {
  check_error([] { mse_loss(zeros({2, 3}), zeros({3, 2})); }, {"[mse_loss]", "(2, 3)", "(3, 2)"});
  check_error([] { topk(zeros({2, 3}), 4); }, {"[topk]", "k = 4", "size 3"});
  check_error([] { randint(3, 3, {2}); }, {"[randint]", "[3, 3)"});
  check_error([] { Tensor().shape(); }, {"[shape]", "undefined"});
  check_error([] { zeros({2}).add_(zeros({3})); }, {"in-place", "(3,)", "(2,)"});
  check_error([] { zeros({2}, kInt64).add_(zeros({2})); }, {"in-place", "float32", "int64"});
  check_error(
      [] {
        cross_entropy(zeros({2, 3, 4}), zeros({2, 3}, kInt64));
      },
      {"[cross_entropy]", "(2, 3)", "(2, 4)"});
}

TEST_CASE("errors are smyrf::Error carrying the op") {
  try {
    matmul(zeros({8, 64}), zeros({32, 16}));
    FAIL("no exception");
  } catch (const Error& e) {
    CHECK(e.op() == "matmul");
    CHECK(std::string(e.what()).rfind("[matmul] ", 0) == 0);
  }
}
