// GPTQ (Frantar et al. 2022), following the reference repository's fasterquant step by step so that
// an independent implementation of the paper's Algorithm 1 reproduces our codes:
//   H = 2/n sum x x^T; dead columns (H_jj = 0) get H_jj = 1 and W_:j = 0; optional act-order
//   (columns by decreasing H_jj); H += damp * mean(diag H) * I; U = upper Cholesky of H^-1; columns
//   quantized one at a time, the error (w - q) / U_jj spread over the remaining columns of the
//   block, and each block's accumulated error applied to the rest lazily (blocks of 128 columns).
// Group params are found, as in the reference, from W when a group starts -- W includes the updates
// of earlier blocks but not those made inside the current block. With static_groups all params come
// from the original W. Act-order with groups requires static_groups: our formats keep groups
// contiguous in the original column order (no per-column g_idx), which only static groups preserve.
// Everything runs in double; scales are the stored (f16/bf16-rounded) ones from the start.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include <fmt/format.h>

#include "quantbench/core/error.h"
#include "quantbench/quant/method/clip_search.h"
#include "quantbench/quant/method/linalg.h"
#include "quantbench/quant/method/method.h"

namespace qb::quant {
namespace {

constexpr int64_t kUpdateSlice = 256;  // columns per slice of the lazy block update
// The mse range search (GPTQ reference quantizer's defaults): shrink factors 1 - i / 100 for
// i < 0.8 * 100, error norm 2.4.
constexpr double kMseGrid = 100;
constexpr int kMseShrinkSteps = 80;
constexpr double kMseNorm = 2.4;

class Gptq final : public Method {
 public:
  explicit Gptq(MethodOptions& o)
      : damp_(o.get_double("damp", 0.01, 0.0, 1.0)),
        block_(o.get_int("block_size", 128, 1, 1 << 20)),
        act_order_(o.get_bool("act_order", false)),
        static_groups_(o.get_bool("static_groups", false)),
        mse_(o.get_bool("mse", false)) {}

  std::string_view name() const override { return "gptq"; }
  bool needs_calibration() const override { return true; }
  std::map<std::string, OptionValue> config() const override {
    return {{"damp", damp_},
            {"block_size", block_},
            {"act_order", act_order_},
            {"static_groups", static_groups_},
            {"mse", mse_}};
  }
  std::optional<std::string> unsupported(const QuantLayout& l) const override {
    if (!is_int_format(l.format)) return fmt::format("gptq supports int2/int3/int4/int8, not {}", format_traits(l.format).name);
    if (act_order_ && l.granularity == Granularity::Group && !static_groups_)
      return std::string("gptq: act_order with group-wise scales needs static_groups = true (groups stay contiguous; no g_idx)");
    return std::nullopt;
  }

  LayerResult apply(const LayerInput& in, const QuantLayout& l) const override {
    const int64_t rows = in.rows, n = in.cols;
    const LayerCalibration& cal = *in.calibration;
    QB_CHECK(cal.count() > 0, "gptq: calibration holds no activations");
    std::vector<double> h = calibration_gram(cal);
    for (auto& v : h) v *= 2.0 / double(cal.count());
    std::vector<double> w(in.weight, in.weight + rows * n);

    int64_t dead = 0;
    for (int64_t j = 0; j < n; ++j)
      if (h[size_t(j * n + j)] == 0) {
        ++dead;
        h[size_t(j * n + j)] = 1;
        for (int64_t r = 0; r < rows; ++r) w[size_t(r * n + j)] = 0;
      }

    QuantizedTensor q = QuantizedTensor::allocate(l, rows, n);
    const int bits = format_traits(l.format).bits;
    const int maxq = (1 << bits) - 1;
    const int64_t g = q.group_cols();
    const bool grouped = l.granularity == Granularity::Group;
    // Params of one row over columns [c0, c1) of a (permuted) working matrix, stored on q. The range
    // is the values' min/max (the reference's default), or with mse the shrunk range p * [lo, hi],
    // p = 1, 0.99, .. 0.21, whose grid gives the least sum |q(w) - w|^2.4 over the span (the reference
    // quantizer's mse option, with its defaults: grid 100, maxshrink 0.8, norm 2.4).
    auto find_params = [&](const std::vector<double>& m, int64_t r, int64_t c0, int64_t c1, int64_t group) {
      double lo = 0, hi = 0;
      for (int64_t j = c0; j < c1; ++j) {
        lo = std::min(lo, m[size_t(r * n + j)]);
        hi = std::max(hi, m[size_t(r * n + j)]);
      }
      GroupParams best = int_params_from_range(bits, l.asymmetric, float(lo), float(hi), l.scale_type);
      if (mse_) {
        double best_err = std::numeric_limits<double>::infinity();
        for (int i = 0; i < kMseShrinkSteps; ++i) {
          const double p = 1.0 - double(i) / kMseGrid;
          const GroupParams gp = int_params_from_range(bits, l.asymmetric, float(p * lo), float(p * hi), l.scale_type);
          double err = 0;
          for (int64_t j = c0; j < c1; ++j) {
            const float x = float(m[size_t(r * n + j)]);
            err += std::pow(std::fabs(double(decode_code(l, encode_value(l, x, gp), gp)) - double(x)), kMseNorm);
          }
          if (err < best_err) { best_err = err; best = gp; }
        }
      }
      q.set_params(r, group, best);
    };
    if (!grouped)
      for (int64_t r = 0; r < rows; ++r) find_params(w, r, 0, n, 0);
    else if (static_groups_)
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t k = 0; k < q.groups_per_row(); ++k) find_params(w, r, k * g, std::min(n, (k + 1) * g), k);

