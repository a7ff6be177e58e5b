// SmoothQuant (Xiao et al. 2023) scale migration for W8A8: activation outliers are moved into the
// weights with s_j = max|X_j|^alpha / max|W_:j|^(1-alpha) (both clamped at 1e-5 as the reference
// does), so X W^T = (X diag(s)^-1)(W diag(s))^T exactly while per-token activation quantization sees
// a flatter X. The weights W diag(s) are quantized here (8-bit); 1/s is folded by the model into the
// op that produces X; activations are quantized at run time.
#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "quantbench/quant/method/method.h"

namespace qb::quant {
namespace {

class SmoothQuant final : public Method {
 public:
  explicit SmoothQuant(MethodOptions& o) : alpha_(o.get_double("alpha", 0.5, 0.0, 1.0)) {}
  std::string_view name() const override { return "smoothquant"; }
  bool needs_calibration() const override { return true; }
  std::map<std::string, OptionValue> config() const override { return {{"alpha", alpha_}}; }
  std::optional<std::string> unsupported(const QuantLayout& l) const override {
    if (format_traits(l.format).bits != 8 || l.format == QFormat::NF4)
      return fmt::format("smoothquant is for W8A8: weights must be int8 or fp8_e4m3, not {}", format_traits(l.format).name);
    return std::nullopt;
  }

  LayerResult apply(const LayerInput& in, const QuantLayout& l) const override {
    const int64_t rows = in.rows, n = in.cols;
    const auto& amax = in.calibration->max_abs();
    std::vector<float> s(static_cast<size_t>(n)), ws(static_cast<size_t>(rows * n));
    for (int64_t j = 0; j < n; ++j) {
      double wmax = 0;
      for (int64_t r = 0; r < rows; ++r) wmax = std::max(wmax, double(std::fabs(in.weight[r * n + j])));
      const double a = std::max(double(amax[size_t(j)]), 1e-5);
      s[size_t(j)] = float(std::max(std::pow(a, alpha_) / std::pow(std::max(wmax, 1e-5), 1.0 - alpha_), 1e-5));
    }
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < n; ++j) ws[size_t(r * n + j)] = in.weight[r * n + j] * s[size_t(j)];
    LayerResult res;
    res.weight = quantize_rtn(ws.data(), rows, n, l);
    res.input_scales = std::move(s);
    res.notes.push_back(fmt::format("smoothquant: alpha {}", alpha_));
    return res;
  }

 private:
  double alpha_;
};

}  // namespace

void register_smoothquant(MethodRegistry& reg) {
  reg.add("smoothquant", [](MethodOptions& o) { return std::make_unique<SmoothQuant>(o); });
}

}  // namespace qb::quant
