// See w8a8.h. The scaling is written with __fmul_rn so no compiler contraction can change the order the
// CPU's reference uses ((float(acc) * s_x) * s_w); the integer sums are exact in any order.
#include <cublas_v2.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <cfloat>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "quantbench/runtime/cuda/cuda_check.h"
#include "quantbench/runtime/cuda/launch.cuh"
#include "quantbench/runtime/cuda/w8a8.h"
#include "quantbench/runtime/cuda/w8a8_codes.cuh"

namespace qb::runtime::cuda {
namespace {

// FP8 W8A8 products of at least this many tokens run on the FP64 tensor cores, fewer on the CUDA-core
// kernel (the same bits either way). QB_CUDA_FP8_DMMA_MIN=n overrides it for A/B measurements (0 or a
// large n: all on one kernel).
int dmma_min_tokens() {
  static const int n = [] {
    const char* e = std::getenv("QB_CUDA_FP8_DMMA_MIN");
    return e ? std::atoi(e) : 2;
  }();
  return n;
}

// Programmatic dependent launch (launch.cuh), as qgemv: the activation quantizers and the decode gemv
// kernels let the kernel after them launch at once (pdl_launch_dependents); the gemv kernels, launched
// early, issue their first weight loads before waiting for the kernel before them (pdl_wait: the
// quantizer, whose codes they read). The codes and scales are plain pointers read with plain loads, not
// __restrict__ / __ldg, which mark a load invariant and let the compiler move it above the wait (it did in
// w8a8_fp8_mma.cu: docs/perf.md, session 28).

// The largest of the block's threads' values (NaNs ignored by fmaxf), every thread gets it. kWarps: the
// block's warps where the kernel fixes them (an unrolled final loop), 0 to read blockDim.
template <int kWarps = 0>
__device__ __forceinline__ float block_max(float am) {
  __shared__ float red[32];
  for (int o = 16; o > 0; o >>= 1) am = fmaxf(am, __shfl_xor_sync(0xffffffffu, am, o));
  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = am;
  __syncthreads();
  am = 0.0f;
  const int warps = kWarps ? kWarps : int(blockDim.x >> 5);
  for (int w = 0; w < warps; ++w) am = fmaxf(am, red[w]);
  return am;
}

// The block's row absmax, every thread gets it; `bad` (every thread) whether the row holds a value that is
// not finite.
__device__ float block_absmax(const float* xr, int n, bool& bad) {
  float am = 0.0f;
  bool nf = false;
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    const float a = fabsf(xr[i]);
    am = fmaxf(am, a);
    nf = nf || !finite_value(a);
  }
  am = block_max(nf ? INFINITY : am);  // (see row_scale)
  bad = !(am <= FLT_MAX);
  return am;
}

// One block per token: the row's absmax, then the codes: int8 (s = absmax / 127), or kFp8 e4m3 (s = absmax /
// 448; NaN -> 0x7f as quant::fp8_encode_value).
template <bool kFp8>
__global__ void quant_act_kernel(const float* x, int64_t xs, int n, uint8_t* q, float* s, unsigned* nonfinite) {
  pdl_launch_dependents();
  const int t = blockIdx.x;
  const float* xr = x + int64_t(t) * xs;
  bool bad;
  const float am = block_absmax(xr, n, bad);
  const float sc = row_scale(am, kFp8 ? 448.0f : 127.0f, bad, nonfinite);
  uint8_t* qr = q + int64_t(t) * n;
  for (int i = threadIdx.x; i < n; i += blockDim.x) qr[i] = kFp8 ? act_code_fp8(xr[i], sc) : act_code_int8(xr[i], sc);
  if (threadIdx.x == 0) s[t] = sc;
}

// Per-token quantization for rows that are whole 16-byte pieces (n % 4 == 0, rows 16-byte aligned) of
// at most kActRegs * 4096 values: one block of 1024 threads per token loads the whole row into registers
// as float4 (every load issued before any is used), takes the absmax, then writes the codes from the
// registers. The one-block-of-256 kernel above reads the row twice, one 4-byte load at a time, which at
// one token left a single SM waiting on dozens of dependent round trips per W8A8 product (docs/perf.md,
// session 27). Same codes, bit for bit: the absmax is a max (order-free) and each code is the same
// arithmetic.
// kPermutedF16 (FP8 only): the codes go out as f16 in FP8's prefill kernel's k order (store_codes4_permuted),
// rows `width` (n rounded up to 64) wide with zeros past n, instead of as bytes: the permutation kernel's
// pass over the codes saved (w8a8_fp8_prefill.cu). Otherwise width is n.
// Two shapes of block, each covering kThreads * kRegs float4 = 16384 values: 1024 threads x 4 for decode
// steps (a token's row spread over a whole block, so one token keeps many loads in flight), 256 x 16 for
// prefills (T > 16), where one block of 1024 per token left 2 blocks per SM, each waiting on its own
// reduction: the quantizer was 8-9% of a 512-token W8A8 prefill at 3-4x its bytes' time (docs/perf.md,
// session 31). QB_CUDA_QUANT_PREFILL_1024=1 keeps the decode shape for prefills (A/B runs).
constexpr int kActRegs = 4, kActThreads = 1024;        // decode shape
constexpr int kActRegsPre = 16, kActThreadsPre = 256;  // prefill shape
static_assert(kActRegs * kActThreads == kActRegsPre * kActThreadsPre, "both shapes cover the same rows");
template <bool kFp8, bool kPermutedF16 = false, int kThreads = kActThreads, int kRegs = kActRegs>
__global__ void __launch_bounds__(kThreads) quant_act_vec_kernel(const float* x, int64_t xs, int n, uint8_t* q,
                                                                 float* s, unsigned* nonfinite, int width) {
  static_assert(kFp8 || !kPermutedF16, "the permuted f16 codes are FP8's");
  pdl_launch_dependents();
  const int t = blockIdx.x;
  const float4* xr = reinterpret_cast<const float4*>(x + int64_t(t) * xs);
  float4 v[kRegs];
  float am = 0.0f;
#pragma unroll
  for (int r = 0; r < kRegs; ++r) {
    const int i = r * kThreads + int(threadIdx.x);
    v[r] = 4 * i < n ? __ldg(xr + i) : make_float4(0.f, 0.f, 0.f, 0.f);
  }
  bool nf = false;  // a value that is not finite (fmaxf drops NaNs, so the max alone cannot tell)
#pragma unroll
  for (int r = 0; r < kRegs; ++r) {
    am = fmaxf(am, absmax4(v[r]));
    nf = nf || !finite4(v[r]);
  }
  am = block_max<kThreads / 32>(nf ? INFINITY : am);  // (see row_scale)
  const bool bad = !(am <= FLT_MAX);
  const float sc = row_scale(am, kFp8 ? 448.0f : 127.0f, bad, nonfinite);
  if constexpr (kPermutedF16) {
    uint32_t* row = reinterpret_cast<uint32_t*>(q + int64_t(t) * width * 2);
#pragma unroll
    for (int r = 0; r < kRegs; ++r) {
      const int i = r * kThreads + int(threadIdx.x);
      if (4 * i >= width) break;
      store_codes4_permuted(row, i, act_codes4(v[r], sc, true));  // (past n: v is 0, so are its codes)
    }
  } else {
    uint32_t* qr = reinterpret_cast<uint32_t*>(q + int64_t(t) * n);
#pragma unroll
    for (int r = 0; r < kRegs; ++r) {
      const int i = r * kThreads + int(threadIdx.x);
      if (4 * i >= n) break;
      qr[i] = act_codes4(v[r], sc, kFp8);
    }
  }
  if (threadIdx.x == 0) s[t] = sc;
}
// quant_act_vec_kernel in the shape for T tokens (see above).
template <bool kFp8, bool kPermutedF16 = false>
void launch_quant_vec(const float* x, int64_t xs, int n, int T, uint8_t* q, float* s, unsigned* nonfinite, int width,
                      cudaStream_t st) {
  static const bool wide_for_prefill = [] {
    const char* e = std::getenv("QB_CUDA_QUANT_PREFILL_1024");
    return e && std::string(e) == "1";
  }();
  if (T > 16 && !wide_for_prefill)
    quant_act_vec_kernel<kFp8, kPermutedF16, kActThreadsPre, kActRegsPre>
        <<<T, kActThreadsPre, 0, st>>>(x, xs, n, q, s, nonfinite, width);
  else
    quant_act_vec_kernel<kFp8, kPermutedF16><<<T, kActThreads, 0, st>>>(x, xs, n, q, s, nonfinite, width);
}
// Whether quant_act_vec_kernel takes these rows.
bool act_rows_vectorizable(const float* x, int64_t xs, int n, const void* q) {
  return n % 4 == 0 && xs % 4 == 0 && n <= kActRegs * kActThreads * 4 && reinterpret_cast<uintptr_t>(x) % 16 == 0 &&
         reinterpret_cast<uintptr_t>(q) % 4 == 0;
}

// A warp per output row, 4 rows per block; kVec: 16 bytes of the row per lane per step (n_in % 16 == 0),
// kPieces of them loaded before any is used (one 16-byte load per lane at a time left the warp waiting
// on each load's latency), weights streamed past L1 (read once), activations through it (every row).
constexpr int kPieces = 4;

// Lane `lane`'s 16-byte pieces of a row of n_in bytes (n_in % 16 == 0) in row order, kPieces loads in
// flight before any is used: piece(bytes, offset of the piece in the row). Both gemv kernels stream so.
// The first loads go out before pdl_wait(), which piece() (reading the activations) must follow.
template <typename Piece>
__device__ __forceinline__ void stream_row_pieces(const void* row, int n_in, int lane, Piece&& piece) {
  const auto* r = static_cast<const uint8_t*>(row);
  int i = lane * 16;
  bool waited = false;
  for (; i + (kPieces - 1) * 512 < n_in; i += kPieces * 512) {
    uint4 w[kPieces];
#pragma unroll
    for (int u = 0; u < kPieces; ++u) w[u] = __ldcs(reinterpret_cast<const uint4*>(r + i + u * 512));
    if (!waited) pdl_wait();
    waited = true;
#pragma unroll
    for (int u = 0; u < kPieces; ++u) piece(w[u], i + u * 512);
  }
  for (; i < n_in; i += 512) {
    const uint4 w = __ldcs(reinterpret_cast<const uint4*>(r + i));
    if (!waited) pdl_wait();
    waited = true;
    piece(w, i);
  }
  if (!waited) pdl_wait();  // (a lane with no piece still reads the scales after this)
}

template <bool kVec>
__global__ void __launch_bounds__(128) w8a8_gemv_kernel(const int8_t* __restrict__ W, const float* __restrict__ sw,
                                                        int n_out, int n_in, const int8_t* xq,
                                                        const float* sx, int T, float* __restrict__ y) {
  pdl_launch_dependents();
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int row = blockIdx.x * 4 + warp;
  if (row >= n_out) return;
  const int8_t* wr = W + int64_t(row) * n_in;
  int acc[16];
#pragma unroll
  for (int t = 0; t < 16; ++t) acc[t] = 0;
  auto piece = [&](const uint4 w, int i) {  // signed bytes: the int overload of __dp4a
#pragma unroll
    for (int t = 0; t < 16; ++t) {
      if (t >= T) break;
      const int4 xv = *reinterpret_cast<const int4*>(xq + int64_t(t) * n_in + i);
      acc[t] = __dp4a(int(w.x), xv.x, acc[t]);
      acc[t] = __dp4a(int(w.y), xv.y, acc[t]);
      acc[t] = __dp4a(int(w.z), xv.z, acc[t]);
      acc[t] = __dp4a(int(w.w), xv.w, acc[t]);
    }
  };
  if constexpr (kVec) {
    stream_row_pieces(wr, n_in, lane, piece);
  } else {
    pdl_wait();
    for (int i = lane; i < n_in; i += 32) {
      const int w = wr[i];
#pragma unroll
      for (int t = 0; t < 16; ++t) {
        if (t >= T) break;
        acc[t] += w * int(xq[int64_t(t) * n_in + i]);
      }
    }
  }
#pragma unroll
  for (int t = 0; t < 16; ++t) {
    if (t >= T) break;
    int a = acc[t];
    for (int o = 16; o > 0; o >>= 1) a += __shfl_xor_sync(0xffffffffu, a, o);
    if (lane == 0) y[int64_t(t) * n_out + row] = scale_out(a, sx[t], sw[row]);
  }
}

// y[t][o] = scale_out(acc[t][o], s_x[t], s_w[o]) for T rows of n_out sums: the int32 sums of the cuBLAS
// INT8 path, or, in place (acc == y), the f32 sums of the FP8 tensor-core path.
template <typename Acc>
__global__ void scale_kernel(const Acc* acc, const float* sw, const float* sx, int n_out, int64_t total, float* y) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t t = i / n_out, o = i % n_out;
    y[i] = scale_out(acc[i], sx[t], sw[o]);
  }
}
template <typename Acc>
void launch_scale(const Acc* acc, const float* sw, const float* sx, int n_out, int T, float* y, cudaStream_t st) {
  const int64_t total = int64_t(T) * n_out;
  if (total <= 0) return;
  const int64_t b = (total + 255) / 256;
  scale_kernel<Acc><<<unsigned(b < 8192 ? b : 8192), 256, 0, st>>>(acc, sw, sx, n_out, total, y);
  QB_CUDA_LAUNCHED();
}

