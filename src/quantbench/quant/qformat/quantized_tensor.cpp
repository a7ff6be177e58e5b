// QuantizedTensor storage and the reference decode paths. Group boundaries are multiples of 32 columns
// (or the whole row), so each group starts on a byte boundary of the row's bit stream for every width.
#include "quantbench/quant/qformat/quantized_tensor.h"

#include <algorithm>
#include <cstring>

#include "quantbench/core/dtype.h"
#include "quantbench/core/error.h"
#include "quantbench/quant/qformat/bit_pack.h"
#include "quantbench/quant/qformat/fp8_e4m3.h"
#include "quantbench/quant/qformat/nf4.h"

namespace qb::quant {

QuantizedTensor QuantizedTensor::allocate(const QuantLayout& layout, int64_t rows, int64_t cols) {
  validate_layout(layout);
  QB_CHECK(rows > 0 && cols > 0, "cannot quantize a {}x{} matrix", rows, cols);
  QB_CHECK(rows < (int64_t(1) << 32) && cols < (int64_t(1) << 32), "matrix {}x{} is too large", rows, cols);
  QuantizedTensor q;
  q.layout = layout;
  q.rows = rows;
  q.cols = cols;
  q.codes.assign(size_t(rows) * packed_bytes(layout.format, cols), 0);
  q.scales.assign(size_t(q.num_scales()) * scale_type_bytes(layout.scale_type), 0);
  if (layout.asymmetric) q.zeros.assign(size_t(q.num_scales()), 0);
  const int64_t g = q.group_cols();
  q.last_group_cols = cols - (q.groups_per_row() - 1) * g;
  q.ragged_last_group = q.last_group_cols != g;
  return q;
}

void QuantizedTensor::check() const {
  validate_layout(layout);
  QB_CHECK(rows > 0 && cols > 0 && rows < (int64_t(1) << 32) && cols < (int64_t(1) << 32),
           "quantized tensor has a bad shape {}x{}", rows, cols);
  QB_CHECK(codes.size() == size_t(rows) * row_bytes(), "quantized tensor: {} code bytes, expected {}",
           codes.size(), size_t(rows) * row_bytes());
  QB_CHECK(scales.size() == size_t(num_scales()) * scale_type_bytes(layout.scale_type),
           "quantized tensor: {} scale bytes, expected {}", scales.size(), size_t(num_scales()) * scale_type_bytes(layout.scale_type));
  QB_CHECK(zeros.size() == (layout.asymmetric ? size_t(num_scales()) : 0u), "quantized tensor: {} zero points, expected {}",
           zeros.size(), layout.asymmetric ? size_t(num_scales()) : 0u);
  const int maxq = (1 << format_traits(layout.format).bits) - 1;
  for (size_t i = 0; i < zeros.size(); ++i)
    QB_CHECK(zeros[i] <= maxq, "quantized tensor: zero point {} of scale {} exceeds {}", zeros[i], i, maxq);
}

int64_t QuantizedTensor::group_cols() const {
  return layout.granularity == Granularity::Group ? layout.group_size : cols;
}

int64_t QuantizedTensor::groups_per_row() const {
  const int64_t g = group_cols();
  return (cols + g - 1) / g;
}

int64_t QuantizedTensor::num_scales() const {
  switch (layout.granularity) {
    case Granularity::Tensor: return 1;
    case Granularity::Channel: return rows;
    case Granularity::Group: return rows * groups_per_row();
  }
  return 0;
}

size_t QuantizedTensor::row_bytes() const { return packed_bytes(layout.format, cols); }

size_t QuantizedTensor::scale_index(int64_t row, int64_t group) const {
  switch (layout.granularity) {
    case Granularity::Tensor: return 0;
    case Granularity::Channel: return size_t(row);
    case Granularity::Group: return size_t(row * groups_per_row() + group);
  }
  return 0;
}

GroupParams QuantizedTensor::params(int64_t row, int64_t group) const {
  const size_t i = scale_index(row, group);
  GroupParams p;
  switch (layout.scale_type) {
    case ScaleType::F32: std::memcpy(&p.scale, &scales[i * 4], 4); break;
    case ScaleType::F16: p.scale = f16_to_f32(uint16_t(scales[i * 2] | scales[i * 2 + 1] << 8)); break;
    case ScaleType::BF16: p.scale = bf16_to_f32(uint16_t(scales[i * 2] | scales[i * 2 + 1] << 8)); break;
  }
  if (layout.asymmetric) p.zero = zeros[i];
  else if (is_int_format(layout.format)) p.zero = int_sym_zero(format_traits(layout.format).bits);
  return p;
}

GroupParams QuantizedTensor::set_params(int64_t row, int64_t group, GroupParams p) {
  const size_t i = scale_index(row, group);
  const float s = round_scale_up(p.scale, layout.scale_type);
  switch (layout.scale_type) {
    case ScaleType::F32: std::memcpy(&scales[i * 4], &s, 4); break;
    case ScaleType::F16:
    case ScaleType::BF16: {
      const uint16_t h = layout.scale_type == ScaleType::F16 ? f32_to_f16(s) : f32_to_bf16(s);
      scales[i * 2] = uint8_t(h & 0xff);
      scales[i * 2 + 1] = uint8_t(h >> 8);
      break;
    }
  }
  if (layout.asymmetric) {
    QB_CHECK(p.zero >= 0 && p.zero < (1 << format_traits(layout.format).bits), "zero point {} out of range", p.zero);
    zeros[i] = uint8_t(p.zero);
  }
  return params(row, group);
}

uint8_t QuantizedTensor::code(int64_t row, int64_t col) const {
  uint8_t q;
  unpack_codes(format_traits(layout.format).bits, &codes[size_t(row) * row_bytes()], col, 1, &q);
  return q;
}

void QuantizedTensor::set_code(int64_t row, int64_t col, uint8_t q) {
  pack_codes(format_traits(layout.format).bits, &q, col, 1, &codes[size_t(row) * row_bytes()]);
}

double QuantizedTensor::bits_per_weight() const {
  return 8.0 * double(storage_bytes()) / (double(rows) * double(cols));
}

GroupParams choose_params(const QuantLayout& l, const float* w, int64_t n, float clip) {
  const auto& t = format_traits(l.format);
  switch (l.format) {
    case QFormat::NF4: return nf4_params(w, n, clip, l.scale_type);
    case QFormat::FP8E4M3: return fp8_params(w, n, clip);
    default: return int_params(t.bits, l.asymmetric, w, n, clip, l.scale_type);
  }
}

uint8_t encode_value(const QuantLayout& l, float w, GroupParams p) {
  switch (l.format) {
    case QFormat::NF4: return nf4_encode(w, p);
    case QFormat::FP8E4M3: return fp8_encode(w, p);
    default: return int_encode(format_traits(l.format).bits, w, p);
  }
}

float decode_code(const QuantLayout& l, uint8_t q, GroupParams p) {
  switch (l.format) {
    case QFormat::NF4: return nf4_decode(q, p);
    case QFormat::FP8E4M3: return fp8_decode(q, p);
    default: return int_decode(q, p);
  }
}

void encode_span(QuantizedTensor& q, int64_t row, int64_t c0, int64_t n, const float* w) {
  const int64_t g = q.group_cols();
  uint8_t buf[256];
  for (int64_t c = c0; c < c0 + n;) {
    const int64_t group = c / g;
    const int64_t end = std::min({c0 + n, (group + 1) * g, c + int64_t(sizeof buf)});
    const GroupParams p = q.params(row, group);
    for (int64_t j = c; j < end; ++j) buf[j - c] = encode_value(q.layout, w[j - c0], p);
    pack_codes(format_traits(q.layout.format).bits, buf, c, end - c, &q.codes[size_t(row) * q.row_bytes()]);
    c = end;
  }
}

QuantizedTensor quantize_rtn(const float* w, int64_t rows, int64_t cols, const QuantLayout& l, float clip) {
  QuantizedTensor q = QuantizedTensor::allocate(l, rows, cols);
  if (l.granularity == Granularity::Tensor) q.set_params(0, 0, choose_params(l, w, rows * cols, clip));
  const int64_t g = q.group_cols();
  for (int64_t r = 0; r < rows; ++r) {
    const float* wr = w + r * cols;
    if (l.granularity != Granularity::Tensor)
      for (int64_t k = 0; k < q.groups_per_row(); ++k)
        q.set_params(r, k, choose_params(l, wr + k * g, std::min(g, cols - k * g), clip));
    encode_span(q, r, 0, cols, wr);
  }
  return q;
}

void dequantize_row(const QuantizedTensor& q, int64_t row, float* out) {
  QB_CHECK(row >= 0 && row < q.rows, "row {} out of range (rows = {})", row, q.rows);
  QB_CHECK(q.codes.size() >= size_t(q.rows) * q.row_bytes(), "quantized tensor: code buffer too small");
  const int bits = format_traits(q.layout.format).bits;
  const int64_t g = q.group_cols();
  const uint8_t* src = &q.codes[size_t(row) * q.row_bytes()];
  uint8_t buf[256];
  for (int64_t c = 0; c < q.cols;) {
    const int64_t group = c / g;
    const int64_t end = std::min({q.cols, (group + 1) * g, c + int64_t(sizeof buf)});
    const GroupParams p = q.params(row, group);
    unpack_codes(bits, src, c, end - c, buf);
    for (int64_t j = c; j < end; ++j) out[j] = decode_code(q.layout, buf[j - c], p);
    c = end;
  }
}

void dequantize(const QuantizedTensor& q, float* out) {
  q.check();
  for (int64_t r = 0; r < q.rows; ++r) dequantize_row(q, r, out + r * q.cols);
}

void matvec(const QuantizedTensor& q, const float* x, float* y) {
  q.check();
  const int bits = format_traits(q.layout.format).bits;
  const int64_t g = q.group_cols();
  // Unscaled level of each code: (q - z) for INTk (z per group, applied below with integer
  // arithmetic so no cancellation happens in float), the codebook/e4m3 value for NF4/FP8.
  float level[256];
  const bool is_int = is_int_format(q.layout.format);
  for (int c = 0; c < 256; ++c)
    level[c] = is_int ? 0.0f : decode_code(q.layout, uint8_t(c), GroupParams{1.0f, 0});
  uint8_t buf[256];
  for (int64_t r = 0; r < q.rows; ++r) {
    const uint8_t* src = &q.codes[size_t(r) * q.row_bytes()];
    double acc = 0;
    for (int64_t c = 0; c < q.cols;) {
      const int64_t group = c / g;
      const int64_t end = std::min({q.cols, (group + 1) * g, c + int64_t(sizeof buf)});
      const GroupParams p = q.params(r, group);
      unpack_codes(bits, src, c, end - c, buf);
      float dot = 0;
      if (is_int) {
        for (int64_t j = c; j < end; ++j) dot += float(int(buf[j - c]) - p.zero) * x[j];
      } else {
        for (int64_t j = c; j < end; ++j) dot += level[buf[j - c]] * x[j];
      }
      acc += double(p.scale) * double(dot);
      c = end;
    }
    y[r] = float(acc);
  }
}

}  // namespace qb::quant
