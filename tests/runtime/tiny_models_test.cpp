// Tiny random models in data/models/tiny against golden logits from transformers. qwen2 / qwen3 /
// gemma3 (make_tiny_models.py): transformers loads the same GGUFs. llama3 / gemma
// (make_tiny_hf_models.py): transformers' own model object, converted to GGUF the llama.cpp way (Q/K
// permutation, rope_freqs, +1 norms). Covered: QKV bias, QK-norm, head_dim != d/heads, normal and neox
// rope, llama-3 frequency factors, GeGLU, post-norms, sqrt(d) embedding scale, sliding-window and
// global layers with their own rope bases, tied and untied outputs.
#include <gtest/gtest.h>

#include <cmath>

#include "../test_paths.h"
#include "golden_logits.h"
#include "quantbench/runtime/cpu/cpu_backend.h"

namespace qb::runtime::cpu {
namespace {

std::shared_ptr<const model::Model> tiny(const std::string& name) {
  return model::Model::load(test::source_path("data/models/tiny/" + name + ".gguf"));
}

void check_golden(const std::string& name) {
  auto m = tiny(name);
  const auto golden = test::load_golden(test::source_path("tests/golden/logits/" + name + ".json"));
  for (CpuMode mode : {CpuMode::Reference, CpuMode::Fast}) {
    CpuBackend be(m, {mode, 2});
    test::expect_matches_golden(be, golden);
  }
}

TEST(TinyModels, Qwen2MatchesTransformers) {
  auto m = tiny("qwen2-tiny");
  EXPECT_EQ(m->spec().arch, model::Arch::Qwen2);
  EXPECT_EQ(m->spec().rope_style, model::RopeStyle::Neox);
  EXPECT_TRUE(m->spec().qkv_bias);
  EXPECT_FALSE(m->spec().tied_embeddings);
  check_golden("qwen2-tiny");
}

TEST(TinyModels, Qwen3MatchesTransformers) {
  auto m = tiny("qwen3-tiny");
  EXPECT_EQ(m->spec().arch, model::Arch::Qwen3);
  EXPECT_TRUE(m->spec().qk_norm);
  EXPECT_EQ(m->spec().head_dim_k, 24);  // not 64 / 4
  EXPECT_TRUE(m->spec().tied_embeddings);
  check_golden("qwen3-tiny");
}

TEST(TinyModels, Gemma3MatchesTransformers) {
  auto m = tiny("gemma3-tiny");
  const auto& s = m->spec();
  EXPECT_EQ(s.arch, model::Arch::Gemma3);
  EXPECT_EQ(s.activation, model::Activation::GeluTanh);
  EXPECT_TRUE(s.post_norms);
  EXPECT_FLOAT_EQ(s.embd_scale, 8.0f);
  EXPECT_EQ(s.sliding_window, 4);
  EXPECT_EQ(s.layer_swa, (std::vector<bool>{true, false}));
  EXPECT_FLOAT_EQ(s.rope_theta, 50000.0f);
  EXPECT_FLOAT_EQ(s.rope_theta_swa, 10000.0f);
  check_golden("gemma3-tiny");
}

TEST(TinyModels, Llama3RopeFactorsMatchTransformers) {
  auto m = tiny("llama3-tiny");
  EXPECT_EQ(m->spec().rope_style, model::RopeStyle::Normal);
  EXPECT_TRUE(m->spec().has_rope_freqs);
  ASSERT_EQ(m->rope_freqs.size(), 8u);
  EXPECT_FLOAT_EQ(m->rope_freqs[0], 1.0f);
  EXPECT_FLOAT_EQ(m->rope_freqs[7], 8.0f);
  check_golden("llama3-tiny");
}

TEST(TinyModels, GemmaMatchesTransformers) {
  auto m = tiny("gemma-tiny");
  EXPECT_EQ(m->spec().arch, model::Arch::Gemma);
  EXPECT_FALSE(m->spec().qk_norm);
  EXPECT_FALSE(m->spec().post_norms);
  EXPECT_TRUE(m->spec().tied_embeddings);
  check_golden("gemma-tiny");
}

TEST(TinyModels, Gemma3SlidingWindowDecodeEqualsPrefill) {
  // With a window of 4, decode must drop the same keys from the cache that prefill masks.
  CpuBackend be(tiny("gemma3-tiny"), {CpuMode::Reference, 2});
  const std::vector<int32_t> ids = {1, 5, 90, 17, 33, 64, 2, 100, 7, 8};
  const SeqId a = be.create_sequence(), b = be.create_sequence();
  Batch pre;
  pre.add_sequence(ids, a, 0, true);
  const Logits all = be.forward(pre);
  for (size_t i = 0; i < ids.size(); ++i) {
    Batch one;
    one.add(ids[i], b, int64_t(i), true);
    const Logits l = be.forward(one);
    for (int64_t c = 0; c < l.n_vocab; ++c)
      ASSERT_NEAR(l.row(0)[size_t(c)], all.row(i)[size_t(c)], 1e-5) << "pos " << i;
  }
}

}  // namespace
}  // namespace qb::runtime::cpu
