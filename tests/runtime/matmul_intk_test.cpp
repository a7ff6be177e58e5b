// Fused INTk kernels (matmul_intk_driver.h) against independent references, on every ISA this
// machine runs, for int2/3/4/8, symmetric and asymmetric, f16 and bf16 scales, per-channel and groups
// of 32/64/128 (with a ragged last group), 1..9 tokens (token tiles of 4 and their remainders).
// Tolerances per output y[t][r], with W the exactly dequantized weights (quant::dequantize):
//  * against the exact product of W with the kernel's own quantized activations x~ (d_b * qs_i from
//    quantize_activations_q8, computed here in double): |fast - exact~| <= 1e-5 * sum_i |W_i| |x~_i|
//    + 1e-5 * s * 2^8 * sum |x~| (f32 rounding; the zero point term z * sum x~ cancels magnitudes up to that);
//  * against quant::matvec with the f32 activations: additionally sum_b (d_b / 2) sum_{i in b} |W_i|
//    (each activation moves by at most d_b / 2 when quantized).
#include "quantbench/runtime/cpu/matmul_intk_driver.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "quantbench/core/error.h"
#include "quantbench/runtime/cpu/matmul.h"
#include "quantbench/runtime/cpu/matmul_intk_kernels.h"
#include "quantbench/runtime/cpu/matmul_kernels.h"

namespace qb::runtime::cpu {
namespace {

using quant::Granularity;
using quant::QFormat;
using quant::QuantizedTensor;
using quant::QuantLayout;
using quant::ScaleType;

QuantizedTensor random_tensor(const QuantLayout& l, int64_t rows, int64_t cols, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.0f, 0.05f);
  std::vector<float> w(size_t(rows * cols));
  for (auto& v : w) v = nd(rng) + 0.01f;  // a mean offset makes asymmetric zero points differ from 2^(k-1)
  return quant::quantize_rtn(w.data(), rows, cols, l);
}

void check(const QuantizedTensor& q, int64_t n_tokens, std::mt19937& rng, CpuIsa isa) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(size_t(n_tokens * q.cols));
  for (auto& v : x) v = nd(rng);
  x[3] = 9.0f;  // an outlier: a block whose d is large
  std::vector<float> deq(size_t(q.rows * q.cols));
  quant::dequantize(q, deq.data());
  std::vector<float> y(size_t(n_tokens * q.rows), NAN);
  ThreadPool pool(2);
  matmul_intk(q, x.data(), n_tokens, y.data(), pool, isa);
  std::vector<ActQ8Block> act(size_t(q.cols / 32));
  std::vector<float> mv(size_t(q.rows));
  for (int64_t t = 0; t < n_tokens; ++t) {
    const float* xt = x.data() + t * q.cols;
    quantize_activations_q8(xt, q.cols, act.data());
    quant::matvec(q, xt, mv.data());
    for (int64_t r = 0; r < q.rows; ++r) {
      double exact = 0, mag = 0, act_err = 0;
      for (int64_t c = 0; c < q.cols; ++c) {
        const ActQ8Block& a = act[size_t(c / 32)];
        const double xq = double(a.d) * a.qs[c % 32];
        const double w = deq[size_t(r * q.cols + c)];
        exact += w * xq;
        mag += std::fabs(w) * (std::fabs(xq) + std::fabs(xt[c]));
        act_err += std::fabs(w) * a.d / 2;
      }
      // The zero-point term: sum over groups of s * z * |sum x~|, at most s * 2^k * sum |x~|.
      double zterm = 0;
      for (int64_t k = 0; k < q.groups_per_row(); ++k) {
        const auto p = q.params(r, k);
        double sx = 0;
        for (int64_t c = k * q.group_cols(); c < std::min(q.cols, (k + 1) * q.group_cols()); ++c)
          sx += std::fabs(double(act[size_t(c / 32)].d) * act[size_t(c / 32)].qs[c % 32]);
        zterm += double(p.scale) * 256.0 * sx;
      }
      const double tol = 1e-5 * (mag + zterm) + 1e-30;
      const float got = y[size_t(t * q.rows + r)];
      ASSERT_NEAR(got, exact, tol) << "token " << t << " row " << r;
      ASSERT_NEAR(got, mv[size_t(r)], act_err * (1 + 1e-6) + 2 * tol) << "token " << t << " row " << r;
    }
  }
}

