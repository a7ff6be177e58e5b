// CudaBackend: runtime::Backend on one NVIDIA GPU, for the Llama family as ModelSpec describes it
// (rope normal/neox, GQA, qkv bias, qk-norm, post-norms, SwiGLU/GeGLU, soft-capping, sliding window).
// The forward pass mirrors the CPU reference layer by layer; q|k|v and gate|up are fused into one
// matrix each; the non-matmul work is in forward_kernels.h; activations stay f32 on the device, the KV
// cache is per sequence, f16 by default or int8 / fp8 / int4 with the CPU's codes (kv_quant.h).
//
// Weights (the design choice: decode reads each weight once per step, so quantized weights stay
// packed on the device and are streamed by the qgemv kernels; prefill is compute-bound, so it runs on
// cuBLAS tensor-core GEMMs):
// - Packed (qgemv.h layout), repacked on the host at load, exactly: our w8 (int8 per-row f16 scales),
//   w4 g32/g128 sym/asym (f16 scales), GGUF Q4_0 (= w4g32 sym, z = 8) and Q8_0 (= w8g32). Batches of
//   <= 16 tokens run qgemv (activations rounded to f16); larger ones dequantize each matrix into a
//   scratch buffer (f16) and run a cuBLAS f16 GEMM with f32 accumulation.
// - Dense 16-bit (cuBLAS for every batch size): f32/f16/bf16 weights, and the other GGUF types
//   (dequantized on the host at load: correct, but no speed from fewer bytes). bf16 weights stay bf16;
//   the others go f16 (f16 activations, as the packed path) unless a value exceeds f16's range, since
//   bf16 would drop 3 mantissa bits of every weight and activation (on stories260K in f32 that alone
//   was a mean KL of 1.7e-4 against the CPU).
// - DenseType::F32 puts every matrix dense in f32 (cuBLAS pedantic f32): the exact reference path.
// A stack (q|k|v, gate|up) whose parts have different packed formats runs dense bf16. Our own formats
// outside the packed list (int2/3, nf4, fp8, bf16 scales, w8 groups) fail at load with one line
// listing the supported ones. describe() names the path every matrix took.
//
// Synthetic models (model/synthetic.h) have no file: their random weights are generated on the GPU in
// the requested scheme (nothing large exists on the host), embeddings included.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "quantbench/model/model.h"
#include "quantbench/runtime/backend.h"
#include "quantbench/runtime/kv_cache.h"

