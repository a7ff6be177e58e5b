// Fast CPU matrix products for quantbench's own INTk QuantizedTensors (int2/3/4/8, sym or asym,
// per-channel or group-wise scales): the activations are quantized to 8-bit blocks of 32 as for the
// ggml types (llama.cpp's scheme), and fused kernels dequantize inside integer dot products. Error
// against exact f32 activations: each activation moves by at most d/2 (d = max|x| / 127 of its
// 32-block), so |y - y_exact| <= sum_i |W_i| d(i) / 2 plus float rounding; tests hold the kernels to
// that bound and, tighter, to the exact product with the quantized activations.
#pragma once
#include <cstdint>
#include <string>

#include "quantbench/core/thread_pool.h"
#include "quantbench/quant/qformat/quantized_tensor.h"
#include "quantbench/runtime/cpu/matmul_isa.h"

namespace qb::runtime::cpu {

// Whether the fused kernels handle this tensor: an INTk format with f16/bf16 scales, per-channel or
// group-wise, and every group (and so the row) a multiple of 32 columns. Others run quant::matvec.
bool has_intk_kernel(const quant::QuantizedTensor& q);

// y (n_tokens rows of q.rows) = x (n_tokens rows of q.cols) times q transposed, with the kernels of
// `isa`. Throws qb::Error if !has_intk_kernel(q) or the CPU cannot run isa.
void matmul_intk(const quant::QuantizedTensor& q, const float* x, int64_t n_tokens, float* y, ThreadPool& pool,
                 CpuIsa isa);

// What runs for q on the selected ISA, for the Manifest.
std::string describe_intk_path(const quant::QuantizedTensor& q);

}  // namespace qb::runtime::cpu
