// What every split-key decode attention block shares (attention_decode.cu's f16 cache, kv_quant.cu's
// quantized caches): the keys it covers (split_keys), the end of a key batch's scores (finish_scores),
// and its own end: its warps' running maxima, sums and output rows, already in shared memory, become
// the split's partial in a.part, (M, L, the row weighted by exp(m_w - M)), for the merge that follows;
// or, when the block's split is the only one, its normalized output (write_one_split_output). One copy,
// so the merge reads the same layout whichever kernel wrote it, and a one-split block of either kernel
// stores the bits the merge would.
#pragma once
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "quantbench/runtime/cuda/act_store.cuh"
#include "quantbench/runtime/cuda/forward_kernels.h"

namespace qb::runtime::cuda {

// The keys [j0, j1) of split sp of token t: its window (or keys 0 .. pos) cut into a.splits ranges of
// equal length, the last one shorter. Every split-key decode kernel's block starts from this.
struct SplitKeys {
  int64_t pos, j0, j1;
};
__device__ __forceinline__ SplitKeys split_keys(const AttentionArgs& a, int t, int sp) {
  const int64_t pos = a.pos[t];
  const int64_t first = a.window > 0 ? max(int64_t(0), pos - a.window + 1) : int64_t(0);
  const int64_t n = pos - first + 1;
  const int64_t per = (n + a.splits - 1) / a.splits;
  const int64_t j0 = first + int64_t(sp) * per;
  return {pos, j0, min(first + n, j0 + per)};
}

// A key batch's scores, each a partial dot product per lane: summed over the lanes that share a key
// (xor shuffles from kFirstXor down), scaled, soft-capped, and -inf for keys past the range (key u is
// k0 + u * kKeyStep, the range ends before j1). Returns the batch's maximum. Every split-key decode
// kernel's step (attention_decode.cu's two f16 kernels, kv_quant.cu's) ends its scores this way.
template <int N, int kFirstXor, int kKeyStep>
__device__ __forceinline__ float finish_scores(float (&s)[N], const AttentionShape& a, int64_t k0, int64_t j1) {
#pragma unroll
  for (int o = kFirstXor; o > 0; o >>= 1)
#pragma unroll
    for (int u = 0; u < N; ++u) s[u] += __shfl_xor_sync(0xffffffffu, s[u], o);
  float mx = -INFINITY;
#pragma unroll
  for (int u = 0; u < N; ++u) {
    float d = s[u] * a.scale;
    if (a.softcap > 0.0f) d = a.softcap * tanhf(d / a.softcap);
    s[u] = k0 + int64_t(u) * kKeyStep < j1 ? d : -INFINITY;
    mx = fmaxf(mx, s[u]);
  }
  return mx;
}

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

// Dims d, d + 1 (d even; d + 1 ignored past hd_v) of head h's normalized output for token t, to a.out and
// a.act: the merge's store, shared with the one-split kernel that normalizes its own output.
__device__ inline void store_head_pair(const AttentionArgs& a, int h, int t, int nt, int d, float o0, float o1) {
  const int n = a.n_head * a.hd_v;
  const int col = h * a.hd_v + d;
  if (a.out) {
    a.out[int64_t(t) * n + col] = o0;
    if (d + 1 < a.hd_v) a.out[int64_t(t) * n + col + 1] = o1;
  }
  if (a.hd_v % 2 == 0) {
    store_pair(a.act, n, nt, t, col, o0, o1);
  } else {  // odd head dims (no fragments then): one value at a time
    ActOut r = a.act;
    r.frag = nullptr;
    r.f32 = nullptr;
    if (r.half_rows) {
      const uint32_t v = pack2(o0, o1, r.bf16);
      r.half_rows[int64_t(t) * n + col] = uint16_t(v & 0xffffu);
      if (d + 1 < a.hd_v) r.half_rows[int64_t(t) * n + col + 1] = uint16_t(v >> 16);
    }
    if (a.act.f32) {
      a.act.f32[int64_t(t) * n + col] = o0;
      if (d + 1 < a.hd_v) a.act.f32[int64_t(t) * n + col + 1] = o1;
    }
  }
}

// The end of a split-key block when it is the only split: its warps combined as write_split_partial
// combines them, then normalized and stored as merge_splits stores a merged head. The merge of one split
// computes the same (0 + o * exp(M - M), with o never -0), so the bits are the merge's.
template <int kWarps>
__device__ void write_one_split_output(const AttentionArgs& a, int h, int t, int nt, const float* sm_m,
                                       const float* sm_l, const float (*sm_acc)[kMaxHeadDim]) {
  float wt[kWarps], L;
  combine_warps<kWarps>(sm_m, sm_l, wt, L);
  const float inv = 1.0f / L;
  for (int d = 2 * threadIdx.x; d < a.hd_v; d += 2 * blockDim.x) {
    const float o0 = combined_dim<kWarps>(sm_acc, wt, d);
    const float o1 = d + 1 < a.hd_v ? combined_dim<kWarps>(sm_acc, wt, d + 1) : 0.0f;
    store_head_pair(a, h, t, nt, d, o0 * inv, o1 * inv);
  }
}

}  // namespace qb::runtime::cuda
