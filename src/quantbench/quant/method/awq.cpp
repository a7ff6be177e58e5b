// AWQ (Lin et al. 2023): salient input channels are protected by scaling them up before quantization.
// s_j = mean|x_j|^alpha (normalised so max(s)*min(s) = 1, as the reference does), alpha from a grid
// in [0, 1) chosen to minimise the output error ||W X - (Q(W diag s) diag(s)^-1) X|| on calibration
// activations; alpha = 0 is plain RTN, so the search never does worse than RTN on its own data.
// Then, optionally, the per-group clipping search on the scaled weights against the scaled inputs.
// The result quantizes W diag(s); the model must fold 1/s into the op that feeds this layer, so the
// scales are returned, not applied anywhere else.
#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include <fmt/format.h>

#include "quantbench/quant/method/clip_search.h"
#include "quantbench/quant/method/method.h"
#include "quantbench/runtime/cpu/gemm_f32.h"

namespace qb::quant {
namespace {

class Awq final : public Method {
 public:
  explicit Awq(MethodOptions& o)
      : grid_(o.get_int("grid", 20, 1, 1000)),
        clip_(o.get_bool("clip", true)),
        clip_grid_(o.get_int("clip_grid", 20, 1, 1000)),
        max_shrink_(o.get_double("max_shrink", 0.5, 0.0, 0.95)) {}

  std::string_view name() const override { return "awq"; }
  bool needs_calibration() const override { return true; }
  std::map<std::string, OptionValue> config() const override {
    return {{"grid", grid_}, {"clip", clip_}, {"clip_grid", clip_grid_}, {"max_shrink", max_shrink_}};
  }

  LayerResult apply(const LayerInput& in, const QuantLayout& l) const override {
    const int64_t rows = in.rows, n = in.cols;
    const auto xmean = in.calibration->mean_abs();
    ErrorWeights out = output_error_weights(in.calibration, n);
    std::vector<float> s(static_cast<size_t>(n)), best_s(static_cast<size_t>(n), 1.0f), ws(static_cast<size_t>(rows * n)), deq(static_cast<size_t>(rows * n));
    // Each alpha's output error E = sum_r d_r^T H d_r (d_r: row r's weight change, H = X^T X) as one
    // f32 GEMM G = D H and sum_{r,j} G[r][j] D[r][j] in double: the row-by-row d^T H d in double read
    // all of H (2.6 MB at n = 576, 19 MB at 1536) from L3 for every row, about 2 GMAC/s, and took
    // most of an AWQ run (over 25 minutes on SmolLM2-135M). f32 products are far finer than the
    // differences between alphas that the search compares.
    const std::vector<float> hf(out.m.begin(), out.m.end());
    std::vector<float> dmat(static_cast<size_t>(rows * n)), dh(static_cast<size_t>(rows * n));
    std::vector<double> row_err(static_cast<size_t>(rows));
    std::optional<ThreadPool> own_pool;
    ThreadPool& pool = in.pool ? *in.pool : own_pool.emplace(1);
    auto for_rows = [&](auto&& fn) {
      pool.parallel_for(size_t(rows), [&](size_t b, size_t e, int) {
        for (size_t r = b; r < e; ++r) fn(int64_t(r));
      });
    };
    double best = std::numeric_limits<double>::infinity(), best_alpha = 0;
    for (int64_t i = 0; i < grid_; ++i) {
      const double alpha = double(i) / double(grid_);
      double smax = 0, smin = std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j < n; ++j) {
        s[size_t(j)] = float(std::max(std::pow(xmean[size_t(j)], alpha), 1e-4));
        smax = std::max(smax, double(s[size_t(j)]));
        smin = std::min(smin, double(s[size_t(j)]));
      }
      const double norm = std::sqrt(smax * smin);
      for (auto& v : s) v = float(v / norm);
      scale_columns(in.weight, rows, n, s, ws);
      dequantize(quantize_rtn(ws.data(), rows, n, l), deq.data());
      for_rows([&](int64_t r) {
        for (int64_t j = 0; j < n; ++j)
          dmat[size_t(r * n + j)] =
              float(double(in.weight[r * n + j]) - double(deq[size_t(r * n + j)]) / s[size_t(j)]);
      });
      // G(r, j) = sum_c D[r][c] H[c][j]: gemm_f32's A(c, r) = D[r][c], B(c, j) = H[c][j]. Its result
      // does not depend on the pool's size, and the row errors are summed in row order.
      runtime::cpu::gemm_f32_tn(n, rows, n, runtime::cpu::GemmOperand{dmat.data(), 1, n},
                                runtime::cpu::GemmOperand{hf.data(), n, 1}, dh.data(), n, false, pool,
                                /*accumulate=*/false);
      for_rows([&](int64_t r) {
        double e = 0;
        for (int64_t j = 0; j < n; ++j) e += double(dh[size_t(r * n + j)]) * double(dmat[size_t(r * n + j)]);
        row_err[size_t(r)] = e;
      });
      double e = 0;
      for (double v : row_err) e += v;
      if (e < best) { best = e; best_alpha = alpha; best_s = s; }
    }
    scale_columns(in.weight, rows, n, best_s, ws);
    LayerResult res;
    res.notes.push_back(fmt::format("awq: alpha {:.2f} over {} activations", best_alpha, in.calibration->count()));
    if (clip_) {
      // Inputs of the scaled layer are x / s, so its output-error matrix is S^-1 X^T X S^-1.
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < n; ++j) out.m[size_t(i * n + j)] /= double(best_s[size_t(i)]) * best_s[size_t(j)];
      double ratio = 1;
      res.weight = quantize_clip_search(ws.data(), rows, n, l, out, clip_ratios(clip_grid_, max_shrink_), &ratio,
                                       in.pool);
      res.notes.push_back(fmt::format("awq clip search: mean ratio {:.3f}", ratio));
    } else {
      res.weight = quantize_rtn(ws.data(), rows, n, l);
    }
    res.input_scales = best_s;
    return res;
  }

 private:
  static void scale_columns(const float* w, int64_t rows, int64_t n, const std::vector<float>& s, std::vector<float>& out) {
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < n; ++j) out[size_t(r * n + j)] = w[r * n + j] * s[size_t(j)];
  }

  int64_t grid_;
  bool clip_;
  int64_t clip_grid_;
  double max_shrink_;
};

}  // namespace

void register_awq(MethodRegistry& reg) {
  reg.add("awq", [](MethodOptions& o) { return std::make_unique<Awq>(o); });
}

}  // namespace qb::quant
