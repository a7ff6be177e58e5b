// Importance-weighted RTN, llama.cpp imatrix style: the importance of input column j is the mean of
// x_j^2 over the calibration activations, and each group's clipping ratio minimises
// sum_j importance_j (w_j - q_j)^2 -- the diagonal of the output error, cheap and robust when X^T X
// is not kept. (llama.cpp also refits the scale by weighted least squares; we search ratios only.)
#include <fmt/format.h>

#include "quantbench/quant/method/clip_search.h"
#include "quantbench/quant/method/method.h"

namespace qb::quant {
namespace {

class Imatrix final : public Method {
 public:
  explicit Imatrix(MethodOptions& o)
      : steps_(o.get_int("grid", 20, 1, 1000)), max_shrink_(o.get_double("max_shrink", 0.5, 0.0, 0.95)) {}
  std::string_view name() const override { return "imatrix"; }
  bool needs_calibration() const override { return true; }
  std::map<std::string, OptionValue> config() const override {
    return {{"grid", steps_}, {"max_shrink", max_shrink_}};
  }
  LayerResult apply(const LayerInput& in, const QuantLayout& l) const override {
    ErrorWeights m;
    m.kind = ErrorWeights::Kind::Diagonal;
    m.cols = in.cols;
    m.m = in.calibration->mean_sq();
    double ratio = 1;
    LayerResult r;
    r.weight =
        quantize_clip_search(in.weight, in.rows, in.cols, l, m, clip_ratios(steps_, max_shrink_), &ratio, in.pool);
    r.notes.push_back(fmt::format("imatrix clip search over {} activations: mean ratio {:.3f}",
                                  in.calibration->count(), ratio));
    return r;
  }

 private:
  int64_t steps_;
  double max_shrink_;
};

}  // namespace

void register_imatrix(MethodRegistry& reg) {
  reg.add("imatrix", [](MethodOptions& o) { return std::make_unique<Imatrix>(o); });
}

}  // namespace qb::quant
