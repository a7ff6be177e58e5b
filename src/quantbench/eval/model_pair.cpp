// ModelPair: loads both models, checks they share a vocabulary, and writes their disclosure.
#include "quantbench/eval/model_pair.h"

#include <thread>

#include "quantbench/core/environment.h"
#include "quantbench/core/error.h"
#include "quantbench/core/sha256.h"
#include "quantbench/runtime/cpu/cpu_backend.h"

namespace qb::eval {
namespace {

LoadedModel load_one(const std::string& path, const ModelPairOptions& o, runtime::KvType kv) {
  LoadedModel lm;
  lm.path = path;
  lm.model = model::Model::load(path);
  lm.sha256 = lm.model->sha256();
  if (o.make_backend) {
    lm.backend = o.make_backend(lm.model, kv);
    lm.kv = kv;  // what it runs
    return lm;
  }
  runtime::cpu::CpuBackendOptions bo;
  bo.mode = o.reference ? runtime::cpu::CpuMode::Reference : runtime::cpu::CpuMode::Fast;
  bo.n_threads = o.threads;
  bo.kv = kv;
  lm.kv = kv;
  lm.backend = std::make_unique<runtime::cpu::CpuBackend>(lm.model, bo);
  return lm;
}

}  // namespace

void check_same_vocabulary(const tokenizer::Tokenizer& a, const std::string& a_name, const tokenizer::Tokenizer& b,
                           const std::string& b_name) {
  QB_CHECK(a.n_vocab() == b.n_vocab(), "{} and {} have different vocabularies ({} vs {} tokens): per-token comparison "
           "needs one shared tokenizer", a_name, b_name, a.n_vocab(), b.n_vocab());
  QB_CHECK(a.bos() == b.bos() && a.eos() == b.eos() && a.add_bos() == b.add_bos(),
           "{} and {} have different special tokens (BOS/EOS/add_bos)", a_name, b_name);
  QB_CHECK(a.algorithm() == b.algorithm(), "{} and {} use different tokenizer algorithms", a_name, b_name);
  for (size_t i = 0; i < a.n_vocab(); ++i) {
    const auto id = tokenizer::TokenId(i);
    QB_CHECK(a.token(id).text == b.token(id).text, "{} and {} have different vocabularies: token {} is '{}' vs '{}'",
             a_name, b_name, i, a.token(id).text, b.token(id).text);
  }
}

ModelPair::ModelPair(const std::string& baseline_path, const std::string& candidate_path, ModelPairOptions o) {
  threads_ = o.threads > 0 ? o.threads : int(std::max(1u, std::thread::hardware_concurrency()));
  base_ = load_one(baseline_path, o, o.baseline_kv);
  cand_ = load_one(candidate_path, o, o.kv);
  auto tb = base_.model->load_tokenizer();
  auto tc = cand_.model->load_tokenizer();
  check_same_vocabulary(tb, baseline_path, tc, candidate_path);
  QB_CHECK(base_.model->spec().n_vocab == cand_.model->spec().n_vocab,
           "{} and {}: output sizes differ ({} vs {})", baseline_path, candidate_path, base_.model->spec().n_vocab,
           cand_.model->spec().n_vocab);
  QB_CHECK(size_t(base_.model->spec().n_vocab) == tb.n_vocab(), "{}: output size {} differs from the vocabulary ({})",
           baseline_path, base_.model->spec().n_vocab, tb.n_vocab());
  tok_ = std::make_unique<tokenizer::Tokenizer>(std::move(tb));
}

void describe_model(Manifest& m, const std::string& prefix, const LoadedModel& lm) {
  const model::Model& md = *lm.model;
  if (md.gguf() && !md.gguf()->has("general.name"))
    m.set_unknown(prefix + "name", "general.name absent from the GGUF file");
  else
    m.set(prefix + "name", md.name());
  m.set(prefix + "architecture", md.gguf() ? md.gguf()->architecture() : md.spec().gguf_arch);
  m.set(prefix + "parameters", std::to_string(lm.model->n_params_stored()));
  m.set(prefix + "source_file", lm.path);
  m.set(prefix + "sha256", lm.sha256);
  const std::string types = lm.model->describe_weight_types();
  m.set(prefix + "baseline_precision", types);
  // A file whose matrices are all f32/f16/bf16 is taken as the unquantized reference; anything else was
  // quantized, and a baseline made from it inherits that loss.
  const bool float_only = types.find("q") == std::string::npos && types.find("iq") == std::string::npos &&
                          types.find("tq") == std::string::npos;
  m.set(prefix + "baseline_note", float_only ? "weights stored in floating point (" + types + "), not dequantized"
                                             : "weights stored quantized (" + types + "): the numbers are relative to a "
                                               "quantized file, not to the original model");
}

void ModelPair::describe(Manifest& m) const {
  describe_model(m, "model.", cand_);
  describe_model(m, "baseline.", base_);
  add_build_and_host_facts(m, threads_);
  m.set("toolchain.backend", "candidate: " + cand_.backend->describe() + "; baseline: " + base_.backend->describe());
  m.set("scheme.kv_cache",
        "candidate: " + cand_.backend->describe_kv_cache() + "; baseline: " + base_.backend->describe_kv_cache());
  m.set("scheme.activations",
        "candidate: " + cand_.backend->describe_activations() + "; baseline: " + base_.backend->describe_activations());
  if (const std::string gpu = cand_.backend->device_facts(); !gpu.empty()) {  // eval --backend cuda (one device)
    m.set("toolchain.cuda", gpu);
    m.set("toolchain.libraries", "cuBLAS (version in toolchain.cuda)");
    m.set("hardware.gpu", gpu);
  } else {
    m.set_unknown("toolchain.cuda", "CPU backend: no CUDA");
    m.set_unknown("toolchain.libraries", "none beyond the C++ standard library");
    m.set_unknown("hardware.gpu", "CPU backend");
  }
  m.set_unknown("hardware.bandwidth", "not measured by eval");
}

}  // namespace qb::eval
