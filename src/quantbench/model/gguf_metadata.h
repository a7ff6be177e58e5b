// The GGUF metadata that describes a Model loaded from a Hugging Face directory, in llama.cpp's keys,
// so a quantized GGUF written from it (quant/writers/gguf_output.h) loads back here, and in
// llama.cpp, as the same model: architecture and spec keys as ModelSpec::from_gguf reads them, and
// the tokenizer as tokenizer.ggml.* (byte-level BPE; the pre-tokenizer is named by the llama.cpp
// pre type whose regexes equal tokenizer.json's, or the export fails). For a GGUF source the file's
// own metadata is used instead; this is only for sources that have none.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "quantbench/formats/gguf_reader.h"
#include "quantbench/model/model.h"

namespace qb::model {

// Throws qb::Error naming the model if something cannot be expressed in GGUF metadata.
std::vector<std::pair<std::string, formats::GgufValue>> gguf_metadata_for(const Model& m);

}  // namespace qb::model
