// Matrix products with weights in their stored format: y[t][o] = sum_i W[o][i] * x[t][i].
// Two paths: Reference (dequantize a row to f32, accumulate in double; obviously right, slow) and
// Fast (fused kernels that never hold a dequantized matrix, chosen once per process by CPU features;
// for quantized weights the activations are quantized to 8-bit blocks and the inner loop is an
// integer dot product, as in llama.cpp). Fast is tested against Reference. The path and ISA that ran
// are reported for the Manifest (describe_fast_path).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "quantbench/core/thread_pool.h"
#include "quantbench/formats/ggml_types.h"
#include "quantbench/runtime/cpu/matmul_isa.h"

namespace qb::quant {
struct QuantizedTensor;
}

namespace qb::runtime::cpu {

// Activation quantization that runs inside the matmul (W8A8 schemes; runtime/cpu/matmul_w8a8.h):
// each token's input row is quantized with its own scale before an integer / fp8 product.
enum class ActQuant : uint8_t { None, Int8PerToken, Fp8PerToken };

// A weight matrix of n_out rows, each n_in elements of `type`, row-major (ggml shape {n_in, n_out}).
struct WeightMatrix {
  formats::GgmlType type;
  int64_t n_in = 0;
  int64_t n_out = 0;
  const uint8_t* data = nullptr;
  size_t row_bytes = 0;
  // When set, the matrix is in one of quantbench's own formats (INTk/NF4/FP8) and `type`/`data` are
  // unused: the Fast path runs the fused INTk kernels where they apply (matmul_intk_driver.h), and
  // everything else runs quant::matvec token by token (the reference decoder).
  // The owner of the WeightMatrix keeps the tensor alive.
  const quant::QuantizedTensor* quantized = nullptr;
  // W8A8: with `quantized` int8 (symmetric, per channel) or fp8 weights, every path quantizes the
  // activations per token and runs matmul_w8a8 instead.
  ActQuant act = ActQuant::None;
};

// DequantGemm: for batches of at least kDequantGemmMinTokens tokens, the weights are dequantized to
// f32 (one matrix at a time) and multiplied by gemm_f32 against the unquantized activations, as
// llama.cpp does when built with a BLAS; smaller batches, W8A8 matrices and matrices over 64M
// elements run Fast. Used for the calibration pass, where the batches are whole samples.
enum class MatmulPath { Reference, Fast, DequantGemm };
inline constexpr int64_t kDequantGemmMinTokens = 32;

// x: n_tokens rows of n_in floats; y: n_tokens rows of n_out floats. Fast uses selected_cpu_isa();
// types without a fast kernel run the Reference path. Throws qb::Error on impossible shapes.
void matmul(const WeightMatrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool,
            MatmulPath path = MatmulPath::Fast);

// The Fast path with an explicit ISA (tests run every supported one; benchmarks compare them).
// Throws qb::Error if this CPU cannot run isa.
void matmul_with_isa(const WeightMatrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool,
                     CpuIsa isa);

// "avx512 12x32 f32 micro-kernel ... over weights dequantized to f32, for batches of >= 32 tokens".
std::string describe_dequant_gemm_path();

// Whether the Fast path has a fused kernel for this type (f32, f16, q8_0, q4_0, q4_1, q5_0, q5_1,
// q4_K, q5_K, q6_K).
bool has_fast_kernel(formats::GgmlType type);

// Whether the Fast path's kernel for this type multiplies integers, quantizing the activations to 8-bit
// blocks first as llama.cpp does (every fast kernel but f32's and f16's, which take the f32 values).
bool fast_kernel_quantizes_activations(formats::GgmlType type);
// How the CPU backend's scheme.activations names those inputs (CpuBackend::describe_activations), and
// what `quantbench eval` looks for there before it notes on stderr that --reference runs them exactly.
inline constexpr std::string_view kQuantizedActivationsLabel = "8-bit blocks";

// What the Fast path does for this type on this machine, e.g. "avx2 q4_1 x q8_1 (activations
// quantized to 8 bits, as llama.cpp does)" or "reference (no fast kernel)". For the Manifest.
std::string describe_fast_path(formats::GgmlType type);

}  // namespace qb::runtime::cpu
