// Streaming accumulation of per-layer activation statistics.
#include "quantbench/quant/method/calibration.h"

#include <algorithm>
#include <cmath>

#include "quantbench/core/error.h"

namespace qb::quant {

LayerCalibration::LayerCalibration(int64_t in_features, bool keep_xtx, int64_t max_samples)
    : in_(in_features), max_samples_(max_samples), keep_xtx_(keep_xtx) {
  QB_CHECK(in_features > 0 && in_features <= (int64_t(1) << 20), "calibration: bad in_features {}", in_features);
  QB_CHECK(max_samples >= 0, "calibration: negative max_samples {}", max_samples);
  if (keep_xtx) xtx_.assign(static_cast<size_t>(in_ * in_), 0.0);
  sum_abs_.assign(static_cast<size_t>(in_), 0.0);
  sum_sq_.assign(static_cast<size_t>(in_), 0.0);
  max_abs_.assign(static_cast<size_t>(in_), 0.0f);
}

namespace {

// g[i][j0 + j] += sum_r x[r][i] * x[r][j0 + j] for i in [i0, i0 + ni), j in [0, nj); x is rows x ld.
// Products of two floats are exact in double, so each element gets the same sum, added in the same
// row order, as a plain loop: the result does not depend on the tiling or on FMA. Cloned per ISA
// (GCC picks the clone at load time) because this is the bulk of a GPTQ calibration: 8 doubles per
// instruction with AVX-512 against 2 in the baseline x86-64 build.
__attribute__((target_clones("avx512f", "avx2", "default")))
void gram_tile(const double* x, int64_t rows, int64_t ld, int64_t i0, int64_t ni, int64_t j0, int64_t nj, double* g) {
  for (int64_t i = i0; i < i0 + ni; ++i) {
    double* gi = g + i * ld + j0;
    for (int64_t r = 0; r < rows; ++r) {
      const double xi = x[r * ld + i];
      const double* xr = x + r * ld + j0;
      for (int64_t j = 0; j < nj; ++j) gi[j] += xi * xr[j];
    }
  }
}

}  // namespace

void LayerCalibration::add(const float* x, int64_t n) {
  QB_CHECK(n >= 0, "calibration: negative row count {}", n);
  for (int64_t r = 0; r < n; ++r) {
    const float* xr = x + r * in_;
    for (int64_t j = 0; j < in_; ++j)
      QB_CHECK(std::isfinite(xr[j]), "calibration: activation row {} channel {} is not finite", count_ + r, j);
    for (int64_t j = 0; j < in_; ++j) {
      const double v = xr[j];
      sum_abs_[size_t(j)] += std::fabs(v);
      sum_sq_[size_t(j)] += v * v;
      max_abs_[size_t(j)] = std::max(max_abs_[size_t(j)], std::fabs(xr[j]));
    }
    if (num_samples() < max_samples_) samples_.insert(samples_.end(), xr, xr + in_);
  }
  count_ += n;
  if (!keep_xtx_ || n == 0) return;
  // X^T X in chunks of rows and tiles of the matrix, so each element of it is loaded once per chunk
  // rather than once per row (a row-at-a-time rank-1 update streams the whole in^2 matrix per token:
  // 19 MB per token for SmolLM2's ffn_down). Only tiles on or above the diagonal are accumulated;
  // the lower triangle is copied from the upper one at the end.
  constexpr int64_t kRows = 64, kTileI = 32, kTileJ = 128;
  std::vector<double> xd(static_cast<size_t>(std::min(n, kRows) * in_));
  for (int64_t r0 = 0; r0 < n; r0 += kRows) {
    const int64_t rows = std::min(kRows, n - r0);
    std::copy(x + r0 * in_, x + (r0 + rows) * in_, xd.begin());
    for (int64_t i0 = 0; i0 < in_; i0 += kTileI)
      for (int64_t j0 = i0; j0 < in_; j0 += kTileJ)
        gram_tile(xd.data(), rows, in_, i0, std::min(kTileI, in_ - i0), j0, std::min(kTileJ, in_ - j0), xtx_.data());
  }
  for (int64_t i = 1; i < in_; ++i)
    for (int64_t j = 0; j < i; ++j) xtx_[size_t(i * in_ + j)] = xtx_[size_t(j * in_ + i)];
}

std::vector<double> LayerCalibration::mean_abs() const {
  std::vector<double> m(sum_abs_);
  for (auto& v : m) v /= double(std::max<int64_t>(count_, 1));
  return m;
}

std::vector<double> LayerCalibration::mean_sq() const {
  std::vector<double> m(sum_sq_);
  for (auto& v : m) v /= double(std::max<int64_t>(count_, 1));
  return m;
}

double output_error(const float* w, const float* v, int64_t rows, int64_t cols, const LayerCalibration& c) {
  QB_CHECK(cols == c.in_features(), "output error: weight has {} columns, calibration {}", cols, c.in_features());
  std::vector<double> d(static_cast<size_t>(cols));
  double total = 0;
  if (c.has_xtx()) {
    const auto& h = c.xtx();
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t j = 0; j < cols; ++j) d[size_t(j)] = double(w[r * cols + j]) - v[r * cols + j];
      for (int64_t i = 0; i < cols; ++i) {
        if (d[size_t(i)] == 0) continue;
        double s = 0;
        for (int64_t j = 0; j < cols; ++j) s += h[size_t(i * cols + j)] * d[size_t(j)];
        total += d[size_t(i)] * s;
      }
    }
    return total;
  }
  QB_CHECK(c.num_samples() > 0, "output error needs X^T X or activation samples; calibration has neither");
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < cols; ++j) d[size_t(j)] = double(w[r * cols + j]) - v[r * cols + j];
    for (int64_t s = 0; s < c.num_samples(); ++s) {
      const float* x = &c.samples()[size_t(s * cols)];
      double y = 0;
      for (int64_t j = 0; j < cols; ++j) y += d[size_t(j)] * x[j];
      total += y * y;
    }
  }
  // Samples are a subset: scale to the full count so both paths estimate the same quantity.
  return total * double(c.count()) / double(c.num_samples());
}

}  // namespace qb::quant
