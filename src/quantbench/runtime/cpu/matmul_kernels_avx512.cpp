// AVX-512 kernels: 8-bit products through AVX512-VNNI's VPDPBUSD on 256-bit vectors (one instruction
// per 32-element block instead of two plus an add), 512-bit float vectors for f32/f16 weights.
// Bodies are shared with the AVX2 file (matmul_kernels_x86.inl). VNNI is enabled per function here
// (not in the build flags), and the dispatcher only picks this table where CPUID reports VNNI.
#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "quantbench/quant/qformat/ggml_block_structs.h"
#include "quantbench/runtime/cpu/matmul_kernels.h"

#pragma GCC push_options
#pragma GCC target("avx512vnni")
// GCC 12's AVX-512 headers seed masked builtins with _mm512_undefined_*(), which -Wuninitialized
// reports at every inlined use (GCC bug 105593); the warning is about the header, not this code.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace qb::runtime::cpu {
namespace x86_avx512 {
namespace {

inline __m256i dot_u8s8(__m256i u, __m256i s) { return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s); }
inline __m256i dot_u8s8_x16(__m256i u, __m256i s, int lo, int hi) {
  // Lanes 0-3 of the VPDPBUSD result cover elements 0-15, lanes 4-7 elements 16-31.
  const __m256i scales = _mm256_set_m128i(_mm_set1_epi32(hi), _mm_set1_epi32(lo));
  return _mm256_mullo_epi32(_mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s), scales);
}

using VF = __m512;
constexpr int64_t kVfWidth = 16;
inline VF vf_zero() { return _mm512_setzero_ps(); }
inline VF vf_loadu(const float* p) { return _mm512_loadu_ps(p); }
inline VF vf_load_f16(const uint8_t* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
inline VF vf_fma(VF a, VF b, VF c) { return _mm512_fmadd_ps(a, b, c); }
inline float vf_hsum(VF v) { return _mm512_reduce_add_ps(v); }

#include "quantbench/runtime/cpu/matmul_kernels_x86.inl"

}  // namespace
}  // namespace x86_avx512

const KernelTable& avx512_kernels() {
  static const KernelTable table = x86_avx512::make_table("AVX512-VNNI VPDPBUSD", "512-bit FMA");
  return table;
}

}  // namespace qb::runtime::cpu

#pragma GCC diagnostic pop
#pragma GCC pop_options
