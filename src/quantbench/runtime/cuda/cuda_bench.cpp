// See cuda_bench.h. Prefill runs sequence by sequence (time to first token is a sequence's own
// prefill); decode advances all B sequences one token per forward, greedy argmax (part of the
// measured step, as it is for a server) computed on the device by CudaBackend::forward_greedy, so only
// the chosen token ids come back (forward() would copy every logit to the host). Wall-clock times around backend calls: forward() returns
// after the logits are on the host, so no extra synchronisation is needed.
#include "quantbench/runtime/cuda/cuda_bench.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>

#include "quantbench/core/environment.h"
#include "quantbench/core/error.h"
#include "quantbench/runtime/cuda/probes.h"

namespace qb::runtime::cuda {
namespace {

using clock_type = std::chrono::steady_clock;
double since(clock_type::time_point t0) { return std::chrono::duration<double>(clock_type::now() - t0).count(); }

double pct(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const double pos = q / 100.0 * double(v.size() - 1);
  const size_t lo = size_t(pos), hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - double(lo));
}

}  // namespace

CudaBenchReport run_cuda_bench(CudaBackend& be, const std::string& model_name, const CudaBenchOptions& o,
                               bool progress) {
  const model::ModelSpec& sp = be.spec();
  QB_CHECK(!o.batch_sizes.empty(), "--batch: at least one batch size is needed");
  for (int64_t b : o.batch_sizes) QB_CHECK(b >= 1 && b <= 256, "--batch: batch size must be in [1, 256], got {}", b);
  QB_CHECK(o.prompt_len >= 1 && o.gen_len >= 1, "--prompt-len and --gen-len must be >= 1");
  QB_CHECK(o.reps >= 1 && o.warmup >= 0, "--reps must be >= 1 and --warmup >= 0");
  QB_CHECK(o.prompt_len + o.gen_len <= sp.n_ctx_train, "--prompt-len {} + --gen-len {} exceeds the model's context of {}",
           o.prompt_len, o.gen_len, sp.n_ctx_train);
  CudaBenchReport r;
  r.options = o;
  r.model_name = model_name;
  r.weight_bytes = int64_t(be.weight_bytes());
  r.stored_weight_bytes = int64_t(be.stored_weight_bytes());
  r.weight_count = be.weight_count();
  const int64_t kv_per_pos = int64_t(be.kv_bytes_per_position());  // codes + scales of the cache that runs
  r.kv_type = std::string(kv_type_name(be.kv_type()));
  r.kv_bytes_per_position = kv_per_pos;
  const double mean_ctx = double(o.prompt_len) + double(o.gen_len + 1) / 2.0;

  std::mt19937_64 rng(o.seed);
  std::uniform_int_distribution<int32_t> td(0, int32_t(sp.n_vocab - 1));
  double prefill1_s = -1;
  for (int64_t B : o.batch_sizes) {
    CudaBenchRow row;
    row.batch = B;
    row.kv_bytes_per_step = int64_t(double(B) * double(kv_per_pos) * mean_ctx);
    row.bytes_per_step = r.weight_bytes + row.kv_bytes_per_step;
    std::vector<double> pre, dec, steps, pre1;
    for (int rep = 0; rep < o.warmup + o.reps; ++rep) {
      const bool measured = rep >= o.warmup;
      std::vector<SeqId> seqs;
      std::vector<int32_t> next(static_cast<size_t>(B));
      double pt = 0;
      for (int64_t b = 0; b < B; ++b) {
        std::vector<int32_t> prompt(size_t(o.prompt_len));
        for (auto& t : prompt) t = td(rng);
        const SeqId s = be.create_sequence(o.prompt_len + o.gen_len);
        seqs.push_back(s);
        Batch batch;
        batch.add_sequence(prompt, s, 0);
        const auto t0 = clock_type::now();
        next[size_t(b)] = be.forward_greedy(batch).at(0);
        const double dt = since(t0);
        pt += dt;
        if (measured) pre1.push_back(dt);
      }
      const auto t0 = clock_type::now();
      for (int64_t j = 0; j < o.gen_len; ++j) {
        Batch batch;
        for (int64_t b = 0; b < B; ++b) batch.add(next[size_t(b)], seqs[size_t(b)], o.prompt_len + j, true);
        const auto ts = clock_type::now();
        const std::vector<int32_t> ids = be.forward_greedy(batch);  // one per stream, in batch order
        for (size_t k = 0; k < ids.size(); ++k) next[k] = ids[k];
        if (measured) steps.push_back(since(ts));
      }
      const double dt = since(t0);
      for (auto s : seqs) be.free_sequence(s);
      if (measured) {
        pre.push_back(double(B * o.prompt_len) / pt);
        dec.push_back(double(B * o.gen_len) / dt);
      }
      if (progress) std::fprintf(stderr, "bench: batch %lld rep %d/%d\n", (long long)B, rep + 1, o.warmup + o.reps);
      if (be.profiling() && rep + 1 == o.warmup) (void)be.profile_report();  // warm-up forwards not profiled
    }
    if (be.profiling()) std::fprintf(stderr, "batch %lld:\n%s", (long long)B, be.profile_report().c_str());
    row.prefill_tok_s = pct(pre, 50);
    row.decode_tok_s = pct(dec, 50);
    row.step_p50_s = pct(steps, 50);
    row.step_p90_s = pct(steps, 90);
    row.achieved_gbs = double(row.bytes_per_step) / row.step_p50_s / 1e9;
    if (B == 1 || prefill1_s < 0) prefill1_s = pct(pre1, 50);
    r.rows.push_back(row);
  }
  // Same-run ceilings, after the model's timings (the probe's buffers are freed before they return).
  const BandwidthResult bw = probe_bandwidth(o.probe_bytes, 10);
  r.copy_gbs = bw.copy_gbs;
  r.read_gbs = bw.read_gbs;
  for (auto& row : r.rows) {
    row.roofline_share = row.achieved_gbs / r.copy_gbs;
    row.roofline_share_stored =
        double(r.stored_weight_bytes + row.kv_bytes_per_step) / row.step_p50_s / 1e9 / r.copy_gbs;
  }
  const GemmResult g = probe_gemm_bf16(int(o.prompt_len), int(2 * sp.n_ff), int(sp.n_embd), 10);
  r.gemm_tflops = g.tflops;
  const double layer_params = double(sp.n_embd) * double(sp.q_dim() + sp.kv_dim_k() + sp.kv_dim_v()) +
                              double(sp.n_head * sp.head_dim_v) * double(sp.n_embd) + 3.0 * double(sp.n_embd * sp.n_ff);
  const double flops = 2.0 * double(o.prompt_len) * layer_params * double(sp.n_layer) +
                       2.0 * double(sp.n_vocab) * double(sp.n_embd);  // logits of the last token only
  r.prefill_tflops = flops / prefill1_s / 1e12;
  return r;
}