namespace qb::runtime::cuda {

// Bits16 (the default): dense matrices in 16 bits, bf16 weights as bf16, the others as f16 where every value
// fits its range (f16 keeps 3 more mantissa bits than bf16: f16 files exactly), else bf16. F32: see above.
enum class DenseType { Bits16, F32 };

struct CudaBackendOptions {
  DenseType dense = DenseType::Bits16;
  int device = 0;
  // KV cache: f16, int8, fp8 or int4 (the CPU's codes and scales, runtime/kv_cache.h); f32 has no GPU
  // path (the constructor throws, listing these). Quantized caches: rope + quantized store in one
  // kernel (no rope fusion into attention), decode attention reads the codes, prefill runs of one
  // sequence dequantize the run's keys to f16 for the tensor-core attention.
  KvType kv = KvType::F16;
  // W8A8 models (per-token int8 / fp8 activations, runtime/cuda/w8a8.h): int8 products bit-identical to
  // the CPU's matmul_w8a8, fp8 ones too in the exact form (fp8_exact); end to end checked against the
  // CPU reference with the same KV cache type (tests/cuda/cuda_backend_check.cpp). Off (QB_CUDA_W8A8=0):
  // such a model fails at load with one line.
  // Synthetic w8a8 schemes (speed only) always run it.
  bool w8a8 = true;
  // FP8 W8A8 in its exact form: the e4m3 products summed exactly (double sums on the CUDA cores at one
  // token, the FP64 tensor cores from two), bit for bit the CPU's. QB_CUDA_FP8_EXACT=1 turns it on, and
  // so does DenseType::F32 (the most exact mode). INT8 W8A8 is exact either way (integer sums).
  // Off (the default): the exact products summed in f32 on the f16 tensor cores, within issue #6's
  // 1e-4 mean KL of the CPU (1-16 tokens: w8a8_fp8_mma; more: w8a8_fp8_prefill, wgmma).
  bool fp8_exact = false;
  // FP8 W8A8 products of 9 or more tokens on the FP8 tensor cores through cuBLASLt (w8a8_fp8_tc.h), the
  // arithmetic an FP8 deployment runs (vLLM's FP8 linear layers are cuBLASLt / CUTLASS scaled GEMMs):
  // faster prefill and 16-stream steps (on an H200, synthetic:llama2-7b: 512-token prefill 49k tok/s against
  // the default's 31k, 16-stream decode 61% of the roofline against 56%; docs/perf.md, session 31), but
  // their partial sums keep about 14 bits, which moved a random Llama's next-token distributions by a
  // mean KL of 3.96e-4 and stories260K's by 9.37e-3 against the CPU (docs/perf.md, session 30), past
  // 1e-4: a deployment's numerics, not the reference's. Off by default; QB_CUDA_FP8_TC=1 turns it on.
  // The Manifest names the form either way.
  bool fp8_tensor_cores = false;
  // Batches of up to 16 tokens (decode) run as a CUDA graph captured on first use and replayed. The graph
  // reads the step's table from mapped pinned memory and (greedy) writes the ids there: one submission
  // per step and no copy-engine transfers. Off: the table and the results go by cudaMemcpyAsync.
  bool use_graphs = true;
  // Keep the packable formats packed for the qgemv kernels (see the top of this file); off: every matrix
  // dense bf16 through cuBLAS (for comparison).
  bool packed = true;
  // Batches longer than this run as consecutive chunks (bounds the scratch memory of long prefills).
  int prefill_chunk = 1024;
  // Attention split over keys (flash-decoding, two kernels) instead of one block per (head, token).
  bool split_attention = true;
  // Decode batches with one token per sequence: rope + KV write done inside the split attention kernel
  // (one launch fewer per layer) where the head dims allow. QB_CUDA_FUSE_ROPE=0 turns it off.
  bool fuse_rope = true;
  // Packed gate|up matrices keep their rows as interleaved blocks of 16 (16 gate rows, then the same
  // columns' up rows), so that a decode step of 1-16 tokens whose gate|up launch shape holds an even
  // number of row blocks per warp writes act(gate) * up into the down product's input itself (qgemv's
  // QgemvGatedOut): one kernel launch fewer per layer, the same bits as the separate activation kernel.
  // On an H100, against the activation kernel (docs/perf.md, session 16): w4g128 1.689-1.715 ms against
  // 1.717-1.731 per one-stream step, 2.592-2.636 against 2.615-2.648 at 16 streams; w8 at 16 streams
  // 3.618-3.628 against 3.666-3.689. Other steps read the interleaved gate|up output in the activation
  // kernel. QB_CUDA_FUSE_ACT=0 turns it off (halves, separate kernel).
  bool fuse_gated_act = true;
  // Prefill chunks that are one run of one sequence: attention as two cuBLAS GEMMs around a softmax
  // kernel (tensor cores) instead of the attention kernels (not in the f32 reference mode, nor for
  // sliding-window layers). QB_CUDA_GEMM_ATTN=0 turns it off.
  bool gemm_attention = true;
  // That prefill attention with Q and P each as an f16 pair (hi + remainder, about 22 bits, twice the
  // MMAs: GemmAttentionArgs::split16), and where the fused kernel does not take the head dims, the
  // attention kernels (f32) instead of the two GEMMs. -1: for models with W8A8 matrices, whose
  // activation codes turn f16 rounding upstream into code flips (docs/perf.md, session 32); 0: never; 1:
  // always. QB_CUDA_ATTN_SPLIT16=0|1 sets it.
  int split16_attention = -1;
  // Prefill products on packed 4- and 8-bit weights (W4A16, W8A16) run the fused qgemm kernel
  // (runtime/cuda/qgemm.h: wgmma on the packed weights, no dequantized scratch matrix, the same f16
  // weight values); off: dequantize each matrix to f16, then cuBLAS. QB_CUDA_QGEMM=0 turns it off.
  bool fused_prefill = true;
  // Decode: while the small kernel before a product runs (norm, attention, gated activation), a side
  // stream asks L2 to prefetch the first l2_prefetch_mb MB of that product's weights, so memory
  // works in what were gaps. 4 MB, one stream on an H100: -1.5% per w4g128 step, -3% per w8 step, -2 to
  // -3.5% per bf16 step; 16 streams unchanged (docs/perf.md). 8 and 16 MB were no better for w4g128 or
  // slower; so was prefetching all of o's weights (and on into gate|up's) during attention (session 8).
  // QB_CUDA_L2_PREFETCH_MB=n sets it (0: off, both sizes).
  int l2_prefetch_mb = 4;
  // One-token steps whose next product has 8- or 16-bit weights (two to four times a 4-bit product's
  // bytes) prefetch this much instead: 8 MB against 4 was -1.3 to -3% per w8 step and 0 to -2.6% per
  // bf16 step at one stream on two H100s; bf16 at 16 streams lost 0.6% with 8, so larger steps keep
  // l2_prefetch_mb (docs/perf.md, session 10). QB_CUDA_L2_PREFETCH_WIDE_MB=n sets it.
  int l2_prefetch_wide_mb = 8;
  // Steps of more tokens than this prefetch nothing. Session 12 (H100, the leaner int4 decode loop):
  // at 16 streams w4g128 steps were 1.2% faster with no prefetch than with 4 MB (and 6 or 8 MB were
  // slower still), while one stream still gains from it (docs/perf.md). QB_CUDA_L2_PREFETCH_MAX_T=n.
  int l2_prefetch_max_tokens = 1;
  // Decode products start early (programmatic dependent launch): a qgemv's blocks load their weights
  // while the kernel before it (norm, activation, attention) finishes, and wait for it only before
  // reading the activations. Those kernels trigger the launch as they start (step 5; in step 4 they did
  // not, so the products could start only as they ended, and it gained nothing). On by default; the
  // environment variable QB_CUDA_PDL=0 turns it off (A/B, docs/perf.md step 5).
  bool overlap_launch = true;
  // Debug mode: no graphs; each forward's launches are queued behind a device busy-wait and bracketed
  // by events per kernel class, so profile_report() can say where a step's GPU time goes. Also turned
  // on by the environment variable QB_CUDA_PROFILE=1. Timings of a profiled run are not the product's.
  bool profile = false;
};

// True when a CUDA device is usable (tests skip otherwise).
bool cuda_device_available();

class CudaBackend final : public Backend {
 public:
  // Uploads the model. Throws qb::Error if there is no device, a weight type has no GPU path (the
  // message lists the supported ones), or the shapes are outside what the kernels handle.
  explicit CudaBackend(std::shared_ptr<const model::Model> model, CudaBackendOptions options = {});
  // A synthetic model (spec from model::synthetic_shape) with random weights made on the GPU in
  // `scheme`: "bf16", "w8", "w8g32", "w4g32", "w4g128", with "-asym" (or a trailing "a") for w4.
  // Throws qb::Error for an unknown scheme or shapes that are not multiples of 64.
  CudaBackend(const model::ModelSpec& spec, const std::string& synthetic_name, const std::string& scheme,
              uint64_t seed, CudaBackendOptions options = {});
  ~CudaBackend() override;
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  std::string name() const override { return "cuda"; }
  std::string describe() const override;
  const model::ModelSpec& spec() const override { return spec_; }

