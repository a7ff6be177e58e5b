#include "quantbench/model/model_spec.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "../test_paths.h"
#include "quantbench/core/error.h"
#include "quantbench/model/model.h"
#include "tiny_gguf.h"

namespace qb::model {
namespace {

// Expects loading `g` to throw a qb::Error whose message contains every fragment.
void expect_load_error(const test::TinyGguf& g, std::vector<std::string> fragments) {
  const std::string path = g.write("bad");
  try {
    Model::load(path);
    ADD_FAILURE() << "loading did not throw; expected: " << fragments[0];
  } catch (const Error& e) {
    for (const auto& f : fragments) EXPECT_NE(std::string(e.what()).find(f), std::string::npos) << e.what();
  }
  std::filesystem::remove(path);
}

TEST(ModelSpec, Stories260K) {
  auto f = formats::GgufFile::open(test::stories260k_path());
  const ModelSpec s = ModelSpec::from_gguf(*f);
  EXPECT_EQ(s.arch, Arch::Llama);
  EXPECT_EQ(s.n_vocab, 512);
  EXPECT_EQ(s.n_embd, 64);
  EXPECT_EQ(s.n_layer, 5);
  EXPECT_EQ(s.n_head, 8);
  EXPECT_EQ(s.n_head_kv, 4);
  EXPECT_EQ(s.head_dim_k, 8);
  EXPECT_EQ(s.n_ff, 172);
  EXPECT_EQ(s.n_rot, 8);
  EXPECT_EQ(s.n_ctx_train, 2048);
  EXPECT_EQ(s.rope_style, RopeStyle::Normal);
  EXPECT_FLOAT_EQ(s.rope_theta, 10000.0f);
  EXPECT_FLOAT_EQ(s.rms_eps, 1e-5f);
  EXPECT_FLOAT_EQ(s.attn_scale, float(1.0 / std::sqrt(8.0)));
  EXPECT_FALSE(s.tied_embeddings);  // the file stores output.weight
  EXPECT_FALSE(s.qkv_bias);
  EXPECT_FALSE(s.qk_norm);
  EXPECT_EQ(s.bos_id, 1);
  EXPECT_EQ(s.stop_ids, std::vector<int32_t>{2});
  EXPECT_NE(s.describe().find("5 layers"), std::string::npos);
}

TEST(Model, Stories260KParameterCounts) {
  auto m = Model::load(test::stories260k_path());
  EXPECT_EQ(m->n_params_stored(), 292800);
  EXPECT_EQ(m->n_params_unique(), 260032);  // output.weight is a copy of token_embd
  EXPECT_EQ(m->layers.size(), 5u);
  EXPECT_EQ(m->token_embd.n_out, 512);
  EXPECT_EQ(m->output.n_in, 64);
  EXPECT_EQ(m->describe_weight_types(), "f32 x 37");
}

TEST(Model, TinyLlamaLoadsAndTiesEmbeddings) {
  auto g = test::tiny_llama();
  const std::string path = g.write("ok");
  auto m = Model::load(path);
  EXPECT_TRUE(m->spec().tied_embeddings);
  EXPECT_EQ(m->output.data, m->token_embd.data);
  EXPECT_EQ(m->n_params_stored(), m->n_params_unique());
  EXPECT_THROW(
      {
        std::vector<float> row(16);
        m->embedding_row(32, row.data());
      },
      Error);
  std::filesystem::remove(path);
}

TEST(Model, RejectsHeadsNotDivisibleByKvHeads) {
  auto h = test::tiny_llama(18, 6, 4);
  expect_load_error(h, {"head_count 6 is not divisible by head_count_kv 4"});
}

TEST(Model, RejectsTensorShapeMismatchNamingTheTensor) {
  auto g = test::tiny_llama();
  g.remove_tensor("blk.1.attn_k.weight");
  g.tensor("blk.1.attn_k.weight", {16, 12}, std::vector<float>(16 * 12, 0.1f));
  expect_load_error(g, {"blk.1.attn_k.weight", "16x12", "16x8"});
}

TEST(Model, RejectsMissingTensor) {
  auto g = test::tiny_llama();
  g.remove_tensor("blk.0.ffn_up.weight");
  expect_load_error(g, {"blk.0.ffn_up.weight", "missing"});
}

TEST(Model, RejectsNonFiniteWeightsNamingTheTensor) {
  auto g = test::tiny_llama();
  (*g.values("blk.1.ffn_down.weight"))[7] = std::nanf("");
  expect_load_error(g, {"blk.1.ffn_down.weight", "non-finite"});
  auto h = test::tiny_llama();
  (*h.values("output_norm.weight"))[0] = INFINITY;
  expect_load_error(h, {"output_norm.weight", "non-finite"});
}

TEST(Model, RejectsUnsupportedArchitectureAndBadRope) {
  auto g = test::tiny_llama();
  g.str("general.architecture", "gpt2");  // duplicate key: the reader or the spec must refuse
  const std::string p = g.write("arch");
  EXPECT_THROW(Model::load(p), Error);
  std::filesystem::remove(p);
  auto h = test::tiny_llama();
  h.u32("llama.rope.dimension_count", 5);
  expect_load_error(h, {"rope.dimension_count", "5"});
}

}  // namespace
}  // namespace qb::model
