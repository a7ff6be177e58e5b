// RTN with a clipping search: per group, the range is shrunk by the grid ratio that minimises the
// layer's output error on calibration activations (||W X - Q(W) X||, through X^T X), or the plain
// weight error when no calibration was given.
#include <fmt/format.h>

#include "quantbench/quant/method/clip_search.h"
#include "quantbench/quant/method/method.h"

namespace qb::quant {
namespace {

class RtnClip final : public Method {
 public:
  explicit RtnClip(MethodOptions& o)
      : steps_(o.get_int("grid", 20, 1, 1000)), max_shrink_(o.get_double("max_shrink", 0.5, 0.0, 0.95)) {}
  std::string_view name() const override { return "rtn_clip"; }
  std::map<std::string, OptionValue> config() const override {
    return {{"grid", steps_}, {"max_shrink", max_shrink_}};
  }
  LayerResult apply(const LayerInput& in, const QuantLayout& l) const override {
    const ErrorWeights m = output_error_weights(in.calibration, in.cols);
    double ratio = 1;
    LayerResult r;
    r.weight =
        quantize_clip_search(in.weight, in.rows, in.cols, l, m, clip_ratios(steps_, max_shrink_), &ratio, in.pool);
    r.notes.push_back(fmt::format("clip search on {}: mean ratio {:.3f}", m.describe(), ratio));
    return r;
  }

 private:
  int64_t steps_;
  double max_shrink_;
};

}  // namespace

void register_rtn_clip(MethodRegistry& reg) {
  reg.add("rtn_clip", [](MethodOptions& o) { return std::make_unique<RtnClip>(o); });
}

}  // namespace qb::quant
