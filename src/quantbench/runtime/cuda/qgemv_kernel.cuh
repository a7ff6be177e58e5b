// Decode matrix-vector / small-batch kernels for the packed layout documented in qgemv.h.
// One warp owns R row blocks (16 rows each) and a strided share of the 64-wide input chunks; each
// step it issues all its 16-byte weight loads (U chunks x R row blocks x LPC vectors) before touching
// any of them, so every warp keeps several KB in flight; then it dequantizes in registers and runs
// mma.sync m16n8k16 (f32 accumulators). The warps of a block split the input dimension and reduce
// through shared memory, so each output is written once with no atomics and no pre-zeroed buffer.
// Weights are read with an L1 no-allocate hint (read once), leaving L1 to the activation fragments
// that every row block re-reads. The next step's weights are prefetched into registers before the
// current step's arithmetic. int4 multiplies the exact integers (q - z) and scales each group's f32
// partial sum, so every format's products are exact and only f32 arithmetic rounds (but the formats with
// mins, whose weights q * s + m are rounded once to f16: see step_math).
// Included by qgemv.cu only, which instantiates the kernels and launches them (its launch rules choose R, NT, the
// half step and the warps per block); pick_kernel maps those choices to one instantiation.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <stdexcept>
#include <type_traits>

#include "quantbench/runtime/cuda/act_store.cuh"
#include "quantbench/runtime/cuda/gated.cuh"
#include "quantbench/runtime/cuda/int4_decode.cuh"
#include "quantbench/runtime/cuda/load_stream.cuh"
#include "quantbench/runtime/cuda/mma_sync.cuh"
#include "quantbench/runtime/cuda/qgemv.h"
#include "quantbench/runtime/cuda/qgemv_formats.cuh"

namespace qb::runtime::cuda {
namespace {

constexpr int kMaxWarps = 16;

// Chunks per step (U), from the format's vectors per chunk (LPC, qgemv_formats.cuh), so that a warp has
// ~8 loads in flight per step at R = 1 (plus the next step's, prefetched), without running out of
// registers at larger R.
__host__ __device__ constexpr int steps_for(int lpc, int r) {
  const int u = 8 / (lpc * r);  // 8 vectors (4 KB per warp) in flight, 16 with the prefetch
  return u < 1 ? 1 : (u > 4 ? 4 : u);
}
template <int F, int R>
__host__ __device__ constexpr int steps_u() { return steps_for(Fmt<F>::LPC, R); }

// F: 0 bf16, 1 int8, 2 int4. G: group size (int4: 32/128; int8: 0 = per row, 16 or 32). OFS: int4
// offsets (qgemv_formats.cuh). R: row blocks per warp. NT: 8-token tiles (1 or 2). HALF: int4, half the
// chunks per step (QgemvConfig::half_step).
// GATED: the fused gated-activation epilogue (QgemvGatedOut; R even). A separate instantiation, not a
// run-time branch: the branch alone changed the register allocation of many plain kernels. COPY16: the
// 16-token half step at R = 2 as it was before session 20 (a copy between its step buffers, capped at 96
// registers; QgemvConfig::copy_loop16), kept for same-card A/B runs.
// xfrag (written by the kernel before) is read only through the pointer pdl_wait_for returns (launch.cuh):
// its loads are marked read-only, which would otherwise let the compiler move them above the wait.
// One int4 group's exact partial sums (an mma tile per 8 tokens, held in f32) into the accumulators, scaled by
// the group's scale pair: rows g and g + 8 of the 16-row block, the two halves of `scale_bits`.
template <int NT>
__device__ __forceinline__ void add_group_sums(float (&acc)[NT][4], const float (&tmp)[NT][4], uint32_t scale_bits) {
  const float2 s2 = __half22float2(bits_h2(scale_bits));
#pragma unroll
  for (int j = 0; j < NT; ++j) {
    acc[j][0] += s2.x * tmp[j][0];
    acc[j][1] += s2.x * tmp[j][1];
    acc[j][2] += s2.y * tmp[j][2];
    acc[j][3] += s2.y * tmp[j][3];
  }
}

template <int F, int G, int OFS, int R, int NT, bool HALF, bool GATED = false, bool COPY16 = false>
__device__ __forceinline__ void qgemv_body(const uint4* __restrict__ W, const uint16_t* __restrict__ scales,
                                           const uint8_t* __restrict__ zeros, const uint4* __restrict__ xfrag,
                                           float* __restrict__ y, int n_out, int row_blocks, int chunks, int groups,
                                           int n_tokens, int ldy, const QgemvGatedOut& go) {
  constexpr int LPC = Fmt<F>::LPC;
  constexpr bool ASYM = OFS == kZeroPoints, MINS = OFS == kMins;
  static_assert(!MINS || (F == 2 && G == 32) || (F == 1 && (G == 32 || G == 16)),
                "mins exist for w4g32, w8g32 and w8g16 only");
  constexpr int U = HALF && F == 2 && steps_u<F, R>() >= 4 ? steps_u<F, R>() / 2 : steps_u<F, R>();
  static_assert(F != 2 || U % 2 == 0, "int4 groups of 128 span two chunks of a step");
  // Session 12's lean loop (fewer instructions per step: one LOP3 per nibble mask, offsets computed
  // once, unpredicated activation loads), where it was measured faster on an H100 (docs/perf.md): the
  // symmetric w4g128 half step, every one-token int4 kernel, and the one-token int8 kernel. Elsewhere
  // the compiler answered it with more registers (fewer resident blocks, or spills when capped) and
  // some 16-token products got slower, so the other kernels keep the loop as it was.
  constexpr bool kLean = (F == 2 && (HALF || NT == 1)) || (F == 1 && G == 0 && R == 1 && NT == 1);
  extern __shared__ float red[];  // [warps][R][NT][4][32]

  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = blockDim.x >> 5;
  const int g = lane >> 2;
  const int rb0 = blockIdx.x * R;

  float acc[R][NT][4];
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int j = 0; j < NT; ++j)
#pragma unroll
      for (int i = 0; i < 4; ++i) acc[r][j][i] = 0.f;

