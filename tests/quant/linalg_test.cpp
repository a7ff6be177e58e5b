// GPTQ's linear algebra against its defining identities, in double, on random symmetric positive
// definite matrices (A A^T + n I) at sizes that do not fill the four summation lanes:
// L L^T = H, L^-1 L = I, and U^T U H = I for the U that inverse_cholesky_upper returns.
#include "quantbench/quant/method/linalg.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "quantbench/core/rng.h"

namespace qb::quant {
namespace {

std::vector<double> random_spd(int64_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<double> a(size_t(n * n)), h(size_t(n * n), 0.0);
  for (auto& v : a) v = 2 * rng.uniform() - 1;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      for (int64_t k = 0; k < n; ++k) h[size_t(i * n + j)] += a[size_t(i * n + k)] * a[size_t(j * n + k)];
      if (i == j) h[size_t(i * n + j)] += double(n);
    }
  return h;
}

std::vector<double> matmul(const std::vector<double>& a, const std::vector<double>& b, int64_t n) {
  std::vector<double> c(size_t(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < n; ++k)
      for (int64_t j = 0; j < n; ++j) c[size_t(i * n + j)] += a[size_t(i * n + k)] * b[size_t(k * n + j)];
  return c;
}

double max_abs_diff_from_identity(const std::vector<double>& m, int64_t n) {
  double e = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) e = std::max(e, std::fabs(m[size_t(i * n + j)] - (i == j ? 1.0 : 0.0)));
  return e;
}

// The column-at-a-time forms (before the column blocking): the blocked code must give the same bits,
// since every entry is the same dot product in the same order.
std::vector<double> cholesky_by_columns(std::vector<double> a, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    const double* rj = &a[size_t(j * n)];
    const double ljj = std::sqrt(a[size_t(j * n + j)] - dot(rj, rj, j));
    a[size_t(j * n + j)] = ljj;
    for (int64_t i = j + 1; i < n; ++i)
      a[size_t(i * n + j)] = (a[size_t(i * n + j)] - dot(&a[size_t(i * n)], rj, j)) / ljj;
    for (int64_t k = j + 1; k < n; ++k) a[size_t(j * n + k)] = 0;
  }
  return a;
}

std::vector<double> invert_by_columns(const std::vector<double>& l, int64_t n) {
  std::vector<double> inv(size_t(n * n), 0.0);
  std::vector<double> x(static_cast<size_t>(n));
  for (int64_t c = 0; c < n; ++c) {
    x[size_t(c)] = 1.0 / l[size_t(c * n + c)];
    for (int64_t i = c + 1; i < n; ++i)
      x[size_t(i)] = -dot(&l[size_t(i * n + c)], &x[size_t(c)], i - c) / l[size_t(i * n + i)];
    for (int64_t i = c; i < n; ++i) inv[size_t(i * n + c)] = x[size_t(i)];
  }
  return inv;
}

TEST(Linalg, CholeskyInverseAndGptqPreconditionerSatisfyTheirIdentities) {
  for (int64_t n : {1, 5, 37, 130, 400}) {
    const auto h = random_spd(n, uint64_t(n));
    auto l = h;
    ASSERT_TRUE(cholesky_lower(l, n));
    std::vector<double> lt(size_t(n * n));
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) {
        lt[size_t(j * n + i)] = l[size_t(i * n + j)];
        if (j > i) ASSERT_EQ(l[size_t(i * n + j)], 0.0);
      }
    const auto llt = matmul(l, lt, n);
    double scale = 0, err = 0;
    for (size_t k = 0; k < h.size(); ++k) {
      scale = std::max(scale, std::fabs(h[k]));
      err = std::max(err, std::fabs(llt[k] - h[k]));
    }
    EXPECT_LE(err, 1e-12 * scale) << "n " << n;
    EXPECT_LE(max_abs_diff_from_identity(matmul(invert_lower(l, n), l, n), n), 1e-12) << "n " << n;
    EXPECT_EQ(l, cholesky_by_columns(h, n)) << "n " << n;
    EXPECT_EQ(invert_lower(l, n), invert_by_columns(l, n)) << "n " << n;
    std::vector<double> u;
    ASSERT_TRUE(inverse_cholesky_upper(h, n, u));
    std::vector<double> ut(size_t(n * n));
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) {
        ut[size_t(j * n + i)] = u[size_t(i * n + j)];
        if (j < i) ASSERT_EQ(u[size_t(i * n + j)], 0.0);
      }
    EXPECT_LE(max_abs_diff_from_identity(matmul(matmul(ut, u, n), h, n), n), 1e-10) << "n " << n;
    // Spread over threads, every entry is computed by the same operations: identical bits.
    ThreadPool pool(3);
    std::vector<double> u_threads;
    ASSERT_TRUE(inverse_cholesky_upper(h, n, u_threads, &pool));
    EXPECT_EQ(u_threads, u) << "n " << n;
    auto l_threads = h;
    ASSERT_TRUE(cholesky_lower(l_threads, n, &pool));
    EXPECT_EQ(l_threads, l) << "n " << n;
    EXPECT_EQ(invert_lower(l, n, &pool), invert_lower(l, n)) << "n " << n;
  }
}

TEST(Linalg, NotPositiveDefiniteIsReported) {
  std::vector<double> a{1, 2, 2, 1};  // eigenvalues 3 and -1
  EXPECT_FALSE(cholesky_lower(a, 2));
  std::vector<double> u;
  EXPECT_FALSE(inverse_cholesky_upper({1, 2, 2, 1}, 2, u));
}

}  // namespace
}  // namespace qb::quant
