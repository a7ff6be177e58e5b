// See gguf_output.h. Tensors are looked up by name in the quantized Model rather than carried in a
// side table, so what is written is exactly what the in-memory model runs.
#include "quantbench/quant/writers/gguf_output.h"

#include <fmt/format.h>

#include <cstring>
#include <map>
#include <set>

#include "quantbench/core/error.h"
#include "quantbench/model/gguf_metadata.h"
#include "quantbench/quant/writers/gguf_qb_tensor.h"
#include "quantbench/runtime/cpu/matmul_w8a8.h"

namespace qb::quant {

namespace {

void add_matrix(formats::GgufWriter& w, const std::string& name, const runtime::cpu::WeightMatrix& wm) {
  if (wm.quantized) add_qb_tensor(w, name, *wm.quantized);
  else w.add_tensor(name, wm.type, {wm.n_in, wm.n_out}, {wm.data, wm.row_bytes * size_t(wm.n_out)});
}

void add_vector(formats::GgufWriter& w, const std::string& name, const std::vector<float>& v) {
  std::vector<uint8_t> bytes(v.size() * 4);
  std::memcpy(bytes.data(), v.data(), bytes.size());
  w.add_tensor_owned(name, formats::GgmlType::F32, {int64_t(v.size())}, std::move(bytes));
}

// A source without GGUF metadata (a Hugging Face directory): the metadata comes from
// model::gguf_metadata_for and the tensors from the in-memory model, already in llama.cpp's layout
// (Q/K permuted, gemma norms with the +1 folded in), vectors as f32.
void add_model_tensors(formats::GgufWriter& w, const model::Model& m) {
  const model::ModelSpec& sp = m.spec();
  add_matrix(w, "token_embd.weight", m.token_embd);
  add_vector(w, "output_norm.weight", m.output_norm);
  if (!sp.tied_embeddings) add_matrix(w, "output.weight", m.output);
  if (!m.rope_freqs.empty()) add_vector(w, "rope_freqs.weight", m.rope_freqs);
  for (int64_t il = 0; il < sp.n_layer; ++il) {
    const auto& L = m.layers[size_t(il)];
    auto n = [&](const char* s) { return fmt::format("blk.{}.{}", il, s); };
    add_vector(w, n("attn_norm.weight"), L.attn_norm);
    add_matrix(w, n("attn_q.weight"), L.wq);
    add_matrix(w, n("attn_k.weight"), L.wk);
    add_matrix(w, n("attn_v.weight"), L.wv);
    if (sp.qkv_bias) {
      add_vector(w, n("attn_q.bias"), L.bq);
      add_vector(w, n("attn_k.bias"), L.bk);
      add_vector(w, n("attn_v.bias"), L.bv);
    }
    if (sp.qk_norm) {
      add_vector(w, n("attn_q_norm.weight"), L.q_norm);
      add_vector(w, n("attn_k_norm.weight"), L.k_norm);
    }
    add_matrix(w, n("attn_output.weight"), L.wo);
    if (sp.post_norms) add_vector(w, n("post_attention_norm.weight"), L.post_attn_norm);
    add_vector(w, n("ffn_norm.weight"), L.ffn_norm);
    add_matrix(w, n("ffn_gate.weight"), L.w_gate);
    add_matrix(w, n("ffn_up.weight"), L.w_up);
    add_matrix(w, n("ffn_down.weight"), L.w_down);
    if (sp.post_norms) add_vector(w, n("post_ffw_norm.weight"), L.post_ffn_norm);
  }
}

}  // namespace

void write_quantized_gguf(const QuantizedModel& qm, const Manifest& manifest, const std::string& path) {
  const model::Model& m = *qm.model;
  formats::GgufWriter w(3);
  if (!m.gguf()) {
    for (auto& [k, v] : model::gguf_metadata_for(m)) w.set(k, v);
    for (const auto& [k, f] : manifest.facts())
      w.set("quantbench." + k, formats::GgufValue::str(f.known ? f.value : "unknown: " + f.reason));
    add_model_tensors(w, m);
    w.write(path);
    return;
  }
  const formats::GgufFile& src = *m.gguf();
  const model::ModelSpec& sp = m.spec();
  w.copy_metadata_from(src);
  // A quantized source's quantbench.* keys describe another run; drop them.
  std::vector<std::string> stale;
  for (const auto& [k, v] : w.metadata())
    if (k.rfind("quantbench.", 0) == 0) stale.push_back(k);
  for (const auto& k : stale) w.remove(k);
  for (const auto& [k, f] : manifest.facts())
    w.set("quantbench." + k, formats::GgufValue::str(f.known ? f.value : "unknown: " + f.reason));

  std::map<std::string, const runtime::cpu::WeightMatrix*> mats;
  std::map<std::string, const std::vector<float>*> vecs;
  for (int64_t il = 0; il < sp.n_layer; ++il) {
    const auto& L = m.layers[size_t(il)];
    auto n = [&](const char* s) { return fmt::format("blk.{}.{}.weight", il, s); };
    mats[n("attn_q")] = &L.wq; mats[n("attn_k")] = &L.wk; mats[n("attn_v")] = &L.wv; mats[n("attn_output")] = &L.wo;
    mats[n("ffn_gate")] = &L.w_gate; mats[n("ffn_up")] = &L.w_up; mats[n("ffn_down")] = &L.w_down;
    vecs[n("attn_norm")] = &L.attn_norm;
    vecs[n("ffn_norm")] = &L.ffn_norm;
  }
  const std::set<std::string> changed(qm.changed_vectors.begin(), qm.changed_vectors.end());

  std::set<std::string> done;
  for (const auto& t : src.tensors()) {
    // A source in our own format stores NAME as parts; handle the whole matrix once under NAME.
    std::string name = t.name;
    if (auto p = name.find(".qb_"); p != std::string::npos) name = name.substr(0, p);
    if (!done.insert(name).second) continue;
    if (auto it = mats.find(name); it != mats.end()) {
      const auto& wm = *it->second;
      if (wm.quantized) add_qb_tensor(w, name, *wm.quantized);
      else
        w.add_tensor(name, wm.type, {wm.n_in, wm.n_out}, {wm.data, wm.row_bytes * size_t(wm.n_out)});
      // W8A8: the activation quantization travels with the matrix (read back by model::Model::load).
      if (wm.act != runtime::cpu::ActQuant::None)
        w.set("quantbench.tensor." + name + ".activations",
              formats::GgufValue::str(std::string(runtime::cpu::act_quant_name(wm.act))));
      continue;
    }
    if (changed.count(name)) {
      const std::vector<float>& v = *vecs.at(name);
      std::vector<uint8_t> bytes(v.size() * 4);
      std::memcpy(bytes.data(), v.data(), bytes.size());
      w.add_tensor_owned(name, formats::GgmlType::F32, {int64_t(v.size())}, std::move(bytes));
      continue;
    }
    QB_CHECK(name == t.name, "{}: tensor '{}' is stored in quantbench's format but is not a block matrix", src.path(),
             name);
    w.add_tensor(t.name, t.type, t.shape, {t.data, t.nbytes});
  }
  w.write(path);
}

}  // namespace qb::quant
