// Shared fixtures for the evaluator tests: the bundled stories260K as baseline, and a perturbed
// candidate made here by re-saving it with its 64-wide matrices quantized (Q8_0 or Q4_0) through our
// own writer and reference quantizer, so the tests never need another model file.
#pragma once
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "../test_paths.h"
#include "quantbench/formats/ggml_types.h"
#include "quantbench/formats/gguf_reader.h"
#include "quantbench/formats/gguf_writer.h"
#include "quantbench/quant/qformat/ggml_quantize.h"

namespace qb::test {

// Writes stories260K with every F32 matrix whose rows are a multiple of 32 quantized to `type`.
// Returns the path (in the temp dir, one per type, rewritten on each call).
inline std::string make_quantized_stories(formats::GgmlType type) {
  const auto src = formats::GgufFile::open(stories260k_path());
  formats::GgufWriter w;
  w.copy_metadata_from(*src);
  for (const auto& t : src->tensors()) {
    const bool matrix = t.shape.size() == 2 && t.type == formats::GgmlType::F32 && t.shape[0] % 32 == 0;
    if (!matrix) {
      w.add_tensor(t.name, t.type, t.shape, std::span(t.data, t.nbytes));
      continue;
    }
    const int64_t n = t.shape[0], rows = t.shape[1];
    const size_t rb = formats::ggml_row_bytes(type, n);
    std::vector<uint8_t> out(rb * size_t(rows));
    const auto* f = reinterpret_cast<const float*>(t.data);
    for (int64_t r = 0; r < rows; ++r) qformat::quantize_row(type, f + r * n, out.data() + size_t(r) * rb, n);
    w.add_tensor_owned(t.name, type, t.shape, std::move(out));
  }
  const auto path = (std::filesystem::temp_directory_path() /
                     ("qb_eval_stories260K_" + std::string(formats::ggml_type_name(type)) + ".gguf")).string();
  w.write(path);
  return path;
}

// Writes stories260K with its output layer changed so that greedy decoding only ever emits the byte
// tokens lead_a or lead_b (ids of byte-fallback tokens such as <0xE4>): the output norm keeps input
// dimension 0 alone, and output rows lead_a / lead_b are +100 / -100 times that dimension, every other
// row zero, so whichever sign the dimension takes one of the two wins. Its text is UTF-8 lead bytes that
// never complete: the ill-formed text a byte-fallback model gives when a character is cut off.
inline std::string make_byte_emitting_stories(int lead_a, int lead_b) {
  const auto src = formats::GgufFile::open(stories260k_path());
  formats::GgufWriter w;
  w.copy_metadata_from(*src);
  for (const auto& t : src->tensors()) {
    if (t.name != "output_norm.weight" && t.name != "output.weight") {
      w.add_tensor(t.name, t.type, t.shape, std::span(t.data, t.nbytes));
      continue;
    }
    std::vector<float> v(t.nbytes / sizeof(float), 0.0f);  // (both are f32 in stories260K)
    const int64_t n_embd = t.shape[0];
    if (t.name == "output_norm.weight") {
      v[0] = 1.0f;
    } else {
      v[size_t(lead_a * n_embd)] = 100.0f;
      v[size_t(lead_b * n_embd)] = -100.0f;
    }
    std::vector<uint8_t> bytes(t.nbytes);
    std::memcpy(bytes.data(), v.data(), t.nbytes);
    w.add_tensor_owned(t.name, t.type, t.shape, std::move(bytes));
  }
  const auto path = (std::filesystem::temp_directory_path() / "qb_eval_stories260K_lead_bytes.gguf").string();
  w.write(path);
  return path;
}

inline std::string tiny_eval_text_path() { return source_path("data/eval/tinystories/tiny_eval_slice.txt"); }

}  // namespace qb::test
