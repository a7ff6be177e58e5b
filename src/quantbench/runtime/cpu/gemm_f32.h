// gemm_f32: C += A^T B in single precision with register-blocked micro-kernels, for the places where
// quantbench multiplies matrices much larger than a decode step on the CPU: the Gram matrix X^T X of
// calibration activations (GPTQ's Hessian), the dequantize-then-multiply prefill of the calibration
// pass and its attention, and AWQ's output error. Both operands are read "k-major": element (r, i) of
// A at a[r * a_rs + i * a_cs], so X^T X is A = B = X with no transpose, and x W^T is A(r, t) =
// x[t][r], B(r, o) = W[o][r] (the packing step absorbs the strides).
//
// Design (BLIS's): the k dimension is cut into chunks; per chunk A and B are packed into zero-padded
// panels of MR and NR columns, and each MR x NR tile of C is accumulated in registers over the chunk,
// then added to C. Tiles run in (block of B panels that fits in L2, A panel, B panel) order, so the A
// panel stays in L1 and the B block in L2. Tiles are split over the pool's threads as one flat list,
// so every element of C is summed by one thread in one fixed order: results do not depend on the
// thread count. Within a chunk the sum is f32; across chunks it is in C's type (double for the Gram
// matrix, so its rounding error is that of 256 f32 products, about 1e-6 relative).
#pragma once
#include <cstdint>
#include <string>

#include "quantbench/core/thread_pool.h"
#include "quantbench/runtime/cpu/matmul_isa.h"

namespace qb::runtime::cpu {

// Element (r, c) of a k-major operand is p[r * row_stride + c * col_stride].
struct GemmOperand {
  const float* p = nullptr;
  int64_t row_stride = 0, col_stride = 1;
};

// C[i][j] += sum_{r < k} A(r, i) * B(r, j) for i < m, j < n; C row-major with leading dimension ldc.
// accumulate = false: C = A^T B instead (C's old values are never read, so it need not be zeroed).
// upper_only: tiles entirely below the diagonal (all j < i) are skipped (symmetric products; the
// caller mirrors). The ISA is selected_cpu_isa() unless given.
// A double C sums chunks of 256 products in f32 and the chunks in double; a float C sums chunks of up
// to 384 products (balanced over k) and the chunks in f32.
void gemm_f32_tn(int64_t k, int64_t m, int64_t n, const GemmOperand& a, const GemmOperand& b, double* c, int64_t ldc,
                 bool upper_only, ThreadPool& pool, bool accumulate = true);
void gemm_f32_tn(int64_t k, int64_t m, int64_t n, const GemmOperand& a, const GemmOperand& b, float* c, int64_t ldc,
                 bool upper_only, ThreadPool& pool, bool accumulate = true);
void gemm_f32_tn_with_isa(int64_t k, int64_t m, int64_t n, const GemmOperand& a, const GemmOperand& b, double* c,
                          int64_t ldc, bool upper_only, ThreadPool& pool, CpuIsa isa, bool accumulate = true);

// "avx512 12x32 f32 micro-kernel" etc., for the Manifest and benchmarks.
std::string describe_gemm_f32();

// The per-ISA micro-kernel: ct (mr x nr, row-major) = sum_{r < kc} ap[r * mr + i] * bp[r * nr + j]
// over packed panels. Defined in gemm_f32_kernels_{scalar,avx2,avx512}.cpp.
struct GemmMicroKernel {
  int mr, nr;
  void (*tile)(int64_t kc, const float* ap, const float* bp, float* ct);
};
GemmMicroKernel gemm_micro_kernel_scalar();
GemmMicroKernel gemm_micro_kernel_avx2();
GemmMicroKernel gemm_micro_kernel_avx512();

}  // namespace qb::runtime::cpu
