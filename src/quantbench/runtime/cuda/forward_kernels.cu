// See forward_kernels.h. Decode is a few microseconds per kernel, so the design is latency: each
// kernel issues its loads together before using them (norm rows held in registers, 8 keys per warp in
// attention), writes its consumer's layout itself (ActOut), and attention splits over keys to fill the
// GPU at one token. Reductions are in registers, shuffles and shared memory; the one atomic (the last
// split block of a (head, token) merges) does not change results, so they do not depend on
// scheduling. Sums are f32 tree reductions (the CPU-vs-GPU KL checks are the bar). The kernels that
// feed a decode product trigger its early launch as they start (programmatic dependent launch). At
// prefill, attention over one run of one sequence is a fused flash-attention kernel on the tensor
// cores (head dims 64 / 128; else two cuBLAS GEMMs around a softmax kernel).
#include <cooperative_groups.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "quantbench/runtime/cuda/cuda_check.h"
#include "quantbench/runtime/cuda/act_store.cuh"
#include "quantbench/runtime/cuda/split_partial.cuh"
#include "quantbench/runtime/cuda/w8a8_codes.cuh"
#include "quantbench/runtime/cuda/forward_kernels.h"
#include "quantbench/runtime/cuda/gated.cuh"
#include "quantbench/runtime/cuda/launch.cuh"
#include "quantbench/runtime/cuda/mma_sync.cuh"

namespace qb::runtime::cuda {
namespace cg = cooperative_groups;
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

// act(gate) * up for token t, column j of gate|up rows [t][2 n] (gated.cuh: the formula, and where
// gate and up sit: halves, or interleaved blocks of 16 where the packed decode product fuses it).
__device__ inline float gated_value(const float* gu, int n, int t, int j, int act, bool interleave16 = false) {
  const float* row = gu + size_t(t) * 2 * n + gate_index(j, interleave16);
  return gated_act_value(row[0], row[up_offset(n, interleave16)], act);
}

__global__ void gated_kernel(const float* gu, float* out, int n, int64_t total, int act) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x)
    out[i] = gated_value(gu, n, int(i / n), int(i % n), act);
}

__global__ void softcap_kernel(float* z, int64_t n, float c) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    z[i] = c * tanhf(z[i] / c);
}

__global__ void bf16_kernel(const float* x, __nv_bfloat16* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = __float2bfloat16_rn(x[i]);
}

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

constexpr int kAttnThreads = 128;
constexpr int kAttnTile = 2048;  // keys whose scores sit in shared memory at once
constexpr int kDimsPerThread = (kMaxHeadDim + kAttnThreads - 1) / kAttnThreads;

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

// --- ActOut stores (pack2, put_frag, store_pair: act_store.cuh) ----------------------------------

// Column pairs a kernel must cover: the padded width when fragments are written, else the row.
__host__ __device__ inline int pair_count(const ActOut& o, int n) {
  return o.frag ? ((n + 63) / 64) * 32 : (n + 1) / 2;
}

__global__ void add_rmsnorm_kernel(float* x, const float* add, const float* w, int n, int nt, float eps,
                                   const int32_t* rows, ActOut o) {
  pdl_enter();
  __shared__ float red[32];
  const int t = blockIdx.x;
  const int r = rows ? rows[t] : t;
  float* xr = x + size_t(r) * n;
  const float* ar = add ? add + size_t(r) * n : nullptr;
  float ss = 0.0f;
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    float v = xr[i];
    if (ar) {
      v += ar[i];
      xr[i] = v;
    }
    ss += v * v;
  }
  ss = block_reduce(ss, red, false);
  const float sc = 1.0f / sqrtf(ss / float(n) + eps);
  const int np = pair_count(o, n);
  for (int p = threadIdx.x; p < np; p += blockDim.x) {
    const int k = 2 * p;
    float a = 0.0f, b = 0.0f;  // xr[k] was written by thread k % blockDim: read after the barrier above
    if (k < n) a = w ? (xr[k] * sc) * w[k] : xr[k] * sc;
    if (k + 1 < n) b = w ? (xr[k + 1] * sc) * w[k + 1] : xr[k + 1] * sc;
    store_pair(o, n, nt, t, k, a, b);
  }
}

// The same, for rows of up to kNormPairs column pairs per thread: each thread keeps its values and
// weights in registers, so the row is read once and every load is issued before the reduction (one
// memory round trip where the loop version had three).
constexpr int kNormPairs = 4;
// `prewait`: without a row gather, the row of x and the norm weights are loaded before waiting for the
// kernel before this one. That kernel writes only `add`: x was last written by the previous norm, which
// has completed before the kernel before this one can start (every decode kernel waits for its
// predecessor before its own dependents may launch), and the weights never change. Under an early
// launch their DRAM latency then overlaps that kernel's tail. x is read through L2 (__ldcg) there.
// kCodes: also the W8A8 codes of the output (ActOut::codes): an instantiation of its own, so the plain
// kernel's code and registers stay as they were.
template <bool kCodes>
__global__ void add_rmsnorm_reg_kernel(float* x, const float* add, const float* w, int n, int nt, float eps,
                                       const int32_t* rows, ActOut o, bool prewait) {
  __shared__ float red[32];
  const int t = blockIdx.x;
  float va[kNormPairs], vb[kNormPairs], wa[kNormPairs], wb[kNormPairs];
  auto load_row = [&](const float* xr, bool l2) {
#pragma unroll
    for (int k = 0; k < kNormPairs; ++k) {
      const int c = 2 * (threadIdx.x + k * blockDim.x);
      va[k] = vb[k] = 0.0f;
      wa[k] = wb[k] = 1.0f;
      if (c < n) {
        va[k] = l2 ? __ldcg(xr + c) : xr[c];
        if (w) wa[k] = w[c];
      }
      if (c + 1 < n) {
        vb[k] = l2 ? __ldcg(xr + c + 1) : xr[c + 1];
        if (w) wb[k] = w[c + 1];
      }
    }
  };
  const bool pre = prewait && !rows;
  if (pre) load_row(x + size_t(t) * n, true);
  pdl_enter();
  const int r = rows ? rows[t] : t;
  float* xr = x + size_t(r) * n;
  const float* ar = add ? add + size_t(r) * n : nullptr;
  if (!pre) load_row(xr, false);
  float ss = 0.0f;
#pragma unroll
  for (int k = 0; k < kNormPairs; ++k) {
    const int c = 2 * (threadIdx.x + k * blockDim.x);
    if (ar && c < n) va[k] += ar[c];
    if (ar && c + 1 < n) vb[k] += ar[c + 1];
    ss += va[k] * va[k] + vb[k] * vb[k];
  }
  if (ar) {
#pragma unroll
    for (int k = 0; k < kNormPairs; ++k) {
      const int c = 2 * (threadIdx.x + k * blockDim.x);
      if (c < n) xr[c] = va[k];
      if (c + 1 < n) xr[c + 1] = vb[k];
    }
  }
  ss = block_reduce(ss, red, false);
  const float sc = 1.0f / sqrtf(ss / float(n) + eps);
  auto normed = [&](float v, float wv) { return w ? (v * sc) * wv : v * sc; };
  const int np = pair_count(o, n);
  if constexpr (kCodes) {  // a W8A8 product's codes (n even, add_rmsnorm_writes_codes): the row's absmax first
    float out_a[kNormPairs], out_b[kNormPairs], am = 0.0f;
    bool nf = false;
#pragma unroll
    for (int k = 0; k < kNormPairs; ++k) {
      const int c = 2 * (threadIdx.x + k * blockDim.x);
      out_a[k] = c < n ? normed(va[k], wa[k]) : 0.0f;
      out_b[k] = c < n ? normed(vb[k], wb[k]) : 0.0f;
      am = fmaxf(am, fmaxf(fabsf(out_a[k]), fabsf(out_b[k])));
      nf = nf || !(finite_value(out_a[k]) && finite_value(out_b[k]));
    }
    am = block_reduce(nf ? INFINITY : am, red, true);  // (see row_scale)
    const float qs = row_scale(am, o.codes_fp8 ? 448.0f : 127.0f, !(am <= FLT_MAX), o.nonfinite);
    uint16_t* qr = reinterpret_cast<uint16_t*>(o.codes + size_t(t) * n);
#pragma unroll
    for (int k = 0; k < kNormPairs; ++k) {
      const int p = threadIdx.x + k * blockDim.x;
      if (2 * p >= n) break;
      const uint8_t qa = o.codes_fp8 ? act_code_fp8(out_a[k], qs) : act_code_int8(out_a[k], qs);
      const uint8_t qb = o.codes_fp8 ? act_code_fp8(out_b[k], qs) : act_code_int8(out_b[k], qs);
      qr[p] = uint16_t(qa | (qb << 8));
    }
    if (threadIdx.x == 0) o.code_scale[t] = qs;
  }
#pragma unroll
  for (int k = 0; k < kNormPairs; ++k) {
    const int p = threadIdx.x + k * blockDim.x;
    if (p >= np) break;
    const int c = 2 * p;
    store_pair(o, n, nt, t, c, c < n ? normed(va[k], wa[k]) : 0.0f, c + 1 < n ? normed(vb[k], wb[k]) : 0.0f);
  }
}


// grid (pair blocks, T): a thread per column pair of one token.
__global__ void gated_out_kernel(const float* gu, int n, int nt, int act, bool interleave16, ActOut o) {
  pdl_enter();
  const int t = blockIdx.y, p = blockIdx.x * blockDim.x + threadIdx.x;
  if (p >= pair_count(o, n)) return;
  const int k = 2 * p;
  const float a = k < n ? gated_value(gu, n, t, k, act, interleave16) : 0.0f;
  const float b = k + 1 < n ? gated_value(gu, n, t, k + 1, act, interleave16) : 0.0f;
  store_pair(o, n, nt, t, k, a, b);
}

