// Tests for eval/text_metrics against rouge-score, sacrebleu and lm-eval's gsm8k regexes run by
// Python (tests/golden/eval/make_text_golden.py), plus hand-worked cases for the sequence metrics.
#include "quantbench/eval/text_metrics.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "../test_paths.h"
#include "quantbench/core/error.h"

namespace qb::eval {
namespace {

const nlohmann::json& golden() {
  static const nlohmann::json j = [] {
    std::ifstream f(qb::test::source_path("tests/golden/eval/text_golden.json"));
    EXPECT_TRUE(f.good());
    return nlohmann::json::parse(f);
  }();
  return j;
}

TEST(EvalTextMetrics, RougeLMatchesRougeScore) {
  int checked = 0;
  for (const auto& p : golden()["pairs"]) {
    if (!p["ascii"].get<bool>()) continue;  // the tokenizer is specified for ASCII
    const PrfScore s = rouge_l(p["reference"].get<std::string>(), p["candidate"].get<std::string>());
    const std::string what = p["reference"].dump() + " vs " + p["candidate"].dump();
    EXPECT_NEAR(s.precision, p["rougeL"][0].get<double>(), 1e-15) << what;
    EXPECT_NEAR(s.recall, p["rougeL"][1].get<double>(), 1e-15) << what;
    EXPECT_NEAR(s.fmeasure, p["rougeL"][2].get<double>(), 1e-15) << what;
    ++checked;
  }
  EXPECT_GT(checked, 60);
  EXPECT_EQ(rouge_tokenize("Don't STOP--me, x2!"), (std::vector<std::string>{"don", "t", "stop", "me", "x2"}));
}

TEST(EvalTextMetrics, ChrfMatchesSacrebleu) {
  ChrfStats corpus;
  corpus.counts.assign(18, 0);
  for (const auto& p : golden()["pairs"]) {
    const std::string ref = p["reference"], hyp = p["candidate"];
    EXPECT_NEAR(chrf(hyp, ref), p["chrf"].get<double>(), 1e-10) << p.dump();
    corpus += chrf_statistics(hyp, ref);
  }
  EXPECT_NEAR(chrf_from_statistics(corpus), golden()["corpus_chrf"].get<double>(), 1e-10);
  EXPECT_THROW(chrf("\xff", "a"), Error);
  EXPECT_THROW(chrf("a", "\xe6\x97"), Error);  // truncated sequence
}

TEST(EvalTextMetrics, Gsm8kExtractionMatchesLmEvalRegexes) {
  for (const auto& g : golden()["gsm8k"]) {
    const std::string resp = g["response"], tgt = g["target"];
    const std::string s = gsm8k_extract_strict(resp), f = gsm8k_extract_flexible(resp);
    EXPECT_EQ(s, g["strict"].get<std::string>()) << resp;
    EXPECT_EQ(f, g["flexible"].get<std::string>()) << resp;
    EXPECT_EQ(gsm8k_normalize(tgt), g["normalized_target"].get<std::string>()) << tgt;
    EXPECT_EQ(gsm8k_exact_match(s, tgt), g["strict_match"].get<bool>()) << resp;
    EXPECT_EQ(gsm8k_exact_match(f, tgt), g["flexible_match"].get<bool>()) << resp;
  }
}

TEST(EvalTextMetrics, LcsAndTokenRouge) {
  const std::vector<int32_t> a = {1, 2, 3, 4, 5, 6}, b = {2, 9, 4, 6, 1};
  EXPECT_EQ(lcs_length(a, b), 3u);  // 2 4 6
  const PrfScore s = rouge_l_tokens(a, b);
  EXPECT_DOUBLE_EQ(s.precision, 3.0 / 5);
  EXPECT_DOUBLE_EQ(s.recall, 3.0 / 6);
  EXPECT_DOUBLE_EQ(s.fmeasure, 2 * 0.6 * 0.5 / 1.1);
  EXPECT_EQ(rouge_l_tokens({}, b).fmeasure, 0.0);
}

TEST(EvalTextMetrics, FirstDivergenceAndPositionAgreement) {
  const std::vector<int32_t> a = {5, 6, 7, 8}, b = {5, 6, 9, 8}, c = {5, 6};
  EXPECT_EQ(first_divergence(a, b), 2u);
  EXPECT_EQ(first_divergence(a, a), 4u);
  EXPECT_EQ(first_divergence(a, c), 2u);
  EXPECT_EQ(first_divergence({}, a), 0u);
  PositionAgreement pa;
  pa.add(a, b);  // agree at 0, 1, 3
  pa.add(a, c);  // agree at 0, 1; positions 2, 3 counted (c stopped early)
  ASSERT_EQ(pa.counted.size(), 4u);
  EXPECT_EQ(pa.rate(0), 1.0);
  EXPECT_EQ(pa.rate(2), 0.0);
  EXPECT_EQ(pa.rate(3), 0.5);
  EXPECT_THROW(pa.rate(4), Error);
}

TEST(EvalTextMetrics, RepetitionRate) {
  // 1 2 3 1 2 3 1 2: bigrams 12 23 31 12 23 31 12 -> 7 total, 3 distinct -> 4/7 repeated.
  const std::vector<int32_t> t = {1, 2, 3, 1, 2, 3, 1, 2};
  EXPECT_DOUBLE_EQ(repetition_rate(t, 2), 4.0 / 7);
  EXPECT_DOUBLE_EQ(repetition_rate(t, 1), 5.0 / 8);
  EXPECT_EQ(repetition_rate(t, 9), 0.0);
  const std::vector<int32_t> distinct = {1, 2, 3, 4, 5, 6};
  EXPECT_EQ(repetition_rate(distinct), 0.0);
  const std::vector<int32_t> stuck(20, 7);  // 17 four-grams, 1 distinct
  EXPECT_DOUBLE_EQ(repetition_rate(stuck), 16.0 / 17);
  EXPECT_THROW(repetition_rate(t, 0), Error);
}

}  // namespace
}  // namespace qb::eval
