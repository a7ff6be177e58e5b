// INTk (k = 2, 3, 4, 8) codes on a uniform grid: w ~ (q - z) * s with q in [0, 2^k - 1].
// Symmetric: s = 2*absmax / (2^k - 1) and z = 2^(k-1) implicit (not stored) -- the GPTQ reference's
// grid, which uses all 2^k levels ([-2^(k-1), 2^(k-1) - 1]) and still bounds |w - q| by s/2 because
// +absmax lands exactly half a step above the top level. Asymmetric: the range is [min(w,0), max(w,0)],
// s = range / (2^k - 1), z = round(-min/s) stored per group. Stored scales are rounded *up* to the
// scale dtype so that the rounded grid still covers the group (the s/2 bound survives storage).
#pragma once
#include <cstdint>

#include "quantbench/quant/qformat/format_traits.h"

namespace qb::quant {

struct GroupParams {
  float scale = 1.0f;  // exactly representable in the layout's scale dtype
  int zero = 0;        // integer zero point (INTk); 0 for NF4/FP8
};

// Smallest value representable in `t` that is >= s (s finite, > 0).
float round_scale_up(float s, ScaleType t);

// Grid parameters for n weights with the range shrunk by `clip` (0 < clip <= 1).
GroupParams int_params(int bits, bool asymmetric, const float* w, int64_t n, float clip, ScaleType t);
// Same from a known range (min <= 0 <= max after widening); what GPTQ and the searches call.
GroupParams int_params_from_range(int bits, bool asymmetric, float lo, float hi, ScaleType t);

inline int int_sym_zero(int bits) { return 1 << (bits - 1); }

// Nearest code (round half to even, as torch.round and numpy.round do), clamped to the grid.
uint8_t int_encode(int bits, float w, GroupParams p);
inline float int_decode(uint8_t q, GroupParams p) { return float(int(q) - p.zero) * p.scale; }

}  // namespace qb::quant
