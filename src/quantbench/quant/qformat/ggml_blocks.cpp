#include "quantbench/quant/qformat/ggml_blocks.h"

#include <cmath>
#include <cstring>

#include "quantbench/core/dtype.h"
#include "quantbench/core/error.h"

namespace qb::qformat {

using formats::GgmlType;

bool can_dequantize(GgmlType type) {
  return type == GgmlType::F32 || type == GgmlType::F16 || type == GgmlType::BF16;
}

void dequantize_row(GgmlType type, const void* src, float* dst, int64_t n) {
  switch (type) {
    case GgmlType::F32: std::memcpy(dst, src, size_t(n) * 4); return;
    case GgmlType::F16: {
      const auto* h = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = f16_to_f32(h[i]);
      return;
    }
    case GgmlType::BF16: {
      const auto* h = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(h[i]);
      return;
    }
    default: fail("dequantization of {} is not implemented", formats::ggml_type_name(type));
  }
}

std::optional<std::string> find_non_finite(GgmlType type, const void* src, int64_t n) {
  if (type == GgmlType::F32) {
    const auto* f = static_cast<const float*>(src);
    for (int64_t i = 0; i < n; ++i)
      if (!std::isfinite(f[i])) return fmt::format("element {} is {}", i, f[i]);
    return std::nullopt;
  }
  fail("finiteness check of {} is not implemented", formats::ggml_type_name(type));
}

}  // namespace qb::qformat
