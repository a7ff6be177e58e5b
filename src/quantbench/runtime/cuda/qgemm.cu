// See qgemm.h. The pipeline (wgmma_pipe.cuh): one block = 2 warpgroups (8 warps) x 128 output rows x NT
// tokens (128, or 64 for small grids). Warp w owns row block 8 * blockIdx.y + w (16 rows): its
// warpgroup's m64 A operand is the 4 warps' row blocks, which is how the packed layout already orders
// each warp's 16-byte vectors (the per-warp 16x16 fragment of wgmma's register A operand is
// mma.m16n8k16's). Per 64-wide input chunk a stage holds the x tile (one TMA copy) and the 8 row blocks'
// weight vectors (4 KB for int4, 8 KB for int8) with their group scales and zero points (cp.async;
// int8's per-row scales are read once). Loading x by cp.async from every thread instead was 1.3-1.6x
// slower on an H100 (docs/perf.md). Each warp forms chunk c + 1's A registers, (q - z) * s in f16,
// while chunk c's MMAs run. Consecutive blocks are the token tiles of one row tile, so a weight tile
// leaves HBM once and is re-read from L2.
#include <cuda_fp16.h>

#include <stdexcept>
#include <string>

#include "quantbench/runtime/cuda/cuda_check.h"
#include "quantbench/runtime/cuda/int4_decode.cuh"
#include "quantbench/runtime/cuda/qgemm.h"
#include "quantbench/runtime/cuda/wgmma_pipe.cuh"

