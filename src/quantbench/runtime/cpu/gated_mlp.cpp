// See gated_mlp.h. Computed in double then rounded once: the reference the fast paths are held to.
#include "quantbench/runtime/cpu/gated_mlp.h"

#include <cmath>

namespace qb::runtime::cpu {

void gated_activation(model::Activation act, const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const double g = gate[i];
    double a;
    if (act == model::Activation::SiLU) {
      a = g / (1.0 + std::exp(-g));
    } else {
      const double c = 0.79788456080286535588;  // sqrt(2/pi)
      a = 0.5 * g * (1.0 + std::tanh(c * (g + 0.044715 * g * g * g)));
    }
    out[i] = float(a * double(up[i]));
  }
}

}  // namespace qb::runtime::cpu
