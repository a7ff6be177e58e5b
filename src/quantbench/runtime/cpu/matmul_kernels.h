// Internal interface between matmul.cpp and the per-ISA kernel files (matmul_kernels_scalar.cpp,
// *_avx2.cpp, *_avx512.cpp). As llama.cpp does, quantized weights are multiplied with activations
// quantized to 8-bit blocks of 32 (ActQ8Block), so the inner loop is an integer dot product; float
// weights are multiplied with float activations. Each kernel computes a block of weight rows against
// up to kMaxTileTokens tokens, unpacking every weight block once for all of them.
#pragma once
#include <cstdint>

namespace qb::runtime::cpu {

inline constexpr int kMaxTileTokens = 4;

// 32 activations x[i] ~= d * qs[i], |qs| <= 127, with the sums of qs over each 16-element half
// and dsum = d * (sum of all qs) (the weight types' offsets and mins multiply these; precomputing
// dsum, like llama.cpp's q8_1.s, takes a conversion and a multiply out of the kernels' inner loop).
struct ActQ8Block {
  float d;
  float dsum;
  int16_t sum16[2];
  int8_t qs[32];
};
static_assert(sizeof(ActQ8Block) == 44);

// Quantizes n (a multiple of 32) floats: d = max|x| / 127, qs = round-half-even(x * (127 / max|x|)).
// So every element's error is at most d/2 (the bound the matmul tests are derived from). This is
// the scalar definition; the SIMD tables' quantize_act performs the same float operations and gives
// identical blocks.
void quantize_activations_q8(const float* x, int64_t n, ActQ8Block* out);
using QuantizeActFn = void (*)(const float* x, int64_t n, ActQ8Block* out);

// y[t * y_stride + r] = dot(weight row r, token t) for r < n_rows, t < nt (1 <= nt <= kMaxTileTokens);
// row r starts at w + r * row_bytes and has n_in elements. Looping over rows inside the kernel keeps
// the per-row cost to the dot product itself (no indirect call per row).
using QuantDotFn = void (*)(const uint8_t* w, size_t row_bytes, int64_t n_rows, int64_t n_in,
                            const ActQ8Block* const* acts, int nt, float* y, int64_t y_stride);
using FloatDotFn = void (*)(const uint8_t* w, size_t row_bytes, int64_t n_rows, int64_t n_in,
                            const float* const* xs, int nt, float* y, int64_t y_stride);

struct KernelTable {
  // For describe_fast_path: the integer dot-product instructions and the float vector width used.
  const char* int_dot_label;
  const char* float_label;
  FloatDotFn f32, f16;
  QuantDotFn q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k, q6_k;
  QuantizeActFn quantize_act;
};

const KernelTable& scalar_kernels();
const KernelTable& avx2_kernels();    // call only if cpu_isa_supported(Avx2)
const KernelTable& avx512_kernels();  // call only if cpu_isa_supported(Avx512)

}  // namespace qb::runtime::cpu
