// See rmsnorm.h.
#include "quantbench/runtime/cpu/rmsnorm.h"

#include <cmath>

namespace qb::runtime::cpu {

void rmsnorm(const float* x, const float* w, float* y, int64_t n, float eps) {
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += double(x[i]) * x[i];
  const float r = float(1.0 / std::sqrt(ss / double(n) + double(eps)));
  for (int64_t i = 0; i < n; ++i) y[i] = w ? (x[i] * r) * w[i] : x[i] * r;
}

}  // namespace qb::runtime::cpu
