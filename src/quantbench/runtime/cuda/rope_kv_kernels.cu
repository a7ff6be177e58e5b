// RoPE and the KV-cache write of rope_and_store_kv (forward_kernels.h): q and k rotated in place, k and
// v stored to the f16 cache. (The split-key attention kernels fuse the same rotation: attention_decode.cu.)
#include <cuda_fp16.h>

#include "quantbench/runtime/cuda/cuda_check.h"
#include "quantbench/runtime/cuda/forward_kernels.h"

namespace qb::runtime::cuda {
namespace {

// Grid (item blocks, T), a thread per item of one token: a rotated pair of a q or k head (k pairs are
// also stored to the cache, as f16), a k dimension past n_rot (stored as it is), or a v element. One
// block per token walked these items serially at decode (~20 us per layer at T = 1).
__global__ void rope_kv_kernel(RopeKvArgs a) {
  const int t = blockIdx.y;
  const int item = blockIdx.x * blockDim.x + threadIdx.x;
  const int half = a.n_rot / 2;
  const int n_pairs = (a.n_head + a.n_head_kv) * half;  // k heads follow q heads contiguously
  const int rest_k = a.hd_k - a.n_rot, n_krest = a.n_head_kv * rest_k;
  const int kd = a.n_head_kv * a.hd_k, vd = a.n_head_kv * a.hd_v;
  float* row = a.qkv + int64_t(t) * a.qkv_stride;
  __half* kc = reinterpret_cast<__half*>(a.k_cache[t]) + a.pos[t] * kd;
  if (item < n_pairs) {
    const int h = item / half, i = item % half;
    float* head = row + int64_t(h) * a.hd_k;
    const int ia = a.neox ? i : 2 * i, ib = a.neox ? i + half : 2 * i + 1;
    const float c = a.cos[int64_t(t) * half + i], s = a.sin[int64_t(t) * half + i];
    const float x0 = head[ia], x1 = head[ib];
    const float y0 = x0 * c - x1 * s, y1 = x0 * s + x1 * c;
    head[ia] = y0;
    head[ib] = y1;
    if (h >= a.n_head) {
      __half* kh = kc + (h - a.n_head) * a.hd_k;
      kh[ia] = __float2half_rn(y0);
      kh[ib] = __float2half_rn(y1);
    }
  } else if (item < n_pairs + n_krest) {
    const int r = item - n_pairs, kh = r / rest_k, dd = a.n_rot + r % rest_k;
    kc[kh * a.hd_k + dd] = __float2half_rn(row[int64_t(a.n_head) * a.hd_k + kh * a.hd_k + dd]);
  } else if (item < n_pairs + n_krest + vd) {
    const int i = item - n_pairs - n_krest;
    __half* vc = reinterpret_cast<__half*>(a.v_cache[t]) + a.pos[t] * vd;
    vc[i] = __float2half_rn(row[int64_t(a.n_head) * a.hd_k + kd + i]);
  }
}

}  // namespace

void rope_and_store_kv(const RopeKvArgs& a, cudaStream_t s) {
  if (a.T <= 0) return;
  const int items = (a.n_head + a.n_head_kv) * (a.n_rot / 2) + a.n_head_kv * (a.hd_k - a.n_rot) + a.n_head_kv * a.hd_v;
  rope_kv_kernel<<<dim3(unsigned((items + 127) / 128), unsigned(a.T)), 128, 0, s>>>(a);
  QB_CUDA_LAUNCHED();
}

}  // namespace qb::runtime::cuda