TEST(MatmulIntk, MatchesReferencesOnEveryIsa) {
  std::mt19937 rng(7);
  for (CpuIsa isa : supported_cpu_isas()) {
    for (QFormat f : {QFormat::Int2, QFormat::Int3, QFormat::Int4, QFormat::Int8})
      for (bool asym : {false, true})
        for (int64_t group : {int64_t(0), int64_t(32), int64_t(128)}) {
          const ScaleType st = (group == 32) ? ScaleType::BF16 : ScaleType::F16;
          const QuantLayout l{f, group ? Granularity::Group : Granularity::Channel, group, asym, st};
          const int64_t cols = group == 128 ? 576 : 256;  // 576 = 4 x 128 + 64: a ragged last group
          SCOPED_TRACE(std::string(cpu_isa_name(isa)) + " " + quant::layout_name(l));
          const QuantizedTensor q = random_tensor(l, 37, cols, rng);
          ASSERT_TRUE(has_intk_kernel(q));
          for (int64_t nt : {1, 4, 9}) check(q, nt, rng, isa);
        }
  }
}

TEST(MatmulIntk, Int4G64MatchesOnAllIsas) {
  std::mt19937 rng(11);
  const QuantLayout l{QFormat::Int4, Granularity::Group, 64, true, ScaleType::F16};
  const QuantizedTensor q = random_tensor(l, 70, 192, rng);
  for (CpuIsa isa : supported_cpu_isas()) check(q, 5, rng, isa);
}

TEST(MatmulIntk, ActivationPermutationsArePermutations) {
  for (int bits : {2, 3, 4, 8}) {
    auto p = act_permutation(bits);
    std::sort(p.begin(), p.end());
    for (int i = 0; i < 32; ++i) EXPECT_EQ(p[size_t(i)], i) << bits;
  }
}

TEST(MatmulIntk, DispatchAndFallbacks) {
  std::mt19937 rng(3);
  // 172 columns (stories260K's ffn_down) and NF4 have no fused kernel: matmul runs quant::matvec.
  const QuantizedTensor ragged = random_tensor({QFormat::Int4, Granularity::Group, 32, false, ScaleType::F16}, 8, 172, rng);
  const QuantizedTensor nf4 = random_tensor({QFormat::NF4, Granularity::Group, 32, false, ScaleType::F16}, 8, 64, rng);
  for (const QuantizedTensor* q : {&ragged, &nf4}) {
    EXPECT_FALSE(has_intk_kernel(*q));
    EXPECT_NE(describe_intk_path(*q).find("reference"), std::string::npos);
    std::vector<float> x(size_t(q->cols), 0.5f), y(size_t(q->rows)), ref(size_t(q->rows));
    WeightMatrix w{formats::GgmlType::F32, q->cols, q->rows, nullptr, 0, q};
    ThreadPool pool(2);
    matmul(w, x.data(), 1, y.data(), pool, MatmulPath::Fast);
    quant::matvec(*q, x.data(), ref.data());
    EXPECT_EQ(y, ref);
    EXPECT_THROW(matmul_intk(*q, x.data(), 1, y.data(), pool, CpuIsa::Scalar), Error);
  }
  // The Fast path takes the fused kernel for int4 g32; the Reference path stays on quant::matvec.
  const QuantizedTensor q = random_tensor({QFormat::Int4, Granularity::Group, 32, false, ScaleType::F16}, 8, 64, rng);
  EXPECT_NE(describe_intk_path(q).find("activations quantized"), std::string::npos);
  std::vector<float> x(64), fast(8), kern(8), ref(8), mv(8);
  for (auto& v : x) v = std::normal_distribution<float>(0, 1)(rng);
  WeightMatrix w{formats::GgmlType::F32, 64, 8, nullptr, 0, &q};
  ThreadPool pool(1);
  matmul(w, x.data(), 1, fast.data(), pool, MatmulPath::Fast);
  matmul_intk(q, x.data(), 1, kern.data(), pool, selected_cpu_isa());
  matmul(w, x.data(), 1, ref.data(), pool, MatmulPath::Reference);
  quant::matvec(q, x.data(), mv.data());
  EXPECT_EQ(fast, kern);
  EXPECT_EQ(ref, mv);
}

TEST(MatmulIntk, NonFiniteActivationsGiveNaN) {
  std::mt19937 rng(5);
  const QuantizedTensor q = random_tensor({QFormat::Int8, Granularity::Channel, 0, false, ScaleType::F16}, 4, 64, rng);
  std::vector<float> x(64, 1.0f), y(4);
  x[40] = INFINITY;
  ThreadPool pool(1);
  for (CpuIsa isa : supported_cpu_isas()) {
    matmul_intk(q, x.data(), 1, y.data(), pool, isa);
    for (float v : y) EXPECT_TRUE(std::isnan(v)) << cpu_isa_name(isa);
  }
}

}  // namespace
}  // namespace qb::runtime::cpu
