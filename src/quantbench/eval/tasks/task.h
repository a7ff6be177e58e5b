// Multiple-choice tasks as versioned data. Each task is one row of a table (tasks/registry.cpp): its
// name, version, the dataset files it reads under a data directory, the sha256 of the full upstream
// files (a vendored slice records its own sha256 and says it is a slice), a description of the prompt
// template (hashed into the Manifest), and a loader that turns the files into items. Prompt
// construction follows lm-evaluation-harness: an item is a set of (context, continuation) requests,
// scored by the summed log-likelihood of the continuation given the context.
#pragma once
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

namespace qb::eval {

struct McOption {
  std::string context;
  std::string continuation;  // with lm-eval's target delimiter (" ") already in front
  size_t choice_chars = 0;   // length of the choice text without the delimiter (acc_norm's denominator)
};

struct McItem {
  std::string id;
  std::vector<McOption> options;
  size_t gold = 0;
  std::string group;  // MMLU: the subject (per-subject accuracy in the records); else empty
  size_t n_true = 0;  // TruthfulQA mc2: options [0, n_true) are the true answers
};

// How an item's option scores become a score (lm-eval's process_results for the task).
enum class McScoring {
  Argmax,  // acc (and acc_norm where has_acc_norm): argmax of the option log-likelihoods
  Mc2,     // TruthfulQA mc2: sum of p(true) / sum of p(all), p = exp(log-likelihood)
  Greedy,  // LAMBADA (output_type loglikelihood): acc = the target is the greedy continuation,
           // perplexity = exp(-mean over items of the target's log-likelihood)
};

struct TaskSpec {
  std::string name;
  std::string version;
  std::vector<std::string> files;  // relative to the data directory
  std::string full_sha256;         // sha256 of files[0] as published upstream (the full dataset)
  std::string prompt_template;     // human-readable; its sha256 is the Manifest's prompt_template_hash
  std::string notes;               // where we differ from lm-eval, said plainly
  bool has_acc_norm = true;        // false where every option shares the continuation (WinoGrande)
  std::function<std::vector<McItem>(const std::vector<std::string>& paths)> load;
  McScoring scoring = McScoring::Argmax;
  int shots = 0;               // few-shot examples in each context (recorded in the Manifest)
  bool limit_per_group = false;  // --limit keeps the first N items of each group (lm-eval: per subtask)
};

const std::vector<TaskSpec>& task_registry();
const TaskSpec& find_task(const std::string& name);  // throws qb::Error listing the known names

struct LoadedTask {
  const TaskSpec* spec = nullptr;
  std::vector<McItem> items;
  std::string dataset_sha256;  // of the files read (files[0] alone when there is one)
  bool is_slice = false;       // the file read is not the pinned full dataset
};
// Loads `name` from `data_dir`; limit > 0 keeps the first `limit` items (of each group where the task
// says limit_per_group). A files[] entry ending in '/' is a directory: its dataset sha256 is that of the
// sha256sum-style listing ("<sha256>  <name>\n", names sorted) of the regular files in it.
LoadedTask load_task(const std::string& name, const std::string& data_dir, size_t limit = 0);
// sha256 of the listing "<sha256 of file>  <name>\n" over the regular files of `dir`, names sorted.
std::string sha256_directory(const std::string& dir);

// lm-eval's HellaSwag preprocess: strip, " [title]" -> ". ", drop "[...]" tags, "  " -> " ".
std::string hellaswag_preprocess(const std::string& text);

// RFC 4180 CSV (quoted fields, "" escapes, newlines inside quotes, CRLF or LF; blank lines skipped);
// errors name the file and line. record_lines, when given, receives each record's first line (1-based).
std::vector<std::vector<std::string>> parse_csv(const std::string& text, const std::string& path,
                                                std::vector<size_t>* record_lines = nullptr);

// lm-eval's MMLU context for one test row (question, 4 choices) of `subject`, with the dev rows as
// few-shot examples in file order (sampler first_n): description "The following are multiple choice
// questions (with answers) about {subject with '_' -> ' '}.\n\n", then per shot
// "{question.strip()}\nA. {c0}\nB. {c1}\nC. {c2}\nD. {c3}\nAnswer: {letter}\n\n", then the test row's
// text ending in "Answer:". Rows are {question, c0, c1, c2, c3, answer 0-3}.
std::string mmlu_context(const std::string& subject, const std::vector<std::vector<std::string>>& shots,
                         const std::vector<std::string>& row);

// lm-eval truthfulqa_mc1/mc2 (v2.0/v3.0) context: the six-question QA preamble, then
// "\n\nQ: {question}\nA:".
std::string truthfulqa_context(const std::string& question);

// Loaders of the tasks in tasks/knowledge_tasks.cpp (paths as in the TaskSpec's files).
std::vector<McItem> load_mmlu_0shot(const std::vector<std::string>& paths);
std::vector<McItem> load_mmlu_5shot(const std::vector<std::string>& paths);
std::vector<McItem> load_truthfulqa_mc1(const std::vector<std::string>& paths);
std::vector<McItem> load_truthfulqa_mc2(const std::vector<std::string>& paths);
std::vector<McItem> load_lambada(const std::vector<std::string>& paths);

}  // namespace qb::eval
