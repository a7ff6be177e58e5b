#include "quantbench/model/model_info.h"

#include <fmt/format.h>

#include "quantbench/core/sha256.h"
#include "quantbench/formats/gguf_reader.h"
#include "quantbench/model/model.h"
#include "quantbench/tokenizer/tokenizer.h"

namespace qb::model {

nlohmann::json inspect_model_file(const std::string& path) {
  const auto model = Model::load(path);
  const auto& spec = model->spec();
  nlohmann::json j;
  j["path"] = path;
  j["format"] = model->format();
  j["file_bytes"] = model->source_bytes();
  j["sha256"] = model->sha256();
  j["name"] = model->name();
  j["architecture"] = spec.gguf_arch;
  j["spec"] = spec.describe();
  j["parameters"] = model->n_params_stored();
  j["parameters_unique"] = model->n_params_unique();

  int64_t elems = 0, elems_no_embd = 0;
  uint64_t bytes = 0, bytes_no_embd = 0;
  nlohmann::json tensors = nlohmann::json::array();
  for (const auto& t : model->stored_tensors()) {
    elems += t.n_elements();
    bytes += t.nbytes;
    if (t.stored_name != "token_embd.weight" && t.stored_name != "model.embed_tokens.weight") {
      elems_no_embd += t.n_elements();
      bytes_no_embd += t.nbytes;
    }
    tensors.push_back({{"name", t.stored_name}, {"type", formats::ggml_type_name(t.type)}, {"shape", t.shape},
                       {"bytes", t.nbytes}, {"bits_per_weight", 8.0 * double(t.nbytes) / double(t.n_elements())}});
  }
  j["tensor_bytes"] = bytes;
  j["bits_per_weight"] = elems ? 8.0 * double(bytes) / double(elems) : 0.0;
  j["bits_per_weight_no_embeddings"] = elems_no_embd ? 8.0 * double(bytes_no_embd) / double(elems_no_embd) : 0.0;
  j["weight_types"] = model->describe_weight_types();
  j["tensors"] = std::move(tensors);

  const auto tok = model->load_tokenizer();
  nlohmann::json tj{{"model", tok.model_name()}, {"pre", tok.pre_name()}, {"n_vocab", tok.n_vocab()},
                    {"bos", tok.bos()}, {"eos", tok.eos()}, {"add_bos", tok.add_bos()}, {"notes", tok.notes()}};
  if (auto tmpl = model->chat_template_source()) tj["chat_template_bytes"] = tmpl->size();
  j["tokenizer"] = std::move(tj);
  return j;
}

std::string render_model_info(const nlohmann::json& j, bool list_tensors) {
  std::string s;
  s += fmt::format("file          {} ({}, {} bytes)\n", j["path"].get<std::string>(), j["format"].get<std::string>(),
                   j["file_bytes"].get<uint64_t>());
  s += fmt::format("sha256        {}\n", j["sha256"].get<std::string>());
  s += fmt::format("name          {}\n", j["name"].get<std::string>());
  s += fmt::format("architecture  {}: {}\n", j["architecture"].get<std::string>(), j["spec"].get<std::string>());
  s += fmt::format("parameters    {} as stored ({} unique)\n", j["parameters"].get<int64_t>(),
                   j["parameters_unique"].get<int64_t>());
  s += fmt::format("weights       {}; {:.4f} bits/weight ({:.4f} without token embeddings)\n",
                   j["weight_types"].get<std::string>(), j["bits_per_weight"].get<double>(),
                   j["bits_per_weight_no_embeddings"].get<double>());
  const auto& t = j["tokenizer"];
  s += fmt::format("tokenizer     {} (pre: {}), {} tokens, bos {} eos {}{}\n", t["model"].get<std::string>(),
                   t["pre"].get<std::string>(), t["n_vocab"].get<size_t>(), t["bos"].get<int>(), t["eos"].get<int>(),
                   t.contains("chat_template_bytes") ? ", chat template present" : "");
  for (const auto& n : t["notes"]) s += fmt::format("              note: {}\n", n.get<std::string>());
  if (list_tensors) {
    s += fmt::format("\n{:<40} {:>6} {:>20} {:>12} {:>8}\n", "tensor", "type", "shape", "bytes", "bpw");
    for (const auto& x : j["tensors"]) {
      std::string shape;
      for (const auto& d : x["shape"]) {
        if (!shape.empty()) shape += 'x';
        shape += std::to_string(d.get<int64_t>());
      }
      s += fmt::format("{:<40} {:>6} {:>20} {:>12} {:>8.3f}\n", x["name"].get<std::string>(), x["type"].get<std::string>(),
                       shape, x["bytes"].get<uint64_t>(), x["bits_per_weight"].get<double>());
    }
  }
  return s;
}

}  // namespace qb::model