  // What one step streams from HBM: U chunks x R row blocks of weights (+ int4 scales / zero points).
  // The next step's loads are issued before this step's arithmetic (register double buffering), so
  // each warp keeps its weight stream going while it dequantizes and multiplies.
  // Scale pairs per chunk: one per group of 32 in a chunk (int4, w8g32; w4g128 uses the first), one per
  // k16 sub-tile for w8g16 (GGUF Q6_K's sub-blocks).
  constexpr int SCN = F == 1 && G == 16 ? 4 : 2;
  struct Step {
    uint4 w[U][R][LPC];
    uint32_t sc[U][R][SCN];  // scale pairs (rows g, g+8) for the chunk's groups, in column order
    uint32_t zp[U][R][SCN];  // int4 asymmetric: zero-point byte pairs, same index; with mins: f16 min pairs
  };
  // Where the lean loop loads from, set up once per warp so that the loop only adds the chunk's part.
  // - The half step (one token; 16 tokens at R = 2) and the int8 kernels keep a running pointer per
  //   row block at the chunk of its next load (load_step is called for chunks warp * U, then + stride
  //   each step): a load is one instruction plus its predicate, not a 64-bit address computed afresh.
  // - The other lean kernels add an int offset (16-byte vectors from W, u32 pairs from the scales; int
  //   is enough: qgemv() refuses matrices of 2^31 vectors or more). The other int4 kernels read several
  //   scale (and zero-point) pairs per step; the 16-token half step at R = 1 ran slower with the
  //   pointers and the ping-pong below (docs/perf.md, session 20).
  // A row block past the matrix (the grid's last block when row_blocks % R != 0) reads the last real
  // one: its outputs are never stored (rows >= n_out), so only the chunk bound is left in the loop.
  const uint32_t* sc32 = reinterpret_cast<const uint32_t*>(scales);
  const uint32_t* mn32 = reinterpret_cast<const uint32_t*>(zeros);  // mins: f16 pairs, the scales' index
  // Asymmetric int4 keeps a group's scale pair and zero-point pair in one 8-byte entry (qgemv.h), read
  // by one load instead of two (without its zero-point loads at all, a timing build ran the 16-token
  // products 11-13% faster: docs/perf.md, session 33; the one load gains 1-7% per step, session 34). Its
  // scale indices and running pointers count entries (ScaleEntry); for the other formats ScaleEntry is the
  // u32 scale pair and the code is as it was (their SASS is unchanged).
  using ScaleEntry = std::conditional_t<ASYM, uint2, uint32_t>;
  const ScaleEntry* sce = reinterpret_cast<const ScaleEntry*>(scales);
  auto load_entry = [&](const uint2* at, bool ok, uint32_t& sc, uint32_t& zp) {
    const uint2 e = ok ? __ldg(at) : make_uint2(0u, 0u);
    sc = e.x;
    zp = e.y;
  };
  // The half step's loop as a ping-pong of two step buffers (below), with running pointers.
  constexpr bool kPingPong = HALF && (NT == 1 || (R == 2 && !COPY16));
  constexpr bool kRunningPointers = kLean && (F == 1 || kPingPong);  // (HALF: one scale pair per step)
  const int first_chunk = warp * U;
  // The scale-pair index of chunk c (the lean int4 kernels with running pointers: groups of 128 span
  // two chunks, a chunk holds two groups of 32; c even where G = 128).
  auto group_of = [](int c) { return G == 32 ? 2 * c : c / 2; };
  const uint4* wnext[R];
  const ScaleEntry* snext[R];
  int woff[R], soff[R];
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const int rb = min(rb0 + r, row_blocks - 1);
    if constexpr (kRunningPointers) {
      wnext[r] = W + (size_t(rb) * chunks + first_chunk) * (LPC * 32) + lane;
      snext[r] = sce + (size_t(rb) * groups + group_of(first_chunk)) * 8 + g;
    } else if constexpr (kLean) {
      woff[r] = rb * chunks * LPC * 32 + lane;
      soff[r] = rb * groups * 8 + g;
    }
  }
  // Chunks past the end get weights that are exactly zero (int8 stores q + 128; int4's zero-filled
  // scale zeroes the group), so the activations there need no zero fill (step_math).
  constexpr uint32_t kZ = F == 1 ? 0x80808080u : 0u;
  auto load_step = [&](int c0, Step& st) {
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int c = c0 + u;
      [[maybe_unused]] const bool ok = c < chunks;  // lean: row blocks are clamped above
#pragma unroll
      for (int r = 0; r < R; ++r) {
        [[maybe_unused]] const int rb = rb0 + r;
        [[maybe_unused]] const bool ok_old = c < chunks && rb < row_blocks;  // the loop as it was
#pragma unroll
        for (int v = 0; v < LPC; ++v) {
          if constexpr (kRunningPointers)
            st.w[u][r][v] = ok ? load_stream(wnext[r] + (u * LPC + v) * 32) : make_uint4(kZ, kZ, kZ, kZ);
          else if constexpr (kLean)
            st.w[u][r][v] = ok ? load_stream(W + woff[r] + (c * LPC + v) * 32) : make_uint4(kZ, kZ, kZ, kZ);
          else
            st.w[u][r][v] = ok_old ? load_stream(W + ((size_t(rb) * chunks + c) * LPC + v) * 32 + lane)
                                   : make_uint4(0, 0, 0, 0);
        }
        if constexpr (F == 2 || (F == 1 && G != 0)) {  // int4, and int8 with group scales (32 or 16)
#pragma unroll
          for (int h = 0; h < SCN; ++h) {
            if (G == 128 && (h == 1 || (u & 1))) continue;  // one group spans two chunks
            const int gi = G == 128 ? (c >> 1) : (SCN * c + h);
            if constexpr (kLean) {
              // (the zero-point and min pairs share the scale pairs' index: no pointer of their own, one
              // register pair less per row block)
              if constexpr (kRunningPointers) {
                const ScaleEntry* sp = snext[r] + (G == 32 ? (2 * u + h) * 8 : 0);  // (G = 128: one pair a step)
                if constexpr (ASYM) load_entry(sp, ok, st.sc[u][r][h], st.zp[u][r][h]);
                else st.sc[u][r][h] = ok ? __ldg(sp) : 0u;
                if constexpr (MINS) st.zp[u][r][h] = ok ? __ldg(mn32 + (sp - sc32)) : 0u;
              } else {
                if constexpr (ASYM) load_entry(sce + soff[r] + gi * 8, ok, st.sc[u][r][h], st.zp[u][r][h]);
                else st.sc[u][r][h] = ok ? __ldg(sc32 + soff[r] + gi * 8) : 0u;
                if constexpr (MINS) st.zp[u][r][h] = ok ? __ldg(mn32 + soff[r] + gi * 8) : 0u;
              }
            } else {
              const size_t at = (size_t(rb) * groups + gi) * 8 + g;
              if constexpr (ASYM) load_entry(sce + at, ok_old, st.sc[u][r][h], st.zp[u][r][h]);
              else st.sc[u][r][h] = ok_old ? __ldg(sc32 + at) : 0u;
              if constexpr (MINS) st.zp[u][r][h] = ok_old ? __ldg(mn32 + at) : 0u;
            }
          }
        }
      }
    }
    if constexpr (kRunningPointers) {
#pragma unroll
      for (int r = 0; r < R; ++r) {
        wnext[r] += size_t(n_warps * U) * (LPC * 32);  // the loop's stride
        snext[r] += group_of(n_warps * U) * 8;
      }
    }
  };

  // Activation fragments: a lane whose token is past n_tokens reads token 0's fragment of its tile
  // instead (same addresses as lanes 0-3, so no extra traffic, and no predicate): the MMA's columns are
  // independent, and those columns' outputs are never stored.
  int xlane[NT];
