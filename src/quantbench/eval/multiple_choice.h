// Multiple-choice evaluation, lm-evaluation-harness conventions (EVALUATION.md, "Multiple choice"):
// each option's score is the summed log-likelihood of its continuation given its context, tokenized as
// lm-eval's _encode_pair does (trailing spaces of the context move to the continuation; the
// continuation's tokens are encode(context + continuation) minus the first len(encode(context))).
// acc = argmax of the sum, acc_norm = argmax of sum / len(choice in characters), ties to the lowest
// index (numpy.argmax), stderr = sd / sqrt(n). BOS is prepended where the vocabulary adds it
// (llama.cpp's habit; lm-eval's HF default does not), and the Manifest says so.
//
// Options that share a context (most tasks) share its forward: the context runs once per item, then
// each continuation is appended and the sequence truncated back to the context.
#pragma once
#include <string>
#include <vector>

#include "quantbench/core/result.h"
#include "quantbench/eval/item_hook.h"
#include "quantbench/eval/model_pair.h"
#include "quantbench/eval/stats.h"
#include "quantbench/eval/tasks/task.h"

namespace qb::eval {

struct OptionScore {
  double loglik = 0;
  size_t n_tokens = 0;
  bool greedy = false;  // every continuation token was the argmax
};

struct McScoreOptions {
  int64_t batch = 1;  // items per forward (each in its own sequence)
  bool progress = true;
  std::string label = "multiple choice";
};

// Scores every option of every item on one backend.
std::vector<std::vector<OptionScore>> score_items(runtime::Backend& backend, const tokenizer::Tokenizer& tok,
                                                  const std::vector<McItem>& items, const McScoreOptions& o);

// acc / acc_norm predictions from scores.
size_t predict_acc(const std::vector<OptionScore>& s);
size_t predict_acc_norm(const McItem& item, const std::vector<OptionScore>& s);
// TruthfulQA mc2 (lm-eval utils.process_results_mc2): sum of exp(ll) over the true options
// [0, item.n_true) divided by the sum over all options.
double mc2_score(const McItem& item, const std::vector<OptionScore>& s);

struct McOptions {
  int64_t batch = 1;
  bool progress = true;
  double level = 0.95;
  const ItemHook* hook = nullptr;  // optional: per-item records as items complete; restore stored ones
};

// Baseline vs candidate on one loaded task, by the task's scoring: Argmax gives acc (and acc_norm)
// for each model (stderr, Wilson interval), the paired difference, flips both ways and exact McNemar;
// Greedy (LAMBADA) gives the same for acc = greedy match plus each model's perplexity of the target;
// Mc2 gives each model's mean mc2 with stderr and the paired difference. One record per item (with
// its group, e.g. the MMLU subject). extras_out, when given, receives {per_group: {name: {items,
// baseline_acc, candidate_acc, flips both ways, ...}}} for tasks whose items have groups.
Result evaluate_multiple_choice(ModelPair& pair, const LoadedTask& task, const McOptions& o,
                               nlohmann::json* extras_out = nullptr);

}  // namespace qb::eval
