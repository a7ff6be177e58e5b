// `quantbench inspect MODEL [--json] [--tensors]`: what a model file holds and whether it loads.
#include <cstdio>

#include "quantbench/cli/commands.h"
#include "quantbench/model/model_info.h"

namespace qb::cli {

void register_inspect(CLI::App& app) {
  auto* cmd = app.add_subcommand("inspect", "Describe a model file: architecture, tensors, bits per weight, tokenizer");
  auto path = std::make_shared<std::string>();
  auto as_json = std::make_shared<bool>(false);
  auto tensors = std::make_shared<bool>(false);
  cmd->add_option("model", *path, "GGUF model file or Hugging Face model directory")->required();
  cmd->add_flag("--json", *as_json, "Print JSON (always includes every tensor)");
  cmd->add_flag("--tensors", *tensors, "List every tensor in the text output");
  cmd->callback([path, as_json, tensors] {
    const auto info = model::inspect_model_file(*path);
    if (*as_json) std::printf("%s\n", info.dump(2).c_str());
    else std::printf("%s", model::render_model_info(info, *tensors).c_str());
  });
}

}  // namespace qb::cli
