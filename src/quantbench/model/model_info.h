// A description of a model file for `quantbench inspect` and the Manifest: architecture and spec,
// parameter counts (as stored and unique), each tensor's type, shape and bytes, bits per weight with
// and without the token embeddings, and the tokenizer. Loading goes through Model::load, so a file
// that would not run (bad shapes, NaN scales) is reported as an error, not described.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

namespace qb::model {

nlohmann::json inspect_model_file(const std::string& path);

// The same facts as readable text (the JSON's "summary" first, then a tensor table).
std::string render_model_info(const nlohmann::json& info, bool list_tensors);

}  // namespace qb::model