namespace qb::runtime::cuda {
namespace {

constexpr int kStages = kWgStages;
constexpr int kRowWarps = kWgRowWarps;
// Shared memory per stage: x (NT tokens x 128 bytes), weights (8 row blocks x LPC vectors of 512
// bytes: LPC 1 for int4, 2 for int8), group scales (8 x up to SG groups x 32 bytes: SG = 4 for groups of
// 16, else 2; asymmetric int4: 64 bytes, the scale pairs with their zero-point pairs, qgemv.h) and, with
// mins, f16 mins laid out as the scales; then one mbarrier per stage.
template <int NT, int LPC, bool MINS = false, int SG = 2, bool ASYM = false>
struct Tile {
  static constexpr int kXBytes = NT * 128, kWBytes = kRowWarps * 512 * LPC,
                       kSBytes = kRowWarps * 32 * SG * (ASYM ? 2 : 1), kZBytes = MINS ? kRowWarps * 32 * SG : 0;
  static constexpr int kSmemBytes = kStages * (kXBytes + kWBytes + kSBytes + kZBytes + 8) + 1024;  // + alignment
};

// BITS: 4 or 8; G: group size (int4: 32 or 128; int8: 32 or 16, or 0 for one scale per row); ASYM: int4
// per-group zero points (else z = 8); NT: tokens per tile (the wgmma N); MINS: an f16 min per group
// instead (GGUF Q4_1 / Q4_K as w4g32m, Q5_K and Q5_1 as w8g32m, Q2_K as w8g16m): weights q * s + m.
// Output row stride ldy (qgemm()).
template <int BITS, int G, bool ASYM, int NT, bool MINS = false>
__global__ void __launch_bounds__(kRowWarps * 32, 2)
    qgemm_kernel(const uint4* __restrict__ W, const uint8_t* __restrict__ scales, const uint8_t* __restrict__ zeros,
                 const __grid_constant__ CUtensorMap x_map, float* __restrict__ y, int T, int n_out, int row_blocks,
                 int chunks, int groups, int ldy) {
  constexpr int LPC = BITS == 4 ? 1 : 2;  // 16-byte vectors per lane per chunk
  constexpr int NG = G == 128 ? 1 : G == 16 ? 4 : 2;  // groups per 64-wide chunk (a group of 128 spans two)
  constexpr int SG = G == 16 ? 4 : 2;                 // group slots per row block in a stage's scales
  static_assert(!MINS || ((G == 32 || (G == 16 && BITS == 8)) && !ASYM), "mins: groups of 32 (or 16, int8), no zero points");
  static_assert(G != 16 || BITS == 8, "groups of 16: int8 only");
  using Tl = Tile<NT, LPC, MINS, SG, ASYM>;
  constexpr int SB = ASYM ? 64 : 32;  // scale-array bytes per (row block, group): asymmetric int4's 8-byte entries
  constexpr int kXBytes = Tl::kXBytes, kWBytes = Tl::kWBytes, kSBytes = Tl::kSBytes, kZBytes = Tl::kZBytes;
  extern __shared__ uint8_t smem_raw[];
  // Aligned by an offset from the shared array itself (not through an integer), so the compiler still
  // knows these are shared addresses and emits ld.shared rather than generic loads.
  uint8_t* smem = smem_raw + ((1024 - (smem_u32(smem_raw) & 1023)) & 1023);
  uint8_t* xs = smem;                    // [stage][kXBytes], 1024-byte aligned (swizzle atoms)
  uint8_t* ws = xs + kStages * kXBytes;  // [stage][row block][lane] 16 bytes
  // [stage][row block][group of the chunk][row g]: f16 scales of rows g, g + 8 (asymmetric: + u8 zero points, 2 pad)
  uint8_t* ss = ws + kStages * kWBytes;
  uint8_t* zs = ss + kStages * kSBytes;  // mins: [stage][row block][group of the chunk][row g][g / g + 8] f16
  const uint32_t bars = smem_u32(zs + kStages * kZBytes);  // [stage] mbarrier of the x tile
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2;
  const int tok0 = blockIdx.x * NT, rb0 = blockIdx.y * kRowWarps;
  wgmma_init_bars(bars);

  auto load_stage = [&](int st, int c) {
    wgmma_load_x<NT>(&x_map, xs, bars, st, c, tok0);
    {
      const int rb = rb0 + warp;
      const bool ok = rb < row_blocks;
#pragma unroll
      for (int v = 0; v < LPC; ++v)
        cp_async16(smem_u32(ws + st * kWBytes + (warp * LPC + v) * 512 + lane * 16),
                   ok ? W + ((size_t(rb) * chunks + c) * LPC + v) * 32 + lane : W, ok);
    }
    const int gi0 = G == 128 ? c >> 1 : NG * c;  // the chunk's first group; (row block, group) = SB scale bytes
    constexpr int kPieces = SB / 16 * NG;  // 16-byte copies per row block
    if (G != 0 && tid < kRowWarps * kPieces) {  // (per-row int8 scales are read once, below)
      const int r = tid / kPieces, k = tid % kPieces, rb = rb0 + r;
      const bool ok = rb < row_blocks;
      cp_async16(smem_u32(ss + st * kSBytes + r * SB * SG + 16 * k),
                 ok ? scales + (size_t(rb) * groups + gi0) * SB + 16 * k : scales, ok);
    }
    if constexpr (MINS) {  // 32 bytes of f16 mins per (row block, group), as the scales
      if (tid >= 128 && tid < 128 + kRowWarps * 2 * NG) {
        const int q = tid - 128, r = q / (2 * NG), k = q % (2 * NG), rb = rb0 + r;
        const bool ok = rb < row_blocks;
        cp_async16(smem_u32(zs + st * kZBytes + r * 32 * SG + 16 * k),
                   ok ? zeros + (size_t(rb) * groups + gi0) * 32 + 16 * k : zeros, ok);
      }
    }
  };

  float d[NT / 2];
#pragma unroll
  for (int i = 0; i < NT / 2; ++i) d[i] = 0.f;
  const __half2 k1152 = __float2half2_rn(1152.f);
  // int8 with one scale per row: this lane's two rows' scales, for the whole K loop.
  __half2 row_lo = __float2half2_rn(0.f), row_hi = row_lo;
  if constexpr (BITS == 8 && G == 0) {
    if (rb0 + warp < row_blocks) {  // the scale array is padded to whole row blocks (with zeros)
      const uint16_t* sc = reinterpret_cast<const uint16_t*>(scales) + (rb0 + warp) * 16 + g;
      row_lo = __half2half2(__ushort_as_half(sc[0]));
      row_hi = __half2half2(__ushort_as_half(sc[8]));
    }
  }
  // The A registers of chunk c from its stage: the exact integer (q - z) in f16, then one rounding of
  // its product with the scale (as qgemv, and bit for bit dequantize_packed's f16 value); with mins,
  // q * s + m by one fused multiply-add (one rounding of the exact value, as qgemv forms it).
  auto min_pair = [&](int st, int h) {  // (row g, row g + 8) mins of the chunk's group h
    return bits_h2(*reinterpret_cast<const uint32_t*>(zs + st * kZBytes + warp * 32 * SG + h * 32 + g * 4));
  };
  auto scaled = [&](__half2 q, __half2 s, __half2 m) { return h2_bits(MINS ? __hfma2(q, s, m) : __hmul2(q, s)); };
  auto dequant = [&](int c, uint32_t (&a)[4][4]) {
    const int st = c % kStages;
    if constexpr (BITS == 8) {
      // Element e of sub-tile s: byte 8 (s & 1) + e of vector s / 2, stored as q + 128; with 0x64 as the
      // high byte a pair of bytes becomes two f16 1024 + (q + 128), minus 1152 = q.
      const uint4* qv = reinterpret_cast<const uint4*>(ws + st * kWBytes + warp * LPC * 512 + lane * 16);
#pragma unroll
      for (int s = 0; s < 4; ++s) {
        __half2 s_lo = row_lo, s_hi = row_hi;
        const int h = G == 16 ? s : s >> 1;  // groups of 32: sub-tiles 0-1 are the chunk's first group
        if constexpr (G != 0) {
          const uint32_t sp =
              *reinterpret_cast<const uint32_t*>(ss + st * kSBytes + warp * 32 * SG + h * 32 + g * 4);
          s_lo = __low2half2(bits_h2(sp));
          s_hi = __high2half2(bits_h2(sp));
        }
        __half2 m_lo = __float2half2_rn(0.f), m_hi = m_lo;
        if constexpr (MINS) {
          const __half2 mp = min_pair(st, h);
          m_lo = __low2half2(mp);
          m_hi = __high2half2(mp);
        }
        const uint4 q = qv[(s >> 1) * 32];  // vectors of a row block are 512 bytes apart
        const uint32_t w0 = (s & 1) ? q.z : q.x, w1 = (s & 1) ? q.w : q.y;
        a[s][0] = scaled(__hsub2(bits_h2(__byte_perm(w0, 0x64646464u, 0x4140)), k1152), s_lo, m_lo);
        a[s][1] = scaled(__hsub2(bits_h2(__byte_perm(w0, 0x64646464u, 0x4342)), k1152), s_hi, m_hi);
        a[s][2] = scaled(__hsub2(bits_h2(__byte_perm(w1, 0x64646464u, 0x4140)), k1152), s_lo, m_lo);
        a[s][3] = scaled(__hsub2(bits_h2(__byte_perm(w1, 0x64646464u, 0x4342)), k1152), s_hi, m_hi);
      }
      return;
    }
    const uint4 q = *reinterpret_cast<const uint4*>(ws + st * kWBytes + warp * 512 + lane * 16);
#pragma unroll
    for (int s = 0; s < 4; ++s) {
      const int h = G == 128 ? 0 : s >> 1;  // groups of 32: sub-tiles 0-1 are the chunk's first group
      const uint8_t* entry = ss + st * kSBytes + warp * SB * SG + h * SB + g * (SB / 8);
      const uint32_t sp = *reinterpret_cast<const uint32_t*>(entry);
      const uint32_t zpair =
          ASYM ? reinterpret_cast<const uint32_t*>(entry)[1] : MINS ? 0u : 0x0808u;  // (mins: the plain q)
      const __half2 s_lo = __low2half2(bits_h2(sp)), s_hi = __high2half2(bits_h2(sp));  // rows g, g + 8
      __half2 m_lo = __float2half2_rn(0.f), m_hi = m_lo;
      if constexpr (MINS) {
        const __half2 mp = min_pair(st, h);
        m_lo = __low2half2(mp);
        m_hi = __high2half2(mp);
      }
      __half2 qz[4];
      int4_qz(s == 0 ? q.x : s == 1 ? q.y : s == 2 ? q.z : q.w, int4_zero(zpair), qz);
      a[s][0] = scaled(qz[0], s_lo, m_lo);
      a[s][1] = scaled(qz[1], s_hi, m_hi);
      a[s][2] = scaled(qz[2], s_lo, m_lo);
      a[s][3] = scaled(qz[3], s_hi, m_hi);
    }
  };
  wgmma_k_loop<NT>(d, chunks, xs, bars, load_stage, dequant);

  const int t4 = lane & 3, row0 = (rb0 + warp) * 16 + g;
#pragma unroll
  for (int i = 0; i < NT / 8; ++i)
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      const int row = row0 + 8 * (r >> 1), tok = tok0 + 8 * i + 2 * t4 + (r & 1);
      if (row < n_out && tok < T) y[size_t(tok) * ldy + row] = d[4 * i + r];
    }
}

template <int BITS, int G, bool ASYM, int NT, bool MINS = false>
void launch(const DeviceMatrix& w, const uint16_t* x, int T, float* y, int64_t ldy, cudaStream_t stream) {
  auto* kernel = qgemm_kernel<BITS, G, ASYM, NT, MINS>;
  constexpr int kSmem = Tile<NT, BITS == 4 ? 1 : 2, MINS, G == 16 ? 4 : 2, ASYM>::kSmemBytes;
  static const bool attr = [&] {
    QB_CUDA_OK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem));
    return true;
  }();
  (void)attr;
  const PackedShape& p = w.shape;
  const CUtensorMap map = wgmma_x_tensor_map(x, T, int(p.n_in), NT, "qgemm");
  // x: token tiles, fastest (the blocks of one row tile run together and share its weights in L2).
  const dim3 grid(unsigned((T + NT - 1) / NT), unsigned((p.row_blocks + kRowWarps - 1) / kRowWarps));
  kernel<<<grid, kRowWarps * 32, kSmem, stream>>>(
      static_cast<const uint4*>(w.weights.get()), static_cast<const uint8_t*>(w.scales.get()),
      static_cast<const uint8_t*>(w.zeros.get()), map, y, T, int(p.n_out), int(p.row_blocks), int(p.chunks),
      int(p.groups), int(ldy));
  QB_CUDA_OK(cudaGetLastError());
}

