// Matrix products with weights in their stored format: y[t][o] = sum_i W[o][i] * x[t][i].
// Two paths: Reference (dequantize a row to f32, accumulate in double; obviously right, slow) and
// Fast (fused dequantize-in-register SIMD kernels chosen once per process by CPU features). Fast is
// tested against Reference. The path and ISA that ran are reported for the Manifest.
#pragma once
#include <cstdint>
#include <string>

#include "quantbench/core/thread_pool.h"
#include "quantbench/formats/ggml_types.h"

namespace qb::runtime::cpu {

// A weight matrix of n_out rows, each n_in elements of `type`, row-major (ggml shape {n_in, n_out}).
struct WeightMatrix {
  formats::GgmlType type;
  int64_t n_in = 0;
  int64_t n_out = 0;
  const uint8_t* data = nullptr;
  size_t row_bytes = 0;
};

enum class MatmulPath { Reference, Fast };

// x: n_tokens rows of n_in floats; y: n_tokens rows of n_out floats.
void matmul(const WeightMatrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool,
            MatmulPath path = MatmulPath::Fast);

// What the Fast path does for this type on this machine, e.g. "avx2 q4_1 x q8_1 (activations
// quantized to 8 bits, as llama.cpp does)" or "reference (no fast kernel)". For the Manifest.
std::string describe_fast_path(formats::GgmlType type);

}  // namespace qb::runtime::cpu
