// gemm_f32 against a double-precision reference on fresh random inputs, for every ISA this machine
// supports: ragged shapes (not multiples of any tile or of the 256-row chunk), strided and transposed
// operands, upper_only, float and double outputs that already hold values (C += ...) or are
// overwritten (poisoned first), and bit-identical results for 1 and 3 threads.
#include "quantbench/runtime/cpu/gemm_f32.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "quantbench/core/error.h"
#include "quantbench/core/rng.h"

namespace qb::runtime::cpu {
namespace {

std::vector<float> random_vec(Rng& rng, size_t n) {
  std::vector<float> v(n);
  for (auto& x : v) x = float(2 * rng.uniform() - 1);
  return v;
}

// Element (r, c) of an operand, as the kernel must read it.
float at(const GemmOperand& op, int64_t r, int64_t c) { return op.p[r * op.row_stride + c * op.col_stride]; }

// Every checked element must be within 2 * k_chunk * 2^-24 of the sum of |products| (f32 sums over
// at most 256 products per chunk), and is poisoned where it must not be written.
template <class T>
void check(int64_t k, int64_t m, int64_t n, const GemmOperand& a, const GemmOperand& b, bool upper, CpuIsa isa,
           const std::vector<float>& a_dense, const std::vector<float>& b_dense, bool accumulate = true) {
  Rng rng(k * 131 + m * 7 + n);
  const int64_t ldc = n + 3;
  std::vector<T> c(size_t(m * ldc));
  for (auto& v : c) v = T(rng.uniform());
  if (!accumulate)  // C = A^T B must not read C: poison what it overwrites
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = upper ? std::min(i, n) : 0; j < n; ++j) c[size_t(i * ldc + j)] = T(NAN);
  const std::vector<T> c0 = c;
  ThreadPool pool(2);
  if constexpr (std::is_same_v<T, double>)
    gemm_f32_tn_with_isa(k, m, n, a, b, c.data(), ldc, upper, pool, isa, accumulate);
  else gemm_f32_tn(k, m, n, a, b, c.data(), ldc, upper, pool, accumulate);
  int64_t bad = 0;
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      if (upper && j < i) continue;
      double ref = accumulate ? double(c0[size_t(i * ldc + j)]) : 0.0, mag = accumulate ? std::fabs(ref) : 0.0;
      for (int64_t r = 0; r < k; ++r) {
        const double p = double(a_dense[size_t(r * m + i)]) * double(b_dense[size_t(r * n + j)]);
        ref += p;
        mag += std::fabs(p);
      }
      const double tol = 512 * std::ldexp(1.0, -24) * mag + 1e-30;
      bad += !(std::fabs(double(c[size_t(i * ldc + j)]) - ref) <= tol);
    }
    for (int64_t j = n; j < ldc; ++j) bad += c[size_t(i * ldc + j)] != c0[size_t(i * ldc + j)];  // padding untouched
  }
  EXPECT_EQ(bad, 0) << cpu_isa_name(isa) << " k " << k << " m " << m << " n " << n << " upper " << upper;
}

std::vector<float> dense(const GemmOperand& op, int64_t k, int64_t w) {
  std::vector<float> d(size_t(k * w));
  for (int64_t r = 0; r < k; ++r)
    for (int64_t c = 0; c < w; ++c) d[size_t(r * w + c)] = at(op, r, c);
  return d;
}

TEST(GemmF32, MatchesDoubleReferenceOnEveryIsa) {
  Rng rng(5);
  for (CpuIsa isa : supported_cpu_isas())
    for (auto [k, m, n] : {std::tuple<int64_t, int64_t, int64_t>{1, 1, 1}, {37, 13, 33}, {300, 25, 70}, {513, 40, 17}}) {
      // A k-major (row stride m), B "transposed" (element (r, c) at c * k + r, as x W^T reads W).
      const auto av = random_vec(rng, size_t(k * m)), bv = random_vec(rng, size_t(k * n));
      GemmOperand a{av.data(), m, 1}, b{bv.data(), 1, k};
      const auto ad = dense(a, k, m), bd = dense(b, k, n);
      check<double>(k, m, n, a, b, false, isa, ad, bd);
    }
}

TEST(GemmF32, SymmetricUpperOnlyAndFloatOutput) {
  Rng rng(6);
  const int64_t k = 290, w = 45;
  const auto xv = random_vec(rng, size_t(k * w));
  GemmOperand x{xv.data(), w, 1};
  const auto xd = dense(x, k, w);
  for (CpuIsa isa : supported_cpu_isas()) check<double>(k, w, w, x, x, true, isa, xd, xd);
  check<float>(k, w, w, x, x, false, selected_cpu_isa(), xd, xd);
}

TEST(GemmF32, OverwriteModeNeverReadsTheOutput) {
  Rng rng(9);
  for (auto [k, m, n] : {std::tuple<int64_t, int64_t, int64_t>{0, 5, 7}, {1, 3, 40}, {700, 30, 50}}) {
    const auto av = random_vec(rng, size_t(k * m)), bv = random_vec(rng, size_t(k * n));
    GemmOperand a{av.data(), m, 1}, b{bv.data(), 1, k};
    const auto ad = dense(a, k, m), bd = dense(b, k, n);
    for (bool upper : {false, true}) {
      check<float>(k, m, n, a, b, upper, selected_cpu_isa(), ad, bd, /*accumulate=*/false);
      for (CpuIsa isa : supported_cpu_isas()) check<double>(k, m, n, a, b, upper, isa, ad, bd, /*accumulate=*/false);
    }
  }
}

TEST(GemmF32, ThreadCountDoesNotChangeTheResult) {
  Rng rng(8);
  const int64_t k = 700, m = 61, n = 77;
  const auto av = random_vec(rng, size_t(k * m)), bv = random_vec(rng, size_t(k * n));
  GemmOperand a{av.data(), m, 1}, b{bv.data(), n, 1};
  std::vector<double> c1(size_t(m * n), 0.0), c3(size_t(m * n), 0.0);
  ThreadPool p1(1), p3(3);
  gemm_f32_tn(k, m, n, a, b, c1.data(), n, false, p1);
  gemm_f32_tn(k, m, n, a, b, c3.data(), n, false, p3);
  EXPECT_EQ(c1, c3);
}

TEST(GemmF32, BadShapesAreErrors) {
  ThreadPool pool(1);
  std::vector<float> x(4);
  std::vector<double> c(4);
  GemmOperand a{x.data(), 2, 1}, none;
  EXPECT_THROW(gemm_f32_tn(2, 2, 2, a, a, c.data(), 1, false, pool), qb::Error);  // ldc < n
  EXPECT_THROW(gemm_f32_tn(2, 2, 2, a, none, c.data(), 2, false, pool), qb::Error);
  EXPECT_THROW(gemm_f32_tn(-1, 2, 2, a, a, c.data(), 2, false, pool), qb::Error);
}

}  // namespace
}  // namespace qb::runtime::cpu