template <int BITS, int G, bool ASYM, bool MINS = false>
void launch_any(const QgemmConfig& c, const DeviceMatrix& w, const uint16_t* x, int T, float* y, int64_t ldy,
                cudaStream_t stream) {
  c.tokens == 128 ? launch<BITS, G, ASYM, 128, MINS>(w, x, T, y, ldy, stream)
                  : launch<BITS, G, ASYM, 64, MINS>(w, x, T, y, ldy, stream);
}

}  // namespace

bool qgemm_supports(const PackedShape& s) {
  const bool w4 = s.spec.format == WeightFormat::W4A16 && (s.spec.group == 32 || s.spec.group == 128);
  const bool w8 = s.spec.format == WeightFormat::W8A16 && (s.spec.group == 0 || s.spec.group == 32 || s.spec.group == 16);
  return (w4 || w8) && s.n_in % 8 == 0;
}

QgemmConfig qgemm_config(const PackedShape& shape, int T, int sms) {
  return QgemmConfig{wgmma_tile_tokens(T, shape.n_out, sms)};
}

QgemmConfig qgemm(const DeviceMatrix& w, const uint16_t* x, int T, float* y, cudaStream_t stream, QgemmConfig cfg,
                  int64_t ldy) {
  if (!qgemm_supports(w.shape))
    throw std::invalid_argument("qgemm: needs packed w4g32, w4g128 (either with zero points), w4g32m, w8, w8g32, "
                                "w8g16 or either of those with mins, with n_in a multiple of 8, got " +
                                spec_name(w.shape.spec) + " with n_in " + std::to_string(w.shape.n_in));
  if (T < 1) throw std::invalid_argument("qgemm: T must be at least 1, got " + std::to_string(T));
  if (ldy == 0) ldy = w.shape.n_out;
  if (ldy < w.shape.n_out || ldy >= (int64_t(1) << 31))
    throw std::invalid_argument("qgemm: ldy " + std::to_string(ldy) + " must be at least n_out (" +
                                std::to_string(w.shape.n_out) + ") and below 2^31");
  if (cfg.tokens == 0) cfg = qgemm_config(w.shape, T, wgmma_sm_count());
  if (cfg.tokens != 64 && cfg.tokens != 128)
    throw std::invalid_argument("qgemm: tile of " + std::to_string(cfg.tokens) + " tokens (supported: 64, 128)");
  const QuantSpec& q = w.shape.spec;
  if (q.format == WeightFormat::W8A16 && q.group == 16)
    q.mins ? launch_any<8, 16, false, true>(cfg, w, x, T, y, ldy, stream) : launch_any<8, 16, false>(cfg, w, x, T, y, ldy, stream);
  else if (q.format == WeightFormat::W8A16 && q.mins)
    launch_any<8, 32, false, true>(cfg, w, x, T, y, ldy, stream);
  else if (q.format == WeightFormat::W8A16)
    q.group == 32 ? launch_any<8, 32, false>(cfg, w, x, T, y, ldy, stream)
                  : launch_any<8, 0, false>(cfg, w, x, T, y, ldy, stream);
  else if (q.mins)
    launch_any<4, 32, false, true>(cfg, w, x, T, y, ldy, stream);
  else if (q.group == 128)
    q.asym ? launch_any<4, 128, true>(cfg, w, x, T, y, ldy, stream) : launch_any<4, 128, false>(cfg, w, x, T, y, ldy, stream);
  else
    q.asym ? launch_any<4, 32, true>(cfg, w, x, T, y, ldy, stream) : launch_any<4, 32, false>(cfg, w, x, T, y, ldy, stream);
  return cfg;
}

}  // namespace qb::runtime::cuda
