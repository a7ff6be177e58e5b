// ModelPair: the baseline and the candidate an evaluation compares, item by item. Both models are
// opened with model::Model::load (GGUF files or Hugging Face directories), each gets its own backend, and they must share one tokenizer (same token
// strings and special ids): a comparison across vocabularies is meaningless per token, so it is
// refused up front. The pair also writes the model.* half of the Manifest (candidate under model.*,
// baseline under baseline.*), because every regime needs the same disclosure.
#pragma once
#include <functional>
#include <memory>
#include <string>

#include "quantbench/core/manifest.h"
#include "quantbench/formats/gguf_reader.h"
#include "quantbench/model/model.h"
#include "quantbench/runtime/backend.h"
#include "quantbench/runtime/kv_cache.h"
#include "quantbench/tokenizer/tokenizer.h"

namespace qb::eval {

struct LoadedModel {
  std::string path;
  std::string sha256;  // of the file (or model directory: model::sha256_directory), computed at load
  std::shared_ptr<const model::Model> model;
  std::unique_ptr<runtime::Backend> backend;
  runtime::KvType kv = runtime::KvType::F32;  // the KV cache precision its backend runs
};

struct ModelPairOptions {
  int threads = 0;
  bool reference = false;  // CpuMode::Reference instead of Fast
  runtime::KvType kv = runtime::KvType::F32;           // candidate's KV cache
  runtime::KvType baseline_kv = runtime::KvType::F32;  // baseline's KV cache
  // Makes each model's backend (e.g. `eval --backend cuda`) with the KV cache asked for; it sets `kv` to
  // the type it runs (the CUDA backend runs f16 for the default f32). Empty: the CPU backend.
  std::function<std::unique_ptr<runtime::Backend>(std::shared_ptr<const model::Model>, runtime::KvType& kv)> make_backend;
};

class ModelPair {
 public:
  ModelPair(const std::string& baseline_path, const std::string& candidate_path, ModelPairOptions o = {});

  LoadedModel& baseline() { return base_; }
  LoadedModel& candidate() { return cand_; }
  const LoadedModel& baseline() const { return base_; }
  const LoadedModel& candidate() const { return cand_; }
  const tokenizer::Tokenizer& tokenizer() const { return *tok_; }
  int threads() const { return threads_; }

  // model.* (candidate), baseline.* (baseline), toolchain.*, hardware.*, harness.quantbench_version,
  // scheme.kv_cache and scheme.activations (what the two backends ran).
  void describe(Manifest& m) const;

 private:
  LoadedModel base_, cand_;
  std::unique_ptr<tokenizer::Tokenizer> tok_;
  int threads_ = 0;
};

// Throws qb::Error naming both files if the vocabularies differ (size, any token text, BOS/EOS).
void check_same_vocabulary(const tokenizer::Tokenizer& a, const std::string& a_name, const tokenizer::Tokenizer& b,
                           const std::string& b_name);

// Model facts of one file under `prefix` ("model." or "baseline.").
void describe_model(Manifest& m, const std::string& prefix, const LoadedModel& lm);

}  // namespace qb::eval