// Four e4m3 codes (one 32-bit word) -> their f32 values, exactly (every e4m3 value, subnormals
// included, is an f16 value; the code 0x7f / 0xff is NaN, as the CPU's table).
__device__ __forceinline__ void e4m3x4_to_f32(uint32_t word, float* v) {
  const __half2_raw lo = __nv_cvt_fp8x2_to_halfraw2(__nv_fp8x2_storage_t(word & 0xffffu), __NV_E4M3);
  const __half2_raw hi = __nv_cvt_fp8x2_to_halfraw2(__nv_fp8x2_storage_t(word >> 16), __NV_E4M3);
  const float2 a = __half22float2(__half2(lo)), b = __half22float2(__half2(hi));
  v[0] = a.x;
  v[1] = a.y;
  v[2] = b.x;
  v[3] = b.y;
}

// A warp per output row, as w8a8_gemv_kernel. kExact: the CPU's sum, exactly: each e4m3 x e4m3
// product is exact in f32 (4-bit significands), a multiple of 2^-18 below 2^18, so a sum of up to 2^17
// of them needs at most 53 bits and double adds it exactly in any order; then float(sum) * s_x * s_w.
// Otherwise the exact products are summed in f32, one rounding per add: the fast form's one-token
// kernel (double adds cost more), not the CPU's bits.
template <bool kVec, bool kExact>
__global__ void __launch_bounds__(128) w8a8_fp8_gemv_kernel(const uint8_t* __restrict__ W, const float* __restrict__ sw,
                                                            int n_out, int n_in, const uint8_t* xq,
                                                            const float* sx, int T, float* __restrict__ y) {
  pdl_launch_dependents();
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int row = blockIdx.x * 4 + warp;
  if (row >= n_out) return;
  const uint8_t* wr = W + int64_t(row) * n_in;
  using Acc = std::conditional_t<kExact, double, float>;
  // a + w x, where w x is exact in f32: exact in double; otherwise one f32 rounding, which one fused
  // multiply-add gives in one instruction (the same bits as the product then the add, since the product
  // itself is exact).
  auto add = [](Acc a, float w, float x) {
    if constexpr (kExact) return __dadd_rn(a, double(__fmul_rn(w, x)));
    else return __fmaf_rn(w, x, a);
  };
  Acc acc[16];
#pragma unroll
  for (int t = 0; t < 16; ++t) acc[t] = Acc(0);
  auto piece = [&](const uint4 wv, int i) {
    float w[16];
    e4m3x4_to_f32(wv.x, w);
    e4m3x4_to_f32(wv.y, w + 4);
    e4m3x4_to_f32(wv.z, w + 8);
    e4m3x4_to_f32(wv.w, w + 12);
#pragma unroll
    for (int t = 0; t < 16; ++t) {
      if (t >= T) break;
      const uint4 xv = *reinterpret_cast<const uint4*>(xq + int64_t(t) * n_in + i);
      float x[16];
      e4m3x4_to_f32(xv.x, x);
      e4m3x4_to_f32(xv.y, x + 4);
      e4m3x4_to_f32(xv.z, x + 8);
      e4m3x4_to_f32(xv.w, x + 12);
      Acc a = acc[t];
#pragma unroll
      for (int k = 0; k < 16; ++k) a = add(a, w[k], x[k]);
      acc[t] = a;
    }
  };
  if constexpr (kVec) {
    stream_row_pieces(wr, n_in, lane, piece);
  } else {
    pdl_wait();
    for (int i = lane; i < n_in; i += 32) {
      float w[4], x[4];
      e4m3x4_to_f32(wr[i], w);
#pragma unroll
      for (int t = 0; t < 16; ++t) {
        if (t >= T) break;
        e4m3x4_to_f32(xq[int64_t(t) * n_in + i], x);
        acc[t] = add(acc[t], w[0], x[0]);
      }
    }
  }
#pragma unroll
  for (int t = 0; t < 16; ++t) {
    if (t >= T) break;
    Acc a = acc[t];
    for (int o = 16; o > 0; o >>= 1) a += __shfl_xor_sync(0xffffffffu, a, o);
    const float sum = kExact ? __double2float_rn(a) : float(a);
    if (lane == 0) y[int64_t(t) * n_out + row] = scale_out(sum, sx[t], sw[row]);
  }
}

