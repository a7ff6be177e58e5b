// Attention over the f16 KV cache (forward_kernels.h: attention, attention_merge, attention_splits): the
// split-key kernels that decode runs (a warp per key, or a half-warp per key at head dims 128; rope
// optionally fused), their merge, and the one-block-per-(head, token) kernel. attention() also takes the
// prefill runs the query-tiled kernel of attention_prefill.cu does not. Shared helpers:
// forward_common.cuh, split_partial.cuh.
#include <cuda_fp16.h>

#include <cmath>
#include <stdexcept>
#include <string>

#include "quantbench/runtime/cuda/cuda_check.h"
#include "quantbench/runtime/cuda/act_store.cuh"
#include "quantbench/runtime/cuda/split_partial.cuh"
#include "quantbench/runtime/cuda/forward_kernels.h"
#include "quantbench/runtime/cuda/launch.cuh"
#include "quantbench/runtime/cuda/online_softmax.cuh"
#include "quantbench/runtime/cuda/forward_common.cuh"

namespace qb::runtime::cuda {
namespace {

constexpr int kAttnThreads = 128;
constexpr int kAttnTile = 2048;  // keys whose scores sit in shared memory at once
constexpr int kDimsPerThread = (kMaxHeadDim + kAttnThreads - 1) / kAttnThreads;

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
    float corr;
    const float m_new = softmax_new_max(m_run, mx, corr);
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
    float corr;
    const float m_new = softmax_new_max(m, mx, corr);
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

// Grid (n_head, T): merges the splits of one (head, token) and writes out / act.
__global__ void attention_merge_kernel(AttentionArgs a, int nt) {
  pdl_enter();
  merge_splits(a, blockIdx.x, blockIdx.y, nt);
}

}  // namespace

int attention_splits(int n_head, int T, int sm_count, int blocks_per_sm, int one_split_blocks_per_sm) {
  // Decode batches only (T <= 16, where it was measured); prefill chunks keep the blocks-per-SM rule.
  if (T <= 16 && (one_split_blocks_per_sm < 0 ||
                  (one_split_blocks_per_sm > 0 && int64_t(n_head) * T >= int64_t(one_split_blocks_per_sm) * sm_count)))
    return 1;
  const int want = (blocks_per_sm * sm_count + n_head * T - 1) / (n_head * T);
  return want < 1 ? 1 : (want > 16 ? 16 : want);
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
    attention_tiled(a, s);  // (attention_prefill.cu)
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

}  // namespace qb::runtime::cuda
