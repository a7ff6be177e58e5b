// See gguf_output.h. Tensors are looked up by name in the quantized Model rather than carried in a
// side table, so what is written is exactly what the in-memory model runs.
#include "quantbench/quant/writers/gguf_output.h"

#include <fmt/format.h>

#include <cstring>
#include <map>
#include <set>

#include "quantbench/core/error.h"
#include "quantbench/quant/writers/gguf_qb_tensor.h"
#include "quantbench/runtime/cpu/matmul_w8a8.h"

namespace qb::quant {

void write_quantized_gguf(const QuantizedModel& qm, const Manifest& manifest, const std::string& path) {
  const model::Model& m = *qm.model;
  const formats::GgufFile& src = m.file();
  const model::ModelSpec& sp = m.spec();
  formats::GgufWriter w(3);
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
