// The traits table for our packed formats and the byte arithmetic derived from it. Storage sizes are
// computed from the same numbers QuantizedTensor allocates with, so reported bits per weight are the
// bytes that really exist (row padding included).
#include "quantbench/quant/qformat/format_traits.h"

#include <fmt/format.h>

#include <array>

#include "quantbench/core/error.h"

namespace qb::quant {
namespace {

constexpr std::array<FormatTraits, 6> kTraits{{
    {QFormat::Int2, "int2", 2, 4, 1, true, true, false},
    {QFormat::Int3, "int3", 3, 8, 3, true, true, false},
    {QFormat::Int4, "int4", 4, 2, 1, true, true, false},
    {QFormat::Int8, "int8", 8, 1, 1, true, true, false},
    {QFormat::NF4, "nf4", 4, 2, 1, false, true, false},
    {QFormat::FP8E4M3, "fp8_e4m3", 8, 1, 1, false, false, true},
}};

// Each row's unit is a whole number of bytes holding a whole number of codes; pinned so a table edit
// cannot silently change a layout.
static_assert(kTraits[1].bits * kTraits[1].values_per_unit == 8 * kTraits[1].bytes_per_unit);
static_assert(kTraits[0].bits * kTraits[0].values_per_unit == 8 * kTraits[0].bytes_per_unit);
static_assert(kTraits[2].bits * kTraits[2].values_per_unit == 8 * kTraits[2].bytes_per_unit);

}  // namespace

const FormatTraits& format_traits(QFormat f) {
  const auto i = size_t(f);
  QB_CHECK(i < kTraits.size(), "unknown quantization format id {}", i);
  return kTraits[i];
}

std::optional<QFormat> format_from_name(std::string_view name) {
  for (const auto& t : kTraits)
    if (t.name == name) return t.format;
  return std::nullopt;
}

std::optional<QFormat> int_format(int bits) {
  switch (bits) {
    case 2: return QFormat::Int2;
    case 3: return QFormat::Int3;
    case 4: return QFormat::Int4;
    case 8: return QFormat::Int8;
    default: return std::nullopt;
  }
}

std::string_view scale_type_name(ScaleType t) {
  switch (t) {
    case ScaleType::F16: return "f16";
    case ScaleType::BF16: return "bf16";
    case ScaleType::F32: return "f32";
  }
  return "?";
}

size_t scale_type_bytes(ScaleType t) { return t == ScaleType::F32 ? 4 : 2; }

void validate_layout(const QuantLayout& l) {
  const auto& t = format_traits(l.format);
  if (l.asymmetric && !t.allows_zero_point) fail("{} has no zero point (asymmetric is not supported)", t.name);
  switch (l.granularity) {
    case Granularity::Tensor:
      if (!t.allows_tensor_scale) fail("{} does not support a per-tensor scale", t.name);
      break;
    case Granularity::Group:
      if (!t.allows_group) fail("{} does not support group-wise scales", t.name);
      if (l.group_size != 32 && l.group_size != 64 && l.group_size != 128)
        fail("group size {} is not supported (use 32, 64 or 128)", l.group_size);
      break;
    case Granularity::Channel: break;
  }
  if (l.format == QFormat::FP8E4M3) {
    if (l.scale_type != ScaleType::F32) fail("fp8_e4m3 scales are f32, not {}", scale_type_name(l.scale_type));
  } else if (l.scale_type == ScaleType::F32) {
    fail("{} scales are f16 or bf16, not f32", t.name);
  }
}

std::string layout_name(const QuantLayout& l) {
  std::string s(format_traits(l.format).name);
  switch (l.granularity) {
    case Granularity::Tensor: s += " per-tensor"; break;
    case Granularity::Channel: s += " per-channel"; break;
    case Granularity::Group: s += fmt::format(" g{}", l.group_size); break;
  }
  if (l.asymmetric) s += " asym";
  s += fmt::format(" {}-scales", scale_type_name(l.scale_type));
  return s;
}

size_t packed_bytes(QFormat f, int64_t n) {
  const auto& t = format_traits(f);
  const int64_t units = (n + t.values_per_unit - 1) / t.values_per_unit;
  return size_t(units) * size_t(t.bytes_per_unit);
}

size_t bytes_per_group(const QuantLayout& l) {
  QB_CHECK(l.granularity == Granularity::Group, "bytes_per_group needs a group-wise layout");
  return packed_bytes(l.format, l.group_size) + scale_type_bytes(l.scale_type) + (l.asymmetric ? 1 : 0);
}

size_t storage_bytes(const QuantLayout& l, int64_t rows, int64_t cols) {
  QB_CHECK(rows >= 0 && cols >= 0, "negative shape {}x{}", rows, cols);
  int64_t scales = 1;
  if (l.granularity == Granularity::Channel) scales = rows;
  if (l.granularity == Granularity::Group) scales = rows * ((cols + l.group_size - 1) / l.group_size);
  const size_t per_scale = scale_type_bytes(l.scale_type) + (l.asymmetric ? 1 : 0);
  return size_t(rows) * packed_bytes(l.format, cols) + size_t(scales) * per_scale;
}

double bits_per_weight(const QuantLayout& l, int64_t rows, int64_t cols) {
  QB_CHECK(rows > 0 && cols > 0, "bits per weight of an empty {}x{} matrix", rows, cols);
  return 8.0 * double(storage_bytes(l, rows, cols)) / (double(rows) * double(cols));
}

}  // namespace qb::quant
