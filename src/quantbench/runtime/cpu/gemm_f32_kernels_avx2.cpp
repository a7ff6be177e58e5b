// AVX2 micro-kernel for gemm_f32.h: a 6 x 16 tile of C in 12 ymm accumulators (of 16 registers: two
// for B, one for the broadcast A value).
#include <immintrin.h>

#include "quantbench/runtime/cpu/gemm_f32.h"

namespace qb::runtime::cpu {
namespace {

constexpr int kMr = 6, kNr = 16;

void tile_6x16(int64_t kc, const float* ap, const float* bp, float* ct) {
  __m256 acc[kMr][2];
  for (int i = 0; i < kMr; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
  for (int64_t r = 0; r < kc; ++r, ap += kMr, bp += kNr) {
    const __m256 b0 = _mm256_loadu_ps(bp), b1 = _mm256_loadu_ps(bp + 8);
#pragma GCC unroll 6
    for (int i = 0; i < kMr; ++i) {
      const __m256 a = _mm256_broadcast_ss(ap + i);
      acc[i][0] = _mm256_fmadd_ps(a, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(a, b1, acc[i][1]);
    }
  }
  for (int i = 0; i < kMr; ++i) {
    _mm256_storeu_ps(ct + i * kNr, acc[i][0]);
    _mm256_storeu_ps(ct + i * kNr + 8, acc[i][1]);
  }
}

}  // namespace

GemmMicroKernel gemm_micro_kernel_avx2() { return {kMr, kNr, tile_6x16}; }

}  // namespace qb::runtime::cpu
