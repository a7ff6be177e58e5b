// Dense Cholesky and triangular inverse (double, row-major). Every inner loop is a dot product of two
// contiguous rows, summed in independent lanes (vectorized per ISA, with the instruction-level
// parallelism one running sum lacks); column-wise access is avoided by working on transposes, because at
// n = 1536 (SmolLM2's ffn_down) a column walk misses the cache on every step. This was 60-80% of a
// GPTQ run before.
#include "quantbench/quant/method/linalg.h"

#include <algorithm>
#include <cmath>

namespace qb::quant {

// 32 independent partial sums: with AVX-512 that is four vector accumulators, enough to hide the FMA
// latency (one running sum, or four, leaves the unit idle most cycles). Cloned per ISA at load time.
__attribute__((target_clones("avx512f", "avx2", "default")))
double dot(const double* a, const double* b, int64_t n) {
  constexpr int64_t L = 32;
  double part[L] = {};
  int64_t k = 0;
  for (; k + L <= n; k += L)
    for (int64_t l = 0; l < L; ++l) part[l] += a[k + l] * b[k + l];
  double s = 0;
  for (; k < n; ++k) s += a[k] * b[k];
  for (int64_t w = L / 2; w >= 1; w /= 2)  // pairwise
    for (int64_t l = 0; l < w; ++l) part[l] += part[l + w];
  return part[0] + s;
}

namespace {

std::vector<double> transpose(const std::vector<double>& a, int64_t n) {
  std::vector<double> t(a.size());
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) t[size_t(j * n + i)] = a[size_t(i * n + j)];
  return t;
}

}  // namespace

namespace {

// fn(i) for i in [begin, end), over the pool when there is enough work (work = the loop's total
// multiply-adds) to pay for the hand-off; each i is computed whole by one thread either way.
template <class Fn>
void for_range(ThreadPool* pool, int64_t begin, int64_t end, int64_t work, const Fn& fn) {
  if (!pool || pool->size() == 1 || work < (int64_t(1) << 15)) {
    for (int64_t i = begin; i < end; ++i) fn(i);
    return;
  }
  pool->parallel_for(size_t(end - begin), [&](size_t b, size_t e, int) {
    for (size_t i = b; i < e; ++i) fn(begin + int64_t(i));
  });
}

}  // namespace

// Columns per block in cholesky_lower and invert_lower. Each element is still computed by the same
// dot product in the same order as column by column (the results are bit-identical); blocking only
// changes which row a thread holds in L1: a row is now read once per block of columns instead of once
// per column. At n = 1536 the matrix (19 MB) lives in L3, and the column-at-a-time loops streamed it
// from there n times.
constexpr int64_t kColumnBlock = 16;

bool cholesky_lower(std::vector<double>& a, int64_t n, ThreadPool* pool) {
  for (int64_t j0 = 0; j0 < n; j0 += kColumnBlock) {
    const int64_t j1 = std::min(n, j0 + kColumnBlock);
    // The block's own rows, column by column (each needs the columns before it).
    for (int64_t j = j0; j < j1; ++j) {
      const double* rj = &a[size_t(j * n)];
      const double d = a[size_t(j * n + j)] - dot(rj, rj, j);
      if (!(d > 0) || !std::isfinite(d)) return false;
      const double ljj = std::sqrt(d);
      a[size_t(j * n + j)] = ljj;
      for (int64_t i = j + 1; i < j1; ++i)
        a[size_t(i * n + j)] = (a[size_t(i * n + j)] - dot(&a[size_t(i * n)], rj, j)) / ljj;
    }
    // The rows below: each row's block of columns in order, the row held in L1.
    for_range(pool, j1, n, (n - j1) * j1 * (j1 - j0), [&](int64_t i) {
      double* ri = &a[size_t(i * n)];
      for (int64_t j = j0; j < j1; ++j) ri[j] = (ri[j] - dot(ri, &a[size_t(j * n)], j)) / a[size_t(j * n + j)];
    });
    for (int64_t j = j0; j < j1; ++j)
      for (int64_t k = j + 1; k < n; ++k) a[size_t(j * n + k)] = 0;
  }
  return true;
}

