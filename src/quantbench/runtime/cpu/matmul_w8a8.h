// W8A8 matrix products: 8-bit weights (int8 symmetric per output channel, or FP8 E4M3 per channel /
// per tensor) times activations quantized per token at run time, as a W8A8 GPU GEMM does it:
//   int8: s_x = absmax(x_t)/127, q_x = rne(x_t / s_x) in [-127, 127]; acc = sum q_w * q_x in int32
//         (exact); y = float(acc) * s_x * s_w (f32, left to right)
//   fp8:  s_x = absmax(x_t)/448, q_x = e4m3(x_t / s_x) round-to-nearest-even, saturating; the e4m3
//         products are exact in f32 and are summed exactly (in double: every product is a multiple of
//         2^-18 below 2^18, so sums of up to 2^17 terms fit 53 bits); y = float(acc) * s_x * s_w.
// A device kernel accumulating fp8 products in f32 differs from this only by its sum's rounding.
// Design choice: one exact definition serves both CpuMode paths (it IS the reference of a W8A8
// kernel); weight codes are read in place from the QuantizedTensor, never copied.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "quantbench/core/thread_pool.h"
#include "quantbench/runtime/cpu/matmul.h"

namespace qb::runtime::cpu {

std::string_view act_quant_name(ActQuant a);  // "none", "int8", "fp8"
// Parses act_quant_name's text; nullopt-like failure as qb::Error quoting `where`.
ActQuant parse_act_quant(std::string_view text, std::string_view where);
// One line for the Manifest: what the activation quantization does.
std::string describe_act_quant(ActQuant a);

// Per-token dynamic quantization of one row of n floats; returns the scale (0 for an all-zero row,
// whose codes are then all zero).
float quantize_row_int8(const float* x, int64_t n, int8_t* q);
float quantize_row_fp8(const float* x, int64_t n, uint8_t* q);

// Throws qb::Error unless w can run with w.act: quantized int8 symmetric per-channel weights for
// Int8PerToken; quantized fp8 (per channel or tensor) for Fp8PerToken; n_in within the exactness bound.
void check_w8a8(const WeightMatrix& w);

// y[t][o] for every token, as described above. x: n_tokens x n_in; y: n_tokens x n_out.
void matmul_w8a8(const WeightMatrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool);

}  // namespace qb::runtime::cpu
