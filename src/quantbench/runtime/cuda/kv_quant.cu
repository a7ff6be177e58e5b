// See kv_quant.h. The quantizer is one device function (quantize_head) shared by the store kernel and
// the kernel check, written as the CPU's kv_quantize_row computes: absmax over the group (NaNs ignored,
// as std::max ignores them there), s = absmax / qmax and x / s as IEEE f32 divisions (nvcc's default
// -prec-div=true), round-half-even (rintf), the same clamps, NaN to code 0 (fp8: 0x7f), fp8 through the
// hardware's saturating e4m3 conversion. Decode attention is the split-key kernel of attention_decode.cu
// over codes: a lane holds 4 consecutive dims of a key (one 32-bit load for int8/fp8, 16-bit for int4)
// and the key's scale (a broadcast load); the scale multiplies the lane's partial dot product (q . code)
// and the softmax weight of the value, so dequantization costs one multiply per 4 values.
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "quantbench/runtime/cuda/cuda_check.h"
#include "quantbench/runtime/cuda/split_partial.cuh"
#include "quantbench/runtime/cuda/kv_quant.h"
#include "quantbench/runtime/cuda/online_softmax.cuh"

namespace qb::runtime::cuda {
namespace {

// One rope pair, rounded as written (no FMA contraction): the rotated k, hence its codes, do not depend
// on how the compiler contracts this kernel.
__device__ __forceinline__ float rope_y0(float x0, float x1, float c, float s) {
  return __fsub_rn(__fmul_rn(x0, c), __fmul_rn(x1, s));
}
__device__ __forceinline__ float rope_y1(float x0, float x1, float c, float s) {
  return __fadd_rn(__fmul_rn(x0, s), __fmul_rn(x1, c));
}

__device__ __forceinline__ float qmax_of(int code) {
  return code == kKvInt8 ? 127.0f : code == kKvFp8 ? 448.0f : 7.0f;
}

// rne_clamp of kv_cache.cpp: NaN -> 0, else rint clamped to [lo, hi].
__device__ __forceinline__ int rne_clamp(float v, int lo, int hi) {
  if (v != v) return 0;
  const float r = rintf(v);
  if (r < float(lo)) return lo;
  if (r > float(hi)) return hi;
  return int(r);
}

__device__ __forceinline__ uint8_t fp8_code(float v) {
  if (v != v) return 0x7f;  // quant::fp8_encode_value's NaN
  return uint8_t(__nv_cvt_float_to_fp8(v, __NV_SATFINITE, __NV_E4M3));
}

// Head `head` of one row, already in shared memory (buf: hd floats), quantized into the cache row.
// A warp per group: absmax by shuffles, then the codes.
__device__ void quantize_head(const float* buf, uint8_t* row, const KvRowLayout& l, int head) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nw = blockDim.x >> 5;
  const int G = l.hd / l.group;
  const float qmax = qmax_of(l.code);
  float* scales = reinterpret_cast<float*>(row + l.scale_off);
  for (int g = warp; g < G; g += nw) {
    const float* x = buf + g * l.group;
    float am = 0.0f;
    for (int i = lane; i < l.group; i += 32) am = fmaxf(am, fabsf(x[i]));
    for (int o = 16; o > 0; o >>= 1) am = fmaxf(am, __shfl_xor_sync(0xffffffffu, am, o));
    const float s = am / qmax;
    const int64_t base = int64_t(head) * l.hd + int64_t(g) * l.group;
    if (lane == 0) scales[base / l.group] = s;
    if (l.code == kKvInt4) {
      for (int p = lane; p < l.group / 2; p += 32) {
        const float v0 = s > 0.0f ? x[2 * p] / s : 0.0f, v1 = s > 0.0f ? x[2 * p + 1] / s : 0.0f;
        const int lo = rne_clamp(v0, -8, 7) + 8, hi = rne_clamp(v1, -8, 7) + 8;
        row[(base + 2 * p) / 2] = uint8_t(lo | (hi << 4));
      }
    } else {
      for (int i = lane; i < l.group; i += 32) {
        const float v = s > 0.0f ? x[i] / s : 0.0f;
        row[base + i] = l.code == kKvInt8 ? uint8_t(int8_t(rne_clamp(v, -127, 127))) : fp8_code(v);
      }
    }
  }
}

// Grid (n_head + 2 n_head_kv, T): q heads rotated in place; k heads rotated (in place too, as
// rope_kv_kernel leaves them) and quantized; v heads quantized.
__global__ void rope_store_quant_kernel(RopeKvArgs a, KvRowLayout kl, KvRowLayout vl) {
  __shared__ float buf[kMaxHeadDim];
  const int t = blockIdx.y, b = blockIdx.x, half = a.n_rot / 2;
  float* row = a.qkv + int64_t(t) * a.qkv_stride;
  auto rotate = [&](float* head, float* copy) {
    for (int i = threadIdx.x; i < half; i += blockDim.x) {
      const int ia = a.neox ? i : 2 * i, ib = a.neox ? i + half : 2 * i + 1;
      const float c = a.cos[int64_t(t) * half + i], s = a.sin[int64_t(t) * half + i];
      const float x0 = head[ia], x1 = head[ib];
      const float y0 = rope_y0(x0, x1, c, s), y1 = rope_y1(x0, x1, c, s);
      head[ia] = y0;
      head[ib] = y1;
      if (copy) {
        copy[ia] = y0;
        copy[ib] = y1;
      }
    }
  };
  if (b < a.n_head) {
    rotate(row + int64_t(b) * a.hd_k, nullptr);
    return;
  }
  if (b < a.n_head + a.n_head_kv) {
    const int kh = b - a.n_head;
    float* head = row + int64_t(a.n_head + kh) * a.hd_k;
    for (int d = a.n_rot + threadIdx.x; d < a.hd_k; d += blockDim.x) buf[d] = head[d];
    rotate(head, buf);
    __syncthreads();
    quantize_head(buf, reinterpret_cast<uint8_t*>(a.k_cache[t]) + a.pos[t] * kl.row_bytes, kl, kh);
    return;
  }
  const int vh = b - a.n_head - a.n_head_kv;
  const float* head = row + int64_t(a.n_head + a.n_head_kv) * a.hd_k + int64_t(vh) * a.hd_v;
  for (int d = threadIdx.x; d < a.hd_v; d += blockDim.x) buf[d] = head[d];
  __syncthreads();
  quantize_head(buf, reinterpret_cast<uint8_t*>(a.v_cache[t]) + a.pos[t] * vl.row_bytes, vl, vh);
}

__global__ void quantize_rows_kernel(const float* x, int64_t x_stride, KvRowLayout l, uint8_t* dst) {
  __shared__ float buf[kMaxHeadDim];
  const int h = blockIdx.x, r = blockIdx.y;
  const float* src = x + int64_t(r) * x_stride + int64_t(h) * l.hd;
  for (int d = threadIdx.x; d < l.hd; d += blockDim.x) buf[d] = src[d];
  __syncthreads();
  quantize_head(buf, dst + int64_t(r) * l.row_bytes, l, h);
}

// One code (in the low bits) to its unscaled value.
template <int CODE>
__device__ __forceinline__ float dq1(uint32_t c) {
  if constexpr (CODE == kKvInt8) {
    return float(int8_t(uint8_t(c)));
  } else if constexpr (CODE == kKvFp8) {
    const __half_raw h = __nv_cvt_fp8_to_halfraw(__nv_fp8_storage_t(c & 0xffu), __NV_E4M3);
    return __half2float(__half(h));
  } else {
    return float(int(c & 0xfu) - 8);
  }
}
// Four consecutive codes (int8/fp8: a 32-bit word; int4: 16 bits) to unscaled values.
template <int CODE>
__device__ __forceinline__ void dq4(uint32_t w, float (&o)[4]) {
  if constexpr (CODE == kKvFp8) {
    const float2 a = __half22float2(__half2(__nv_cvt_fp8x2_to_halfraw2(__nv_fp8x2_storage_t(w & 0xffffu), __NV_E4M3)));
    const float2 b = __half22float2(__half2(__nv_cvt_fp8x2_to_halfraw2(__nv_fp8x2_storage_t(w >> 16), __NV_E4M3)));
    o[0] = a.x;
    o[1] = a.y;
    o[2] = b.x;
    o[3] = b.y;
  } else {
    constexpr int sh = CODE == kKvInt4 ? 4 : 8;
#pragma unroll
    for (int i = 0; i < 4; ++i) o[i] = dq1<CODE>(w >> (sh * i));
  }
}

constexpr int kWarps = 4;

// Grid (n_head, T, splits), 4 warps, as attention_split_kernel: each warp walks KPW keys at a time,
// every load of those keys first (a key past the range re-reads the last valid row, masked later).
// kVec (head dims multiples of 4): lane holds dims 4 lane + 128 e + i (e < NW, i < 4); else dims
// lane + 32 f (f < 8), one code at a time. Writes the range's (max, sum, unnormalized output) to part,
// or, with one split (16 streams and more), the normalized output itself (as the f16 kernel does).
// No rope fusion (unlike the f16 split kernel): a fused version (every block rotating and quantizing
// the token's k and v, one writing them) measured slower on an H100 than the separate store kernel
// (docs/perf.md, quantized KV cache), and was removed.
template <int CODE, bool kVec, int NW>
__global__ void __launch_bounds__(kWarps * 32) attention_kvq_kernel(AttentionArgs a, KvRowLayout kl, KvRowLayout vl) {
  constexpr int NF = kVec ? 4 * NW : 8;   // values per lane
  constexpr int NS = kVec ? NW : 8;       // scales per lane (one per 4 dims on the vector path)
  constexpr int KPW = kVec ? 8 : 4;  // 16 (the f16 kernel's bytes in flight) measured 5-9% slower (H100)
  __shared__ float sm_m[kWarps], sm_l[kWarps];
  __shared__ float sm_acc[kWarps][kMaxHeadDim];
  const int h = blockIdx.x, t = blockIdx.y, sp = blockIdx.z;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int kvh = h / (a.n_head / a.n_head_kv);
  const SplitKeys keys = split_keys(a, t, sp);
  const int64_t j0 = keys.j0, j1 = keys.j1;
  const float* q = a.q + int64_t(t) * a.q_stride + int64_t(h) * a.hd_k;
  const uint8_t* kc = reinterpret_cast<const uint8_t*>(a.k_cache[t]);
  const uint8_t* vc = reinterpret_cast<const uint8_t*>(a.v_cache[t]);
  auto fdim = [&](int f) { return kVec ? 4 * lane + 128 * (f >> 2) + (f & 3) : lane + 32 * f; };
  auto sdim = [&](int e) { return kVec ? 4 * lane + 128 * e : lane + 32 * e; };  // first dim of scale slot e
  float qr[NF], acc[NF];
#pragma unroll
  for (int f = 0; f < NF; ++f) {
    qr[f] = fdim(f) < a.hd_k ? q[fdim(f)] : 0.0f;
    acc[f] = 0.0f;
  }
  // Byte offsets within a row of the lane's code words and scales (-1: past the head).
  int koff[NS], voff[NS], ksoff[NS], vsoff[NS];  // a row is far below 2^31 bytes
#pragma unroll
  for (int e = 0; e < NS; ++e) {
    const int d = sdim(e);
    const int ik = kvh * kl.hd + d, iv = kvh * vl.hd + d;
    koff[e] = d < a.hd_k ? (CODE == kKvInt4 ? ik / 2 : ik) : -1;
    voff[e] = d < a.hd_v ? (CODE == kKvInt4 ? iv / 2 : iv) : -1;
    ksoff[e] = int(kl.scale_off) + 4 * (ik / kl.group);
    vsoff[e] = int(vl.scale_off) + 4 * (iv / vl.group);
  }
  auto load = [&](const uint8_t* row, int off, int elem) -> uint32_t {
    if (off < 0) return 0u;
    if constexpr (kVec) {
      // Streaming (evict-first) loads, as the f16 cache's (attention_decode.cu, load_kv_word): w4g128 at
      // 16 streams on an H100, int8 and fp8 caches -1.1 to -1.3% per step (docs/perf.md, session 14).
      if constexpr (CODE == kKvInt4) return uint32_t(__ldcs(reinterpret_cast<const unsigned short*>(row + off)));
      else return __ldcs(reinterpret_cast<const unsigned int*>(row + off));
    } else {
      if constexpr (CODE == kKvInt4) return uint32_t(row[off]) >> (4 * (elem & 1));
      else return uint32_t(row[off]);
    }
  };
  float m = -INFINITY, l = 0.0f;
  for (int64_t jb = j0 + int64_t(warp) * KPW; jb < j1; jb += kWarps * KPW) {
    uint32_t kw[KPW][NS], vw[KPW][NS];
    float ks[KPW][NS], vs[KPW][NS];
#pragma unroll
    for (int u = 0; u < KPW; ++u) {
      const int64_t j = min(jb + u, j1 - 1);
      const uint8_t* kj = kc + j * kl.row_bytes;
      const uint8_t* vj = vc + j * vl.row_bytes;
#pragma unroll
      for (int e = 0; e < NS; ++e) {
        const int d = sdim(e);
        kw[u][e] = load(kj, koff[e], kvh * kl.hd + d);
        vw[u][e] = load(vj, voff[e], kvh * vl.hd + d);
        ks[u][e] = koff[e] >= 0 ? __ldcs(reinterpret_cast<const float*>(kj + ksoff[e])) : 0.0f;
        vs[u][e] = voff[e] >= 0 ? __ldcs(reinterpret_cast<const float*>(vj + vsoff[e])) : 0.0f;
      }
    }
    float s[KPW];
#pragma unroll
    for (int u = 0; u < KPW; ++u) {
      s[u] = 0.0f;
#pragma unroll
      for (int e = 0; e < NS; ++e) {
        if constexpr (kVec) {
          float c[4];
          dq4<CODE>(kw[u][e], c);
          s[u] += ks[u][e] * (qr[4 * e] * c[0] + qr[4 * e + 1] * c[1] + qr[4 * e + 2] * c[2] + qr[4 * e + 3] * c[3]);
        } else {
          s[u] += ks[u][e] * (qr[e] * dq1<CODE>(kw[u][e]));
        }
      }
    }
    const float mx = finish_scores<KPW, 16, 1>(s, a, jb, j1);
    float corr;
    const float m_new = softmax_new_max(m, mx, corr);  // finite: key jb < j1 is valid
    l *= corr;
#pragma unroll
    for (int f = 0; f < NF; ++f) acc[f] *= corr;
#pragma unroll
    for (int u = 0; u < KPW; ++u) {
      const float p = jb + u < j1 ? expf(s[u] - m_new) : 0.0f;
      l += p;
#pragma unroll
      for (int e = 0; e < NS; ++e) {
        const float ps = p * vs[u][e];
        if constexpr (kVec) {
          float c[4];
          dq4<CODE>(vw[u][e], c);
#pragma unroll
          for (int i = 0; i < 4; ++i) acc[4 * e + i] += ps * c[i];
        } else {
          acc[e] += ps * dq1<CODE>(vw[u][e]);
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
  if (a.splits == 1) {  // the block holds all of (head, token): normalize and store, no merge kernel
    write_one_split_output<kWarps>(a, h, t, (a.T + 7) / 8, sm_m, sm_l, sm_acc);
    return;
  }
  write_split_partial<kWarps>(a, h, t, sp, sm_m, sm_l, sm_acc);
}

template <int CODE>
__global__ void dequant_f16_kernel(const uint8_t* cache, KvRowLayout l, int64_t n, __half* out) {
  const int64_t w = int64_t(l.n_head) * l.hd;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n * w; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / w, c = i % w;
    const uint8_t* row = cache + r * l.row_bytes;
    const uint32_t code = CODE == kKvInt4 ? uint32_t(row[c / 2]) >> (4 * (c & 1)) : uint32_t(row[c]);
    const float s = reinterpret_cast<const float*>(row + l.scale_off)[c / l.group];
    out[i] = __float2half_rn(dq1<CODE>(code) * s);
  }
}

// kv_codes_f16: the codes as f16 values (exact: every int8 and e4m3 value is one) and each head's scales
// in their own rows [n_head][stride], zero past n.
template <int CODE>
__global__ void codes_f16_kernel(const uint8_t* cache, KvRowLayout l, int64_t n, __half* codes, float* scales,
                                 int64_t stride) {
  const int64_t w = int64_t(l.n_head) * l.hd, total = n * w > l.n_head * stride ? n * w : l.n_head * stride;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    if (i < n * w) {
      const int64_t r = i / w, c = i % w;
      codes[i] = __float2half_rn(dq1<CODE>(uint32_t(cache[r * l.row_bytes + c])));
    }
    if (i < l.n_head * stride) {
      const int64_t h = i / stride, p = i % stride;
      scales[i] = p < n ? reinterpret_cast<const float*>(cache + p * l.row_bytes + l.scale_off)[h] : 0.0f;
    }
  }
}

template <int CODE>
void launch_kvq(const AttentionArgs& a, const KvRowLayout& kl, const KvRowLayout& vl, cudaStream_t s) {
  const dim3 grid(unsigned(a.n_head), unsigned(a.T), unsigned(a.splits));
  const int hd = a.hd_k > a.hd_v ? a.hd_k : a.hd_v;
  if (a.hd_k % 4 == 0 && a.hd_v % 4 == 0 && hd <= 128)
    attention_kvq_kernel<CODE, true, 1><<<grid, kWarps * 32, 0, s>>>(a, kl, vl);
  else if (a.hd_k % 4 == 0 && a.hd_v % 4 == 0)
    attention_kvq_kernel<CODE, true, 2><<<grid, kWarps * 32, 0, s>>>(a, kl, vl);
  else
    attention_kvq_kernel<CODE, false, 0><<<grid, kWarps * 32, 0, s>>>(a, kl, vl);
  QB_CUDA_LAUNCHED();
}

}  // namespace

KvRowLayout kv_row_layout(int code, int n_head, int hd) {
  if (n_head <= 0 || hd <= 0 || hd > kMaxHeadDim)
    throw std::runtime_error("kv cache: impossible row of " + std::to_string(n_head) + " heads x " + std::to_string(hd));
  KvRowLayout l;
  l.code = code;
  l.n_head = n_head;
  l.hd = hd;
  const int64_t n = int64_t(n_head) * hd;
  switch (code) {
    case kKvF16:
      l.group = 0;
      l.code_bytes = 2 * n;
      l.scale_off = l.code_bytes;
      l.row_bytes = l.code_bytes;  // the f16 kernels' layout, unchanged
      return l;
    case kKvInt8:
    case kKvFp8: l.group = hd; l.code_bytes = n; break;
    case kKvInt4:
      if (hd % 2 != 0) throw std::runtime_error("kv cache int4 packs two values per byte; head_dim " + std::to_string(hd) + " is odd");
      l.group = hd % 32 == 0 ? 32 : hd;
      l.code_bytes = n / 2;
      break;
    default: throw std::runtime_error("kv cache: unknown code " + std::to_string(code));
  }
  l.scale_off = (l.code_bytes + 3) / 4 * 4;
  l.row_bytes = (l.scale_off + 4 * int64_t(l.scales()) + 15) / 16 * 16;
  return l;
}

void rope_and_store_kv_quant(const RopeKvArgs& a, const KvRowLayout& kl, const KvRowLayout& vl, cudaStream_t s) {
  if (a.T <= 0) return;
  if (kl.code == kKvF16 || vl.code == kKvF16) throw std::runtime_error("rope_and_store_kv_quant: f16 cache");
  rope_store_quant_kernel<<<dim3(unsigned(a.n_head + 2 * a.n_head_kv), unsigned(a.T)), 128, 0, s>>>(a, kl, vl);
  QB_CUDA_LAUNCHED();
}

void attention_kvq(const AttentionArgs& a, const KvRowLayout& kl, const KvRowLayout& vl, cudaStream_t s) {
  if (a.T <= 0) return;
  if (a.splits < 1 || a.splits > 32 || !a.part || a.rope_cos)
    throw std::runtime_error("attention_kvq: needs 1..32 splits, a partial-sum buffer and no fused rope");
  if (kl.code != vl.code || kl.code == kKvF16 || a.hd_k != kl.hd || a.hd_v != vl.hd)
    throw std::runtime_error("attention_kvq: cache layouts do not match the attention shapes");
  switch (kl.code) {
    case kKvInt8: launch_kvq<kKvInt8>(a, kl, vl, s); break;
    case kKvFp8: launch_kvq<kKvFp8>(a, kl, vl, s); break;
    default: launch_kvq<kKvInt4>(a, kl, vl, s); break;
  }
  if (a.splits > 1) attention_merge(a, s);  // one split: each block stored its own output
}

void kv_dequantize_f16(const uint8_t* cache, const KvRowLayout& l, int64_t n, uint16_t* out, cudaStream_t s) {
  if (n <= 0) return;
  const int64_t total = n * l.n_head * l.hd;
  const int64_t b = (total + 255) / 256;
  const unsigned grid = unsigned(b < 8192 ? b : 8192);
  auto* o = reinterpret_cast<__half*>(out);
  switch (l.code) {
    case kKvInt8: dequant_f16_kernel<kKvInt8><<<grid, 256, 0, s>>>(cache, l, n, o); break;
    case kKvFp8: dequant_f16_kernel<kKvFp8><<<grid, 256, 0, s>>>(cache, l, n, o); break;
    case kKvInt4: dequant_f16_kernel<kKvInt4><<<grid, 256, 0, s>>>(cache, l, n, o); break;
    default: throw std::runtime_error("kv_dequantize_f16: not a quantized cache");
  }
  QB_CUDA_LAUNCHED();
}

void kv_codes_f16(const uint8_t* cache, const KvRowLayout& l, int64_t n, uint16_t* codes, float* scales,
                  int64_t stride, cudaStream_t s) {
  if ((l.code != kKvInt8 && l.code != kKvFp8) || l.group != l.hd)
    throw std::runtime_error("kv_codes_f16: needs an int8 or fp8 cache (one scale per head)");
  if (n <= 0) return;
  if (stride < n || stride % 64 != 0)
    throw std::runtime_error("kv_codes_f16: scale rows of " + std::to_string(stride) + " for " + std::to_string(n) +
                             " positions (need a multiple of 64, at least n)");
  const int64_t total = std::max(n * l.n_head * l.hd, int64_t(l.n_head) * stride);
  const int64_t b = (total + 255) / 256;
  const unsigned grid = unsigned(b < 8192 ? b : 8192);
  auto* o = reinterpret_cast<__half*>(codes);
  if (l.code == kKvInt8) codes_f16_kernel<kKvInt8><<<grid, 256, 0, s>>>(cache, l, n, o, scales, stride);
  else codes_f16_kernel<kKvFp8><<<grid, 256, 0, s>>>(cache, l, n, o, scales, stride);
  QB_CUDA_LAUNCHED();
}

void kv_quantize_rows(const float* x, int64_t x_stride, int rows, const KvRowLayout& l, uint8_t* dst,
                      cudaStream_t s) {
  if (rows <= 0) return;
  if (l.code == kKvF16) throw std::runtime_error("kv_quantize_rows: f16 cache");
  quantize_rows_kernel<<<dim3(unsigned(l.n_head), unsigned(rows)), 128, 0, s>>>(x, x_stride, l, dst);
  QB_CUDA_LAUNCHED();
}

}  // namespace qb::runtime::cuda
