// Packed formats: bit-stream round trips, each format's analytical error bound on fresh random data,
// ragged last groups, the fused mat-vec against dequantize + double-precision mat-vec, FP8's fast
// encoder against core's exhaustive one, and NF4's table against normal quantiles.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "quantbench/core/dtype.h"
#include "quantbench/core/error.h"
#include "quantbench/quant/qformat/bit_pack.h"
#include "quantbench/quant/qformat/fp8_e4m3.h"
#include "quantbench/quant/qformat/nf4.h"
#include "quantbench/quant/qformat/quantized_tensor.h"

namespace qb::quant {
namespace {

std::vector<float> random_matrix(int64_t n, uint32_t seed, float sigma = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, sigma);
  std::vector<float> w(static_cast<size_t>(n));
  for (auto& v : w) v = d(rng);
  return w;
}

// Every supported layout: 4 int widths x {channel, g32, g64, g128} x {sym, asym} x {f16, bf16},
// NF4 x {channel, g32..g128} x {f16, bf16}, FP8 x {tensor, channel}.
std::vector<QuantLayout> all_layouts() {
  std::vector<QuantLayout> out;
  const std::pair<Granularity, int64_t> grans[] = {
      {Granularity::Channel, 0}, {Granularity::Group, 32}, {Granularity::Group, 64}, {Granularity::Group, 128}};
  for (QFormat f : {QFormat::Int2, QFormat::Int3, QFormat::Int4, QFormat::Int8, QFormat::NF4})
    for (auto [g, gs] : grans)
      for (bool asym : {false, true})
        for (ScaleType st : {ScaleType::F16, ScaleType::BF16}) {
          if (asym && f == QFormat::NF4) continue;
          out.push_back(QuantLayout{f, g, gs, asym, st});
        }
  out.push_back(QuantLayout{QFormat::FP8E4M3, Granularity::Tensor, 0, false, ScaleType::F32});
  out.push_back(QuantLayout{QFormat::FP8E4M3, Granularity::Channel, 0, false, ScaleType::F32});
  return out;
}

TEST(BitPack, RoundTripsEveryWidthAtAnyOffset) {
  std::mt19937 rng(7);
  for (int bits : {2, 3, 4, 8}) {
    const int64_t n = 1000;
    std::vector<uint8_t> codes(n), back(n);
    for (auto& c : codes) c = uint8_t(rng() & ((1u << bits) - 1));
    std::vector<uint8_t> buf((n * bits + 7) / 8, 0);
    pack_codes(bits, codes.data(), 0, n, buf.data());
    unpack_codes(bits, buf.data(), 0, n, back.data());
    ASSERT_EQ(codes, back) << bits;
    // Rewriting a span at an odd offset leaves its neighbours alone.
    std::vector<uint8_t> patch(37);
    for (auto& c : patch) c = uint8_t(rng() & ((1u << bits) - 1));
    pack_codes(bits, patch.data(), 101, 37, buf.data());
    unpack_codes(bits, buf.data(), 0, n, back.data());
    for (int64_t i = 0; i < n; ++i)
      ASSERT_EQ(back[i], (i >= 101 && i < 138) ? patch[i - 101] : codes[i]) << bits << " " << i;
  }
}

TEST(BitPack, ThreeBitLayoutIsLittleEndian24BitWords) {
  // Codes 0..7 in one unit: word = sum c_i << 3i = 0xFAC688, written low byte first.
  const uint8_t codes[8] = {0, 1, 2, 3, 4, 5, 6, 7};
  uint8_t buf[3] = {0, 0, 0};
  pack_codes(3, codes, 0, 8, buf);
  EXPECT_EQ(buf[0], 0x88);
  EXPECT_EQ(buf[1], 0xC6);
  EXPECT_EQ(buf[2], 0xFA);
  const uint8_t nib[2] = {0x3, 0xA};
  uint8_t b4 = 0;
  pack_codes(4, nib, 0, 2, &b4);
  EXPECT_EQ(b4, 0xA3);  // first code in the low nibble
}

TEST(QuantizedTensor, PackedCodesRoundTripForEveryLayout) {
  uint32_t seed = 100;
  for (const auto& l : all_layouts()) {
    for (int64_t cols : {172, 256}) {
      auto q = QuantizedTensor::allocate(l, 3, cols);
      std::mt19937 rng(seed++);
      const unsigned mask = (1u << format_traits(l.format).bits) - 1;
      std::vector<uint8_t> codes(size_t(3 * cols));
      for (auto& c : codes) c = uint8_t(rng() & mask);
      for (int64_t r = 0; r < 3; ++r)
        for (int64_t c = 0; c < cols; ++c) q.set_code(r, c, codes[size_t(r * cols + c)]);
      for (int64_t r = 0; r < 3; ++r)
        for (int64_t c = 0; c < cols; ++c) ASSERT_EQ(q.code(r, c), codes[size_t(r * cols + c)]) << layout_name(l);
      EXPECT_EQ(q.storage_bytes(), storage_bytes(l, 3, cols)) << layout_name(l);
    }
  }
}

// Analytical bounds, per element, against the stored (decoded) params of its group.
void check_bound(const QuantLayout& l, const QuantizedTensor& q, const std::vector<float>& w) {
  std::vector<float> deq(w.size());
  dequantize(q, deq.data());
  const auto& cb = nf4_codebook();
  for (int64_t r = 0; r < q.rows; ++r)
    for (int64_t c = 0; c < q.cols; ++c) {
      const GroupParams p = q.params(r, c / q.group_cols());
      const float x = w[size_t(r * q.cols + c)], y = deq[size_t(r * q.cols + c)];
      double bound = 0;
      if (is_int_format(l.format)) {
        bound = p.scale / 2.0;  // RTN on a grid covering the group
      } else if (l.format == QFormat::NF4) {
        const double t = double(x) / p.scale;  // in [-1, 1]; half the gap of the interval holding it
        int i = 0;
        while (i < 14 && t > cb[size_t(i + 1)]) ++i;
        bound = p.scale * (cb[size_t(i + 1)] - cb[size_t(i)]) / 2.0;
      } else {
        const double t = std::fabs(double(x) / p.scale);  // e4m3: 3 mantissa bits, subnormal step 2^-9
        bound = p.scale * std::max(t * 0.0625, std::ldexp(1.0, -10));
      }
      ASSERT_LE(std::fabs(double(x) - y), bound * (1 + 1e-6) + 1e-7 * std::fabs(x))
          << layout_name(l) << " row " << r << " col " << c << " w " << x << " deq " << y;
    }
}

TEST(QuantizedTensor, RtnErrorWithinAnalyticalBoundForEveryLayout) {
  uint32_t seed = 1000;
  for (const auto& l : all_layouts())
    for (int64_t cols : {172, 256}) {
      // A few outlier-heavy rows, and an all-zero row, to exercise the range logic.
      auto w = random_matrix(6 * cols, seed++);
      for (int64_t c = 0; c < cols; ++c) w[size_t(4 * cols + c)] = 0.0f;
      w[7] = 40.0f;
      w[size_t(cols + 3)] = -25.0f;
      const auto q = quantize_rtn(w.data(), 6, cols, l);
      check_bound(l, q, w);
    }
}

TEST(QuantizedTensor, AllPositiveGroupUsesAsymmetricRangeWell) {
  // With zero points, a group in [1, 2] uses its range [0, 2] (0 included by construction), so the step
  // is 2/15 for int4 rather than 4/15 symmetric.
  std::vector<float> w(32);
  for (int i = 0; i < 32; ++i) w[size_t(i)] = 1.0f + float(i) / 31.0f;
  const QuantLayout asym{QFormat::Int4, Granularity::Group, 32, true, ScaleType::F16};
  const QuantLayout sym{QFormat::Int4, Granularity::Group, 32, false, ScaleType::F16};
  EXPECT_NEAR(quantize_rtn(w.data(), 1, 32, asym).params(0, 0).scale, 2.0 / 15, 1e-3);
  EXPECT_NEAR(quantize_rtn(w.data(), 1, 32, sym).params(0, 0).scale, 4.0 / 15, 1e-3);
}

TEST(QuantizedTensor, RaggedLastGroupIsHandledAndRecorded) {
  const QuantLayout l{QFormat::Int4, Granularity::Group, 64, true, ScaleType::F16};
  auto w = random_matrix(4 * 172, 5);
  // Make the ragged tail's range very different from its neighbours: its own params must be used.
  for (int r = 0; r < 4; ++r)
    for (int c = 128; c < 172; ++c) w[size_t(r * 172 + c)] *= 0.01f;
  const auto q = quantize_rtn(w.data(), 4, 172, l);
  EXPECT_TRUE(q.ragged_last_group);
  EXPECT_EQ(q.last_group_cols, 44);
  EXPECT_EQ(q.groups_per_row(), 3);
  check_bound(l, q, w);
  EXPECT_LT(q.params(0, 2).scale, q.params(0, 1).scale * 0.1f);
  const auto full = QuantizedTensor::allocate(l, 4, 256);
  EXPECT_FALSE(full.ragged_last_group);
  EXPECT_EQ(full.last_group_cols, 64);
}

TEST(QuantizedTensor, FusedMatvecMatchesDequantizeThenDoubleMatvec) {
  uint32_t seed = 3000;
  for (const auto& l : all_layouts())
    for (int64_t cols : {172, 256}) {
      const int64_t rows = 9;
      const auto w = random_matrix(rows * cols, seed++);
      const auto x = random_matrix(cols, seed++);
      const auto q = quantize_rtn(w.data(), rows, cols, l);
      std::vector<float> deq(static_cast<size_t>(rows * cols)), y(static_cast<size_t>(rows));
      dequantize(q, deq.data());
      matvec(q, x.data(), y.data());
      for (int64_t r = 0; r < rows; ++r) {
        double ref = 0, mag = 0;
        for (int64_t c = 0; c < cols; ++c) {
          ref += double(deq[size_t(r * cols + c)]) * x[size_t(c)];
          mag += std::fabs(double(deq[size_t(r * cols + c)]) * x[size_t(c)]);
        }
        // float sums within a group: error <= group length * eps * sum|terms| (loose constant).
        ASSERT_NEAR(y[size_t(r)], ref, 4 * 256 * 6e-8 * mag + 1e-12) << layout_name(l) << " row " << r;
      }
    }
}

TEST(Fp8, FastEncoderMatchesCoreReference) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> mag(-12.0f, 9.5f);
  for (int i = 0; i < 20000; ++i) {
    const float x = std::ldexp(1.0f, 0) * std::exp2(mag(rng)) * ((rng() & 1) ? -1.0f : 1.0f);
    ASSERT_EQ(fp8_encode_value(x), f32_to_f8e4m3(x)) << x;
  }
  // Exact midpoints between neighbouring codes are the ties (round to even code).
  for (int c = 0; c < 0x7e; ++c) {
    const float mid = (f8e4m3_to_f32(uint8_t(c)) + f8e4m3_to_f32(uint8_t(c + 1))) / 2;
    ASSERT_EQ(fp8_encode_value(mid), f32_to_f8e4m3(mid)) << mid;
    ASSERT_EQ(fp8_encode_value(-mid), f32_to_f8e4m3(-mid)) << mid;
  }
  EXPECT_EQ(fp8_encode_value(1000.0f), 0x7e);
  EXPECT_EQ(fp8_encode_value(-1000.0f), 0xfe);
}

