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

void LayerCalibration::add(const float* x, int64_t n) {
  QB_CHECK(n >= 0, "calibration: negative row count {}", n);
  for (int64_t r = 0; r < n; ++r) {
    const float* xr = x + r * in_;
    for (int64_t j = 0; j < in_; ++j)
      QB_CHECK(std::isfinite(xr[j]), "calibration: activation row {} channel {} is not finite", count_, j);
    for (int64_t j = 0; j < in_; ++j) {
      const double v = xr[j];
      sum_abs_[size_t(j)] += std::fabs(v);
      sum_sq_[size_t(j)] += v * v;
      max_abs_[size_t(j)] = std::max(max_abs_[size_t(j)], std::fabs(xr[j]));
    }
    if (keep_xtx_)
      for (int64_t i = 0; i < in_; ++i) {
        const double xi = xr[i];
        if (xi == 0) continue;
        double* row = &xtx_[size_t(i * in_)];
        for (int64_t j = 0; j < in_; ++j) row[j] += xi * double(xr[j]);
      }
    if (num_samples() < max_samples_) samples_.insert(samples_.end(), xr, xr + in_);
    ++count_;
  }
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
