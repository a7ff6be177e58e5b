// Plan: what `quantbench run PLAN.toml` does, parsed and validated in full before any work starts.
// A plan names the baseline model, the candidates (a scheme to quantize with, with its calibration, or
// an existing model file), the evaluation regimes with their settings, the speed benchmark and the
// tolerances of the verdict. docs/plan.md is the user-facing description of every key.
//
// Design choice: every check that can fail without running a model happens here -- unknown keys (a typo
// is an error, not a silently ignored setting), wrong types, bad values, unknown schemes or tasks,
// missing files -- and each error is one line "PLAN:LINE: what is wrong", with the line toml++ recorded
// for the offending key. Regimes are rows of a table (regime_specs()): a new regime is one row here and
// one branch in run_plan.cpp; task names are checked against eval's task registry, so tasks added there
// need nothing here.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "quantbench/report/report_data.h"

namespace qb::plan {

struct CalibrationPlan {
  std::string text;          // calibration text or JSONL, absolute path
  int64_t samples = 128;
  int64_t seq_len = 512;
  uint64_t seed = 0;
};

struct CandidatePlan {
  std::string name;                        // label in the run store and the report
  std::string scheme;                      // short form or an absolute .toml path; empty with `model`
  std::string model;                       // an existing model file (absolute); empty with `scheme`
  std::optional<CalibrationPlan> calibration;
  int line = 0;                            // where the candidate was declared
};

// One regime's settings; which fields apply depends on the regime (see regime_specs()).
struct RegimePlan {
  std::string name;                 // "perplexity", "multiple_choice", "generation", "workload", "code"
  std::string text;                 // perplexity: the text file
  std::string convention = "llama.cpp";
  int64_t ctx = 512;                // perplexity: tokens per window; code: prompt + generation context (0: the model's)
  size_t top_k = 32;
  std::vector<std::string> tasks;   // multiple_choice; generation: scored tasks (gsm8k, mgsm_direct_*); code
  std::string data_dir;             // task files and MT-Bench default prompts: data directory
  std::string prompts;              // generation: JSONL prompts (workload format); empty: MT-Bench first turns
  std::string file;                 // workload: the JSONL workload
  int64_t max_tokens = 256;         // generation, workload; code: 0 = each task's own budget (lm-eval's)
  bool chat = true;                 // generation, workload: use the model's chat template when it has one
  int64_t limit = 0;                // windows / items / prompts (0: all)
  int64_t batch = 1;
  int line = 0;

  // generation: whether the prompt-comparison step (MT-Bench or `prompts`) runs. Scored `tasks` replace
  // MT-Bench, as eval's --tasks does; explicit `prompts` run beside them.
  bool runs_prompts() const { return tasks.empty() || !prompts.empty(); }
};

struct BenchPlan {
  std::vector<int64_t> batch_sizes{1, 4, 16};
  int64_t prompt_len = 512;
  int64_t gen_len = 128;
  int reps = 3;
  int warmup = 1;
  int64_t bandwidth_mib = 512;
  uint64_t seed = 20260101;
};

struct Plan {
  std::string path;        // the plan file as given
  std::string dir;         // its directory (relative paths in the plan resolve against it)
  std::string text;        // the plan text (copied into the run directory)
  std::string name;        // default: the plan file's stem
  std::string baseline;    // absolute path of the baseline model
  std::string baseline_label = "baseline";
  std::vector<CandidatePlan> candidates;
  std::vector<RegimePlan> regimes;  // in the order they appear in the plan
  std::optional<BenchPlan> bench;
  std::vector<report::Tolerance> tolerances;
  std::vector<std::string> notes;  // [report] notes: sentences printed at the top of the report
  int threads = 0;
  uint64_t seed = 1;       // bootstrap seed
  size_t resamples = 1000; // bootstrap resamples
};

// A regime the plan knows: its keys (besides the common limit/batch) and a one-line description.
struct RegimeSpec {
  std::string name;
  std::vector<std::string> keys;
  std::string description;
};
const std::vector<RegimeSpec>& regime_specs();

// Parses and validates; throws qb::Error("PLAN:LINE: ...") on the first problem. Reads only the plan
// and checks that the files it names exist; creates nothing.
Plan parse_plan(const std::string& text, const std::string& path);
Plan load_plan(const std::string& path);

}  // namespace qb::plan
