// The forward pass's small kernels (forward_kernels.h) outside norm, rope, attention and activation: bias
// and residual adds, soft-capping, f32 to bf16 / f16 casts, bf16 embedding rows, argmax over logits rows,
// the copy from mapped host memory, the L2 prefetch and the spin kernel. Shared helpers: forward_common.cuh.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "quantbench/runtime/cuda/cuda_check.h"
#include "quantbench/runtime/cuda/forward_kernels.h"
#include "quantbench/runtime/cuda/forward_common.cuh"

namespace qb::runtime::cuda {
namespace {

__global__ void add_bias_kernel(float* x, const float* b, int n, int64_t total) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x)
    x[i] += b[i % n];
}

__global__ void add_kernel(float* x, const float* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    x[i] += y[i];
}

__global__ void softcap_kernel(float* z, int64_t n, float c) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    z[i] = c * tanhf(z[i] / c);
}

__global__ void bf16_kernel(const float* x, __nv_bfloat16* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = __float2bfloat16_rn(x[i]);
}

__global__ void f16_kernel(const float* x, __half* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = __float2half_rn(x[i]);
}

__global__ void embed_bf16_kernel(const __nv_bfloat16* table, const int32_t* tokens, int d, float scale, float* x) {
  const int t = blockIdx.x;
  const __nv_bfloat16* row = table + int64_t(tokens[t]) * d;
  for (int i = threadIdx.x; i < d; i += blockDim.x) x[int64_t(t) * d + i] = __bfloat162float(row[i]) * scale;
}

__global__ void copy16_kernel(const uint4* __restrict__ src, uint4* __restrict__ dst, size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    dst[i] = src[i];
}

// One block per row. Each thread visits its values in increasing index order and keeps its first
// maximum (strict >); threads, then warps, merge by (larger value, else lower index), so the row's first
// maximum wins whatever the partition. Rows of a multiple of 4 floats are read as float4, 8 per thread
// issued together (one memory round trip per 32K values): the scalar loop took 16-17 us per greedy step
// with the download on an H100 (docs/perf.md, session 16).
constexpr int kArgmaxThreads = 1024, kArgmaxBatch = 8;
__global__ void __launch_bounds__(kArgmaxThreads) argmax_kernel(const float* z, int n, int32_t* ids) {
  __shared__ float bv[32];
  __shared__ int bi[32];
  const float* row = z + size_t(blockIdx.x) * n;
  float v = -INFINITY;
  int idx = n;  // "none yet": loses every comparison below
  auto take = [&](float x, int i) {
    if (x > v || idx == n) { v = x; idx = i; }
  };
  if (n % 4 == 0) {  // cudaMalloc'd logits: every row then starts 16-byte aligned
    const float4* r4 = reinterpret_cast<const float4*>(row);
    const int n4 = n / 4;
    for (int base = threadIdx.x; base < n4; base += kArgmaxBatch * kArgmaxThreads) {
      float4 q[kArgmaxBatch];
#pragma unroll
      for (int k = 0; k < kArgmaxBatch; ++k) {
        const int j = base + k * kArgmaxThreads;
        q[k] = j < n4 ? __ldcg(r4 + j) : make_float4(0.f, 0.f, 0.f, 0.f);
      }
#pragma unroll
      for (int k = 0; k < kArgmaxBatch; ++k) {
        const int j = base + k * kArgmaxThreads;
        if (j >= n4) break;
        take(q[k].x, 4 * j);
        take(q[k].y, 4 * j + 1);
        take(q[k].z, 4 * j + 2);
        take(q[k].w, 4 * j + 3);
      }
    }
  } else {
    for (int i = threadIdx.x; i < n; i += kArgmaxThreads) take(row[i], i);
  }
  auto merge_warp = [&]() {
    for (int o = 16; o > 0; o >>= 1) {
      const float v2 = __shfl_xor_sync(0xffffffffu, v, o);
      const int i2 = __shfl_xor_sync(0xffffffffu, idx, o);
      if (v2 > v || (v2 == v && i2 < idx)) { v = v2; idx = i2; }
    }
  };
  merge_warp();
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) { bv[warp] = v; bi[warp] = idx; }
  __syncthreads();
  if (warp == 0) {
    v = bv[lane];  // kArgmaxThreads / 32 == 32 warps: one slot per lane
    idx = bi[lane];
    merge_warp();
    if (lane == 0) ids[blockIdx.x] = idx;
  }
}