// FP8 for 2 or more tokens on the FP64 tensor cores (mma m8n8k4 .f64): every e4m3 value is exact in
// double, so are the products, and the partial sums stay exact (see w8a8_fp8_gemv_kernel), so the
// tensor cores give the CPU's sum bit for bit, where the CUDA-core kernel converts every activation
// again for every row. Block: 4 warps, a tile of kBm output rows x kBn tokens (prefill: 2 x 2 warps of
// 32 x 32; decode: see kSplitK below); the codes of kBk = 64
// inputs per row stream into kStages shared-memory stages by cp.async (16-byte pieces; rows past the
// matrix and tokens past T zero-filled, which is +0.0), and each warp converts its fragments to double
// as it loads them. Rows of a stage are kBk + 16 bytes apart, so the 8 rows a fragment load touches
// fall in distinct banks. Each block owns its outputs over the whole input: no atomics.
// Needs n_in % 16 == 0 and 16-byte aligned rows; the caller uses the CUDA-core kernel otherwise.
constexpr int kBk = 64, kRowBytes = kBk + 16, kStages = 4;

__device__ __forceinline__ double e4m3_to_f64(uint32_t code) {
  const __half_raw h = __nv_cvt_fp8_to_halfraw(__nv_fp8_storage_t(code), __NV_E4M3);
  return double(__half2float(__half(h)));
}

