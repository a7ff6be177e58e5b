// Long-form generation (EVALUATION.md, "Long-form generation"): greedy continuations from both models
// for each prompt, compared token by token and as text, plus the teacher-forced view along the
// baseline's own trajectory. The two views side by side are the compounding curve: teacher-forced
// agreement says how often the candidate would pick the baseline's next token given the same history;
// free-running agreement says how often it still does once its own earlier choices have diverged.
#pragma once
#include <optional>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "quantbench/core/result.h"
#include "quantbench/eval/item_hook.h"
#include "quantbench/eval/model_pair.h"
#include "quantbench/eval/stats.h"

namespace qb::eval {

struct GenPrompt {
  std::string id;
  std::string text;               // as shown to a person (before the chat template)
  std::vector<int32_t> tokens;    // what the models see
  std::optional<std::string> reference;
  int64_t max_tokens = 0;         // 0: the run's default
};

struct GenerationOptions {
  int64_t max_new_tokens = 256;
  int64_t bucket = 32;            // position bucket width for the curves
  bool stop_at_eos = true;
  bool progress = true;
  BootstrapSpec bootstrap{1000, 1, 0.95};
  size_t worst_items = 5;         // quoted in full (workload regime)
  const ItemHook* hook = nullptr;  // optional: per-item records as items complete; restore stored ones
};

// Per-prompt outcome, kept for tests and for the worst-items list.
struct GenRecord {
  std::vector<int32_t> base, cand;  // new tokens (stop token included when one ended the output)
  std::vector<double> tf_kl;        // teacher-forced KL per baseline position
  std::vector<uint8_t> tf_agree;    // candidate argmax == baseline token, teacher-forced
  size_t first_divergence = 0;
};

// The loop every prompt file shares: reads JSONL at `path` (blank lines skipped; a line that is not JSON
// is an error naming path:line), lets `parse_row(json, line)` fill id/text/reference/max_tokens (and
// throw for a bad row), then tokenizes each prompt: wrapped in the baseline's chat template with
// use_chat when it has one, else BOS + the raw text. *template_name says which ran (`raw_name` if none).
std::vector<GenPrompt> load_prompt_jsonl(const std::string& path, const std::string& what, const ModelPair& pair,
                                         bool use_chat, size_t limit, std::string* template_name,
                                         const std::string& raw_name,
                                         const std::function<GenPrompt(const nlohmann::json&, size_t)>& parse_row);

// Builds prompts for MT-Bench first turns (mtbench/question.jsonl). With use_chat the model's chat
// template (tokenizer.chat_template) wraps each; *template_name says which ran ("raw text" if none).
std::vector<GenPrompt> load_mtbench_prompts(const std::string& path, const ModelPair& pair, bool use_chat, size_t limit,
                                            std::string* template_name);

// regime: "generation" or "workload" (names the misses line). extras_out receives what is not a scalar
// metric: {bucket, compounding_curve: [{positions, tf_kld_mean, tf_agreement, free_running_agreement,
// ...}], first_divergence_histogram: {bucket start | "never": count}, worst_items: [quoted outputs]}.
Result evaluate_generation(ModelPair& pair, const std::vector<GenPrompt>& prompts, const std::string& regime,
                           const std::string& task_name, const std::string& dataset_sha256,
                           const std::string& prompt_template, const GenerationOptions& o,
                           std::vector<GenRecord>* records_out = nullptr, nlohmann::json* extras_out = nullptr);

}  // namespace qb::eval