__global__ void spin_kernel(int64_t ns) {
  uint64_t t0, t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t0));
  do {
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  } while (int64_t(t - t0) < ns);
}

constexpr size_t kPrefetchPiece = 16384;
__global__ void prefetch_l2_kernel(const uint8_t* p, size_t bytes) {
  const size_t off = (size_t(blockIdx.x) * blockDim.x + threadIdx.x) * kPrefetchPiece;
  if (off >= bytes) return;
  const uint32_t n = uint32_t(min(kPrefetchPiece, bytes - off)) & ~15u;
  if (n) asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(p + off), "r"(n) : "memory");
}

}  // namespace

void copy_from_mapped(const void* src_mapped, void* dst, size_t bytes, cudaStream_t s) {
  if (bytes % 16 != 0) throw std::invalid_argument("copy_from_mapped: " + std::to_string(bytes) + " bytes is not a multiple of 16");
  const size_t n = bytes / 16;
  if (n == 0) return;
  const unsigned blocks = unsigned(std::min<size_t>((n + 255) / 256, 1024));
  copy16_kernel<<<blocks, 256, 0, s>>>(static_cast<const uint4*>(src_mapped), static_cast<uint4*>(dst), n);
  QB_CUDA_LAUNCHED();
}

void argmax_rows(const float* logits, int n, int rows, int32_t* ids, cudaStream_t s) {
  if (rows <= 0) return;
  argmax_kernel<<<rows, kArgmaxThreads, 0, s>>>(logits, n, ids);
  QB_CUDA_LAUNCHED();
}

void prefetch_l2(const void* p, size_t bytes, cudaStream_t s) {
  const size_t pieces = (bytes + kPrefetchPiece - 1) / kPrefetchPiece;
  if (!pieces) return;
  prefetch_l2_kernel<<<unsigned((pieces + 31) / 32), 32, 0, s>>>(static_cast<const uint8_t*>(p), bytes);
  QB_CUDA_LAUNCHED();
}

void gpu_spin(int64_t ns, cudaStream_t s) {
  spin_kernel<<<1, 1, 0, s>>>(ns);
  QB_CUDA_LAUNCHED();
}

void add_bias(float* x, const float* b, int n, int rows, cudaStream_t s) {
  const int64_t total = int64_t(n) * rows;
  add_bias_kernel<<<grid_for(total), 256, 0, s>>>(x, b, n, total);
  QB_CUDA_LAUNCHED();
}

void add_inplace(float* x, const float* y, int64_t n, cudaStream_t s) {
  add_kernel<<<grid_for(n), 256, 0, s>>>(x, y, n);
  QB_CUDA_LAUNCHED();
}

void softcap_inplace(float* z, int64_t n, float c, cudaStream_t s) {
  softcap_kernel<<<grid_for(n), 256, 0, s>>>(z, n, c);
  QB_CUDA_LAUNCHED();
}

void f32_to_bf16(const float* x, uint16_t* y, int64_t n, cudaStream_t s) {
  bf16_kernel<<<grid_for(n), 256, 0, s>>>(x, reinterpret_cast<__nv_bfloat16*>(y), n);
  QB_CUDA_LAUNCHED();
}

void f32_to_f16(const float* x, uint16_t* y, int64_t n, cudaStream_t s) {
  f16_kernel<<<grid_for(n), 256, 0, s>>>(x, reinterpret_cast<__half*>(y), n);
  QB_CUDA_LAUNCHED();
}

void embed_rows_bf16(const uint16_t* table, const int32_t* tokens, int T, int d, float scale, float* x,
                     cudaStream_t s) {
  if (T == 0) return;
  embed_bf16_kernel<<<T, 256, 0, s>>>(reinterpret_cast<const __nv_bfloat16*>(table), tokens, d, scale, x);
  QB_CUDA_LAUNCHED();
}

}  // namespace qb::runtime::cuda