__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, bool valid) {
  const unsigned dst = unsigned(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(gmem), "r"(valid ? 16 : 0));
}

// Issues one stage: rows [row0, row0 + n_tile) of src (n_rows x n_in codes), inputs [k0, k0 + kBk).
__device__ __forceinline__ void stage_codes(const uint8_t* __restrict__ src, int n_rows, int n_in, int row0, int k0,
                                            int n_tile, uint8_t* dst) {
  for (int c = threadIdx.x; c < n_tile * (kBk / 16); c += blockDim.x) {
    const int r = c / (kBk / 16), k = k0 + (c % (kBk / 16)) * 16, row = row0 + r;
    const bool valid = row < n_rows && k < n_in;
    cp_async16(dst + r * kRowBytes + (k - k0), valid ? src + int64_t(row) * n_in + k : src, valid);
  }
}

// kSplitK (the decode tiles, kBn <= 16): every warp computes the whole kBm x kBn tile over its quarter
// of each stage's inputs, and the four partial sums are added in shared memory at the end (exact in
// double, so the order does not matter). A warp then converts kBm / 8 + kBn / 8 codes per
// (kBm / 8) x (kBn / 8) products, where splitting the rows over the warps left 8-row warp tiles that
// converted two codes per product; the grid keeps one block per 32 rows (4096 rows: 128 blocks).
template <int kBm, int kBn>
__global__ void __launch_bounds__(128) w8a8_fp8_dmma_kernel(const uint8_t* __restrict__ W, const float* __restrict__ sw,
                                                            int n_out, int n_in, const uint8_t* __restrict__ xq,
                                                            const float* __restrict__ sx, int T, float* __restrict__ y) {
  constexpr bool kSplitK = kBn <= 16;
  constexpr int kWarpsN = kSplitK ? 1 : 2, kWarpsM = kSplitK ? 1 : 2;
  constexpr int kWm = kBm / kWarpsM, kWn = kBn / kWarpsN;  // warp tile
  constexpr int kTm = kWm / 8, kTn = kWn / 8;              // m8n8 tiles per warp
  constexpr int kWarpK = kSplitK ? kBk / 4 : kBk;          // inputs per warp per stage
  static_assert(kTm >= 1 && kTn >= 1, "tile too small");
  // The stages: kStages x kBm rows of weight codes, then kStages x kBn rows of activation codes.
  __shared__ __align__(16) uint8_t smem[kStages * (kBm + kBn) * kRowBytes];
  auto As = [&](int st) { return smem + st * kBm * kRowBytes; };
  auto Bs = [&](int st) { return smem + (kStages * kBm + st * kBn) * kRowBytes; };
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int wm = kSplitK ? 0 : (warp / kWarpsN) * kWm, wn = kSplitK ? 0 : (warp % kWarpsN) * kWn;
  const int wk = kSplitK ? warp * kWarpK : 0;
  const int row0 = blockIdx.x * kBm, tok0 = blockIdx.y * kBn;
  const int n_steps = (n_in + kBk - 1) / kBk;
  double acc[kTm][kTn][2];
#pragma unroll
  for (int i = 0; i < kTm; ++i)
#pragma unroll
    for (int j = 0; j < kTn; ++j) acc[i][j][0] = acc[i][j][1] = 0.0;
#pragma unroll
  for (int st = 0; st < kStages - 1; ++st) {
    if (st < n_steps) {
      stage_codes(W, n_out, n_in, row0, st * kBk, kBm, As(st));
      stage_codes(xq, T, n_in, tok0, st * kBk, kBn, Bs(st));
    }
    asm volatile("cp.async.commit_group;\n" ::);
  }
  for (int step = 0; step < n_steps; ++step) {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(kStages - 2));
    __syncthreads();  // stage `step` landed for every thread; stage `step - 1` is free for reuse
    const int next = step + kStages - 1;
    if (next < n_steps) {
      stage_codes(W, n_out, n_in, row0, next * kBk, kBm, As(next % kStages));
      stage_codes(xq, T, n_in, tok0, next * kBk, kBn, Bs(next % kStages));
    }
    asm volatile("cp.async.commit_group;\n" ::);
    const uint8_t* a_s = As(step % kStages) + wk;
    const uint8_t* b_s = Bs(step % kStages) + wk;
#pragma unroll 4
    for (int kk = 0; kk < kWarpK; kk += 4) {
      double a[kTm], b[kTn];
#pragma unroll
      for (int i = 0; i < kTm; ++i) a[i] = e4m3_to_f64(a_s[(wm + 8 * i + (lane >> 2)) * kRowBytes + kk + (lane & 3)]);
#pragma unroll
      for (int j = 0; j < kTn; ++j) b[j] = e4m3_to_f64(b_s[(wn + 8 * j + (lane >> 2)) * kRowBytes + kk + (lane & 3)]);
#pragma unroll
      for (int i = 0; i < kTm; ++i)
#pragma unroll
        for (int j = 0; j < kTn; ++j)
          asm volatile("mma.sync.aligned.m8n8k4.row.col.f64.f64.f64.f64 {%0, %1}, {%2}, {%3}, {%0, %1};\n"
                       : "+d"(acc[i][j][0]), "+d"(acc[i][j][1])
                       : "d"(a[i]), "d"(b[j]));
    }
  }
  asm volatile("cp.async.wait_group 0;\n" ::);
  if constexpr (kSplitK) {  // warps 1-3 hand their partial sums to warp 0 (the stage buffers are free now)
    __syncthreads();
    static_assert(sizeof(smem) >= 3 * 32 * kTm * kTn * 2 * sizeof(double), "reduction buffer");
    double* red = reinterpret_cast<double*>(smem);
    if (warp > 0) {
#pragma unroll
      for (int i = 0; i < kTm; ++i)
#pragma unroll
        for (int j = 0; j < kTn; ++j)
#pragma unroll
          for (int h = 0; h < 2; ++h) red[(((warp - 1) * kTm * kTn + i * kTn + j) * 2 + h) * 32 + lane] = acc[i][j][h];
    }
    __syncthreads();
    if (warp > 0) return;
#pragma unroll
    for (int w = 0; w < 3; ++w)
#pragma unroll
      for (int i = 0; i < kTm; ++i)
#pragma unroll
        for (int j = 0; j < kTn; ++j)
#pragma unroll
          for (int h = 0; h < 2; ++h) acc[i][j][h] += red[((w * kTm * kTn + i * kTn + j) * 2 + h) * 32 + lane];
  }
  // Accumulator (i, j): row wm + 8 i + lane / 4, tokens wn + 8 j + 2 (lane % 4) + {0, 1}.
