// ggml's block formats (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K..Q6_K) and plain f32/f16/bf16 rows:
// exact reference dequantization as llama.cpp defines it. Block structs and their static_asserts live
// in the .cpp; this header is the interface the model loader and kernels use.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "quantbench/formats/ggml_types.h"

namespace qb::qformat {

// Whether dequantize_row supports this type.
bool can_dequantize(formats::GgmlType type);

// Decodes n elements (a multiple of the type's block size) from src into dst, exactly as llama.cpp's
// reference dequantizers do. Throws qb::Error for unsupported types.
void dequantize_row(formats::GgmlType type, const void* src, float* dst, int64_t n);

// Scans a row's scales (block types) or values (float types) for NaN/Inf; returns a description of
// the first bad one ("block 3: scale d is NaN"), or nullopt if the row is finite.
std::optional<std::string> find_non_finite(formats::GgmlType type, const void* src, int64_t n);

}  // namespace qb::qformat
