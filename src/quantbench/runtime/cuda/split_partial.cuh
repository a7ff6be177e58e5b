// The end of every split-key decode attention block (forward_kernels.cu's f16 cache, kv_quant.cu's
// quantized caches): its warps' running maxima, sums and output rows, already in shared memory, become
// the split's partial in a.part, (M, L, the row weighted by exp(m_w - M)), for the merge that follows.
// One copy, so the merge reads the same layout whichever kernel wrote it. combine_warps and
// combined_dim also serve the one-split kernel that normalizes its own output (forward_kernels.cu).
#pragma once
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "quantbench/runtime/cuda/forward_kernels.h"

namespace qb::runtime::cuda {

// The block's warps combined: the running maximum M over the warps, each warp's weight exp(m_w - M)
// (0 for a warp that saw no key) and the weighted sum L of their sums.
template <int kWarps>
__device__ __forceinline__ float combine_warps(const float* sm_m, const float* sm_l, float (&wt)[kWarps], float& L) {
  float M = -INFINITY;
  for (int w = 0; w < kWarps; ++w) M = fmaxf(M, sm_m[w]);
  L = 0.0f;
  for (int w = 0; w < kWarps; ++w) {
    wt[w] = sm_m[w] == -INFINITY ? 0.0f : expf(sm_m[w] - M);
    L += sm_l[w] * wt[w];
  }
  return M;
}

// Dim d of the block's combined (unnormalized) output row. Sums start at +0, so the result is never -0.
template <int kWarps>
__device__ __forceinline__ float combined_dim(const float (*sm_acc)[kMaxHeadDim], const float (&wt)[kWarps], int d) {
  float o = 0.0f;
  for (int w = 0; w < kWarps; ++w) o += sm_acc[w][d] * wt[w];
  return o;
}

template <int kWarps>
__device__ __forceinline__ void write_split_partial(const AttentionArgs& a, int h, int t, int sp, const float* sm_m,
                                                    const float* sm_l, const float (*sm_acc)[kMaxHeadDim]) {
  float wt[kWarps], L;
  const float M = combine_warps<kWarps>(sm_m, sm_l, wt, L);
  float* out = a.part + ((int64_t(t) * a.n_head + h) * a.splits + sp) * (a.hd_v + 2);
  if (threadIdx.x == 0) {
    out[0] = M;
    out[1] = L;
  }
  for (int d = threadIdx.x; d < a.hd_v; d += blockDim.x) out[2 + d] = combined_dim<kWarps>(sm_acc, wt, d);
}

}  // namespace qb::runtime::cuda