#pragma unroll
  for (int i = 0; i < kTm; ++i)
#pragma unroll
    for (int j = 0; j < kTn; ++j)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int row = row0 + wm + 8 * i + (lane >> 2), t = tok0 + wn + 8 * j + 2 * (lane & 3) + h;
        if (row < n_out && t < T)
          y[int64_t(t) * n_out + row] = __fmul_rn(__fmul_rn(__double2float_rn(acc[i][j][h]), sx[t]), sw[row]);
      }
}

template <int kBm, int kBn>
void launch_fp8_dmma(const uint8_t* W, const float* sw, int n_out, int n_in, const uint8_t* xq, const float* sx, int T,
                     float* y, cudaStream_t st) {
  const dim3 grid(unsigned((n_out + kBm - 1) / kBm), unsigned((T + kBn - 1) / kBn));
  w8a8_fp8_dmma_kernel<kBm, kBn><<<grid, 128, 0, st>>>(W, sw, n_out, n_in, xq, sx, T, y);
  QB_CUDA_LAUNCHED();
}

}  // namespace

int w8a8_fp8_dmma_min_tokens() { return dmma_min_tokens(); }

void quantize_act_fp8(const float* x, int64_t x_stride, int n, int T, uint8_t* q, float* s, cudaStream_t st,
                      unsigned* nonfinite) {
  if (T <= 0) return;
  if (act_rows_vectorizable(x, x_stride, n, q))
    launch_quant_vec<true>(x, x_stride, n, T, q, s, nonfinite, n, st);
  else quant_act_kernel<true><<<T, 256, 0, st>>>(x, x_stride, n, q, s, nonfinite);
  QB_CUDA_LAUNCHED();
}

