// How a QuantizedTensor (our INTk/NF4/FP8 formats, which have no ggml type) is stored in a GGUF file:
// the tensor NAME itself is absent, and three plain GGUF tensors plus one metadata key replace it:
//   NAME.qb_codes   I8, ggml shape {row_bytes, rows}: each row's LSB-first packed codes
//   NAME.qb_scales  I8, {bytes}: the scales, little-endian in the layout's scale dtype
//   NAME.qb_zeros   I8, {bytes}: one uint8 zero point per scale (asymmetric layouts only)
//   quantbench.tensor.NAME.layout  string "format=int4;granularity=group;group_size=32;asym=0;scale=f16;cols=172;rows=64"
// Using only standard GGUF tensor types keeps the file readable by every GGUF parser (gguf-py,
// llama.cpp's) even though llama.cpp cannot run it: it will report NAME missing, which is the honest
// outcome. docs/formats.md is the user-facing description.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "quantbench/formats/gguf_reader.h"
#include "quantbench/formats/gguf_writer.h"
#include "quantbench/quant/qformat/quantized_tensor.h"

namespace qb::quant {

std::string encode_layout(const QuantizedTensor& q);
// Parses encode_layout's text into an empty tensor of that layout and shape; throws qb::Error
// quoting `where` on any malformed or unsupported field.
QuantizedTensor decode_layout(std::string_view text, std::string_view where);

// Adds NAME.qb_* tensors and the layout key (copies the bytes; the writer owns them).
void add_qb_tensor(formats::GgufWriter& w, const std::string& name, const QuantizedTensor& q);

// Whether the file stores NAME in our own format (the layout key exists).
bool has_qb_tensor(const formats::GgufFile& f, std::string_view name);
// Reads NAME back; checks shape, byte sizes (QuantizedTensor::check) and that every decoded weight is
// finite. Throws qb::Error("FILE: tensor 'NAME': ...").
QuantizedTensor read_qb_tensor(const formats::GgufFile& f, const std::string& name);

}  // namespace qb::quant