#pragma unroll
  for (int j = 0; j < NT; ++j) xlane[j] = 8 * j + g < n_tokens ? lane : (lane & 3);

  // One step's arithmetic on `cur` (chunks c0 .. c0 + U - 1). A chunk past the end reads the last
  // chunk's activations (finite values, against weights that are exactly zero: load_step), so these
  // loads need neither a predicate nor a zero fill.
  auto step_math = [&](int c0, const Step& cur) {
    uint4 xv[U][NT][2];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      if constexpr (kLean) {
        // The w4g128 half step never sees a partial step (U = 2 chunks = one group of 128, n_in % 128 ==
        // 0, c0 even), so only the others clamp (the w4g32 half step's last step can end past the last
        // chunk when their count is odd).
        const int c = HALF && G == 128 ? c0 + u : min(c0 + u, chunks - 1);
#pragma unroll
        for (int j = 0; j < NT; ++j) {
          const uint4* p = xfrag + ((c * NT + j) * 32 + xlane[j]) * 2;
          xv[u][j][0] = __ldg(p);
          xv[u][j][1] = __ldg(p + 1);
        }
      } else {  // as it was: chunks past the end and tokens past n_tokens zero-filled, not loaded
        const int c = c0 + u;
#pragma unroll
        for (int j = 0; j < NT; ++j) {
          const bool ok = c < chunks && 8 * j + g < n_tokens;
          const uint4* p = xfrag + ((size_t(c) * NT + j) * 32 + lane) * 2;
          xv[u][j][0] = ok ? __ldg(p) : make_uint4(0, 0, 0, 0);
          xv[u][j][1] = ok ? __ldg(p + 1) : make_uint4(0, 0, 0, 0);
        }
      }
    }
    const auto& wv = cur.w;
    const auto& sc = cur.sc;
    const auto& zp = cur.zp;

    if constexpr (F == 2) {
      // int4: per group, the tensor cores multiply the exact integers (q - z) (f16 holds them exactly)
      // into a temporary f32 tile, which is then scaled in f32 by the two rows' scales: no f16
      // rounding of dequantized weights and one HMUL2 per register less (nibbles: int4_decode.cuh).
      // With mins the weights are q * s + m, formed in f16 by one HFMA2 per register (one rounding of
      // the exact value) and multiplied into the f32 sums directly: a sum of activations per group to
      // scale by m (one more mma per sub-tile, on a matrix of ones) cost more registers and issue slots,
      // and ran 7-13% slower per step (docs/perf.md, session 22).
      constexpr int SPANS = G == 128 ? U / 2 : 2 * U;  // groups per step (U is even for int4)
      constexpr int SUB = G == 128 ? 8 : 2;            // k16 sub-tiles per group
#pragma unroll
      for (int sp = 0; sp < SPANS; ++sp) {
        const int u0 = G == 128 ? 2 * sp : sp / 2, h = G == 128 ? 0 : sp % 2;
#pragma unroll
        for (int r = 0; r < R; ++r) {
          if constexpr (MINS) {
            const __half2 sc2 = bits_h2(sc[u0][r][h]), mn2 = bits_h2(zp[u0][r][h]);  // (row g, row g + 8)
            const __half2 s_g = __low2half2(sc2), s_g8 = __high2half2(sc2);
            const __half2 m_g = __low2half2(mn2), m_g8 = __high2half2(mn2);
#pragma unroll
            for (int t = 0; t < SUB; ++t) {
              const int s = 2 * h + t;  // (G = 32)
              const uint4& q = wv[u0][r][0];
              __half2 a[4];
              int4_qz<kLean>(s == 0 ? q.x : s == 1 ? q.y : s == 2 ? q.z : q.w, int4_zero_none(), a);
              a[0] = __hfma2(a[0], s_g, m_g);  // A registers 0, 2 hold row g, 1, 3 row g + 8
              a[1] = __hfma2(a[1], s_g8, m_g8);
              a[2] = __hfma2(a[2], s_g, m_g);
              a[3] = __hfma2(a[3], s_g8, m_g8);
#pragma unroll
              for (int j = 0; j < NT; ++j) {
                const uint4& b = xv[u0][j][s >> 1];
                mma16816<false>(acc[r][j], h2_bits(a[0]), h2_bits(a[1]), h2_bits(a[2]), h2_bits(a[3]),
                                (s & 1) ? b.z : b.x, (s & 1) ? b.w : b.y);
              }
            }
            continue;
          }
          const Int4Zero z = kLean && !ASYM ? int4_zero_symmetric() : int4_zero(ASYM ? zp[u0][r][h] : 0x0808u);
          float tmp[NT][4];
#pragma unroll
          for (int j = 0; j < NT; ++j)
#pragma unroll
            for (int i = 0; i < 4; ++i) tmp[j][i] = 0.f;
#pragma unroll
          for (int t = 0; t < SUB; ++t) {
            const int u = G == 128 ? u0 + t / 4 : u0, s = G == 128 ? t % 4 : 2 * h + t;
            const uint4& q = wv[u][r][0];
            __half2 a[4];
            int4_qz<kLean>(s == 0 ? q.x : s == 1 ? q.y : s == 2 ? q.z : q.w, z, a);
#pragma unroll
            for (int j = 0; j < NT; ++j) {
              const uint4& b = xv[u][j][s >> 1];
              const uint32_t b0 = (s & 1) ? b.z : b.x, b1 = (s & 1) ? b.w : b.y;
              mma16816<Fmt<F>::kBf16>(tmp[j], h2_bits(a[0]), h2_bits(a[1]), h2_bits(a[2]), h2_bits(a[3]), b0, b1);
            }
          }
          add_group_sums(acc[r], tmp, sc[u0][r][h]);
        }
      }
    } else {
#pragma unroll
    for (int u = 0; u < U; ++u) {
#pragma unroll
      for (int r = 0; r < R; ++r) {
        uint32_t a[4][4];  // [sub-tile][A register]
        if constexpr (F == 0) {
#pragma unroll
          for (int s = 0; s < 4; ++s) {
            a[s][0] = wv[u][r][s].x; a[s][1] = wv[u][r][s].y; a[s][2] = wv[u][r][s].z; a[s][3] = wv[u][r][s].w;
          }
        } else {
          const __half2 off = __float2half2_rn(1152.f);
#pragma unroll
          for (int s = 0; s < 4; ++s) {
            const uint4& q = wv[u][r][s >> 1];
            const uint32_t w0 = (s & 1) ? q.z : q.x, w1 = (s & 1) ? q.w : q.y;
            a[s][0] = h2_bits(__hsub2(bits_h2(__byte_perm(w0, 0x64646464u, 0x4140)), off));
            a[s][1] = h2_bits(__hsub2(bits_h2(__byte_perm(w0, 0x64646464u, 0x4342)), off));
            a[s][2] = h2_bits(__hsub2(bits_h2(__byte_perm(w1, 0x64646464u, 0x4140)), off));
            a[s][3] = h2_bits(__hsub2(bits_h2(__byte_perm(w1, 0x64646464u, 0x4342)), off));
          }
        }
        if constexpr (F == 1 && MINS) {
          // w8g32 with mins (GGUF Q5_K; w8g16 with mins: Q2_K): the weights q * s + m formed in f16 (one
          // HFMA2 per A register: the exact value rounded once, as w4g32m does) and multiplied into the
          // f32 sums directly. Sub-tiles 0-1 are group 2c, 2-3 group 2c + 1 (w8g16: sub-tile s, group 4c + s).
          constexpr int SPG = 4 / SCN;  // k16 sub-tiles per group
#pragma unroll
          for (int h = 0; h < SCN; ++h) {
            const __half2 sc2 = bits_h2(sc[u][r][h]), mn2 = bits_h2(zp[u][r][h]);  // (row g, row g + 8)
            const __half2 s_g = __low2half2(sc2), s_g8 = __high2half2(sc2);
            const __half2 m_g = __low2half2(mn2), m_g8 = __high2half2(mn2);
#pragma unroll
            for (int s = SPG * h; s < SPG * h + SPG; ++s) {
              a[s][0] = h2_bits(__hfma2(bits_h2(a[s][0]), s_g, m_g));  // A registers 0, 2: row g; 1, 3: g + 8
              a[s][1] = h2_bits(__hfma2(bits_h2(a[s][1]), s_g8, m_g8));
              a[s][2] = h2_bits(__hfma2(bits_h2(a[s][2]), s_g, m_g));
              a[s][3] = h2_bits(__hfma2(bits_h2(a[s][3]), s_g8, m_g8));
#pragma unroll
              for (int j = 0; j < NT; ++j) {
                const uint4& b = xv[u][j][s >> 1];
                mma16816<false>(acc[r][j], a[s][0], a[s][1], a[s][2], a[s][3], (s & 1) ? b.z : b.x,
                                (s & 1) ? b.w : b.y);
              }
            }
          }
        } else if constexpr (F == 1 && G != 0) {
          // w8g32: sub-tiles 0-1 are group 2c, 2-3 group 2c + 1; w8g16: sub-tile s is group 4c + s. Exact
          // integer products per group into a temporary tile, scaled in f32 by the two rows' scales (as
          // int4 does).
          constexpr int SPG = 4 / SCN;  // k16 sub-tiles per group
#pragma unroll
          for (int h = 0; h < SCN; ++h) {
            float tmp[NT][4];
#pragma unroll
            for (int j = 0; j < NT; ++j)
#pragma unroll
              for (int i = 0; i < 4; ++i) tmp[j][i] = 0.f;
#pragma unroll
            for (int s = SPG * h; s < SPG * h + SPG; ++s) {
#pragma unroll
              for (int j = 0; j < NT; ++j) {
                const uint4& b = xv[u][j][s >> 1];
                const uint32_t b0 = (s & 1) ? b.z : b.x, b1 = (s & 1) ? b.w : b.y;
                mma16816<false>(tmp[j], a[s][0], a[s][1], a[s][2], a[s][3], b0, b1);
              }
            }
            add_group_sums(acc[r], tmp, sc[u][r][h]);
          }
        } else {
#pragma unroll
        for (int s = 0; s < 4; ++s) {
#pragma unroll
          for (int j = 0; j < NT; ++j) {
            const uint4& b = xv[u][j][s >> 1];
            const uint32_t b0 = (s & 1) ? b.z : b.x, b1 = (s & 1) ? b.w : b.y;
            mma16816<Fmt<F>::kBf16>(acc[r][j], a[s][0], a[s][1], a[s][2], a[s][3], b0, b1);
          }
        }
        }
      }
    }
    }
  };

  // Programmatic dependent launch: let the next kernel in the stream start its own weight loads
  // while this one drains, and start ours before the previous kernel (which may produce x) is done.
  // Weights never depend on earlier kernels; x does, so griddepcontrol.wait comes before x is read.
  // Both are no-ops when the launch did not ask for the overlap.
  pdl_launch_dependents();
  const int stride = n_warps * U;
  Step cur;
  load_step(warp * U, cur);
  xfrag = pdl_wait_for(xfrag);  // (step_math reads xfrag from here on)
  if constexpr (kPingPong) {
    // The half step: two steps per iteration, the buffers' roles swapped in code instead of copied
    // (`cur = nxt`). With the copy, the fused gate|up kernel's loop compiled with register moves and ran
    // 18% slower than the plain kernel; in this form it runs as fast, and the plain kernels got faster
    // too (gate|up 18.7 -> 18.2 us, down 10.6 -> 10.1; o 5.3 -> 5.6), -3 to -4% per one-stream w4g128
    // step on an H100 (docs/perf.md, session 15). At 16 tokens (R = 2) the copy also made each warp wait
    // for its next step's loads before issuing the step after, so one step was in flight instead of two;
    // this form with running pointers needs 128 registers (register_cap) and runs q|k|v, gate|up and
    // lm_head 9-20% faster on an H200 (docs/perf.md, session 20).
    Step nxt;
    for (int c0 = warp * U; c0 < chunks; c0 += 2 * stride) {
      load_step(c0 + stride, nxt);  // predicated off past the end
      step_math(c0, cur);
      if (c0 + stride >= chunks) break;
      load_step(c0 + 2 * stride, cur);
      step_math(c0 + stride, nxt);
    }
  } else {
    for (int c0 = warp * U; c0 < chunks; c0 += stride) {
      Step nxt;
      load_step(c0 + stride, nxt);  // predicated off past the end
      step_math(c0, cur);
      cur = nxt;
    }
  }

  // Reduce the warps' partial sums (lane-fastest layout: no bank conflicts), then write each output.
  constexpr int kPer = R * NT * 4 * 32;
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int j = 0; j < NT; ++j)
#pragma unroll
      for (int i = 0; i < 4; ++i) red[warp * kPer + ((r * NT + j) * 4 + i) * 32 + lane] = acc[r][j][i];
  __syncthreads();
  auto reduced = [&](int e) {  // output e of the block (the layout of red), summed over the warps
    float sum = 0.f;
    for (int w = 0; w < n_warps; ++w) sum += red[w * kPer + e];
    return sum;
  };
  if constexpr (GATED) {
    static_assert(R % 2 == 0, "the gated epilogue pairs gate and up row blocks");
    // Fused gated activation (QgemvGatedOut): row blocks rb0 + 2p (gate) and rb0 + 2p + 1 (up) hold the
    // same 16 columns. A thread takes one token and two adjacent columns (one fragment word); where a
    // row sits in red is the inverse of the index rule in the loop below.
    // Two passes: first every thread sums its share of the block's outputs over the warps, as the
    // plain epilogue does, into warp 0's slot (each slot is read and written by one thread); then a
    // thread per fragment word reads its four sums. Summed where they are used, a thread read 4 x
    // warps values in sequence and half the threads idled. w4g128 gate|up on an H100, fused against
    // plain: 19.02 against 18.56 us at one token and 23.40 against 22.09 at 16 before; 18.41 against
    // 18.33 and 22.72 against 22.03 in this form (docs/perf.md, session 16).
    for (int e = threadIdx.x; e < kPer; e += blockDim.x) red[e] = reduced(e);
    __syncthreads();
    constexpr int TT = NT * 8;
    auto at = [&](int r, int rho, int tok) {  // red index of row rho (0..15) of row block r, token tok
      const int l = 4 * (rho & 7) + ((tok & 7) >> 1), i = 2 * (rho >> 3) + (tok & 1);
      return ((r * NT + (tok >> 3)) * 4 + i) * 32 + l;
    };
    for (int q = threadIdx.x; q < (R / 2) * 8 * TT; q += blockDim.x) {
      const int tok = q % TT, rp = (q / TT) % 8, p = q / (TT * 8);
      const int col = (rb0 / 2 + p) * 16 + 2 * rp;  // rb0 is even (R is)
      if (tok >= n_tokens || col >= go.n) continue;  // a row-block pair past the matrix (clamped loads)
      float v[2][2];  // [gate, up][column col, col + 1]
#pragma unroll
      for (int gu = 0; gu < 2; ++gu)
#pragma unroll
        for (int k = 0; k < 2; ++k) {
          v[gu][k] = red[at(2 * p + gu, 2 * rp + k, tok)];
          if constexpr (F == 1 && G == 0)
            v[gu][k] *= __half2float(__ushort_as_half(scales[(rb0 + 2 * p + gu) * 16 + 2 * rp + k]));
        }
      put_frag(go.frag, (n_tokens + 7) / 8, tok, col,
               pack2(gated_act_value(v[0][0], v[1][0], go.act), gated_act_value(v[0][1], v[1][1], go.act), go.bf16));
    }
  } else {
    for (int e = threadIdx.x; e < kPer; e += blockDim.x) {
      float sum = reduced(e);
      const int l = e & 31, i = (e >> 5) & 3, rj = e >> 7, j = rj % NT, r = rj / NT;
      const int row = (rb0 + r) * 16 + (l >> 2) + 8 * (i >> 1);
      const int tok = 8 * j + 2 * (l & 3) + (i & 1);
      if (row < n_out && tok < n_tokens) {
        if constexpr (F == 1 && G == 0) sum *= __half2float(__ushort_as_half(scales[row]));
        y[size_t(tok) * ldy + row] = sum;
      }
    }
  }
}