// gated_out_kernel writing a W8A8 product's codes (ActOut::codes): a cluster of kGatedCodeBlocks blocks per
// token, each holding a slice of the token's row of act(gate) * up in registers (4 consecutive columns per
// thread per step, float4 loads of gate and up, every load issued before any is used); the slices' absmaxes
// meet through distributed shared memory, then each block writes its slice's codes (and block 0 the scale):
// the bits gated_out_kernel's f32 rows then quant_act_vec_kernel (w8a8.cu) give, by the same formula
// (gated.cuh), the same max (order-free) and the same codes (w8a8_codes.cuh). One block per token was 4%
// slower per one-stream INT8 step than the two kernels it replaces (docs/perf.md, session 30): the
// activation's arithmetic on one SM. Rows of n % 4 == 0 up to kGatedCodeBlocks * kGatedCodeRegs * 4096
// values (gated_act_writes_codes).
constexpr int kGatedCodeBlocks = 8, kGatedCodeRegs = 2;
__global__ void __cluster_dims__(kGatedCodeBlocks, 1, 1) __launch_bounds__(1024)
    gated_codes_kernel(const float* gu, int n, int slice, int act, bool interleave16, ActOut o) {
  __shared__ float red[32];
  __shared__ float slice_max;
  pdl_enter();
  const int t = blockIdx.y, c0 = int(blockIdx.x) * slice, c1 = min(n, c0 + slice);  // (slice % 4 == 0)
  const float* row = gu + size_t(t) * 2 * n;
  const int up = up_offset(n, interleave16);
  // step r's first column (4 columns in one block of 16 when interleaved)
  auto col = [&](int r) { return c0 + 4 * (r * int(blockDim.x) + int(threadIdx.x)); };
  float4 g[kGatedCodeRegs], u[kGatedCodeRegs];
#pragma unroll
  for (int r = 0; r < kGatedCodeRegs; ++r) {
    g[r] = u[r] = make_float4(0.f, 0.f, 0.f, 0.f);
    if (col(r) < c1) {
      g[r] = *reinterpret_cast<const float4*>(row + gate_index(col(r), interleave16));
      u[r] = *reinterpret_cast<const float4*>(row + gate_index(col(r), interleave16) + up);
    }
  }
  float4 v[kGatedCodeRegs];
  float am = 0.0f;
  bool nf = false;  // a value that is not finite (fmaxf drops NaNs, so the max alone cannot tell)
#pragma unroll
  for (int r = 0; r < kGatedCodeRegs; ++r) {
    v[r] = make_float4(0.f, 0.f, 0.f, 0.f);
    if (col(r) >= c1) continue;
    v[r] = make_float4(gated_act_value(g[r].x, u[r].x, act), gated_act_value(g[r].y, u[r].y, act),
                       gated_act_value(g[r].z, u[r].z, act), gated_act_value(g[r].w, u[r].w, act));
    am = fmaxf(am, absmax4(v[r]));
    nf = nf || !finite4(v[r]);
  }
  am = block_reduce(nf ? INFINITY : am, red, true);  // (see row_scale: infinity marks a bad value)
  if (threadIdx.x == 0) slice_max = am;
  cg::cluster_group cluster = cg::this_cluster();
  cluster.sync();  // every block's slice_max written
  float row_max = 0.0f;
#pragma unroll
  for (int b = 0; b < kGatedCodeBlocks; ++b) row_max = fmaxf(row_max, *cluster.map_shared_rank(&slice_max, b));
  cluster.sync();  // every block done reading the others' shared memory before any exits
  const float qs = row_scale(row_max, o.codes_fp8 ? 448.0f : 127.0f, !(row_max <= FLT_MAX),
                             blockIdx.x == 0 ? o.nonfinite : nullptr);
  uint32_t* qr = reinterpret_cast<uint32_t*>(o.codes + size_t(t) * n);
#pragma unroll
  for (int r = 0; r < kGatedCodeRegs; ++r) {
    if (col(r) >= c1) break;
    qr[col(r) / 4] = act_codes4(v[r], qs, o.codes_fp8);
  }
  if (blockIdx.x == 0 && threadIdx.x == 0) o.code_scale[t] = qs;
}

__global__ void copy16_kernel(const uint4* __restrict__ src, uint4* __restrict__ dst, size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    dst[i] = src[i];
}

__global__ void store_rows_kernel(const float* x, int n, int nt, ActOut o) {
  pdl_enter();
  const int t = blockIdx.y, p = blockIdx.x * blockDim.x + threadIdx.x;
  if (p >= pair_count(o, n)) return;
  const int k = 2 * p;
  const float* xr = x + size_t(t) * n;
  store_pair(o, n, nt, t, k, k < n ? xr[k] : 0.0f, k + 1 < n ? xr[k + 1] : 0.0f);
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

// --- Split-key attention (decode and prefill) -------------------------------------------------------

// Merges the splits of (head h, token t) (their partial max, sum and output in a.part) and writes the
// normalized output to a.out and a.act; the calling block's threads share the dims. Loads bypass L1
// (__ldcg): the partials may have been written by other blocks of the same launch.
// Even head dims, at most kMergePreload splits (attention_splits gives at most 16) and a thread per
// dim pair: each thread loads its pair of every split (one 8-byte load each) before the barrier that
// publishes the splits' weights, so those loads share one L2 round trip with warp 0's maxima and sums
// (otherwise: one trip for the maxima, then one per eight splits). At one-stream decode steps the last
// block of each (head, token) runs this between the attention and the o product. The sums are the
// same, in the same order, so the bits do not change.
constexpr int kMergePreload = 16;
__device__ void merge_splits(const AttentionArgs& a, int h, int t, int nt) {
  __shared__ float wsp[32];  // each split's weight exp(m_s - M); splits <= 32 (checked by attention())
  __shared__ float inv_l;
  const int64_t stride = a.hd_v + 2;
  const float* p = a.part + (int64_t(t) * a.n_head + h) * a.splits * stride;
  const bool preload = a.hd_v % 2 == 0 && a.splits <= kMergePreload && 2 * int(blockDim.x) >= a.hd_v;
  const int d0 = 2 * threadIdx.x;
  float2 v[kMergePreload];  // preload: this thread's pair (d0, d0 + 1) of each split
  if (preload && d0 < a.hd_v) {
    // 8-byte aligned: rows of hd_v + 2 floats (even) start at even offsets, and so does 2 + d0.
    const float2* q = reinterpret_cast<const float2*>(p + 2 + d0);
    const int64_t step = stride / 2;
#pragma unroll
    for (int s = 0; s < kMergePreload; ++s)
      if (s < a.splits) v[s] = __ldcg(q + s * step);
  }
  if (threadIdx.x < 32) {  // one warp: the splits' maxima and sums in parallel, reduced by shuffles
    const int sidx = threadIdx.x;
    const float ms = sidx < a.splits ? __ldcg(p + sidx * stride) : -INFINITY;
    const float ls = sidx < a.splits ? __ldcg(p + sidx * stride + 1) : 0.0f;
    float M = ms;
    for (int o = 16; o > 0; o >>= 1) M = fmaxf(M, __shfl_xor_sync(0xffffffffu, M, o));
    const float w = ms == -INFINITY ? 0.0f : expf(ms - M);
    float L = ls * w;
    for (int o = 16; o > 0; o >>= 1) L += __shfl_xor_sync(0xffffffffu, L, o);
    wsp[sidx] = w;
    if (sidx == 0) inv_l = 1.0f / L;
  }
  __syncthreads();
  const float inv = inv_l;
  if (preload) {
    if (d0 < a.hd_v) {
      float o0 = 0.0f, o1 = 0.0f;
#pragma unroll
      for (int s = 0; s < kMergePreload; ++s)
        if (s < a.splits) {
          const float w = wsp[s];
          o0 += v[s].x * w;
          o1 += v[s].y * w;
        }
      store_head_pair(a, h, t, nt, d0, o0 * inv, o1 * inv);
    }
    return;
  }
  for (int d = d0; d < a.hd_v; d += 2 * blockDim.x) {
    float o0 = 0.0f, o1 = 0.0f;
#pragma unroll 8
    for (int s = 0; s < a.splits; ++s) {  // independent loads: unrolled, they are in flight together
      const float w = wsp[s];
      o0 += __ldcg(p + s * stride + 2 + d) * w;
      if (d + 1 < a.hd_v) o1 += __ldcg(p + s * stride + 3 + d) * w;
    }
    store_head_pair(a, h, t, nt, d, o0 * inv, o1 * inv);
  }
}


constexpr int kSplitWarps = 4;

// The end of a split-key block whose warps' maxima, sums and output rows are in shared memory (after a
// barrier): with one split and counters (16 streams and more) the block holds all of (head, token), so it
// normalizes its own output: no partial written and read back, no fence, no counter; the same bits as the
// merge. Otherwise it writes its partial, and with counters the last block of the (head, token) to finish
// merges all splits and resets the counter for the next launch (every split has arrived by then).
template <int kWarps>
__device__ __forceinline__ void finish_split_block(const AttentionArgs& a, int h, int t, int sp, const float* sm_m,
                                                   const float* sm_l, const float (*sm_acc)[kMaxHeadDim]) {
  if (a.splits == 1 && a.counters) {
    write_one_split_output<kWarps>(a, h, t, (a.T + 7) / 8, sm_m, sm_l, sm_acc);
    return;
  }
  write_split_partial<kWarps>(a, h, t, sp, sm_m, sm_l, sm_acc);
  if (!a.counters) return;
  __shared__ bool last;
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) {
    unsigned* c = a.counters + int64_t(t) * a.n_head + h;
    last = atomicAdd(c, 1u) == unsigned(a.splits - 1);
    if (last) *c = 0u;
  }
  __syncthreads();
  if (last) {
    __threadfence();
    merge_splits(a, h, t, (a.T + 7) / 8);
  }
}

