// `quantbench bench MODEL [--batch 1,4,16] [--prompt-len 512] [--gen-len 128] [--reps N] [--warmup N]
// [--threads N] [--kv T] [--backend cpu|cuda] [--scheme S] [--json OUT]`: decode and prefill speed at each batch
// size, with the memory bandwidth measured in the same run as the roofline. MODEL is a GGUF file or
// synthetic:NAME (random weights at a real model's shape; on cuda made on the GPU in --scheme, on the
// CPU small shapes only, f32). A table on stdout; the full Result as JSON (atomically) with --json.
// `--load-rate R1,R2 [--load-requests N] [--max-streams S]` replaces the batch sweep with the Poisson
// load mode (bench/load_bench.h): latency percentiles against achieved throughput at each offered rate.
#include <cstdio>
#include <memory>
#include <thread>

#include "quantbench/bench/bandwidth_probe.h"
#include "quantbench/bench/decode_bench.h"
#include "quantbench/bench/load_bench.h"
#include "quantbench/cli/commands.h"
#include "quantbench/core/error.h"
#include "quantbench/core/mapped_file.h"
#include "quantbench/core/sha256.h"
#include "quantbench/formats/gguf_reader.h"
#include "quantbench/model/model.h"
#include "quantbench/model/synthetic.h"
#include "quantbench/runtime/cpu/cpu_backend.h"
#ifdef QB_HAVE_CUDA
#include "quantbench/runtime/cuda/cuda_bench.h"
#endif
#include <unistd.h>

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
  std::string kv = "f32";
  std::vector<double> load_rates;  // non-empty: the Poisson load mode instead of the batch sweep
  int64_t load_requests = 32;
  int64_t max_streams = 16;
  std::string backend = "cpu";
  std::string scheme;  // synthetic models on cuda
  std::string synthetic_name;  // set when a CPU run's file is a synthetic model's temporary GGUF
};

void write_json(const std::string& path, const Result& r) {
  if (path.empty()) return;
  const std::string text = r.to_json().dump(2) + "\n";
  AtomicFileWriter w(path);
  w.write(text.data(), text.size());
  w.commit();
}

void run_bench_cuda(const BenchArgs& a) {
  QB_CHECK(a.load_rates.empty(), "--load-rate: the load mode runs on the CPU backend only for now");
#ifdef QB_HAVE_CUDA
  runtime::cuda::CudaBenchOptions o;
  runtime::cuda::CudaBackendOptions co;
  co.kv = runtime::parse_kv_type(a.kv);
  if (co.kv == runtime::KvType::F32) co.kv = runtime::KvType::F16;  // the default f32 runs the GPU's f16 cache
  o.batch_sizes = a.batch;
  o.prompt_len = a.prompt_len;
  o.gen_len = a.gen_len;
  o.reps = a.reps;
  o.warmup = a.warmup;
  o.seed = a.seed;
  std::unique_ptr<runtime::cuda::CudaBackend> be;
  const bool synth = model::is_synthetic(a.model);
  if (synth) {
    const auto shape = model::synthetic_shape(a.model);
    be = std::make_unique<runtime::cuda::CudaBackend>(shape.spec, "synthetic:" + shape.name,
                                                      a.scheme.empty() ? "bf16" : a.scheme, a.seed, co);
  } else {
    QB_CHECK(a.scheme.empty(), "--scheme applies to synthetic models only (a file runs as stored)");
    be = std::make_unique<runtime::cuda::CudaBackend>(model::Model::load(a.model), co);
  }
  auto rep = runtime::cuda::run_cuda_bench(*be, a.model, o, !a.no_progress);
  rep.synthetic = synth;
  rep.scheme = be->synthetic_scheme();
  std::printf("%s", runtime::cuda::render_cuda_bench_table(rep).c_str());
  std::printf("backend: %s\ngpu: %s\n", be->describe().c_str(), be->device_facts().c_str());
  std::fflush(stdout);
  const Result r = runtime::cuda::make_cuda_bench_result(rep, *be);
  write_json(a.json_out, r);
#else
  (void)a;
  fail("--backend cuda: this build has no CUDA backend (configure with -DQB_CUDA=ON)");
#endif
}

