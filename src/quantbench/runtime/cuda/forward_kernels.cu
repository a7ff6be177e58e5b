// See forward_kernels.h. Straightforward kernels: one block per row (norms, rope) or per (token, head)
// (attention), reductions in registers and shared memory, no atomics, so results do not depend on
// scheduling. Norm sums are in double (cheap at these sizes, and closest to the CPU reference).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>

#include "quantbench/runtime/cuda/cuda_check.h"
#include "quantbench/runtime/cuda/forward_kernels.h"

namespace qb::runtime::cuda {
namespace {

__device__ inline double block_sum(double v, double* sh) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, nw = blockDim.x / 32;
  if (lane == 0) sh[warp] = v;
  __syncthreads();
  double t = 0;
  for (int w = 0; w < nw; ++w) t += sh[w];
  __syncthreads();
  return t;
}

__global__ void rmsnorm_kernel(const float* x, float* y, const float* w, int n, int inner, int64_t outer_stride,
                               int64_t y_outer_stride, float eps, const int32_t* x_rows) {
  __shared__ double sh[32];
  const int r = blockIdx.x;
  const int64_t xo = x_rows ? x_rows[r / inner] : r / inner;
  const float* xr = x + xo * outer_stride + int64_t(r % inner) * n;
  float* yr = y + int64_t(r / inner) * y_outer_stride + int64_t(r % inner) * n;
  double ss = 0;
  for (int i = threadIdx.x; i < n; i += blockDim.x) ss += double(xr[i]) * xr[i];
  ss = block_sum(ss, sh);
  const float sc = float(1.0 / sqrt(ss / double(n) + double(eps)));
  for (int i = threadIdx.x; i < n; i += blockDim.x) yr[i] = w ? (xr[i] * sc) * w[i] : xr[i] * sc;
}

__global__ void add_bias_kernel(float* x, const float* b, int n, int64_t total) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x)
    x[i] += b[i % n];
}

__global__ void add_kernel(float* x, const float* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    x[i] += y[i];
}

__global__ void gated_kernel(const float* gu, float* out, int n, int64_t total, int act) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t t = i / n, j = i % n;
    const float g = gu[t * 2 * n + j], u = gu[t * 2 * n + n + j];
    float a;
    if (act == 0) {
      a = g / (1.0f + expf(-g));
    } else {
      const float c = 0.79788456080286535588f;
      a = 0.5f * g * (1.0f + tanhf(c * (g + 0.044715f * g * g * g)));
    }
    out[i] = a * u;
  }
}

__global__ void softcap_kernel(float* z, int64_t n, float c) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    z[i] = c * tanhf(z[i] / c);
}

__global__ void bf16_kernel(const float* x, __nv_bfloat16* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = __float2bfloat16_rn(x[i]);
}

__global__ void rope_kv_kernel(RopeKvArgs a) {
  const int t = blockIdx.x;
  float* row = a.qkv + int64_t(t) * a.qkv_stride;
  const int half = a.n_rot / 2;
  const float* c = a.cos + int64_t(t) * half;
  const float* s = a.sin + int64_t(t) * half;
  const int heads = a.n_head + a.n_head_kv;  // k heads follow q heads contiguously
  for (int item = threadIdx.x; item < heads * half; item += blockDim.x) {
    const int h = item / half, i = item % half;
    float* head = row + int64_t(h) * a.hd_k;
    const int ia = a.neox ? i : 2 * i, ib = a.neox ? i + half : 2 * i + 1;
    const float x0 = head[ia], x1 = head[ib];
    head[ia] = x0 * c[i] - x1 * s[i];
    head[ib] = x0 * s[i] + x1 * c[i];
  }
  __syncthreads();
  const int kd = a.n_head_kv * a.hd_k, vd = a.n_head_kv * a.hd_v;
  const float* k = row + int64_t(a.n_head) * a.hd_k;
  const float* v = k + kd;
  __half* kc = reinterpret_cast<__half*>(a.k_cache[t]) + a.pos[t] * kd;
  __half* vc = reinterpret_cast<__half*>(a.v_cache[t]) + a.pos[t] * vd;
  for (int i = threadIdx.x; i < kd; i += blockDim.x) kc[i] = __float2half_rn(k[i]);
  for (int i = threadIdx.x; i < vd; i += blockDim.x) vc[i] = __float2half_rn(v[i]);
}

constexpr int kAttnThreads = 128;
constexpr int kAttnTile = 2048;  // keys whose scores sit in shared memory at once
constexpr int kDimsPerThread = (kMaxHeadDim + kAttnThreads - 1) / kAttnThreads;

__device__ inline float block_reduce(float v, float* red, bool is_max) {
  for (int o = 16; o > 0; o >>= 1) {
    const float w = __shfl_xor_sync(0xffffffffu, v, o);
    v = is_max ? fmaxf(v, w) : v + w;
  }
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, nw = blockDim.x / 32;
  __syncthreads();  // red may still be read by a previous reduction
  if (lane == 0) red[warp] = v;
  __syncthreads();
  float t = is_max ? -INFINITY : 0.0f;
  for (int w = 0; w < nw; ++w) t = is_max ? fmaxf(t, red[w]) : t + red[w];
  return t;
}

