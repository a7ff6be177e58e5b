// Weight loading: look tensors up by llama.cpp's names (a Hugging Face checkpoint's are translated by
// hf_model_map first), check shape and type against the spec, wrap matrices as views into the mapping
// and decode vectors. The GgufFile or HfCheckpoint (and so the mappings) and any transformed copies
// are owned by the Model through shared pointers, which keeps every view valid for the Model's
// lifetime and for copies of it.
#include "quantbench/model/model.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "quantbench/core/error.h"
#include "quantbench/core/sha256.h"
#include "quantbench/quant/qformat/ggml_blocks.h"
#include "quantbench/quant/writers/gguf_qb_tensor.h"
#include "quantbench/runtime/cpu/matmul_w8a8.h"

namespace qb::model {

using formats::GgufFile;
using formats::GgufTensorInfo;

namespace {

struct Loader {
  const std::map<std::string, SourceTensor>& tensors;
  const GgufFile* gguf;  // for quantbench-format matrices; nullptr for a Hugging Face directory
  std::vector<std::shared_ptr<const quant::QuantizedTensor>>* storage;
  std::vector<std::shared_ptr<const std::vector<uint8_t>>>* owned;
  bool permute_qk = false, norm_plus_one = false;

  // GGUF errors name the tensor as stored with ggml-order shapes; HF errors name the HF tensor with
  // row-major shapes, as the person reading config.json and the safetensors header sees them.
  [[noreturn]] void bad(const SourceTensor& t, const std::string& why) const {
    fail("{}: tensor '{}': {}", t.file, t.stored_name, why);
  }
  std::string shape_text(std::vector<int64_t> shape) const {
    if (gguf) return fmt::format("{} (ggml order)", fmt::join(shape, "x"));
    std::reverse(shape.begin(), shape.end());
    return fmt::format("[{}]", fmt::join(shape, ", "));
  }

  const SourceTensor& get(const std::string& name, std::vector<int64_t> shape) const {
    auto it = tensors.find(name);
    if (it == tensors.end()) fail("{}: tensor '{}' is missing", gguf ? gguf->path() : std::string("model"), name);
    const SourceTensor& t = it->second;
    if (t.shape != shape)
      bad(t, fmt::format("shape {} does not match the expected {}{}", shape_text(t.shape), shape_text(shape),
                         gguf ? "" : " (from config.json)"));
    if (!qformat::can_dequantize(t.type))
      bad(t, fmt::format("type {} cannot be dequantized by this build", formats::ggml_type_name(t.type)));
    std::optional<std::string> nf;
    try {
      nf = qformat::find_non_finite(t.type, t.data, t.n_elements());
    } catch (const std::exception& e) {
      bad(t, e.what());
    }
    if (nf) bad(t, "non-finite value: " + *nf);
    return t;
  }

