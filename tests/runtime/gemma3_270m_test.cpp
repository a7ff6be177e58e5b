// Gemma 3 270M (Q4_K_M: Q4_K, Q5_0, Q6_K, Q8_0 matrices) against golden logits from transformers
// loading the same GGUF. The model is fetched by scripts/fetch-models --gemma3 (242 MB), which
// scripts/test runs; there QB_REQUIRE_MODELS=1 makes a missing file a failure. A developer run without
// it skips, saying why. Cost: the reference path over 20 positions, logits only at the 6 stored ones
// (golden_logits.h); about 9 s in Release on a busy 2-core machine.
#include <gtest/gtest.h>

#include <filesystem>

#include "../test_paths.h"
#include "golden_logits.h"
#include "quantbench/runtime/cpu/cpu_backend.h"

namespace qb::runtime::cpu {
namespace {

TEST(Gemma3_270M, SpecAndTransformersGolden) {
  const std::string path = test::source_path(".models/gemma3-270m-q4_k_m/gemma3-270m-Q4_K_M.gguf");
  if (!std::filesystem::exists(path)) {
    if (test::models_required()) FAIL() << path << " is missing and QB_REQUIRE_MODELS=1 (scripts/fetch-models --gemma3)";
    GTEST_SKIP() << path << " not fetched (scripts/fetch-models --gemma3)";
  }
  auto f = formats::GgufFile::open(path);
  const auto s = model::ModelSpec::from_gguf(*f);
  EXPECT_EQ(s.arch, model::Arch::Gemma3);
  EXPECT_EQ(s.n_layer, 18);
  EXPECT_EQ(s.n_head_kv, 1);
  EXPECT_EQ(s.head_dim_k, 256);
  EXPECT_FLOAT_EQ(s.attn_scale, 1.0f / 16.0f);
  EXPECT_EQ(s.sliding_window, 512);
  for (int64_t il = 0; il < s.n_layer; ++il) EXPECT_EQ(s.layer_swa[size_t(il)], il % 6 != 5) << il;
  EXPECT_FLOAT_EQ(s.rope_theta, 1e6f);
  EXPECT_FLOAT_EQ(s.rope_theta_swa, 1e4f);
  EXPECT_TRUE(s.tied_embeddings);
  std::shared_ptr<const model::Model> m;
  try {
    m = model::Model::load(path);
  } catch (const std::exception& e) {
    FAIL() << e.what();
  }
  CpuBackend be(m, {CpuMode::Reference, 0});
  test::expect_matches_golden(be, test::load_golden(test::source_path("tests/golden/logits/gemma3-270m.json")));
}

}  // namespace
}  // namespace qb::runtime::cpu