// Inverse standard normal CDF by bisection on erfc (double precision; independent of the table).
double norm_ppf(double p) {
  double lo = -10, hi = 10;
  for (int i = 0; i < 200; ++i) {
    const double mid = (lo + hi) / 2;
    (0.5 * std::erfc(-mid / std::sqrt(2.0)) < p ? lo : hi) = mid;
  }
  return (lo + hi) / 2;
}

TEST(Nf4, CodebookIsQloraNormalQuantiles) {
  // QLoRA / bitsandbytes create_normal_map(offset=0.9677083): 8 positive quantiles from
  // linspace(offset, 0.5, 9)[:-1], 7 negative ones from linspace(offset, 0.5, 8)[:-1], a zero, and
  // everything divided by the largest.
  const double off = 0.9677083;
  std::vector<double> v;
  for (int i = 0; i < 8; ++i) v.push_back(norm_ppf(off + (0.5 - off) * i / 8));
  for (int i = 0; i < 7; ++i) v.push_back(-norm_ppf(off + (0.5 - off) * i / 7));
  v.push_back(0.0);
  std::sort(v.begin(), v.end());
  const double mx = v.back();
  for (size_t i = 0; i < 16; ++i) EXPECT_NEAR(nf4_codebook()[i], v[i] / mx, 2e-6) << i;
}