// Two f16 of a K or V row, loaded as streaming data (ld.global.cs: evict-first in L1 and L2). A step
// reads each cache row once per layer, and at 16 streams a layer's rows (42 MB at 160 keys) pass through
// L2 in one kernel: marked evict-first they leave L2 to what the step re-reads. On an H100, w4g128 at
// 16 streams: -1.5% per step (gen 64), -1.2% (gen 128); one stream, w8 and bf16 unchanged within noise
// (docs/perf.md, session 14). Loads with a createpolicy register and .L2::cache_hint gained less (their
// evict-normal form was 1.3% slower than plain loads), and choosing the load form at run time cost 3%.
__device__ __forceinline__ uint32_t load_kv_word(const uint16_t* p) {
  return __ldcs(reinterpret_cast<const uint32_t*>(p));
}

// Grid (n_head, T, splits), 4 warps. A lane holds NV 32-bit words of a K or V row: kPairs (head dims
// even): the half2 at dims 2 lane + 64 e; else one f16 at dim lane + 32 e. Each warp walks its keys
// KPW at a time: first every load of all KPW keys' K and V rows (branch-free: a key past the range
// re-reads the last valid row and is masked later), so KPW * 2 * NV loads are in flight per lane; then
// the scores (interleaved shuffle reductions) and one online-softmax update. The block's warps are
// merged in shared memory and the range's (max, sum, unnormalized output) written to `part`.
template <bool kPairs, int NV, int KPW, bool kRope = false>
__global__ void __launch_bounds__(kSplitWarps * 32) attention_split_kernel(AttentionArgs a) {
  constexpr int NF = kPairs ? 2 * NV : NV;  // f32 values per lane
  __shared__ float sm_m[kSplitWarps], sm_l[kSplitWarps];
  __shared__ float sm_acc[kSplitWarps][kMaxHeadDim];
  const int h = blockIdx.x, t = blockIdx.y, sp = blockIdx.z;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int kvh = h / (a.n_head / a.n_head_kv);
  const int64_t kd = int64_t(a.n_head_kv) * a.hd_k, vd = int64_t(a.n_head_kv) * a.hd_v;
  const SplitKeys keys = split_keys(a, t, sp);
  const int64_t pos = keys.pos, j0 = keys.j0, j1 = keys.j1;
  const uint16_t* kc = reinterpret_cast<const uint16_t*>(a.k_cache[t]) + int64_t(kvh) * a.hd_k;
  const uint16_t* vc = reinterpret_cast<const uint16_t*>(a.v_cache[t]) + int64_t(kvh) * a.hd_v;
  // f32 value f of the lane sits at dim fdim(f); word e holds values 2e, 2e + 1 (pairs) or e.
  auto wdim = [&](int e) { return kPairs ? 2 * lane + 64 * e : lane + 32 * e; };
  auto fdim = [&](int f) { return kPairs ? wdim(f >> 1) + (f & 1) : wdim(f); };
  // The K and V rows of keys jb .. jb + KPW - 1 (branch-free: a key past the range re-reads the last
  // valid row and is masked later).
  uint32_t kr[KPW][NV], vr[KPW][NV];
  auto load_keys = [&](int64_t jb) {
#pragma unroll
    for (int u = 0; u < KPW; ++u) {
      const int64_t j = min(jb + u, j1 - 1);
      const uint16_t* kj = kc + j * kd;
      const uint16_t* vj = vc + j * vd;
#pragma unroll
      for (int e = 0; e < NV; ++e) {
        const int d = wdim(e);
        if constexpr (kPairs) {
          kr[u][e] = d < a.hd_k ? load_kv_word(kj + d) : 0u;
          vr[u][e] = d < a.hd_v ? load_kv_word(vj + d) : 0u;
        } else {
          kr[u][e] = d < a.hd_k ? uint32_t(kj[d]) : 0u;
          vr[u][e] = d < a.hd_v ? uint32_t(vj[d]) : 0u;
        }
      }
    }
  };
  // With rope fused, every cache row this kernel reads before its own token's was written by an
  // earlier step (the token's own row is taken from registers below), so the warp's first keys can be
  // loaded before waiting for the q|k|v product: under an early launch their DRAM latency then overlaps
  // that product's tail. Without fused rope the kernel before this one wrote the token's row: wait first.
  const int64_t jfirst = j0 + int64_t(warp) * KPW;
  const bool preloaded = kRope && a.prewait_loads && jfirst < j1;
  if (preloaded) load_keys(jfirst);
  pdl_enter();
  const float* q = a.q + int64_t(t) * a.q_stride + int64_t(h) * a.hd_k;
  float qr[NF], acc[NF];
#pragma unroll
  for (int f = 0; f < NF; ++f) {
    qr[f] = fdim(f) < a.hd_k ? q[fdim(f)] : 0.0f;
    acc[f] = 0.0f;
  }
  // Fused rope (kPairs, NV = 2, n_rot = hd_k): rotate q, and this token's k, in registers, exactly as
  // rope_kv_kernel does; k and v rounded to f16 as the cache would hold them.
  uint32_t kcur[NV], vcur[NV];
  if constexpr (kRope) {
    static_assert(kPairs && NV == 2, "fused rope: half2 lanes, head dims <= 128");
    const int half = a.hd_k / 2;
    const float* cs = a.rope_cos + int64_t(t) * half;
    const float* sn = a.rope_sin + int64_t(t) * half;
    const float* kraw = q - int64_t(h) * a.hd_k + int64_t(a.n_head) * a.hd_k + int64_t(kvh) * a.hd_k;
    const float* vraw = q - int64_t(h) * a.hd_k + int64_t(a.n_head) * a.hd_k + kd + int64_t(kvh) * a.hd_v;
    float kf[2 * NV];
#pragma unroll
    for (int f = 0; f < 2 * NV; ++f) kf[f] = fdim(f) < a.hd_k ? kraw[fdim(f)] : 0.0f;
    auto rot = [&](float* v) {
      if (!a.rope_neox) {  // pairs (2i, 2i + 1): both in one word
#pragma unroll
        for (int e = 0; e < NV; ++e) {
          const int d = wdim(e);
          if (d >= a.hd_k) continue;
          const float c = cs[d / 2], s = sn[d / 2], x0 = v[2 * e], x1 = v[2 * e + 1];
          v[2 * e] = x0 * c - x1 * s;
          v[2 * e + 1] = x0 * s + x1 * c;
        }
      } else {  // hd 128: pairs (i, i + 64) are words 0 and 1 of the same lane
#pragma unroll
        for (int f = 0; f < 2; ++f) {
          const int i = 2 * lane + f;
          const float c = cs[i], s = sn[i], x0 = v[f], x1 = v[2 + f];
          v[f] = x0 * c - x1 * s;
          v[2 + f] = x0 * s + x1 * c;
        }
      }
    };
    rot(qr);
    rot(kf);
#pragma unroll
    for (int e = 0; e < NV; ++e) {
      const int d = wdim(e);
      kcur[e] = pack2(kf[2 * e], kf[2 * e + 1], false);
      vcur[e] = d < a.hd_v ? pack2(vraw[d], vraw[d + 1], false) : 0u;
    }
    // The block holding this token's position writes its k and v to the cache (one head per group).
    if (j0 <= pos && pos < j1 && h % (a.n_head / a.n_head_kv) == 0 && warp == 0) {
      uint16_t* kw = const_cast<uint16_t*>(kc) + pos * kd;  // the cache is device memory we own
      uint16_t* vw = const_cast<uint16_t*>(vc) + pos * vd;
#pragma unroll
      for (int e = 0; e < NV; ++e) {
        const int d = wdim(e);
        if (d < a.hd_k) *reinterpret_cast<uint32_t*>(kw + d) = kcur[e];
        if (d < a.hd_v) *reinterpret_cast<uint32_t*>(vw + d) = vcur[e];
      }
    }
  }
  float m = -INFINITY, l = 0.0f;
  for (int64_t jb = jfirst; jb < j1; jb += kSplitWarps * KPW) {
    if (!preloaded || jb != jfirst) load_keys(jb);
    if constexpr (kRope) {  // the token's own key is not in the cache yet (written above, racing)
#pragma unroll
      for (int u = 0; u < KPW; ++u)
        if (min(jb + u, j1 - 1) == pos)
#pragma unroll
          for (int e = 0; e < NV; ++e) {
            kr[u][e] = kcur[e];
            vr[u][e] = vcur[e];
          }
    }
    float s[KPW];
#pragma unroll
    for (int u = 0; u < KPW; ++u) {
      s[u] = 0.0f;
#pragma unroll
      for (int e = 0; e < NV; ++e) {
        if constexpr (kPairs) {
          const float2 f = __half22float2(*reinterpret_cast<const __half2*>(&kr[u][e]));
          s[u] += qr[2 * e] * f.x + qr[2 * e + 1] * f.y;
        } else {
          s[u] += qr[e] * __half2float(__ushort_as_half(uint16_t(kr[u][e])));
        }
      }
    }
    const float mx = finish_scores<KPW, 16, 1>(s, a, jb, j1);
    const float m_new = fmaxf(m, mx);  // finite: key jb < j1 is valid
    const float corr = m == -INFINITY ? 0.0f : expf(m - m_new);
    l *= corr;
#pragma unroll
    for (int f = 0; f < NF; ++f) acc[f] *= corr;
#pragma unroll
    for (int u = 0; u < KPW; ++u) {
      const float p = jb + u < j1 ? expf(s[u] - m_new) : 0.0f;
      l += p;
#pragma unroll
      for (int e = 0; e < NV; ++e) {
        if constexpr (kPairs) {
          const float2 f = __half22float2(*reinterpret_cast<const __half2*>(&vr[u][e]));
          acc[2 * e] += p * f.x;
          acc[2 * e + 1] += p * f.y;
        } else {
          acc[e] += p * __half2float(__ushort_as_half(uint16_t(vr[u][e])));
        }
      }
    }
    m = m_new;
  }
  if (lane == 0) {
    sm_m[warp] = m;
    sm_l[warp] = l;
  }
#pragma unroll
  for (int f = 0; f < NF; ++f)
    if (fdim(f) < a.hd_v) sm_acc[warp][fdim(f)] = acc[f];
  __syncthreads();
  finish_split_block<kSplitWarps>(a, h, t, sp, sm_m, sm_l, sm_acc);
}

