// ModelSpec from GGUF metadata. Keys are llama.cpp's ("<arch>.embedding_length", ...). Defaults are
// the ones llama.cpp applies when a key is absent; every value is range-checked so an impossible
// spec fails here with the key's name rather than as an out-of-bounds access in the forward pass.
#include "quantbench/model/model_spec.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "quantbench/core/error.h"

namespace qb::model {

std::string_view arch_name(Arch a) {
  switch (a) {
    case Arch::Llama: return "llama";
    case Arch::Qwen2: return "qwen2";
    case Arch::Qwen3: return "qwen3";
    case Arch::Gemma: return "gemma";
    case Arch::Gemma3: return "gemma3";
  }
  return "?";
}

std::string_view rope_style_name(RopeStyle s) { return s == RopeStyle::Normal ? "normal" : "neox"; }

namespace {

struct Reader {
  const formats::GgufFile& f;
  std::string prefix;  // "llama."

  std::string key(std::string_view k) const { return prefix + std::string(k); }
  int64_t need_int(std::string_view k) const { return f.get_int(key(k)); }
  int64_t int_or(std::string_view k, int64_t d) const { return f.find_int(key(k)).value_or(d); }
  double float_or(std::string_view k, double d) const { return f.find_float(key(k)).value_or(d); }
  [[noreturn]] void bad(std::string_view k, const std::string& why) const {
    fail("{}: metadata {}: {}", f.path(), key(k), why);
  }
  void positive(std::string_view k, int64_t v, int64_t max = int64_t(1) << 24) const {
    if (v <= 0 || v > max) bad(k, fmt::format("{} is out of range (1..{})", v, max));
  }
};

}  // namespace

ModelSpec ModelSpec::from_gguf(const formats::GgufFile& f) {
  ModelSpec s;
  s.gguf_arch = f.architecture();
  if (s.gguf_arch == "llama" || s.gguf_arch == "mistral") {
    s.arch = Arch::Llama;
  } else if (s.gguf_arch == "qwen2") {
    s.arch = Arch::Qwen2;
  } else if (s.gguf_arch == "qwen3") {
    s.arch = Arch::Qwen3;
  } else if (s.gguf_arch == "gemma") {
    s.arch = Arch::Gemma;
  } else if (s.gguf_arch == "gemma3") {
    s.arch = Arch::Gemma3;
  } else {
    fail("{}: architecture '{}' is not supported (llama, mistral, qwen2, qwen3, gemma, gemma3 are)", f.path(),
         s.gguf_arch);
  }
  const Reader r{f, s.gguf_arch + "."};

  s.n_embd = r.need_int("embedding_length");
  r.positive("embedding_length", s.n_embd);
  s.n_layer = r.need_int("block_count");
  r.positive("block_count", s.n_layer, 4096);
  s.n_ff = r.need_int("feed_forward_length");
  r.positive("feed_forward_length", s.n_ff);
  s.n_head = r.need_int("attention.head_count");
  r.positive("attention.head_count", s.n_head, 4096);
  s.n_head_kv = r.int_or("attention.head_count_kv", s.n_head);
  r.positive("attention.head_count_kv", s.n_head_kv, 4096);
  if (s.n_head % s.n_head_kv != 0)
    r.bad("attention.head_count_kv",
          fmt::format("head_count {} is not divisible by head_count_kv {}", s.n_head, s.n_head_kv));
  if (!f.has(r.key("attention.key_length")) && s.n_embd % s.n_head != 0)
    r.bad("attention.head_count",
          fmt::format("embedding_length {} is not divisible by head_count {} (and no key_length)", s.n_embd, s.n_head));
  s.head_dim_k = r.int_or("attention.key_length", s.n_embd / s.n_head);
  r.positive("attention.key_length", s.head_dim_k, 65536);
  s.head_dim_v = r.int_or("attention.value_length", s.head_dim_k);
  r.positive("attention.value_length", s.head_dim_v, 65536);
  s.n_ctx_train = r.int_or("context_length", 2048);
  r.positive("context_length", s.n_ctx_train, int64_t(1) << 30);
  s.rms_eps = float(r.float_or("attention.layer_norm_rms_epsilon", 1e-5));
  if (!(s.rms_eps > 0 && s.rms_eps < 1)) r.bad("attention.layer_norm_rms_epsilon", fmt::format("{} is out of range", s.rms_eps));

  // Rope.
  const bool neox = s.arch != Arch::Llama;
  s.rope_style = neox ? RopeStyle::Neox : RopeStyle::Normal;
  s.n_rot = r.int_or("rope.dimension_count", s.head_dim_k);
  if (s.n_rot <= 0 || s.n_rot > s.head_dim_k || s.n_rot % 2 != 0)
    r.bad("rope.dimension_count", fmt::format("{} must be even and in 2..key_length ({})", s.n_rot, s.head_dim_k));
  s.rope_theta = float(r.float_or("rope.freq_base", 10000.0));
  if (!(s.rope_theta > 1)) r.bad("rope.freq_base", fmt::format("{} must be > 1", s.rope_theta));
  s.rope_theta_swa = float(r.float_or("rope.freq_base_swa", s.arch == Arch::Gemma3 ? 10000.0 : s.rope_theta));
  if (!(s.rope_theta_swa > 1)) r.bad("rope.freq_base_swa", fmt::format("{} must be > 1", s.rope_theta_swa));
  const std::string scaling = f.find_string(r.key("rope.scaling.type")).value_or("none");
  double factor = r.float_or("rope.scaling.factor", 0.0);
  if (factor == 0.0 && f.has(r.key("rope.scale_linear"))) factor = r.float_or("rope.scale_linear", 1.0);
  if (scaling == "linear" || (scaling == "none" && factor > 0 && f.has(r.key("rope.scale_linear")))) {
    if (!(factor > 0)) r.bad("rope.scaling.factor", fmt::format("{} must be > 0", factor));
    s.rope_position_scale = float(1.0 / factor);
  } else if (scaling != "none" && !(scaling == "linear")) {
    r.bad("rope.scaling.type", fmt::format("'{}' is not supported (none, linear; llama-3 factors come as rope_freqs)", scaling));
  }
  s.has_rope_freqs = f.find_tensor("rope_freqs.weight") != nullptr;

  // Per-architecture structure.
  const auto* bq = f.find_tensor("blk.0.attn_q.bias");
  s.qkv_bias = s.arch == Arch::Qwen2 || bq != nullptr;
  s.qk_norm = s.arch == Arch::Qwen3 || s.arch == Arch::Gemma3;
  s.post_norms = s.arch == Arch::Gemma3;
  const bool gemma = s.arch == Arch::Gemma || s.arch == Arch::Gemma3;
  s.activation = gemma ? Activation::GeluTanh : Activation::SiLU;
  s.embd_scale = gemma ? float(std::sqrt(double(s.n_embd))) : 1.0f;
  // llama.cpp's rule: 1/sqrt(head_dim), except Gemma 3 27B (62 layers), whose query_pre_attn_scalar
  // is n_embd / n_head.
  const double default_scale = s.arch == Arch::Gemma3 && s.n_layer == 62
                                   ? 1.0 / std::sqrt(double(s.n_embd / s.n_head))
                                   : 1.0 / std::sqrt(double(s.head_dim_k));
  s.attn_scale = float(r.float_or("attention.scale", default_scale));
  if (!(s.attn_scale > 0)) r.bad("attention.scale", fmt::format("{} must be > 0", s.attn_scale));
  s.attn_softcap = float(r.float_or("attn_logit_softcapping", 0.0));
  s.final_softcap = float(r.float_or("final_logit_softcapping", 0.0));
  if (s.attn_softcap < 0) r.bad("attn_logit_softcapping", "must be >= 0");
  if (s.final_softcap < 0) r.bad("final_logit_softcapping", "must be >= 0");

  s.layer_swa.assign(size_t(s.n_layer), false);
  if (s.arch == Arch::Gemma3) {
    s.sliding_window = r.int_or("attention.sliding_window", 0);
    if (s.sliding_window < 0) r.bad("attention.sliding_window", "must be >= 0");
    // llama.cpp's gemma3: five local layers, then one global (layer il is global when il % 6 == 5).
    // attention.sliding_window_pattern, where present, overrides it: an integer period, or one bool
    // per layer (true: sliding window), as gguf-py writes it.
    const formats::GgufValue* pat = f.find(r.key("attention.sliding_window_pattern"));
    if (pat && pat->as_array()) {
      const auto* arr = pat->as_array();
      if (int64_t(arr->items.size()) != s.n_layer)
        r.bad("attention.sliding_window_pattern",
              fmt::format("has {} entries for {} layers", arr->items.size(), s.n_layer));
      for (size_t il = 0; il < arr->items.size(); ++il) {
        const auto* b = std::get_if<bool>(&arr->items[il].v);
        if (!b) r.bad("attention.sliding_window_pattern", "array entries must be bool");
        s.layer_swa[il] = *b && s.sliding_window > 0;
      }
    } else {
      const int64_t period = r.int_or("attention.sliding_window_pattern", 6);
      if (period <= 0) r.bad("attention.sliding_window_pattern", "must be > 0");
      if (s.sliding_window > 0)
        for (int64_t il = 0; il < s.n_layer; ++il) s.layer_swa[size_t(il)] = (il % period) < period - 1;
    }
  }

  // Vocabulary and embeddings: the vocab is what token_embd has rows for.
  const auto& emb = f.tensor("token_embd.weight");
  if (emb.shape.size() != 2 || emb.shape[0] != s.n_embd)
    fail("{}: tensor token_embd.weight: shape must be [{}, n_vocab] (ggml order), got {}", f.path(), s.n_embd,
         fmt::join(emb.shape, "x"));
  s.n_vocab = emb.shape[1];
  if (s.n_vocab <= 0 || s.n_vocab > (int64_t(1) << 31) - 1)
    fail("{}: tensor token_embd.weight: vocabulary size {} is out of range", f.path(), s.n_vocab);
  s.tied_embeddings = f.find_tensor("output.weight") == nullptr;

  auto token_id = [&](std::string_view k) -> int32_t {
    auto v = f.find_uint(std::string(k));
    if (!v || *v >= uint64_t(s.n_vocab)) return -1;  // absent or a placeholder such as 4294967295
    return int32_t(*v);
  };
  s.bos_id = token_id("tokenizer.ggml.bos_token_id");
  for (auto k : {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"}) {
    int32_t id = token_id(k);
    if (id >= 0 && std::find(s.stop_ids.begin(), s.stop_ids.end(), id) == s.stop_ids.end()) s.stop_ids.push_back(id);
  }
  return s;
}

std::string ModelSpec::describe() const {
  std::string swa;
  if (sliding_window > 0) {
    int64_t n = 0;
    for (bool b : layer_swa) n += b;
    swa = fmt::format(", sliding window {} on {}/{} layers (rope base {})", sliding_window, n, n_layer, rope_theta_swa);
  }
  return fmt::format(
      "{} ({}): vocab {}, d {}, {} layers, {} heads / {} kv heads, head dim {}/{}, ffn {}, ctx {}, rms eps {}, "
      "rope {} base {} dims {}{}{}{}{}{}{}{}{}",
      arch_name(arch), gguf_arch, n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim_k, head_dim_v, n_ff,
      n_ctx_train, rms_eps, rope_style_name(rope_style), rope_theta, n_rot,
      rope_position_scale != 1.0f ? fmt::format(" linear x{}", 1.0f / rope_position_scale) : "",
      has_rope_freqs ? " with rope_freqs" : "", qkv_bias ? ", qkv bias" : "", qk_norm ? ", qk-norm" : "",
      post_norms ? ", post-norms" : "", activation == Activation::GeluTanh ? ", GeGLU(tanh)" : ", SwiGLU",
      final_softcap > 0 ? fmt::format(", final softcap {}", final_softcap) : "", swa,
      tied_embeddings ? ", tied embeddings" : "");
}

}  // namespace qb::model
