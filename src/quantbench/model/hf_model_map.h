// How a Hugging Face checkpoint becomes the model layer's internal layout, which is llama.cpp's GGUF
// layout (so one weight loader, one forward pass and the quantized-GGUF writer serve both sources):
//   - config.json fields -> ModelSpec, with transformers' per-class defaults where a field is absent
//     and a one-line qb::Error naming the field and file where a required one is missing or bad;
//   - tensor names model.layers.N.self_attn.q_proj.weight -> blk.N.attn_q.weight, etc.; a tensor the
//     mapping does not use (an o_proj bias, say) is an error, never silently dropped;
//   - what llama.cpp's convert_hf_to_gguf.py changes on the way, done here at load instead:
//     llama/mistral Q and K rows are permuted per head so rope can rotate adjacent pairs
//     (RopeStyle::Normal, as our GGUF path expects); gemma norms become (1 + w); llama-3 rope
//     scaling becomes per-pair frequency factors (rope_freqs).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "quantbench/formats/ggml_types.h"
#include "quantbench/model/hf_checkpoint.h"
#include "quantbench/model/model_spec.h"

namespace qb::model {

// One stored tensor, wherever it came from, in ggml terms (shape innermost first).
struct SourceTensor {
  std::string file;         // for error messages
  std::string stored_name;  // the name in that file
  formats::GgmlType type = formats::GgmlType::F32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;
  size_t nbytes = 0;
  int64_t n_elements() const;
};

struct HfModelMap {
  ModelSpec spec;
  std::map<std::string, SourceTensor> tensors;  // by GGUF name (token_embd.weight, blk.0.attn_q.weight)
  std::vector<float> rope_freqs;                // llama-3 factors, n_rot / 2; empty if none
  bool permute_qk = false;                      // llama/mistral: permute attn_q / attn_k rows per head
  bool norm_plus_one = false;                   // gemma: every *norm.weight is used as (1 + w)
};

// Throws qb::Error("DIR/config.json: field 'X': ...") or ("SHARD: tensor 'Y': ...").
HfModelMap map_hf_checkpoint(const HfCheckpoint& ckpt);

// llama.cpp's llama-3 rope frequency factors (what convert_hf_to_gguf.py stores as rope_freqs):
// 1 for high frequencies, `factor` for low ones, and the smooth blend in between.
std::vector<float> llama3_rope_factors(double theta, int64_t n_rot, double factor, double low_freq_factor,
                                       double high_freq_factor, double original_max_positions);

}  // namespace qb::model
