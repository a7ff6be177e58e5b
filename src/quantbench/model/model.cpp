// Weight loading: look tensors up by llama.cpp's names, check shape and type against the spec, wrap
// matrices as views into the mapping and decode vectors. The GgufFile (and so the mapping) is owned
// by the Model, which keeps every view valid for the Model's lifetime.
#include "quantbench/model/model.h"

#include <fmt/format.h>

#include <cstring>
#include <map>

#include "quantbench/core/error.h"
#include "quantbench/quant/qformat/ggml_blocks.h"
#include "quantbench/quant/writers/gguf_qb_tensor.h"
#include "quantbench/runtime/cpu/matmul_w8a8.h"

namespace qb::model {

using formats::GgufFile;
using formats::GgufTensorInfo;

namespace {

struct Loader {
  const GgufFile& f;
  std::vector<std::shared_ptr<const quant::QuantizedTensor>>* storage;

  [[noreturn]] void bad(const std::string& name, const std::string& why) const {
    fail("{}: tensor '{}': {}", f.path(), name, why);
  }

  const GgufTensorInfo& get(const std::string& name, std::vector<int64_t> shape) const {
    const GgufTensorInfo* t = f.find_tensor(name);
    if (!t) fail("{}: tensor '{}' is missing", f.path(), name);
    if (t->shape != shape)
      bad(name, fmt::format("shape {} (ggml order) does not match the expected {}", fmt::join(t->shape, "x"),
                            fmt::join(shape, "x")));
    if (!qformat::can_dequantize(t->type))
      bad(name, fmt::format("type {} cannot be dequantized by this build", formats::ggml_type_name(t->type)));
    std::optional<std::string> nf;
    try {
      nf = qformat::find_non_finite(t->type, t->data, t->n_elements());
    } catch (const std::exception& e) {
      bad(name, e.what());
    }
    if (nf) bad(name, "non-finite value: " + *nf);
    return *t;
  }

  WeightMatrix matrix(const std::string& name, int64_t n_in, int64_t n_out) const {
    if (!f.find_tensor(name) && quant::has_qb_tensor(f, name)) {
      auto q = std::make_shared<const quant::QuantizedTensor>(quant::read_qb_tensor(f, name));
      if (q->rows != n_out || q->cols != n_in)
        bad(name, fmt::format("quantized shape {}x{} does not match the expected {}x{}", q->rows, q->cols, n_out, n_in));
      WeightMatrix w;
      w.type = formats::GgmlType::F32;  // unused when quantized is set
      w.n_in = n_in;
      w.n_out = n_out;
      w.quantized = q.get();
      // W8A8 matrices name the activation quantization that must run with them (gguf_output.h).
      if (auto a = f.find_string("quantbench.tensor." + name + ".activations")) {
        try {
          w.act = runtime::cpu::parse_act_quant(*a, "activations");
          runtime::cpu::check_w8a8(w);
        } catch (const std::exception& e) {
          bad(name, e.what());
        }
      }
      storage->push_back(std::move(q));
      return w;
    }
    const auto& t = get(name, {n_in, n_out});
    WeightMatrix w;
    w.type = t.type;
    w.n_in = n_in;
    w.n_out = n_out;
    w.data = t.data;
    w.row_bytes = formats::ggml_row_bytes(t.type, n_in);
    if (w.row_bytes * size_t(n_out) != t.nbytes) bad(name, "byte size does not match its shape");
    return w;
  }

