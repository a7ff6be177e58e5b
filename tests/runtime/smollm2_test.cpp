// SmolLM2-135M-Instruct (Q4_1 weights, Q8_0 tied embeddings) against golden logits from transformers
// loading the same GGUF. The model is not in the repository (94 MB): scripts/fetch-models puts it in
// .models/. A missing file is a failure, not a skip, so a run that never fetched it cannot pass.
#include <gtest/gtest.h>

#include <filesystem>

#include "../test_paths.h"
#include "golden_logits.h"
#include "quantbench/runtime/cpu/cpu_backend.h"

namespace qb::runtime::cpu {
namespace {

const char* kSmolLM2 = "/.models/smollm2-135m-instruct-q4_1/SmolLM2-135M-Instruct.Q4_1.gguf";

std::shared_ptr<const model::Model> smollm2() {
  const std::string path = std::string(QB_SOURCE_DIR) + kSmolLM2;
  if (!std::filesystem::exists(path))
    throw std::runtime_error(path + " is missing: run scripts/fetch-models to fetch SmolLM2-135M-Instruct");
  return model::Model::load(path);  // throws if this build cannot dequantize Q4_1 / Q8_0
}

void run(CpuMode mode) {
  std::shared_ptr<const model::Model> m;
  try {
    m = smollm2();
  } catch (const std::exception& e) {
    FAIL() << e.what();
  }
  const auto& s = m->spec();
  EXPECT_EQ(s.n_layer, 30);
  EXPECT_EQ(s.n_head, 9);
  EXPECT_EQ(s.n_head_kv, 3);
  EXPECT_EQ(s.n_vocab, 49152);
  EXPECT_TRUE(s.tied_embeddings);
  EXPECT_FLOAT_EQ(s.rope_theta, 100000.0f);
  CpuBackend be(m, {mode, 0});
  test::expect_matches_golden(be, test::load_golden(test::source_path("tests/golden/logits/smollm2-135m.json")));
}

TEST(SmolLM2, MatchesTransformersReference) { run(CpuMode::Reference); }
TEST(SmolLM2, MatchesTransformersFast) { run(CpuMode::Fast); }

}  // namespace
}  // namespace qb::runtime::cpu