std::vector<double> invert_lower(const std::vector<double>& l, int64_t n, ThreadPool* pool) {
  // Column c of L^-1 solves L x = e_c; kept as row c of `t` (the transpose) so the substitution's sums
  // run along contiguous memory: x_i = -(sum_{c <= k < i} L_ik x_k) / L_ii. A block of columns walks
  // L's rows together (row i serves all of them while in L1).
  std::vector<double> t(static_cast<size_t>(n * n), 0.0);
  const int64_t n_blocks = (n + kColumnBlock - 1) / kColumnBlock;
  auto solve_block = [&](int64_t b) {
    const int64_t c0 = b * kColumnBlock, c1 = std::min(n, c0 + kColumnBlock);
    for (int64_t c = c0; c < c1; ++c) t[size_t(c * n + c)] = 1.0 / l[size_t(c * n + c)];
    for (int64_t i = c0 + 1; i < n; ++i) {
      const double* li = &l[size_t(i * n)];
      for (int64_t c = c0; c < std::min(c1, i); ++c) {
        double* x = &t[size_t(c * n)];
        x[i] = -dot(li + c, x + c, i - c) / li[i];
      }
    }
  };
  // Block b costs about (n - c0)^2: the threads get contiguous runs of blocks of equal total cost (a
  // split by count gave the first thread 7/8 of the work on two threads).
  const int threads = pool ? pool->size() : 1;
  if (threads == 1 || n * n * n / 6 < (int64_t(1) << 15)) {
    for (int64_t b = 0; b < n_blocks; ++b) solve_block(b);
  } else {
    std::vector<double> cum(size_t(n_blocks + 1), 0.0);
    for (int64_t b = 0; b < n_blocks; ++b) {
      const double rest = double(n - b * kColumnBlock);
      cum[size_t(b + 1)] = cum[size_t(b)] + rest * rest;
    }
    std::vector<int64_t> first(size_t(threads + 1), n_blocks);
    first[0] = 0;
    for (int th = 1; th < threads; ++th) {
      const double target = cum.back() * th / threads;
      first[size_t(th)] = int64_t(std::lower_bound(cum.begin(), cum.end(), target) - cum.begin());
      first[size_t(th)] = std::clamp(first[size_t(th)], first[size_t(th - 1)], n_blocks);
    }
    pool->parallel_for(size_t(threads), [&](size_t tb, size_t te, int) {
      for (size_t th = tb; th < te; ++th)
        for (int64_t b = first[th]; b < first[th + 1]; ++b) solve_block(b);
    });
  }
  return transpose(t, n);
}

bool inverse_cholesky_upper(const std::vector<double>& h, int64_t n, std::vector<double>& u, ThreadPool* pool) {
  // torch's route (Cholesky of H, inverse, Cholesky of H^-1) costs three n^3/3 passes. One suffices:
  // with J the reversal permutation, factor J H J = M M^T (M lower); then H = R R^T with R = J M J
  // upper, so H^-1 = R^-T R^-1 = U^T U with U = R^-1 = J M^-1 J upper with a positive diagonal, which
  // is the upper Cholesky factor of H^-1 by uniqueness.
  std::vector<double> k(static_cast<size_t>(n * n));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) k[size_t(i * n + j)] = h[size_t((n - 1 - i) * n + (n - 1 - j))];
  if (!cholesky_lower(k, n, pool)) return false;
  const std::vector<double> minv = invert_lower(k, n, pool);
  u.assign(static_cast<size_t>(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = i; j < n; ++j) {
      const double v = minv[size_t((n - 1 - i) * n + (n - 1 - j))];
      if (!std::isfinite(v)) return false;
      u[size_t(i * n + j)] = v;
    }
  return true;
}

__attribute__((target_clones("avx512f", "avx2", "default")))
void sub_scaled(double* y, const double* x, double a, int64_t n) {
  for (int64_t j = 0; j < n; ++j) y[j] -= a * x[j];
}

}  // namespace qb::quant
