// Decode benchmark: for each batch size B, B sequences each prefill prompt_len random tokens (fixed
// seed) and then take gen_len decode steps, each step ONE forward carrying one token per sequence,
// greedy argmax sampling. Timings are wall-clock around backend calls plus sampling, warm-up reps are
// discarded. The result is shaped by EVALUATION.md's Performance section: throughput never without
// batch size and latency percentiles, and each decode figure against its roofline (bytes read per
// step over the bandwidth measured in the same run).
//
// Design choice: the timing run (run_decode_bench) and the bandwidth probe are separate steps that
// make_bench_result joins, so the probe's 1 GiB of buffers never inflates the peak-memory figure.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "quantbench/bench/bandwidth_probe.h"
#include "quantbench/core/result.h"
#include "quantbench/model/model.h"
#include "quantbench/runtime/backend.h"
#include "quantbench/runtime/kv_cache.h"

namespace qb::bench {

struct DecodeBenchOptions {
  std::vector<int64_t> batch_sizes{1, 4, 16};
  int64_t prompt_len = 512;
  int64_t gen_len = 128;
  int reps = 3;
  int warmup = 1;
  uint64_t seed = 20260101;  // token ids of the prompts (recorded in the Manifest)
  runtime::KvType kv = runtime::KvType::F32;  // the backend's KV cache precision (bytes per step, Manifest)
};

// Throws qb::Error with a one-line message for impossible settings (batch 0, lengths beyond the
// model's context, reps < 1, ...).
void validate_options(const DecodeBenchOptions& o, const model::ModelSpec& spec);

// Bytes of every weight matrix read by one decode step: each matrix's row_bytes * n_out over all
// layers plus the logits matrix (a tied embedding counted once, as the logits matrix). Embedding rows
// (B rows per step) are left out as negligible.
int64_t weight_bytes_per_step(const model::Model& model);

// KV cache bytes read per sequence when the new token attends to `context` positions: codes and
// scales of K and V in every layer, in the cache's stored precision (runtime/kv_cache.h).
int64_t kv_bytes_per_sequence(const model::ModelSpec& spec, int64_t context,
                              runtime::KvType kv = runtime::KvType::F32);

struct BatchTimings {
  int64_t batch = 0;
  std::vector<double> prefill_tok_s;  // per measured rep: B * prompt_len / total prefill seconds
  std::vector<double> decode_tok_s;   // per measured rep: B * gen_len / total decode seconds
  std::vector<double> ttft_s;         // per sequence per rep: its prefill forward + first sample
  std::vector<double> step_s;         // per decode step per rep: one forward of B tokens + B samples
  int64_t bytes_per_step = 0;         // weights + mean KV read across the decode steps
  int64_t kv_bytes_per_step = 0;
  int64_t peak_rss_kib = 0;           // getrusage ru_maxrss after this batch (process peak so far)
  int64_t vm_hwm_kib = -1;            // /proc/self/status VmHWM; -1 if unreadable
};

struct DecodeBenchRun {
  DecodeBenchOptions options;
  int64_t weight_bytes = 0;
  std::vector<BatchTimings> batches;
};

// `progress`: show a progress bar on stderr.
DecodeBenchRun run_decode_bench(runtime::Backend& backend, const model::Model& model,
                                const DecodeBenchOptions& options, bool progress = false);

// Linear-interpolated percentile (q in [0, 100]) of a non-empty sample.
double percentile(std::vector<double> v, double q);

struct BenchContext {
  std::string model_path;
  std::string model_sha256;  // of the file
  int threads = 0;
};

// The model, scheme, build, host, toolchain and hardware facts of a speed run, shared by the decode and
// load modes (`bandwidth` null when the mode measured none); each mode adds its own harness.* fields.
Manifest bench_manifest(const model::Model& model, const runtime::Backend& backend, const BenchContext& context,
                        const BandwidthResult* bandwidth, runtime::KvType kv);

// The Result (regime "bench", task "decode"): per-batch metrics and items, the Manifest complete.
Result make_bench_result(const DecodeBenchRun& run, const BandwidthResult& bandwidth, const model::Model& model,
                         const runtime::Backend& backend, const BenchContext& context);

// The stdout table: batch, prefill tok/s, TTFT p50, TPOT p50/p90/p99, decode tok/s, GB/s, roofline.
std::string render_bench_table(const Result& result);

}  // namespace qb::bench
