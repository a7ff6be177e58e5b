// The code regime (EVALUATION.md "Code"): greedy completions from both models for HumanEval / MBPP
// prompts, each program run with its tests by python3 in the sandbox, pass@1 per model, flips both
// ways and an exact McNemar test. One wrong token can break a program, which is what this regime sees
// and the others do not.
//
// Design choices:
// - Stop sequences are text, as in lm-eval's generate_until: after each greedy token the continuation is
//   decoded and generation ends once any stop string appears in it (or at an end-of-generation token,
//   which lm-eval adds to `until`); the completion is then cut at the earliest stop. A prompt longer
//   than the context is cut from the left to leave room for the generation budget, as lm-eval's HF
//   model does.
// - "Passed" needs exit status 0 and a sentinel line printed after the tests: a completion that calls
//   exit(0) before the tests run would otherwise pass (HF code_eval fails SystemExit; so do we).
// - Identical programs from the two models run once and share the outcome, so a flaky timeout on a
//   busy host cannot show up as a flip between two identical completions.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "quantbench/core/result.h"
#include "quantbench/eval/code_tasks.h"
#include "quantbench/eval/model_pair.h"
#include "quantbench/eval/sandbox.h"
#include "quantbench/eval/stop_sequences.h"

namespace qb::eval {

struct Completion {
  std::vector<int32_t> tokens;  // generated ids (the end-of-generation token included if one ended it)
  std::string raw;              // decoded continuation before truncation
  std::string text;             // truncated at the first stop: what goes into the program
  std::string ended_by;         // "stop_sequence" | "end_of_generation" | "max_tokens" | "context"
  size_t prompt_tokens = 0;     // after any left truncation
  size_t prompt_truncated = 0;  // tokens cut from the left of the prompt
};
// Greedy generation in a fresh sequence of `backend`. max_new_tokens > 0. max_length is the context the
// prompt and the generation share (lm-eval's max_length); 0 or more than the model's: the model's.
Completion complete_until(runtime::Backend& backend, const tokenizer::Tokenizer& tok, std::vector<int32_t> prompt,
                          const std::vector<std::string>& stops, int64_t max_new_tokens, int64_t max_length = 0);

// How one program fared. reason is one of: "passed", "assertion", "exception" (detail: the exception
// type, e.g. "NameError", "SyntaxError"), "exit_code" (non-zero without a traceback), "exited_early"
// (status 0 before the tests finished), "timeout" (wall clock), "killed_by_limit" (detail: cpu time,
// memory, file size or output), "signal", "sandbox_error".
struct CodeOutcome {
  bool passed = false;
  std::string reason;
  std::string detail;
  double wall_seconds = 0;
};
// Runs `program` in the sandbox and classifies the result.
CodeOutcome run_code(const PythonSandbox& sandbox, const std::string& program);

// Limits used by the code regime: CPU 3 s (code_eval's timeout is 3 s), wall 10 s so a busy host does
// not fail a correct program, 1 GiB address space.
SandboxConfig default_code_sandbox_config();

struct CodeOptions {
  int64_t max_new_tokens = 0;  // 0: the task's own budget (lm-eval's max_gen_toks)
  int64_t max_length = 0;      // context for prompt + generation; 0: the model's training context
  double level = 0.95;
  bool progress = true;
};

struct CodeItemRecord {
  Completion base, cand;
  CodeOutcome base_outcome, cand_outcome;
};

// extras_out receives {failure_reasons: {baseline: {reason: count}, candidate: {...}}, limits_note}.
Result evaluate_code(ModelPair& pair, const CodeTask& task, const PythonSandbox& sandbox, const CodeOptions& o,
                     std::vector<CodeItemRecord>* records_out = nullptr, nlohmann::json* extras_out = nullptr);

}  // namespace qb::eval