// Head dims 128 (k = v), a half-warp per key: lane l holds dims 8 (l % 16) .. 8 (l % 16) + 7 of a K and a V
// row, one 16-byte load each; the warp's two half-warps take alternate keys, U pairs per step (2 U keys,
// the same 128 bytes per lane in flight as attention_split_kernel's 8 keys). Against a warp per key: a
// quarter of the load instructions, four shuffle rounds per score instead of five, and each lane computes
// the weights of its own U keys instead of all 2 U. Each half-warp keeps its own online softmax; the two
// are combined before the block's warps are, and the block ends as attention_split_kernel's does (same
// partials, merge and stores). Fused rope as there: q and the token's k rotated in registers (neox: the
// partner dims i + 64 are 8 lanes away, one shuffle), k and v rounded to f16 as the cache holds them.
template <int U, bool kRope>
__global__ void __launch_bounds__(kSplitWarps * 32) attention_hw_kernel(AttentionArgs a) {
  constexpr int kHd = 128, kStep = 2 * U;
  __shared__ float sm_m[kSplitWarps], sm_l[kSplitWarps];
  __shared__ __align__(16) float sm_acc[kSplitWarps][kMaxHeadDim];  // float4 stores
  const int h = blockIdx.x, t = blockIdx.y, sp = blockIdx.z;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, hw = lane >> 4, sub = lane & 15, d0 = 8 * sub;
  const int kvh = h / (a.n_head / a.n_head_kv);
  const int64_t kd = int64_t(a.n_head_kv) * kHd;  // row stride of K and of V (hd_k = hd_v)
  const SplitKeys keys = split_keys(a, t, sp);
  const int64_t pos = keys.pos, j0 = keys.j0, j1 = keys.j1;
  const uint16_t* kc = reinterpret_cast<const uint16_t*>(a.k_cache[t]) + int64_t(kvh) * kHd + d0;
  const uint16_t* vc = reinterpret_cast<const uint16_t*>(a.v_cache[t]) + int64_t(kvh) * kHd + d0;
  // Key of pair u for this half-warp: jb + 2 u + hw (branch-free: past the range, the last valid row
  // is re-read and masked below).
  uint4 kr[U], vr[U];
  auto load_keys = [&](int64_t jb) {
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int64_t j = min(jb + 2 * u + hw, j1 - 1);
      kr[u] = __ldcs(reinterpret_cast<const uint4*>(kc + j * kd));  // streaming, as load_kv_word
      vr[u] = __ldcs(reinterpret_cast<const uint4*>(vc + j * kd));
    }
  };
  const int64_t jfirst = j0 + int64_t(warp) * kStep;
  const bool preloaded = kRope && a.prewait_loads && jfirst < j1;  // as attention_split_kernel
  if (preloaded) load_keys(jfirst);
  pdl_enter();
  const float* q = a.q + int64_t(t) * a.q_stride + int64_t(h) * kHd;
  float qr[8], acc[8];
#pragma unroll
  for (int f = 0; f < 8; ++f) {
    qr[f] = q[d0 + f];
    acc[f] = 0.0f;
  }
  uint4 kcur = {}, vcur = {};
  if constexpr (kRope) {
    const float* cs = a.rope_cos + int64_t(t) * (kHd / 2);
    const float* sn = a.rope_sin + int64_t(t) * (kHd / 2);
    const float* kraw = q - int64_t(h) * kHd + int64_t(a.n_head) * kHd + int64_t(kvh) * kHd;
    const float* vraw = kraw + kd;
    float kf[8];
#pragma unroll
    for (int f = 0; f < 8; ++f) kf[f] = kraw[d0 + f];
    // The rotation of rope_kv_kernel, written the same way (x0 c - x1 s, x0 s + x1 c) so it rounds alike.
    auto rot = [&](float* v) {
      if (!a.rope_neox) {  // pairs (2i, 2i + 1): both in this lane
#pragma unroll
        for (int p = 0; p < 4; ++p) {
          const int i = d0 / 2 + p;
          const float c = cs[i], s = sn[i], x0 = v[2 * p], x1 = v[2 * p + 1];
          v[2 * p] = x0 * c - x1 * s;
          v[2 * p + 1] = x0 * s + x1 * c;
        }
      } else {  // pairs (i, i + 64): lanes sub and sub + 8 of the half-warp
#pragma unroll
        for (int f = 0; f < 8; ++f) {
          const int i = (d0 & 63) + f;
          const float c = cs[i], s = sn[i], other = __shfl_xor_sync(0xffffffffu, v[f], 8);
          v[f] = sub < 8 ? v[f] * c - other * s : other * s + v[f] * c;
        }
      }
    };
    rot(qr);
    rot(kf);
    kcur = make_uint4(pack2(kf[0], kf[1], false), pack2(kf[2], kf[3], false), pack2(kf[4], kf[5], false),
                      pack2(kf[6], kf[7], false));
    vcur = make_uint4(pack2(vraw[d0], vraw[d0 + 1], false), pack2(vraw[d0 + 2], vraw[d0 + 3], false),
                      pack2(vraw[d0 + 4], vraw[d0 + 5], false), pack2(vraw[d0 + 6], vraw[d0 + 7], false));
    // The block holding this token's position writes its k and v to the cache (one head per group).
    if (j0 <= pos && pos < j1 && h % (a.n_head / a.n_head_kv) == 0 && warp == 0 && hw == 0) {
      *reinterpret_cast<uint4*>(const_cast<uint16_t*>(kc) + pos * kd) = kcur;  // device memory we own
      *reinterpret_cast<uint4*>(const_cast<uint16_t*>(vc) + pos * kd) = vcur;
    }
  }
  float m = -INFINITY, l = 0.0f;
  for (int64_t jb = jfirst; jb < j1; jb += kSplitWarps * kStep) {
    if (!preloaded || jb != jfirst) load_keys(jb);
    if constexpr (kRope) {  // the token's own key is not in the cache yet (written above, racing)
#pragma unroll
      for (int u = 0; u < U; ++u)
        if (min(jb + 2 * u + hw, j1 - 1) == pos) {
          kr[u] = kcur;
          vr[u] = vcur;
        }
    }
    float s[U];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const __half2* k2 = reinterpret_cast<const __half2*>(&kr[u]);
      s[u] = 0.0f;
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float2 f = __half22float2(k2[e]);
        s[u] += qr[2 * e] * f.x + qr[2 * e + 1] * f.y;
      }
    }
    const float mx = finish_scores<U, 8, 2>(s, a, jb + hw, j1);  // summed within the half-warp
    // A half-warp may see no valid key in a step (its first key jb + 1 past the range): m_new stays
    // -inf, corr is 0 on zero sums, and every weight is 0 (never exp(-inf + inf)).
    const float m_new = fmaxf(m, mx);
    const float corr = m == -INFINITY ? 0.0f : expf(m - m_new);
    l *= corr;
#pragma unroll
    for (int f = 0; f < 8; ++f) acc[f] *= corr;
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const float p = jb + 2 * u + hw < j1 ? expf(s[u] - m_new) : 0.0f;
      l += p;
      const __half2* v2 = reinterpret_cast<const __half2*>(&vr[u]);
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float2 f = __half22float2(v2[e]);
        acc[2 * e] += p * f.x;
        acc[2 * e + 1] += p * f.y;
      }
    }
    m = m_new;
  }
  {  // the two half-warps' softmax states combined (both halves compute the same sums)
    const float m_o = __shfl_xor_sync(0xffffffffu, m, 16), l_o = __shfl_xor_sync(0xffffffffu, l, 16);
    const float M = fmaxf(m, m_o);
    const float ws = m == -INFINITY ? 0.0f : expf(m - M), wo = m_o == -INFINITY ? 0.0f : expf(m_o - M);
    l = l * ws + l_o * wo;
#pragma unroll
    for (int f = 0; f < 8; ++f) acc[f] = acc[f] * ws + __shfl_xor_sync(0xffffffffu, acc[f], 16) * wo;
    m = M;
  }
  if (lane == 0) {
    sm_m[warp] = m;
    sm_l[warp] = l;
  }
  if (hw == 0) {
    *reinterpret_cast<float4*>(&sm_acc[warp][d0]) = make_float4(acc[0], acc[1], acc[2], acc[3]);
    *reinterpret_cast<float4*>(&sm_acc[warp][d0 + 4]) = make_float4(acc[4], acc[5], acc[6], acc[7]);
  }
  __syncthreads();
  finish_split_block<kSplitWarps>(a, h, t, sp, sm_m, sm_l, sm_acc);
}

// --- Query-tiled attention (prefill) -----------------------------------------------------------------

constexpr int kQT = 8;  // query tokens per block

