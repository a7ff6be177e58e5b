// Scored generation tasks (EVALUATION.md, "Long-form generation": GSM8K and MGSM), run in the
// generation regime as `--tasks gsm8k,mgsm_direct_de,...`. Each follows one lm-evaluation-harness
// 0.4.13 task exactly: its prompt (few-shot included), its `until` stop strings, its filters and its
// exact_match normalisation; both models decode greedily, every item is scored for each model, and the
// comparison is item by item (accuracy with stderr, flips both ways, exact McNemar).
//
//   gsm8k (v3.0): 5-shot from the train split by lm-eval's default sampler (one random.Random(1234),
//     rnd.sample(train, 5) per test document in order: tasks/python_random.h), each shot
//     "Question: {q}\nAnswer: {full answer}\n\n", then "Question: {q}\nAnswer:"; until "Question:",
//     "</s>", "<|im_end|>"; filters strict-match ("#### N", first) and flexible-extract (last number);
//     exact_match ignoring ",", "$", "(?s).*#### ", "\.$" and case, against the answer field.
//   mgsm_direct_{bn,de,en,es,fr,ja,ru,sw,te,th,zh} (v4.0): 0-shot "{QUESTION} {q}\n{DIRECT}"; until the
//     language's QUESTION word, "</s>", "<|im_end|>"; filters remove_whitespace (strip) and
//     flexible-extract; exact_match ignoring case and ASCII punctuation, against answer_number.
#pragma once
#include <string>
#include <vector>

#include "quantbench/core/result.h"
#include "quantbench/eval/model_pair.h"
#include "quantbench/eval/stop_sequences.h"

namespace qb::eval {

struct GenTaskItem {
  std::string id;
  std::string prompt;  // the full context as lm-eval renders it
  std::string target;  // gsm8k: the answer field ("... #### 72"); mgsm: answer_number as a string
};

enum class GenTaskKind { Gsm8k, MgsmDirect };

struct GenTaskSpec {
  std::string name;
  std::string version;
  GenTaskKind kind = GenTaskKind::Gsm8k;
  std::vector<std::string> files;  // relative to the data directory
  std::string full_sha256;         // of files[0] as published upstream
  std::vector<std::string> until;  // lm-eval's stop strings
  std::string question_word, answer_word;  // MGSM's QUESTION / DIRECT words for the language
  int shots = 0;
  std::string prompt_template;  // human-readable; hashed into the Manifest
};

const std::vector<GenTaskSpec>& gen_task_registry();
const GenTaskSpec* find_gen_task(const std::string& name);  // nullptr when `name` is not one

struct LoadedGenTask {
  const GenTaskSpec* spec = nullptr;
  std::vector<GenTaskItem> items;
  std::string dataset_sha256;
  bool is_slice = false;
};
// limit > 0 keeps the first `limit` test items (their few-shot draws are those of the full run).
LoadedGenTask load_gen_task(const std::string& name, const std::string& data_dir, size_t limit = 0);

// GSM8K's prompt: shots are (question, answer) pairs.
std::string gsm8k_context(const std::vector<std::pair<std::string, std::string>>& shots, const std::string& question);
// The train rows lm-eval 0.4.13 puts before test document `doc` (0-based) with n_train rows.
std::vector<std::vector<size_t>> gsm8k_fewshot_draws(size_t n_docs, size_t n_train);


// Both filters and their exact_match, for one model's (already cut) response.
struct GenTaskScore {
  std::string strict, flexible;  // what each filter extracted ("[invalid]" when nothing matched)
  bool strict_ok = false, flexible_ok = false;
};
GenTaskScore score_gen_response(GenTaskKind kind, const std::string& response, const std::string& target);
// MGSM's exact_match normalisation: lowercase, then remove Python's string.punctuation characters.
std::string mgsm_normalize(const std::string& s);

struct GenTaskOptions {
  int64_t max_new_tokens = 256;  // lm-eval's max_gen_toks default
  bool progress = true;
  double level = 0.95;
};

Result evaluate_gen_task(ModelPair& pair, const LoadedGenTask& task, const GenTaskOptions& o);

}  // namespace qb::eval
