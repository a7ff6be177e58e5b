// CUDA backend vs the CPU reference backend (plain checks, no gtest: the GPU machine lacks it).
// For each model (stories260K, whose 64/172-wide dims and head_dim 8 exercise the ragged paths, its
// w8 quantization, and random GGUFs from make_random_gguf.py with 128-multiple dims, GQA, normal and
// neox rope, qkv bias, as stored (f32/f16/q8_0 mixed, or with q5_0, q5_1, q3_k or q2_k: a q|k|v stack in
// two packed formats), and quantized by `quantbench quantize` to w8, w4g128, w4g128-asym, w4g32,
// w4g32-asym, q4_0, q8_0, q4_1 and q4_k (packed as w4g32 with mins), q5_k (w8g32 with mins), q6_k (w8g16),
// Q4_K_M- and Q5_K_M-like mixes (q4_k or q5_k with q6_k: a q|k|v stack run as one product per format) and
// bf16 (dense)), it compares next-token distributions of:
//   prefill of two sequences in one batch (all logits), batched one-token decode steps, and a
//   truncate-then-refeed; and (stories260K) 60 greedy tokens.
// Variants: f32 (every matrix dense f32, exact dequantized values, no TF32), f32 without decode
// graphs, the default (packed formats through qgemv for <= 16 tokens and dequantize + f16 cuBLAS for
// prefill; other matrices dense f16, or bf16 for bf16 weights), and the default with prefill in chunks
// of 7 tokens (so prefill runs qgemv too, and the chunk loop is exercised); each with the f16 cache,
// and with the quantized caches (--kv int8 / fp8 / int4; int4 also in 7-token chunks); and the default
// with each decode step's attention in one key split (every cache type: the 16-stream kernels; prefill
// attention on the split kernels there, run_model says why).
// The reference computes what the variant computes, as far as the CPU backend can be made to: the CPU
// reference backend with the same KV cache type (f16 for the unquantized variants: the GPU has no f32
// cache) and, for the default variants, its product inputs rounded to the 16-bit type the GPU's
// default mode feeds that product (hooked_reference); not copied: f16 Q and P in the prefill attention,
// f16 dequantized weights and cache rows in prefill. What those two choices change on the CPU is
// printed beside (INFO "own change").
// Limit: mean KL(reference || gpu) per row < 1e-4 for every variant, and for f32 on stories260K the 60
// greedy tokens identical (a broken kernel gives KL ~1). Flip floor: where activations (W8A8) or the
// cache are quantized at run time, a KL over 1e-4 passes only if it is at most 2x the reference's own
// sensitivity to one-ulp changes of its inputs (run_model says why; both numbers are printed), and the
// greedy tokens are reported, not required.
// Quantized KV caches: first the GPU's quantize kernel against the CPU's kv_quantize_row on the same
// f32 rows (codes and scales bit-identical, ties, zero groups, NaN, inf and signed zeros included;
// dequantized f16 values identical to the CPU's value rounded to f16), then the variants above.
// W8A8 (models quantized with --scheme w8a8 or w8a8-fp8): the GPU product (w8a8.h) against the CPU's
// matmul_w8a8 on fresh random rows, bit-identical outputs expected (T = 1, 5, 16 on the decode kernel,
// T = 40 on the prefill path); then the model runs through the variants above like any other, FP8 in
// its exact form; FP8's fast form (the default: FP8 tensor cores from 9 tokens) after them, as it runs and
// with the FP8 tensor cores off, the latter held to the limit above, the former to a floor the size of the
// FP8 tensor cores' accumulation error (run_model says why; check_fp8_fast_wide bounds its products).
// Host check first (runs without a GPU): every packed matrix, as repacked at load
// (weight_repack.h), equals the CPU reference's dequantized weight exactly; the K-quants' (Q2_K..Q6_K)
// within the one f16 rounding of their sub-block scales (and mins) that the repack makes.
// Usage: cuda_backend_check [model.gguf ...]. Exit 0 pass, 1 fail, 2 no GPU (host checks passed).
// The checks are in backend_check/, one file per kind (backend_check.h lists them); this file runs them in order.
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "backend_check/backend_check.h"
#include "quantbench/core/error.h"
#include "quantbench/model/model.h"
#include "quantbench/runtime/cuda/cuda_backend.h"
#include "quantbench/runtime/kv_cache.h"

using namespace qb;
using namespace backend_check;

int main(int argc, char** argv) {
  // Line by line even into a file or pipe, so a run cut short by a time limit (or under compute-sanitizer, many times
  // slower) still shows how far it got.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  const bool gpu = runtime::cuda::cuda_device_available();
  std::vector<std::string> paths;
  for (int i = 1; i < argc; ++i) paths.push_back(argv[i]);
#ifdef QB_SOURCE_DIR
  if (paths.empty()) paths.push_back(std::string(QB_SOURCE_DIR) + "/data/models/stories260K/stories260K.gguf");
#endif
  try {
    for (const auto& p : paths) check_repack(p);
    if (!gpu) {
      std::printf(check_failures() ? "FAILED (%d)\n" : "host checks PASSED; GPU checks SKIPPED: no CUDA device\n", check_failures());
      return check_failures() ? 1 : 2;
    }
    check_kv_codes();
    {  // f32 has no GPU cache: one line naming the supported types
      bool threw = false;
      std::string msg;
      try {
        runtime::cuda::CudaBackendOptions co;
        co.kv = runtime::KvType::F32;
        runtime::cuda::CudaBackend bad(model::Model::load(paths.at(0)), co);
      } catch (const qb::Error& e) {
        threw = true;
        msg = e.what();
      }
      check(threw && msg.find("f16, int8, fp8, int4") != std::string::npos, "--kv f32 on cuda throws: " + msg);
    }
    check_w8a8_wide();
    check_fp8_fast_wide();
    check_fp8_prefill_wide();
    check_fp8_quantize_permuted();
    check_act_quant_wide();
    check_act_quant_nonfinite();
    check_norm_codes();
    check_act_codes();
    for (const auto& p : paths) {
      check_w8a8_exact(p);
      check_w8a8_refuses_nonfinite(p);
    }
    for (size_t i = 0; i < paths.size(); ++i) run_model(paths[i], paths[i].find("stories260K") != std::string::npos);
  } catch (const std::exception& e) {
    std::printf("FAIL exception: %s\n", e.what());
    return 1;
  }
  // The count, so a log's tally need not be taken with grep (whose "^PASS" also matches this line).
  if (check_failures()) std::printf("FAILED: %d of %d checks\n", check_failures(), check_count());
  else std::printf("PASSED: %d checks\n", check_count());
  return check_failures() ? 1 : 0;
}