// Grid (n_head, ceil(T / kQT)), 4 warps; head dims even and <= 128 (a lane holds the half2 at dims
// 2 lane and 2 lane + 64). A block takes kQT consecutive tokens of the batch; when they share one
// cache (a prefill: one sequence's tokens in order) each K and V row is loaded once for all of them
// (the one-block-per-(head, token) kernels read every row once per token), each token masks the keys
// outside its own causal / window range and keeps its own online softmax. Tokens of different
// sequences in one tile are handled one at a time by the same code. Writes the normalized output (no
// partial sums), to a.out and a.act (no fragments: prefill products read rows).
template <int KPW>
__global__ void __launch_bounds__(kSplitWarps * 32) attention_tiled_kernel(AttentionArgs a) {
  __shared__ float sm_m[kSplitWarps][kQT], sm_l[kSplitWarps][kQT];
  __shared__ float sm_acc[kSplitWarps][kQT][128];
  const int h = blockIdx.x, t0 = blockIdx.y * kQT;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int cnt_all = min(kQT, a.T - t0);
  bool same = true;
  for (int i = 1; i < cnt_all; ++i)
    same = same && a.k_cache[t0 + i] == a.k_cache[t0] && a.v_cache[t0 + i] == a.v_cache[t0];
  const int kvh = h / (a.n_head / a.n_head_kv);
  const int64_t kd = int64_t(a.n_head_kv) * a.hd_k, vd = int64_t(a.n_head_kv) * a.hd_v;
  const int n = a.n_head * a.hd_v;
  const int d0 = 2 * lane, d1 = 2 * lane + 64;  // the lane's two dim pairs
  for (int grp = 0; grp < (same ? 1 : cnt_all); ++grp) {
    const int tb = same ? t0 : t0 + grp, cnt = same ? cnt_all : 1;
    const uint16_t* kc = reinterpret_cast<const uint16_t*>(a.k_cache[tb]) + int64_t(kvh) * a.hd_k;
    const uint16_t* vc = reinterpret_cast<const uint16_t*>(a.v_cache[tb]) + int64_t(kvh) * a.hd_v;
    int lo[kQT], hi[kQT];
    float qr[kQT][4], acc[kQT][4], m[kQT], l[kQT];
    int jlo = 0x7fffffff, jhi = -1;
#pragma unroll
    for (int u = 0; u < kQT; ++u) {
      m[u] = -INFINITY;
      l[u] = 0.0f;
#pragma unroll
      for (int f = 0; f < 4; ++f) acc[u][f] = 0.0f;
      if (u < cnt) {
        const int64_t pos = a.pos[tb + u];
        const int64_t first = a.window > 0 ? max(int64_t(0), pos - a.window + 1) : int64_t(0);
        lo[u] = int(first);
        hi[u] = int(pos);
        jlo = min(jlo, lo[u]);
        jhi = max(jhi, hi[u]);
        const float* q = a.q + int64_t(tb + u) * a.q_stride + int64_t(h) * a.hd_k;
        qr[u][0] = d0 < a.hd_k ? q[d0] : 0.0f;
        qr[u][1] = d0 < a.hd_k ? q[d0 + 1] : 0.0f;
        qr[u][2] = d1 < a.hd_k ? q[d1] : 0.0f;
        qr[u][3] = d1 < a.hd_k ? q[d1 + 1] : 0.0f;
      } else {
        lo[u] = 1;
        hi[u] = 0;  // empty
#pragma unroll
        for (int f = 0; f < 4; ++f) qr[u][f] = 0.0f;
      }
    }
    for (int jb = jlo + warp * KPW; jb <= jhi; jb += kSplitWarps * KPW) {
      uint32_t kr[KPW][2], vr[KPW][2];
#pragma unroll
      for (int k = 0; k < KPW; ++k) {
        const int64_t j = min(jb + k, jhi);
        const uint16_t* kj = kc + j * kd;
        const uint16_t* vj = vc + j * vd;
        kr[k][0] = d0 < a.hd_k ? *reinterpret_cast<const uint32_t*>(kj + d0) : 0u;
        kr[k][1] = d1 < a.hd_k ? *reinterpret_cast<const uint32_t*>(kj + d1) : 0u;
        vr[k][0] = d0 < a.hd_v ? *reinterpret_cast<const uint32_t*>(vj + d0) : 0u;
        vr[k][1] = d1 < a.hd_v ? *reinterpret_cast<const uint32_t*>(vj + d1) : 0u;
      }
      float kf[KPW][4];
#pragma unroll
      for (int k = 0; k < KPW; ++k) {
        const float2 x = __half22float2(*reinterpret_cast<const __half2*>(&kr[k][0]));
        const float2 y = __half22float2(*reinterpret_cast<const __half2*>(&kr[k][1]));
        kf[k][0] = x.x;
        kf[k][1] = x.y;
        kf[k][2] = y.x;
        kf[k][3] = y.y;
      }
      float s[kQT][KPW];
#pragma unroll
      for (int u = 0; u < kQT; ++u)
#pragma unroll
        for (int k = 0; k < KPW; ++k)
          s[u][k] = qr[u][0] * kf[k][0] + qr[u][1] * kf[k][1] + qr[u][2] * kf[k][2] + qr[u][3] * kf[k][3];
#pragma unroll
      for (int o = 16; o > 0; o >>= 1)
#pragma unroll
        for (int u = 0; u < kQT; ++u)
#pragma unroll
          for (int k = 0; k < KPW; ++k) s[u][k] += __shfl_xor_sync(0xffffffffu, s[u][k], o);
#pragma unroll
      for (int u = 0; u < kQT; ++u) {
        float mx = -INFINITY;
#pragma unroll
        for (int k = 0; k < KPW; ++k) {
          const int j = jb + k;
          float d = s[u][k] * a.scale;
          if (a.softcap > 0.0f) d = a.softcap * tanhf(d / a.softcap);
          s[u][k] = j <= jhi && j >= lo[u] && j <= hi[u] ? d : -INFINITY;
          mx = fmaxf(mx, s[u][k]);
        }
        if (mx == -INFINITY) continue;  // none of these keys is this token's
        const float m_new = fmaxf(m[u], mx);
        const float corr = m[u] == -INFINITY ? 0.0f : expf(m[u] - m_new);
        l[u] *= corr;
#pragma unroll
        for (int f = 0; f < 4; ++f) acc[u][f] *= corr;
#pragma unroll
        for (int k = 0; k < KPW; ++k) {
          const float p = s[u][k] == -INFINITY ? 0.0f : expf(s[u][k] - m_new);
          l[u] += p;
          const float2 x = __half22float2(*reinterpret_cast<const __half2*>(&vr[k][0]));
          const float2 y = __half22float2(*reinterpret_cast<const __half2*>(&vr[k][1]));
          acc[u][0] += p * x.x;
          acc[u][1] += p * x.y;
          acc[u][2] += p * y.x;
          acc[u][3] += p * y.y;
        }
        m[u] = m_new;
      }
    }
#pragma unroll
    for (int u = 0; u < kQT; ++u) {
      if (lane == 0) {
        sm_m[warp][u] = m[u];
        sm_l[warp][u] = l[u];
      }
      if (d0 < a.hd_v) {
        sm_acc[warp][u][d0] = acc[u][0];
        sm_acc[warp][u][d0 + 1] = acc[u][1];
      }
      if (d1 < a.hd_v) {
        sm_acc[warp][u][d1] = acc[u][2];
        sm_acc[warp][u][d1 + 1] = acc[u][3];
      }
    }
    __syncthreads();
    const int pairs = a.hd_v / 2;
    for (int it = threadIdx.x; it < cnt * pairs; it += blockDim.x) {
      const int u = it / pairs, d = 2 * (it % pairs);
      float M = -INFINITY;
      for (int w = 0; w < kSplitWarps; ++w) M = fmaxf(M, sm_m[w][u]);
      float L = 0.0f, o0 = 0.0f, o1 = 0.0f;
      for (int w = 0; w < kSplitWarps; ++w) {
        const float wt = sm_m[w][u] == -INFINITY ? 0.0f : expf(sm_m[w][u] - M);
        L += sm_l[w][u] * wt;
        o0 += sm_acc[w][u][d] * wt;
        o1 += sm_acc[w][u][d + 1] * wt;
      }
      o0 /= L;
      o1 /= L;
      const int t = tb + u, col = h * a.hd_v + d;
      if (a.out) {
        a.out[int64_t(t) * n + col] = o0;
        a.out[int64_t(t) * n + col + 1] = o1;
      }
      store_pair(a.act, n, (a.T + 7) / 8, t, col, o0, o1);
    }
    __syncthreads();  // the next group reuses the shared arrays
  }
}

// Grid (n_head, T): merges the splits of one (head, token) and writes out / act.
__global__ void attention_merge_kernel(AttentionArgs a, int nt) {
  pdl_enter();
  merge_splits(a, blockIdx.x, blockIdx.y, nt);
}

__global__ void q_to_f16_kernel(const float* q, int64_t q_stride, int nq, __half* out) {
  const int t = blockIdx.y;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < nq; i += gridDim.x * blockDim.x)
    out[size_t(t) * nq + i] = __float2half_rn(q[int64_t(t) * q_stride + i]);
}

// Row r = h * T + t of the scores: keys 0..p0 + t are the token's; the rest of the row gets 0.
__global__ void causal_softmax_kernel(const float* S, __half* P, int T, int64_t nk, int64_t p0, float softcap) {
  __shared__ float red[32];
  const int64_t r = blockIdx.x;
  const int t = int(r % T);
  const float* row = S + r * nk;
  __half* prow = P + r * nk;
  const int64_t valid = p0 + t + 1;
  auto val = [&](int64_t j) {
    const float d = row[j];
    return softcap > 0.0f ? softcap * tanhf(d / softcap) : d;
  };
  float mx = -INFINITY;
  for (int64_t j = threadIdx.x; j < valid; j += blockDim.x) mx = fmaxf(mx, val(j));
  mx = block_reduce(mx, red, true);
  float sum = 0.0f;
  for (int64_t j = threadIdx.x; j < valid; j += blockDim.x) sum += expf(val(j) - mx);
  sum = block_reduce(sum, red, false);
  const float inv = 1.0f / sum;
  for (int64_t j = threadIdx.x; j < nk; j += blockDim.x)
    prow[j] = __float2half_rn(j < valid ? expf(val(j) - mx) * inv : 0.0f);
}

