// The CPU's W8A8 arithmetic (runtime/cpu/matmul_w8a8.h) on the GPU, one definition for every kernel that
// does it, so they give the same bits: the per-token activation codes as quantize_row_int8 /
// quantize_row_fp8 form them (the quantizers in w8a8.cu, the norm and gated-activation kernels that quantize
// their own output in norm_kernels.cu and activation_kernels.cu), and the scaling of a product's sum (the gemv
// kernels in w8a8.cu, w8a8_mma.cu).
#pragma once
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <cfloat>
#include <cstdint>

namespace qb::runtime::cuda {

// x / s, then round-half-even clamped to [-127, 127], or e4m3 round-to-nearest-even saturating (NaN ->
// 0x7f); a scale that is not positive (an all-zero row, or NaN) gives code 0.
__device__ __forceinline__ uint8_t act_code_int8(float x, float sc) {
  const float v = sc > 0.0f ? rintf(x / sc) : 0.0f;
  return uint8_t(int8_t(fminf(fmaxf(v, -127.0f), 127.0f)));
}
__device__ __forceinline__ uint8_t act_code_fp8(float x, float sc) {
  if (!(sc > 0.0f)) return 0;
  const float v = x / sc;
  return v != v ? uint8_t(0x7f) : uint8_t(__nv_cvt_float_to_fp8(v, __NV_SATFINITE, __NV_E4M3));
}

// A row's scale from its absmax (qmax: 127 for int8, 448 for e4m3). A row that is not finite, which the
// CPU's quantizer refuses (matmul_w8a8.cpp): its scale becomes NaN, so every output of the product is
// NaN (as any other product passes a NaN on), and *nonfinite (a mapped host word the backend reads after
// the step, when given) is set, so the backend refuses the step in the CPU's words instead of returning
// numbers. Kernels tell `bad` through their absmax reduction: a thread that saw NaN or infinity offers
// infinity, so bad = !(absmax <= FLT_MAX), with no barrier of its own.
__device__ __forceinline__ float row_scale(float absmax, float qmax, bool bad, unsigned* nonfinite) {
  if (!bad) return absmax / qmax;
  if (nonfinite && threadIdx.x == 0) *reinterpret_cast<volatile unsigned*>(nonfinite) = 1u;
  return __int_as_float(0x7fc00000);
}

__device__ __forceinline__ bool finite_value(float x) { return fabsf(x) <= FLT_MAX; }

// Four consecutive values of a row (the register kernels' float4 steps): their largest magnitude, whether
// all are finite, and their codes packed in one word (the first value in the low byte).
__device__ __forceinline__ float absmax4(float4 v) {
  return fmaxf(fmaxf(fabsf(v.x), fabsf(v.y)), fmaxf(fabsf(v.z), fabsf(v.w)));
}
__device__ __forceinline__ bool finite4(float4 v) {
  return finite_value(v.x) && finite_value(v.y) && finite_value(v.z) && finite_value(v.w);
}
__device__ __forceinline__ uint32_t act_codes4(float4 v, float sc, bool fp8) {
  auto code = [&](float e) { return uint32_t(fp8 ? act_code_fp8(e, sc) : act_code_int8(e, sc)); };
  return code(v.x) | code(v.y) << 8 | code(v.z) << 16 | code(v.w) << 24;
}

// Two e4m3 codes (the low byte first) as two f16 (the low half first): exact, every e4m3 value is a normal
// f16 value. The f16 tensor-core kernels (w8a8_mma.cu, w8a8_fp8_prefill.cu) feed these to the MMAs.
__device__ __forceinline__ uint32_t e4m3x2_to_f16x2(uint32_t two_codes) {
  const __half2_raw h = __nv_cvt_fp8x2_to_halfraw2(__nv_fp8x2_storage_t(two_codes & 0xffffu), __NV_E4M3);
  return uint32_t(h.x) | (uint32_t(h.y) << 16);
}

// FP8's prefill kernel reads a token's codes as f16 in its fragments' k order (w8a8_fp8_prefill.cu): the
// four codes of inputs 4 i .. 4 i + 3 (i = 16 c + 4 t + s: chunk c, 16-byte piece t, 4-byte word s) go to
// two f16 pairs of the permuted row, at pair indices (64 c + 16 s + 2 t) / 2 and (64 c + 16 s + 8 + 2 t) / 2.
// Writes them into the row (as 32-bit words). A row is fp8_prefill_row_width(n) f16 wide (zeros past n).
__host__ __device__ constexpr int fp8_prefill_row_width(int n) { return (n + 63) / 64 * 64; }  // whole chunks
__device__ __forceinline__ void store_codes4_permuted(uint32_t* row, int i, uint32_t codes4) {
  const int c = i >> 4, t = (i >> 2) & 3, s = i & 3;
  row[32 * c + 8 * s + t] = e4m3x2_to_f16x2(codes4);            // inputs 4i, 4i + 1
  row[32 * c + 8 * s + 4 + t] = e4m3x2_to_f16x2(codes4 >> 16);  // inputs 4i + 2, 4i + 3
}

// (float(sum) * s_x) * s_w, in that order: the CPU's scaling of an int32 (INT8) or f32 (FP8) sum (an int32
// converted to nearest, as the CPU converts it).
template <typename Acc>
__device__ __forceinline__ float scale_out(Acc sum, float sx, float sw) {
  return __fmul_rn(__fmul_rn(float(sum), sx), sw);
}

}  // namespace qb::runtime::cuda
