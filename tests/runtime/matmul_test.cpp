// Fast CPU matmul against the Reference path, for every fast type on every ISA this machine runs.
// Tolerances (per output y[t][o], with W the exactly dequantized weights):
//  * float weights: |fast - ref| <= 1e-5 * sum_i |W_i x_i| + 1e-30 (f32 accumulation vs double).
//  * quantized weights: the activations are quantized to 8-bit blocks: x_i = d_b q_i + e_i with
//    |e_i| <= d_b / 2, d_b = max_{i in b} |x_i| / 127. So
//      |fast - ref| <= sum_b (d_b / 2) sum_{i in b} |W_i|   (activation quantization)
//                      + 1e-5 * sum_i (|W_i| + M_i) |x_i|    (f32 rounding; M_i = max |W| of i's block,
//                                                             which bounds the offset/min terms)
//    and, much tighter, fast must equal the exact product of W with the *quantized* activations
//    (computed here in double from quantize_activations_q8's output) to within the f32 rounding term.
#include "quantbench/runtime/cpu/matmul.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "quantbench/core/dtype.h"
#include "quantbench/core/error.h"
#include "quantbench/quant/qformat/ggml_blocks.h"
#include "quantbench/runtime/cpu/matmul_kernels.h"

namespace qb::runtime::cpu {
namespace {

using formats::GgmlType;

const GgmlType kFastTypes[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1,
                               GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K};

// Offsets of the f16 super-scales in each block type, overwritten with sane values so that random
// block bytes describe finite weights of ordinary size.
std::vector<int> scale_offsets(GgmlType t) {
  switch (t) {
    case GgmlType::Q8_0: case GgmlType::Q4_0: case GgmlType::Q5_0: return {0};
    case GgmlType::Q4_1: case GgmlType::Q5_1: case GgmlType::Q4_K: case GgmlType::Q5_K: return {0, 2};
    case GgmlType::Q6_K: return {208};
    case GgmlType::Q3_K: return {108};
    default: return {};
  }
}

struct Matrix {
  WeightMatrix w;
  std::vector<uint8_t> bytes;
  std::vector<float> deq;  // n_out x n_in, exact dequantization
};

Matrix random_matrix(GgmlType type, int64_t n_in, int64_t n_out, size_t pad, std::mt19937& rng) {
  Matrix m;
  const size_t row = formats::ggml_row_bytes(type, n_in) + pad;
  m.bytes.resize(row * size_t(n_out));
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> u(-1, 1);
  for (auto& b : m.bytes) b = uint8_t(byte(rng));
  const auto& tr = formats::ggml_traits(type);
  for (int64_t o = 0; o < n_out; ++o) {
    uint8_t* r = m.bytes.data() + size_t(o) * row;
    if (type == GgmlType::F32 || type == GgmlType::F16) {
      for (int64_t i = 0; i < n_in; ++i) {
        const float v = u(rng);
        if (type == GgmlType::F32) std::memcpy(r + 4 * i, &v, 4);
        else { const uint16_t h = f32_to_f16(v); std::memcpy(r + 2 * i, &h, 2); }
      }
      continue;
    }
    for (int64_t b = 0; b < n_in / tr.block_size; ++b)
      for (int off : scale_offsets(type)) {
        const uint16_t h = f32_to_f16(u(rng) * 0.05f);
        std::memcpy(r + size_t(b) * tr.block_bytes + off, &h, 2);
      }
  }
  m.w = WeightMatrix{type, n_in, n_out, m.bytes.data(), row};
  m.deq.resize(size_t(n_in * n_out));
  for (int64_t o = 0; o < n_out; ++o)
    qformat::dequantize_row(type, m.bytes.data() + size_t(o) * row, m.deq.data() + o * n_in, n_in);
  return m;
}

std::vector<float> random_activations(int64_t n_in, int64_t n_tokens, std::mt19937& rng) {
  std::normal_distribution<float> g;
  std::vector<float> x(size_t(n_in * n_tokens));
  for (int64_t t = 0; t < n_tokens; ++t) {
    const float scale = std::ldexp(1.0f, int(t % 5) - 2);
    for (int64_t i = 0; i < n_in; ++i) x[size_t(t * n_in + i)] = g(rng) * scale;
    x[size_t(t * n_in + (t * 7) % n_in)] *= 20;                        // an outlier
    if (n_in >= 64 && t % 2 == 0) std::fill_n(x.begin() + t * n_in + 32, 32, 0.0f);  // an all-zero block
  }
  return x;
}

bool is_float(GgmlType t) { return t == GgmlType::F32 || t == GgmlType::F16; }

void check_against_reference(GgmlType type, int64_t n_in, int64_t n_out, int64_t n_tokens, size_t pad, int threads) {
  std::mt19937 rng(uint32_t(n_in * 131 + n_out * 7 + n_tokens + int(type)));
  const Matrix m = random_matrix(type, n_in, n_out, pad, rng);
  const std::vector<float> x = random_activations(n_in, n_tokens, rng);
  ThreadPool pool(threads);
  std::vector<float> ref(size_t(n_out * n_tokens));
  matmul(m.w, x.data(), n_tokens, ref.data(), pool, MatmulPath::Reference);

  // The activations as the fast path sees them (quantized types only).
  std::vector<float> xq = x;
  if (!is_float(type)) {
    std::vector<ActQ8Block> a(size_t(n_in / 32));
    for (int64_t t = 0; t < n_tokens; ++t) {
      quantize_activations_q8(x.data() + t * n_in, n_in, a.data());
      for (int64_t i = 0; i < n_in; ++i) xq[size_t(t * n_in + i)] = a[size_t(i / 32)].d * float(a[size_t(i / 32)].qs[i % 32]);
    }
  }
  const int64_t bs = is_float(type) ? 1 : formats::ggml_traits(type).block_size;

  for (CpuIsa isa : supported_cpu_isas()) {
    SCOPED_TRACE(std::string(cpu_isa_name(isa)));
    std::vector<float> y(ref.size(), NAN);
    matmul_with_isa(m.w, x.data(), n_tokens, y.data(), pool, isa);
    for (int64_t t = 0; t < n_tokens; ++t) {
      for (int64_t o = 0; o < n_out; ++o) {
        const float* wr = m.deq.data() + o * n_in;
        const float* xt = x.data() + t * n_in;
        const float* xqt = xq.data() + t * n_in;
        double act_err = 0, mag = 0, exact_q = 0;
        for (int64_t b0 = 0; b0 < n_in; b0 += (is_float(type) ? n_in : 32)) {
          const int64_t b1 = is_float(type) ? n_in : b0 + 32;
          double amax = 0, wsum = 0;
          for (int64_t i = b0; i < b1; ++i) amax = std::max(amax, std::fabs(double(xt[i]))), wsum += std::fabs(wr[i]);
          if (!is_float(type)) act_err += amax / 127 / 2 * wsum;
        }
        for (int64_t i0 = 0; i0 < n_in; i0 += bs) {
          double bmax = 0;
          for (int64_t i = i0; i < i0 + bs; ++i) bmax = std::max(bmax, std::fabs(double(wr[i])));
          for (int64_t i = i0; i < i0 + bs; ++i) {
            mag += (std::fabs(double(wr[i])) + (is_float(type) ? 0 : bmax)) * std::fabs(double(xt[i]));
            exact_q += double(wr[i]) * xqt[i];
          }
        }
        const double rounding = 1e-5 * mag + 1e-30;
        const double got = y[size_t(t * n_out + o)], want = ref[size_t(t * n_out + o)];
        ASSERT_LE(std::fabs(got - want), act_err * 1.0001 + rounding)
            << formats::ggml_type_name(type) << " t=" << t << " o=" << o << " got " << got << " want " << want;
        if (!is_float(type))
          ASSERT_LE(std::fabs(got - exact_q), rounding)
              << formats::ggml_type_name(type) << " t=" << t << " o=" << o << " vs exact-with-quantized-x " << exact_q;
      }
    }
  }
}

struct Shape { int64_t n_in, n_out, n_tokens; size_t pad; int threads; };

TEST(Matmul, FastMatchesReferenceEveryTypeAndIsa) {
  // Ragged n_out (not a multiple of anything), token counts around the 4-token tile, padded strides.
  const Shape shapes[] = {{256, 37, 1, 0, 2}, {512, 19, 5, 0, 3}, {768, 64, 3, 8, 2},
                          {256, 1, 9, 0, 1},  {1024, 13, 4, 0, 2}, {256, 50, 2, 2, 2}};
  for (GgmlType type : kFastTypes) {
    for (const auto& s : shapes) {
      SCOPED_TRACE(fmt::format("{} [{} x {}] x {} tokens", formats::ggml_type_name(type), s.n_out, s.n_in, s.n_tokens));
      check_against_reference(type, s.n_in, s.n_out, s.n_tokens, s.pad, s.threads);
    }
  }
}

// DequantGemm (f32 weights and activations through gemm_f32) against the double reference: within the
// f32 summation bound (256 products per partial sum) of sum |w x|, for every type with a dequantizer,
// at a batch large enough to take the GEMM (ragged n_out, padded rows) and one small enough to fall
// back to the fused kernels (checked equal to Fast there).
TEST(Matmul, DequantGemmMatchesReference) {
  for (GgmlType type : kFastTypes) {
    SCOPED_TRACE(std::string(formats::ggml_type_name(type)));
    std::mt19937 rng(uint32_t(int(type)) + 77);
    const int64_t n_in = 512, n_out = 45;
    const Matrix m = random_matrix(type, n_in, n_out, 4, rng);
    ThreadPool pool(2);
    for (int64_t n_tokens : {int64_t(40), kDequantGemmMinTokens - 1}) {
      const std::vector<float> x = random_activations(n_in, n_tokens, rng);
      std::vector<float> ref(size_t(n_out * n_tokens)), y(ref.size(), NAN), fast(ref.size(), NAN);
      matmul(m.w, x.data(), n_tokens, ref.data(), pool, MatmulPath::Reference);
      matmul(m.w, x.data(), n_tokens, y.data(), pool, MatmulPath::DequantGemm);
      matmul(m.w, x.data(), n_tokens, fast.data(), pool, MatmulPath::Fast);
      if (n_tokens < kDequantGemmMinTokens) {
        EXPECT_EQ(0, std::memcmp(y.data(), fast.data(), y.size() * sizeof(float)));
        continue;
      }
      int64_t bad = 0;
      for (int64_t t = 0; t < n_tokens; ++t)
        for (int64_t o = 0; o < n_out; ++o) {
          double mag = 0;
          for (int64_t i = 0; i < n_in; ++i) mag += std::fabs(double(m.deq[size_t(o * n_in + i)]) * x[size_t(t * n_in + i)]);
          bad += !(std::fabs(double(y[size_t(t * n_out + o)]) - ref[size_t(t * n_out + o)]) <= 512 * 0x1p-24 * mag + 1e-30);
        }
      EXPECT_EQ(bad, 0);
    }
  }
}

TEST(Matmul, FloatTypesHandleRaggedRowLengths) {
  for (GgmlType type : {GgmlType::F32, GgmlType::F16})
    for (int64_t n_in : {1, 7, 33, 100, 129}) {
      SCOPED_TRACE(fmt::format("{} n_in={}", formats::ggml_type_name(type), n_in));
      check_against_reference(type, n_in, 11, 6, 0, 2);
    }
}

TEST(Matmul, ActivationQuantizationErrorIsAtMostHalfAStep) {
  std::mt19937 rng(5);
  const auto x = random_activations(256, 3, rng);
  std::vector<ActQ8Block> a(8);
  for (int t = 0; t < 3; ++t) {
    quantize_activations_q8(x.data() + t * 256, 256, a.data());
    for (int b = 0; b < 8; ++b) {
      float amax = 0;
      int s[2] = {0, 0};
      for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[size_t(t * 256 + b * 32 + i)]));
      EXPECT_FLOAT_EQ(a[size_t(b)].d, amax / 127);
      for (int i = 0; i < 32; ++i) {
        const float xi = x[size_t(t * 256 + b * 32 + i)];
        EXPECT_LE(std::fabs(xi - a[size_t(b)].d * float(a[size_t(b)].qs[i])), a[size_t(b)].d * 0.5001f);
        s[i / 16] += a[size_t(b)].qs[i];
      }
      EXPECT_EQ(a[size_t(b)].sum16[0], s[0]);
      EXPECT_EQ(a[size_t(b)].sum16[1], s[1]);
      EXPECT_EQ(a[size_t(b)].dsum, a[size_t(b)].d * float(s[0] + s[1]));
    }
  }
}