bool quantize_act_fp8_permuted(const float* x, int64_t x_stride, int n, int T, uint16_t* x16, float* s,
                               cudaStream_t st, unsigned* nonfinite) {
  const int width = fp8_prefill_row_width(n);
  if (n % 16 != 0 || width > kActRegs * kActThreads * 4 || !act_rows_vectorizable(x, x_stride, n, x16) ||
      reinterpret_cast<uintptr_t>(x16) % 16 != 0)
    return false;
  if (T <= 0) return true;
  launch_quant_vec<true, true>(x, x_stride, n, T, reinterpret_cast<uint8_t*>(x16), s, nonfinite, width, st);
  QB_CUDA_LAUNCHED();
  return true;
}

void w8a8_fp8_gemm(const uint8_t* W, const float* sw, int n_out, int n_in, const uint8_t* xq, const float* sx, int T,
                   float* y, cudaStream_t st) {
  if (n_in > (1 << 17)) throw std::runtime_error("w8a8_fp8_gemm: n_in above the exact-sum bound 2^17");
  if (T <= 0) return;
  const bool aligned =
      n_in % 16 == 0 && reinterpret_cast<uintptr_t>(W) % 16 == 0 && reinterpret_cast<uintptr_t>(xq) % 16 == 0;
  if (aligned && T >= dmma_min_tokens()) {
    if (T <= 8) launch_fp8_dmma<32, 8>(W, sw, n_out, n_in, xq, sx, T, y, st);
    else if (T <= 16) launch_fp8_dmma<32, 16>(W, sw, n_out, n_in, xq, sx, T, y, st);
    else launch_fp8_dmma<64, 64>(W, sw, n_out, n_in, xq, sx, T, y, st);
    return;
  }
  const unsigned grid = unsigned((n_out + 3) / 4);
  for (int t0 = 0; t0 < T; t0 += 16) {
    const int nt = T - t0 < 16 ? T - t0 : 16;
    const uint8_t* xc = xq + int64_t(t0) * n_in;
    float* yc = y + int64_t(t0) * n_out;
    if (n_in % 16 == 0) w8a8_fp8_gemv_kernel<true, true><<<grid, 128, 0, st>>>(W, sw, n_out, n_in, xc, sx + t0, nt, yc);
    else w8a8_fp8_gemv_kernel<false, true><<<grid, 128, 0, st>>>(W, sw, n_out, n_in, xc, sx + t0, nt, yc);
    QB_CUDA_LAUNCHED();
  }
}

