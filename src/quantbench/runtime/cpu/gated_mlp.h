// The gate of a gated MLP: a[i] = act(gate[i]) * up[i], with act SiLU (SwiGLU: llama, qwen) or the
// tanh approximation of GELU (GeGLU: gemma, as Hugging Face's gelu_pytorch_tanh).
#pragma once
#include <cstdint>

#include "quantbench/model/model_spec.h"

namespace qb::runtime::cpu {

// out may alias gate.
void gated_activation(model::Activation act, const float* gate, const float* up, float* out, int64_t n);

}  // namespace qb::runtime::cpu
