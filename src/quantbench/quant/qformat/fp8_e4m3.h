// FP8 E4M3 (OCP "fn": max 448, no infinities) weights with one f32 scale per tensor or per output row:
// w ~ e4m3(q) * s with s = absmax / 448, so the largest weight maps to the largest finite code.
#pragma once
#include <cstdint>

#include "quantbench/quant/qformat/int_format.h"

namespace qb::quant {

GroupParams fp8_params(const float* w, int64_t n, float clip);
// Exact round-to-nearest-even encoding, saturating at +-448; the same result as core's
// f32_to_f8e4m3 (tested over many values) but by binary search instead of a scan of all codes.
uint8_t fp8_encode_value(float x);
uint8_t fp8_encode(float w, GroupParams p);
float fp8_decode(uint8_t q, GroupParams p);

}  // namespace qb::quant