void w8a8_fp8_gemv_f32(const uint8_t* W, const float* sw, int n_out, int n_in, const uint8_t* xq, const float* sx,
                       int T, float* y, cudaStream_t st, bool early) {
  if (T <= 0) return;
  if (T > 16) throw std::runtime_error("w8a8_fp8_gemv_f32: more than 16 tokens");
  const dim3 grid(unsigned((n_out + 3) / 4));
  const bool vec =
      n_in % 16 == 0 && reinterpret_cast<uintptr_t>(W) % 16 == 0 && reinterpret_cast<uintptr_t>(xq) % 16 == 0;
  launch_kernel(vec ? w8a8_fp8_gemv_kernel<true, false> : w8a8_fp8_gemv_kernel<false, false>, grid, dim3(128), 0, st,
                early, W, sw, n_out, n_in, xq, sx, T, y);
}

void w8a8_scale_rows(float* y, const float* sx, const float* sw, int n_out, int T, cudaStream_t st) {
  launch_scale<float>(y, sw, sx, n_out, T, y, st);
}

void quantize_act_int8(const float* x, int64_t x_stride, int n, int T, int8_t* q, float* s, cudaStream_t st,
                       unsigned* nonfinite) {
  if (T <= 0) return;
  auto* codes = reinterpret_cast<uint8_t*>(q);  // (int8 codes as their bytes)
  if (act_rows_vectorizable(x, x_stride, n, q))
    launch_quant_vec<false>(x, x_stride, n, T, codes, s, nonfinite, n, st);
  else quant_act_kernel<false><<<T, 256, 0, st>>>(x, x_stride, n, codes, s, nonfinite);
  QB_CUDA_LAUNCHED();
}

