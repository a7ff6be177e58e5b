// Prefill attention (forward_kernels.h): the query-tiled kernel over the f16 cache that attention() takes
// for prefill runs (attention_decode.cu), and attention_gemm. At prefill, attention over one run of one
// sequence is a fused flash-attention kernel on the tensor cores (head dims 64 / 128; else two cuBLAS
// GEMMs around a softmax kernel). Shared helpers: forward_common.cuh.
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cfloat>
#include <cmath>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "quantbench/runtime/cuda/cuda_check.h"
#include "quantbench/runtime/cuda/act_store.cuh"
#include "quantbench/runtime/cuda/forward_kernels.h"
#include "quantbench/runtime/cuda/mma_sync.cuh"
#include "quantbench/runtime/cuda/online_softmax.cuh"
#include "quantbench/runtime/cuda/forward_common.cuh"

namespace qb::runtime::cuda {
namespace {

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
        float corr;
        const float m_new = softmax_new_max(m[u], mx, corr);
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

// (forward_common.cuh) attention()'s prefill branch: query tiles share their K/V loads.
void attention_tiled(const AttentionArgs& a, cudaStream_t s) {
  attention_tiled_kernel<2><<<dim3(unsigned(a.n_head), unsigned((a.T + kQT - 1) / kQT)), kSplitWarps * 32, 0, s>>>(a);
  QB_CUDA_LAUNCHED();
}

}  // namespace qb::runtime::cuda