    std::vector<int64_t> perm(static_cast<size_t>(n));
    std::iota(perm.begin(), perm.end(), 0);
    if (act_order_) {
      std::stable_sort(perm.begin(), perm.end(),
                       [&](int64_t a, int64_t b) { return h[size_t(a * n + a)] > h[size_t(b * n + b)]; });
      std::vector<double> wp(w.size()), hp(h.size());
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t j = 0; j < n; ++j) wp[size_t(r * n + j)] = w[size_t(r * n + perm[size_t(j)])];
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < n; ++j) hp[size_t(i * n + j)] = h[size_t(perm[size_t(i)] * n + perm[size_t(j)])];
      w.swap(wp);
      h.swap(hp);
    }

    double mean_diag = 0;
    for (int64_t j = 0; j < n; ++j) mean_diag += h[size_t(j * n + j)];
    const double lambda = damp_ * mean_diag / double(n);
    for (int64_t j = 0; j < n; ++j) h[size_t(j * n + j)] += lambda;
    std::vector<double> u;
    QB_CHECK(inverse_cholesky_upper(h, n, u, in.pool),
             "gptq: the Hessian is not positive definite after dampening (damp = {}); raise damp", damp_);

    // Rows are independent given U (each row's errors only move its own later columns), so the
    // sweep runs on contiguous row ranges in parallel; every row sees the same operations in the same
    // order whatever the thread count.
    auto sweep = [&](int64_t r0, int64_t r1) {
      const int64_t nr = r1 - r0;
      std::vector<double> w1, err1;
      for (int64_t i1 = 0; i1 < n; i1 += block_) {
        const int64_t i2 = std::min(i1 + block_, n), cnt = i2 - i1;
        w1.assign(static_cast<size_t>(nr * cnt), 0.0);
        err1.assign(static_cast<size_t>(nr * cnt), 0.0);
        for (int64_t r = 0; r < nr; ++r)
          for (int64_t j = 0; j < cnt; ++j) w1[size_t(r * cnt + j)] = w[size_t((r0 + r) * n + i1 + j)];
        for (int64_t i = 0; i < cnt; ++i) {
          const int64_t col = i1 + i, orig = perm[size_t(col)];
          const int64_t group = grouped ? orig / g : 0;
          if (grouped && !static_groups_ && col % g == 0)
            for (int64_t r = r0; r < r1; ++r) find_params(w, r, col, std::min(n, col + g), group);
          const double d = u[size_t(col * n + col)];
          for (int64_t r = 0; r < nr; ++r) {
            const GroupParams p = q.params(r0 + r, group);
            const double x = w1[size_t(r * cnt + i)];
            const double code = std::clamp(std::nearbyint(x / double(p.scale)) + p.zero, 0.0, double(maxq));
            q.set_code(r0 + r, orig, uint8_t(code));
            const double e = (x - (code - p.zero) * double(p.scale)) / d;
            sub_scaled(&w1[size_t(r * cnt + i)], &u[size_t(col * n + i1 + i)], e, cnt - i);
            err1[size_t(r * cnt + i)] = e;
          }
        }
        // W[:, i2:] -= Err1 U[i1:i2, i2:], row by row of U so every inner loop is contiguous (a dot
        // product down U's columns missed the cache at every step for wide layers), in column slices
        // whose rows of U (128 x 256 doubles, 256 KB) stay in L2 while every row of W passes (the
        // whole width, 1.5 MB at n = 1536, was read from L3 once per row). Each element still gets
        // its updates in the same order: the same bits.
        for (int64_t j0 = i2; j0 < n; j0 += kUpdateSlice) {
          const int64_t len = std::min(kUpdateSlice, n - j0);
          for (int64_t r = 0; r < nr; ++r) {
            double* wr = &w[size_t((r0 + r) * n)];
            for (int64_t k = 0; k < cnt; ++k)
              sub_scaled(wr + j0, &u[size_t((i1 + k) * n + j0)], err1[size_t(r * cnt + k)], len);
          }
        }
      }
    };
    if (in.pool) in.pool->parallel_for(size_t(rows), [&](size_t b, size_t e, int) { sweep(int64_t(b), int64_t(e)); });
    else sweep(0, rows);

    LayerResult res;
    res.weight = std::move(q);
    res.notes.push_back(fmt::format("gptq: {} activations, damp {} (lambda {:.4g}), block {}, {} dead columns{}{}{}",
                                    cal.count(), damp_, lambda, block_, dead, act_order_ ? ", act_order" : "",
                                    static_groups_ ? ", static_groups" : "", mse_ ? ", mse range search" : ""));
    return res;
  }

 private:
  double damp_;
  int64_t block_;
  bool act_order_, static_groups_, mse_;
};

}  // namespace

void register_gptq(MethodRegistry& reg) {
  reg.add("gptq", [](MethodOptions& o) { return std::make_unique<Gptq>(o); });
}

}  // namespace qb::quant
