// AVX2 INTk kernels: u8 x s8 products through VPMADDUBSW + VPMADDWD. int8 codes would overflow
// VPMADDUBSW's int16 pair sums (2 x 255 x 127), so they are made signed (c - 128) and the sign is
// moved onto the activations (|c - 128| <= 128 keeps pairs within int16), as ggml's q8_0 kernel does.
// Bodies are shared with the AVX-512 file (matmul_intk_x86.inl).
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "quantbench/runtime/cpu/matmul_intk_kernels.h"

namespace qb::runtime::cpu {
namespace intk_avx2 {
namespace {

constexpr const char* kLabel = "VPMADDUBSW+VPMADDWD integer dot products";
constexpr int kInt8Offset = 128;

inline __m256i dot_u8s8(__m256i u, __m256i s) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}
inline __m256i dot_code8(__m256i c, __m256i s) {
  const __m256i sc = _mm256_xor_si256(c, _mm256_set1_epi8(char(0x80)));  // c - 128 as int8
  return dot_u8s8(_mm256_sign_epi8(sc, sc), _mm256_sign_epi8(s, sc));
}

#include "quantbench/runtime/cpu/matmul_intk_x86.inl"

}  // namespace
}  // namespace intk_avx2

const IntkKernelTable& intk_avx2_kernels() {
  static const IntkKernelTable table = intk_avx2::make_intk_table();
  return table;
}

}  // namespace qb::runtime::cpu