// Every ISA's activation quantizer gives exactly the scalar definition's blocks (ties included:
// a block with max 127 has scale 1, so k + 0.5 values sit exactly on rounding ties).
TEST(Matmul, ActivationQuantizersAgreeAcrossIsas) {
  std::mt19937 rng(11);
  auto x = random_activations(512, 1, rng);
  x[64] = 127.0f;
  for (int i = 65; i < 96; ++i) x[size_t(i)] = float(i - 80) + 0.5f;
  std::vector<ActQ8Block> want(16), got(16);
  quantize_activations_q8(x.data(), 512, want.data());
  EXPECT_EQ(want[2].qs[1], -14);  // -14.5: the tie goes to the even -14
  EXPECT_EQ(want[2].qs[2], -14);  // -13.5: the tie goes to the even -14
  for (CpuIsa isa : supported_cpu_isas()) {
    SCOPED_TRACE(std::string(cpu_isa_name(isa)));
    const KernelTable& k = isa == CpuIsa::Avx512 ? avx512_kernels() : isa == CpuIsa::Avx2 ? avx2_kernels() : scalar_kernels();
    std::fill(got.begin(), got.end(), ActQ8Block{});
    k.quantize_act(x.data(), 512, got.data());
    for (size_t b = 0; b < 16; ++b) {
      ASSERT_EQ(f32_bits(got[b].d), f32_bits(want[b].d)) << b;
      ASSERT_EQ(got[b].sum16[0], want[b].sum16[0]) << b;
      ASSERT_EQ(got[b].sum16[1], want[b].sum16[1]) << b;
      ASSERT_EQ(f32_bits(got[b].dsum), f32_bits(want[b].dsum)) << b;
      ASSERT_EQ(std::memcmp(got[b].qs, want[b].qs, 32), 0) << b;
    }
  }
}

