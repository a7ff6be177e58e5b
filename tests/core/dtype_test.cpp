#include "quantbench/core/dtype.h"

#include <gtest/gtest.h>

#include <cmath>

namespace qb {
namespace {

// Every f16 bit pattern converts to f32 and back unchanged (NaNs stay NaN): checks both directions
// over the whole domain.
TEST(DType, F16RoundTripsAllPatterns) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = f16_to_f32(uint16_t(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(f))));
      continue;
    }
    ASSERT_EQ(f32_to_f16(f), h) << "pattern " << h;
  }
}

// Rounding to nearest even, checked against a double-precision computation of the nearest f16.
TEST(DType, F16RoundsToNearestEven) {
  EXPECT_EQ(f16_to_f32(f32_to_f16(1.0f + 1.0f / 2048)), 1.0f);               // tie -> even (down)
  EXPECT_EQ(f16_to_f32(f32_to_f16(1.0f + 3.0f / 2048)), 1.0f + 2.0f / 1024);  // tie -> even (up)
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00);                                   // overflow to inf
  EXPECT_EQ(f32_to_f16(65519.0f), 0x7bff);
  EXPECT_EQ(f16_to_f32(f32_to_f16(std::ldexp(1.0f, -24))), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -25)), 0);                                 // tie -> 0
  EXPECT_EQ(f32_to_f16(std::ldexp(1.5f, -25)), 1);
  for (uint32_t i = 0; i < 200000; ++i) {
    const float f = f32_from_bits((0x33000000u + i * 20011u) & 0x7fffffffu);  // positive: subnormals to large normals
    if (!(std::fabs(f) < 65504.0f)) continue;
    const float r = f16_to_f32(f32_to_f16(f));
    // No representable f16 is strictly nearer than r.
    const uint16_t h = f32_to_f16(f);
    const float up = f16_to_f32(uint16_t(h + 1)), dn = h > 0 ? f16_to_f32(uint16_t(h - 1)) : 0.0f;
    ASSERT_LE(std::fabs(double(r) - f), std::fabs(double(up) - f)) << f;
    ASSERT_LE(std::fabs(double(r) - f), std::fabs(double(dn) - f)) << f;
  }
}

TEST(DType, Bf16) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(bf16_to_f32(0x3f80), 1.0f);
  EXPECT_EQ(f32_to_bf16(f32_from_bits(0x3f808000)), 0x3f80);  // tie -> even
  EXPECT_EQ(f32_to_bf16(f32_from_bits(0x3f818000)), 0x3f82);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(std::nanf("")))));
}

TEST(DType, F8E4M3) {
  EXPECT_EQ(f8e4m3_to_f32(0x7e), 448.0f);
  EXPECT_EQ(f8e4m3_to_f32(0x01), std::ldexp(1.0f, -9));
  EXPECT_TRUE(std::isnan(f8e4m3_to_f32(0x7f)));
  EXPECT_EQ(f32_to_f8e4m3(1000.0f), 0x7e);  // saturates
  for (int c = 0; c < 256; ++c) {
    if ((c & 0x7f) == 0x7f) continue;
    const float f = f8e4m3_to_f32(uint8_t(c));
    if (f == 0.0f) continue;
    EXPECT_EQ(f32_to_f8e4m3(f), c);
  }
}

}  // namespace
}  // namespace qb
