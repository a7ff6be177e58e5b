// Rotary position embedding. Angles are computed per position in double (theta^(-2i/n_rot) with
// pow, not by repeated multiplication) so the reference does not drift with position; both pairings
// are supported: Normal rotates (2i, 2i+1) (llama.cpp's "llama" layout, Q/K permuted at conversion),
// Neox rotates (i, i + n_rot/2) (qwen, gemma, and Hugging Face's layout). Dimensions beyond n_rot
// pass through unchanged.
#pragma once
#include <cstdint>
#include <vector>

#include "quantbench/model/model_spec.h"

namespace qb::runtime::cpu {

struct RopeParams {
  model::RopeStyle style = model::RopeStyle::Normal;
  int64_t n_rot = 0;
  double theta = 10000.0;
  double position_scale = 1.0;          // linear scaling: positions multiplied by this
  const float* freq_factors = nullptr;  // n_rot/2 divisors of the frequencies (llama-3), or null
};

// cos and sin of the n_rot/2 angles at `pos`.
void rope_angles(const RopeParams& p, int64_t pos, float* cos_out, float* sin_out);

// Rotates one head vector in place with angles from rope_angles.
void rope_rotate(model::RopeStyle style, int64_t n_rot, const float* cos_v, const float* sin_v, float* head);

}  // namespace qb::runtime::cpu
