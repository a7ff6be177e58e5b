// See compressed_tensors.h. The tensor bytes come from compressed_tensors_layout.h; this file decides
// names, the config.json, which modules are quantized or ignored, and the atomic directory swap.
#include "quantbench/quant/writers/compressed_tensors.h"

#include <fmt/format.h>
#include <stdlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "quantbench/core/error.h"
#include "quantbench/formats/safetensors.h"
#include "quantbench/quant/qformat/ggml_blocks.h"
#include "quantbench/quant/writers/compressed_tensors_layout.h"
#include "quantbench/quant/writers/gguf_qb_tensor.h"

namespace qb::quant {

namespace fs = std::filesystem;
using formats::GgmlType;
using runtime::cpu::WeightMatrix;

namespace {

constexpr const char* kLayoutKeyPrefix = "quantbench.layout.";
constexpr const char* kTokenizerFiles[] = {"tokenizer.json",          "tokenizer_config.json", "special_tokens_map.json",
                                           "tokenizer.model",         "vocab.json",            "merges.txt",
                                           "added_tokens.json",       "generation_config.json"};
constexpr const char* kMatrixNames[] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};

struct NamedMatrix {
  std::string gguf;  // "blk.0.attn_q.weight"
  const WeightMatrix* w;
};

std::vector<NamedMatrix> block_matrices(const model::Model& m) {
  std::vector<NamedMatrix> out;
  for (size_t il = 0; il < m.layers.size(); ++il) {
    const auto& L = m.layers[il];
    const WeightMatrix* ws[] = {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down};
    for (size_t i = 0; i < 7; ++i) out.push_back({fmt::format("blk.{}.{}.weight", il, kMatrixNames[i]), ws[i]});
  }
  return out;
}

std::string_view hf_model_type(const model::ModelSpec& s) {
  switch (s.arch) {
    case model::Arch::Llama: return "llama";
    case model::Arch::Qwen2: return "qwen2";
    case model::Arch::Qwen3: return "qwen3";
    default: break;
  }
  fail("compressed-tensors output supports llama, qwen2 and qwen3 models, not '{}'", s.gguf_arch);
}

// A dense matrix (rows in `order`) as safetensors bytes: float types copied, ggml block types
// dequantized to f32 (exact).
std::pair<DType, std::vector<uint8_t>> dense_bytes(const WeightMatrix& w, const std::vector<int64_t>& order,
                                                    const std::string& name) {
  QB_CHECK(w.quantized == nullptr && w.data != nullptr, "tensor '{}': no dense data", name);
  DType dt = DType::F32;
  size_t elem = 4;
  switch (w.type) {
    case GgmlType::F32: break;
    case GgmlType::F16: dt = DType::F16; elem = 2; break;
    case GgmlType::BF16: dt = DType::BF16; elem = 2; break;
    default:
      QB_CHECK(qformat::can_dequantize(w.type), "tensor '{}': cannot decode {}", name, formats::ggml_type_name(w.type));
  }
  std::vector<uint8_t> out(size_t(w.n_out * w.n_in) * elem);
  for (int64_t hr = 0; hr < w.n_out; ++hr) {
    const uint8_t* src = w.data + size_t(order[size_t(hr)]) * w.row_bytes;
    uint8_t* dst = out.data() + size_t(hr * w.n_in) * elem;
    if (w.type == GgmlType::F32 || w.type == GgmlType::F16 || w.type == GgmlType::BF16)
      std::memcpy(dst, src, size_t(w.n_in) * elem);
    else
      qformat::dequantize_row(w.type, src, reinterpret_cast<float*>(dst), w.n_in);
  }
  return {dt, std::move(out)};
}

std::vector<uint8_t> f32_bytes(const std::vector<float>& v) {
  std::vector<uint8_t> b(v.size() * 4);
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

template <typename T>
std::vector<uint8_t> raw_bytes(const std::vector<T>& v) {
  std::vector<uint8_t> b(v.size() * sizeof(T));
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

// What config_groups says about one quantized matrix.
struct WeightArgs {
  int bits;
  bool symmetric;
  int64_t group_size;  // 0: channel
  bool operator<(const WeightArgs& o) const {
    return std::tie(bits, symmetric, group_size) < std::tie(o.bits, o.symmetric, o.group_size);
  }
};

nlohmann::ordered_json weights_json(const WeightArgs& a) {
  nlohmann::ordered_json w;
  w["num_bits"] = a.bits;
  w["type"] = "int";
  w["symmetric"] = a.symmetric;
  w["strategy"] = a.group_size == 0 ? "channel" : "group";
  w["group_size"] = a.group_size == 0 ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(a.group_size);
  w["block_structure"] = nullptr;
  w["dynamic"] = false;
  w["actorder"] = nullptr;
  w["observer"] = "minmax";
  w["observer_kwargs"] = nlohmann::ordered_json::object();
  return w;
}

nlohmann::ordered_json model_config(const model::ModelSpec& s, std::string_view torch_dtype) {
  QB_CHECK(!s.has_rope_freqs, "compressed-tensors output: rope frequency factors (llama-3 rope scaling) are not "
                              "expressed in config.json here");
  QB_CHECK(s.sliding_window == 0 && !s.post_norms && s.activation == model::Activation::SiLU && s.embd_scale == 1.0f &&
               s.attn_softcap == 0 && s.final_softcap == 0,
           "compressed-tensors output: model '{}' uses features config.json is not written for", s.gguf_arch);
  const std::string_view mt = hf_model_type(s);
  nlohmann::ordered_json c;
  c["architectures"] = {mt == "llama" ? "LlamaForCausalLM" : mt == "qwen2" ? "Qwen2ForCausalLM" : "Qwen3ForCausalLM"};
  c["model_type"] = mt;
  c["vocab_size"] = s.n_vocab;
  c["hidden_size"] = s.n_embd;
  c["intermediate_size"] = s.n_ff;
  c["num_hidden_layers"] = s.n_layer;
  c["num_attention_heads"] = s.n_head;
  c["num_key_value_heads"] = s.n_head_kv;
  c["head_dim"] = s.head_dim_k;
  c["hidden_act"] = "silu";
  c["max_position_embeddings"] = s.n_ctx_train;
  // GGUF stores these as f32; write the shortest decimal that rounds to the same f32 (1e-05, not
  // 9.999999747378752e-06), which is what the HF config held.
  auto f32_decimal = [](float v) { return std::stod(fmt::format("{}", v)); };
  c["rms_norm_eps"] = f32_decimal(s.rms_eps);
  c["rope_theta"] = f32_decimal(s.rope_theta);
  if (s.rope_position_scale != 1.0f)
    c["rope_scaling"] = {{"type", "linear"}, {"rope_type", "linear"}, {"factor", 1.0 / double(s.rope_position_scale)}};
  else
    c["rope_scaling"] = nullptr;
  if (mt == "llama") {
    c["attention_bias"] = false;
    c["mlp_bias"] = false;
  }
  c["tie_word_embeddings"] = s.tied_embeddings;
  if (s.bos_id >= 0) c["bos_token_id"] = s.bos_id;
  if (!s.stop_ids.empty()) c["eos_token_id"] = s.stop_ids.size() == 1 ? nlohmann::ordered_json(s.stop_ids[0])
                                                                      : nlohmann::ordered_json(s.stop_ids);
  c["torch_dtype"] = torch_dtype;
  c["use_cache"] = true;
  return c;
}

void write_text(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary);
  out << text;
  out.close();
  QB_CHECK(bool(out), "{}: cannot write", p.string());
}

// Removes the temporary directory unless released.
struct TempDir {
  fs::path path;
  ~TempDir() {
    if (!path.empty()) {
      std::error_code ec;
      fs::remove_all(path, ec);
    }
  }
};

}  // namespace

void write_compressed_tensors(const QuantizedModel& qm, const Manifest& manifest, const std::string& dir) {
  QB_CHECK(qm.model != nullptr, "write_compressed_tensors: no model");
  const model::Model& m = *qm.model;
  const model::ModelSpec& sp = m.spec();
  hf_model_type(sp);  // fail early on an unsupported architecture

  formats::SafetensorsWriter st;
  st.set_metadata("format", "pt");  // transformers refuses safetensors files without it
  for (const auto& [k, f] : manifest.facts()) st.set_metadata("quantbench." + k, f.known ? f.value : "unknown: " + f.reason);

  std::map<WeightArgs, std::vector<std::string>> groups;  // config group -> HF module names
  std::vector<std::string> ignore = {"lm_head"};
  std::optional<ScaleType> scale_type;
  for (const auto& [gguf, w] : block_matrices(m)) {
    const std::string mod = ct::hf_module_name(gguf);
    const auto order = ct::hf_row_order(sp, gguf, w->n_out);
    if (!w->quantized) {  // kept dense by the scheme: written as is, and listed in `ignore`
      auto [dt, bytes] = dense_bytes(*w, order, gguf);
      st.add_tensor_owned(mod + ".weight", dt, {w->n_out, w->n_in}, std::move(bytes));
      ignore.push_back(mod);
      continue;
    }
    const QuantizedTensor& q = *w->quantized;
    const std::string where = fmt::format("tensor '{}' ({})", gguf, layout_name(q.layout));
    if (scale_type && *scale_type != q.layout.scale_type)
      fail("{}: compressed-tensors output needs one scale dtype for all matrices ({} and {} are mixed)", where,
           scale_type_name(*scale_type), scale_type_name(q.layout.scale_type));
    ct::PackedTensors p = [&] {
      try {
        return ct::pack(q, order);
      } catch (const Error& e) {
        fail("{}: {}", where, e.what());
      }
    }();
    scale_type = q.layout.scale_type;
    const DType sdt = q.layout.scale_type == ScaleType::F16 ? DType::F16 : DType::BF16;
    st.add_tensor_owned(mod + ".weight_packed", DType::I32, {q.rows, p.words_per_row}, raw_bytes(p.weight_packed));
    st.add_tensor_owned(mod + ".weight_scale", sdt, {q.rows, p.n_groups}, std::move(p.weight_scale));
    st.add_tensor_owned(mod + ".weight_shape", DType::I32, {2}, raw_bytes(std::vector<int32_t>{int32_t(q.rows), int32_t(q.cols)}));
    if (q.layout.asymmetric)
      st.add_tensor_owned(mod + ".weight_zero_point", DType::I32, {p.zp_words, p.n_groups}, raw_bytes(p.weight_zero_point));
    st.set_metadata(kLayoutKeyPrefix + mod, encode_layout(q));
    const WeightArgs a{format_traits(q.layout.format).bits, !q.layout.asymmetric, ct::artifact_group_size(q)};
    groups[a].push_back(mod);
  }
  QB_CHECK(!groups.empty(), "compressed-tensors output: no block matrix is in an integer format (scheme '{}')",
           manifest.find("scheme.name") ? manifest.find("scheme.name")->value : "?");

  // Unquantized tensors under HF names.
  auto add_matrix = [&](const std::string& hf, const WeightMatrix& w, const char* gguf) {
    std::vector<int64_t> order(size_t(w.n_out));
    for (int64_t i = 0; i < w.n_out; ++i) order[size_t(i)] = i;
    QB_CHECK(!w.quantized, "tensor '{}' is in a quantbench format; compressed-tensors output keeps it dense", gguf);
    auto [dt, bytes] = dense_bytes(w, order, gguf);
    st.add_tensor_owned(hf, dt, {w.n_out, w.n_in}, std::move(bytes));
  };
  add_matrix("model.embed_tokens.weight", m.token_embd, "token_embd.weight");
  if (!sp.tied_embeddings) add_matrix("lm_head.weight", m.output, "output.weight");
  st.add_tensor_owned("model.norm.weight", DType::F32, {int64_t(m.output_norm.size())}, f32_bytes(m.output_norm));
  for (size_t il = 0; il < m.layers.size(); ++il) {
    const auto& L = m.layers[il];
    auto vec = [&](const char* gguf, const std::vector<float>& v) {
      st.add_tensor_owned(ct::hf_tensor_name(fmt::format("blk.{}.{}", il, gguf)), DType::F32, {int64_t(v.size())},
                          f32_bytes(v));
    };
    vec("attn_norm.weight", L.attn_norm);
    vec("ffn_norm.weight", L.ffn_norm);
    if (sp.qk_norm) {
      vec("attn_q_norm.weight", L.q_norm);
      vec("attn_k_norm.weight", L.k_norm);
    }
    if (sp.qkv_bias) {  // qwen2 rotates halves: no row permutation to undo
      vec("attn_q.bias", L.bq);
      vec("attn_k.bias", L.bk);
      vec("attn_v.bias", L.bv);
    }
  }

  // config_groups: one group when every matrix agrees (targets ["Linear"]); otherwise one per
  // distinct WeightArgs, targeting its modules by name.
  nlohmann::ordered_json cg = nlohmann::ordered_json::object();
  int gi = 0;
  for (const auto& [a, mods] : groups) {
    nlohmann::ordered_json g;
    g["targets"] = groups.size() == 1 ? nlohmann::ordered_json::array({"Linear"}) : nlohmann::ordered_json(mods);
    g["weights"] = weights_json(a);
    g["input_activations"] = nullptr;
    g["output_activations"] = nullptr;
    g["format"] = "pack-quantized";
    cg[fmt::format("group_{}", gi++)] = g;
  }
  nlohmann::ordered_json qc;
  qc["quant_method"] = "compressed-tensors";
  qc["format"] = "pack-quantized";
  qc["quantization_status"] = "compressed";
  qc["config_groups"] = cg;
  qc["ignore"] = ignore;
  qc["kv_cache_scheme"] = nullptr;
  qc["sparsity_config"] = nlohmann::ordered_json::object();
  qc["global_compression_ratio"] = nullptr;
  nlohmann::ordered_json cfg = model_config(sp, *scale_type == ScaleType::F16 ? "float16" : "bfloat16");
  cfg["quantization_config"] = qc;

  // Build beside the target, then swap it in.
  fs::path target = fs::path(dir).lexically_normal();
  if (target.filename().empty()) target = target.parent_path();  // "out/" names the directory "out"
  QB_CHECK(!target.filename().empty() && target.filename() != "." && target.filename() != "..",
           "{}: not a directory name", dir);
  std::error_code ec;
  if (fs::exists(target, ec)) {
    QB_CHECK(fs::is_directory(target), "{}: exists and is not a directory", dir);
    QB_CHECK(fs::is_empty(target) || fs::exists(target / "config.json"),
             "{}: exists and does not look like a model directory (no config.json); not replacing it", dir);
  }
  const fs::path parent = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::string tmpl = (parent / (target.filename().string() + ".tmp-XXXXXX")).string();
  QB_CHECK(mkdtemp(tmpl.data()) != nullptr, "{}: cannot create a temporary directory beside it: {}", dir,
           std::strerror(errno));
  TempDir tmp{tmpl};
  try {
    st.write((tmp.path / "model.safetensors").string());
    write_text(tmp.path / "config.json", cfg.dump(2) + "\n");
    const fs::path src_dir = fs::path(m.file().path()).parent_path();
    for (const char* f : kTokenizerFiles)
      if (fs::is_regular_file(src_dir / f, ec)) fs::copy_file(src_dir / f, tmp.path / f);
    fs::permissions(tmp.path, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                  fs::perms::others_read | fs::perms::others_exec);
    if (fs::exists(target, ec)) {
      std::string old = (parent / (target.filename().string() + ".old-XXXXXX")).string();
      QB_CHECK(mkdtemp(old.data()) != nullptr, "{}: cannot create a temporary directory: {}", dir, std::strerror(errno));
      TempDir old_dir{old};
      fs::rename(target, old_dir.path / "artifact");
      try {
        fs::rename(tmp.path, target);
      } catch (...) {
        fs::rename(old_dir.path / "artifact", target);  // put the old artifact back
        throw;
      }
    } else {
      fs::rename(tmp.path, target);
    }
  } catch (const fs::filesystem_error& e) {  // library callers get qb::Error, as everywhere else
    fail("{}: {}", dir, e.what());
  }
  tmp.path.clear();
}

std::shared_ptr<const model::Model> load_compressed_tensors_over(std::shared_ptr<const model::Model> source,
                                                                 const std::string& dir) {
  QB_CHECK(source != nullptr, "load_compressed_tensors_over: no model");
  const std::string path = (fs::path(dir) / "model.safetensors").string();
  const auto file = formats::SafetensorsFile::open(path);
  auto out = std::make_shared<model::Model>(*source);
  const model::ModelSpec& sp = out->spec();
  int replaced = 0;
  for (const auto& [gguf, cw] : block_matrices(*out)) {
    auto* w = const_cast<WeightMatrix*>(cw);  // points into *out, which this function owns
    const std::string mod = ct::hf_module_name(gguf);
    const auto it = file->metadata().find(kLayoutKeyPrefix + mod);
    if (it == file->metadata().end()) {
      QB_CHECK(file->find_tensor(mod + ".weight_packed") == nullptr,
               "{}: tensor '{}.weight_packed' has no quantbench layout in the metadata (not written by quantbench)",
               path, mod);
      continue;  // dense in the artifact: the source's matrix stays
    }
    const std::string where = fmt::format("{}: tensor '{}'", path, mod);
    QuantizedTensor shape = decode_layout(it->second, where);
    QB_CHECK(shape.rows == w->n_out && shape.cols == w->n_in, "{}: is {}x{}, the model's matrix {}x{}", where,
             shape.rows, shape.cols, w->n_out, w->n_in);
    auto get = [&](const std::string& suffix, DType want) -> const formats::SafetensorsTensorInfo& {
      const auto& t = file->tensor(mod + suffix);
      QB_CHECK(t.dtype == want, "{}: {}: dtype {}, expected {}", where, suffix.substr(1), dtype_name(t.dtype), dtype_name(want));
      return t;
    };
    const auto& packed = get(".weight_packed", DType::I32);
    const auto& scale =
        get(".weight_scale", shape.layout.scale_type == ScaleType::BF16 ? DType::BF16 : DType::F16);
    const auto& wshape = get(".weight_shape", DType::I32);
    QB_CHECK(wshape.nbytes() == 8, "{}: weight_shape: expected 2 entries", where);
    int32_t dims[2];
    std::memcpy(dims, wshape.data, 8);
    QB_CHECK(dims[0] == shape.rows && dims[1] == shape.cols, "{}: weight_shape is [{}, {}], the layout says {}x{}",
             where, dims[0], dims[1], shape.rows, shape.cols);
    // Copied out of the mapping: other writers need not align int32 data.
    auto words = [](const formats::SafetensorsTensorInfo& t) {
      std::vector<int32_t> v(t.nbytes() / 4);
      std::memcpy(v.data(), t.data, v.size() * 4);
      return v;
    };
    const std::vector<int32_t> pw = words(packed);
    const std::vector<int32_t> zp = shape.layout.asymmetric ? words(get(".weight_zero_point", DType::I32)) : std::vector<int32_t>{};
    const auto order = ct::hf_row_order(sp, gguf, shape.rows);
    auto q = std::make_shared<const QuantizedTensor>(ct::unpack(shape.layout, shape.rows, shape.cols, order, pw.data(),
                                                                pw.size(), scale.data, scale.nbytes(), zp.data(),
                                                                zp.size(), where));
    WeightMatrix nw;
    nw.type = GgmlType::F32;
    nw.n_in = q->cols;
    nw.n_out = q->rows;
    nw.quantized = q.get();
    *w = nw;
    out->quantized_storage.push_back(std::move(q));
    ++replaced;
  }
  QB_CHECK(replaced > 0, "{}: no quantized matrix found", path);
  return out;
}

}  // namespace qb::quant
