// Internal interface between matmul_intk_driver.cpp and the per-ISA INTk kernels
// (matmul_intk_scalar.cpp, matmul_intk_avx2.cpp, matmul_intk_avx512.cpp) for quantbench's own
// integer formats (quant::QuantizedTensor, int2/3/4/8, symmetric or asymmetric, per-channel or
// groups of a multiple of 32 columns, f16/bf16 scales).
//
// Design: as the ggml-type kernels, activations are quantized to 8-bit blocks of 32 (ActQ8Block) so
// the inner loop is an exact integer dot product of unsigned codes with signed activations; per
// group, sum_b d_b * dot_b is accumulated in float and multiplied by the group's scale, and the zero
// point enters once per group as z * sum_b dsum_b (w = (q - z) * s, so sum w x~ = s * (sum q x~ -
// z * sum x~)). The codes are read straight from the QuantizedTensor's LSB-first rows; to avoid
// shuffling weights, the SIMD kernels read activations whose 32-element blocks were permuted once
// per call into the order in which the codes fall out of a byte-parallel unpack (act_permutation).
#pragma once
#include <array>
#include <cstdint>

#include "quantbench/quant/qformat/quantized_tensor.h"
#include "quantbench/runtime/cpu/matmul_kernels.h"

namespace qb::runtime::cpu {

// y[t * y_stride + r] = sum_c W[r][c] * x~_t[c] for rows r in [r0, r1), tokens t < nt (nt <= kMaxTileTokens).
// acts[t] has cols / 32 blocks, permuted within each block if the table says so.
using IntkDotFn = void (*)(const quant::QuantizedTensor& q, int64_t r0, int64_t r1, const ActQ8Block* const* acts,
                           int nt, float* y, int64_t y_stride);

struct IntkKernelTable {
  const char* label;     // for describe_intk_path: "avx2 VPMADDUBSW", ...
  bool permuted_acts;    // kernels expect act_permutation(bits) applied to every block
  IntkDotFn int2, int3, int4, int8;
};

// perm[p] = the element of a 32-block whose activation the SIMD kernels want at position p:
// int4: low nibbles of 16 bytes (elements 0, 2, ..., 30) then high nibbles (1, 3, ..., 31);
// int2: the four 2-bit fields of 8 bytes, field by field (0, 4, ..., 28, 1, 5, ...); int3/int8: identity.
std::array<uint8_t, 32> act_permutation(int bits);

const IntkKernelTable& intk_scalar_kernels();
const IntkKernelTable& intk_avx2_kernels();    // only if cpu_isa_supported(Avx2)
const IntkKernelTable& intk_avx512_kernels();  // only if cpu_isa_supported(Avx512)

}  // namespace qb::runtime::cpu
