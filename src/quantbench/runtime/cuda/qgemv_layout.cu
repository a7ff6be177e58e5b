// The packed layout's device code besides the decode products (qgemv_kernel.cuh): the activation-fragment
// packers (pack_activations, pack_activations_f32) and the dequantizer back to a dense matrix
// (dequantize_packed). Both layouts, weights and activation fragments, are documented in qgemv.h.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <stdexcept>

#include "quantbench/runtime/cuda/cuda_check.h"
#include "quantbench/runtime/cuda/qgemv.h"
#include "quantbench/runtime/cuda/qgemv_formats.cuh"

namespace qb::runtime::cuda {
namespace {

// Where fragment word idx (of nt 8-token tiles per chunk) takes its two activations from, by the layout in qgemv.h:
// token tok, inputs k and k + 1.
struct FragSource {
  int tok, k;
};
__device__ __forceinline__ FragSource frag_source(size_t idx, int nt) {
  const int sh = int(idx & 7), lane = int((idx >> 3) & 31);
  const size_t rest = idx >> 8;
  const int j = int(rest % nt), c = int(rest / nt);
  const int s = sh >> 1, h = sh & 1;
  return {8 * j + (lane >> 2), 64 * c + 16 * s + 2 * (lane & 3) + 8 * h};
}

__global__ void pack_activations_kernel(const uint16_t* __restrict__ x, int n_tokens, int n_in, int nt,
                                        int chunks, uint32_t* __restrict__ out) {
  const size_t total = size_t(chunks) * nt * 32 * 8;
  for (size_t idx = blockIdx.x * size_t(blockDim.x) + threadIdx.x; idx < total;
       idx += size_t(gridDim.x) * blockDim.x) {
    const auto [tok, k] = frag_source(idx, nt);
    uint32_t lo = 0, hi = 0;
    if (tok < n_tokens) {
      const uint16_t* row = x + size_t(tok) * n_in;
      if (k < n_in) lo = row[k];
      if (k + 1 < n_in) hi = row[k + 1];
    }
    out[idx] = lo | (hi << 16);
  }
}

// Same fragment layout as pack_activations_kernel, reading f32 activations and rounding them to f16
// or bf16 on the way (the forward pass keeps its residual stream in f32, so this replaces a cast kernel
// plus a pack kernel with one).
template <bool kToBf16>
__global__ void pack_activations_f32_kernel(const float* __restrict__ x, int n_tokens, int n_in, int nt, int chunks,
                                            uint32_t* __restrict__ out) {
  const size_t total = size_t(chunks) * nt * 32 * 8;
  for (size_t idx = blockIdx.x * size_t(blockDim.x) + threadIdx.x; idx < total;
       idx += size_t(gridDim.x) * blockDim.x) {
    const auto [tok, k] = frag_source(idx, nt);
    float a = 0.f, b = 0.f;
    if (tok < n_tokens) {
      const float* row = x + size_t(tok) * n_in;
      if (k < n_in) a = row[k];
      if (k + 1 < n_in) b = row[k + 1];
    }
    uint32_t lo, hi;
    if constexpr (kToBf16) {
      lo = __bfloat16_as_ushort(__float2bfloat16_rn(a));
      hi = __bfloat16_as_ushort(__float2bfloat16_rn(b));
    } else {
      lo = __half_as_ushort(__float2half_rn(a));
      hi = __half_as_ushort(__float2half_rn(b));
    }
    out[idx] = lo | (hi << 16);
  }
}

// Packed -> dense row-major [n_out][n_in] (f16 or bf16), one warp per 16x64 chunk: each lane decodes
// its 16-byte vectors into a shared tile (the inverse of the layout rule in qgemv.h), then the warp
// writes the tile's 16 rows with coalesced 128-byte stores. Values are (q - z) * s computed in f32 and
// rounded once to the output type; with mins, q * s + m, rounded to f32 and then to the output type.
template <int F, bool kToBf16>
__global__ void dequantize_packed_kernel(const uint4* __restrict__ W, const uint16_t* __restrict__ scales,
                                         const uint8_t* __restrict__ zeros, int group, int ofs, int n_out, int n_in,
                                         int row_blocks, int chunks, int groups, uint16_t* __restrict__ out) {
  constexpr int LPC = Fmt<F>::LPC;
  __shared__ float tile[4][16][65];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t job = int64_t(blockIdx.x) * 4 + warp;
  if (job >= int64_t(row_blocks) * chunks) return;
  const int rb = int(job / chunks), c = int(job % chunks);
  const int g = lane >> 2, t = lane & 3;
  auto scale_of = [&](int r, int col) -> float {  // r: row within the block, col: global column
    const int row = rb * 16 + r;
    if (F == 0) return 1.f;
    if (F == 1 && group == 0) return row < n_out ? __half2float(__ushort_as_half(scales[row])) : 0.f;
    const int gi = col / group;
    const size_t entry = (size_t(rb) * groups + gi) * 8 + (r & 7);  // asymmetric int4: 8-byte entries (qgemv.h)
    return __half2float(__ushort_as_half(scales[entry * (F == 2 && ofs == kZeroPoints ? 4 : 2) + (r >> 3)]));
  };
  auto zero_of = [&](int r, int col) -> int {
    if (F != 2 || ofs == kMins) return 0;
    if (ofs == kNoOffset) return 8;
    const int gi = col / group;  // the entry's bytes 4 and 5 (qgemv.h)
    return reinterpret_cast<const uint8_t*>(scales)[((size_t(rb) * groups + gi) * 8 + (r & 7)) * 8 + 4 + (r >> 3)];
  };
  auto min_of = [&](int r, int col) -> float {
    if (F == 0 || ofs != kMins) return 0.f;
    const int gi = col / group;
    const auto* mins = reinterpret_cast<const uint16_t*>(zeros);
    return __half2float(__ushort_as_half(mins[((size_t(rb) * groups + gi) * 8 + (r & 7)) * 2 + (r >> 3)]));
  };
  // A lane's elements lie in two rows (g, g + 8) and the chunk's four k16 sub-tiles: their scales and
  // zero points (or mins), looked up once (a group of 16, 32 or 128 never straddles a sub-tile).
  float scl[2][4], mn[2][4];
  int zr[2][4];
#pragma unroll
  for (int hh = 0; hh < 2; ++hh)
#pragma unroll
    for (int st = 0; st < 4; ++st) {
      scl[hh][st] = scale_of(g + 8 * hh, 64 * c + 16 * st);
      zr[hh][st] = zero_of(g + 8 * hh, 64 * c + 16 * st);
      mn[hh][st] = min_of(g + 8 * hh, 64 * c + 16 * st);
    }
#pragma unroll
  for (int v = 0; v < LPC; ++v) {
    const uint4 q = W[((size_t(rb) * chunks + c) * LPC + v) * 32 + lane];
    const uint32_t words[4] = {q.x, q.y, q.z, q.w};
    // Sub-tiles held by this vector: bf16 one (s = v), int8 two (s = 2v, 2v + 1), int4 four.
    constexpr int SUBS = F == 0 ? 1 : F == 1 ? 2 : 4;
#pragma unroll
    for (int si = 0; si < SUBS; ++si) {
      const int s = F == 0 ? v : F == 1 ? 2 * v + si : si;
#pragma unroll
      for (int e = 0; e < 8; ++e) {
        const int r = g + 8 * ((e >> 1) & 1), kk = 16 * s + 2 * t + (e & 1) + 8 * (e >> 2);
        const int col = 64 * c + kk;
        float val;
        if constexpr (F == 0) {
          const uint16_t b = uint16_t(words[e >> 1] >> (16 * (e & 1)));
          val = __bfloat162float(__ushort_as_bfloat16(b));
        } else if constexpr (F == 1) {
          const int byte = 8 * (s & 1) + e;
          const int qv = int((words[byte >> 2] >> (8 * (byte & 3))) & 255u) - 128;
          const int hh = (e >> 1) & 1;
          const float qs = float(qv) * scl[hh][s];  // exact
          val = col < n_in ? (ofs == kMins ? qs + mn[hh][s] : qs) : 0.f;
        } else {
          const int nib = (e >> 1) + 4 * (e & 1);
          const int qv = int((words[s] >> (4 * nib)) & 15u);
          const int hh = (e >> 1) & 1;
          const float qs = float(qv - zr[hh][s]) * scl[hh][s];  // exact
          val = col < n_in ? (ofs == kMins ? qs + mn[hh][s] : qs) : 0.f;
        }
        tile[warp][r][kk] = val;
      }
    }
  }
  __syncwarp();
  if (n_in % 2 == 0) {  // two values per lane and store: a warp writes a row's 128 bytes at once
    const int col = 64 * c + 2 * lane;
    for (int r = 0; r < 16; ++r) {
      const int row = rb * 16 + r;
      if (row >= n_out) break;
      if (col >= n_in) continue;
      const float a = tile[warp][r][2 * lane], b = tile[warp][r][2 * lane + 1];
      const uint32_t lo = kToBf16 ? __bfloat16_as_ushort(__float2bfloat16_rn(a)) : __half_as_ushort(__float2half_rn(a));
      const uint32_t hi = kToBf16 ? __bfloat16_as_ushort(__float2bfloat16_rn(b)) : __half_as_ushort(__float2half_rn(b));
      *reinterpret_cast<uint32_t*>(out + size_t(row) * n_in + col) = lo | (hi << 16);
    }
    return;
  }
  for (int r = 0; r < 16; ++r) {
    const int row = rb * 16 + r;
    if (row >= n_out) break;
    for (int kk = lane; kk < 64; kk += 32) {
      const int col = 64 * c + kk;
      if (col >= n_in) continue;
      const float val = tile[warp][r][kk];
      out[size_t(row) * n_in + col] =
          kToBf16 ? __bfloat16_as_ushort(__float2bfloat16_rn(val)) : __half_as_ushort(__float2half_rn(val));
    }
  }
}

}  // namespace

size_t activation_frag_bytes(int64_t n_in, int n_tokens) {
  const int64_t chunks = (n_in + 63) / 64, nt = (n_tokens + 7) / 8;
  return size_t(chunks * nt * 32 * 8 * 4);
}

void pack_activations(const void* x, bool /*x_is_bf16: the bits move unchanged*/, int n_tokens, int64_t n_in,
                      void* xfrag, cudaStream_t stream) {
  if (n_tokens < 1 || n_tokens > 16) throw std::invalid_argument("pack_activations: n_tokens must be 1..16");
  const int chunks = int((n_in + 63) / 64), nt = (n_tokens + 7) / 8;
  const size_t total = size_t(chunks) * nt * 256;
  const int blocks = int(std::min<size_t>((total + 255) / 256, 4096));
  pack_activations_kernel<<<blocks, 256, 0, stream>>>(static_cast<const uint16_t*>(x), n_tokens, int(n_in), nt,
                                                      chunks, static_cast<uint32_t*>(xfrag));
  QB_CUDA_LAUNCHED();
}

void pack_activations_f32(const float* x, bool to_bf16, int n_tokens, int64_t n_in, void* xfrag,
                          cudaStream_t stream) {
  if (n_tokens < 1 || n_tokens > 16) throw std::invalid_argument("pack_activations_f32: n_tokens must be 1..16");
  const int chunks = int((n_in + 63) / 64), nt = (n_tokens + 7) / 8;
  const size_t total = size_t(chunks) * nt * 256;
  const int blocks = int(std::min<size_t>((total + 255) / 256, 4096));
  auto* o = static_cast<uint32_t*>(xfrag);
  if (to_bf16) pack_activations_f32_kernel<true><<<blocks, 256, 0, stream>>>(x, n_tokens, int(n_in), nt, chunks, o);
  else pack_activations_f32_kernel<false><<<blocks, 256, 0, stream>>>(x, n_tokens, int(n_in), nt, chunks, o);
  QB_CUDA_LAUNCHED();
}

void dequantize_packed(const DeviceMatrix& w, bool to_bf16, void* out, cudaStream_t stream) {
  const PackedShape& p = w.shape;
  const int64_t jobs = p.row_blocks * p.chunks;
  const unsigned blocks = unsigned((jobs + 3) / 4);
  auto* o = static_cast<uint16_t*>(out);
  const auto* W = static_cast<const uint4*>(w.weights.get());
  const auto* sc = static_cast<const uint16_t*>(w.scales.get());
  const auto* zp = static_cast<const uint8_t*>(w.zeros.get());
  const int grp = p.spec.group, no = int(p.n_out), ni = int(p.n_in), rbs = int(p.row_blocks), ch = int(p.chunks),
            gs = int(p.groups);
  const int ofs = p.spec.mins ? kMins : p.spec.asym ? kZeroPoints : kNoOffset;
#define QB_DEQ(F)                                                                                              \
  (to_bf16 ? dequantize_packed_kernel<F, true><<<blocks, 128, 0, stream>>>(W, sc, zp, grp, ofs, no, ni, rbs, ch, gs, o) \
           : dequantize_packed_kernel<F, false><<<blocks, 128, 0, stream>>>(W, sc, zp, grp, ofs, no, ni, rbs, ch, gs, o))
  switch (p.spec.format) {
    case WeightFormat::BF16: QB_DEQ(0); break;
    case WeightFormat::W8A16: QB_DEQ(1); break;
    case WeightFormat::W4A16: QB_DEQ(2); break;
  }
#undef QB_DEQ
  QB_CUDA_LAUNCHED();
}

}  // namespace qb::runtime::cuda
