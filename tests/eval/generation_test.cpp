// Tests for eval/generation and eval/workload: identical models agree everywhere with zero
// teacher-forced KL; for a Q4_0 candidate the teacher-forced view is consistent with free running
// (before the first divergence the candidate's argmax is the baseline's token, at it it is not);
// MT-Bench and workload loading, with bad JSON named by file and line.
#include "quantbench/eval/generation.h"

#include <gtest/gtest.h>

#include <fstream>

#include "eval_fixtures.h"
#include "quantbench/core/error.h"
#include "quantbench/eval/workload.h"

namespace qb::eval {
namespace {

double mv(const Result& r, const std::string& n) {
  const auto* m = r.find_metric(n);
  if (!m) throw std::runtime_error("no metric " + n);
  return m->value;
}

std::vector<GenPrompt> story_prompts(const tokenizer::Tokenizer& tok) {
  std::vector<GenPrompt> ps;
  for (const char* t : {"Once upon a time", "Lily and Tom went to the park", "The little dog", "One day, a bird"}) {
    GenPrompt p;
    p.id = t;
    p.text = t;
    p.tokens = tok.encode(t, true, false);
    ps.push_back(p);
  }
  return ps;
}

GenerationOptions quick() {
  GenerationOptions o;
  o.max_new_tokens = 48;
  o.bucket = 16;
  o.progress = false;
  o.bootstrap.resamples = 100;
  return o;
}

TEST(Generation, IdenticalModelsAgreeEverywhere) {
  ModelPair pair(test::stories260k_path(), test::stories260k_path(), {1});
  std::vector<GenRecord> recs;
  nlohmann::json extras;
  const auto r = evaluate_generation(pair, story_prompts(pair.tokenizer()), "generation", "stories", "none", "raw", quick(),
                                     &recs, &extras);
  EXPECT_EQ(mv(r, "identical_output_rate"), 1.0);
  EXPECT_EQ(mv(r, "tf_kld_max"), 0.0);
  EXPECT_EQ(mv(r, "tf_agreement"), 1.0);
  EXPECT_EQ(mv(r, "rouge_l_f"), 1.0);
  EXPECT_NEAR(mv(r, "chrf"), 100.0, 1e-9);
  for (const auto& rec : recs) {
    EXPECT_GT(rec.base.size(), 5u);
    EXPECT_EQ(rec.first_divergence, rec.base.size());
  }
  for (const auto& b : extras["compounding_curve"]) {
    ASSERT_FALSE(b["free_running_agreement"].is_null());
    EXPECT_EQ(b["free_running_agreement"].get<double>(), 1.0);
  }
  EXPECT_EQ(extras["first_divergence_histogram"]["never"].get<int>(), 4);
}

TEST(Generation, QuantizedCandidateTeacherForcedConsistentWithFreeRunning) {
  const auto q4 = test::make_quantized_stories(formats::GgmlType::Q4_0);
  ModelPair pair(test::stories260k_path(), q4, {1});
  std::vector<GenRecord> recs;
  nlohmann::json extras;
  const auto r = evaluate_generation(pair, story_prompts(pair.tokenizer()), "generation", "stories", "none", "raw", quick(),
                                     &recs, &extras);
  EXPECT_GT(mv(r, "tf_kld_mean"), 0.0);
  bool diverged = false;
  for (const auto& rec : recs) {
    ASSERT_EQ(rec.tf_agree.size(), rec.base.size());
    for (size_t t = 0; t < rec.first_divergence && t < rec.base.size(); ++t) EXPECT_EQ(rec.tf_agree[t], 1) << t;
    if (rec.first_divergence < std::min(rec.base.size(), rec.cand.size())) {
      EXPECT_EQ(rec.tf_agree[rec.first_divergence], 0);
      diverged = true;
    }
  }
  EXPECT_TRUE(diverged) << "Q4_0 of a 260K model should change some greedy output within 48 tokens";
  EXPECT_LT(mv(r, "identical_output_rate"), 1.0);
  EXPECT_EQ(extras["worst_items"].size(), 4u);
}

// A candidate whose generations are ill-formed UTF-8 (lead bytes that never complete, as a byte-fallback
// model gives when the token limit cuts a character) is scored and recorded, not refused: its text reads
// as Hugging Face's decode gives it, each ill-formed part one U+FFFD. Before, chrF's UTF-8 decoding (and
// then the JSON records) stopped the whole evaluation at its end.
TEST(Generation, IllFormedUtf8GenerationsAreScoredAsReplacementCharacters) {
  ModelPair probe(test::stories260k_path(), test::stories260k_path(), {1});
  const auto e4 = probe.tokenizer().find("<0xE4>"), e5 = probe.tokenizer().find("<0xE5>");
  ASSERT_TRUE(e4 && e5);
  ModelPair pair(test::stories260k_path(), test::make_byte_emitting_stories(*e4, *e5), {1});
  std::vector<GenRecord> recs;
  const auto r = evaluate_generation(pair, story_prompts(pair.tokenizer()), "generation", "stories", "none", "raw", quick(),
                                     &recs, nullptr);
  ASSERT_EQ(r.items().size(), 4u);
  const std::string fffd = "\xEF\xBF\xBD";
  for (size_t i = 0; i < recs.size(); ++i) {
    ASSERT_EQ(recs[i].cand.size(), 48u);
    for (const int32_t t : recs[i].cand) ASSERT_TRUE(t == *e4 || t == *e5) << t;
    std::string want;
    for (size_t k = 0; k < recs[i].cand.size(); ++k) want += fffd;  // each lead byte stands alone
    EXPECT_EQ(r.items()[i]["candidate_text"].get<std::string>(), want);
  }
  EXPECT_LT(mv(r, "chrf"), 5.0);
  EXPECT_NO_THROW((void)r.to_json().dump());
}

TEST(Workload, LoadsAndNamesBadLines) {
  ModelPair pair(test::stories260k_path(), test::stories260k_path(), {1});
  const auto path = (std::filesystem::temp_directory_path() / "qb_workload.jsonl").string();
  {
    std::ofstream f(path);
    f << "{\"prompt\": \"Once upon a time\", \"reference\": \"there was a girl\", \"max_tokens\": 8}\n\n"
      << "{\"prompt\": \"The cat\"}\n";
  }
  const auto ps = load_workload(path, pair, false, 0, nullptr);
  ASSERT_EQ(ps.size(), 2u);
  EXPECT_EQ(ps[0].max_tokens, 8);
  EXPECT_EQ(*ps[0].reference, "there was a girl");
  const auto r = evaluate_generation(pair, ps, "workload", "w", "none", "raw", quick());
  EXPECT_EQ(r.misses(), "comparability across reports (it is the user's own data)");
  EXPECT_EQ(mv(r, "baseline_reference_rouge_l_f"), mv(r, "candidate_reference_rouge_l_f"));
  for (const char* bad : {"{\"prompt\": 3}", "{\"prompt\": \"x\", \"max_tokens\": -1}", "{oops", "[1]"}) {
    {
      std::ofstream f(path);
      f << "{\"prompt\": \"ok\"}\n" << bad << "\n";
    }
    try {
      load_workload(path, pair, false, 0, nullptr);
      FAIL() << bad;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("qb_workload.jsonl:2"), std::string::npos) << e.what();
    }
  }
}

TEST(Generation, MtBenchFirstTurnsRawWhenNoTemplate) {
  ModelPair pair(test::stories260k_path(), test::stories260k_path(), {1});
  std::string tmpl;
  const auto ps = load_mtbench_prompts(test::source_path("data/eval/mtbench/question.jsonl"), pair, false, 3, &tmpl);
  ASSERT_EQ(ps.size(), 3u);
  EXPECT_EQ(ps[0].id, "81");
  EXPECT_EQ(ps[0].text.rfind("Compose an engaging travel blog post", 0), 0u);
  EXPECT_NE(tmpl.find("raw"), std::string::npos);
}

}  // namespace
}  // namespace qb::eval
