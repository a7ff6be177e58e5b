// Decode benchmark (see decode_bench.h). Prefill runs sequence by sequence, so each sequence's time
// to first token is its own prefill forward plus its first sample (no queueing behind the others);
// decode then advances all B sequences together, one forward per step.
#include "quantbench/bench/decode_bench.h"

#include "quantbench/runtime/cpu/cpu_backend.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>

#include "quantbench/core/environment.h"
#include "quantbench/core/error.h"
#include "quantbench/core/progress.h"
#include "quantbench/core/rng.h"
#include "quantbench/runtime/sampler.h"

namespace qb::bench {
namespace {

using clock_type = std::chrono::steady_clock;
double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

int64_t read_vm_hwm_kib() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6));
  return -1;
}

int64_t read_maxrss_kib() {
  rusage u{};
  if (getrusage(RUSAGE_SELF, &u) != 0) return -1;
  return int64_t(u.ru_maxrss);  // KiB on Linux
}

std::string fmt(double v, int prec = 6) {
  char b[64];
  std::snprintf(b, sizeof b, "%.*g", prec, v);
  return b;
}

}  // namespace

void validate_options(const DecodeBenchOptions& o, const model::ModelSpec& spec) {
  QB_CHECK(!o.batch_sizes.empty(), "--batch: at least one batch size is needed");
  for (int64_t b : o.batch_sizes) QB_CHECK(b >= 1 && b <= 4096, "--batch: batch size must be in [1, 4096], got {}", b);
  QB_CHECK(o.prompt_len >= 1, "--prompt-len must be >= 1, got {}", o.prompt_len);
  QB_CHECK(o.gen_len >= 1, "--gen-len must be >= 1, got {}", o.gen_len);
  QB_CHECK(o.reps >= 1, "--reps must be >= 1, got {}", o.reps);
  QB_CHECK(o.warmup >= 0, "--warmup must be >= 0, got {}", o.warmup);
  QB_CHECK(o.prompt_len + o.gen_len <= spec.n_ctx_train,
           "--prompt-len {} + --gen-len {} = {} exceeds the model's context of {} tokens", o.prompt_len, o.gen_len,
           o.prompt_len + o.gen_len, spec.n_ctx_train);
}

int64_t weight_bytes_per_step(const model::Model& m) {
  // Our own formats (INTk, NF4, FP8) hold codes, scales and zero points in a QuantizedTensor and leave
  // row_bytes at 0; every byte of that storage is read once per step.
  auto bytes = [](const model::WeightMatrix& w) {
    return w.quantized ? int64_t(w.quantized->storage_bytes()) : int64_t(w.row_bytes) * w.n_out;
  };
  int64_t total = bytes(m.output);  // the logits matrix (token_embd itself when tied): counted once
  for (const auto& L : m.layers)
    for (const model::WeightMatrix* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) total += bytes(*w);
  return total;
}

int64_t kv_bytes_per_sequence(const model::ModelSpec& s, int64_t context, runtime::KvType kv) {
  const auto k = runtime::KvLayout::make(kv, s.n_head_kv, s.head_dim_k);
  const auto v = runtime::KvLayout::make(kv, s.n_head_kv, s.head_dim_v);
  return s.n_layer * int64_t(k.bytes_per_row() + v.bytes_per_row()) * context;
}

double percentile(std::vector<double> v, double q) {
  QB_CHECK(!v.empty(), "percentile of an empty sample");
  QB_CHECK(q >= 0 && q <= 100, "percentile must be in [0, 100], got {}", q);
  std::sort(v.begin(), v.end());
  const double pos = q / 100.0 * double(v.size() - 1);
  const size_t lo = size_t(std::floor(pos)), hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - double(lo));
}