// NaN or Inf activations give NaN outputs on every ISA (never a silently finite number).
TEST(Matmul, NonFiniteActivationsGiveNaN) {
  std::mt19937 rng(3);
  for (GgmlType type : {GgmlType::Q4_1, GgmlType::Q4_K, GgmlType::Q8_0}) {
    const Matrix m = random_matrix(type, 256, 9, 0, rng);
    for (float bad : {NAN, INFINITY}) {
      auto x = random_activations(256, 2, rng);
      x[100] = bad;
      ThreadPool pool(2);
      for (CpuIsa isa : supported_cpu_isas()) {
        std::vector<float> y(18, 0.0f);
        matmul_with_isa(m.w, x.data(), 2, y.data(), pool, isa);
        for (int o = 0; o < 9; ++o) {
          EXPECT_TRUE(std::isnan(y[size_t(o)])) << cpu_isa_name(isa) << " " << formats::ggml_type_name(type) << " " << o;
          EXPECT_TRUE(std::isfinite(y[size_t(9 + o)]));  // the other token is unaffected
        }
      }
    }
  }
}

TEST(Matmul, TypesWithoutFastKernelRunTheReference) {
  std::mt19937 rng(9);
  Matrix m = random_matrix(GgmlType::Q3_K, 256, 5, 0, rng);
  const auto x = random_activations(256, 2, rng);
  ThreadPool pool(2);
  std::vector<float> a(10), b(10);
  matmul(m.w, x.data(), 2, a.data(), pool, MatmulPath::Fast);
  matmul(m.w, x.data(), 2, b.data(), pool, MatmulPath::Reference);
  EXPECT_EQ(a, b);
  EXPECT_FALSE(has_fast_kernel(GgmlType::Q3_K));
  EXPECT_NE(describe_fast_path(GgmlType::Q3_K).find("reference"), std::string::npos);
}

