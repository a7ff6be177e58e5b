// NF4 (QLoRA, Dettmers et al. 2023): 16 levels placed at normal quantiles, normalised to [-1, 1], with
// an exact zero; w ~ absmax * codebook[q], one absmax per group. Codes are nearest-level (ties to the
// lower level), packed two per byte like INT4.
#pragma once
#include <array>
#include <cstdint>

#include "quantbench/quant/qformat/int_format.h"

namespace qb::quant {

// The codebook as bitsandbytes publishes it (float32 values, ascending; index 7 is 0).
const std::array<float, 16>& nf4_codebook();

GroupParams nf4_params(const float* w, int64_t n, float clip, ScaleType t);
uint8_t nf4_encode(float w, GroupParams p);
inline float nf4_decode(uint8_t q, GroupParams p) { return nf4_codebook()[q & 15] * p.scale; }

}  // namespace qb::quant
