// AVX2 + FMA + F16C kernels: 8-bit products through VPMADDUBSW + VPMADDWD (llama.cpp's AVX2 scheme),
// 256-bit float vectors. Bodies are shared with the AVX-512 file (matmul_kernels_x86.inl).
#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "quantbench/quant/qformat/ggml_block_structs.h"
#include "quantbench/runtime/cpu/matmul_kernels.h"

namespace qb::runtime::cpu {
namespace x86_avx2 {
namespace {

inline __m256i dot_u8s8(__m256i u, __m256i s) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}
inline __m256i dot_u8s8_x16(__m256i u, __m256i s, int lo, int hi) {
  const __m256i scales = _mm256_set_m128i(_mm_set1_epi16(int16_t(hi)), _mm_set1_epi16(int16_t(lo)));
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), scales);
}

using VF = __m256;
constexpr int64_t kVfWidth = 8;
inline VF vf_zero() { return _mm256_setzero_ps(); }
inline VF vf_loadu(const float* p) { return _mm256_loadu_ps(p); }
inline VF vf_load_f16(const uint8_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
inline VF vf_fma(VF a, VF b, VF c) { return _mm256_fmadd_ps(a, b, c); }
inline float vf_hsum(VF v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

#include "quantbench/runtime/cpu/matmul_kernels_x86.inl"

}  // namespace
}  // namespace x86_avx2

const KernelTable& avx2_kernels() {
  static const KernelTable table = x86_avx2::make_table("VPMADDUBSW+VPMADDWD", "256-bit FMA");
  return table;
}

}  // namespace qb::runtime::cpu
