// bfloat16: the scalar conversions (round to nearest even, ties, NaN/inf, overflow, every bit
// pattern round-tripping) against an independent double-precision reference, and the tensor
// casts to and from every dtype through copy_/to/fill on contiguous and strided views. Ops other
// than casts reject bfloat16 with the hint to cast to float32.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "core/bfloat16.h"
#include "core_test_util.h"

using namespace smyrf;
using namespace smyrf::test;

namespace {

float from_bits32(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}
uint32_t bits32(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

// Reference rounding of a finite float to bfloat16 computed in double: the two neighbouring
// bfloat16 values (truncation and the next one up in magnitude), the nearer one, the even one on
// a tie. Independent of the bit trick under test.
uint16_t reference_bits(float f) {
  const uint32_t u = bits32(f);
  const uint16_t lo = static_cast<uint16_t>(u >> 16);
  const uint16_t hi = static_cast<uint16_t>(lo + 1);  // next magnitude (0x7f80 = inf is fine)
  const double x = std::fabs(static_cast<double>(f));
  const double a = std::fabs(static_cast<double>(bf16_bits_to_float(lo)));
  double b = std::fabs(static_cast<double>(bf16_bits_to_float(hi)));
  if (std::isinf(b)) b = std::ldexp(1.0, 128);  // the value the rounding "overflows" to
  const double da = x - a, db = b - x;
  if (da < db) return lo;
  if (db < da) return hi;
  return (lo & 1) ? hi : lo;
}

}  // namespace

TEST_CASE("bfloat16: dtype size, name, class and promotion") {
  CHECK(dtype_size(kBFloat16) == 2);
  CHECK(std::string(dtype_name(kBFloat16)) == "bfloat16");
  CHECK(is_floating(kBFloat16));
  CHECK_FALSE(is_integral(kBFloat16));
  CHECK(promote_types(kBFloat16, kFloat32) == kFloat32);
  CHECK(promote_types(kInt64, kBFloat16) == kBFloat16);
  CHECK(promote_types(kBFloat16, kFloat64) == kFloat64);
  CHECK(DTypeOf<bfloat16>::value == kBFloat16);
}

TEST_CASE("bfloat16: round to nearest even, ties, NaN, infinities and overflow") {
  CHECK(float_to_bf16_bits(1.0f) == 0x3f80);
  CHECK(float_to_bf16_bits(-2.0f) == 0xc000);
  CHECK(float_to_bf16_bits(0.0f) == 0x0000);
  CHECK(float_to_bf16_bits(-0.0f) == 0x8000);
  // ties: exactly half way between two bfloat16 values goes to the even mantissa
  CHECK(float_to_bf16_bits(from_bits32(0x3f808000u)) == 0x3f80);  // 1 + 2^-8: down to even
  CHECK(float_to_bf16_bits(from_bits32(0x3f818000u)) == 0x3f82);  // up to even
  CHECK(float_to_bf16_bits(from_bits32(0xbf818000u)) == 0xbf82);  // negative tie, up in magnitude
  CHECK(float_to_bf16_bits(from_bits32(0x3f808001u)) == 0x3f81);  // just above a tie
  CHECK(float_to_bf16_bits(from_bits32(0x3f807fffu)) == 0x3f80);  // just below
  CHECK(float_to_bf16_bits(from_bits32(0x3f7fffffu)) == 0x3f80);  // carries into the exponent
  // infinities, overflow to infinity, the largest finite bfloat16 survives
  const float inf = std::numeric_limits<float>::infinity();
  CHECK(float_to_bf16_bits(inf) == 0x7f80);
  CHECK(float_to_bf16_bits(-inf) == 0xff80);
  CHECK(float_to_bf16_bits(std::numeric_limits<float>::max()) == 0x7f80);
  CHECK(float_to_bf16_bits(from_bits32(0x7f7f0000u)) == 0x7f7f);
  CHECK(float_to_bf16_bits(from_bits32(0x7f7f7fffu)) == 0x7f7f);
  CHECK(float_to_bf16_bits(from_bits32(0x7f7f8000u)) == 0x7f80);  // tie at the top: to inf (even)
  // NaN stays NaN (also a NaN whose payload lives only in the low 16 bits), sign kept
  const float qnan = std::numeric_limits<float>::quiet_NaN();
  CHECK(std::isnan(bf16_bits_to_float(float_to_bf16_bits(qnan))));
  CHECK(std::isnan(bf16_bits_to_float(float_to_bf16_bits(from_bits32(0x7f800001u)))));
  CHECK(std::isnan(bf16_bits_to_float(float_to_bf16_bits(from_bits32(0xff800001u)))));
  CHECK((float_to_bf16_bits(from_bits32(0xff800001u)) & 0x8000) == 0x8000);
  // subnormals round like everything else
  CHECK(float_to_bf16_bits(from_bits32(0x00008000u)) == 0x0000);  // tie to even (zero)
  CHECK(float_to_bf16_bits(from_bits32(0x00018000u)) == 0x0002);
}

TEST_CASE("bfloat16: every bit pattern round-trips; random floats match the reference rounding") {
  for (uint32_t b = 0; b < 0x10000u; ++b) {
    const float f = bf16_bits_to_float(static_cast<uint16_t>(b));
    if (std::isnan(f)) {
      CHECK(std::isnan(bf16_bits_to_float(float_to_bf16_bits(f))));
      continue;
    }
    if (float_to_bf16_bits(f) != b) FAIL_CHECK("pattern " << b << " does not round-trip");
  }
  std::mt19937 gen(5);
  int bad = 0;
  for (int i = 0; i < 200000; ++i) {
    uint32_t u = gen();
    if (i % 4 == 0) u = (u & 0xffff0000u) | 0x8000u;  // a quarter exact ties
    const float f = from_bits32(u);
    if (std::isnan(f) || std::isinf(f)) continue;
    if (float_to_bf16_bits(f) != reference_bits(f) && bad++ < 5)
      FAIL_CHECK("bits " << u << ": got " << float_to_bf16_bits(f) << ", reference "
                         << reference_bits(f));
  }
  CHECK(bad == 0);
}

TEST_CASE("bfloat16: tensor casts from and to every dtype, contiguous and strided") {
  const std::vector<float> vals = {0.0f,      -0.0f,    1.0f,  1.00390625f /* tie */,
                                   -3.14159f, 65504.0f, 1e-3f, 3.0e38f,
                                   -7.0f,     100.5f,   0.3f,  2.5f};
  const Tensor f32 = from_vector(vals, {3, 4});
  const Tensor b = f32.to(kBFloat16);
  CHECK(b.dtype() == kBFloat16);
  CHECK(b.storage()->nbytes() >= 24);
  const bfloat16* p = b.data_ptr<bfloat16>();
  for (size_t i = 0; i < vals.size(); ++i) CHECK(p[i].bits == reference_bits(vals[i]));
  const std::vector<float> back = b.to(kFloat32).to_vector<float>();
  for (size_t i = 0; i < vals.size(); ++i)
    CHECK(back[i] == bf16_bits_to_float(reference_bits(vals[i])));
  // float64, ints and bool in both directions (small integers are exact in bfloat16)
  const Tensor ints = from_vector(std::vector<int64_t>{-5, 0, 3, 256, 257}, {5});
  CHECK(ints.to(kBFloat16).to(kInt64).to_vector<int64_t>() ==
        std::vector<int64_t>{-5, 0, 3, 256, 256});  // 257 ties to the even 256
  CHECK(ints.to(kInt32).to(kBFloat16).to(kFloat64).to_vector<double>() ==
        std::vector<double>{-5, 0, 3, 256, 256});
  CHECK(ints.to(kBFloat16).to(kBool).to_vector<bool>() ==
        std::vector<bool>{true, false, true, true, true});
  CHECK(from_vector(std::vector<double>{0.1, -1e300}, {2})
            .to(kBFloat16)
            .to(kFloat64)
            .to_vector<double>() ==
        std::vector<double>{static_cast<double>(bf16_bits_to_float(reference_bits(0.1f))),
                            -std::numeric_limits<double>::infinity()});
  // strided: a transposed view converts element by element, into a transposed destination too
  const Tensor t = f32.transpose(0, 1);  // (4, 3), non-contiguous
  const Tensor tb = t.to(kBFloat16);
  CHECK(tb.is_contiguous());
  const std::vector<float> tv = tb.to(kFloat32).to_vector<float>();
  for (int64_t r = 0; r < 4; ++r)
    for (int64_t c = 0; c < 3; ++c)
      CHECK(tv[r * 3 + c] == bf16_bits_to_float(reference_bits(vals[c * 4 + r])));
  Tensor dst = zeros({4, 3}, kBFloat16).transpose(0, 1);  // (3, 4) view of a (4, 3) buffer
  dst.copy_(f32);
  const std::vector<float> dv = dst.contiguous().to(kFloat32).to_vector<float>();
  for (size_t i = 0; i < vals.size(); ++i)
    CHECK(dv[i] == bf16_bits_to_float(reference_bits(vals[i])));
  // fill and NaN/inf through tensors
  const Tensor full_b = full({5}, 1.00390625, kBFloat16);
  for (float x : full_b.to(kFloat32).to_vector<float>()) CHECK(x == 1.0f);
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> special = from_vector(std::vector<float>{inf, -inf, std::nanf("")}, {3})
                                         .to(kBFloat16)
                                         .to(kFloat32)
                                         .to_vector<float>();
  CHECK(special[0] == inf);
  CHECK(special[1] == -inf);
  CHECK(std::isnan(special[2]));
}

TEST_CASE("bfloat16: ops other than casts say to cast to float32") {
  const Tensor b = ones({2, 3}, kBFloat16);
  check_error([&] { (void)(b + b); }, {"bfloat16", "cast to float32"});
  check_error([&] { (void)sum(b); }, {"bfloat16", "cast to float32"});
  // the cast itself is the remedy
  CHECK(sum(b.to(kFloat32)).item<float>() == 6.0f);
}
