// RTN: round to nearest on the format's min/max grid, per group. The baseline every other method is
// compared against; no options, no calibration.
#include <fmt/format.h>

#include "quantbench/quant/method/method.h"

namespace qb::quant {
namespace {

class Rtn final : public Method {
 public:
  std::string_view name() const override { return "rtn"; }
  LayerResult apply(const LayerInput& in, const QuantLayout& l) const override {
    LayerResult r;
    r.weight = quantize_rtn(in.weight, in.rows, in.cols, l);
    return r;
  }
};

}  // namespace

void register_rtn(MethodRegistry& reg) {
  reg.add("rtn", [](MethodOptions&) { return std::make_unique<Rtn>(); });
}

}  // namespace qb::quant