DecodeBenchRun run_decode_bench(runtime::Backend& backend, const model::Model& model, const DecodeBenchOptions& o,
                                bool progress) {
  const auto& spec = model.spec();
  validate_options(o, spec);
  DecodeBenchRun run;
  run.options = o;
  run.weight_bytes = weight_bytes_per_step(model);

  // Mean context over the decode steps: step j (0-based) attends to prompt_len + j + 1 positions.
  const double mean_context = double(o.prompt_len) + double(o.gen_len + 1) / 2.0;

  int64_t total_reps = 0;
  for (size_t i = 0; i < o.batch_sizes.size(); ++i) total_reps += o.reps + o.warmup;
  Progress bar("bench", total_reps, progress);

  Rng rng(o.seed);  // core/rng.h: the same prompt tokens for a seed on every platform

  for (int64_t B : o.batch_sizes) {
    BatchTimings bt;
    bt.batch = B;
    bt.kv_bytes_per_step = int64_t(std::llround(double(B) * double(kv_bytes_per_sequence(spec, 1, o.kv)) * mean_context));
    bt.bytes_per_step = run.weight_bytes + bt.kv_bytes_per_step;

    for (int rep = 0; rep < o.warmup + o.reps; ++rep) {
      const bool measured = rep >= o.warmup;
      std::vector<runtime::SeqId> seqs;
      std::vector<int32_t> next(size_t(B), 0);
      double prefill_total = 0;
      for (int64_t b = 0; b < B; ++b) {
        std::vector<int32_t> prompt(size_t(o.prompt_len));
        for (auto& t : prompt) t = int32_t(rng.below(uint64_t(spec.n_vocab)));
        const runtime::SeqId s = backend.create_sequence(o.prompt_len + o.gen_len);
        seqs.push_back(s);
        runtime::Batch batch;
        batch.add_sequence(prompt, s, 0);
        const auto t0 = clock_type::now();
        const runtime::Logits lg = backend.forward(batch);
        next[size_t(b)] = runtime::argmax(lg.row(0));
        const double dt = seconds_since(t0);
        prefill_total += dt;
        if (measured) bt.ttft_s.push_back(dt);
      }
      double decode_total = 0;
      for (int64_t j = 0; j < o.gen_len; ++j) {
        runtime::Batch batch;
        for (int64_t b = 0; b < B; ++b) batch.add(next[size_t(b)], seqs[size_t(b)], o.prompt_len + j, true);
        const auto t0 = clock_type::now();
        const runtime::Logits lg = backend.forward(batch);
        for (size_t r = 0; r < lg.rows(); ++r) next[lg.batch_index[r]] = runtime::argmax(lg.row(r));
        const double dt = seconds_since(t0);
        decode_total += dt;
        if (measured) bt.step_s.push_back(dt);
      }
      for (auto s : seqs) backend.free_sequence(s);
      if (measured) {
        bt.prefill_tok_s.push_back(double(B * o.prompt_len) / prefill_total);
        bt.decode_tok_s.push_back(double(B * o.gen_len) / decode_total);
      }
      bar.advance(1, "batch " + std::to_string(B));
    }
    bt.peak_rss_kib = read_maxrss_kib();
    bt.vm_hwm_kib = read_vm_hwm_kib();
    run.batches.push_back(std::move(bt));
  }
  bar.finish();
  return run;
}

