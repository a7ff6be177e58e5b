// CpuBackend: the reference engine. A plain layer-by-layer forward pass over a batch of tokens from
// one or several sequences (all prompt tokens in one forward: matrices are multiplied once per batch,
// not once per token), a KV cache per sequence, parallel over output rows (matmul) and over
// (token, KV head) pairs (attention) with core/thread_pool.h. The KV cache precision is chosen per
// backend (CpuBackendOptions::kv, runtime/kv_cache.h): quantized on write, dequantized on read.
// Each output element is computed by one
// thread in a fixed order, so results do not depend on the thread count.
//
// Two modes differ only in the matmul path: Reference runs MatmulPath::Reference (dequantize to f32,
// double accumulation) and is the yardstick; Fast runs MatmulPath::Fast (the SIMD kernels, which may
// quantize activations as llama.cpp does). Norms, rope, attention and activations are shared.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string_view>

#include "quantbench/core/thread_pool.h"
#include "quantbench/model/model.h"
#include "quantbench/runtime/backend.h"
#include "quantbench/runtime/cpu/matmul.h"
#include "quantbench/runtime/kv_cache.h"

namespace qb::runtime::cpu {

enum class CpuMode { Reference, Fast };

struct CpuBackendOptions {
  CpuMode mode = CpuMode::Fast;
  int n_threads = 0;  // <= 0: hardware concurrency
  KvType kv = KvType::F32;  // KV cache precision (both modes)
  // Fast mode only: batches of >= 32 tokens multiply through MatmulPath::DequantGemm (weights
  // dequantized to f32, activations unquantized, a register-blocked f32 GEMM) instead of the fused
  // kernels, which re-read each weight block every 4 tokens. The calibration pass uses it; describe()
  // says when it is on.
  bool dequant_gemm_prefill = false;
  // Optional: called with every linear layer's input just before its matmul (calibration). `tensor`
  // is the weight's GGUF name ("blk.0.attn_q.weight"); x is n_tokens rows of n_in floats. q/k/v and
  // gate/up see the same input and are each reported.
  std::function<void(int64_t layer, std::string_view tensor, const float* x, int64_t n_tokens, int64_t n_in)> observer = nullptr;
};

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(std::shared_ptr<const model::Model> model, CpuBackendOptions options = {});

  std::string name() const override;
  std::string describe() const override;
  const model::ModelSpec& spec() const override { return model_->spec(); }

  SeqId create_sequence(int64_t max_len = 0) override;
  void free_sequence(SeqId seq) override;
  int64_t sequence_length(SeqId seq) const override;
  void truncate_sequence(SeqId seq, int64_t new_length) override;

  Logits forward(const Batch& batch) override;

  // Layer-by-layer running, for sequential calibration (quant/quantize_model.cpp): embed() gives a
  // batch's scaled token embeddings (T x n_embd, the input of layer 0); forward_layers runs layers
  // [layer_begin, layer_end) on hidden states x (the input of layer_begin), leaves their output in x,
  // writes those layers' KV rows and advances the sequences as forward() does. The other layers' KV
  // rows at those positions are not written: such a sequence serves this purpose only.
  // inputs_only: the observer's pass; the last layer stops once its last matrix's input (ffn_down's)
  // is observed, skipping that product (a quarter of a Llama block's weights) and its residual add,
  // and x is left unspecified.
  std::vector<float> embed(const Batch& batch);
  void forward_layers(const Batch& batch, std::vector<float>& x, int64_t layer_begin, int64_t layer_end,
                      bool inputs_only = false);

  const model::Model& model() const { return *model_; }
  KvType kv_type() const { return options_.kv; }
  // What the KV cache stores, for the Manifest's scheme.kv_cache (K and V layouts).
  std::string describe_kv_cache() const override;
  // What precision reaches the matmuls (W8A8 matrices quantize their inputs), for scheme.activations.
  std::string describe_activations() const override;

 private:
  struct Sequence {
    int64_t max_len = 0;
    int64_t length = 0;
    std::vector<KvStore> k, v;  // per layer: positions x kv_dim (capacity may exceed length)
  };
  // Validates the batch against the sequences and grows their caches; returns each sequence's new
  // length (committed by the caller once the forward succeeded).
  std::map<SeqId, int64_t> reserve(const Batch& batch);
  MatmulPath matmul_path() const;
  void run_layers(const Batch& batch, std::vector<float>& x, int64_t layer_begin, int64_t layer_end,
                  bool inputs_only = false);
  Sequence& seq_ref(SeqId seq);
  const Sequence& seq_ref(SeqId seq) const;

  std::shared_ptr<const model::Model> model_;
  CpuBackendOptions options_;
  ThreadPool pool_;
  std::map<SeqId, Sequence> seqs_;
  SeqId next_id_ = 0;
  // run_layers' activation buffers, kept across calls and grown on demand: a calibration pass calls it
  // for every block of every sample group, and fresh buffers of tens of MB cost page faults and
  // zero-filling each time. Every element a call reads it has written first.
  struct Workspace {
    std::vector<float> h, q, k, v, att, o, g, u, rcos, rsin, gemm_scores;
  } ws_;
};

}  // namespace qb::runtime::cpu
