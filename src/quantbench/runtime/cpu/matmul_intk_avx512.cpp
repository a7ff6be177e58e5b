// AVX-512 INTk kernels: u8 x s8 products through AVX512-VNNI's VPDPBUSD on 256-bit vectors (one
// instruction per block, and no int16 saturation, so int8 codes need no sign trick). VNNI is enabled
// per function here; the dispatcher only picks this table where CPUID reports it (matmul_isa.h).
// Bodies are shared with the AVX2 file (matmul_intk_x86.inl).
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "quantbench/runtime/cpu/matmul_intk_kernels.h"

#pragma GCC push_options
#pragma GCC target("avx512vnni")
// GCC 12's AVX-512 headers trip -Wuninitialized at inlined uses (GCC bug 105593); see matmul_kernels_avx512.cpp.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace qb::runtime::cpu {
namespace intk_avx512 {
namespace {

constexpr const char* kLabel = "AVX512-VNNI VPDPBUSD integer dot products";
constexpr int kInt8Offset = 0;

inline __m256i dot_u8s8(__m256i u, __m256i s) { return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s); }
inline __m256i dot_code8(__m256i c, __m256i s) { return _mm256_dpbusd_epi32(_mm256_setzero_si256(), c, s); }

#include "quantbench/runtime/cpu/matmul_intk_x86.inl"

}  // namespace
}  // namespace intk_avx512

const IntkKernelTable& intk_avx512_kernels() {
  static const IntkKernelTable table = intk_avx512::make_intk_table();
  return table;
}

}  // namespace qb::runtime::cpu

#pragma GCC diagnostic pop
#pragma GCC pop_options
