// See rope.h.
#include "quantbench/runtime/cpu/rope.h"

#include <cmath>

namespace qb::runtime::cpu {

void rope_angles(const RopeParams& p, int64_t pos, float* cos_out, float* sin_out) {
  const int64_t half = p.n_rot / 2;
  for (int64_t i = 0; i < half; ++i) {
    double inv_freq = std::pow(p.theta, -2.0 * double(i) / double(p.n_rot));
    if (p.freq_factors) inv_freq /= double(p.freq_factors[i]);
    const double a = double(pos) * p.position_scale * inv_freq;
    cos_out[i] = float(std::cos(a));
    sin_out[i] = float(std::sin(a));
  }
}

void rope_rotate(model::RopeStyle style, int64_t n_rot, const float* cos_v, const float* sin_v, float* head) {
  const int64_t half = n_rot / 2;
  for (int64_t i = 0; i < half; ++i) {
    const int64_t a = style == model::RopeStyle::Normal ? 2 * i : i;
    const int64_t b = style == model::RopeStyle::Normal ? 2 * i + 1 : i + half;
    const float x0 = head[a], x1 = head[b];
    head[a] = x0 * cos_v[i] - x1 * sin_v[i];
    head[b] = x0 * sin_v[i] + x1 * cos_v[i];
  }
}

}  // namespace qb::runtime::cpu