Manifest bench_manifest(const model::Model& model, const runtime::Backend& backend, const BenchContext& ctx,
                        const BandwidthResult* bw, runtime::KvType kv) {
  Manifest m;
  add_build_and_host_facts(m, ctx.threads);
  m.set("model.name", model.name());
  m.set("model.architecture", model.spec().gguf_arch);
  m.set("model.parameters", std::to_string(model.n_params_stored()));
  m.set("model.source_file", ctx.model_path);
  m.set("model.sha256", ctx.model_sha256);
  m.set("model.baseline_precision", model.describe_weight_types());
  m.set("model.baseline_note", "weights as stored in the file, run without conversion");
  m.set("scheme.name", "none");
  for (const char* k : {"scheme.tensors", "scheme.weight_format", "scheme.group_size", "scheme.symmetric",
                        "scheme.scale_dtype", "scheme.kept_high_precision", "scheme.bits_per_weight",
                        "scheme.bits_per_weight_no_embeddings"})
    m.set_unknown(k, "not a quantized candidate: the file's stored weights ran");
  if (const auto* cpu = dynamic_cast<const runtime::cpu::CpuBackend*>(&backend))
    m.set("scheme.activations", cpu->describe_activations());
  else
    m.set("scheme.activations", "as the backend reports (toolchain.backend)");
  {
    const auto k = runtime::KvLayout::make(kv, model.spec().n_head_kv, model.spec().head_dim_k);
    m.set("scheme.kv_cache", k.describe() + " (bytes_per_step counts these KV bytes, scales included)");
  }
  for (const char* k :
       {"calibration.method", "calibration.dataset", "calibration.dataset_sha256", "calibration.samples", "calibration.seed"})
    m.set_unknown(k, "not a quantized candidate");
  m.set_unknown("harness.dataset_sha256", "no dataset: uniform random token ids (harness.seed)");
  m.set_unknown("harness.shots", "not applicable to a speed benchmark");
  m.set_unknown("harness.prompt_template_hash", "no prompt template: random token ids");
  m.set("toolchain.backend", backend.describe());
  m.set_unknown("toolchain.cuda", "CPU run");
  m.set_unknown("toolchain.libraries", "CPU run: no external math libraries");
  m.set_unknown("hardware.gpu", "CPU run");
  if (!bw) {
    m.set_unknown("hardware.bandwidth", "not measured in this mode");
    return m;
  }
  m.set("hardware.bandwidth", "read " + fmt(bw->read.median, 4) + " GB/s (min " + fmt(bw->read.min, 4) + ", max " +
                                  fmt(bw->read.max, 4) + "), copy (read+write) " + fmt(bw->copy.median, 4) +
                                  " GB/s (min " + fmt(bw->copy.min, 4) + ", max " + fmt(bw->copy.max, 4) + "); " +
                                  std::to_string(bw->buffer_bytes >> 20) + " MiB buffer, " +
                                  std::to_string(bw->threads) + " threads, " + std::to_string(bw->reps) + " reps");
  return m;
}

