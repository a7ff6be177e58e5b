// Our own packed weight formats (INTk, NF4, FP8 E4M3): one row of a traits table per format, plus the
// layout choices (granularity, group size, zero points, scale dtype) that together fix the bytes.
// ggml's habit: everything a caller needs to size a tensor is data in one table, not code per format.
// ggml's GGUF block types are a separate family (formats::GgmlType, quant/qformat/ggml_blocks.h).
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace qb::quant {

enum class QFormat : uint8_t { Int2, Int3, Int4, Int8, NF4, FP8E4M3 };

// Element type of stored scales. Integer and NF4 formats take f16 or bf16; FP8 takes f32 (as vLLM).
enum class ScaleType : uint8_t { F16, BF16, F32 };

// Which elements share one scale: the whole tensor (FP8 only), one output row, or a run of
// `group_size` consecutive input columns within a row (the last run of a row may be shorter).
enum class Granularity : uint8_t { Tensor, Channel, Group };

struct FormatTraits {
  QFormat format;
  std::string_view name;      // "int4", "nf4", "fp8_e4m3"
  int bits;                   // bits per stored weight code
  int values_per_unit;        // a row is packed in units of this many codes...
  int bytes_per_unit;         // ...occupying this many bytes (3-bit: 8 codes in 3 bytes)
  bool allows_zero_point;     // asymmetric (integer zero point) variant exists
  bool allows_group;          // group-wise scales allowed
  bool allows_tensor_scale;   // one scale for the whole tensor allowed
};

const FormatTraits& format_traits(QFormat f);
std::optional<QFormat> format_from_name(std::string_view name);
std::optional<QFormat> int_format(int bits);  // Int2/3/4/8 for 2/3/4/8
std::string_view scale_type_name(ScaleType t);
size_t scale_type_bytes(ScaleType t);
inline bool is_int_format(QFormat f) { return f <= QFormat::Int8; }

// The complete description of how a weight matrix is stored: format plus scale layout.
struct QuantLayout {
  QFormat format = QFormat::Int4;
  Granularity granularity = Granularity::Channel;
  int64_t group_size = 0;  // only for Granularity::Group
  bool asymmetric = false; // integer zero point per scale (stored as one uint8 per group)
  ScaleType scale_type = ScaleType::F16;

  bool operator==(const QuantLayout&) const = default;
};

// Throws qb::Error if the combination is not supported ("nf4 has no zero point", "g48 ...").
void validate_layout(const QuantLayout& l);
// Short description, e.g. "int4 g128 asym f16-scales".
std::string layout_name(const QuantLayout& l);

// Bytes of packed codes for n values (whole units, so a row ends on a unit boundary).
size_t packed_bytes(QFormat f, int64_t n);
// Bytes per full group: packed codes + scale + zero point (Granularity::Group only).
size_t bytes_per_group(const QuantLayout& l);

// Exact storage cost of a rows x cols matrix in this layout (codes with row padding, scales, zero
// points) and the resulting bits per weight.
size_t storage_bytes(const QuantLayout& l, int64_t rows, int64_t cols);
double bits_per_weight(const QuantLayout& l, int64_t rows, int64_t cols);

}  // namespace qb::quant