TEST(Matmul, DescribesIsaAndActivationQuantization) {
  const CpuIsa isa = selected_cpu_isa();
  const auto isas = supported_cpu_isas();
  EXPECT_NE(std::find(isas.begin(), isas.end(), isa), isas.end());
  const std::string q = describe_fast_path(GgmlType::Q4_1);
  EXPECT_NE(q.find("activations quantized to 8-bit blocks, as llama.cpp does"), std::string::npos) << q;
  EXPECT_NE(q.find(std::string(cpu_isa_name(isa))), std::string::npos) << q;
  EXPECT_EQ(describe_fast_path(GgmlType::F32).find("quantized"), std::string::npos);
}

TEST(Matmul, IsaNamesParseAndScalarIsAlwaysSupported) {
  for (CpuIsa isa : {CpuIsa::Scalar, CpuIsa::Avx2, CpuIsa::Avx512}) EXPECT_EQ(parse_cpu_isa(cpu_isa_name(isa)), isa);
  EXPECT_EQ(parse_cpu_isa("AVX2"), std::nullopt);
  EXPECT_EQ(parse_cpu_isa("neon"), std::nullopt);
  EXPECT_TRUE(cpu_isa_supported(CpuIsa::Scalar));
  EXPECT_EQ(supported_cpu_isas().front(), CpuIsa::Scalar);
}

TEST(Matmul, RejectsImpossibleShapes) {
  std::vector<uint8_t> buf(4096);
  std::vector<float> x(1024), y(1024);
  ThreadPool pool(1);
  WeightMatrix ragged{GgmlType::Q4_0, 40, 2, buf.data(), 40};
  EXPECT_THROW(matmul(ragged, x.data(), 1, y.data(), pool), Error);
  WeightMatrix short_stride{GgmlType::Q4_1, 64, 2, buf.data(), 30};
  EXPECT_THROW(matmul(short_stride, x.data(), 1, y.data(), pool), Error);
  WeightMatrix empty{GgmlType::F32, 0, 2, buf.data(), 0};
  EXPECT_THROW(matmul(empty, x.data(), 1, y.data(), pool), Error);
  WeightMatrix null_data{GgmlType::F32, 4, 2, nullptr, 16};
  EXPECT_THROW(matmul(null_data, x.data(), 1, y.data(), pool), Error);
}

}  // namespace
}  // namespace qb::runtime::cpu
