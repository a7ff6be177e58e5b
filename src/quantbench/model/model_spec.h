// ModelSpec: everything the forward pass needs to know about a Llama-family model that is not a
// weight, read from GGUF metadata and checked against the tensors' shapes. One struct with explicit
// per-architecture switches (rope style, QK-norm, biases, GeGLU, post-norms, sliding window) rather
// than a class per family: the families differ in a handful of flags, and a flat struct is what a
// CUDA backend and the Manifest both need to read.
//
// Conventions follow llama.cpp's GGUF files: Q/K of "llama" are stored permuted so rope rotates
// adjacent pairs (RopeStyle::Normal); qwen2/qwen3/gemma* rotate halves (RopeStyle::Neox); Gemma norm
// weights are stored with the +1 already folded in by the converter, so every RMSNorm is x̂ * w.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "quantbench/formats/gguf_reader.h"

namespace qb::model {

enum class Arch { Llama, Qwen2, Qwen3, Gemma, Gemma3 };
enum class RopeStyle { Normal, Neox };  // Normal: pairs (2i, 2i+1); Neox: pairs (i, i + n_rot/2)
enum class Activation { SiLU, GeluTanh };  // gate activation of the gated MLP (SwiGLU / GeGLU)

std::string_view arch_name(Arch a);
std::string_view rope_style_name(RopeStyle s);

struct ModelSpec {
  std::string gguf_arch;  // general.architecture as stored ("llama", "qwen2", ...)
  Arch arch = Arch::Llama;

  int64_t n_vocab = 0;
  int64_t n_embd = 0;
  int64_t n_layer = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t head_dim_k = 0;  // attention.key_length (default n_embd / n_head)
  int64_t head_dim_v = 0;  // attention.value_length (default head_dim_k)
  int64_t n_ff = 0;
  int64_t n_ctx_train = 0;
  float rms_eps = 1e-5f;

  // Rope. Angle for pair i at position p: p * scale * theta^(-2i/n_rot) / freq_factor[i].
  RopeStyle rope_style = RopeStyle::Normal;
  int64_t n_rot = 0;
  float rope_theta = 10000.0f;        // global (or only) layers
  float rope_theta_swa = 10000.0f;    // sliding-window layers (gemma3's local base)
  float rope_position_scale = 1.0f;   // linear rope scaling: 1 / rope.scaling.factor (global layers)
  bool has_rope_freqs = false;        // rope_freqs.weight present (llama-3 frequency factors)

  bool qkv_bias = false;              // attn_{q,k,v}.bias (qwen2)
  bool qk_norm = false;               // per-head RMSNorm of q and k before rope (qwen3, gemma3)
  bool post_norms = false;            // post_attention_norm and post_ffw_norm (gemma3)
  Activation activation = Activation::SiLU;
  float embd_scale = 1.0f;            // gemma: sqrt(n_embd)
  float attn_scale = 0.0f;            // multiplies q·k; 1/sqrt(head_dim_k) unless attention.scale
  float attn_softcap = 0.0f;          // 0: none
  float final_softcap = 0.0f;         // 0: none

  int64_t sliding_window = 0;         // 0: none
  std::vector<bool> layer_swa;        // per layer: uses the sliding window (and rope_theta_swa)

  bool tied_embeddings = false;       // output.weight absent: logits use token_embd

  int32_t bos_id = -1;
  std::vector<int32_t> stop_ids;      // eos, and eot where the file names one

  int64_t q_dim() const { return n_head * head_dim_k; }
  int64_t kv_dim_k() const { return n_head_kv * head_dim_k; }
  int64_t kv_dim_v() const { return n_head_kv * head_dim_v; }

  // Reads and validates the spec; throws qb::Error("FILE: ...") naming the field or tensor at fault.
  static ModelSpec from_gguf(const formats::GgufFile& file);

  // One line for logs and the Manifest.
  std::string describe() const;
};

}  // namespace qb::model
