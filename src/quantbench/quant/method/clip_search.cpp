// Per-group clipping search; see clip_search.h.
#include "quantbench/quant/method/clip_search.h"

#include <algorithm>
#include <limits>

#include "quantbench/core/error.h"
#include "quantbench/quant/method/linalg.h"

namespace qb::quant {

double ErrorWeights::eval(const double* d, int64_t c0, int64_t n) const {
  double e = 0;
  switch (kind) {
    case Kind::Identity:
      for (int64_t i = 0; i < n; ++i) e += d[i] * d[i];
      break;
    case Kind::Diagonal:
      for (int64_t i = 0; i < n; ++i) e += m[size_t(c0 + i)] * d[i] * d[i];
      break;
    case Kind::Full:
      for (int64_t i = 0; i < n; ++i) {
        if (d[i] == 0) continue;
        e += d[i] * dot(&m[size_t((c0 + i) * cols + c0)], d, n);  // the bulk of AWQ's and the clip searches' time
      }
      break;
  }
  return e;
}

std::string ErrorWeights::describe() const {
  switch (kind) {
    case Kind::Identity: return "weight error";
    case Kind::Diagonal: return "importance-weighted weight error";
    case Kind::Full: return "output error on calibration activations";
  }
  return "?";
}

std::vector<double> calibration_gram(const LayerCalibration& c) {
  if (c.has_xtx()) return c.xtx();
  QB_CHECK(c.num_samples() > 0, "calibration holds neither X^T X nor activation samples");
  const int64_t n = c.in_features();
  std::vector<double> g(static_cast<size_t>(n * n), 0.0);
  for (int64_t s = 0; s < c.num_samples(); ++s) {
    const float* x = &c.samples()[size_t(s * n)];
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) g[size_t(i * n + j)] += double(x[i]) * x[j];
  }
  // Scale to the full row count so it estimates the same sum as an accumulated X^T X.
  for (auto& v : g) v *= double(c.count()) / double(c.num_samples());
  return g;
}

ErrorWeights output_error_weights(const LayerCalibration* c, int64_t cols) {
  ErrorWeights w;
  w.cols = cols;
  if (!c) return w;
  w.kind = ErrorWeights::Kind::Full;
  w.m = calibration_gram(*c);
  return w;
}

std::vector<float> clip_ratios(int64_t steps, double max_shrink) {
  std::vector<float> r;
  for (int64_t i = 0; i < steps && double(i) / double(steps) < max_shrink; ++i)
    r.push_back(float(1.0 - double(i) / double(steps)));
  if (r.empty()) r.push_back(1.0f);
  return r;
}

namespace {

// Weight change of quantizing w[0..n) with params p, and its weighted error.
double group_error(const QuantLayout& l, const float* w, int64_t c0, int64_t n, GroupParams p,
                   const ErrorWeights& m, std::vector<double>& d) {
  for (int64_t i = 0; i < n; ++i) d[size_t(i)] = double(w[i]) - decode_code(l, encode_value(l, w[i], p), p);
  return m.eval(d.data(), c0, n);
}

}  // namespace

QuantizedTensor quantize_clip_search(const float* w, int64_t rows, int64_t cols, const QuantLayout& l,
                                     const ErrorWeights& m, const std::vector<float>& ratios,
                                     double* mean_ratio, ThreadPool* pool) {
  QB_CHECK(!ratios.empty(), "clip search needs at least one ratio");
  QB_CHECK(m.cols == cols, "clip search: error weights for {} columns, weight has {}", m.cols, cols);
  std::vector<double> d(static_cast<size_t>(cols));
  if (l.granularity == Granularity::Tensor) {
    float best_r = ratios[0];
    double best = std::numeric_limits<double>::infinity();
    for (float r : ratios) {
      const GroupParams p = choose_params(l, w, rows * cols, r);
      double e = 0;
      for (int64_t row = 0; row < rows; ++row) e += group_error(l, w + row * cols, 0, cols, p, m, d);
      if (e < best) { best = e; best_r = r; }
    }
    if (mean_ratio) *mean_ratio = best_r;
    return quantize_rtn(w, rows, cols, l, best_r);
  }
  QuantizedTensor q = QuantizedTensor::allocate(l, rows, cols);
  const int64_t g = q.group_cols();
  // Rows are independent (each writes only its own params and codes); the per-row ratio sums are
  // added in row order afterwards, so the result does not depend on the pool.
  std::vector<double> row_ratio(static_cast<size_t>(rows));
  auto search_rows = [&](int64_t r0, int64_t r1) {
    std::vector<double> dr(static_cast<size_t>(cols));
    for (int64_t row = r0; row < r1; ++row) {
      const float* wr = w + row * cols;
      double sum = 0;
      for (int64_t k = 0; k < q.groups_per_row(); ++k) {
        const int64_t c0 = k * g, n = std::min(g, cols - c0);
        GroupParams best_p{};
        float best_r = ratios[0];
        double best = std::numeric_limits<double>::infinity();
        for (float r : ratios) {
          const GroupParams p = choose_params(l, wr + c0, n, r);
          const double e = group_error(l, wr + c0, c0, n, p, m, dr);
          if (e < best) { best = e; best_p = p; best_r = r; }
        }
        q.set_params(row, k, best_p);
        sum += best_r;
      }
      encode_span(q, row, 0, cols, wr);
      row_ratio[size_t(row)] = sum;
    }
  };
  if (pool) pool->parallel_for(size_t(rows), [&](size_t b, size_t e, int) { search_rows(int64_t(b), int64_t(e)); });
  else search_rows(0, rows);
  double ratio_sum = 0;
  for (double v : row_ratio) ratio_sum += v;
  if (mean_ratio) *mean_ratio = ratio_sum / double(rows * q.groups_per_row());
  return q;
}

}  // namespace qb::quant
