// Portable micro-kernel for gemm_f32.h (non-x86 machines, QB_CPU_ISA=scalar): a 4 x 8 tile in plain
// loops the compiler may vectorize for the baseline target.
#include "quantbench/runtime/cpu/gemm_f32.h"

namespace qb::runtime::cpu {
namespace {

constexpr int kMr = 4, kNr = 8;

void tile_4x8(int64_t kc, const float* ap, const float* bp, float* ct) {
  float acc[kMr][kNr] = {};
  for (int64_t r = 0; r < kc; ++r, ap += kMr, bp += kNr)
    for (int i = 0; i < kMr; ++i)
      for (int j = 0; j < kNr; ++j) acc[i][j] += ap[i] * bp[j];
  for (int i = 0; i < kMr; ++i)
    for (int j = 0; j < kNr; ++j) ct[i * kNr + j] = acc[i][j];
}

}  // namespace

GemmMicroKernel gemm_micro_kernel_scalar() { return {kMr, kNr, tile_4x8}; }

}  // namespace qb::runtime::cpu