TEST(QuantizedTensor, RejectsBadLayoutsAndInputs) {
  EXPECT_THROW(QuantizedTensor::allocate({QFormat::Int4, Granularity::Group, 48, false, ScaleType::F16}, 2, 64), Error);
  EXPECT_THROW(QuantizedTensor::allocate({QFormat::NF4, Granularity::Channel, 0, true, ScaleType::F16}, 2, 64), Error);
  EXPECT_THROW(QuantizedTensor::allocate({QFormat::FP8E4M3, Granularity::Group, 32, false, ScaleType::F32}, 2, 64), Error);
  EXPECT_THROW(QuantizedTensor::allocate({QFormat::Int4, Granularity::Tensor, 0, false, ScaleType::F16}, 2, 64), Error);
  EXPECT_THROW(QuantizedTensor::allocate({QFormat::Int4, Granularity::Channel, 0, false, ScaleType::F32}, 2, 64), Error);
  EXPECT_THROW(QuantizedTensor::allocate({QFormat::Int4, Granularity::Channel, 0, false, ScaleType::F16}, 0, 64), Error);
  std::vector<float> w(64, 1.0f);
  w[5] = std::nanf("");
  EXPECT_THROW(quantize_rtn(w.data(), 1, 64, {QFormat::Int4, Granularity::Channel, 0, false, ScaleType::F16}), Error);
}

