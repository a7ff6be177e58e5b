// Workload-matched evaluation (EVALUATION.md, "Workload-matched"): the user's own prompts as JSONL,
// one object per line with "prompt" (required), "reference" and "max_tokens" (optional), run through
// the generation comparison; the worst items are quoted so a person can read what broke.
#pragma once
#include <string>
#include <vector>

#include "quantbench/eval/generation.h"

namespace qb::eval {

// Throws qb::Error("FILE:LINE: ...") for bad JSON, a missing/empty prompt or a bad field type.
// With use_chat the baseline's chat template wraps each prompt.
std::vector<GenPrompt> load_workload(const std::string& path, const ModelPair& pair, bool use_chat, size_t limit,
                                     std::string* template_name);

}  // namespace qb::eval
