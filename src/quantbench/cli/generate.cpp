// `quantbench generate MODEL [--prompt TEXT] [--max-tokens N] [--temperature T] [--seed S] [--chat] [--kv T]`:
// text in, text out, with prefill and decode speed on stderr and the path that ran named there too.
#include <cstdio>
#include <memory>

#include "quantbench/cli/commands.h"
#include "quantbench/core/error.h"
#include "quantbench/formats/gguf_reader.h"
#include "quantbench/model/model.h"
#include "quantbench/runtime/cpu/cpu_backend.h"
#ifdef QB_HAVE_CUDA
#include "quantbench/runtime/cuda/cuda_backend.h"
#endif
#include "quantbench/runtime/generate.h"
#include "quantbench/tokenizer/chat_template.h"
#include "quantbench/tokenizer/tokenizer.h"

namespace qb::cli {
namespace {

struct GenerateArgs {
  std::string model;
  std::string prompt;
  int64_t max_tokens = 64;
  float temperature = 0.0f;
  int top_k = 0;
  float top_p = 1.0f;
  uint64_t seed = 0;
  int threads = 0;
  bool reference = false;
  bool chat = false;
  std::string backend = "cpu";  // "cuda" only in builds with QB_CUDA=ON
  std::string kv = "f32";       // KV cache precision (runtime/kv_cache.h)
};

void run_generate(const GenerateArgs& a) {
  QB_CHECK(a.max_tokens > 0, "--max-tokens must be positive, got {}", a.max_tokens);
  QB_CHECK(a.temperature >= 0, "--temperature must be >= 0, got {}", a.temperature);
  QB_CHECK(a.top_k >= 0, "--top-k must be >= 0, got {}", a.top_k);
  QB_CHECK(a.top_p > 0 && a.top_p <= 1, "--top-p must be in (0, 1], got {}", a.top_p);
  QB_CHECK(a.threads >= 0, "--threads must be >= 0, got {}", a.threads);
  const runtime::KvType kv = runtime::parse_kv_type(a.kv);
  auto model = model::Model::load(a.model);
  const auto tok = model->load_tokenizer();

  // Prompt: BOS (when the vocabulary adds it) + the text; an empty prompt is just BOS.
  // With --chat the template renders BOS and the turn markers itself, so the text is encoded without
  // adding specials again; which template ran is printed with the timings.
  std::string chat_name;
  std::vector<int32_t> prompt;
  if (a.chat) {
    const auto tmpl = model->chat_template();
    const std::vector<tokenizer::ChatMessage> messages{{"user", a.prompt}};
    prompt = tok.encode(tmpl.apply(messages, /*add_generation_prompt=*/true, tok), /*add_special=*/false,
                        /*parse_special=*/true);
    chat_name = tmpl.name();
  } else {
    prompt = tok.encode(a.prompt, /*add_special=*/true, /*parse_special=*/true);
  }
  if (prompt.empty()) {
    QB_CHECK(tok.bos() != tokenizer::kNoToken, "empty prompt and the vocabulary has no BOS token");
    prompt.push_back(tok.bos());
  }

  std::unique_ptr<runtime::Backend> backend_ptr;
  if (a.backend == "cuda") {
#ifdef QB_HAVE_CUDA
    runtime::cuda::CudaBackendOptions co;
    co.kv = kv == runtime::KvType::F32 ? runtime::KvType::F16 : kv;  // the default f32 runs the GPU's f16 cache
    co.dense = a.reference ? runtime::cuda::DenseType::F32 : runtime::cuda::DenseType::Bits16;
    backend_ptr = std::make_unique<runtime::cuda::CudaBackend>(model, co);
#else
    fail("--backend cuda: this build has no CUDA backend (configure with -DQB_CUDA=ON)");
#endif
  } else {
    QB_CHECK(a.backend == "cpu", "--backend must be cpu or cuda, got '{}'", a.backend);
    runtime::cpu::CpuBackendOptions bo;
    bo.mode = a.reference ? runtime::cpu::CpuMode::Reference : runtime::cpu::CpuMode::Fast;
    bo.n_threads = a.threads;
    bo.kv = kv;
    backend_ptr = std::make_unique<runtime::cpu::CpuBackend>(model, bo);
  }
  runtime::Backend& backend = *backend_ptr;

  runtime::GenerateOptions go;
  go.max_new_tokens = a.max_tokens;
  go.sampler = {a.temperature, a.top_k, a.top_p, a.seed};
  const auto r = runtime::generate(backend, prompt, go);

  std::vector<int32_t> shown = r.tokens;
  if (r.stopped && !shown.empty()) shown.pop_back();  // the stop token is not text
  if (a.chat) std::printf("%s\n", tok.decode(shown, /*render_special=*/false).c_str());
  else std::printf("%s%s\n", a.prompt.c_str(), tok.decode(shown, /*render_special=*/false).c_str());

  const double prefill_tps = r.prefill_seconds > 0 ? double(r.n_prompt) / r.prefill_seconds : 0;
  const int64_t n_decoded = int64_t(r.tokens.size()) - 1;  // the first new token comes out of prefill
  const double decode_tps = n_decoded > 0 && r.decode_seconds > 0 ? double(n_decoded) / r.decode_seconds : 0;
  std::fprintf(stderr, "generate: %s; sampler %s; chat template %s\n", backend.describe().c_str(),
               go.sampler.describe().c_str(), a.chat ? chat_name.c_str() : "none");
  std::fprintf(stderr, "generate: prefill %lld tokens in %.3f s (%.1f tok/s); decode %lld tokens in %.3f s (%.1f tok/s)%s\n",
               (long long)r.n_prompt, r.prefill_seconds, prefill_tps, (long long)n_decoded, r.decode_seconds,
               decode_tps, r.stopped ? "; stopped at end-of-generation token" : "");
}

}  // namespace

void register_generate(CLI::App& app) {
  auto* cmd = app.add_subcommand("generate", "Generate text from a prompt (greedy by default)");
  auto a = std::make_shared<GenerateArgs>();
  cmd->add_option("model", a->model, "GGUF model file or Hugging Face model directory")->required();
  cmd->add_option("--prompt", a->prompt, "Prompt text (default: empty, i.e. BOS only)");
  cmd->add_option("--max-tokens", a->max_tokens, "Tokens to generate");
  cmd->add_option("--temperature", a->temperature, "0 = greedy");
  cmd->add_option("--top-k", a->top_k, "Sample among the k most likely (0 = all)");
  cmd->add_option("--top-p", a->top_p, "Nucleus sampling mass in (0, 1]");
  cmd->add_option("--seed", a->seed, "Sampling seed (recorded)");
  cmd->add_option("--threads,-t", a->threads, "CPU threads (0 = all cores)");
  cmd->add_flag("--reference", a->reference,
                "Run the exact fp32 reference path instead of the fast kernels (cuda: f32 weights, not bf16)");
  cmd->add_option("--backend", a->backend, "cpu, or cuda in builds with QB_CUDA=ON");
  cmd->add_flag("--chat", a->chat, "Wrap the prompt in the model's chat template");
  cmd->add_option("--kv", a->kv, "KV cache precision: f32 (default, as computed; f16 on --backend cuda), f16, int8, fp8 or int4");
  cmd->callback([a] { run_generate(*a); });
}

}  // namespace qb::cli
