// Quantizing a Hugging Face checkpoint: the GGUF written from it (metadata from
// model::gguf_metadata_for, tensors from the in-memory model) must reload as exactly the in-memory
// quantized model, with the same spec and a tokenizer that encodes as transformers' does. llama-gqa
// covers the permuted Q/K rows and rope_freqs, gemma3 the (1 + w) norms, sliding-window layers and the
// query_pre_attn_scalar attention scale, qwen2 the biases.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "../runtime/golden_logits.h"
#include "../test_paths.h"
#include "quantbench/model/model.h"
#include "quantbench/quant/method/method.h"
#include "quantbench/quant/quantize_model.h"
#include "quantbench/quant/scheme.h"
#include "quantbench/quant/writers/gguf_output.h"
#include "quantbench/runtime/cpu/cpu_backend.h"

namespace qb::model {
namespace {

std::vector<float> logits(std::shared_ptr<const Model> m) {
  runtime::cpu::CpuBackend be(m, {runtime::cpu::CpuMode::Reference, 2});
  const std::vector<int32_t> ids = {1, 100, 17, 250, 299, 5, 42, 111, 260, 133};
  const auto seq = be.create_sequence(16);
  runtime::Batch b;
  b.add_sequence(ids, seq, 0, true);
  return be.forward(b).data;
}

TEST(HfQuantize, GgufWrittenFromADirectoryReloadsAsTheSameModel) {
  const auto methods = quant::builtin_methods();
  for (const char* name : {"llama-gqa", "gemma3", "qwen2"}) {
    SCOPED_TRACE(name);
    const auto src = Model::load(test::source_path("data/models/tiny-hf/") + name);
    quant::QuantizeOptions o;
    o.n_threads = 2;
    o.progress = false;
    const auto qm = quant::quantize_model(src, quant::parse_scheme("q8_0", methods), methods, o);
    const std::string path = ::testing::TempDir() + "qb_hfq_" + name + ".gguf";
    quant::write_quantized_gguf(qm, qm.manifest, path);
    const auto back = Model::load(path);
    EXPECT_EQ(back->spec().describe(), src->spec().describe());
    EXPECT_EQ(logits(back), logits(qm.model));  // exactly what ran in memory
    // The q8_0 model stays close to the unquantized one.
    const auto ref = logits(src), q = logits(back);
    double num = 0, den = 0;
    for (size_t i = 0; i < ref.size(); ++i) num += (q[i] - ref[i]) * (q[i] - ref[i]), den += ref[i] * ref[i];
    EXPECT_LT(std::sqrt(num / den), 0.05);
    // The tokenizer written as tokenizer.ggml.* encodes as transformers' tokenizer.json does.
    const auto golden = test::load_golden(test::source_path("tests/golden/hf/") + name + ".json");
    EXPECT_EQ(back->load_tokenizer().encode(golden["text"].get<std::string>(), true, true),
              golden["text_ids"].get<std::vector<int32_t>>());
    std::remove(path.c_str());
  }
}

}  // namespace
}  // namespace qb::model
