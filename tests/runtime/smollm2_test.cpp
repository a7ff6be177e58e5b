// SmolLM2-135M-Instruct (Q4_1 weights, Q8_0 tied embeddings) against golden logits from transformers
// loading the same GGUF. The model is not in the repository (94 MB): scripts/fetch-models puts it in
// .models/. A missing file is a failure, not a skip, so a run that never fetched it cannot pass.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
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
// The fast path quantizes activations to 8-bit blocks of 32 (as llama.cpp does), so it is not an fp32
// path and cannot meet the 1e-4 x RMS golden tolerance. It is held instead to the reference path by
// the quantity an evaluation would see: the next-token distribution, and the same argmax wherever
// the reference's top-1 margin exceeds 0.1 logits. The kernels themselves are exact for the
// activations they quantize (tests/runtime/matmul_test.cpp); what remains here is the cost of 8-bit
// activations on this model (measured 2026-11-26: mean KL 0.011 nats, max 0.038 over 20 positions).
// The bounds below (mean <= 0.02, max <= 0.08) are a regression guard around that measurement, not a
// derivation; how it compares with llama.cpp's own activation quantization is in docs/perf.md.
TEST(SmolLM2, FastPathStaysCloseToReference) {
  std::shared_ptr<const model::Model> m;
  try {
    m = smollm2();
  } catch (const std::exception& e) {
    FAIL() << e.what();
  }
  CpuBackend ref(m, {CpuMode::Reference, 0}), fast(m, {CpuMode::Fast, 0});
  const auto golden = test::load_golden(test::source_path("tests/golden/logits/smollm2-135m.json"));
  double kl_sum = 0, kl_max = 0;
  size_t n = 0;
  for (const auto& pr : golden["prompts"]) {
    const std::vector<int32_t> ids = pr["ids"].get<std::vector<int32_t>>();
    auto logits_of = [&](Backend& be) {
      const SeqId seq = be.create_sequence();
      Batch b;
      b.add_sequence(ids, seq, 0, /*all_logits=*/true);
      Logits lg = be.forward(b);
      be.free_sequence(seq);
      return lg;
    };
    const Logits a = logits_of(ref), b = logits_of(fast);
    ASSERT_EQ(a.rows(), b.rows());
    for (size_t r = 0; r < a.rows(); ++r) {
      const auto pa = a.row(r), pb = b.row(r);
      double ma = pa[0], mb = pb[0];
      for (size_t i = 0; i < pa.size(); ++i) ma = std::max(ma, double(pa[i])), mb = std::max(mb, double(pb[i]));
      double za = 0, zb = 0;
      for (size_t i = 0; i < pa.size(); ++i) za += std::exp(pa[i] - ma), zb += std::exp(pb[i] - mb);
      const double lza = std::log(za) + ma, lzb = std::log(zb) + mb;
      double kl = 0;
      size_t top = 0, second = 1;
      for (size_t i = 0; i < pa.size(); ++i) {
        const double la = pa[i] - lza, lb = pb[i] - lzb;
        kl += std::exp(la) * (la - lb);
        if (pa[i] > pa[top]) second = top, top = i;
        else if (i != top && pa[i] > pa[second]) second = i;
      }
      kl_sum += kl;
      kl_max = std::max(kl_max, kl);
      ++n;
      if (pa[top] - pa[second] > 0.1f) {
        size_t top_b = 0;
        for (size_t i = 1; i < pb.size(); ++i)
          if (pb[i] > pb[top_b]) top_b = i;
        EXPECT_EQ(top_b, top) << "prompt " << pr["name"] << " row " << r;
      }
    }
  }
  ASSERT_GT(n, 0u);
  std::printf("fast vs reference: mean KL %.3g nats, max %.3g over %zu positions\n", kl_sum / double(n), kl_max, n);
  EXPECT_LE(kl_sum / double(n), 0.02);
  EXPECT_LE(kl_max, 0.08);
}

}  // namespace
}  // namespace qb::runtime::cpu