// The kernel, and the same with a register cap where the compiler's own choice would cost resident
// blocks or spill: the 16-token half step at R = 2 fits four 4-warp blocks per SM at 128 (its ping-pong
// with running pointers spills at 112), its copy loop (COPY16, session 19's kernel) five at 96 (126 when
// free; one 4-byte spill at 96), and the one-token int8 kernel four 8-warp blocks at 64. Asymmetric
// w4g32's half step at R = 1 has the opposite problem: left free with its scale entries (one 8-byte load
// per group), the compiler chose 88 registers at 16 tokens and issued the activation loads one or two at
// a time between the MMAs, and a 16-stream step ran 21% slower than with the separate zero-point loads
// (docs/perf.md, session 34; its one-token kernel likewise, by less). With a cap of 128 (80) it takes
// 118 (80) and issues them together, as before; the blocks per SM stay those of the 104 (80) registers
// it had. A cap on the template itself would reach every instantiation (even 255 changes the compiler's
// choices), hence two kernels.
template <int F, int G, int OFS, int R, int NT, bool HALF, bool COPY16>
constexpr int register_cap() {  // 0: none
  if (F == 2 && G == 128 && R == 2 && NT == 2 && HALF) return COPY16 ? 96 : 128;
  if (F == 2 && G == 32 && OFS == kZeroPoints && R == 1 && HALF) return NT == 2 ? 128 : 80;
  if (F == 1 && G == 0 && R == 1 && NT == 1) return 64;
  return 0;
}
#define QB_QGEMV_PARAMS                                                                                     \
  const uint4 *__restrict__ W, const uint16_t *__restrict__ scales, const uint8_t *__restrict__ zeros,    \
      const uint4 *__restrict__ xfrag, float *__restrict__ y, int n_out, int row_blocks, int chunks, int groups, \
      int n_tokens, int ldy, QgemvGatedOut go
