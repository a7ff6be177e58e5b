// FP8 W8A8's prefill products (T > 16) on the f16 tensor cores: wgmma with f32 accumulation over the exact
// e4m3 products, straight from the row-major weight codes the decode kernels and cuBLASLt read. See w8a8.h.
//
// Why not the FP8 tensor cores: their partial sums keep about 14 bits (DeepSeek-V3's report; up to 8e-5 of
// the sum of |products| measured here at real widths, 7e-4 at 64-80 inputs), which moved a random Llama's
// next-token distributions by a mean KL of 3.96e-4 and stories260K's by 9.37e-3 against the CPU's exact sums
// (docs/perf.md, session 30): past issue #6's 1e-4. Every e4m3 value is a normal f16 value, so here the
// conversions are exact, every product is exact, and only the f32 accumulation rounds, as in the decode
// kernel (w8a8_mma.cu).
//
// The pipeline is qgemm's (wgmma_pipe.cuh). Weights: each warp's 16-row block, per 64-wide chunk lane
// (g, t) copies bytes [16 t, 16 t + 16) of rows g and g + 8 (cp.async, zero-filled past n_out and n_in).
// The k index of the A fragments is mapped onto those bytes as the decode kernel maps it: sub-tile s's
// fragment k = 2t + e is byte 16 t + 4 s + e, k = 8 + 2t + e is byte 16 t + 4 s + 2 + e (e = 0, 1), so a
// lane's A registers come from its own 16 bytes with one cvt per pair and no shuffles. wgmma reads B
// (the activations) from shared memory in its own k order, so the activation codes are laid out in that
// permuted order beforehand, as f16 (store_codes4_permuted: by the quantizer itself, quantize_act_fp8_permuted,
// or from codes by permute_codes_kernel below): position 64 c + 16 s + 8 h + 2 t + e of
// a row holds input 64 c + 16 t + 4 s + 2 h + e. Each k then pairs a weight with the activation of the
// same input, and the sum over a chunk is the same set of exact products.
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <stdexcept>
#include <string>

#include "quantbench/runtime/cuda/cuda_check.h"
#include "quantbench/runtime/cuda/w8a8.h"
#include "quantbench/runtime/cuda/w8a8_codes.cuh"
#include "quantbench/runtime/cuda/wgmma_pipe.cuh"

