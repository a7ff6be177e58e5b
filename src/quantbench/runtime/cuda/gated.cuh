// The gated activation act(gate) * up: the one formula of the gated-activation kernels
// (activation_kernels.cu) and of the gate|up product's fused epilogue (qgemv_kernel.cuh), so both write the same
// bits; and where gate and up of a column sit in a gate|up row.
#pragma once
#include <cuda_runtime.h>

namespace qb::runtime::cuda {

// act 0: SiLU, else GELU (tanh approximation).
__device__ __forceinline__ float gated_act_value(float g, float u, int act) {
  float a;
  if (act == 0) {
    a = g / (1.0f + expf(-g));
  } else {
    const float c = 0.79788456080286535588f;
    a = 0.5f * g * (1.0f + tanhf(c * (g + 0.044715f * g * g * g)));
  }
  return a * u;
}

// Index of column j's gate value in a gate|up row of 2 n values; its up value is at + n (halves,
// interleave16 false) or + 16 (interleave16: blocks of 16 gate rows then the same 16 up rows, the
// packed decode layout that lets one qgemv warp hold both; n % 16 == 0).
__device__ __forceinline__ int gate_index(int j, bool interleave16) { return interleave16 ? (j >> 4) * 32 + (j & 15) : j; }
__device__ __forceinline__ int up_offset(int n, bool interleave16) { return interleave16 ? 16 : n; }

}  // namespace qb::runtime::cuda
