// HF checkpoint -> ModelSpec + GGUF-named tensors; see hf_model_map.h. Defaults for absent fields are
// the ones the transformers config class of each model_type applies, so a config that transformers
// loads means the same here.
#include "quantbench/model/hf_model_map.h"

#include <fmt/format.h>

#include <cmath>
#include <numbers>

#include <nlohmann/json.hpp>
#include <set>

#include "quantbench/core/error.h"

namespace qb::model {

using formats::GgmlType;
using formats::HfConfig;

int64_t SourceTensor::n_elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::vector<float> llama3_rope_factors(double theta, int64_t n_rot, double factor, double low_freq_factor,
                                       double high_freq_factor, double original_max_positions) {
  const double low_wavelen = original_max_positions / low_freq_factor;
  const double high_wavelen = original_max_positions / high_freq_factor;
  std::vector<float> out;
  for (int64_t i = 0; i < n_rot; i += 2) {
    const double freq = 1.0 / std::pow(theta, double(i) / double(n_rot));
    const double wavelen = 2 * std::numbers::pi / freq;
    if (wavelen < high_wavelen) {
      out.push_back(1.0f);
    } else if (wavelen > low_wavelen) {
      out.push_back(float(factor));
    } else {
      const double s = (original_max_positions / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
      out.push_back(float(1.0 / ((1 - s) / factor + s)));
    }
  }
  return out;
}

namespace {

[[noreturn]] void bad_field(const HfConfig& c, const std::string& field, const std::string& why) {
  fail("{}: field '{}': {}", c.source(), field, why);
}

int64_t need_positive(const HfConfig& c, const char* field, int64_t max = int64_t(1) << 24) {
  const int64_t v = c.get_int(field);
  if (v <= 0 || v > max) bad_field(c, field, fmt::format("{} is out of range (1..{})", v, max));
  return v;
}

int64_t positive_or(const HfConfig& c, const char* field, int64_t fallback, int64_t max = int64_t(1) << 24) {
  if (!c.has(field)) return fallback;
  return need_positive(c, field, max);
}

// The rope scaling object: rope_parameters (transformers >= 5) or rope_scaling (earlier), with the
// type under rope_type or (older still) type. "default" and absence both mean none.
void apply_rope_scaling(ModelSpec& s, const HfConfig& c, const std::optional<HfConfig>& rs, const std::string& where,
                        std::vector<float>& rope_freqs) {
  if (!rs) return;
  std::string type = rs->find_string("rope_type").value_or(rs->find_string("type").value_or("default"));
  if (type == "default") return;
  if (type == "linear") {
    const double f = rs->get_float("factor");
    if (!(f > 0)) bad_field(c, where + ".factor", fmt::format("{} must be > 0", f));
    s.rope_position_scale = float(1.0 / f);
  } else if (type == "llama3" && s.arch == Arch::Llama) {
    const double f = rs->get_float("factor"), lo = rs->get_float("low_freq_factor"),
                 hi = rs->get_float("high_freq_factor"),
                 old = rs->get_float("original_max_position_embeddings");
    if (!(f > 0 && lo > 0 && hi > lo && old > 0))
      bad_field(c, where, fmt::format("llama3 parameters out of range (factor {}, low {}, high {}, original {})", f, lo,
                                      hi, old));
    rope_freqs = llama3_rope_factors(s.rope_theta, s.n_rot, f, lo, hi, old);
    s.has_rope_freqs = true;
  } else {
    bad_field(c, where + ".rope_type", fmt::format("'{}' is not supported (default, linear, llama3 for llama)", type));
  }
}

ModelSpec spec_from_config(const HfConfig& c, HfModelMap& out) {
  ModelSpec s;
  const std::string mt = c.get_string("model_type");
  bool tied_default = false;
  double theta_default = 10000.0;
  if (mt == "llama" || mt == "mistral") {
    s.arch = Arch::Llama;
    s.gguf_arch = "llama";  // llama.cpp converts Mistral checkpoints to the llama architecture
  } else if (mt == "qwen2") {
    s.arch = Arch::Qwen2;
    s.gguf_arch = "qwen2";
  } else if (mt == "qwen3") {
    s.arch = Arch::Qwen3;
    s.gguf_arch = "qwen3";
  } else if (mt == "gemma") {
    s.arch = Arch::Gemma;
    s.gguf_arch = "gemma";
    tied_default = true;
  } else if (mt == "gemma3_text") {
    s.arch = Arch::Gemma3;
    s.gguf_arch = "gemma3";
    tied_default = true;
    theta_default = 1000000.0;
  } else if (mt == "gemma3") {
    bad_field(c, "model_type", "'gemma3' (the multimodal checkpoint) is not supported; use a text-only "
                               "Gemma3ForCausalLM checkpoint (model_type gemma3_text)");
  } else {
    bad_field(c, "model_type",
              fmt::format("'{}' is not supported (llama, mistral, qwen2, qwen3, gemma, gemma3_text are)", mt));
  }
  const bool gemma = s.arch == Arch::Gemma || s.arch == Arch::Gemma3;

  s.n_vocab = need_positive(c, "vocab_size", (int64_t(1) << 31) - 1);
  s.n_embd = need_positive(c, "hidden_size");
  s.n_layer = need_positive(c, "num_hidden_layers", 4096);
  s.n_ff = need_positive(c, "intermediate_size");
  s.n_head = need_positive(c, "num_attention_heads", 4096);
  s.n_head_kv = positive_or(c, "num_key_value_heads", s.n_head, 4096);
  if (s.n_head % s.n_head_kv != 0)
    bad_field(c, "num_key_value_heads",
              fmt::format("num_attention_heads {} is not divisible by {}", s.n_head, s.n_head_kv));
  if (!c.has("head_dim") && s.n_embd % s.n_head != 0)
    bad_field(c, "num_attention_heads",
              fmt::format("hidden_size {} is not divisible by {} (and no head_dim)", s.n_embd, s.n_head));
  s.head_dim_k = positive_or(c, "head_dim", s.n_embd / s.n_head, 65536);
  s.head_dim_v = s.head_dim_k;
  s.n_ctx_train = positive_or(c, "max_position_embeddings", 2048, int64_t(1) << 30);
  s.rms_eps = float(c.get_float_or("rms_norm_eps", 1e-6));
  if (!(s.rms_eps > 0 && s.rms_eps < 1)) bad_field(c, "rms_norm_eps", fmt::format("{} is out of range", s.rms_eps));
  if (c.has("partial_rotary_factor") && c.get_float("partial_rotary_factor") != 1.0)
    bad_field(c, "partial_rotary_factor", "partial rotary embeddings are not supported");

  // Activation: hidden_activation (gemma) wins over hidden_act, as in transformers.
  const std::string act_field = gemma && c.has("hidden_activation") ? "hidden_activation" : "hidden_act";
  const std::string act = c.find_string(act_field).value_or(gemma ? "gelu_pytorch_tanh" : "silu");
  if (gemma) {
    // Gemma v1 configs say hidden_act "gelu" with hidden_activation null; transformers then runs the
    // tanh approximation, and so do we.
    if (act != "gelu_pytorch_tanh" && act != "gelu_tanh" && !(s.arch == Arch::Gemma && act == "gelu"))
      bad_field(c, act_field, fmt::format("'{}' is not supported (gelu_pytorch_tanh)", act));
    s.activation = Activation::GeluTanh;
  } else {
    if (act != "silu") bad_field(c, act_field, fmt::format("'{}' is not supported (silu)", act));
    s.activation = Activation::SiLU;
  }

  // Rope: llama/mistral rows are permuted below, so they rotate adjacent pairs like llama.cpp's GGUF;
  // the others rotate halves in both worlds.
  s.rope_style = s.arch == Arch::Llama ? RopeStyle::Normal : RopeStyle::Neox;
  s.n_rot = s.head_dim_k;
  if (s.n_rot % 2 != 0) bad_field(c, "head_dim", fmt::format("{} must be even for rope", s.n_rot));
  std::optional<HfConfig> scaling;
  std::string scaling_where;
  if (c.has("rope_parameters") && s.arch == Arch::Gemma3) {
    const HfConfig rp = c.get_object("rope_parameters");
    const HfConfig full = rp.get_object("full_attention"), local = rp.get_object("sliding_attention");
    s.rope_theta = float(full.get_float("rope_theta"));
    s.rope_theta_swa = float(local.get_float("rope_theta"));
    if (local.find_string("rope_type").value_or("default") != "default")
      bad_field(c, "rope_parameters.sliding_attention.rope_type", "only default rope is supported on local layers");
    scaling = full;
    scaling_where = "rope_parameters.full_attention";
  } else if (c.has("rope_parameters")) {
    scaling = c.get_object("rope_parameters");
    scaling_where = "rope_parameters";
    s.rope_theta = float(scaling->get_float_or("rope_theta", c.get_float_or("rope_theta", theta_default)));
  } else {
    s.rope_theta = float(c.get_float_or("rope_theta", theta_default));
    scaling = c.find_object("rope_scaling");
    scaling_where = "rope_scaling";
    if (s.arch == Arch::Gemma3) s.rope_theta_swa = float(c.get_float_or("rope_local_base_freq", 10000.0));
  }
  if (s.arch != Arch::Gemma3) s.rope_theta_swa = s.rope_theta;
  if (!(s.rope_theta > 1)) bad_field(c, "rope_theta", fmt::format("{} must be > 1", s.rope_theta));
  if (!(s.rope_theta_swa > 1)) bad_field(c, "rope_local_base_freq", fmt::format("{} must be > 1", s.rope_theta_swa));
  apply_rope_scaling(s, c, scaling, scaling_where, out.rope_freqs);

  // Structure.
  const bool attn_bias = c.find_bool("attention_bias").value_or(false);
  if (s.arch == Arch::Qwen2) {
    s.qkv_bias = true;
    if (c.find_bool("use_sliding_window").value_or(false))
      bad_field(c, "use_sliding_window", "Qwen2 sliding-window attention is not supported");
  } else if (attn_bias) {
    bad_field(c, "attention_bias", "true is not supported for this architecture (o_proj bias)");
  }
  if (c.find_bool("mlp_bias").value_or(false)) bad_field(c, "mlp_bias", "true is not supported");
  s.qk_norm = s.arch == Arch::Qwen3 || s.arch == Arch::Gemma3;
  s.post_norms = s.arch == Arch::Gemma3;
  s.embd_scale = gemma ? float(std::sqrt(double(s.n_embd))) : 1.0f;
  double scale = 1.0 / std::sqrt(double(s.head_dim_k));
  if (s.arch == Arch::Gemma3) {
    const double q = c.get_float_or("query_pre_attn_scalar", 256.0);
    if (!(q > 0)) bad_field(c, "query_pre_attn_scalar", fmt::format("{} must be > 0", q));
    scale = 1.0 / std::sqrt(q);
    s.attn_softcap = float(c.get_float_or("attn_logit_softcapping", 0.0));
    s.final_softcap = float(c.get_float_or("final_logit_softcapping", 0.0));
    if (s.attn_softcap < 0) bad_field(c, "attn_logit_softcapping", "must be >= 0");
    if (s.final_softcap < 0) bad_field(c, "final_logit_softcapping", "must be >= 0");
  }
  s.attn_scale = float(scale);

  s.layer_swa.assign(size_t(s.n_layer), false);
  if (s.arch == Arch::Gemma3) {
    s.sliding_window = positive_or(c, "sliding_window", 4096, int64_t(1) << 30);
    if (c.has("layer_types")) {
      const auto types = c.get_string_array("layer_types");
      if (int64_t(types.size()) != s.n_layer)
        bad_field(c, "layer_types", fmt::format("has {} entries for {} layers", types.size(), s.n_layer));
      for (size_t il = 0; il < types.size(); ++il) {
        if (types[il] != "sliding_attention" && types[il] != "full_attention")
          bad_field(c, "layer_types", fmt::format("entry {} is '{}'", il, types[il]));
        s.layer_swa[il] = types[il] == "sliding_attention";
      }
    } else {
      const int64_t period = positive_or(c, "sliding_window_pattern", 6, 4096);
      for (int64_t il = 0; il < s.n_layer; ++il) s.layer_swa[size_t(il)] = (il + 1) % period != 0;
    }
  } else if (mt == "mistral" && c.has("sliding_window")) {
    s.sliding_window = need_positive(c, "sliding_window", int64_t(1) << 30);
    s.layer_swa.assign(size_t(s.n_layer), true);
  }

  s.tied_embeddings = c.find_bool("tie_word_embeddings").value_or(tied_default);
  auto token_id = [&](int64_t v) -> int32_t { return v >= 0 && v < s.n_vocab ? int32_t(v) : -1; };
  if (auto b = c.find_int("bos_token_id")) s.bos_id = token_id(*b);
  if (c.has("eos_token_id")) {
    std::vector<int64_t> eos;
    if (c.json().at("eos_token_id").is_array()) eos = c.get_int_array("eos_token_id");
    else eos.push_back(c.get_int("eos_token_id"));
    for (int64_t e : eos)
      if (int32_t id = token_id(e); id >= 0) s.stop_ids.push_back(id);
  }
  return s;
}

std::optional<GgmlType> ggml_type_of(DType d) {
  switch (d) {
    case DType::F32: return GgmlType::F32;
    case DType::F16: return GgmlType::F16;
    case DType::BF16: return GgmlType::BF16;
    default: return std::nullopt;
  }
}

}  // namespace

HfModelMap map_hf_checkpoint(const HfCheckpoint& ck) {
  HfModelMap m;
  m.spec = spec_from_config(ck.config(), m);
  const ModelSpec& s = m.spec;
  m.permute_qk = s.arch == Arch::Llama;
  m.norm_plus_one = s.arch == Arch::Gemma || s.arch == Arch::Gemma3;

  std::map<std::string, std::string> names;  // HF name -> GGUF name
  names["model.embed_tokens.weight"] = "token_embd.weight";
  names["model.norm.weight"] = "output_norm.weight";
  if (!s.tied_embeddings) names["lm_head.weight"] = "output.weight";
  for (int64_t il = 0; il < s.n_layer; ++il) {
    const std::string h = fmt::format("model.layers.{}.", il), g = fmt::format("blk.{}.", il);
    auto add = [&](const char* hf, const char* gg) { names[h + hf] = g + gg; };
    add("input_layernorm.weight", "attn_norm.weight");
    if (s.post_norms) {
      add("post_attention_layernorm.weight", "post_attention_norm.weight");
      add("pre_feedforward_layernorm.weight", "ffn_norm.weight");
      add("post_feedforward_layernorm.weight", "post_ffw_norm.weight");
    } else {
      add("post_attention_layernorm.weight", "ffn_norm.weight");
    }
    for (const char* p : {"q", "k", "v"}) {
      names[h + "self_attn." + p + "_proj.weight"] = g + "attn_" + p + ".weight";
      if (s.qkv_bias) names[h + "self_attn." + p + "_proj.bias"] = g + "attn_" + p + ".bias";
    }
    add("self_attn.o_proj.weight", "attn_output.weight");
    if (s.qk_norm) {
      add("self_attn.q_norm.weight", "attn_q_norm.weight");
      add("self_attn.k_norm.weight", "attn_k_norm.weight");
    }
    add("mlp.gate_proj.weight", "ffn_gate.weight");
    add("mlp.up_proj.weight", "ffn_up.weight");
    add("mlp.down_proj.weight", "ffn_down.weight");
  }

  for (const auto& shard : ck.shards()) {
    for (const auto& t : shard->tensors()) {
      auto it = names.find(t.name);
      if (it == names.end()) {
        // Ignored on purpose: rope caches some exporters save, and the lm_head of a tied model
        // (transformers ties it to the embeddings whatever the file holds).
        if (t.name.find("rotary_emb.inv_freq") != std::string::npos) continue;
        if (t.name == "lm_head.weight" && s.tied_embeddings) continue;
        fail("{}: tensor '{}' is not used by the {} mapping (a feature this build does not support?)", shard->path(),
             t.name, arch_name(s.arch));
      }
      const auto type = ggml_type_of(t.dtype);
      if (!type)
        fail("{}: tensor '{}': dtype {} is not supported for weights (F32, F16, BF16 are)", shard->path(), t.name,
             dtype_name(t.dtype));
      SourceTensor st;
      st.file = shard->path();
      st.stored_name = t.name;
      st.type = *type;
      st.shape = t.ggml_shape();
      st.data = t.data;
      st.nbytes = t.nbytes();
      m.tensors[it->second] = std::move(st);
    }
  }
  // Missing tensors are reported by the loader, which knows the shapes; name them in HF terms here.
  for (const auto& [hf, gg] : names)
    if (!m.tensors.count(gg)) fail("{}: tensor '{}' is missing (needed by {} with this config.json)", ck.dir(), hf,
                                   arch_name(s.arch));
  return m;
}

}  // namespace qb::model
