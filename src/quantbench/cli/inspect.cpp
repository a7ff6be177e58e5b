// `quantbench inspect MODEL [--json]`: what a model file holds (provisional: GGUF metadata and
// tensors; the model layer adds architecture, parameter counts and the tokenizer).
#include <cstdio>

#include <nlohmann/json.hpp>

#include "quantbench/cli/commands.h"
#include "quantbench/formats/gguf_reader.h"

namespace qb::cli {

void register_inspect(CLI::App& app) {
  auto* cmd = app.add_subcommand("inspect", "Describe a model file: architecture, tensors, bits per weight, tokenizer");
  auto path = std::make_shared<std::string>();
  auto as_json = std::make_shared<bool>(false);
  cmd->add_option("model", *path, "GGUF file")->required();
  cmd->add_flag("--json", *as_json, "Print JSON instead of text");
  cmd->callback([path, as_json] {
    auto f = formats::GgufFile::open(*path);
    nlohmann::json j;
    j["path"] = *path;
    j["gguf_version"] = f->version();
    for (const auto& [k, v] : f->metadata()) j["metadata"][k] = v.to_display();
    int64_t params = 0;
    for (const auto& t : f->tensors()) {
      params += t.n_elements();
      j["tensors"].push_back({{"name", t.name}, {"type", formats::ggml_type_name(t.type)}, {"shape", t.shape}, {"bytes", t.nbytes}});
    }
    j["parameters"] = params;
    std::printf("%s\n", j.dump(*as_json ? 2 : 2).c_str());
  });
}

}  // namespace qb::cli
