// Portable INTk kernels: the SIMD files' arithmetic (integer dot of codes with 8-bit activations per
// block of 32, scaled by the block's d and summed per group, times the group scale, zero point
// through dsum) in plain loops over activations in natural order. Fallback off x86, and the readable
// statement of what the SIMD kernels compute.
#include <algorithm>
#include <cstring>

#include "quantbench/core/dtype.h"
#include "quantbench/quant/qformat/bit_pack.h"
#include "quantbench/runtime/cpu/matmul_intk_kernels.h"

namespace qb::runtime::cpu {

namespace {

float scale_of(const quant::QuantizedTensor& q, size_t i) {
  uint16_t h;
  std::memcpy(&h, &q.scales[i * 2], 2);
  return q.layout.scale_type == quant::ScaleType::BF16 ? bf16_to_f32(h) : f16_to_f32(h);
}

void intk_scalar(const quant::QuantizedTensor& q, int64_t r0, int64_t r1, const ActQ8Block* const* acts, int nt,
                 float* y, int64_t y_stride) {
  const int bits = quant::format_traits(q.layout.format).bits;
  const int64_t g = q.group_cols(), groups = q.groups_per_row();
  const size_t rb = q.row_bytes();
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* row = &q.codes[size_t(r) * rb];
    float acc[kMaxTileTokens] = {}, corr[kMaxTileTokens] = {};
    for (int64_t k = 0; k < groups; ++k) {
      const size_t si = q.scale_index(r, k);
      const float s = scale_of(q, si);
      const int z = q.layout.asymmetric ? q.zeros[si] : quant::int_sym_zero(bits);
      float gacc[kMaxTileTokens] = {}, gdsum[kMaxTileTokens] = {};
      for (int64_t b = k * g / 32; b < std::min(q.cols, (k + 1) * g) / 32; ++b) {
        uint8_t c[32];
        quant::unpack_codes(bits, row, b * 32, 32, c);
        for (int t = 0; t < nt; ++t) {
          const ActQ8Block& a = acts[t][b];
          int isum = 0;
          for (int i = 0; i < 32; ++i) isum += int(c[i]) * a.qs[i];
          gacc[t] += a.d * float(isum);
          gdsum[t] += a.dsum;
        }
      }
      for (int t = 0; t < nt; ++t) {
        acc[t] += s * gacc[t];
        corr[t] += s * float(z) * gdsum[t];
      }
    }
    for (int t = 0; t < nt; ++t) y[t * y_stride + r] = acc[t] - corr[t];
  }
}

}  // namespace

const IntkKernelTable& intk_scalar_kernels() {
  static const IntkKernelTable table{"scalar integer dot products", false, intk_scalar, intk_scalar, intk_scalar,
                                     intk_scalar};
  return table;
}

}  // namespace qb::runtime::cpu