TEST(QuantizedTensor, InconsistentBuffersAreRejectedBeforeReading) {
  const QuantLayout l{QFormat::Int4, Granularity::Group, 32, true, ScaleType::F16};
  const auto w = random_matrix(2 * 64, 9);
  const auto good = quantize_rtn(w.data(), 2, 64, l);
  std::vector<float> out(128), y(2);
  auto bad = good;
  bad.codes.pop_back();
  EXPECT_THROW(dequantize(bad, out.data()), Error);
  EXPECT_THROW(matvec(bad, w.data(), y.data()), Error);
  bad = good;
  bad.scales.resize(3);
  EXPECT_THROW(matvec(bad, w.data(), y.data()), Error);
  bad = good;
  bad.zeros[1] = 16;
  EXPECT_THROW(dequantize(bad, out.data()), Error);
  bad = good;
  bad.layout.group_size = 48;
  EXPECT_THROW(dequantize(bad, out.data()), Error);
  EXPECT_NO_THROW(dequantize(good, out.data()));
}

TEST(FormatTraits, BitsPerWeightCountsScalesZerosAndPadding) {
  const QuantLayout g128{QFormat::Int4, Granularity::Group, 128, false, ScaleType::F16};
  EXPECT_DOUBLE_EQ(bits_per_weight(g128, 4096, 4096), 4.0 + 16.0 / 128);
  const QuantLayout g128a{QFormat::Int4, Granularity::Group, 128, true, ScaleType::F16};
  EXPECT_DOUBLE_EQ(bits_per_weight(g128a, 4096, 4096), 4.0 + 24.0 / 128);
  EXPECT_EQ(bytes_per_group(QuantLayout{QFormat::Int3, Granularity::Group, 32, false, ScaleType::BF16}), 12u + 2u);
  // 172 int3 codes need 22 units of 3 bytes (66 bytes, 4 padding codes); 3 g64 scales of 2 bytes.
  EXPECT_EQ(storage_bytes(QuantLayout{QFormat::Int3, Granularity::Group, 64, false, ScaleType::F16}, 1, 172), 66u + 6u);
  EXPECT_EQ(storage_bytes(QuantLayout{QFormat::FP8E4M3, Granularity::Tensor, 0, false, ScaleType::F32}, 3, 5), 15u + 4u);
}

}  // namespace
}  // namespace qb::quant
