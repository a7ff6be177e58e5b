// The `bench --backend cuda` run: decode and prefill speed of a CudaBackend (a GGUF or a synthetic
// model) judged in the same run against the card's own ceilings: a device copy probe (the roofline's
// bandwidth: bytes read per decode step over the copy figure) and a dense bf16 cuBLAS GEMM at the
// prefill length (the prefill target). Kept apart from bench/decode_bench (the CPU path), which needs a
// model::Model, because a synthetic model has none; the Result has the same regime and metric names.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "quantbench/core/result.h"
#include "quantbench/runtime/cuda/cuda_backend.h"

namespace qb::runtime::cuda {

struct CudaBenchOptions {
  std::vector<int64_t> batch_sizes{1, 16};
  int64_t prompt_len = 128;
  int64_t gen_len = 128;
  int reps = 2;    // measured repetitions per batch size (median reported)
  int warmup = 1;  // excluded (captures the decode graphs)
  uint64_t seed = 20260101;
  size_t probe_bytes = size_t(2) << 30;  // copy-probe buffer
};

struct CudaBenchRow {
  int64_t batch = 0;
  double prefill_tok_s = 0;   // median over reps: B * prompt_len / summed per-sequence prefill time
  double decode_tok_s = 0;    // median over reps: B * gen_len / decode time
  double step_p50_s = 0, step_p90_s = 0;
  int64_t kv_bytes_per_step = 0;  // mean over the steps, codes + scales of the cache that ran
  int64_t bytes_per_step = 0;     // weights (+ scales + zeros) + KV
  double achieved_gbs = 0, roofline_share = 0;  // bytes_per_step / step p50; over the copy probe
  // The roofline share with the weights counted as the model stores them (stored_weight_bytes + KV): below
  // roofline_share where the packed form is wider than the stored one.
  double roofline_share_stored = 0;
};

struct CudaBenchReport {
  CudaBenchOptions options;
  std::string model_name;  // file path or synthetic:NAME
  bool synthetic = false;
  std::string scheme;      // synthetic scheme ("" for a file)
  int64_t weight_bytes = 0;         // streamed per decode step (CudaBackend::weight_bytes)
  int64_t stored_weight_bytes = 0;  // the same matrices as the model stores them
  int64_t weight_count = 0;
  std::string kv_type;             // KV cache that ran (f16, int8, fp8, int4)
  int64_t kv_bytes_per_position = 0;  // one position of one sequence, all layers, K + V
  double copy_gbs = 0, read_gbs = 0;   // same-run probes
  double prefill_tflops = 0;            // matmul FLOPs of the batch-1 prefill over its time
  double gemm_tflops = 0;               // cuBLAS bf16 GEMM, prompt_len tokens x (gate|up) in the same run
  std::vector<CudaBenchRow> rows;
};

// Throws qb::Error for impossible options (as the CPU bench's validate_options).
CudaBenchReport run_cuda_bench(CudaBackend& backend, const std::string& model_name, const CudaBenchOptions& o,
                               bool progress);

// Result "bench"/"decode" with a complete Manifest (model.synthetic, the GPU, driver, runtime, paths).
Result make_cuda_bench_result(const CudaBenchReport& r, const CudaBackend& backend);
std::string render_cuda_bench_table(const CudaBenchReport& r);

}  // namespace qb::runtime::cuda