int pair_threads(int pairs) { return pairs >= 256 ? 256 : ((pairs + 31) / 32) * 32; }

}  // namespace

size_t attention_gemm_scratch_bytes(int T, int n_head, int hd_k, int64_t n_keys) {
  const size_t q16 = (size_t(T) * n_head * hd_k * 2 + 255) / 256 * 256;
  const size_t sc = (size_t(n_head) * T * n_keys * 4 + 255) / 256 * 256;
  return q16 + sc + size_t(n_head) * T * n_keys * 2;
}

// Prefill attention fused on the tensor cores (flash-attention style), for the runs attention_gemm
// takes when the head dims are 64 or 128: one block per (64-query tile, head), 4 warps of 16 queries.
// 64-key tiles of K and V stream into two shared-memory stages with cp.async (the next tile loads while
// this one is computed); K rows are the B operand of S = Q K^T as 32-bit shared loads, V's come
// transposed out of ldmatrix.trans (row strides of HD + 8 halves: no bank conflicts either way).
// S = Q K^T on mma.sync m16n8k16 (f16 in, f32 accumulation), scale,
// soft-cap, causal mask, online softmax in f32 (per-thread partial row sums, reduced over the quad at
// the end), P rounded to f16 as the A operand of O += P V (two n8 accumulator tiles are one k16 A
// tile). Q and P are f16 as in the two-GEMM path; no score matrix touches memory. kSplit
// (GemmAttentionArgs::split16): Q and P also as their f16 remainders, each product run twice (hi, then
// lo), so each keeps about 22 bits. kScaled (GemmAttentionArgs::k_scale): K and V are codes, and each
// tile's 64 key scales and 64 value scales ride along with its rows into shared memory. A score is
// (Q . code) * its key's scale; P's A operand is P * (value scale / R), R the largest value scale of the
// tiles so far (so the operand stays in [0, 1], where f16 keeps its precision), and the accumulators are
// rescaled by R_old / R_new with the softmax's own rescale, then multiplied by R at the end.
__device__ __forceinline__ uint32_t f2_h2(float lo, float hi) {
  const __half2 h = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&h);
}
// The f16 pair's remainder: (lo, hi) minus the values of `h` (f2_h2's rounding of them), rounded to f16.
__device__ __forceinline__ uint32_t f2_h2_rest(float lo, float hi, uint32_t h) {
  const __half2 r = *reinterpret_cast<const __half2*>(&h);
  return f2_h2(lo - __low2float(r), hi - __high2float(r));
}
__device__ __forceinline__ void cp_async16(void* dst, const void* src) {
  const unsigned d = static_cast<unsigned>(__cvta_generic_to_shared(dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(d), "l"(src) : "memory");
}
template <int HD, bool kScaled>
constexpr size_t flash_smem_bytes() {  // 2 stages x (K, V), then (kScaled) 2 stages x (key, value) x 64 scales
  return size_t(2) * 2 * 64 * (HD + 8) * 2 + (kScaled ? size_t(2) * 2 * 64 * 4 : 0);
}
template <int HD, bool kSplit, bool kScaled>
__global__ void __launch_bounds__(128) attention_flash_kernel(GemmAttentionArgs a) {
  constexpr int BQ = 64, BK = 64, KS = HD + 8;  // shared row stride in halves (K and V: [key][dim])
  extern __shared__ __align__(16) uint16_t flash_smem[];
  float* scale_smem = reinterpret_cast<float*>(flash_smem + 2 * 2 * BK * KS);  // (kScaled) [stage][k, v][BK]
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
  const int h = blockIdx.y, kvh = h / (a.n_head / a.n_head_kv);
  const int q0 = blockIdx.x * BQ, wq0 = q0 + warp * 16;
  const int64_t kvd = int64_t(a.n_head_kv) * HD;
  const int r0 = min(wq0 + g, a.T - 1), r1 = min(wq0 + g + 8, a.T - 1);  // rows past T: computed, not written
  uint32_t qa[HD / 16][4], ql[kSplit ? HD / 16 : 1][4];  // Q in f16; with kSplit its remainders
  {
    const float* q0p = a.q + int64_t(r0) * a.q_stride + int64_t(h) * HD;
    const float* q1p = a.q + int64_t(r1) * a.q_stride + int64_t(h) * HD;
#pragma unroll
    for (int kk = 0; kk < HD / 16; ++kk) {
      const int c = 16 * kk + 2 * t4;
      const float v[4][2] = {{q0p[c], q0p[c + 1]}, {q1p[c], q1p[c + 1]}, {q0p[c + 8], q0p[c + 9]},
                             {q1p[c + 8], q1p[c + 9]}};
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        qa[kk][i] = f2_h2(v[i][0], v[i][1]);
        if constexpr (kSplit) ql[kk][i] = f2_h2_rest(v[i][0], v[i][1], qa[kk][i]);
      }
    }
  }
  float o[HD / 8][4];
#pragma unroll
  for (int nd = 0; nd < HD / 8; ++nd) o[nd][0] = o[nd][1] = o[nd][2] = o[nd][3] = 0.f;
  float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.f, l1 = 0.f;
  float vref = 0.f;  // (kScaled) R: the largest value scale of the tiles so far
  const int64_t pos0 = a.p0 + r0, pos1 = a.p0 + r1;
  const int64_t warp_last = a.p0 + min(wq0 + 15, a.T - 1), block_last = a.p0 + min(q0 + BQ - 1, a.T - 1);
  constexpr float kL2e = 1.4426950408889634f;
  // Tile kt's K and V rows into stage kt & 1; rows past the block's last key re-read that key (finite
  // values, masked below). Always one commit group per call.
  auto issue = [&](int kt) {
    uint16_t* Kd = flash_smem + size_t(kt & 1) * 2 * BK * KS;
    uint16_t* Vd = Kd + BK * KS;
#pragma unroll
    for (int u = 0; u < BK * HD / 8 / 128; ++u) {
      const int i = threadIdx.x + 128 * u, r = i / (HD / 8), c = (i % (HD / 8)) * 8;
      const int64_t key = min(int64_t(kt) * BK + r, block_last);
      cp_async16(Kd + r * KS + c, a.k_cache + key * kvd + int64_t(kvh) * HD + c);
      cp_async16(Vd + r * KS + c, a.v_cache + key * kvd + int64_t(kvh) * HD + c);
    }
    if constexpr (kScaled) {  // 16 lanes x 16 bytes per row of 64 scales (rows are whole tiles: no clamp)
      if (threadIdx.x < 32) {
        const int u = threadIdx.x & 15;
        const float* src = (threadIdx.x < 16 ? a.k_scale : a.v_scale) + int64_t(kvh) * a.scale_stride +
                           int64_t(kt) * BK + 4 * u;
        cp_async16(scale_smem + (kt & 1) * 2 * BK + (threadIdx.x >> 4) * BK + 4 * u, src);
      }
    }
    asm volatile("cp.async.commit_group;" ::: "memory");
  };
  const int n_tiles = int(block_last / BK) + 1;
  issue(0);
  for (int kt = 0; kt < n_tiles; ++kt) {
    if (kt + 1 < n_tiles) issue(kt + 1);
    else asm volatile("cp.async.commit_group;" ::: "memory");
    asm volatile("cp.async.wait_group 1;" ::: "memory");  // this thread's copies of tile kt are done
    __syncthreads();                                       // and everyone's
    const int64_t k0 = int64_t(kt) * BK;
    const uint16_t* Ks = flash_smem + size_t(kt & 1) * 2 * BK * KS;
    const uint16_t* Vs = Ks + BK * KS;
    const float* kss = scale_smem + (kt & 1) * 2 * BK;  // (kScaled) the tile's key scales, then value scales
    const float* vss = kss + BK;
    if (k0 <= warp_last) {  // else every key of the tile is after this warp's queries
    float sc[BK / 8][4];
#pragma unroll
    for (int nt = 0; nt < BK / 8; ++nt) {
      sc[nt][0] = sc[nt][1] = sc[nt][2] = sc[nt][3] = 0.f;
      const uint16_t* kr = Ks + (nt * 8 + g) * KS + 2 * t4;
#pragma unroll
      for (int kk = 0; kk < HD / 16; ++kk) {
        const uint32_t b0 = *reinterpret_cast<const uint32_t*>(kr + 16 * kk),
                       b1 = *reinterpret_cast<const uint32_t*>(kr + 16 * kk + 8);
        mma16816(sc[nt], qa[kk], b0, b1);
        if constexpr (kSplit) mma16816(sc[nt], ql[kk], b0, b1);
      }
    }
    float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
    for (int nt = 0; nt < BK / 8; ++nt)
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int kl = nt * 8 + 2 * t4 + (i & 1);
        const int64_t key = k0 + kl;
        float v = (kScaled ? sc[nt][i] * kss[kl] : sc[nt][i]) * a.scale;
        if (a.softcap > 0.f) v = a.softcap * tanhf(v / a.softcap);
        v = key <= (i < 2 ? pos0 : pos1) ? v : -INFINITY;
        sc[nt][i] = v;
        if (i < 2) mx0 = fmaxf(mx0, v);
        else mx1 = fmaxf(mx1, v);
      }
    mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
    mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
    mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
    mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
    // Key 0 is in every query's range and the first tile is processed first, so the maxima are finite.
    const float mn0 = fmaxf(m0, mx0), mn1 = fmaxf(m1, mx1);
    const float c0 = exp2f((m0 - mn0) * kL2e), c1 = exp2f((m1 - mn1) * kL2e);
    m0 = mn0;
    m1 = mn1;
    float rr = 1.f, inv_ref = 1.f;  // (kScaled) R_old / R_new, 1 / R_new
    if constexpr (kScaled) {
      float tm = fmaxf(vss[lane], vss[lane + 32]);
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) tm = fmaxf(tm, __shfl_xor_sync(0xffffffffu, tm, off));
      const float rn = fmaxf(fmaxf(vref, tm), FLT_MIN);  // (all-zero scales so far: any positive R)
      rr = vref / rn;
      inv_ref = 1.f / rn;
      vref = rn;
    }
    float rs0 = 0.f, rs1 = 0.f;
#pragma unroll
    for (int nt = 0; nt < BK / 8; ++nt) {
      sc[nt][0] = exp2f((sc[nt][0] - mn0) * kL2e);
      sc[nt][1] = exp2f((sc[nt][1] - mn0) * kL2e);
      sc[nt][2] = exp2f((sc[nt][2] - mn1) * kL2e);
      sc[nt][3] = exp2f((sc[nt][3] - mn1) * kL2e);
      rs0 += sc[nt][0] + sc[nt][1];
      rs1 += sc[nt][2] + sc[nt][3];
    }
    l0 = l0 * c0 + rs0;
    l1 = l1 * c1 + rs1;
#pragma unroll
    for (int nd = 0; nd < HD / 8; ++nd) {
      o[nd][0] *= c0 * rr;
      o[nd][1] *= c0 * rr;
      o[nd][2] *= c1 * rr;
      o[nd][3] *= c1 * rr;
    }
    if constexpr (kScaled) {  // P's A operand: the weight times its value's scale over R (l above took P)
#pragma unroll
      for (int nt = 0; nt < BK / 8; ++nt) {
        const float2 sv = *reinterpret_cast<const float2*>(vss + nt * 8 + 2 * t4);
        const float s0 = sv.x * inv_ref, s1 = sv.y * inv_ref;
        sc[nt][0] *= s0;
        sc[nt][1] *= s1;
        sc[nt][2] *= s0;
        sc[nt][3] *= s1;
      }
    }
#pragma unroll
    for (int j = 0; j < BK / 16; ++j) {
      const uint32_t pa[4] = {f2_h2(sc[2 * j][0], sc[2 * j][1]), f2_h2(sc[2 * j][2], sc[2 * j][3]),
                              f2_h2(sc[2 * j + 1][0], sc[2 * j + 1][1]), f2_h2(sc[2 * j + 1][2], sc[2 * j + 1][3])};
      uint32_t pl[4] = {};  // (kSplit: P's remainders)
      if constexpr (kSplit) {
        pl[0] = f2_h2_rest(sc[2 * j][0], sc[2 * j][1], pa[0]);
        pl[1] = f2_h2_rest(sc[2 * j][2], sc[2 * j][3], pa[1]);
        pl[2] = f2_h2_rest(sc[2 * j + 1][0], sc[2 * j + 1][1], pa[2]);
        pl[3] = f2_h2_rest(sc[2 * j + 1][2], sc[2 * j + 1][3], pa[3]);
      }
#pragma unroll
      // ldmatrix.x4.trans: lanes 8m..8m+7 address the rows of matrix m (keys + 8 (m & 1), dims + 8 (m >> 1)),
      // which come back as the B operands (b0, b1) of n-tiles nd and nd + 1.
      for (int nd = 0; nd < HD / 8; nd += 2) {
        const uint16_t* vr = Vs + (16 * j + (lane & 7) + 8 * ((lane >> 3) & 1)) * KS + nd * 8 + 8 * (lane >> 4);
        uint32_t b0, b1, b2, b3;
        asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
                     : "=r"(b0), "=r"(b1), "=r"(b2), "=r"(b3)
                     : "r"(static_cast<unsigned>(__cvta_generic_to_shared(vr))));
        mma16816(o[nd], pa, b0, b1);
        mma16816(o[nd + 1], pa, b2, b3);
        if constexpr (kSplit) {
          mma16816(o[nd], pl, b0, b1);
          mma16816(o[nd + 1], pl, b2, b3);
        }
      }
    }
    }
    __syncthreads();  // stage kt & 1 is consumed before tile kt + 2 is issued into it
  }
  l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
  l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
  l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
  l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
  const float inv0 = (kScaled ? vref : 1.f) / l0, inv1 = (kScaled ? vref : 1.f) / l1;
  const int64_t ostride = int64_t(a.n_head) * HD;
  auto put = [&](int row, int col, float x, float y) {
    if (row >= a.T) return;
    if (a.out) {
      a.out[row * ostride + col] = x;
      a.out[row * ostride + col + 1] = y;
    }
    if (a.act.half_rows) {
      const uint32_t lo = a.act.bf16 ? __bfloat16_as_ushort(__float2bfloat16_rn(x)) : __half_as_ushort(__float2half_rn(x));
      const uint32_t hi = a.act.bf16 ? __bfloat16_as_ushort(__float2bfloat16_rn(y)) : __half_as_ushort(__float2half_rn(y));
      *reinterpret_cast<uint32_t*>(a.act.half_rows + row * ostride + col) = lo | (hi << 16);
    }
  };