void w8a8_gemv(const int8_t* W, const float* sw, int n_out, int n_in, const int8_t* xq, const float* sx, int T,
               float* y, cudaStream_t st, bool early) {
  if (T <= 0) return;
  if (T > 16) throw std::runtime_error("w8a8_gemv: more than 16 tokens");
  const dim3 grid(unsigned((n_out + 3) / 4));
  launch_kernel(n_in % 16 == 0 ? w8a8_gemv_kernel<true> : w8a8_gemv_kernel<false>, grid, dim3(128), 0, st, early, W,
                sw, n_out, n_in, xq, sx, T, y);
}

bool w8a8_gemm(void* cublas_handle, const int8_t* W, const float* sw, int n_out, int n_in, const int8_t* xq,
               const float* sx, int T, int32_t* acc, float* y, cudaStream_t st) {
  if (T <= 0) return true;
  if (n_in % 4 == 0 && n_out % 4 == 0) {
    auto h = static_cast<cublasHandle_t>(cublas_handle);
    const int32_t one = 1, zero = 0;
    // Column-major: acc (n_out x T, ld n_out) = W^T-view (n_in x n_out, ld n_in)^T * xq-view (n_in x T, ld n_in).
    const cublasStatus_t s = cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, n_out, T, n_in, &one, W, CUDA_R_8I, n_in, xq,
                                          CUDA_R_8I, n_in, &zero, acc, CUDA_R_32I, n_out, CUBLAS_COMPUTE_32I,
                                          CUBLAS_GEMM_DEFAULT);
    if (s == CUBLAS_STATUS_SUCCESS) {
      launch_scale<int32_t>(acc, sw, sx, n_out, T, y, st);
      return true;
    }
    (void)cudaGetLastError();
  }
  for (int t0 = 0; t0 < T; t0 += 16) {
    const int nt = T - t0 < 16 ? T - t0 : 16;
    w8a8_gemv(W, sw, n_out, n_in, xq + int64_t(t0) * n_in, sx + t0, nt, y + int64_t(t0) * n_out, st);
  }
  return false;
}

}  // namespace qb::runtime::cuda
