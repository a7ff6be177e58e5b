// `quantbench bench MODEL [--batch 1,4,16] [--prompt-len 512] [--gen-len 128] [--reps N] [--warmup N]
// [--threads N] [--json OUT]`: decode and prefill speed at each batch size on the CPU backend, with the
// memory bandwidth measured in the same run as the roofline. A table on stdout; the full Result as
// JSON (written atomically) with --json.
#include <cstdio>
#include <memory>

#include "quantbench/bench/bandwidth_probe.h"
#include "quantbench/bench/decode_bench.h"
#include "quantbench/cli/commands.h"
#include "quantbench/core/error.h"
#include "quantbench/core/mapped_file.h"
#include "quantbench/core/sha256.h"
#include "quantbench/formats/gguf_reader.h"
#include "quantbench/model/model.h"
#include "quantbench/runtime/cpu/cpu_backend.h"

namespace qb::cli {
namespace {

struct BenchArgs {
  std::string model;
  std::vector<int64_t> batch{1, 4, 16};
  int64_t prompt_len = 512;
  int64_t gen_len = 128;
  int reps = 3;
  int warmup = 1;
  int threads = 0;
  uint64_t seed = 20260101;
  int64_t bandwidth_mib = 512;
  bool reference = false;
  bool no_progress = false;
  std::string json_out;
};

void run_bench(const BenchArgs& a) {
  QB_CHECK(a.threads >= 0, "--threads must be >= 0, got {}", a.threads);
  QB_CHECK(a.bandwidth_mib >= 1, "--bandwidth-mib must be >= 1, got {}", a.bandwidth_mib);
  bench::DecodeBenchOptions o;
  o.batch_sizes = a.batch;
  o.prompt_len = a.prompt_len;
  o.gen_len = a.gen_len;
  o.reps = a.reps;
  o.warmup = a.warmup;
  o.seed = a.seed;

  auto model = model::Model::load(a.model);
  bench::validate_options(o, model->spec());  // fail before hashing or timing anything

  runtime::cpu::CpuBackendOptions bo;
  bo.mode = a.reference ? runtime::cpu::CpuMode::Reference : runtime::cpu::CpuMode::Fast;
  bo.n_threads = a.threads;
  runtime::cpu::CpuBackend backend(model, bo);

  const auto run = bench::run_decode_bench(backend, *model, o, !a.no_progress);
  bench::BandwidthOptions bwo;
  bwo.buffer_bytes = size_t(a.bandwidth_mib) << 20;
  bwo.threads = a.threads;
  const auto bw = bench::measure_bandwidth(bwo);

  bench::BenchContext ctx{a.model, model->sha256(), a.threads > 0 ? a.threads : bw.threads};
  const Result r = bench::make_bench_result(run, bw, *model, backend, ctx);
  std::printf("%s", bench::render_bench_table(r).c_str());
  std::printf("backend: %s\nbandwidth: %s\n", backend.describe().c_str(),
              r.manifest().value_or("hardware.bandwidth", "?").c_str());
  if (!a.json_out.empty()) {
    const std::string text = r.to_json().dump(2) + "\n";
    AtomicFileWriter w(a.json_out);
    w.write(text.data(), text.size());
    w.commit();
  }
}

}  // namespace

void register_bench(CLI::App& app) {
  auto* cmd = app.add_subcommand("bench", "Prefill/decode speed per batch size, against the measured memory bandwidth");
  auto a = std::make_shared<BenchArgs>();
  cmd->add_option("model", a->model, "GGUF model file or Hugging Face model directory")->required();
  cmd->add_option("--batch", a->batch, "Batch sizes (sequences decoded together), comma-separated")->delimiter(',');
  cmd->add_option("--prompt-len", a->prompt_len, "Prompt tokens per sequence (random ids)");
  cmd->add_option("--gen-len", a->gen_len, "Decode steps per sequence");
  cmd->add_option("--reps", a->reps, "Measured repetitions per batch size");
  cmd->add_option("--warmup", a->warmup, "Warm-up repetitions per batch size (excluded)");
  cmd->add_option("--threads,-t", a->threads, "CPU threads (0 = all cores)");
  cmd->add_option("--seed", a->seed, "Seed of the random prompt tokens (recorded)");
  cmd->add_option("--bandwidth-mib", a->bandwidth_mib, "Bandwidth probe buffer size in MiB");
  cmd->add_flag("--reference", a->reference, "Run the exact fp32 reference path instead of the fast kernels");
  cmd->add_flag("--no-progress", a->no_progress, "No progress bar on stderr");
  cmd->add_option("--json", a->json_out, "Write the Result as JSON to this file");
  cmd->callback([a] { run_bench(*a); });
}

}  // namespace qb::cli
