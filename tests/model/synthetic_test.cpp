// Synthetic model shapes: the table matches the published config.json dims, the CPU path's GGUF loads
// and runs, and shapes too large for host RAM are refused with one line.
#include "quantbench/model/synthetic.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <string>

#include "quantbench/core/error.h"
#include "quantbench/model/model.h"
#include "quantbench/runtime/cpu/cpu_backend.h"

namespace qb::model {
namespace {

TEST(Synthetic, ShapesMatchTheirConfigs) {
  // Values from each model's config.json (hidden_size, intermediate_size, layers, heads, kv heads, vocab).
  const auto l2 = synthetic_shape("synthetic:llama2-7b").spec;
  EXPECT_EQ(l2.n_embd, 4096);
  EXPECT_EQ(l2.n_ff, 11008);
  EXPECT_EQ(l2.n_layer, 32);
  EXPECT_EQ(l2.n_head_kv, 32);
  EXPECT_EQ(l2.n_vocab, 32000);
  // Matrices + embeddings: the published counts (6,738,415,616 and 8,030,261,248) less the 266,240
  // RMSNorm weights (65 vectors of 4096) that synthetic_parameters leaves out.
  EXPECT_EQ(synthetic_parameters(l2), 6738415616 - 266240);
  const auto l3 = synthetic_shape("llama3-8b").spec;
  EXPECT_EQ(l3.n_ff, 14336);
  EXPECT_EQ(l3.n_head_kv, 8);
  EXPECT_EQ(l3.n_vocab, 128256);
  EXPECT_EQ(synthetic_parameters(l3), 8030261248 - 266240);
  const auto q = synthetic_shape("synthetic:qwen2.5-7b").spec;
  EXPECT_EQ(q.n_embd, 3584);
  EXPECT_EQ(q.n_ff, 18944);
  EXPECT_EQ(q.n_layer, 28);
  EXPECT_EQ(q.n_head_kv, 4);
  EXPECT_TRUE(q.qkv_bias);
  EXPECT_EQ(q.rope_style, RopeStyle::Neox);
  EXPECT_TRUE(is_synthetic("synthetic:tiny"));
  EXPECT_FALSE(is_synthetic("model.gguf"));
  try {
    synthetic_shape("synthetic:nope");
    FAIL() << "unknown name accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("synthetic:llama2-7b"), std::string::npos) << e.what();
  }
}

TEST(Synthetic, CpuGgufLoadsAndRunsAndLargeShapesAreRefused) {
  char path[] = "/tmp/qb_synth_test_XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  const auto shape = synthetic_shape("synthetic:tiny");
  make_synthetic_gguf(shape, 7, path);
  auto m = Model::load(path);
  EXPECT_EQ(m->spec().n_embd, shape.spec.n_embd);
  EXPECT_EQ(m->spec().n_ff, shape.spec.n_ff);
  EXPECT_EQ(m->spec().n_head_kv, shape.spec.n_head_kv);
  EXPECT_EQ(m->spec().n_vocab, shape.spec.n_vocab);
  runtime::cpu::CpuBackend be(m, {runtime::cpu::CpuMode::Reference, 1});
  const auto s = be.create_sequence();
  runtime::Batch b;
  b.add_sequence(std::vector<int32_t>{1, 5, 9}, s, 0);
  const auto lg = be.forward(b);
  ASSERT_EQ(lg.rows(), 1u);
  for (float v : lg.row(0)) ASSERT_TRUE(std::isfinite(v));
  std::remove(path);
  try {
    make_synthetic_gguf(synthetic_shape("synthetic:llama2-7b"), 7, path);
    FAIL() << "a 7B shape was accepted on the CPU";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--backend cuda"), std::string::npos) << e.what();
  }
  EXPECT_NE(access(path, F_OK), 0);  // nothing written
}

}  // namespace
}  // namespace qb::model
