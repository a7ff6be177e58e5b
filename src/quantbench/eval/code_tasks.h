// Code-generation tasks (HumanEval, MBPP) turned into prompts and test programs exactly as
// lm-evaluation-harness 0.4.13 (PyPI) builds them: tasks/humaneval/humaneval.yaml and
// tasks/mbpp/mbpp.yaml with their utils.py, rendered through lm-eval's own few-shot concatenation
// (api/task.py build_qa_turn) and scored the way HF evaluate's code_eval runs a candidate
// (candidate + "\n" + reference).
//
// Design: a task is data plus a version, like eval/tasks: the prompt template, stop sequences and
// generation budget are fields here (they go into the Manifest), and only the joining of strings is
// code. Prompts are kept as text; tokenizing is the evaluator's business, since both models share a
// tokenizer.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace qb::eval {

struct CodeItem {
  std::string id;            // "HumanEval/0", "mbpp/11"
  std::string prompt;        // the full text the model continues (few-shot examples included)
  std::string program_head;  // what goes before the completion in the program (HumanEval: the prompt)
  std::string tests;         // lm-eval's reference: appended after the program with "\n"
  std::string canonical;     // the dataset's own solution (completion for HumanEval, code for MBPP)
};

struct CodeTask {
  std::string name;            // "humaneval" | "mbpp"
  std::string version;         // lm-eval's metadata.version
  std::string source;          // which lm-eval files this follows
  std::vector<std::string> stops;  // lm-eval's generation_kwargs.until
  int64_t max_gen_toks = 256;  // lm-eval's (HumanEval sets 1024; MBPP keeps the default 256)
  size_t shots = 0;
  std::string prompt_template; // as lm-eval's YAML writes it, for the Manifest
  std::string dataset_path;
  std::string dataset_sha256;
  bool is_slice = false;       // the file is not the pinned full dataset
  std::string full_sha256;     // the pinned full file
  std::vector<CodeItem> items;
};

// The names the code regime knows.
bool is_code_task(const std::string& name);
const std::vector<std::string>& code_task_names();  // {"humaneval", "mbpp"}

// Loads a task from data_dir: humaneval/HumanEval.jsonl.gz (or the uncompressed .jsonl slice) and
// mbpp/mbpp.jsonl. limit > 0 keeps the first `limit` items. Throws qb::Error naming the file and line
// on a missing or malformed field.
CodeTask load_code_task(const std::string& name, const std::string& data_dir, size_t limit = 0);

// lm-eval's prompt for one item, given the parsed fields (exposed for the prompt-rendering tests).
std::string humaneval_prompt(const std::string& prompt);
std::string mbpp_question(const std::string& text, const std::vector<std::string>& test_list);

// The program run in the sandbox: program_head + completion, then "\n" + tests (code_eval's join).
std::string code_program(const CodeItem& item, const std::string& completion);

}  // namespace qb::eval
