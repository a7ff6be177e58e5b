// Writes a QuantizedModel as GGUF: every key-value of the source file, then quantbench.* keys (the
// Manifest facts of the run), and the tensors in the source's order -- ggml-typed matrices in their
// new type (llama.cpp runs these), matrices in our own formats as NAME.qb_* parts
// (gguf_qb_tensor.h; only quantbench runs these), norm gains rewritten by AWQ as f32, everything
// else copied byte for byte. A source with no GGUF metadata (a Hugging Face directory) gets
// model::gguf_metadata_for's keys and its tensors written from the in-memory model. Atomic: on any error nothing is left at the path.
#pragma once
#include <string>

#include "quantbench/core/manifest.h"
#include "quantbench/quant/quantize_model.h"

namespace qb::quant {

void write_quantized_gguf(const QuantizedModel& qm, const Manifest& manifest, const std::string& path);

}  // namespace qb::quant