void run_bench(const BenchArgs& a) {
  if (a.backend == "cuda") return run_bench_cuda(a);
  QB_CHECK(a.backend == "cpu", "--backend must be cpu or cuda, got '{}'", a.backend);
  QB_CHECK(a.scheme.empty(), "--scheme applies to synthetic models on --backend cuda (the CPU's synthetic weights are f32)");
  if (model::is_synthetic(a.model)) {
    // CPU: small shapes only, written to a temporary GGUF (the CPU backend runs files).
    const auto shape = model::synthetic_shape(a.model);
    char tmpl[] = "/tmp/qb_synthetic_XXXXXX";
    const int fd = mkstemp(tmpl);
    QB_CHECK(fd >= 0, "synthetic model: cannot create a temporary file");
    close(fd);
    BenchArgs b = a;
    b.model = tmpl;
    b.synthetic_name = "synthetic:" + shape.name;
    try {
      model::make_synthetic_gguf(shape, a.seed, tmpl);
      run_bench(b);
    } catch (...) {
      unlink(tmpl);
      throw;
    }
    unlink(tmpl);
    return;
  }
  QB_CHECK(a.threads >= 0, "--threads must be >= 0, got {}", a.threads);
  QB_CHECK(a.bandwidth_mib >= 1, "--bandwidth-mib must be >= 1, got {}", a.bandwidth_mib);
  bench::DecodeBenchOptions o;
  o.batch_sizes = a.batch;
  o.prompt_len = a.prompt_len;
  o.gen_len = a.gen_len;
  o.reps = a.reps;
  o.warmup = a.warmup;
  o.seed = a.seed;
  o.kv = runtime::parse_kv_type(a.kv);

  auto model = model::Model::load(a.model);
  if (a.load_rates.empty()) bench::validate_options(o, model->spec());  // fail before hashing or timing anything

  runtime::cpu::CpuBackendOptions bo;
  bo.mode = a.reference ? runtime::cpu::CpuMode::Reference : runtime::cpu::CpuMode::Fast;
  bo.n_threads = a.threads;
  bo.kv = o.kv;
  runtime::cpu::CpuBackend backend(model, bo);

  // A synthetic model's Manifest names its shape, not the temporary file it ran from.
  auto label_synthetic = [&](Result r) {
    if (a.synthetic_name.empty()) return r;
    Manifest m = r.manifest();
    m.set("model.synthetic", "true");
    m.set("model.shape", a.synthetic_name);
    m.set("model.name", a.synthetic_name);
    m.set("model.source_file", a.synthetic_name + " (random f32 weights, seed " + std::to_string(a.seed) + ")");
    Result out(r.regime(), r.task(), std::move(m));
    for (const auto& x : r.metrics()) out.add_metric(x);
    for (const auto& x : r.items()) out.add_item(x);
    out.set_misses(r.misses());
    return out;
  };

  if (!a.load_rates.empty()) {
    bench::LoadBenchOptions lo;
    lo.rates = a.load_rates;
    lo.requests = a.load_requests;
    lo.prompt_len = a.prompt_len;
    lo.gen_len = a.gen_len;
    lo.max_streams = a.max_streams;
    lo.seed = a.seed;
    const auto runs = bench::run_load_bench(backend, lo, !a.no_progress);
    bench::BenchContext ctx{a.model, model->sha256(), a.threads > 0 ? a.threads : int(std::thread::hardware_concurrency())};
    const Result r = label_synthetic(
        bench::make_load_result(runs, lo, bench::bench_manifest(*model, backend, ctx, nullptr, o.kv)));
    std::printf("%s", bench::render_load_table(r).c_str());
    std::printf("backend: %s\n", backend.describe().c_str());
    write_json(a.json_out, r);
    return;
  }

  const auto run = bench::run_decode_bench(backend, *model, o, !a.no_progress);
  bench::BandwidthOptions bwo;
  bwo.buffer_bytes = size_t(a.bandwidth_mib) << 20;
  bwo.threads = a.threads;
  const auto bw = bench::measure_bandwidth(bwo);

  bench::BenchContext ctx{a.model, model->sha256(), a.threads > 0 ? a.threads : bw.threads};
  const Result r = label_synthetic(bench::make_bench_result(run, bw, *model, backend, ctx));
  std::printf("%s", bench::render_bench_table(r).c_str());
  std::printf("backend: %s\nbandwidth: %s\n", backend.describe().c_str(),
              r.manifest().value_or("hardware.bandwidth", "?").c_str());
  write_json(a.json_out, r);
}

}  // namespace

void register_bench(CLI::App& app) {
  auto* cmd = app.add_subcommand("bench", "Prefill/decode speed per batch size, against the measured memory bandwidth");
  auto a = std::make_shared<BenchArgs>();
  cmd->add_option("model", a->model,
                  "GGUF model file, Hugging Face model directory, or synthetic:NAME (llama2-7b, llama3-8b, qwen2.5-7b, tiny)")
      ->required();
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
  cmd->add_option("--load-rate", a->load_rates,
                  "Poisson load mode: offered request rates per second, comma-separated (replaces the batch sweep)")
      ->delimiter(',');
  cmd->add_option("--load-requests", a->load_requests, "Load mode: requests per rate");
  cmd->add_option("--max-streams", a->max_streams, "Load mode: requests decoded together at most");
  cmd->add_option("--kv", a->kv, "KV cache precision: f32 (default; f16 on --backend cuda), f16, int8, fp8 or int4");
  cmd->add_option("--json", a->json_out, "Write the Result as JSON to this file");
  cmd->add_option("--backend", a->backend, "cpu, or cuda in builds with QB_CUDA=ON");
  cmd->add_option("--scheme", a->scheme, "Synthetic models on cuda: bf16 (default), w8, w8g32, w8g16, w8g32m, w8g16m, w4g32, w4g128[-asym], w4g32m, q4_k_m, q5_k_m, w8a8[-fp8]");
  cmd->callback([a] { run_bench(*a); });
}

}  // namespace qb::cli
