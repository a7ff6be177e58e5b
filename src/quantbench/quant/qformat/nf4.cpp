// NF4 codebook and nearest-level encoding. The table is the published one (so files interoperate with
// bitsandbytes); tests rebuild it from normal quantiles to check it was transcribed right.
#include "quantbench/quant/qformat/nf4.h"

#include <algorithm>
#include <cmath>

#include "quantbench/core/error.h"

namespace qb::quant {

const std::array<float, 16>& nf4_codebook() {
  static constexpr std::array<float, 16> kCodebook{
      -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
      -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
      0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
      0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f};
  return kCodebook;
}

GroupParams nf4_params(const float* w, int64_t n, float clip, ScaleType t) {
  QB_CHECK(clip > 0 && clip <= 1, "clip ratio {} is outside (0, 1]", clip);
  float a = 0;
  for (int64_t i = 0; i < n; ++i) {
    QB_CHECK(std::isfinite(w[i]), "weight {} of a group is not finite ({})", i, w[i]);
    a = std::max(a, std::fabs(w[i]));
  }
  GroupParams p;
  p.scale = round_scale_up(a > 0 ? a * clip : 1.0f, t);
  return p;
}

uint8_t nf4_encode(float w, GroupParams p) {
  const auto& cb = nf4_codebook();
  const float x = w / p.scale;
  // Levels are sorted: find the first level >= x, then pick the nearer neighbour (ties go down).
  const auto it = std::lower_bound(cb.begin(), cb.end(), x);
  if (it == cb.begin()) return 0;
  if (it == cb.end()) return 15;
  const int hi = int(it - cb.begin());
  return uint8_t((cb[hi] - x) < (x - cb[hi - 1]) ? hi : hi - 1);
}

}  // namespace qb::quant
