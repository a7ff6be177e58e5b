// The online softmax's step, shared by every attention kernel that walks the keys in batches
// (attention_decode.cu's three, kv_quant.cu's, attention_prefill.cu's query-tiled kernel): a running maximum m,
// sum l and output row acc, gathered under exp(score - m), take in a batch whose largest score is mx.
#pragma once
#include <cuda_runtime.h>

#include <cmath>

namespace qb::runtime::cuda {

// Returns the new maximum, and in corr the factor that rescales l and acc, gathered under m, to it: 0 while
// m is still -inf (nothing gathered yet), never exp(-inf + inf). The callers rescale and add the batch's
// weights exp(s - m_new) themselves, in their own layouts; only this part is written once.
__device__ __forceinline__ float softmax_new_max(float m, float mx, float& corr) {
  const float m_new = fmaxf(m, mx);
  corr = m == -INFINITY ? 0.0f : expf(m - m_new);
  return m_new;
}

}  // namespace qb::runtime::cuda
