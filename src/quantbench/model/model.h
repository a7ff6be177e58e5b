// Model: a ModelSpec plus the weights of a GGUF file or of a Hugging Face checkpoint directory
// (config.json + safetensors; hf_model_map.h says how it maps to the same internal layout, which is
// llama.cpp's). Matrices stay in their stored format as WeightMatrix views into the file's mapping (a 4-bit model stays 4-bit in memory; kernels dequantize
// on the fly); only small vectors (norms, biases, rope factors) are decoded to f32 at load. Every
// tensor is shape-checked against the spec and scanned for NaN/Inf at load, so a bad file fails
// before the first forward with the tensor's name.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "quantbench/formats/gguf_reader.h"
#include "quantbench/model/hf_checkpoint.h"
#include "quantbench/model/hf_model_map.h"
#include "quantbench/model/model_spec.h"
#include "quantbench/quant/qformat/quantized_tensor.h"
#include "quantbench/runtime/cpu/matmul.h"
#include "quantbench/tokenizer/chat_template.h"
#include "quantbench/tokenizer/tokenizer.h"

namespace qb::model {

using runtime::cpu::WeightMatrix;

struct LayerWeights {
  std::vector<float> attn_norm, ffn_norm;
  std::vector<float> post_attn_norm, post_ffn_norm;  // post_norms only
  std::vector<float> q_norm, k_norm;                 // qk_norm only (head_dim_k each)
  std::vector<float> bq, bk, bv;                     // qkv_bias only
  WeightMatrix wq, wk, wv, wo;
  WeightMatrix w_gate, w_up, w_down;
};

class Model {
 public:
  // THE entry point: opens and validates a model at PATH, a GGUF file or a Hugging Face checkpoint
  // directory. Throws qb::Error("FILE: tensor 'NAME': ..." / "DIR/config.json: field 'F': ...").
  static std::shared_ptr<const Model> load(const std::string& path);
  static std::shared_ptr<const Model> load(std::shared_ptr<const formats::GgufFile> file);

  const ModelSpec& spec() const { return spec_; }
  const std::string& path() const { return path_; }
  std::string format() const;  // "GGUF v3", "Hugging Face safetensors (1 file)"
  std::string name() const;    // general.name, config.json's _name_or_path, or the file/directory name
  // The GGUF file, or nullptr for a Hugging Face directory; file() throws for a directory.
  const formats::GgufFile* gguf() const { return file_.get(); }
  const formats::GgufFile& file() const;
  const HfCheckpoint* hf() const { return hf_.get(); }
  // sha256 of the file, or sha256_directory() of a directory (computed on each call: it reads it all).
  std::string sha256() const;
  uint64_t source_bytes() const;  // the file's size, or the digested files' total
  // The tokenizer that came with the model: GGUF metadata, or tokenizer.json (+ tokenizer_config.json).
  tokenizer::Tokenizer load_tokenizer() const;
  // The chat template's Jinja source (tokenizer.chat_template; tokenizer_config.json's chat_template or
  // chat_template.jinja), nullopt if the model has none.
  std::optional<std::string> chat_template_source() const;
  // That template recognised; throws naming the model (and GGUF key) if absent or unrecognised.
  tokenizer::ChatTemplate chat_template() const;
  // Every tensor as stored (for inspect), in file order.
  std::vector<SourceTensor> stored_tensors() const;

  WeightMatrix token_embd;  // n_out = n_vocab rows of n_in = n_embd
  WeightMatrix output;      // the logits matrix (token_embd itself when tied)
  std::vector<float> output_norm;
  std::vector<float> rope_freqs;  // n_rot/2 factors, empty if none
  std::vector<LayerWeights> layers;
  // Matrices stored in quantbench's own formats (quant/writers/gguf_qb_tensor.h) are decoded into
  // these at load; WeightMatrix::quantized points here. Tools that swap weights in memory (quantize)
  // copy a Model and add theirs.
  std::vector<std::shared_ptr<const quant::QuantizedTensor>> quantized_storage;

  // Elements of every tensor as stored (stories260K: 292800), and without a stored output.weight
  // that is a byte-identical copy of token_embd (stories260K: 260032).
  int64_t n_params_stored() const { return n_params_stored_; }
  int64_t n_params_unique() const { return n_params_unique_; }

  // Decodes one embedding row (token id checked) into n_embd floats, before embd_scale.
  void embedding_row(int32_t token, float* out) const;

  // Distinct stored types of the matrices, for the Manifest ("f32", "q4_1 x 210, q6_K x 1").
  std::string describe_weight_types() const;

 private:
  Model() = default;
  static std::shared_ptr<const Model> load_hf(const std::string& dir);
  std::string path_;
  std::shared_ptr<const formats::GgufFile> file_;
  std::shared_ptr<const HfCheckpoint> hf_;
  std::vector<std::shared_ptr<const std::vector<uint8_t>>> owned_;  // transformed copies (permuted Q/K)
  ModelSpec spec_;
  int64_t n_params_stored_ = 0, n_params_unique_ = 0;
};

}  // namespace qb::model
