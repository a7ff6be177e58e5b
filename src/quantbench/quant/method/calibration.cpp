// Streaming accumulation of per-layer activation statistics.
#include "quantbench/quant/method/calibration.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "quantbench/core/error.h"
#include "quantbench/runtime/cpu/gemm_f32.h"

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

void LayerCalibration::add(const float* x, int64_t n, ThreadPool* pool) {
  QB_CHECK(n >= 0, "calibration: negative row count {}", n);
  // One cheap pass decides whether anything is non-finite; only then is the culprit located (a
  // check with a formatted message per element kept the sums below from vectorizing).
  bool finite = true;
  for (int64_t i = 0; i < n * in_; ++i) finite &= std::isfinite(x[i]);
  if (!finite)
    for (int64_t i = 0; i < n * in_; ++i)
      QB_CHECK(std::isfinite(x[i]), "calibration: activation row {} channel {} is not finite", count_ + i / in_, i % in_);
  // Per-channel sums over column ranges in parallel, each column's rows added in order.
  auto stats = [&](int64_t j0, int64_t j1) {
    for (int64_t r = 0; r < n; ++r) {
      const float* xr = x + r * in_;
      for (int64_t j = j0; j < j1; ++j) {
        const double v = xr[j];
        sum_abs_[size_t(j)] += std::fabs(v);
        sum_sq_[size_t(j)] += v * v;
        max_abs_[size_t(j)] = std::max(max_abs_[size_t(j)], std::fabs(xr[j]));
      }
    }
  };
  if (pool) pool->parallel_for(size_t(in_), [&](size_t b, size_t e, int) { stats(int64_t(b), int64_t(e)); });
  else stats(0, in_);
  for (int64_t r = 0; r < n && num_samples() < max_samples_; ++r) samples_.insert(samples_.end(), x + r * in_, x + (r + 1) * in_);
  count_ += n;
  if (!keep_xtx_ || n == 0) return;
  // Only tiles on or above the diagonal are accumulated; the lower triangle is copied from the upper
  // one at the end.
  runtime::cpu::GemmOperand xs;
  xs.p = x;
  xs.row_stride = in_;
  std::optional<ThreadPool> own;
  if (!pool) pool = &own.emplace(1);
  runtime::cpu::gemm_f32_tn(n, in_, in_, xs, xs, xtx_.data(), in_, /*upper_only=*/true, *pool);
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