namespace qb::runtime::cuda {
namespace {

constexpr int kWBytes = kWgRowWarps * 2 * 512;  // per stage: 8 row blocks x 2 rows per lane x 32 lanes x 16 bytes
template <int NT>
constexpr int kSmemBytes = kWgStages * (NT * 128 + kWBytes + 8) + 1024;  // + alignment

// One thread per (token, chunk, t): input bytes [64 c + 16 t, + 16) of the token's codes (zeros past
// n_in) to their 16 permuted f16 positions (8 pairs); x16 rows are `width` (n_in rounded up to 64) wide.
__global__ void permute_codes_kernel(const uint8_t* __restrict__ xq, int n_in, int width, int T,
                                     uint16_t* __restrict__ x16) {
  const int per_row = width / 16;
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= int64_t(T) * per_row) return;
  const int tok = int(i / per_row), piece = int(i % per_row), col = 16 * piece;
  uint4 q = make_uint4(0, 0, 0, 0);
  if (col < n_in) q = *reinterpret_cast<const uint4*>(xq + size_t(tok) * n_in + col);  // n_in % 16 == 0
  uint32_t* row = reinterpret_cast<uint32_t*>(x16 + size_t(tok) * width);
  const uint32_t w[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
  for (int s = 0; s < 4; ++s) store_codes4_permuted(row, 4 * piece + s, w[s]);
}

// y[tok][row] = (sum * sx[tok]) * sw[row], the block's 128 rows x NT tokens.
template <int NT>
__global__ void __launch_bounds__(kWgRowWarps * 32, 2)
    fp8_prefill_kernel(const uint8_t* __restrict__ W, const float* __restrict__ sw,
                       const __grid_constant__ CUtensorMap x_map, const float* __restrict__ sx, float* __restrict__ y,
                       int T, int n_out, int n_in, int chunks) {
  extern __shared__ uint8_t smem_raw[];
  // (aligned by an offset from the shared array itself, so the compiler still emits ld.shared: qgemm.cu)
  uint8_t* smem = smem_raw + ((1024 - (smem_u32(smem_raw) & 1023)) & 1023);
  uint8_t* xs = smem;                        // [stage][NT * 128], 1024-byte aligned (swizzle atoms)
  uint8_t* ws = xs + kWgStages * NT * 128;   // [stage][warp][row g / g + 8][lane] 16 bytes
  const uint32_t bars = smem_u32(ws + kWgStages * kWBytes);
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t = lane & 3;
  const int tok0 = blockIdx.x * NT, row0 = (blockIdx.y * kWgRowWarps + warp) * 16 + g;  // and row0 + 8
  wgmma_init_bars(bars);

  auto load_stage = [&](int st, int c) {
    wgmma_load_x<NT>(&x_map, xs, bars, st, c, tok0);
    const int col = 64 * c + 16 * t;
#pragma unroll
    for (int v = 0; v < 2; ++v) {
      const int row = row0 + 8 * v;
      const bool ok = row < n_out && col < n_in;
      cp_async16(smem_u32(ws + st * kWBytes + (warp * 2 + v) * 512 + lane * 16),
                 ok ? W + size_t(row) * n_in + col : W, ok);
    }
  };
  auto dequant = [&](int c, uint32_t (&a)[4][4]) {
    const uint8_t* base = ws + (c % kWgStages) * kWBytes + warp * 1024 + lane * 16;
    const uint4 lo = *reinterpret_cast<const uint4*>(base), hi = *reinterpret_cast<const uint4*>(base + 512);
    const uint32_t r0[4] = {lo.x, lo.y, lo.z, lo.w}, r1[4] = {hi.x, hi.y, hi.z, hi.w};  // rows g, g + 8
#pragma unroll
    for (int s = 0; s < 4; ++s) {
      a[s][0] = e4m3x2_to_f16x2(r0[s]);        // row g, k = 2t, 2t + 1
      a[s][1] = e4m3x2_to_f16x2(r1[s]);        // row g + 8
      a[s][2] = e4m3x2_to_f16x2(r0[s] >> 16);  // row g, k = 8 + 2t, 9 + 2t
      a[s][3] = e4m3x2_to_f16x2(r1[s] >> 16);  // row g + 8
    }
  };

  float d[NT / 2];
#pragma unroll
  for (int i = 0; i < NT / 2; ++i) d[i] = 0.f;
  wgmma_k_loop<NT>(d, chunks, xs, bars, load_stage, dequant);

  // (D[16 (warp % 4) + g + 8 (r / 2)][8 i + 2 t + r % 2] is d[4 i + r], wgmma_pipe.cuh)
  const float s_lo = row0 < n_out ? sw[row0] : 0.f, s_hi = row0 + 8 < n_out ? sw[row0 + 8] : 0.f;
#pragma unroll
  for (int i = 0; i < NT / 8; ++i)
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      const int row = row0 + 8 * (r >> 1), tok = tok0 + 8 * i + 2 * t + (r & 1);
      if (row < n_out && tok < T) y[size_t(tok) * n_out + row] = (d[4 * i + r] * sx[tok]) * ((r >> 1) ? s_hi : s_lo);
    }
}

template <int NT>
void launch(const uint8_t* W, const float* sw, int n_out, int n_in, const uint16_t* x16, int width, const float* sx,
            int T, float* y, cudaStream_t st) {
  constexpr int kSmem = kSmemBytes<NT>;
  static const bool attr = [] {
    QB_CUDA_OK(cudaFuncSetAttribute(fp8_prefill_kernel<NT>, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem));
    return true;
  }();
  (void)attr;
  const CUtensorMap map = wgmma_x_tensor_map(x16, T, width, NT, "w8a8_fp8_prefill");
  // x: token tiles, fastest (the blocks of one row tile run together and share its weights in L2)
  const dim3 grid(unsigned((T + NT - 1) / NT), unsigned((n_out + 16 * kWgRowWarps - 1) / (16 * kWgRowWarps)));
  fp8_prefill_kernel<NT><<<grid, kWgRowWarps * 32, kSmem, st>>>(W, sw, map, sx, y, T, n_out, n_in, width / 64);
  QB_CUDA_OK(cudaGetLastError());
}

}  // namespace

bool w8a8_fp8_prefill_fits(int n_in, const void* W) {
  return n_in > 0 && n_in % 16 == 0 && reinterpret_cast<uintptr_t>(W) % 16 == 0;
}

size_t w8a8_fp8_prefill_scratch_bytes(int n_in, int T) {
  return size_t(T) * size_t(fp8_prefill_row_width(n_in)) * 2;
}

bool w8a8_fp8_prefill(const uint8_t* W, const float* sw, int n_out, int n_in, const uint8_t* xq, const float* sx,
                      int T, uint16_t* x16, float* y, cudaStream_t st) {
  auto aligned = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  if (!w8a8_fp8_prefill_fits(n_in, W) || !aligned(xq) || !aligned(x16)) return false;
  if (T >= 1) {
    const int width = fp8_prefill_row_width(n_in);
    const int64_t pieces = int64_t(T) * (width / 16);
    permute_codes_kernel<<<unsigned((pieces + 255) / 256), 256, 0, st>>>(xq, n_in, width, T, x16);
    QB_CUDA_OK(cudaGetLastError());
  }
  return w8a8_fp8_prefill_f16(W, sw, n_out, n_in, x16, sx, T, y, st);
}

bool w8a8_fp8_prefill_f16(const uint8_t* W, const float* sw, int n_out, int n_in, const uint16_t* x16,
                          const float* sx, int T, float* y, cudaStream_t st) {
  if (!w8a8_fp8_prefill_fits(n_in, W) || reinterpret_cast<uintptr_t>(x16) % 16 != 0) return false;
  if (T < 1 || n_out < 1) throw std::invalid_argument("w8a8_fp8_prefill: needs T >= 1 and n_out >= 1, got T " +
                                                      std::to_string(T) + ", n_out " + std::to_string(n_out));
  const int width = fp8_prefill_row_width(n_in);
  if (wgmma_tile_tokens(T, n_out, wgmma_sm_count()) == 128) launch<128>(W, sw, n_out, n_in, x16, width, sx, T, y, st);
  else launch<64>(W, sw, n_out, n_in, x16, width, sx, T, y, st);
  return true;
}

}  // namespace qb::runtime::cuda
