// What the forward pass's non-product kernels (forward_kernels.h) share across their files
// (norm_kernels.cu, rope_kv_kernels.cu, activation_kernels.cu, small_kernels.cu, attention_decode.cu,
// attention_prefill.cu): the early-launch entry of the small decode kernels, the block reduction, the
// column pairs an ActOut store covers, the elementwise kernels' grid and the attention blocks' warps.
// Decode is a few microseconds per kernel, so the design is latency: each kernel issues its loads
// together before using them (norm rows held in registers, 8 keys per warp in attention), writes its
// consumer's layout itself (ActOut), and attention splits over keys to fill the GPU at one token.
// Reductions are in registers, shuffles and shared memory; the one atomic (the last split block of a
// (head, token) merges) does not change results, so they do not depend on scheduling. Sums are f32 tree
// reductions (the CPU-vs-GPU KL checks are the bar). The kernels that feed a decode product trigger its
// early launch as they start (programmatic dependent launch).
#pragma once
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "quantbench/runtime/cuda/forward_kernels.h"
#include "quantbench/runtime/cuda/launch.cuh"

namespace qb::runtime::cuda {

// Programmatic dependent launch: the decode products (qgemv, launched with the overlap attribute)
// may start loading their weights as soon as every block of the kernel that feeds them has started;
// they wait for its completion (griddepcontrol.wait) before reading its output, so where the trigger
// sits changes timing only (pdl_launch_dependents, launch.cuh). A no-op when the next kernel was
// launched without the attribute.
// The small decode kernels may themselves be launched early (launch.cuh): they wait for the kernel
// before them to complete before reading anything, and only then let their own dependents launch, so
// the product after them cannot start while the product before them still runs. Without the launch
// attribute the wait returns at once and the order is the plain stream order.
__device__ __forceinline__ void pdl_enter() {
  pdl_wait();
  pdl_launch_dependents();
}

// The block's total (max or sum) of v, to every thread: warp shuffles, one slot per warp in `red`, then
// every warp reduces the slots with shuffles again (no serial loop over the warps).
__device__ inline float block_reduce(float v, float* red, bool is_max) {
  for (int o = 16; o > 0; o >>= 1) {
    const float w = __shfl_xor_sync(0xffffffffu, v, o);
    v = is_max ? fmaxf(v, w) : v + w;
  }
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, nw = blockDim.x / 32;
  __syncthreads();  // red may still be read by a previous reduction
  if (lane == 0) red[warp] = v;
  __syncthreads();
  float t = lane < nw ? red[lane] : (is_max ? -INFINITY : 0.0f);
  for (int o = 16; o > 0; o >>= 1) {
    const float w = __shfl_xor_sync(0xffffffffu, t, o);
    t = is_max ? fmaxf(t, w) : t + w;
  }
  return t;
}

// --- ActOut stores (pack2, put_frag, store_pair: act_store.cuh) ----------------------------------

// Column pairs a kernel must cover: the padded width when fragments are written, else the row.
__host__ __device__ inline int pair_count(const ActOut& o, int n) {
  return o.frag ? ((n + 63) / 64) * 32 : (n + 1) / 2;
}

// The grid of the elementwise kernels' grid-stride loops (256 threads a block): a block per 256 items, at
// most 4096.
inline int grid_for(int64_t n) {
  const int64_t b = (n + 255) / 256;
  return int(b < 4096 ? (b > 0 ? b : 1) : 4096);
}

// Warps per block of the split-key (attention_decode.cu) and query-tiled (attention_prefill.cu) kernels.
constexpr int kSplitWarps = 4;

// attention()'s prefill branch (attention_decode.cu), launching the query-tiled kernel
// (attention_prefill.cu).
void attention_tiled(const AttentionArgs& a, cudaStream_t s);

}  // namespace qb::runtime::cuda
