// Workload loader: strict per-line validation, because a silently skipped line changes what was measured.
#include "quantbench/eval/workload.h"

#include <fstream>

#include <nlohmann/json.hpp>

#include "quantbench/core/error.h"
#include "quantbench/tokenizer/chat_template.h"

namespace qb::eval {

std::vector<GenPrompt> load_workload(const std::string& path, const ModelPair& pair, bool use_chat, size_t limit,
                                     std::string* template_name) {
  std::ifstream in(path);
  QB_CHECK(bool(in), "{}: cannot open workload file", path);
  const auto& tok = pair.tokenizer();
  std::optional<tokenizer::ChatTemplate> tmpl;
  if (use_chat) tmpl = const_cast<ModelPair&>(pair).baseline().model->chat_template();
  if (template_name) *template_name = tmpl ? tmpl->name() : "raw text (BOS + prompt)";
  std::vector<GenPrompt> out;
  std::string line;
  for (size_t ln = 1; std::getline(in, line); ++ln) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      fail("{}:{}: bad JSON: {}", path, ln, e.what());
    }
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
    if (tmpl) {
      std::vector<tokenizer::ChatMessage> msgs = {{"user", p.text}};
      p.tokens = tok.encode(tmpl->apply(msgs, true, tok), false, true);
    } else {
      p.tokens = tok.encode(p.text, true, false);
    }
    out.push_back(std::move(p));
    if (limit > 0 && out.size() >= limit) break;
  }
  QB_CHECK(!out.empty(), "{}: no prompts", path);
  return out;
}

}  // namespace qb::eval
