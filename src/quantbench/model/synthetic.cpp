// Synthetic shape table (see synthetic.h). Dims are copied from each model's config.json on the
// Hugging Face hub (meta-llama/Llama-2-7b-hf, meta-llama/Meta-Llama-3-8B, Qwen/Qwen2.5-7B); "tiny"
// is ours: every width a multiple of 128 so the GPU's fast kernels run, small enough for the CPU.
#include "quantbench/model/synthetic.h"

#include <fmt/format.h>

#include <cmath>
#include <cstring>

#include "quantbench/core/error.h"
#include "quantbench/core/rng.h"
#include "quantbench/formats/gguf_writer.h"

namespace qb::model {
namespace {

constexpr std::string_view kPrefix = "synthetic:";

struct Row {
  const char* name;
  const char* source;
  const char* arch;  // gguf architecture
  int64_t vocab, embd, layers, heads, kv_heads, ff, ctx;
  float eps, theta;
};

// vocab, hidden, layers, heads, kv heads, intermediate, max positions, rms eps, rope theta.
constexpr Row kRows[] = {
    {"llama2-7b", "meta-llama/Llama-2-7b-hf config.json", "llama", 32000, 4096, 32, 32, 32, 11008, 4096, 1e-5f,
     10000.0f},
    {"llama3-8b", "meta-llama/Meta-Llama-3-8B config.json", "llama", 128256, 4096, 32, 32, 8, 14336, 8192, 1e-5f,
     500000.0f},
    {"qwen2.5-7b", "Qwen/Qwen2.5-7B config.json", "qwen2", 152064, 3584, 28, 28, 4, 18944, 32768, 1e-6f,
     1000000.0f},
    {"tiny", "quantbench test shape (widths multiples of 128)", "llama", 512, 256, 2, 4, 2, 768, 1024, 1e-5f,
     10000.0f},
};

ModelSpec spec_of(const Row& r) {
  ModelSpec s;
  s.gguf_arch = r.arch;
  const bool qwen = std::string_view(r.arch) == "qwen2";
  s.arch = qwen ? Arch::Qwen2 : Arch::Llama;
  s.n_vocab = r.vocab;
  s.n_embd = r.embd;
  s.n_layer = r.layers;
  s.n_head = r.heads;
  s.n_head_kv = r.kv_heads;
  s.head_dim_k = s.head_dim_v = r.embd / r.heads;
  s.n_ff = r.ff;
  s.n_ctx_train = r.ctx;
  s.rms_eps = r.eps;
  s.rope_style = qwen ? RopeStyle::Neox : RopeStyle::Normal;
  s.n_rot = s.head_dim_k;
  s.rope_theta = s.rope_theta_swa = r.theta;
  s.qkv_bias = qwen;
  s.attn_scale = float(1.0 / std::sqrt(double(s.head_dim_k)));
  s.layer_swa.assign(size_t(r.layers), false);
  s.bos_id = 1;
  s.stop_ids = {2};
  return s;
}

}  // namespace

bool is_synthetic(std::string_view arg) { return arg.substr(0, kPrefix.size()) == kPrefix; }

std::vector<std::string> synthetic_names() {
  std::vector<std::string> v;
  for (const auto& r : kRows) v.emplace_back(r.name);
  return v;
}

SyntheticShape synthetic_shape(std::string_view arg) {
  const std::string_view name = is_synthetic(arg) ? arg.substr(kPrefix.size()) : arg;
  for (const auto& r : kRows)
    if (name == r.name) return {r.name, r.source, spec_of(r)};
  fail("unknown synthetic model '{}' (known: synthetic:{})", name, fmt::join(synthetic_names(), ", synthetic:"));
}

int64_t synthetic_parameters(const ModelSpec& s) {
  const int64_t per_layer = s.n_embd * (s.q_dim() + s.kv_dim_k() + s.kv_dim_v()) + s.n_head * s.head_dim_v * s.n_embd +
                            3 * s.n_embd * s.n_ff;
  return s.n_layer * per_layer + 2 * s.n_vocab * s.n_embd;
}

void make_synthetic_gguf(const SyntheticShape& shape, uint64_t seed, const std::string& path, int64_t max_params) {
  const ModelSpec& s = shape.spec;
  const int64_t n = synthetic_parameters(s);
  QB_CHECK(n <= max_params,
           "synthetic:{} has {} parameters: too large for the CPU backend (host RAM; limit {}); use --backend cuda",
           shape.name, n, max_params);
  formats::GgufWriter w;
  const std::string a = s.gguf_arch + ".";
  w.set("general.architecture", formats::GgufValue::str(s.gguf_arch));
  w.set("general.name", formats::GgufValue::str("synthetic:" + shape.name));
  w.set(a + "context_length", formats::GgufValue::u32(uint32_t(s.n_ctx_train)));
  w.set(a + "embedding_length", formats::GgufValue::u32(uint32_t(s.n_embd)));
  w.set(a + "block_count", formats::GgufValue::u32(uint32_t(s.n_layer)));
  w.set(a + "feed_forward_length", formats::GgufValue::u32(uint32_t(s.n_ff)));
  w.set(a + "attention.head_count", formats::GgufValue::u32(uint32_t(s.n_head)));
  w.set(a + "attention.head_count_kv", formats::GgufValue::u32(uint32_t(s.n_head_kv)));
  w.set(a + "attention.layer_norm_rms_epsilon", formats::GgufValue::f32(s.rms_eps));
  w.set(a + "rope.freq_base", formats::GgufValue::f32(s.rope_theta));
  w.set("tokenizer.ggml.bos_token_id", formats::GgufValue::u32(1));
  w.set("tokenizer.ggml.eos_token_id", formats::GgufValue::u32(2));
  // Normal draws by Box-Muller from core/rng.h: std::normal_distribution's output is left to the
  // library, and a seed must give the same model everywhere.
  Rng rng(seed);
  auto nd = [&rng] {
    const double u1 = 1.0 - rng.uniform(), u2 = rng.uniform();  // u1 in (0, 1]: log(u1) is finite
    return float(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
  };
  auto f32 = [&](const std::string& name, std::vector<int64_t> dims, float sd, float mean) {
    int64_t count = 1;
    for (int64_t d : dims) count *= d;
    std::vector<uint8_t> bytes(size_t(count) * 4);
    for (int64_t i = 0; i < count; ++i) {
      const float v = mean + sd * nd();
      std::memcpy(bytes.data() + 4 * i, &v, 4);
    }
    w.add_tensor_owned(name, formats::GgmlType::F32, std::move(dims), std::move(bytes));
  };
  auto mat = [&](const std::string& name, int64_t n_out, int64_t n_in) {
    f32(name, {n_in, n_out}, float(1.0 / std::sqrt(double(n_in))), 0.0f);
  };
  f32("token_embd.weight", {s.n_embd, s.n_vocab}, 1.0f, 0.0f);
  for (int64_t il = 0; il < s.n_layer; ++il) {
    const std::string p = fmt::format("blk.{}.", il);
    f32(p + "attn_norm.weight", {s.n_embd}, 0.1f, 1.0f);
    f32(p + "ffn_norm.weight", {s.n_embd}, 0.1f, 1.0f);
    mat(p + "attn_q.weight", s.q_dim(), s.n_embd);
    mat(p + "attn_k.weight", s.kv_dim_k(), s.n_embd);
    mat(p + "attn_v.weight", s.kv_dim_v(), s.n_embd);
    mat(p + "attn_output.weight", s.n_embd, s.n_head * s.head_dim_v);
    mat(p + "ffn_gate.weight", s.n_ff, s.n_embd);
    mat(p + "ffn_up.weight", s.n_ff, s.n_embd);
    mat(p + "ffn_down.weight", s.n_embd, s.n_ff);
    if (s.qkv_bias) {
      f32(p + "attn_q.bias", {s.q_dim()}, 0.5f, 0.0f);
      f32(p + "attn_k.bias", {s.kv_dim_k()}, 0.5f, 0.0f);
      f32(p + "attn_v.bias", {s.kv_dim_v()}, 0.5f, 0.0f);
    }
  }
  f32("output_norm.weight", {s.n_embd}, 0.1f, 1.0f);
  mat("output.weight", s.n_vocab, s.n_embd);
  w.write(path);
}

}  // namespace qb::model