  std::vector<float> vec(const std::string& name, int64_t n) const {
    const auto& t = get(name, {n});
    std::vector<float> v(static_cast<size_t>(n));
    qformat::dequantize_row(t.type, t.data, v.data(), n);
    return v;
  }
};

}  // namespace

std::shared_ptr<const Model> Model::load(const std::string& path) {
  return load(std::shared_ptr<const GgufFile>(GgufFile::open(path)));
}

std::shared_ptr<const Model> Model::load(std::shared_ptr<const GgufFile> file) {
  std::shared_ptr<Model> m(new Model());
  m->file_ = std::move(file);
  const GgufFile& f = *m->file_;
  m->spec_ = ModelSpec::from_gguf(f);
  const ModelSpec& s = m->spec_;
  const Loader L{f, &m->quantized_storage};

  m->token_embd = L.matrix("token_embd.weight", s.n_embd, s.n_vocab);
  m->output = s.tied_embeddings ? m->token_embd : L.matrix("output.weight", s.n_embd, s.n_vocab);
  m->output_norm = L.vec("output_norm.weight", s.n_embd);
  if (s.has_rope_freqs) m->rope_freqs = L.vec("rope_freqs.weight", s.n_rot / 2);

  m->layers.resize(size_t(s.n_layer));
  for (int64_t il = 0; il < s.n_layer; ++il) {
    LayerWeights& w = m->layers[size_t(il)];
    auto n = [&](const char* what) { return fmt::format("blk.{}.{}", il, what); };
    w.attn_norm = L.vec(n("attn_norm.weight"), s.n_embd);
    w.ffn_norm = L.vec(n("ffn_norm.weight"), s.n_embd);
    w.wq = L.matrix(n("attn_q.weight"), s.n_embd, s.q_dim());
    w.wk = L.matrix(n("attn_k.weight"), s.n_embd, s.kv_dim_k());
    w.wv = L.matrix(n("attn_v.weight"), s.n_embd, s.kv_dim_v());
    w.wo = L.matrix(n("attn_output.weight"), s.n_head * s.head_dim_v, s.n_embd);
    w.w_gate = L.matrix(n("ffn_gate.weight"), s.n_embd, s.n_ff);
    w.w_up = L.matrix(n("ffn_up.weight"), s.n_embd, s.n_ff);
    w.w_down = L.matrix(n("ffn_down.weight"), s.n_ff, s.n_embd);
    if (s.qkv_bias) {
      w.bq = L.vec(n("attn_q.bias"), s.q_dim());
      w.bk = L.vec(n("attn_k.bias"), s.kv_dim_k());
      w.bv = L.vec(n("attn_v.bias"), s.kv_dim_v());
    }
    if (s.qk_norm) {
      w.q_norm = L.vec(n("attn_q_norm.weight"), s.head_dim_k);
      w.k_norm = L.vec(n("attn_k_norm.weight"), s.head_dim_k);
    }
    if (s.post_norms) {
      w.post_attn_norm = L.vec(n("post_attention_norm.weight"), s.n_embd);
      w.post_ffn_norm = L.vec(n("post_ffw_norm.weight"), s.n_embd);
    }
  }

  for (const auto& t : f.tensors())
    if (t.name.find(".qb_") == std::string::npos) m->n_params_stored_ += t.n_elements();
  for (const auto& q : m->quantized_storage) m->n_params_stored_ += q->rows * q->cols;
  m->n_params_unique_ = m->n_params_stored_;
  if (const auto* out = f.find_tensor("output.weight")) {
    const auto& emb = f.tensor("token_embd.weight");
    if (out->type == emb.type && out->shape == emb.shape && out->nbytes == emb.nbytes &&
        std::memcmp(out->data, emb.data, out->nbytes) == 0)
      m->n_params_unique_ -= out->n_elements();
  }
  return m;
}

void Model::embedding_row(int32_t token, float* out) const {
  if (token < 0 || int64_t(token) >= spec_.n_vocab)
    fail("{}: token id {} is outside the vocabulary (0..{})", file_->path(), token, spec_.n_vocab - 1);
  qformat::dequantize_row(token_embd.type, token_embd.data + size_t(token) * token_embd.row_bytes, out,
                          spec_.n_embd);
}

std::string Model::describe_weight_types() const {
  std::map<std::string, int> count;
  auto add = [&](const WeightMatrix& w) {
    ++count[w.quantized ? quant::layout_name(w.quantized->layout) : std::string(formats::ggml_type_name(w.type))];
  };
  add(token_embd);
  if (!spec_.tied_embeddings) add(output);
  for (const auto& l : layers)
    for (const auto* w : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) add(*w);
  std::string s;
  for (const auto& [k, v] : count) s += fmt::format("{}{} x {}", s.empty() ? "" : ", ", k, v);
  return s;
}

}  // namespace qb::model