  SeqId create_sequence(int64_t max_len = 0) override;
  void free_sequence(SeqId seq) override;
  int64_t sequence_length(SeqId seq) const override;
  void truncate_sequence(SeqId seq, int64_t new_length) override;

  Logits forward(const Batch& batch) override;

  // Fast path for greedy decoding (not part of runtime::Backend): the same forward pass, but returns
  // only the argmax token of each row forward() would return (in the same order; the first index on
  // ties, like std::max_element), computed on the device, so the vocabulary's logits never cross PCIe.
  std::vector<int32_t> forward_greedy(const Batch& batch);

  // Profiling mode (options.profile): per batch size, the GPU time per forward by kernel class; resets
  // the totals. "" when profiling is off.
  bool profiling() const { return options_.profile; }
  std::string profile_report();

  // Turns decode-graph replay on or off (for comparing the two; results are the same).
  void set_use_graphs(bool on) { options_.use_graphs = on; }

  // Bytes a decode step streams for the matrices: packed weights + scales + zero points, or the dense
  // matrix (embeddings excluded).
  size_t weight_bytes() const;
  // The same matrices' bytes as the model stores them (a GGUF file's blocks, or our codes with their
  // scales and zero points; a synthetic model's as packed, a synthetic GGUF K-quant mix's at GGUF's block
  // sizes), and their weight count: where a packed form is wider than the stored one (GGUF Q6_K, Q5_K,
  // Q3_K, Q2_K as int8), the decode reads more than the file holds, and the report says how much.
  size_t stored_weight_bytes() const;
  int64_t weight_count() const;
  // The GPU's name, driver and runtime versions, for the Manifest.
  std::string device_facts() const override;
  // The cache type that runs, with its quantized layout (K and V rows; f16: values rounded on write).
  std::string describe_kv_cache() const override;
  // The precision each matrix product's input is rounded or quantized to, with how many products take it.
  std::string describe_activations() const override;
  // The KV cache type that runs, and the bytes one position of one sequence takes (all layers, K + V,
  // codes + scales + row padding).
  KvType kv_type() const { return options_.kv; }
  size_t kv_bytes_per_position() const;
  // The packed-scheme name of a synthetic model ("" for a file).
  const std::string& synthetic_scheme() const { return synthetic_scheme_; }

  struct Impl;  // device state (cuda_backend_impl.h; public only so the backend's .cpp files' helpers can name it)

 private:
  std::shared_ptr<const model::Model> model_;  // null for a synthetic model
  model::ModelSpec spec_;
  std::string synthetic_name_, synthetic_scheme_;
  CudaBackendOptions options_;
  void init_device();
  size_t run_chunk(Impl& I, const Batch& batch, int c0, int T, float* logits_out, int32_t* ids_out);
  // Whether prefill runs may take the tensor-core attention (options.gemm_attention, not in the f32 mode):
  // run_chunk's first condition, and what the Manifest says of prefill attention.
  bool prefill_attention_on_tensor_cores() const;
  // Validates, grows caches, runs the chunks; logits rows or argmax ids (one of them non-null).
  void forward_into(const Batch& batch, Logits& meta, std::vector<int32_t>* ids);
  std::unique_ptr<Impl> impl_;
};

}  // namespace qb::runtime::cuda
