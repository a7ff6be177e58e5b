// The GPU's packed decode layout on the host (runtime/cuda/host/packed_layout.h), checked on the CPU under
// the sanitizers: pack() then unpack() gives the matrix back for every format; asymmetric int4's scale
// entries hold each group's scale pair and zero-point pair where the kernels read them with one 8-byte load
// (the byte offsets below are written out from qgemv.h's rule, not taken from the packer); impossible
// shapes and values are refused, not packed wrongly.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <stdexcept>

#include "../cuda/packed_formats.h"
#include "quantbench/runtime/cuda/host/packed_layout.h"

namespace qb {
namespace {

using runtime::cuda::HostMatrix;
using runtime::cuda::QuantSpec;
using runtime::cuda::WeightFormat;
namespace rc = runtime::cuda;

// Random codes and parameters of the right sizes (the values need not be meaningful: the layout moves bits).
HostMatrix random_matrix(const QuantSpec& spec, int64_t n_out, int64_t n_in, std::mt19937_64& rng) {
  HostMatrix m;
  m.spec = spec;
  m.n_out = n_out;
  m.n_in = n_in;
  const size_t n = size_t(n_out * n_in);
  std::uniform_int_distribution<int> bits16(0, 0x7bff), q8(-128, 127), q4(0, 15);
  if (spec.format == WeightFormat::BF16) {
    m.bf16.resize(n);
    for (auto& v : m.bf16) v = uint16_t(bits16(rng));
    return m;
  }
  const size_t ng = size_t(spec.group ? n_out * (n_in / spec.group) : n_out);
  m.scales.resize(ng);
  for (auto& s : m.scales) s = uint16_t(bits16(rng));
  if (spec.format == WeightFormat::W8A16) {
    m.q8.resize(n);
    for (auto& v : m.q8) v = int8_t(q8(rng));
  } else {
    m.q4.resize(n);
    for (auto& v : m.q4) v = uint8_t(q4(rng));
  }
  if (spec.asym) {
    m.zeros.resize(ng);
    for (auto& z : m.zeros) z = uint8_t(q4(rng));
  }
  if (spec.mins) {
    m.mins.resize(ng);
    for (auto& v : m.mins) v = uint16_t(bits16(rng));
  }
  return m;
}

TEST(PackedLayout, UnpackInvertsPackForEveryFormat) {
  std::mt19937_64 rng(7);
  for (const QuantSpec& s : test_formats::kEveryPackedFormat) {
    SCOPED_TRACE(rc::spec_name(s));
    const int64_t n_in = s.group == 128 ? 384 : 96;  // ragged: 37 rows, a partial last chunk where it can be
    const HostMatrix m = random_matrix(s, 37, n_in, rng);
    const rc::PackedHost p = rc::pack(m);
    const rc::PackedSizes sz = rc::packed_sizes(p.shape);
    EXPECT_EQ(p.weights.size(), sz.weights);
    EXPECT_EQ(p.scales.size(), sz.scales);
    EXPECT_EQ(p.zeros.size(), sz.zeros);
    const HostMatrix r = rc::unpack(p);
    EXPECT_TRUE(r.bf16 == m.bf16 && r.q8 == m.q8 && r.q4 == m.q4 && r.scales == m.scales && r.zeros == m.zeros &&
                r.mins == m.mins);
  }
}

TEST(PackedLayout, AsymmetricInt4KeepsScaleAndZeroPairsInOneEightByteEntry) {
  std::mt19937_64 rng(11);
  for (int group : {32, 128}) {
    SCOPED_TRACE(group);
    const HostMatrix m = random_matrix({WeightFormat::W4A16, group, true}, 40, 256, rng);
    const rc::PackedHost p = rc::pack(m);
    const int64_t groups = p.shape.groups, ng = m.n_in / group;
    EXPECT_TRUE(p.zeros.empty());
    // 16 rows of a row block x 2 bytes of scale, 1 of zero point, 1 of padding, per group.
    ASSERT_EQ(p.scales.size(), size_t(p.shape.row_blocks * groups * 16 * 4));
    for (int64_t row = 0; row < p.shape.row_blocks * 16; ++row) {
      for (int64_t gi = 0; gi < groups; ++gi) {
        const int64_t rb = row / 16, g = row % 8, h = row % 16 / 8;
        const size_t entry = size_t(((rb * groups + gi) * 8 + g) * 8);
        uint16_t scale = 0;
        std::memcpy(&scale, &p.scales[entry + 2 * h], 2);
        const bool real = row < m.n_out && gi < ng;
        EXPECT_EQ(scale, real ? m.scales[size_t(row * ng + gi)] : 0) << "row " << row << " group " << gi;
        EXPECT_EQ(p.scales[entry + 4 + h], real ? m.zeros[size_t(row * ng + gi)] : 0) << "row " << row;
        EXPECT_EQ(p.scales[entry + 6 + h], 0) << "padding, row " << row;
      }
    }
  }
}

TEST(PackedLayout, ZeroPointAboveFifteenIsRefused) {
  std::mt19937_64 rng(3);
  HostMatrix m = random_matrix({WeightFormat::W4A16, 32, true}, 16, 64, rng);
  m.zeros[5] = 16;
  EXPECT_THROW(rc::pack(m), std::invalid_argument);
}

TEST(PackedLayout, ImpossibleShapesAreRefused) {
  struct Case { QuantSpec spec; int64_t n_in; const char* what; };
  const Case cases[] = {
      {{WeightFormat::W4A16, 128, false}, 4160, "w4g128 with n_in % 128 != 0"},
      {{WeightFormat::W4A16, 64, false}, 128, "w4 group 64"},
      {{WeightFormat::W4A16, 128, false, true}, 128, "w4g128 with mins (mins exist for group 32 only)"},
      {{WeightFormat::W8A16, 16, false}, 136, "w8g16 with n_in % 16 != 0"},
      {{WeightFormat::W8A16, 64, false}, 128, "w8 group 64"},
      {{WeightFormat::W8A16, 16, true}, 128, "w8g16 with zero points"},
      {{WeightFormat::W8A16, 0, false, true}, 128, "w8 per row with mins"}};
  for (const Case& c : cases) EXPECT_THROW(rc::packed_shape(c.spec, 16, c.n_in), std::invalid_argument) << c.what;
}

}  // namespace
}  // namespace qb
