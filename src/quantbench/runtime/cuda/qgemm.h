// Prefill matrix products on packed weights without a dequantized copy: y = x W^T for T > 16 tokens,
// W in qgemv.h's packed layout (W4A16 with groups of 32 or 128, symmetric or asymmetric; W8A16 with one
// scale per row or per group of 32 or 16; either with mins per group of 32, W8A16 also of 16), x as f16 rows. Hopper only (sm_90a): warpgroup MMA (wgmma
// m64nNk16, f32 accumulation) with the weights as the A operand in registers: each warp takes its
// 16-row block's packed vectors (already in the A fragment order), forms (q - z) * s in f16 there and
// feeds them to the tensor cores; x tiles arrive by TMA in 128-byte-swizzled shared memory, four stages
// deep, as the B operand.
//
// Numerics: every weight is (q - z) * s rounded once to f16, bit for bit the value dequantize_packed
// writes for the cuBLAS path it replaces; products of f16 values are exact in f32 and the sums are f32,
// so the result differs from that path only in the order of the f32 additions. With mins (w4g32m, w8g32m, w8g16m)
// each weight is q * s + m rounded once to f16 (one fused multiply-add, as qgemv forms it); the cuBLAS
// path's dequantize_packed rounds that sum to f32 first, which can differ by one f16 ulp where the f32
// sum was inexact.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "quantbench/runtime/cuda/qgemv.h"

namespace qb::runtime::cuda {

// True where qgemm can run this matrix: those formats, with n_in a multiple of 8 (16-byte rows of x, as
// TMA needs).
bool qgemm_supports(const PackedShape& shape);

// Launch: tokens per tile (64 or 128; 0 = chosen by qgemm_config).
struct QgemmConfig {
  int tokens = 0;
};
QgemmConfig qgemm_config(const PackedShape& shape, int T, int sm_count);

// y[T][n_out] (f32) = x[T][n_in] (f16 rows, row stride n_in, 16-byte aligned) times W^T, token t's
// outputs at y + t * ldy (0: n_out; larger: several products fill one output's rows, the parts of a
// split q|k|v stack); returns the launch that ran. Throws std::invalid_argument where qgemm_supports is
// false, T < 1, ldy < n_out or the tile is not one offered.
QgemmConfig qgemm(const DeviceMatrix& w, const uint16_t* x, int T, float* y, cudaStream_t stream,
                  QgemmConfig config = {}, int64_t ldy = 0);

}  // namespace qb::runtime::cuda
