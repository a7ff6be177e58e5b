// W8A8's decode products (1-16 tokens) on the tensor cores by mma.sync, straight from the row-major
// weight codes that cuBLAS(Lt) and the exact kernels read (no second copy, no repack). See w8a8.h.
//
// FP8 on the f16 tensor cores. Why: the CUDA-core kernel (w8a8_fp8_gemv_f32) converts every weight and
// every activation code to f32 and spends one FMA per product: about four instructions per weight byte,
// which at one token kept the FP8 products 20% slower than INT8's dp4a ones over the same bytes
// (docs/perf.md, session 27). Here a weight costs half a conversion (cvt e4m3x2 -> f16x2) and 1/32 of an
// mma. Exactness: every e4m3 value is a normal f16 value, so the conversions are exact and each product
// in the mma is exact; only the tensor cores' f32 accumulation rounds (one accumulation per mma of 16
// products, then the warps' partial sums in f32), then (sum * s_x) * s_w as the CPU scales. Not the CPU's
// bits: the fast form, as the CUDA-core kernel.
//
// INT8 on the int8 tensor cores (m16n8k32, int32 accumulation). Integer sums are exact in any order, so
// the result is the CPU's bit for bit, as the dp4a kernel's and cuBLAS's are. Why: at 2-16 tokens the
// dp4a kernel re-reads 16 bytes of activations from L1 and issues 4 dp4a per 16 weight bytes for every
// token, and cuBLAS's int8 GEMM needs a scaling kernel after it and is not launched early. On an H200 it
// made 8- and 16-stream steps 42% and 13% faster than cuBLAS; at one token the dp4a kernel stays, 4%
// faster per step (docs/perf.md, session 29).
//
// Layout trick: the dot product does not care in which order the inputs are summed, so the k index of
// the mma fragments is mapped onto memory to suit 16-byte loads. In each 64-input chunk, lane (g, t)
// (g = lane / 4, t = lane % 4) loads bytes [16 t, 16 t + 16) of rows g and g + 8 of its 16-row block, and
// of token g's activation codes; the 4 lanes of a row read its 64 contiguous bytes. Each mma takes some
// of those bytes, the same ones for A (weights) and B (activations), so each logical k pairs one weight
// with the activation of the same input:
// - FP8 (k16, two f16 per register): mma m (0..3) takes bytes 4 m .. 4 m + 3; fragment k = 2t, 2t + 1 are
//   bytes 4m, 4m + 1 and k = 2t + 8, 2t + 9 are bytes 4m + 2, 4m + 3.
// - INT8 (k32, four int8 per register): mma m (0..1) takes bytes 8 m .. 8 m + 7; fragment k = 4t .. 4t + 3
//   are bytes 8m .. 8m + 3 and k = 4t + 16 .. 4t + 19 are bytes 8m + 4 .. 8m + 7.
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <cstdlib>
#include <stdexcept>
#include <type_traits>

#include "quantbench/runtime/cuda/cuda_check.h"
#include "quantbench/runtime/cuda/launch.cuh"
#include "quantbench/runtime/cuda/mma_sync.cuh"
#include "quantbench/runtime/cuda/w8a8.h"
#include "quantbench/runtime/cuda/w8a8_codes.cuh"

