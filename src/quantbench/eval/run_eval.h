// run_eval: the whole `quantbench eval` as one library call, so the CLI stays a thin shell and tests
// can run every regime end to end. It loads the pair once, runs the requested regimes in order, and
// returns one JSON document (schema in docs/eval.md); write_eval_json writes it atomically.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "quantbench/model/model.h"
#include "quantbench/runtime/backend.h"
#include "quantbench/runtime/kv_cache.h"

namespace qb::eval {

struct EvalRequest {
  std::string baseline, candidate;
  std::vector<std::string> regimes{"perplexity", "multiple_choice"};  // perplexity, multiple_choice, generation, workload, code
  std::vector<std::string> tasks{"hellaswag", "arc_easy", "piqa"};  // code tasks (humaneval, mbpp) go to the code regime
  std::string text;         // perplexity text file; empty: a default under data_dir
  std::string workload;     // JSONL for the workload regime
  std::string prompts;      // JSONL for generation; empty: data_dir/mtbench/question.jsonl
  std::string data_dir;     // empty: default_data_dir()
  std::string convention = "llama.cpp";
  int64_t n_ctx = 512;
  size_t top_k = 32;
  std::string kl_cache;     // top-K baseline cache path (empty: none)
  int64_t limit = 0;        // items / prompts / windows per regime (0: all)
  int64_t batch = 1;
  int threads = 0;
  bool reference = false;  // both models on the CPU reference path (exact weights, double sums; slow)
  std::string kv = "f32";           // candidate's KV cache precision (runtime/kv_cache.h)
  std::string baseline_kv = "f32";  // baseline's
  int64_t max_tokens = 256;
  int64_t code_max_tokens = 0;  // code regime's budget; 0: lm-eval's per task (humaneval 1024, mbpp 256)
  int64_t code_ctx = 0;         // code regime's context (lm-eval's max_length); 0: the model's
  bool chat = true;         // use the model's chat template for generation when it has one
  uint64_t seed = 1;
  size_t resamples = 1000;
  bool progress = true;
  // Makes each model's backend (the CLI's --backend cuda); empty: the CPU backend.
  std::function<std::unique_ptr<runtime::Backend>(std::shared_ptr<const model::Model>, runtime::KvType& kv)> make_backend;
};

// $QB_DATA_DIR if set; else, in the checkout the command runs in (the working directory, if it has
// data/eval) or else the one the binary was built in: ../shared/data beside it if that exists (the full
// datasets of the development machines), else its data/eval (the bundled slices).
std::string default_data_dir();
nlohmann::json run_evaluation(const EvalRequest& req);
// Atomic: on any error nothing is left at `path`.
void write_eval_json(const std::string& path, const nlohmann::json& j);

}  // namespace qb::eval
