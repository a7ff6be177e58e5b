// Reference (scalar) quantizers into ggml block types, following llama.cpp's quantize_row_*_ref:
// Q8_0/Q4_0/Q4_1 byte-for-byte, Q4_K/Q5_K/Q6_K with the same scale searches (make_qkx2_quants for
// the min+scale types, make_qx_quants for Q6_K). No importance matrix: that is a separate method.
#pragma once
#include <cstdint>

#include "quantbench/formats/ggml_types.h"

namespace qb::qformat {

// Whether quantize_row supports this type.
bool can_quantize(formats::GgmlType type);

// Quantizes n floats (a multiple of the type's block size) into ggml_row_bytes(type, n) bytes at dst.
// Throws qb::Error for unsupported types or ragged n. Inputs must be finite.
void quantize_row(formats::GgmlType type, const float* src, void* dst, int64_t n);

}  // namespace qb::qformat