Result make_bench_result(const DecodeBenchRun& run, const BandwidthResult& bw, const model::Model& model,
                         const runtime::Backend& backend, const BenchContext& ctx) {
  const auto& o = run.options;
  Manifest m = bench_manifest(model, backend, ctx, &bw, o.kv);
  m.set("harness.task", "bench decode");
  m.set("harness.task_version", "1");
  m.set("harness.items", std::to_string(o.batch_sizes.size()) + " batch sizes");
  m.set("harness.generation", "prompt_len=" + std::to_string(o.prompt_len) + ", gen_len=" + std::to_string(o.gen_len) +
                                  ", greedy argmax, reps=" + std::to_string(o.reps) +
                                  ", warmup=" + std::to_string(o.warmup) + " (excluded)");
  m.set("harness.seed", "prompt tokens: uniform random ids from xoshiro256** (core/rng.h), seed " + std::to_string(o.seed));
  std::string batches;
  for (int64_t b : o.batch_sizes) {
    if (!batches.empty()) batches += ',';
    batches += std::to_string(b);
  }
  m.set("harness.batch_size", batches);
  Result r("bench", "decode", std::move(m));
  r.set_misses(
      "Speed only: says nothing about accuracy. Random prompt tokens, greedy sampling; one process, no "
      "concurrent requests or scheduling; peak memory is the process peak so far (it only grows across batch "
      "sizes); embedding rows read per step are left out of bytes/step as negligible.");
  r.add_metric({"bandwidth_read_gbps", bw.read.median, {}, {}, Direction::HigherIsBetter, "median", "GB/s"});
  r.add_metric({"bandwidth_copy_gbps", bw.copy.median, {}, {}, Direction::HigherIsBetter, "median", "GB/s"});
  r.add_metric({"weight_bytes_per_step", double(run.weight_bytes), {}, {}, Direction::Neither, "count", "bytes"});

  for (const auto& bt : run.batches) {
    std::string p = "b";  // built by appending: GCC 12 warns falsely (-Wrestrict) on "lit" + string
    p += std::to_string(bt.batch);
    p += '.';
    const Spread pre = spread_of(bt.prefill_tok_s), dec = spread_of(bt.decode_tok_s);
    const double tpot50 = percentile(bt.step_s, 50), tpot90 = percentile(bt.step_s, 90),
                 tpot99 = percentile(bt.step_s, 99);
    const double ttft50 = percentile(bt.ttft_s, 50), ttft90 = percentile(bt.ttft_s, 90),
                 ttft99 = percentile(bt.ttft_s, 99);
    const double achieved = double(bt.bytes_per_step) / tpot50 / 1e9;
    const double share = bw.read.median > 0 ? achieved / bw.read.median : 0;
    auto add = [&](const std::string& name, double v, Direction d, const std::string& agg, const std::string& unit) {
      r.add_metric({p + name, v, {}, {}, d, agg, unit});
    };
    add("prefill_tok_s", pre.median, Direction::HigherIsBetter, "median over reps", "tok/s");
    add("decode_tok_s", dec.median, Direction::HigherIsBetter, "median over reps", "tok/s");
    add("ttft_p50_s", ttft50, Direction::LowerIsBetter, "p50", "s");
    add("ttft_p90_s", ttft90, Direction::LowerIsBetter, "p90", "s");
    add("ttft_p99_s", ttft99, Direction::LowerIsBetter, "p99", "s");
    add("tpot_p50_s", tpot50, Direction::LowerIsBetter, "p50", "s");
    add("tpot_p90_s", tpot90, Direction::LowerIsBetter, "p90", "s");
    add("tpot_p99_s", tpot99, Direction::LowerIsBetter, "p99", "s");
    add("achieved_gbps", achieved, Direction::HigherIsBetter, "bytes_per_step / tpot p50", "GB/s");
    add("roofline_share", share, Direction::HigherIsBetter, "achieved / bandwidth_read median", "");
    add("peak_rss_kib", double(bt.peak_rss_kib), Direction::LowerIsBetter, "max", "KiB");

    nlohmann::json item;
    item["batch"] = bt.batch;
    item["prompt_len"] = o.prompt_len;
    item["gen_len"] = o.gen_len;
    item["reps"] = o.reps;
    item["warmup"] = o.warmup;
    item["prefill_tok_s"] = {{"min", pre.min}, {"median", pre.median}, {"max", pre.max}, {"per_rep", bt.prefill_tok_s}};
    item["decode_tok_s"] = {{"min", dec.min}, {"median", dec.median}, {"max", dec.max}, {"per_rep", bt.decode_tok_s}};
    item["ttft_s"] = {{"p50", ttft50}, {"p90", ttft90}, {"p99", ttft99}, {"n", bt.ttft_s.size()}};
    item["tpot_s"] = {{"p50", tpot50}, {"p90", tpot90}, {"p99", tpot99}, {"n", bt.step_s.size()}};
    item["bytes_per_step"] = {{"total", bt.bytes_per_step}, {"weights", run.weight_bytes}, {"kv_cache_mean", bt.kv_bytes_per_step}};
    item["achieved_gbps"] = achieved;
    item["roofline_share"] = share;
    item["peak_memory_kib"] = {{"ru_maxrss", bt.peak_rss_kib}, {"vm_hwm", bt.vm_hwm_kib}};
    r.add_item(std::move(item));
  }
  return r;
}

std::string render_bench_table(const Result& r) {
  std::ostringstream os;
  char line[256];
  std::snprintf(line, sizeof line, "%6s %12s %10s %10s %10s %10s %12s %8s %9s\n", "batch", "prefill t/s", "TTFT p50",
                "TPOT p50", "TPOT p90", "TPOT p99", "decode t/s", "GB/s", "roofline");
  os << line;
  for (const auto& it : r.items()) {
    std::snprintf(line, sizeof line, "%6lld %12.1f %9.2fms %9.3fms %9.3fms %9.3fms %12.1f %8.2f %8.1f%%\n",
                  (long long)it["batch"].get<int64_t>(), it["prefill_tok_s"]["median"].get<double>(),
                  1e3 * it["ttft_s"]["p50"].get<double>(), 1e3 * it["tpot_s"]["p50"].get<double>(),
                  1e3 * it["tpot_s"]["p90"].get<double>(), 1e3 * it["tpot_s"]["p99"].get<double>(),
                  it["decode_tok_s"]["median"].get<double>(), it["achieved_gbps"].get<double>(),
                  100.0 * it["roofline_share"].get<double>());
    os << line;
  }
  return os.str();
}

}  // namespace qb::bench