Result make_cuda_bench_result(const CudaBenchReport& r, const CudaBackend& be) {
  const auto& o = r.options;
  Manifest m;
  add_build_and_host_facts(m, 0);
  m.set("model.name", r.model_name);
  m.set("model.architecture", be.spec().gguf_arch);
  m.set("model.synthetic", r.synthetic ? "true" : "false");
  if (r.synthetic) {
    m.set("model.shape", r.model_name);
    m.set("model.baseline_precision", "synthetic random weights in " + r.scheme + ", generated on the GPU");
    m.set_unknown("model.sha256", "synthetic model: no file");
    m.set("model.source_file", "none: " + r.model_name + " is generated on the GPU (seed in harness.seed)");
  }
  m.set("model.spec", be.spec().describe());
  const auto& sp = be.spec();
  const int64_t params = sp.n_layer * (sp.n_embd * (sp.q_dim() + sp.kv_dim_k() + sp.kv_dim_v()) +
                                       sp.n_head * sp.head_dim_v * sp.n_embd + 3 * sp.n_embd * sp.n_ff) +
                         2 * sp.n_vocab * sp.n_embd;
  m.set("model.parameters", std::to_string(params) + " (matrices and embeddings, from the spec)");
  if (!r.synthetic) {
    m.set("model.source_file", r.model_name);
    m.set_unknown("model.sha256", "not hashed by bench --backend cuda");
    m.set("model.baseline_precision", "weights as stored in the file");
  }
  m.set("model.baseline_note", r.synthetic ? "synthetic: no baseline, random weights" : "run without conversion");
  m.set_unknown("harness.dataset_sha256", "no dataset: uniform random token ids (harness.seed)");
  m.set("harness.items", std::to_string(o.batch_sizes.size()) + " batch sizes");
  m.set_unknown("harness.shots", "not applicable to a speed benchmark");
  m.set_unknown("harness.prompt_template_hash", "no prompt template: random token ids");
  m.set("toolchain.libraries", "cuBLAS (version in toolchain.cuda)");
  m.set("scheme.name", r.synthetic ? r.scheme : "none (weights as stored)");
  m.set("scheme.kv_cache", std::string(kv_type_name(be.kv_type())));
  m.set("harness.task", "bench decode (cuda)");
  m.set("harness.task_version", "1");
  m.set("harness.generation", fmt::format("prompt_len={}, gen_len={}, greedy argmax on the device (CudaBackend::forward_greedy), reps={}, warmup={} (excluded)",
                                          o.prompt_len, o.gen_len, o.reps, o.warmup));
  m.set("harness.seed", "prompt tokens: mt19937_64 seed " + std::to_string(o.seed));
  m.set("harness.batch_size", fmt::format("{}", fmt::join(o.batch_sizes, ",")));
  m.set("toolchain.backend", be.describe());
  m.set("toolchain.cuda", be.device_facts());
  m.set("hardware.gpu", be.device_facts());
  m.set("hardware.bandwidth", fmt::format("device copy kernel {:.0f} GB/s (read + written, {} MiB buffers, median of "
                                          "10), read-only kernel {:.0f} GB/s; same run",
                                          r.copy_gbs, o.probe_bytes >> 20, r.read_gbs));
  m.set("hardware.gemm", fmt::format("cuBLAS bf16 GEMM {} tokens x {} x {}: {:.0f} TFLOP/s; same run", o.prompt_len,
                                     2 * be.spec().n_ff, be.spec().n_embd, r.gemm_tflops));
  Result res("bench", "decode", std::move(m));
  res.set_misses("Speed only. Roofline = copy-probe bandwidth / (weight + scale + zero-point bytes + KV bytes (codes + scales "
                 "of the cache type that ran) read per step); embeddings and activations left out. roofline_share_stored "
                 "counts the weights as the model stores them instead (lower where the GPU's packed form is wider, e.g. "
                 "GGUF Q6_K read as int8). Prefill FLOPs count the matrix products only.");
  res.add_metric({"bandwidth_copy_gbps", r.copy_gbs, {}, {}, Direction::HigherIsBetter, "median", "GB/s"});
  res.add_metric({"weight_bytes_per_step", double(r.weight_bytes), {}, {}, Direction::Neither, "count", "bytes"});
  res.add_metric({"weight_bytes_stored", double(r.stored_weight_bytes), {}, {}, Direction::Neither, "count", "bytes"});
  res.add_metric({"kv_bytes_per_position", double(r.kv_bytes_per_position), {}, {}, Direction::LowerIsBetter, "count", "bytes"});
  res.add_metric({"prefill_tflops", r.prefill_tflops, {}, {}, Direction::HigherIsBetter, "median", "TFLOP/s"});
  res.add_metric({"gemm_bf16_tflops", r.gemm_tflops, {}, {}, Direction::HigherIsBetter, "median", "TFLOP/s"});
  for (const auto& row : r.rows) {
    std::string p = "b";  // appended: GCC 12 warns falsely (-Wrestrict) on "lit" + string
    p += std::to_string(row.batch);
    p += '.';
    res.add_metric({p + "prefill_tok_s", row.prefill_tok_s, {}, {}, Direction::HigherIsBetter, "median over reps", "tok/s"});
    res.add_metric({p + "decode_tok_s", row.decode_tok_s, {}, {}, Direction::HigherIsBetter, "median over reps", "tok/s"});
    res.add_metric({p + "roofline_share", row.roofline_share, {}, {}, Direction::HigherIsBetter,
                    "bytes_per_step / step p50 / copy probe", ""});
    res.add_metric({p + "roofline_share_stored", row.roofline_share_stored, {}, {}, Direction::HigherIsBetter,
                    "(stored weight bytes + KV) / step p50 / copy probe", ""});
    nlohmann::json it;
    it["batch"] = row.batch;
    it["prefill_tok_s"] = row.prefill_tok_s;
    it["decode_tok_s"] = row.decode_tok_s;
    it["step_s"] = {{"p50", row.step_p50_s}, {"p90", row.step_p90_s}};
    it["bytes_per_step"] = {{"total", row.bytes_per_step}, {"weights", r.weight_bytes}, {"kv_cache_mean", row.kv_bytes_per_step},
                            {"weights_as_stored", r.stored_weight_bytes}};
    it["achieved_gbps"] = row.achieved_gbs;
    it["roofline_share"] = row.roofline_share;
    it["roofline_share_stored"] = row.roofline_share_stored;
    res.add_item(std::move(it));
  }
  return res;
}

