// Reference dense Cholesky and triangular inverse (double, row-major).
#include "quantbench/quant/method/linalg.h"

#include <cmath>

namespace qb::quant {

bool cholesky_lower(std::vector<double>& a, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    double d = a[size_t(j * n + j)];
    for (int64_t k = 0; k < j; ++k) d -= a[size_t(j * n + k)] * a[size_t(j * n + k)];
    if (!(d > 0) || !std::isfinite(d)) return false;
    const double ljj = std::sqrt(d);
    a[size_t(j * n + j)] = ljj;
    for (int64_t i = j + 1; i < n; ++i) {
      double s = a[size_t(i * n + j)];
      for (int64_t k = 0; k < j; ++k) s -= a[size_t(i * n + k)] * a[size_t(j * n + k)];
      a[size_t(i * n + j)] = s / ljj;
    }
    for (int64_t k = j + 1; k < n; ++k) a[size_t(j * n + k)] = 0;
  }
  return true;
}

std::vector<double> invert_lower(const std::vector<double>& l, int64_t n) {
  std::vector<double> inv(static_cast<size_t>(n * n), 0.0);
  for (int64_t c = 0; c < n; ++c) {  // solve L x = e_c by forward substitution
    inv[size_t(c * n + c)] = 1.0 / l[size_t(c * n + c)];
    for (int64_t i = c + 1; i < n; ++i) {
      double s = 0;
      for (int64_t k = c; k < i; ++k) s += l[size_t(i * n + k)] * inv[size_t(k * n + c)];
      inv[size_t(i * n + c)] = -s / l[size_t(i * n + i)];
    }
  }
  return inv;
}

bool inverse_cholesky_upper(const std::vector<double>& h, int64_t n, std::vector<double>& u) {
  std::vector<double> l = h;
  if (!cholesky_lower(l, n)) return false;
  const std::vector<double> li = invert_lower(l, n);
  // H^-1 = L^-T L^-1: entry (i, j) = sum_k li[k][i] * li[k][j], k >= max(i, j).
  std::vector<double> hinv(static_cast<size_t>(n * n));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j <= i; ++j) {
      double s = 0;
      for (int64_t k = i; k < n; ++k) s += li[size_t(k * n + i)] * li[size_t(k * n + j)];
      hinv[size_t(i * n + j)] = hinv[size_t(j * n + i)] = s;
    }
  if (!cholesky_lower(hinv, n)) return false;
  u.assign(static_cast<size_t>(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j <= i; ++j) u[size_t(j * n + i)] = hinv[size_t(i * n + j)];
  return true;
}

}  // namespace qb::quant