  // n_head_permute > 0: reorder the rows of each of that many heads from Hugging Face's rotate-half
  // order to llama.cpp's interleaved order (row h*d + 2i + j <- h*d + j*d/2 + i), the permutation
  // convert_hf_to_gguf.py applies to llama Q and K.
  WeightMatrix matrix(const std::string& name, int64_t n_in, int64_t n_out, int64_t n_head_permute = 0) const {
    if (gguf && !tensors.count(name) && quant::has_qb_tensor(*gguf, name)) {
      auto q = std::make_shared<const quant::QuantizedTensor>(quant::read_qb_tensor(*gguf, name));
      if (q->rows != n_out || q->cols != n_in)
        fail("{}: tensor '{}': quantized shape {}x{} does not match the expected {}x{}", gguf->path(), name, q->rows,
             q->cols, n_out, n_in);
      WeightMatrix w;
      w.type = formats::GgmlType::F32;  // unused when quantized is set
      w.n_in = n_in;
      w.n_out = n_out;
      w.quantized = q.get();
      // W8A8 matrices name the activation quantization that must run with them (gguf_output.h).
      if (auto a = gguf->find_string("quantbench.tensor." + name + ".activations")) {
        try {
          w.act = runtime::cpu::parse_act_quant(*a, "activations");
          runtime::cpu::check_w8a8(w);
        } catch (const std::exception& e) {
          fail("{}: tensor '{}': {}", gguf->path(), name, e.what());
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
    if (w.row_bytes * size_t(n_out) != t.nbytes) bad(t, "byte size does not match its shape");
    if (n_head_permute > 0 && permute_qk) {
      const int64_t d = n_out / n_head_permute;
      if (d * n_head_permute != n_out || d % 2 != 0) bad(t, "rows do not split into heads of even size");
      auto buf = std::make_shared<std::vector<uint8_t>>(t.nbytes);
      for (int64_t h = 0; h < n_head_permute; ++h)
        for (int64_t i = 0; i < d / 2; ++i)
          for (int64_t j = 0; j < 2; ++j)
            std::memcpy(buf->data() + size_t(h * d + 2 * i + j) * w.row_bytes,
                        t.data + size_t(h * d + j * (d / 2) + i) * w.row_bytes, w.row_bytes);
      w.data = buf->data();
      owned->push_back(std::move(buf));
    }
    return w;
  }

  std::vector<float> vec(const std::string& name, int64_t n) const {
    const auto& t = get(name, {n});
    std::vector<float> v(static_cast<size_t>(n));
    qformat::dequantize_row(t.type, t.data, v.data(), n);
    // Gemma's RMSNorm multiplies by (1 + w) in f32; llama.cpp's converter folds the 1 in, and so do we.
    if (norm_plus_one && name.size() > 11 && name.compare(name.size() - 11, 11, "norm.weight") == 0)
      for (float& x : v) x += 1.0f;
    return v;
  }
};

void load_weights(Model& m, const Loader& L) {
  const ModelSpec& s = m.spec();
  m.token_embd = L.matrix("token_embd.weight", s.n_embd, s.n_vocab);
  m.output = s.tied_embeddings ? m.token_embd : L.matrix("output.weight", s.n_embd, s.n_vocab);
  m.output_norm = L.vec("output_norm.weight", s.n_embd);
  if (s.has_rope_freqs && L.tensors.count("rope_freqs.weight")) m.rope_freqs = L.vec("rope_freqs.weight", s.n_rot / 2);

  m.layers.resize(size_t(s.n_layer));
  for (int64_t il = 0; il < s.n_layer; ++il) {
    LayerWeights& w = m.layers[size_t(il)];
    auto n = [&](const char* what) { return fmt::format("blk.{}.{}", il, what); };
    w.attn_norm = L.vec(n("attn_norm.weight"), s.n_embd);
    w.ffn_norm = L.vec(n("ffn_norm.weight"), s.n_embd);
    w.wq = L.matrix(n("attn_q.weight"), s.n_embd, s.q_dim(), s.n_head);
    w.wk = L.matrix(n("attn_k.weight"), s.n_embd, s.kv_dim_k(), s.n_head_kv);
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
}

SourceTensor source_of(const GgufFile& f, const GgufTensorInfo& t) {
  return SourceTensor{f.path(), t.name, t.type, t.shape, t.data, t.nbytes};
}

}  // namespace

std::shared_ptr<const Model> Model::load(const std::string& path) {
  if (is_directory(path)) return load_hf(path);
  return load(std::shared_ptr<const GgufFile>(GgufFile::open(path)));
}

std::shared_ptr<const Model> Model::load(std::shared_ptr<const GgufFile> file) {
  std::shared_ptr<Model> m(new Model());
  m->file_ = std::move(file);
  const GgufFile& f = *m->file_;
  m->path_ = f.path();
  m->spec_ = ModelSpec::from_gguf(f);
  std::map<std::string, SourceTensor> tensors;
  for (const auto& t : f.tensors()) tensors.emplace(t.name, source_of(f, t));
  const Loader L{tensors, &f, &m->quantized_storage, &m->owned_};
  load_weights(*m, L);

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

std::shared_ptr<const Model> Model::load_hf(const std::string& dir) {
  std::shared_ptr<Model> m(new Model());
  m->hf_ = HfCheckpoint::open(dir);
  m->path_ = dir;
  HfModelMap map = map_hf_checkpoint(*m->hf_);
  m->spec_ = map.spec;
  Loader L{map.tensors, nullptr, &m->quantized_storage, &m->owned_};
  L.permute_qk = map.permute_qk;
  L.norm_plus_one = map.norm_plus_one;
  load_weights(*m, L);
  m->rope_freqs = map.rope_freqs;
  for (const auto& sh : m->hf_->shards())
    for (const auto& t : sh->tensors()) m->n_params_stored_ += t.n_elements();
  m->n_params_unique_ = m->n_params_stored_;
  if (m->spec_.tied_embeddings)  // an lm_head stored beside tied embeddings is not used
    if (const auto* lm = m->hf_->find_tensor("lm_head.weight")) m->n_params_unique_ -= lm->n_elements();
  return m;
}

const formats::GgufFile& Model::file() const {
  if (!file_) fail("{}: a Hugging Face directory, not a GGUF file", path_);
  return *file_;
}

std::string Model::format() const {
  if (file_) return fmt::format("GGUF v{}", file_->version());
  const size_t n = hf_->shards().size();
  return fmt::format("Hugging Face safetensors ({} file{})", n, n == 1 ? "" : "s");
}

std::string Model::name() const {
  if (file_) {
    if (auto n = file_->find_string("general.name")) return *n;
  } else if (auto n = hf_->config().find_string("_name_or_path"); n && !n->empty()) {
    return *n;
  }
  return std::filesystem::path(path_).filename().string().empty()
             ? std::filesystem::path(path_).parent_path().filename().string()
             : std::filesystem::path(path_).filename().string();
}

std::string Model::sha256() const { return file_ ? sha256_file(path_) : sha256_directory(path_); }

uint64_t Model::source_bytes() const { return file_ ? file_->file_size() : hf_->total_bytes(); }

tokenizer::Tokenizer Model::load_tokenizer() const {
  if (file_) return tokenizer::Tokenizer::from_gguf(*file_);
  const auto json = hf_->file("tokenizer.json");
  if (!json) fail("{}: no tokenizer.json in the model directory", path_);
  return tokenizer::Tokenizer::from_hf_json_file(*json, hf_->file("tokenizer_config.json").value_or(""));
}

std::optional<std::string> Model::chat_template_source() const {
  if (file_) return file_->find_string("tokenizer.chat_template");
  if (auto cfg = hf_->file("tokenizer_config.json")) {
    const auto c = formats::HfConfig::load(*cfg);
    if (c.has("chat_template") && c.json().at("chat_template").is_string()) return c.get_string("chat_template");
  }
  if (auto j = hf_->file("chat_template.jinja")) {  // transformers >= 4.50 saves it beside
    std::ifstream in(*j, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  return std::nullopt;
}

tokenizer::ChatTemplate Model::chat_template() const {
  if (file_) return tokenizer::ChatTemplate::from_gguf(*file_);
  const auto src = chat_template_source();
  if (!src) fail("{}: no chat template (tokenizer_config.json chat_template, chat_template.jinja)", path_);
  try {
    return tokenizer::ChatTemplate::recognise(*src);
  } catch (const std::exception& e) {
    rethrow_with_context(e, path_);
  }
}

std::vector<SourceTensor> Model::stored_tensors() const {
  std::vector<SourceTensor> out;
  if (file_) {
    for (const auto& t : file_->tensors()) out.push_back(source_of(*file_, t));
    return out;
  }
  for (const auto& sh : hf_->shards())
    for (const auto& t : sh->tensors()) {
      const auto ty = t.dtype == DType::F16 ? formats::GgmlType::F16
                      : t.dtype == DType::BF16 ? formats::GgmlType::BF16 : formats::GgmlType::F32;
      out.push_back(SourceTensor{sh->path(), t.name, ty, t.ggml_shape(), t.data, t.nbytes()});
    }
  return out;
}

void Model::embedding_row(int32_t token, float* out) const {
  if (token < 0 || int64_t(token) >= spec_.n_vocab)
    fail("{}: token id {} is outside the vocabulary (0..{})", path_, token, spec_.n_vocab - 1);
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