std::string render_cuda_bench_table(const CudaBenchReport& r) {
  std::string s = fmt::format("{:>6} {:>12} {:>12} {:>10} {:>14} {:>9} {:>9}\n", "batch", "prefill t/s", "decode t/s",
                              "step p50", "bytes/step", "GB/s", "roofline");
  for (const auto& row : r.rows)
    s += fmt::format("{:>6} {:>12.1f} {:>12.1f} {:>8.3f}ms {:>14} {:>9.1f} {:>8.1f}%\n", row.batch, row.prefill_tok_s,
                     row.decode_tok_s, 1e3 * row.step_p50_s, row.bytes_per_step, row.achieved_gbs,
                     100 * row.roofline_share);
  const double n = double(std::max<int64_t>(r.weight_count, 1));
  s += fmt::format("copy probe {:.0f} GB/s (read-only {:.0f}); weights {} bytes/step ({:.3f} bits/weight); kv cache {}: "
                   "{} bytes per position per sequence\n",
                   r.copy_gbs, r.read_gbs, r.weight_bytes, 8.0 * double(r.weight_bytes) / n, r.kv_type,
                   r.kv_bytes_per_position);
  if (r.stored_weight_bytes != r.weight_bytes) {
    std::string shares;
    for (const auto& row : r.rows)
      shares += fmt::format("{}{:.1f}% at batch {}", shares.empty() ? "" : ", ", 100 * row.roofline_share_stored, row.batch);
    s += fmt::format("as stored in the model the weights are {} bytes ({:.3f} bits/weight); against those bytes the "
                     "roofline share is {}\n",
                     r.stored_weight_bytes, 8.0 * double(r.stored_weight_bytes) / n, shares);
  }
  s += fmt::format("prefill {} tokens (batch 1): {:.1f} TFLOP/s of matmul = {:.1f}% of the same-run cuBLAS bf16 GEMM "
                   "({:.1f} TFLOP/s)\n",
                   r.options.prompt_len, r.prefill_tflops, 100 * r.prefill_tflops / r.gemm_tflops, r.gemm_tflops);
  return s;
}

}  // namespace qb::runtime::cuda