#pragma unroll
  for (int nd = 0; nd < HD / 8; ++nd) {
    const int col = h * HD + nd * 8 + 2 * t4;
    put(wq0 + g, col, o[nd][0] * inv0, o[nd][1] * inv0);
    put(wq0 + g + 8, col, o[nd][2] * inv1, o[nd][3] * inv1);
  }
}

bool attention_gemm(void* handle, const GemmAttentionArgs& a, cudaStream_t s) {
  if (a.T <= 0) return true;
  if (a.hd_k % 8 != 0 || a.hd_v % 8 != 0 || a.n_head % a.n_head_kv != 0) return false;
  const bool scaled = a.k_scale || a.v_scale;
  if (scaled && (!a.k_scale || !a.v_scale || a.scale_stride % 64 != 0 || a.scale_stride < a.p0 + a.T ||
                 reinterpret_cast<uintptr_t>(a.k_scale) % 16 != 0 || reinterpret_cast<uintptr_t>(a.v_scale) % 16 != 0))
    return false;
  if (attention_flash_takes(a)) {
    const dim3 grid(unsigned((a.T + 63) / 64), unsigned(a.n_head));
    auto run = [&](auto kernel, size_t smem) {
      if (smem > 48 * 1024)
        QB_CUDA_OK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
      kernel<<<grid, 128, smem, s>>>(a);
    };
    auto pick = [&](auto hd, auto split) {
      constexpr int HD = decltype(hd)::value;
      constexpr bool kSplit = decltype(split)::value;
      if (scaled) run(attention_flash_kernel<HD, kSplit, true>, flash_smem_bytes<HD, true>());
      else run(attention_flash_kernel<HD, kSplit, false>, flash_smem_bytes<HD, false>());
    };
    using Yes = std::true_type;
    using No = std::false_type;
    if (a.hd_k == 64) a.split16 ? pick(std::integral_constant<int, 64>{}, Yes{}) : pick(std::integral_constant<int, 64>{}, No{});
    else a.split16 ? pick(std::integral_constant<int, 128>{}, Yes{}) : pick(std::integral_constant<int, 128>{}, No{});
    QB_CUDA_LAUNCHED();
    return true;
  }
  // (the two-GEMM path rounds Q and P to f16 once, and reads K and V as values)
  if (a.split16 || a.k_scale || a.v_scale) return false;
  auto h = static_cast<cublasHandle_t>(handle);
  const int64_t nk = a.p0 + a.T;
  const int nq = a.n_head * a.hd_k, group = a.n_head / a.n_head_kv;
  const int kvd = a.n_head_kv * a.hd_k, kvv = a.n_head_kv * a.hd_v;
  auto* base = static_cast<uint8_t*>(a.scratch);
  auto* q16 = reinterpret_cast<__half*>(base);
  auto* S = reinterpret_cast<float*>(base + (size_t(a.T) * nq * 2 + 255) / 256 * 256);
  auto* P = reinterpret_cast<__half*>(reinterpret_cast<uint8_t*>(S) +
                                      (size_t(a.n_head) * a.T * nk * 4 + 255) / 256 * 256);
  q_to_f16_kernel<<<dim3(unsigned((nq + 255) / 256), unsigned(a.T)), 256, 0, s>>>(a.q, a.q_stride, nq, q16);
  QB_CUDA_LAUNCHED();
  const float alpha = a.scale, one = 1.0f, zero = 0.0f;
  for (int g = 0; g < group; ++g) {
    // Column-major: S_h (nk x T, ld nk) = K_kvh^T-view... op(K) = (hd x nk, ld kvd)^T, Q_h (hd x T, ld nq).
    const cublasStatus_t st = cublasGemmStridedBatchedEx(
        h, CUBLAS_OP_T, CUBLAS_OP_N, int(nk), a.T, a.hd_k, &alpha, a.k_cache, CUDA_R_16F, kvd, a.hd_k,
        q16 + size_t(g) * a.hd_k, CUDA_R_16F, nq, int64_t(group) * a.hd_k, &zero, S + size_t(g) * a.T * nk,
        CUDA_R_32F, int(nk), int64_t(group) * a.T * nk, a.n_head_kv, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    if (st != CUBLAS_STATUS_SUCCESS) throw std::runtime_error("attention_gemm: scores GEMM failed, status " + std::to_string(int(st)));
  }
  causal_softmax_kernel<<<unsigned(int64_t(a.n_head) * a.T), 256, 0, s>>>(S, P, a.T, nk, a.p0, a.softcap);
  QB_CUDA_LAUNCHED();
  for (int g = 0; g < group; ++g) {
    // O_h^T (hd_v x T, ld n_head * hd_v) = V_kvh^T-view (hd_v x nk, ld kvv) * P_h^T-view (nk x T, ld nk).
    const cublasStatus_t st = cublasGemmStridedBatchedEx(
        h, CUBLAS_OP_N, CUBLAS_OP_N, a.hd_v, a.T, int(nk), &one, a.v_cache, CUDA_R_16F, kvv, a.hd_v,
        P + size_t(g) * a.T * nk, CUDA_R_16F, int(nk), int64_t(group) * a.T * nk, &zero, a.out + size_t(g) * a.hd_v,
        CUDA_R_32F, a.n_head * a.hd_v, int64_t(group) * a.hd_v, a.n_head_kv, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    if (st != CUBLAS_STATUS_SUCCESS) throw std::runtime_error("attention_gemm: values GEMM failed, status " + std::to_string(int(st)));
  }
  return true;
}

int attention_splits(int n_head, int T, int sm_count, int blocks_per_sm, int one_split_blocks_per_sm) {
  // Decode batches only (T <= 16, where it was measured); prefill chunks keep the blocks-per-SM rule.
  if (T <= 16 && (one_split_blocks_per_sm < 0 ||
                  (one_split_blocks_per_sm > 0 && int64_t(n_head) * T >= int64_t(one_split_blocks_per_sm) * sm_count)))
    return 1;
  const int want = (blocks_per_sm * sm_count + n_head * T - 1) / (n_head * T);
  return want < 1 ? 1 : (want > 16 ? 16 : want);
}

static int norm_reg_threads(int pairs) {
  const int th = ((pairs + kNormPairs - 1) / kNormPairs + 31) / 32 * 32;
  return th < 64 ? 64 : th;
}

bool add_rmsnorm_writes_codes(int n, bool loop_kernel) {
  return !loop_kernel && n % 2 == 0 && norm_reg_threads((n + 1) / 2) <= 1024;
}

void add_rmsnorm(float* x, const float* add, const float* w, int n, int T, float eps, const int32_t* rows,
                 const ActOut& out, cudaStream_t s, bool loop_kernel, bool early, bool prewait) {
  if (T <= 0) return;
  if (out.codes && (out.frag || !add_rmsnorm_writes_codes(n, loop_kernel)))
    throw std::invalid_argument("add_rmsnorm: W8A8 codes need the register kernel, rows of even width up to "
                                "8192, and no fragments");
  const int pairs = pair_count(out, n);
  const int reg_threads = norm_reg_threads(pairs);
  if (reg_threads <= 1024 && !loop_kernel) {  // rows up to 8192 wide (16384 with fragments' padding counted)
    launch_kernel(out.codes ? add_rmsnorm_reg_kernel<true> : add_rmsnorm_reg_kernel<false>, dim3(unsigned(T)),
                  dim3(unsigned(reg_threads)), 0, s, early, x, add, w, n, (T + 7) / 8, eps, rows, out, prewait);
    QB_CUDA_LAUNCHED();
    return;
  }
  int threads = ((pairs / 2 + 31) / 32) * 32;  // about two pairs per thread
  threads = threads < 64 ? 64 : (threads > 1024 ? 1024 : threads);
  launch_kernel(add_rmsnorm_kernel, dim3(unsigned(T)), dim3(unsigned(threads)), 0, s, early, x, add, w, n,
                (T + 7) / 8, eps, rows, out);
  QB_CUDA_LAUNCHED();
}

// gated_codes_kernel's slice of a row (a multiple of 4 columns) and its threads: as many as the slice has
// float4 steps, up to 1024 (fewer steps per thread, more loads in flight), whole warps, at least 64.
static int gated_codes_slice(int n) { return (n / 4 + kGatedCodeBlocks - 1) / kGatedCodeBlocks * 4; }
static int gated_codes_threads(int n) {
  const int th = (gated_codes_slice(n) / 4 + 31) / 32 * 32;
  return th < 64 ? 64 : (th > 1024 ? 1024 : th);
}

bool gated_act_writes_codes(int n) {
  return n > 0 && n % 4 == 0 && n <= kGatedCodeBlocks * kGatedCodeRegs * 4 * 1024;
}

void gated_act_out(const float* gate_up, int n, int T, int act, const ActOut& out, cudaStream_t s, bool early,
                   bool interleave16) {
  if (T <= 0) return;
  if (interleave16 && n % 16 != 0) throw std::invalid_argument("gated_act_out: interleaved blocks of 16 need n % 16 == 0");
  if (out.codes) {
    if (out.f32 || out.half_rows || out.frag || !gated_act_writes_codes(n))
      throw std::invalid_argument("gated_act_out: W8A8 codes alone, rows of a multiple of 4 up to " +
                                  std::to_string(kGatedCodeBlocks * kGatedCodeRegs * 4096) + " wide");
    launch_kernel(gated_codes_kernel, dim3(unsigned(kGatedCodeBlocks), unsigned(T)),
                  dim3(unsigned(gated_codes_threads(n))), 0, s, early, gate_up, n, gated_codes_slice(n), act,
                  interleave16, out);
    QB_CUDA_LAUNCHED();
    return;
  }
  const int pairs = pair_count(out, n), th = pair_threads(pairs);
  launch_kernel(gated_out_kernel, dim3(unsigned((pairs + th - 1) / th), unsigned(T)), dim3(unsigned(th)), 0, s, early,
                gate_up, n, (T + 7) / 8, act, interleave16, out);
  QB_CUDA_LAUNCHED();
}

void store_rows(const float* x, int n, int T, const ActOut& out, cudaStream_t s) {
  if (T <= 0) return;
  if (out.f32 && out.f32 != x) throw std::runtime_error("store_rows: out.f32 must be null or the input");
  if (out.codes) throw std::invalid_argument("store_rows: W8A8 codes are written by the norm kernel only");
  ActOut o = out;
  o.f32 = nullptr;
  if (!o.half_rows && !o.frag) return;
  const int pairs = pair_count(o, n), th = pair_threads(pairs);
  store_rows_kernel<<<dim3(unsigned((pairs + th - 1) / th), unsigned(T)), th, 0, s>>>(x, n, (T + 7) / 8, o);
  QB_CUDA_LAUNCHED();
}

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
  const int items = (a.n_head + a.n_head_kv) * (a.n_rot / 2) + a.n_head_kv * (a.hd_k - a.n_rot) + a.n_head_kv * a.hd_v;
  rope_kv_kernel<<<dim3(unsigned((items + 127) / 128), unsigned(a.T)), 128, 0, s>>>(a);
  QB_CUDA_LAUNCHED();
}

void attention(const AttentionArgs& a, cudaStream_t s) {
  if (a.T <= 0) return;
  if (a.hd_k > kMaxHeadDim || a.hd_v > kMaxHeadDim)
    throw std::runtime_error("cuda attention: head dimension above " + std::to_string(kMaxHeadDim));
  if (a.splits < 1) {
    attention_kernel<<<dim3(unsigned(a.n_head), unsigned(a.T)), kAttnThreads, 0, s>>>(a);
    QB_CUDA_LAUNCHED();
    return;
  }
  if (a.splits == 1 && a.T > 16 && !a.rope_cos && a.hd_k % 2 == 0 && a.hd_v % 2 == 0 && a.hd_k <= 128 && a.hd_v <= 128 &&
      !a.act.frag) {  // prefill: query tiles share their K/V loads
    attention_tiled_kernel<2><<<dim3(unsigned(a.n_head), unsigned((a.T + kQT - 1) / kQT)), kSplitWarps * 32, 0, s>>>(a);
    QB_CUDA_LAUNCHED();
    return;
  }
  if (a.rope_cos && (a.splits < 1 || !attention_can_fuse_rope(a.hd_k, a.hd_v, a.hd_k, a.rope_neox)))
    throw std::runtime_error("cuda attention: fused rope needs the split path and head dims it supports");
  if (!a.part) throw std::runtime_error("cuda attention: split path without a partial-sum buffer");
  if (a.splits > 32) throw std::runtime_error("cuda attention: more than 32 splits");
  if (a.act.frag && (a.hd_v % 2 != 0 || (a.n_head * a.hd_v) % 64 != 0))
    throw std::runtime_error("cuda attention: fragments need an even head dimension and a width multiple of 64");
  const dim3 grid(unsigned(a.n_head), unsigned(a.T), unsigned(a.splits));
  if (a.hd_k % 2 == 0 && a.hd_v % 2 == 0) {
    const dim3 block(kSplitWarps * 32);
    const bool e = a.early_launch;
    if (attention_half_warp_takes(a.half_warp_keys, a.hd_k, a.hd_v)) {
      if (a.rope_cos) launch_kernel(attention_hw_kernel<4, true>, grid, block, 0, s, e, a);
      else launch_kernel(attention_hw_kernel<4, false>, grid, block, 0, s, e, a);
    } else if (a.rope_cos) launch_kernel(attention_split_kernel<true, 2, 8, true>, grid, block, 0, s, e, a);
    else if (a.hd_k <= 128 && a.hd_v <= 128) launch_kernel(attention_split_kernel<true, 2, 8>, grid, block, 0, s, e, a);
    else launch_kernel(attention_split_kernel<true, 4, 4>, grid, block, 0, s, e, a);
  } else {
    launch_kernel(attention_split_kernel<false, 8, 4>, grid, dim3(kSplitWarps * 32), 0, s, a.early_launch, a);
  }
  QB_CUDA_LAUNCHED();
  if (a.counters) return;  // merged by each (head, token)'s last block
  const int th = a.hd_v >= 128 ? 64 : 32;
  attention_merge_kernel<<<dim3(unsigned(a.n_head), unsigned(a.T)), th, 0, s>>>(a, (a.T + 7) / 8);
  QB_CUDA_LAUNCHED();
}

void attention_merge(const AttentionArgs& a, cudaStream_t s) {
  if (a.T <= 0) return;
  if (a.splits < 1 || a.splits > 32 || !a.part) throw std::runtime_error("cuda attention_merge: needs 1..32 splits and partial sums");
  const int th = a.hd_v >= 128 ? 64 : 32;
  attention_merge_kernel<<<dim3(unsigned(a.n_head), unsigned(a.T)), th, 0, s>>>(a, (a.T + 7) / 8);
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
