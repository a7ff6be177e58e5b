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

// The decode form (1-16 tokens, the batched decode step): the same kernel with 16-token tiles (wgmma
// m64n16k16), a deeper pipeline, and the input dimension split among `splits` blocks per 128-row tile so
// that the few tiles of a small product still fill the GPU. Split sums are added in split order by the
// last block of each tile (deterministic: the same bits every launch). Packed w4g128 (either kind) and w8
// with one scale per row. Numerics as qgemm's above.
bool qgemm_decode_supports(const PackedShape& shape);
struct QgemmDecodeConfig {
  int splits = 0;  // blocks per row tile along the input dimension (0: chosen)
  int stages = 0;  // pipeline stages, 4 or 8 (0: chosen)
  int ksets = 0;   // accumulator sets, 1 or 4 (0: chosen; wgmma_k_loop)
  int tokens = 0;  // the tile: 8 (T <= 8) or 16 tokens (0: the smallest that holds T)
};
QgemmDecodeConfig qgemm_decode_config(const PackedShape& shape, int sm_count);
// Split-K's scratch: `partial` (qgemm_decode_partial_floats for the splits that run) and one counter
// per row tile (qgemm_decode_counters), zeroed once when allocated; each launch leaves them zero again.
struct QgemmWorkspace {
  float* partial = nullptr;
  size_t partial_floats = 0;
  unsigned* counters = nullptr;
  size_t n_counters = 0;
};
size_t qgemm_decode_partial_floats(const PackedShape& shape, int splits);
size_t qgemm_decode_counters(const PackedShape& shape);
// y[T][n_out] (token t at y + t * ldy; 0: n_out) = x W^T, x[T][n_in] f16 rows (16-byte aligned), T 1-16.
// `early`: launched with programmatic dependent launch (the kernel issues its first weight copies, then
// waits for the kernel before it). Returns the launch that ran (splits as run: every split has inputs).
// Throws std::invalid_argument for an unsupported format, T, ldy, stages, or a workspace too small.
QgemmDecodeConfig qgemm_decode(const DeviceMatrix& w, const uint16_t* x, int T, float* y, cudaStream_t stream,
                               const QgemmWorkspace& ws, QgemmDecodeConfig config = {}, int64_t ldy = 0,
                               bool early = false);

}  // namespace qb::runtime::cuda
