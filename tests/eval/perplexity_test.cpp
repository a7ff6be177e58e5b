// Tests for eval/perplexity: window layouts against the two conventions written out by hand, KL = 0
// and no changed top-1 for identical models, KL > 0 with ordered tails for a Q4_0 candidate, the
// top-K cache reproducing the live run (and its bound containing the exact KL), cache validation, and
// batch invariance (batch 1 vs 8).
#include "quantbench/eval/perplexity.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "eval_fixtures.h"
#include "quantbench/core/error.h"
#include "quantbench/core/sha256.h"

namespace qb::eval {
namespace {

std::string read_all(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

double metric_value(const Result& r, const std::string& name) {
  const auto* m = r.find_metric(name);
  if (!m) throw std::runtime_error("no metric " + name);
  return m->value;
}

TEST(PerplexityWindows, LlamaCppChunksScoreSecondHalfWithBos) {
  std::vector<int32_t> toks;
  for (int i = 0; i < 21; ++i) toks.push_back(100 + i);
  const auto ws = llamacpp_windows(toks, 8, 1);
  ASSERT_EQ(ws.size(), 2u);  // 21 / 8, partial chunk dropped
  EXPECT_EQ(ws[1].input[0], 1);       // BOS replaces the chunk's first token
  EXPECT_EQ(ws[1].input[1], 109);
  EXPECT_EQ(ws[1].first, 4);
  // positions 4..6 predict tokens 5..7 of the chunk: n_ctx - 1 - n_ctx/2 = 3
  ASSERT_EQ(ws[1].targets.size(), 3u);
  EXPECT_EQ(ws[1].targets[0], 113);
  EXPECT_EQ(ws[1].targets[2], 115);
}

TEST(PerplexityWindows, RollingMatchesLmEvalWindows) {
  // lm-eval get_rolling_token_windows(list(range(10)), -1, 4, 1) + make_disjoint_window gives:
  // ([-1,0,1,2] -> [0,1,2,3]), ([3,4,5,6] -> [4,5,6,7]), ([5,6,7,8] -> [8,9])
  std::vector<int32_t> toks;
  for (int i = 0; i < 10; ++i) toks.push_back(i);
  const auto ws = rolling_windows(toks, -1, 4);
  ASSERT_EQ(ws.size(), 3u);
  EXPECT_EQ(ws[0].input, (std::vector<int32_t>{-1, 0, 1, 2}));
  EXPECT_EQ(ws[0].targets, (std::vector<int32_t>{0, 1, 2, 3}));
  EXPECT_EQ(ws[1].input, (std::vector<int32_t>{3, 4, 5, 6}));
  EXPECT_EQ(ws[1].targets, (std::vector<int32_t>{4, 5, 6, 7}));
  EXPECT_EQ(ws[2].input, (std::vector<int32_t>{5, 6, 7, 8}));
  EXPECT_EQ(ws[2].first, 2);
  EXPECT_EQ(ws[2].targets, (std::vector<int32_t>{8, 9}));
  // every window predicts input[p+1] where it has one
  for (const auto& w : ws)
    for (size_t i = 0; i + 1 < w.targets.size(); ++i) EXPECT_EQ(w.targets[i], w.input[size_t(w.first) + i + 1]);
}

struct PplFixture : ::testing::Test {
  std::string text = read_all(test::tiny_eval_text_path());
  std::string sha = sha256_hex(std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
  PerplexityOptions opts() {
    PerplexityOptions o;
    o.n_ctx = 128;
    o.top_k = 16;
    o.progress = false;
    o.bootstrap.resamples = 200;
    return o;
  }
};

TEST_F(PplFixture, IdenticalModelsGiveZeroKl) {
  ModelPair pair(test::stories260k_path(), test::stories260k_path(), {1});
  PplTokenData d;
  const auto r = evaluate_perplexity(pair, {text}, "tiny", sha, opts(), &d);
  ASSERT_GT(d.nll_base.size(), 100u);
  EXPECT_EQ(metric_value(r, "kld_max"), 0.0);
  EXPECT_LT(metric_value(r, "kld_topk_lumped_max"), 1e-12);
  EXPECT_EQ(metric_value(r, "same_top1"), 1.0);
  EXPECT_EQ(metric_value(r, "delta_p_rms"), 0.0);
  EXPECT_EQ(metric_value(r, "baseline_ppl"), metric_value(r, "candidate_ppl"));
  const double ppl = metric_value(r, "baseline_ppl");
  EXPECT_GT(ppl, 1.0);
  EXPECT_LT(ppl, 100.0);  // the toy model knows TinyStories
  // the Result names its convention
  EXPECT_NE(r.manifest().find("harness.perplexity_convention")->value.find("llama.cpp"), std::string::npos);
}

TEST_F(PplFixture, QuantizedCandidateHasPositiveKlAndSaneTails) {
  const auto q4 = test::make_quantized_stories(formats::GgmlType::Q4_0);
  ModelPair pair(test::stories260k_path(), q4, {1});
  PplTokenData d;
  const auto r = evaluate_perplexity(pair, {text}, "tiny", sha, opts(), &d);
  const double mean = metric_value(r, "kld_mean");
  EXPECT_GT(mean, 1e-4);
  EXPECT_LT(mean, 1.0);
  EXPECT_LE(metric_value(r, "kld_median"), metric_value(r, "kld_p90"));
  EXPECT_LE(metric_value(r, "kld_p90"), metric_value(r, "kld_p99"));
  EXPECT_LE(metric_value(r, "kld_p99"), metric_value(r, "kld_max"));
  EXPECT_LT(metric_value(r, "same_top1"), 1.0);
  EXPECT_GT(metric_value(r, "same_top1"), 0.5);
  // exact KL inside the top-K bracket, token by token
  for (size_t i = 0; i < d.kl_exact.size(); ++i) {
    EXPECT_LE(d.kl_lumped[i], d.kl_exact[i] + 1e-12);
    EXPECT_LE(d.kl_exact[i], d.kl_lumped[i] + d.kl_gap[i] + 1e-12);
  }
  const auto* m = r.find_metric("kld_mean");
  ASSERT_TRUE(m->interval.has_value());
  EXPECT_LE(m->interval->lo, mean);
  EXPECT_GE(m->interval->hi, mean);
  EXPECT_NE(m->interval->method.find("seed"), std::string::npos);
}

TEST_F(PplFixture, CacheReproducesLiveRunAndIsValidated) {
  const auto q8 = test::make_quantized_stories(formats::GgmlType::Q8_0);
  const auto cache = (std::filesystem::temp_directory_path() / "qb_eval_topk_cache.bin").string();
  std::filesystem::remove(cache);
  ModelPair pair(test::stories260k_path(), q8, {1});
  auto o = opts();
  o.cache_path = cache;
  PplTokenData live, cached;
  const auto r1 = evaluate_perplexity(pair, {text}, "tiny", sha, o, &live);
  ASSERT_TRUE(std::filesystem::exists(cache));
  EXPECT_FALSE(live.from_cache);
  const auto r2 = evaluate_perplexity(pair, {text}, "tiny", sha, o, &cached);
  EXPECT_TRUE(cached.from_cache);
  EXPECT_EQ(live.kl_lumped, cached.kl_lumped);
  EXPECT_EQ(live.nll_base, cached.nll_base);
  EXPECT_EQ(live.delta_p, cached.delta_p);
  EXPECT_EQ(r2.find_metric("kld_mean"), nullptr);  // exact KL is not claimed from a cache
  EXPECT_GT(metric_value(r2, "kld_topk_lumped_mean"), 0.0);
  // a different text, K or truncated file is refused
  EXPECT_THROW(evaluate_perplexity(pair, {text}, "tiny", std::string(64, '0'), o), Error);
  auto o2 = o;
  o2.top_k = 8;
  EXPECT_THROW(evaluate_perplexity(pair, {text}, "tiny", sha, o2), Error);
  std::filesystem::resize_file(cache, std::filesystem::file_size(cache) - 5);
  EXPECT_THROW(evaluate_perplexity(pair, {text}, "tiny", sha, o), Error);
  std::filesystem::remove(cache);
}

TEST_F(PplFixture, BatchInvarianceAndRollingConvention) {
  const auto q8 = test::make_quantized_stories(formats::GgmlType::Q8_0);
  ModelPair pair(test::stories260k_path(), q8, {1});
  auto o = opts();
  o.convention = PplConvention::Rolling;
  PplTokenData d1, d8;
  const auto r1 = evaluate_perplexity(pair, {text}, "tiny", sha, o, &d1);
  o.batch = 8;
  const auto r8 = evaluate_perplexity(pair, {text}, "tiny", sha, o, &d8);
  ASSERT_EQ(d1.nll_cand.size(), d8.nll_cand.size());
  // Tolerance: the CPU backend computes every row independently of the batch; we allow 1e-9 nats.
  for (size_t i = 0; i < d1.nll_cand.size(); ++i) {
    EXPECT_NEAR(d1.nll_cand[i], d8.nll_cand[i], 1e-9);
    EXPECT_NEAR(d1.kl_exact[i], d8.kl_exact[i], 1e-9);
  }
  // rolling scores every token once: scored tokens = tokens of the text
  EXPECT_EQ(d1.nll_base.size(), pair.tokenizer().encode(text, false, false).size());
  EXPECT_GT(metric_value(r1, "baseline_word_perplexity"), metric_value(r1, "baseline_ppl") * 0.5);
  EXPECT_LT(metric_value(r1, "baseline_bits_per_byte"), 8.0);
}

TEST(PerplexityPair, DifferentVocabulariesAreRefused) {
  // Same vocabulary size but one token text changed: refused with both names.
  const auto a = tokenizer::Tokenizer::from_gguf_file(test::stories260k_path());
  auto spec = a.spec();
  spec.tokens[300].text = "zzzz_not_in_vocab";
  tokenizer::Tokenizer b(spec);
  try {
    check_same_vocabulary(a, "A.gguf", b, "B.gguf");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("token 300"), std::string::npos);
  }
}

}  // namespace
}  // namespace qb::eval
