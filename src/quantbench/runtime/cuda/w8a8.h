// INT8 W8A8 on the GPU, the CPU's runtime/cpu/matmul_w8a8.h computed exactly: activations quantized per
// token at run time (s_x = absmax / 127, q = round-half-even(x / s_x) clamped to [-127, 127]), weights
// int8 symmetric per output channel (f32 scale), int8 x int8 products summed in int32 (exact), then
// y = float(acc) * s_x * s_w in f32, left to right. Every step is exact or one IEEE f32 operation in a
// fixed order, so GPU and CPU results are bit-identical for the same f32 input rows.
// w8a8_gemv: one warp per output row streams the row once for all tokens (<= 16) with 16-byte loads and
// dp4a. w8a8_gemm: a cuBLAS int8 GEMM (int32 out) then the scaling kernel; where cuBLAS refuses the
// shape, the gemv kernel in chunks of 16 tokens. The backend picks by token count.
// FP8 W8A8 (e4m3 weights per channel / tensor, e4m3 activations per token, s_x = absmax / 448, codes
// round-to-nearest-even saturating): the CPU sums the exact e4m3 products exactly (in double), and so
// does this: each product is exact in f32, a multiple of 2^-18 below 2^18, so up to 2^17 of them sum
// exactly in double in any order (n_in <= 2^17), then float(sum) * s_x * s_w: the CPU's result bit for
// bit. Not the FP8 tensor cores (their accumulation is not exact): one token runs on the CUDA cores,
// more on the FP64 tensor cores, whose double sums are exact too. That is FP8's exact form; the
// backend's default is the fast form (the exact products summed in f32: w8a8_fp8_mma, w8a8_fp8_prefill,
// w8a8_fp8_gemv_f32 below), and it can run the FP8 tensor cores instead (w8a8_fp8_tc.h). Plain pointer
// interface (compiles under nvcc).
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace qb::runtime::cuda {

// q[t][i], s[t] for T rows of n f32 values (x row t at x + t * x_stride). A row holding a NaN or an
// infinity, which the CPU's quantizer refuses, gets the scale NaN (so the product's outputs are NaN) and
// sets *nonfinite to 1 where given (a device-visible word; the backend refuses the step on it).
void quantize_act_int8(const float* x, int64_t x_stride, int n, int T, int8_t* q, float* s, cudaStream_t st,
                       unsigned* nonfinite = nullptr);

// y[t][o] (f32, row stride n_out) = W8A8 product of int8 rows W [n_out][n_in] (scales sw[n_out]) with
// xq [T][n_in] (scales sx[T]); T <= 16.
// early: launched with programmatic dependent launch (launch.cuh): its first weight loads overlap the
// kernel before it (the quantizer), whose output it waits for before reading the codes.
void w8a8_gemv(const int8_t* W, const float* sw, int n_out, int n_in, const int8_t* xq, const float* sx, int T,
               float* y, cudaStream_t st, bool early = false);

// FP8: q[t][i] (e4m3 codes), s[t]; non-finite rows as quantize_act_int8.
void quantize_act_fp8(const float* x, int64_t x_stride, int n, int T, uint8_t* q, float* s, cudaStream_t st,
                      unsigned* nonfinite = nullptr);
// FP8: y as w8a8_gemv, weights W [n_out][n_in] e4m3 codes; any T. From w8a8_fp8_dmma_min_tokens() tokens
// on (2; QB_CUDA_FP8_DMMA_MIN overrides it) with n_in % 16 == 0, on the FP64 tensor cores (the same bits).
int w8a8_fp8_dmma_min_tokens();
void w8a8_fp8_gemm(const uint8_t* W, const float* sw, int n_out, int n_in, const uint8_t* xq, const float* sx, int T,
                   float* y, cudaStream_t st);

// FP8, the fast form's CUDA-core decode kernel (the backend's default one-token kernel in session 27;
// since session 28 only for the shapes w8a8_fp8_mma below refuses): the same codes and scales, the
// exact e4m3 products summed in f32 on the CUDA cores (one fused multiply-add each: the product is
// exact, so one rounding per add), then float(sum) * s_x * s_w as above. Not the CPU's bits: the sums
// differ from the exact ones by f32 rounding (2^-24 relative per add). T <= 16, any n_in.
void w8a8_fp8_gemv_f32(const uint8_t* W, const float* sw, int n_out, int n_in, const uint8_t* xq, const float* sx,
                       int T, float* y, cudaStream_t st, bool early = false);  // early: as w8a8_gemv
// FP8, the fast form's decode product since session 28 (w8a8_mma.cu): the same codes and scales, the
// exact products summed by the f16 tensor cores (mma.sync, f32 accumulation) from the same row-major
// weights, then (float(sum) * s_x) * s_w. Not the CPU's bits: the tensor cores' f32 accumulation rounds.
// Takes n_in % 16 == 0 with W and xq 16-byte aligned (w8a8_mma_fits), and returns false, writing
// nothing, otherwise (the caller then runs w8a8_fp8_gemv_f32). T <= 16. early: as w8a8_gemv.
bool w8a8_mma_fits(int n_in, const void* W, const void* xq);
// The token count from which w8a8_fp8_mma and w8a8_int8_mma run their loop as a ping-pong (the next step's loads
// before this step's mmas; w8a8_mma.cu): 2 by default, 1 with QB_CUDA_W8A8_PIPE=1, 17 (never) with =0. For the
// manifest: FP8's f32 partial sums are added in another order by the two loops (INT8's integer sums are not changed).
int w8a8_mma_pipe_min_tokens();
bool w8a8_fp8_mma(const uint8_t* W, const float* sw, int n_out, int n_in, const uint8_t* xq, const float* sx, int T,
                  float* y, cudaStream_t st, bool early = false);
// INT8, the backend's 2-16-token product since session 29 (w8a8_mma.cu): as w8a8_gemv, on the int8 tensor
// cores (int32 sums, exact: the CPU's bits). The same shapes as w8a8_fp8_mma, returning false otherwise
// (the caller then runs w8a8_gemv). T <= 16.
bool w8a8_int8_mma(const int8_t* W, const float* sw, int n_out, int n_in, const int8_t* xq, const float* sx, int T,
                   float* y, cudaStream_t st, bool early = false);
// FP8, the fast form's prefill product (17 tokens or more; w8a8_fp8_prefill.cu): the same codes and
// scales, the exact products summed by the f16 tensor cores (wgmma, f32 accumulation) from the same
// row-major weights, then (float(sum) * s_x) * s_w, as w8a8_fp8_mma. Not the CPU's bits (the f32
// accumulation rounds), and not the FP8 tensor cores' 14-bit partial sums. Takes n_in % 16 == 0 with W
// 16-byte aligned (w8a8_fp8_prefill_fits); returns false, launching nothing, otherwise or where xq or x16
// is not 16-byte aligned. x16: scratch of w8a8_fp8_prefill_scratch_bytes(n_in, T) bytes (the codes as f16
// in the kernel's k order, rows n_in rounded up to 64 wide). Any T >= 1 (throws std::invalid_argument for
// T < 1 or n_out < 1).
bool w8a8_fp8_prefill_fits(int n_in, const void* W);
size_t w8a8_fp8_prefill_scratch_bytes(int n_in, int T);
bool w8a8_fp8_prefill(const uint8_t* W, const float* sw, int n_out, int n_in, const uint8_t* xq, const float* sx,
                      int T, uint16_t* x16, float* y, cudaStream_t st);
// The same, from x16 already in the kernel's layout (quantize_act_fp8_permuted): no permutation pass.
bool w8a8_fp8_prefill_f16(const uint8_t* W, const float* sw, int n_out, int n_in, const uint16_t* x16,
                          const float* sx, int T, float* y, cudaStream_t st);
// quantize_act_fp8's codes and scales, the codes written straight into w8a8_fp8_prefill's x16 layout (f16,
// rows n rounded up to 64 wide, zeros past n): the same bits as quantize_act_fp8 then the permutation.
// Takes n % 16 == 0 up to 16384 with 16-byte aligned rows and x16; returns false, launching nothing,
// otherwise (the caller then quantizes to codes and lets w8a8_fp8_prefill permute them).
bool quantize_act_fp8_permuted(const float* x, int64_t x_stride, int n, int T, uint16_t* x16, float* s,
                               cudaStream_t st, unsigned* nonfinite = nullptr);
// In place, y[t][o] = (y[t][o] * sx[t]) * sw[o] for T rows of n_out (the tensor-core path's scaling).
void w8a8_scale_rows(float* y, const float* sx, const float* sw, int n_out, int T, cudaStream_t st);

// Any T: cuBLAS int8 GEMM into acc (T * n_out int32 scratch) and the scaling kernel, or w8a8_gemv in
// chunks of 16 tokens when cuBLAS refuses the shape. Returns true when cuBLAS ran.
bool w8a8_gemm(void* cublas_handle, const int8_t* W, const float* sw, int n_out, int n_in, const int8_t* xq,
               const float* sx, int T, int32_t* acc, float* y, cudaStream_t st);

}  // namespace qb::runtime::cuda
