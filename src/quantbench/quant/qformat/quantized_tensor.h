// QuantizedTensor: a rows x cols weight matrix (rows = output channels) in one of our packed formats:
// packed codes row by row, one scale (and zero point, if asymmetric) per group, and the layout that
// says how to read them. A value type: methods build one, models own them, kernels read them.
// The reference dequantizer and the fused reference mat-vec live here; the mat-vec decodes codes
// group by group inside its loop and never materialises a dequantized matrix.
#pragma once
#include <cstdint>
#include <vector>

#include "quantbench/quant/qformat/format_traits.h"
#include "quantbench/quant/qformat/int_format.h"

namespace qb::quant {

struct QuantizedTensor {
  QuantLayout layout;
  int64_t rows = 0, cols = 0;
  std::vector<uint8_t> codes;   // rows * row_bytes(): each row an LSB-first bit stream (bit_pack.h)
  std::vector<uint8_t> scales;  // num_scales() scales, little-endian in layout.scale_type
  std::vector<uint8_t> zeros;   // num_scales() zero points if layout.asymmetric, else empty
  // Set when the group size does not divide cols: the last group of every row then holds
  // last_group_cols (< group_size) columns. Recorded so reports can say it happened.
  bool ragged_last_group = false;
  int64_t last_group_cols = 0;

  // Zero-filled storage for a validated layout; throws qb::Error on a bad layout or shape.
  static QuantizedTensor allocate(const QuantLayout& layout, int64_t rows, int64_t cols);

  int64_t group_cols() const;      // columns per (full) group: group_size, or cols
  int64_t groups_per_row() const;  // 1 for Tensor/Channel granularity
  int64_t num_scales() const;
  size_t row_bytes() const;
  size_t scale_index(int64_t row, int64_t group) const;

  GroupParams params(int64_t row, int64_t group) const;
  // Stores params for (row, group); the scale is rounded up to the scale dtype, and the stored
  // (decoded) params are returned -- quantize against those, not the ones passed in.
  GroupParams set_params(int64_t row, int64_t group, GroupParams p);

  uint8_t code(int64_t row, int64_t col) const;
  void set_code(int64_t row, int64_t col, uint8_t q);

  size_t storage_bytes() const { return codes.size() + scales.size() + zeros.size(); }
  // Throws qb::Error unless the buffers match the layout and shape (a tensor built or loaded
  // elsewhere may be inconsistent); dequantize and matvec call it before reading anything.
  void check() const;
  double bits_per_weight() const;
};

// Per-format dispatch of the scalar operations every method uses.
// Params for n weights with the range shrunk by clip (RTN when clip == 1).
GroupParams choose_params(const QuantLayout& l, const float* w, int64_t n, float clip = 1.0f);
uint8_t encode_value(const QuantLayout& l, float w, GroupParams p);
float decode_code(const QuantLayout& l, uint8_t q, GroupParams p);

// Round-to-nearest quantization of a row-major rows x cols matrix with params from choose_params
// (per tensor, row or group). The building block of RTN and of the clipping searches.
QuantizedTensor quantize_rtn(const float* w, int64_t rows, int64_t cols, const QuantLayout& l, float clip = 1.0f);
// Encodes columns [c0, c0+n) of `row` (w points at column c0) against the stored params.
void encode_span(QuantizedTensor& q, int64_t row, int64_t c0, int64_t n, const float* w);

// Reference dequantization: out is rows x cols, row-major.
void dequantize(const QuantizedTensor& q, float* out);
void dequantize_row(const QuantizedTensor& q, int64_t row, float* out);

// y = W x with W decoded group by group inside the loop (x has cols entries, y has rows). Products are
// summed in float within a group and in double across groups.
void matvec(const QuantizedTensor& q, const float* x, float* y);

}  // namespace qb::quant
