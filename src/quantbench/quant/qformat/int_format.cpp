// INTk grids; see int_format.h for why the symmetric grid is GPTQ's rather than absmax/(2^(k-1)-1).
#include "quantbench/quant/qformat/int_format.h"

#include <algorithm>
#include <cmath>

#include "quantbench/core/dtype.h"
#include "quantbench/core/error.h"

namespace qb::quant {

float round_scale_up(float s, ScaleType t) {
  QB_CHECK(std::isfinite(s) && s > 0, "scale {} is not a positive finite number", s);
  switch (t) {
    case ScaleType::F32: return s;
    case ScaleType::F16: {
      uint16_t h = f32_to_f16(s);
      if (f16_to_f32(h) < s) ++h;  // positive halfs order like their bit patterns
      const float r = f16_to_f32(h);
      QB_CHECK(std::isfinite(r) && r > 0, "scale {} does not fit in f16", s);
      return r;
    }
    case ScaleType::BF16: {
      uint16_t h = f32_to_bf16(s);
      if (bf16_to_f32(h) < s) ++h;
      const float r = bf16_to_f32(h);
      QB_CHECK(std::isfinite(r) && r > 0, "scale {} does not fit in bf16", s);
      return r;
    }
  }
  return s;
}

GroupParams int_params_from_range(int bits, bool asymmetric, float lo, float hi, ScaleType t) {
  const int maxq = (1 << bits) - 1;
  lo = std::min(lo, 0.0f);
  hi = std::max(hi, 0.0f);
  if (!asymmetric) {
    const float a = std::max(-lo, hi);
    lo = -a;
    hi = a;
  }
  if (lo == 0.0f && hi == 0.0f) {  // all-zero group: any grid represents it exactly (GPTQ uses +-1)
    lo = -1.0f;
    hi = 1.0f;
  }
  GroupParams p;
  p.scale = round_scale_up((hi - lo) / float(maxq), t);
  p.zero = asymmetric ? std::clamp(int(std::nearbyint(-lo / p.scale)), 0, maxq) : int_sym_zero(bits);
  return p;
}

GroupParams int_params(int bits, bool asymmetric, const float* w, int64_t n, float clip, ScaleType t) {
  QB_CHECK(clip > 0 && clip <= 1, "clip ratio {} is outside (0, 1]", clip);
  float lo = 0, hi = 0;
  for (int64_t i = 0; i < n; ++i) {
    QB_CHECK(std::isfinite(w[i]), "weight {} of a group is not finite ({})", i, w[i]);
    lo = std::min(lo, w[i]);
    hi = std::max(hi, w[i]);
  }
  return int_params_from_range(bits, asymmetric, lo * clip, hi * clip, t);
}

uint8_t int_encode(int bits, float w, GroupParams p) {
  const int maxq = (1 << bits) - 1;
  const float q = std::nearbyint(w / p.scale) + float(p.zero);
  return uint8_t(std::clamp(q, 0.0f, float(maxq)));
}

}  // namespace qb::quant
