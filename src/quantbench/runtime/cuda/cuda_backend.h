// CudaBackend: runtime::Backend on one NVIDIA GPU, for the Llama family as ModelSpec describes it
// (rope normal/neox, GQA, qkv bias, qk-norm, post-norms, SwiGLU/GeGLU, soft-capping, sliding window).
// The forward pass mirrors the CPU reference layer by layer, with every matrix product a cuBLAS GEMM
// over the whole batch (q|k|v and gate|up fused into one matrix each) and the rest in
// forward_kernels.h; activations stay f32 on the device, the KV cache is f16 per sequence.
//
// Weights: every matrix is dequantized on the host (qformat::dequantize_row, exact) and uploaded as a
// dense matrix in one precision for the whole model: BF16 (default; half the bytes of f32, tensor-core
// GEMM with f32 accumulation, activations rounded to bf16 at the GEMM input) or F32 (exact weights, f32
// GEMM without TF32: the path that matches the CPU reference to ~1e-6). Quantized GGUF types run as
// their dequantized values, so this backend measures their accuracy, not their speed; the packed
// W8A16/W4A16 decode kernels (qgemv.h) are not wired in yet. describe() says all of this.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "quantbench/model/model.h"
#include "quantbench/runtime/backend.h"

namespace qb::runtime::cuda {

enum class DenseType { BF16, F32 };

struct CudaBackendOptions {
  DenseType dense = DenseType::BF16;
  int device = 0;
  // Batches of up to 16 tokens (decode) run as a CUDA graph captured on first use and replayed.
  bool use_graphs = true;
};

// True when a CUDA device is usable (tests skip otherwise).
bool cuda_device_available();

class CudaBackend final : public Backend {
 public:
  // Uploads the model. Throws qb::Error if there is no device, a weight type has no GPU path (the
  // message lists the supported ones), or the shapes are outside what the kernels handle.
  explicit CudaBackend(std::shared_ptr<const model::Model> model, CudaBackendOptions options = {});
  ~CudaBackend() override;
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  std::string name() const override { return "cuda"; }
  std::string describe() const override;
  const model::ModelSpec& spec() const override { return model_->spec(); }

  SeqId create_sequence(int64_t max_len = 0) override;
  void free_sequence(SeqId seq) override;
  int64_t sequence_length(SeqId seq) const override;
  void truncate_sequence(SeqId seq, int64_t new_length) override;

  Logits forward(const Batch& batch) override;

  // Turns decode-graph replay on or off (for comparing the two; results are the same).
  void set_use_graphs(bool on) { options_.use_graphs = on; }

  // Bytes of weights resident on the device (what a decode step streams, embeddings excluded).
  size_t weight_bytes() const;

  struct Impl;  // device state (public only so the .cpp's helpers can name it)

 private:
  std::shared_ptr<const model::Model> model_;
  CudaBackendOptions options_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace qb::runtime::cuda