namespace qb::runtime::cuda {
namespace {

constexpr int kChunk = 64;  // inputs per chunk: 4 lanes x 16 bytes of one row
// Products of this many tokens or more run w8a8_mma_kernel's ping-pong (kPipe). On an H200 (docs/perf.md, session
// 35): 16-stream steps 11% faster for FP8, 4% for INT8, 8 streams 1% / 0.5%; one-token FP8 steps 0.1-0.4% slower,
// so one token keeps the plain loop.
constexpr int kPipeMinTokens = 2;

__device__ __forceinline__ void mma_s8(int (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint32_t b0,
                                       uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
      : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t word(const uint4& v, int m) {
  return m == 0 ? v.x : (m == 1 ? v.y : (m == 2 ? v.z : v.w));
}

// One step's pieces: each lane's weight vectors (rows g and g + 8) and its tokens' activation codes for kU
// chunks from chunk c0. Lanes past n_in (and tokens past T) get zeros, whose products add nothing.
template <int kU>
__device__ __forceinline__ void load_weights(const uint8_t* wa, const uint8_t* wb, int c0, int n_in, int t,
                                             uint4 (&a)[kU], uint4 (&b)[kU]) {
#pragma unroll
  for (int u = 0; u < kU; ++u) {
    const int off = (c0 + u) * kChunk;
    const bool in = off + 16 * t < n_in;  // (n_in % 16 == 0: a piece is whole or absent)
    a[u] = in ? __ldcs(reinterpret_cast<const uint4*>(wa + off)) : make_uint4(0, 0, 0, 0);
    b[u] = in ? __ldcs(reinterpret_cast<const uint4*>(wb + off)) : make_uint4(0, 0, 0, 0);
  }
}
template <int kU, int NT>
__device__ __forceinline__ void load_codes(const uint8_t* xq, int c0, int n_in, int T, int g, int t,
                                           uint4 (&xs)[kU][NT]) {
#pragma unroll
  for (int u = 0; u < kU; ++u) {
    const int k = (c0 + u) * kChunk + 16 * t;
#pragma unroll
    for (int j = 0; j < NT; ++j) {
      const int tok = 8 * j + g;
      xs[u][j] = tok < T && k < n_in ? *reinterpret_cast<const uint4*>(xq + int64_t(tok) * n_in + k)
                                     : make_uint4(0, 0, 0, 0);
    }
  }
}
// The step's mmas, chunk by chunk (the accumulation order: chunk, then m, then tile).
template <bool kInt8, int kU, int NT, class Acc>
__device__ __forceinline__ void mma_step(Acc (&acc)[NT][4], const uint4 (&a)[kU], const uint4 (&b)[kU],
                                         const uint4 (&xs)[kU][NT]) {
#pragma unroll
  for (int u = 0; u < kU; ++u) {
    const uint4* x = xs[u];
    if constexpr (kInt8) {
#pragma unroll
      for (int m = 0; m < 2; ++m)
#pragma unroll
        for (int j = 0; j < NT; ++j)
          mma_s8(acc[j], word(a[u], 2 * m), word(b[u], 2 * m), word(a[u], 2 * m + 1), word(b[u], 2 * m + 1),
                 word(x[j], 2 * m), word(x[j], 2 * m + 1));
    } else {
#pragma unroll
      for (int m = 0; m < 4; ++m) {
        const uint32_t wa_m = word(a[u], m), wb_m = word(b[u], m);
        const uint32_t a0 = e4m3x2_to_f16x2(wa_m), a1 = e4m3x2_to_f16x2(wb_m);
        const uint32_t a2 = e4m3x2_to_f16x2(wa_m >> 16), a3 = e4m3x2_to_f16x2(wb_m >> 16);
#pragma unroll
        for (int j = 0; j < NT; ++j) {
          const uint32_t x_m = word(x[j], m);
          mma16816(acc[j], a0, a1, a2, a3, e4m3x2_to_f16x2(x_m), e4m3x2_to_f16x2(x_m >> 16));
        }
      }
    }
  }
}

// One block per 16 output rows; its kWarps warps split the chunks (warp w takes steps of kU chunks from
// chunk w * kU, stride kWarps * kU) and add their partial sums in shared memory, in warp order. kInt8:
// INT8 codes (int32 sums), else FP8 (f32 sums). NT: 8-token tiles (1 or 2). Weights stream past L1 (read
// once); the activation codes go through it (every block reads them).
// kPipe: the loop as a ping-pong of two step buffers (kU = 2 chunks each, the registers of the plain loop's
// 4): the next step's weights and codes are loaded before this step's mmas, so a warp always has a step
// in flight while it computes. The plain loop issues a step's loads, then waits for them: session 30's
// Nsight Compute found the 16-token kernel waiting on its loads (82% of stall samples on long scoreboard).
// xq and sx (written by the kernel before: the quantizer, or the norm writing codes) are plain pointers
// read with plain loads, not __restrict__ / __ldg:
// the compiler treats read-only loads as invariant and hoisted the first activation load above
// griddepcontrol.wait, so an early launch read the previous product's codes (found by the backend check:
// stories260K's fast form at mean KL 1.2, fixed by QB_CUDA_PDL=0; the hoisted load was in the SASS).
template <bool kInt8, int NT, int kWarps, bool kPipe>
__global__ void __launch_bounds__(kWarps * 32) w8a8_mma_kernel(const uint8_t* __restrict__ W,
                                                               const float* __restrict__ sw, int n_out, int n_in,
                                                               const uint8_t* xq, const float* sx, int T,
                                                               float* __restrict__ y) {
  using Acc = std::conditional_t<kInt8, int, float>;
  constexpr int kU = kPipe ? 2 : 4;  // chunks per step
  pdl_launch_dependents();
  __shared__ Acc red[kWarps > 1 ? kWarps - 1 : 1][NT][4][32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
  const int row0 = blockIdx.x * 16;
  // Rows past the matrix (the last block of a matrix whose rows are not a multiple of 16) read the last
  // real row; their sums are never stored.
  const uint8_t* wa = W + int64_t(min(row0 + g, n_out - 1)) * n_in + 16 * t;
  const uint8_t* wb = W + int64_t(min(row0 + g + 8, n_out - 1)) * n_in + 16 * t;
  const int chunks = (n_in + kChunk - 1) / kChunk, stride = kWarps * kU;
  Acc acc[NT][4];
#pragma unroll
  for (int j = 0; j < NT; ++j)
#pragma unroll
    for (int i = 0; i < 4; ++i) acc[j][i] = Acc(0);
  if constexpr (kPipe) {
    uint4 a0[kU], b0[kU], a1[kU], b1[kU], x0[kU][NT], x1[kU][NT];
    int c0 = warp * kU;
    if (c0 < chunks) load_weights(wa, wb, c0, n_in, t, a0, b0);
    pdl_wait();  // the codes and scales (the kernel before wrote them) are read from here on
    if (c0 < chunks) load_codes(xq, c0, n_in, T, g, t, x0);
    // Buffers 0 and 1 take turns in code, not by a copy: step c0 in 0, c0 + stride in 1, and so on.
    for (; c0 < chunks; c0 += 2 * stride) {
      const int c1 = c0 + stride, c2 = c1 + stride;
      if (c1 < chunks) {
        load_weights(wa, wb, c1, n_in, t, a1, b1);
        load_codes(xq, c1, n_in, T, g, t, x1);
      }
      mma_step<kInt8>(acc, a0, b0, x0);
      if (c1 >= chunks) break;
      if (c2 < chunks) {
        load_weights(wa, wb, c2, n_in, t, a0, b0);
        load_codes(xq, c2, n_in, T, g, t, x0);
      }
      mma_step<kInt8>(acc, a1, b1, x1);
    }
  } else {
    bool waited = false;
    for (int c0 = warp * kU; c0 < chunks; c0 += stride) {
      uint4 a[kU], b[kU];
      load_weights(wa, wb, c0, n_in, t, a, b);
      if (!waited) pdl_wait();  // the codes and scales (the kernel before wrote them) are read from here on
      waited = true;
      uint4 xs[kU][NT];  // every activation load of the step issued before the first mma
      load_codes(xq, c0, n_in, T, g, t, xs);
      mma_step<kInt8>(acc, a, b, xs);
    }
    if (!waited) pdl_wait();  // (a warp with no chunk: the stores below follow the kernel before)
  }
  if constexpr (kWarps > 1) {
    if (warp > 0)
#pragma unroll
      for (int j = 0; j < NT; ++j)
#pragma unroll
        for (int i = 0; i < 4; ++i) red[warp - 1][j][i][lane] = acc[j][i];
    __syncthreads();
    if (warp > 0) return;
#pragma unroll
    for (int w = 0; w < kWarps - 1; ++w)
#pragma unroll
      for (int j = 0; j < NT; ++j)
#pragma unroll
        for (int i = 0; i < 4; ++i) acc[j][i] += red[w][j][i][lane];
  }
  // Accumulator i of tile j: row g + 8 (i / 2), token 8 j + 2 t + i % 2.
#pragma unroll
  for (int j = 0; j < NT; ++j)
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int row = row0 + g + 8 * (i >> 1), tok = 8 * j + 2 * t + (i & 1);
      if (row < n_out && tok < T)
        y[int64_t(tok) * n_out + row] = scale_out(acc[j][i], sx[tok], sw[row]);
    }
}

// Warps per block: QB_CUDA_FP8_MMA_WARPS (4, 8 or 16, both formats; for sweeps), else 8 where the rows give
// fewer than 512 blocks (4096 rows: 256 blocks, so each SM needs the bytes of more warps in flight), else 4.
int warps_for(int blocks) {
  static const int forced = [] {
    const char* e = std::getenv("QB_CUDA_FP8_MMA_WARPS");
    if (!e) return 0;
    const int v = std::atoi(e);
    if (v != 4 && v != 8 && v != 16)
      throw std::runtime_error("cuda backend: QB_CUDA_FP8_MMA_WARPS must be 4, 8 or 16");
    return v;
  }();
  return forced ? forced : (blocks < 512 ? 8 : 4);
}

template <bool kInt8, int NT, bool kPipe>
void launch_nt(const uint8_t* W, const float* sw, int n_out, int n_in, const uint8_t* xq, const float* sx, int T,
               float* y, cudaStream_t st, bool early) {
  const int blocks = (n_out + 15) / 16;
  const dim3 grid{unsigned(blocks)};
  switch (warps_for(blocks)) {
    case 16:
      launch_kernel(w8a8_mma_kernel<kInt8, NT, 16, kPipe>, grid, dim3(512), 0, st, early, W, sw, n_out, n_in, xq, sx,
                    T, y);
      break;
    case 8:
      launch_kernel(w8a8_mma_kernel<kInt8, NT, 8, kPipe>, grid, dim3(256), 0, st, early, W, sw, n_out, n_in, xq, sx,
                    T, y);
      break;
    default:
      launch_kernel(w8a8_mma_kernel<kInt8, NT, 4, kPipe>, grid, dim3(128), 0, st, early, W, sw, n_out, n_in, xq, sx,
                    T, y);
  }
}

template <bool kInt8>
bool run_mma(const uint8_t* W, const float* sw, int n_out, int n_in, const uint8_t* xq, const float* sx, int T,
             float* y, cudaStream_t st, bool early) {
  if (T > 16) throw std::runtime_error("w8a8 mma decode kernel: more than 16 tokens");
  if (!w8a8_mma_fits(n_in, W, xq)) return false;
  if (T <= 0 || n_out <= 0) return true;
  const bool pipe = T >= w8a8_mma_pipe_min_tokens();
  if (T <= 8) (pipe ? launch_nt<kInt8, 1, true> : launch_nt<kInt8, 1, false>)(W, sw, n_out, n_in, xq, sx, T, y, st, early);
  else (pipe ? launch_nt<kInt8, 2, true> : launch_nt<kInt8, 2, false>)(W, sw, n_out, n_in, xq, sx, T, y, st, early);
  return true;
}

}  // namespace

// The ping-pong from 2 tokens (kPipeMinTokens), the plain loop at one; QB_CUDA_W8A8_PIPE=1 takes the ping-pong at
// every count, 0 never (same-binary A/B runs).
int w8a8_mma_pipe_min_tokens() {
  static const int from = [] {
    const char* e = std::getenv("QB_CUDA_W8A8_PIPE");
    return !e ? kPipeMinTokens : std::atoi(e) != 0 ? 1 : 17;
  }();
  return from;
}

bool w8a8_mma_fits(int n_in, const void* W, const void* xq) {
  return n_in % 16 == 0 && reinterpret_cast<uintptr_t>(W) % 16 == 0 && reinterpret_cast<uintptr_t>(xq) % 16 == 0;
}

bool w8a8_fp8_mma(const uint8_t* W, const float* sw, int n_out, int n_in, const uint8_t* xq, const float* sx, int T,
                  float* y, cudaStream_t st, bool early) {
  return run_mma<false>(W, sw, n_out, n_in, xq, sx, T, y, st, early);
}

bool w8a8_int8_mma(const int8_t* W, const float* sw, int n_out, int n_in, const int8_t* xq, const float* sx, int T,
                   float* y, cudaStream_t st, bool early) {
  return run_mma<true>(reinterpret_cast<const uint8_t*>(W), sw, n_out, n_in, reinterpret_cast<const uint8_t*>(xq), sx,
                       T, y, st, early);
}

}  // namespace qb::runtime::cuda
