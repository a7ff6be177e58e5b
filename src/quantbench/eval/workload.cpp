// Workload loader: strict per-line validation, because a silently skipped line changes what was measured.
#include "quantbench/eval/workload.h"

#include <fstream>

#include <nlohmann/json.hpp>

#include "quantbench/core/error.h"
#include "quantbench/tokenizer/chat_template.h"

namespace qb::eval {

std::vector<GenPrompt> load_workload(const std::string& path, const ModelPair& pair, bool use_chat, size_t limit,
                                     std::string* template_name) {
  return load_prompt_jsonl(path, "workload prompts", pair, use_chat, limit, template_name, "raw text (BOS + prompt)",
                           [&](const nlohmann::json& j, size_t ln) {
    QB_CHECK(j.is_object(), "{}:{}: each line must be a JSON object", path, ln);
    QB_CHECK(j.contains("prompt") && j["prompt"].is_string() && !j["prompt"].get<std::string>().empty(),
             "{}:{}: 'prompt' must be a non-empty string", path, ln);
    GenPrompt p;
    p.id = j.contains("id") ? (j["id"].is_string() ? j["id"].get<std::string>() : j["id"].dump()) : std::to_string(ln);
    p.text = j["prompt"].get<std::string>();
    if (j.contains("reference")) {
      QB_CHECK(j["reference"].is_string(), "{}:{}: 'reference' must be a string", path, ln);
      p.reference = j["reference"].get<std::string>();
    }
    if (j.contains("max_tokens")) {
      QB_CHECK(j["max_tokens"].is_number_integer() && j["max_tokens"].get<int64_t>() > 0,
               "{}:{}: 'max_tokens' must be a positive integer", path, ln);
      p.max_tokens = j["max_tokens"].get<int64_t>();
    }
    return p;
  });
}

}  // namespace qb::eval
