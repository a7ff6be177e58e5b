// gguf_metadata_for; see gguf_metadata.h. Keys are written only where ModelSpec::from_gguf's default
// would not give back the same spec, plus the ones llama.cpp requires.
#include "quantbench/model/gguf_metadata.h"

#include <cmath>

#include "quantbench/core/error.h"
#include "quantbench/tokenizer/pretokenizer.h"

namespace qb::model {

using formats::GgufValue;

std::vector<std::pair<std::string, GgufValue>> gguf_metadata_for(const Model& m) {
  const ModelSpec& s = m.spec();
  std::vector<std::pair<std::string, GgufValue>> kv;
  auto set = [&](std::string k, GgufValue v) { kv.emplace_back(std::move(k), std::move(v)); };
  const std::string a = s.gguf_arch + ".";
  set("general.architecture", GgufValue::str(s.gguf_arch));
  set("general.name", GgufValue::str(m.name()));
  set("general.source.sha256", GgufValue::str(m.sha256()));
  set(a + "block_count", GgufValue::u32(uint32_t(s.n_layer)));
  set(a + "context_length", GgufValue::u32(uint32_t(s.n_ctx_train)));
  set(a + "embedding_length", GgufValue::u32(uint32_t(s.n_embd)));
  set(a + "feed_forward_length", GgufValue::u32(uint32_t(s.n_ff)));
  set(a + "attention.head_count", GgufValue::u32(uint32_t(s.n_head)));
  set(a + "attention.head_count_kv", GgufValue::u32(uint32_t(s.n_head_kv)));
  set(a + "attention.key_length", GgufValue::u32(uint32_t(s.head_dim_k)));
  set(a + "attention.value_length", GgufValue::u32(uint32_t(s.head_dim_v)));
  set(a + "attention.layer_norm_rms_epsilon", GgufValue::f32(s.rms_eps));
  set(a + "rope.freq_base", GgufValue::f32(s.rope_theta));
  set(a + "rope.dimension_count", GgufValue::u32(uint32_t(s.n_rot)));
  set(a + "vocab_size", GgufValue::u32(uint32_t(s.n_vocab)));
  if (s.rope_position_scale != 1.0f) {
    set(a + "rope.scaling.type", GgufValue::str("linear"));
    set(a + "rope.scaling.factor", GgufValue::f32(1.0f / s.rope_position_scale));
  }
  if (std::fabs(double(s.attn_scale) * std::sqrt(double(s.head_dim_k)) - 1.0) > 1e-6)
    set(a + "attention.scale", GgufValue::f32(s.attn_scale));
  if (s.attn_softcap > 0) set(a + "attn_logit_softcapping", GgufValue::f32(s.attn_softcap));
  if (s.final_softcap > 0) set(a + "final_logit_softcapping", GgufValue::f32(s.final_softcap));
  if (s.arch == Arch::Gemma3) {
    set(a + "rope.freq_base_swa", GgufValue::f32(s.rope_theta_swa));
    set(a + "attention.sliding_window", GgufValue::u32(uint32_t(s.sliding_window)));
    std::vector<GgufValue> pat;
    for (bool b : s.layer_swa) pat.push_back(GgufValue::boolean(b));
    set(a + "attention.sliding_window_pattern", GgufValue::array(formats::GgufValueType::BOOL, std::move(pat)));
  } else if (s.sliding_window > 0) {
    fail("{}: a sliding window on a {} model cannot be expressed in GGUF for llama.cpp", m.path(), s.gguf_arch);
  }

  // Tokenizer.
  const auto tok = m.load_tokenizer();
  const auto& v = tok.spec();
  QB_CHECK(v.algorithm == tokenizer::Algorithm::Bpe, "{}: only byte-level BPE tokenizers can be written to GGUF here",
           m.path());
  std::string pre;
  for (const char* name : {"gpt-2", "llama-bpe", "qwen2", "default", "deepseek-llm", "deepseek-coder", "falcon",
                           "starcoder", "smollm"})
    if (tokenizer::pre_tokenizer_config(name).regexes == v.pre_regexes) {
      pre = name;
      break;
    }
  QB_CHECK(!pre.empty(), "{}: tokenizer.json's pre-tokenizer ({}) matches no llama.cpp pre type, so it cannot be "
           "written as tokenizer.ggml.pre", m.path(), v.pre_name);
  set("tokenizer.ggml.model", GgufValue::str("gpt2"));
  set("tokenizer.ggml.pre", GgufValue::str(pre));
  std::vector<std::string> texts, merges;
  std::vector<int32_t> types;
  for (const auto& t : v.tokens) {
    texts.push_back(t.text);
    types.push_back(int32_t(t.type == tokenizer::TokenType::Undefined ? tokenizer::TokenType::Normal : t.type));
  }
  for (const auto& [l, r] : v.merges) merges.push_back(l + " " + r);
  set("tokenizer.ggml.tokens", GgufValue::string_array(texts));
  set("tokenizer.ggml.token_type", GgufValue::i32_array(types));
  set("tokenizer.ggml.merges", GgufValue::string_array(merges));
  if (v.bos != tokenizer::kNoToken) set("tokenizer.ggml.bos_token_id", GgufValue::u32(uint32_t(v.bos)));
  if (v.eos != tokenizer::kNoToken) set("tokenizer.ggml.eos_token_id", GgufValue::u32(uint32_t(v.eos)));
  if (v.unk != tokenizer::kNoToken) set("tokenizer.ggml.unknown_token_id", GgufValue::u32(uint32_t(v.unk)));
  if (v.pad != tokenizer::kNoToken) set("tokenizer.ggml.padding_token_id", GgufValue::u32(uint32_t(v.pad)));
  set("tokenizer.ggml.add_bos_token", GgufValue::boolean(v.add_bos));
  set("tokenizer.ggml.add_eos_token", GgufValue::boolean(v.add_eos));
  if (auto t = m.chat_template_source()) set("tokenizer.chat_template", GgufValue::str(*t));
  return kv;
}

}  // namespace qb::model