#define QB_QGEMV_ARGS W, scales, zeros, xfrag, y, n_out, row_blocks, chunks, groups, n_tokens, ldy, go
template <int F, int G, int OFS, int R, int NT, bool HALF = false, bool GATED = false>
__global__ void qgemv_kernel(QB_QGEMV_PARAMS) { qgemv_body<F, G, OFS, R, NT, HALF, GATED>(QB_QGEMV_ARGS); }
template <int kMaxRegisters, int F, int G, int OFS, int R, int NT, bool HALF = false, bool GATED = false,
          bool COPY16 = false>
__global__ void __maxnreg__(kMaxRegisters) qgemv_kernel_capped(QB_QGEMV_PARAMS) {
  qgemv_body<F, G, OFS, R, NT, HALF, GATED, COPY16>(QB_QGEMV_ARGS);
}
#undef QB_QGEMV_PARAMS
#undef QB_QGEMV_ARGS

using KernelFn = void (*)(const uint4*, const uint16_t*, const uint8_t*, const uint4*, float*, int, int, int,
                          int, int, int, QgemvGatedOut);

template <int F, int G, int OFS, int R, int NT, bool HALF = false, bool GATED = false, bool COPY16 = false>
KernelFn kernel_for() {
  constexpr int cap = register_cap<F, G, OFS, R, NT, HALF, COPY16>();
  static_assert(!COPY16 || cap > 0, "the copy loop exists as a capped kernel only");
  if constexpr (cap > 0) return qgemv_kernel_capped<cap, F, G, OFS, R, NT, HALF, GATED, COPY16>;
  else return qgemv_kernel<F, G, OFS, R, NT, HALF, GATED>;
}
template <int F, int G, int OFS, int R, bool HALF = false>
KernelFn pick_nt(int nt, bool gated) {  // gated: R is even (checked by qgemv())
  if constexpr (R % 2 == 0) {
    if (gated) return nt == 1 ? kernel_for<F, G, OFS, R, 1, HALF, true>() : kernel_for<F, G, OFS, R, 2, HALF, true>();
  }
  return nt == 1 ? kernel_for<F, G, OFS, R, 1, HALF>() : kernel_for<F, G, OFS, R, 2, HALF>();
}
template <int F, int G, int OFS>
KernelFn pick_r(int r, int nt, bool gated) {
  return r == 1 ? pick_nt<F, G, OFS, 1>(nt, false)
                : r == 2 ? pick_nt<F, G, OFS, 2>(nt, gated) : pick_nt<F, G, OFS, 4>(nt, gated);
}
// The half step exists for int4 at R = 1 and 2: symmetric w4g128 since session 9; asymmetric w4g128
// (its zero points beside the scales) and w4g32 of both kinds since session 21 (docs/perf.md). w4g32
// with mins has no other kernel (qgemv() runs the half step): at R = 1 since session 22, R = 2 since 24.
bool has_half_step(const QuantSpec& s, int r) { return s.format == WeightFormat::W4A16 && r <= 2; }
// Where the launch rule takes the half step: symmetric w4g128 from rule 6, the other int4 formats from 8
// (w4g32 with mins under every rule: it has no other kernel).
bool half_step_format(const QuantSpec& s, int rule) {
  return has_half_step(s, 1) && ((s.group == 128 && !s.asym) || rule >= 8 || s.mins);
}
// The 16-token half step's copy loop (rule 6's kernel, QgemvConfig::copy_loop16) exists for symmetric
// w4g128 at R = 2 only.
bool has_copy_loop16(const QuantSpec& s, int r, int nt) {
  return s.format == WeightFormat::W4A16 && s.group == 128 && !s.asym && r == 2 && nt == 2;
}
template <int G, int OFS>
KernelFn pick_half(int r, int nt, bool gated) {
  return r == 1 ? pick_nt<2, G, OFS, 1, true>(nt, false) : pick_nt<2, G, OFS, 2, true>(nt, gated);
}
// w8 with mins (w8g32m, w8g16m) at R = 1, 2 or 4, never gated (pick_r would build gated kernels too).
template <int G>
KernelFn pick_w8_mins(int r, int nt) {
  if (r == 1) return nt == 1 ? kernel_for<1, G, kMins, 1, 1>() : kernel_for<1, G, kMins, 1, 2>();
  if (r == 2) return nt == 1 ? kernel_for<1, G, kMins, 2, 1>() : kernel_for<1, G, kMins, 2, 2>();
  return nt == 1 ? kernel_for<1, G, kMins, 4, 1>() : kernel_for<1, G, kMins, 4, 2>();
}
// `half`: the half step, already checked against has_half_step by the caller; `gated`: the fused gated
// epilogue (R even, checked by qgemv()); `copy16`: the 16-token half step's loop as before session 20,
// already checked against has_copy_loop16 by the caller. w4 with mins: qgemv() has set R = 1 or 2 and the
// half step. w8 with mins (no gated epilogue: gated_epilogue_fits) at R = 1, 2 or 4.
KernelFn pick_kernel(const QuantSpec& s, int r, int nt, bool half, bool gated, bool copy16) {
  if (s.mins && s.format == WeightFormat::W8A16) return s.group == 16 ? pick_w8_mins<16>(r, nt) : pick_w8_mins<32>(r, nt);
  if (s.mins) {  // (never gated)
    if (r == 1) return nt == 1 ? kernel_for<2, 32, kMins, 1, 1, true>() : kernel_for<2, 32, kMins, 1, 2, true>();
    return nt == 1 ? kernel_for<2, 32, kMins, 2, 1, true>() : kernel_for<2, 32, kMins, 2, 2, true>();
  }
  if (half && copy16)
    return gated ? kernel_for<2, 128, kNoOffset, 2, 2, true, true, true>()
                 : kernel_for<2, 128, kNoOffset, 2, 2, true, false, true>();
  if (half && s.group == 32)
    return s.asym ? pick_half<32, kZeroPoints>(r, nt, gated) : pick_half<32, kNoOffset>(r, nt, gated);
  if (half) return s.asym ? pick_half<128, kZeroPoints>(r, nt, gated) : pick_half<128, kNoOffset>(r, nt, gated);
  switch (s.format) {
    case WeightFormat::BF16: return pick_r<0, 0, kNoOffset>(r, nt, gated);
    case WeightFormat::W8A16:
      if (s.group == 16) return pick_r<1, 16, kNoOffset>(r, nt, gated);
      return s.group == 32 ? pick_r<1, 32, kNoOffset>(r, nt, gated) : pick_r<1, 0, kNoOffset>(r, nt, gated);
    case WeightFormat::W4A16:
      if (s.group == 32)
        return s.asym ? pick_r<2, 32, kZeroPoints>(r, nt, gated) : pick_r<2, 32, kNoOffset>(r, nt, gated);
      return s.asym ? pick_r<2, 128, kZeroPoints>(r, nt, gated) : pick_r<2, 128, kNoOffset>(r, nt, gated);
  }
  throw std::invalid_argument("qgemv: unknown format");
}

}  // namespace
}  // namespace qb::runtime::cuda
