// RMSNorm of one row: y = x / sqrt(mean(x²) + eps) * w. The mean is accumulated in double so the
// reference is exact to f32 rounding whatever the row length; w is used as stored (Gemma's +1 is
// folded into the GGUF by llama.cpp's converter).
#pragma once
#include <cstdint>

namespace qb::runtime::cpu {

// y may alias x. w may be null (no weight).
void rmsnorm(const float* x, const float* w, float* y, int64_t n, float eps);

}  // namespace qb::runtime::cpu