// One block per (head, token), keys in tiles of kAttnTile: first every key's score (a thread per key,
// its dot product over the head dimension with 16-byte loads where the layout allows), then the tile's
// softmax weights, then the weighted sum of values (a thread per output dimension, keys in order,
// coalesced rows). Loads are independent of each other, unlike a walk that reduces one key at a time,
// which is what decode at short contexts needs. Tiles are merged with the online-softmax rescaling.
__global__ void attention_kernel(AttentionArgs a) {
  __shared__ float qs[kMaxHeadDim];
  __shared__ float sc[kAttnTile];
  __shared__ float red[32];
  const int h = blockIdx.x, t = blockIdx.y, tid = threadIdx.x;
  const int kvh = h / (a.n_head / a.n_head_kv);
  const int64_t kd = int64_t(a.n_head_kv) * a.hd_k, vd = int64_t(a.n_head_kv) * a.hd_v;
  const float* q = a.q + int64_t(t) * a.q_stride + int64_t(h) * a.hd_k;
  const __half* kc = reinterpret_cast<const __half*>(a.k_cache[t]) + int64_t(kvh) * a.hd_k;
  const __half* vc = reinterpret_cast<const __half*>(a.v_cache[t]) + int64_t(kvh) * a.hd_v;
  const int64_t pos = a.pos[t];
  const int64_t first = a.window > 0 ? max(int64_t(0), pos - a.window + 1) : int64_t(0);
  const int64_t n = pos - first + 1;
  for (int i = tid; i < a.hd_k; i += blockDim.x) qs[i] = q[i];
  __syncthreads();
  const bool vec = a.hd_k % 8 == 0;  // rows then start on 16-byte boundaries (kd is a multiple of 8 too)

  float m_run = -INFINITY, l_run = 0.0f, acc[kDimsPerThread];
#pragma unroll
  for (int e = 0; e < kDimsPerThread; ++e) acc[e] = 0.0f;
  for (int64_t t0 = 0; t0 < n; t0 += kAttnTile) {
    const int nt = int(min(int64_t(kAttnTile), n - t0));
    float mx = -INFINITY;
    for (int j = tid; j < nt; j += blockDim.x) {
      const __half* kj = kc + (first + t0 + j) * kd;
      float d = 0.0f;
      if (vec) {
        for (int i = 0; i < a.hd_k; i += 8) {
          const uint4 u = *reinterpret_cast<const uint4*>(kj + i);
          const __half2* hp = reinterpret_cast<const __half2*>(&u);
#pragma unroll
          for (int k = 0; k < 4; ++k) {
            const float2 f = __half22float2(hp[k]);
            d += qs[i + 2 * k] * f.x + qs[i + 2 * k + 1] * f.y;
          }
        }
      } else {
        for (int i = 0; i < a.hd_k; ++i) d += qs[i] * __half2float(kj[i]);
      }
      d *= a.scale;
      if (a.softcap > 0.0f) d = a.softcap * tanhf(d / a.softcap);
      sc[j] = d;
      mx = fmaxf(mx, d);
    }
    mx = block_reduce(mx, red, true);
    const float m_new = fmaxf(m_run, mx);
    const float corr = m_run == -INFINITY ? 0.0f : expf(m_run - m_new);
    float sum = 0.0f;
    for (int j = tid; j < nt; j += blockDim.x) {
      const float p = expf(sc[j] - m_new);
      sc[j] = p;
      sum += p;
    }
    sum = block_reduce(sum, red, false);  // its barriers also publish sc
    l_run = l_run * corr + sum;
#pragma unroll
    for (int e = 0; e < kDimsPerThread; ++e) {
      const int i = tid + kAttnThreads * e;
      if (i >= a.hd_v) break;
      const __half* vi = vc + (first + t0) * vd + i;
      float o = 0.0f;
#pragma unroll 4
      for (int j = 0; j < nt; ++j) o += sc[j] * __half2float(vi[int64_t(j) * vd]);
      acc[e] = acc[e] * corr + o;
    }
    m_run = m_new;
    __syncthreads();  // the next tile overwrites sc
  }
  float* out = a.out + int64_t(t) * a.n_head * a.hd_v + int64_t(h) * a.hd_v;
#pragma unroll
  for (int e = 0; e < kDimsPerThread; ++e) {
    const int i = tid + kAttnThreads * e;
    if (i < a.hd_v) out[i] = acc[e] / l_run;
  }
}

int grid_for(int64_t n) {
  const int64_t b = (n + 255) / 256;
  return int(b < 4096 ? (b > 0 ? b : 1) : 4096);
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

}  // namespace

void rmsnorm_rows(const float* x, float* y, const float* w, int n, int rows, int inner, int64_t outer_stride,
                  int64_t y_outer_stride, float eps, const int32_t* x_rows, cudaStream_t s) {
  if (rows <= 0) return;
  const int threads = n >= 1024 ? 256 : (n >= 256 ? 128 : 32);
  rmsnorm_kernel<<<rows, threads, 0, s>>>(x, y, w, n, inner, outer_stride, y_outer_stride, eps, x_rows);
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

void gated_act(const float* gate_up, float* out, int n, int rows, int act, cudaStream_t s) {
  const int64_t total = int64_t(n) * rows;
  gated_kernel<<<grid_for(total), 256, 0, s>>>(gate_up, out, n, total, act);
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

void rope_and_store_kv(const RopeKvArgs& a, cudaStream_t s) {
  if (a.T <= 0) return;
  rope_kv_kernel<<<a.T, 128, 0, s>>>(a);
  QB_CUDA_LAUNCHED();
}

void attention(const AttentionArgs& a, cudaStream_t s) {
  if (a.T <= 0) return;
  if (a.hd_k > kMaxHeadDim || a.hd_v > kMaxHeadDim)
    throw std::runtime_error("cuda attention: head dimension above " + std::to_string(kMaxHeadDim));
  attention_kernel<<<dim3(unsigned(a.n_head), unsigned(a.T)), kAttnThreads, 0, s>>>(a);
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
