// INT8 W8A8 on the GPU, the CPU's runtime/cpu/matmul_w8a8.h computed exactly: activations quantized per
// token at run time (s_x = absmax / 127, q = round-half-even(x / s_x) clamped to [-127, 127]), weights
// int8 symmetric per output channel (f32 scale), int8 x int8 products summed in int32 (exact), then
// y = float(acc) * s_x * s_w in f32, left to right. Every step is exact or one IEEE f32 operation in a
// fixed order, so GPU and CPU results are bit-identical for the same f32 input rows.
// Decode (<= 16 tokens): one warp per output row streams the row once for all tokens with 16-byte loads
// and dp4a. Prefill: a cuBLAS int8 GEMM (int32 out) then the scaling kernel; where cuBLAS refuses the
// shape, the decode kernel in chunks of 16 tokens. Plain pointer interface (compiles under nvcc).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace qb::runtime::cuda {

// q[t][i], s[t] for T rows of n f32 values (x row t at x + t * x_stride).
void quantize_act_int8(const float* x, int64_t x_stride, int n, int T, int8_t* q, float* s, cudaStream_t st);

// y[t][o] (f32, row stride n_out) = W8A8 product of int8 rows W [n_out][n_in] (scales sw[n_out]) with
// xq [T][n_in] (scales sx[T]); T <= 16.
void w8a8_gemv(const int8_t* W, const float* sw, int n_out, int n_in, const int8_t* xq, const float* sx, int T,
               float* y, cudaStream_t st);

// Any T: cuBLAS int8 GEMM into acc (T * n_out int32 scratch) and the scaling kernel, or w8a8_gemv in
// chunks of 16 tokens when cuBLAS refuses the shape. Returns true when cuBLAS ran.
bool w8a8_gemm(void* cublas_handle, const int8_t* W, const float* sw, int n_out, int n_in, const int8_t* xq,
               const float* sx, int T, int32_t* acc, float* y, cudaStream_t st);

}  // namespace qb::runtime::cuda
