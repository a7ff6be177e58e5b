// `quantbench eval --baseline A --candidate B --regimes LIST [...] --json OUT`: compares two GGUF models
// that share a tokenizer, item by item, in the regimes asked for, and writes one JSON document
// atomically (nothing at OUT if anything fails). All the work is eval/run_eval.h.
#include <cstdio>
#include <memory>
#include <sstream>

#include <nlohmann/json.hpp>

#include "quantbench/cli/commands.h"
#include "quantbench/core/error.h"
#include "quantbench/eval/run_eval.h"
#include "quantbench/runtime/cpu/matmul.h"
#ifdef QB_HAVE_CUDA
#include "quantbench/runtime/cuda/cuda_backend.h"
#endif

namespace qb::cli {
namespace {

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string x; std::getline(ss, x, ',');)
    if (!x.empty()) out.push_back(x);
  return out;
}

}  // namespace

void register_eval(CLI::App& app) {
  auto* cmd = app.add_subcommand("eval", "Compare a candidate model with its baseline (perplexity+KL, multiple choice, "
                                         "generation, workload, code)");
  auto q = std::make_shared<eval::EvalRequest>();
  auto regimes = std::make_shared<std::string>("perplexity,multiple_choice");
  auto tasks = std::make_shared<std::string>("hellaswag,arc_easy,piqa");
  auto json_out = std::make_shared<std::string>();
  auto no_chat = std::make_shared<bool>(false);
  auto quiet = std::make_shared<bool>(false);
  auto backend = std::make_shared<std::string>("cpu");
  cmd->add_option("--baseline", q->baseline, "Baseline model (GGUF file or Hugging Face directory)")->required();
  cmd->add_option("--candidate", q->candidate, "Candidate model (GGUF file or Hugging Face directory; same tokenizer)")->required();
  cmd->add_option("--regimes", *regimes, "perplexity,multiple_choice,generation,workload,code");
  cmd->add_option("--tasks", *tasks,
                  "Tasks, each run in its regime. multiple_choice: hellaswag,arc_easy,arc_challenge,piqa,winogrande,"
                  "boolq,mmlu,mmlu_5shot,truthfulqa_mc1,truthfulqa_mc2,lambada_openai; generation: gsm8k,"
                  "mgsm_direct_{bn,de,en,es,fr,ja,ru,sw,te,th,zh} (named there, they replace MT-Bench); code: humaneval,"
                  "mbpp (the code regime runs both when none is named)");
  cmd->add_option("--text", q->text, "Text file for perplexity (default: wikitext-2 raw, else the TinyStories slice)");
  cmd->add_option("--workload", q->workload, "JSONL of {prompt, reference?, max_tokens?}");
  cmd->add_option("--prompts", q->prompts, "JSONL of prompts for generation (default: MT-Bench first turns)");
  cmd->add_option("--data-dir", q->data_dir, "Datasets (default: $QB_DATA_DIR, else ../shared/data beside the checkout if present, else the checkout's data/eval)");
  cmd->add_option("--convention", q->convention, "Perplexity convention: llama.cpp | rolling");
  cmd->add_option("--ctx", q->n_ctx, "Perplexity window (n_ctx)");
  cmd->add_option("--top-k", q->top_k, "K of the baseline top-K log-probs");
  cmd->add_option("--kl-cache", q->kl_cache, "Baseline top-K cache file (read if valid, else written)");
  cmd->add_option("--limit", q->limit, "Items / prompts / windows per regime (0 = all)");
  cmd->add_option("--batch", q->batch, "Sequences per forward");
  cmd->add_option("--threads,-t", q->threads, "CPU threads (0 = all cores)");
  cmd->add_option("--kv", q->kv, "Candidate's KV cache precision: f32 (default; f16 on --backend cuda), f16, int8, fp8 or int4");
  cmd->add_option("--baseline-kv", q->baseline_kv, "Baseline's KV cache precision (default f32; f16 on --backend cuda)");
  cmd->add_option("--max-tokens", q->max_tokens, "Generation length (gsm8k/mgsm: lm-eval's max_gen_toks is 256)");
  cmd->add_option("--code-max-tokens", q->code_max_tokens,
                  "Code regime's generation budget (0 = lm-eval's: humaneval 1024, mbpp 256)");
  cmd->add_option("--code-ctx", q->code_ctx, "Code regime's context; longer prompts lose their start (0 = the model's)");
  cmd->add_option("--seed", q->seed, "Bootstrap seed (recorded)");
  cmd->add_option("--resamples", q->resamples, "Bootstrap resamples");
  cmd->add_flag("--reference", q->reference,
                "Run both models on the exact CPU reference path (dequantized weights, double sums) instead of "
                "the fast kernels: slow, for checking the fast path (cuda: f32 weights and products, not bf16)");
  cmd->add_flag("--no-chat", *no_chat, "Never wrap generation prompts in the chat template");
  cmd->add_flag("--quiet", *quiet, "No progress bars");
  cmd->add_option("--backend", *backend, "cpu, or cuda in builds with QB_CUDA=ON (both models on the GPU)");
  cmd->add_option("--json", *json_out, "Output JSON file")->required();
  cmd->callback([=] {
    q->regimes = split_list(*regimes);
    q->tasks = split_list(*tasks);
    q->chat = !*no_chat;
    q->progress = !*quiet;
    if (*backend == "cuda") {
#ifdef QB_HAVE_CUDA
      // --reference on the GPU: its most exact mode (f32 weights and products, FP8 W8A8 summed exactly),
      // as generate does; the cache stays f16 (the GPU has no f32 cache). Before, the flag reached only the
      // CPU's options and a cuda run ignored it.
      q->make_backend = [reference = q->reference](std::shared_ptr<const model::Model> m,
                                                   runtime::KvType& kv) -> std::unique_ptr<runtime::Backend> {
        runtime::cuda::CudaBackendOptions co;
        if (kv == runtime::KvType::F32) kv = runtime::KvType::F16;  // the default: the GPU's f16 cache
        co.kv = kv;
        co.dense = reference ? runtime::cuda::DenseType::F32 : runtime::cuda::DenseType::Bits16;
        return std::make_unique<runtime::cuda::CudaBackend>(std::move(m), co);
      };
#else
      fail("--backend cuda: this build has no CUDA backend (configure with -DQB_CUDA=ON)");
#endif
    } else {
      QB_CHECK(*backend == "cpu", "--backend must be cpu or cuda, got '{}'", *backend);
    }
    const auto j = eval::run_evaluation(*q);
    eval::write_eval_json(*json_out, j);
    std::fprintf(stderr, "eval: wrote %s\n", json_out->c_str());
    // Say so where the default fast path was less exact than the reference (the manifest has the detail).
    for (const auto& [regime, results] : j["regimes"].items())
      for (const auto& r : results)
        if (r["manifest"].value("scheme.activations", nlohmann::json()).dump().find(
                runtime::cpu::kQuantizedActivationsLabel) != std::string::npos) {
          std::fprintf(stderr,
                       "eval: note: the CPU's fast kernels quantized the inputs of quantized matrices to 8-bit blocks "
                       "(as llama.cpp's do; scheme.activations says which); --reference runs them exactly\n");
          return;
        }
  });
}

}  // namespace qb::cli
