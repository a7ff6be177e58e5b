// FP8 E4M3 encoding by binary search over the 127 non-negative finite codes, which increase with their
// bit pattern; the value table is built once from core's exact decoder and never changes.
#include "quantbench/quant/qformat/fp8_e4m3.h"

#include <algorithm>
#include <array>
#include <cmath>

#include "quantbench/core/dtype.h"
#include "quantbench/core/error.h"

namespace qb::quant {
namespace {

const std::array<float, 256>& e4m3_values() {
  static const std::array<float, 256> kValues = [] {
    std::array<float, 256> v{};
    for (int c = 0; c < 256; ++c) v[size_t(c)] = f8e4m3_to_f32(uint8_t(c));
    return v;
  }();
  return kValues;
}

}  // namespace

GroupParams fp8_params(const float* w, int64_t n, float clip) {
  QB_CHECK(clip > 0 && clip <= 1, "clip ratio {} is outside (0, 1]", clip);
  float a = 0;
  for (int64_t i = 0; i < n; ++i) {
    QB_CHECK(std::isfinite(w[i]), "weight {} is not finite ({})", i, w[i]);
    a = std::max(a, std::fabs(w[i]));
  }
  GroupParams p;
  p.scale = a > 0 ? a * clip / 448.0f : 1.0f;
  return p;
}

uint8_t fp8_encode_value(float x) {
  if (std::isnan(x)) return 0x7f;
  const uint8_t sign = std::signbit(x) ? 0x80 : 0;
  const float a = std::fabs(x);
  if (a >= 448.0f) return sign | 0x7e;
  const auto& v = e4m3_values();
  // Largest code c in [0, 0x7e] with v[c] <= a.
  int lo = 0, hi = 0x7e;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (v[size_t(mid)] <= a) lo = mid; else hi = mid - 1;
  }
  int c = lo;
  if (c < 0x7e) {
    const float dn = a - v[size_t(c)], up = v[size_t(c + 1)] - a;
    if (up < dn || (up == dn && (c & 1))) c = c + 1;
  }
  return uint8_t(sign | c);
}

uint8_t fp8_encode(float w, GroupParams p) { return fp8_encode_value(w / p.scale); }

float fp8_decode(uint8_t q, GroupParams p) { return e4m3_values()[q] * p.scale; }

}  // namespace qb::quant
