// The code regime end to end on the bundled stories260K (it fails every problem; this checks the
// plumbing): text stop sequences against a plain greedy generate() cut afterwards, left truncation of
// prompts longer than the context, and run_evaluation's "code" regime with its JSON records.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "eval_fixtures.h"
#include "quantbench/core/error.h"
#include "quantbench/eval/code.h"
#include "quantbench/eval/run_eval.h"
#include "quantbench/runtime/generate.h"

namespace qb::eval {
namespace {

TEST(CodeEval, StopSequencesMatchGenerateThenCut) {
  ModelPair pair(test::stories260k_path(), test::stories260k_path(), {1});
  const auto& tok = pair.tokenizer();
  const auto ids = tok.encode("Once upon a time, there was a little dog", true, false);
  runtime::GenerateOptions go;
  go.max_new_tokens = 64;
  auto full = runtime::generate(*pair.baseline().backend, ids, go).tokens;
  std::vector<int32_t> body = full;
  if (!body.empty() && tok.is_eog(body.back())) body.pop_back();
  const std::string text = tok.decode(body, false);
  for (const std::vector<std::string>& stops : {std::vector<std::string>{"."}, {" the", ","}, {"no such stop"}}) {
    const auto c = complete_until(*pair.baseline().backend, tok, ids, stops, 64);
    EXPECT_EQ(c.text, cut_at_stops(text, stops));
    ASSERT_LE(c.tokens.size(), full.size());
    EXPECT_TRUE(std::equal(c.tokens.begin(), c.tokens.end(), full.begin()));
    if (first_stop(text, stops) != std::string::npos) {
      EXPECT_EQ(c.ended_by, "stop_sequence");
      EXPECT_NE(first_stop(c.raw, stops), std::string::npos);
      // it stopped at the first token that completed a stop, not later
      std::vector<int32_t> shorter(c.tokens.begin(), c.tokens.end() - 1);
      EXPECT_EQ(first_stop(tok.decode(shorter, false), stops), std::string::npos);
    } else {
      EXPECT_NE(c.ended_by, "stop_sequence");
    }
  }
}

TEST(CodeEval, LongPromptsAreCutFromTheLeft) {
  ModelPair pair(test::stories260k_path(), test::stories260k_path(), {1});
  const auto& tok = pair.tokenizer();
  const auto ids = tok.encode("The cat sat on the mat. The dog sat on the log. The bird sat in the tree.", true, false);
  ASSERT_GT(ids.size(), 20u);
  const auto c = complete_until(*pair.baseline().backend, tok, ids, {}, 8, 20);  // a 20-token context
  EXPECT_EQ(c.prompt_truncated + c.prompt_tokens, ids.size());
  EXPECT_EQ(c.prompt_tokens, 12u);
  EXPECT_EQ(c.tokens.size(), 8u);
  EXPECT_EQ(c.ended_by, "max_tokens");
  // Same as generating from the prompt's last 12 tokens.
  runtime::GenerateOptions go;
  go.max_new_tokens = 8;
  const std::vector<int32_t> tail(ids.end() - 12, ids.end());
  EXPECT_EQ(runtime::generate(*pair.baseline().backend, tail, go).tokens, c.tokens);
  // A budget larger than the context keeps half the context for the prompt.
  const auto h = complete_until(*pair.baseline().backend, tok, ids, {}, 64, 20);
  EXPECT_EQ(h.prompt_tokens, 10u);
  EXPECT_EQ(h.prompt_tokens + h.tokens.size(), 21u);  // the last token sampled needs no cache slot
  EXPECT_EQ(h.ended_by, "context");
}

TEST(CodeEval, RunEvaluationCodeRegime) {
  const auto q8 = test::make_quantized_stories(formats::GgmlType::Q8_0);
  EvalRequest q;
  q.baseline = test::stories260k_path();
  q.candidate = q8;
  q.regimes = {"code"};
  q.tasks = {"hellaswag"};  // no code task named: both run
  q.data_dir = test::source_path("data/eval");
  q.limit = 2;
  q.code_max_tokens = 16;
  q.code_ctx = 96;  // MBPP's 3-shot prompts lose their start: keeps the test quick, also under ASan
  q.threads = 1;
  q.progress = false;
  const auto j = run_evaluation(q);
  const auto& res = j["regimes"]["code"];
  ASSERT_EQ(res.size(), 2u);
  EXPECT_EQ(res[0]["task"], "humaneval");
  EXPECT_EQ(res[1]["task"], "mbpp");
  for (const auto& r : res) {
    EXPECT_EQ(r["regime"], "code");
    EXPECT_FALSE(r["misses"].get<std::string>().empty());
    EXPECT_TRUE(r["manifest"].contains("harness.sandbox")) << r["manifest"].dump();
    EXPECT_NE(r["manifest"]["harness.generation"].dump().find("max_new_tokens=16"), std::string::npos);
    EXPECT_NE(r["manifest"]["harness.generation"].dump().find("context 96 tokens"), std::string::npos);
    ASSERT_EQ(r["items"].size(), 2u);
    double passed_b = 0, passed_c = 0, p2f = 0, f2p = 0;
    for (const auto& it : r["items"]) {
      EXPECT_TRUE(it["task_id"].is_string());
      for (const char* side : {"baseline", "candidate"}) {
        const auto& s = it[side];
        EXPECT_TRUE(s["completion"].is_string());
        EXPECT_LE(s["tokens"].get<int>(), 16);
        EXPECT_LE(s["prompt_tokens"].get<int>(), 80);
        EXPECT_EQ(s["passed"].get<bool>(), s["reason"] == "passed");
        EXPECT_FALSE(s["reason"].get<std::string>().empty());
      }
      passed_b += it["baseline"]["passed"].get<bool>();
      passed_c += it["candidate"]["passed"].get<bool>();
      p2f += it["flip"] == "pass_to_fail";
      f2p += it["flip"] == "fail_to_pass";
    }
    std::map<std::string, double> metric;
    for (const auto& m : r["metrics"]) metric[m["name"]] = m["value"];
    EXPECT_DOUBLE_EQ(metric.at("baseline_pass_at_1"), passed_b / 2);
    EXPECT_DOUBLE_EQ(metric.at("candidate_pass_at_1"), passed_c / 2);
    EXPECT_DOUBLE_EQ(metric.at("flips_pass_to_fail"), p2f);
    EXPECT_DOUBLE_EQ(metric.at("flips_fail_to_pass"), f2p);
    EXPECT_TRUE(metric.count("mcnemar_exact_p"));
    EXPECT_TRUE(r["extras"]["failure_reasons"].contains("baseline"));
  }
  // Code tasks are not multiple-choice tasks: named alone for that regime, it is an error, not an empty result.
  q.regimes = {"multiple_choice"};
  q.tasks = {"mbpp"};
  EXPECT_THROW(run_evaluation(q), Error);
}

TEST(CodeEval, SameModelHasNoFlips) {
  ModelPair pair(test::stories260k_path(), test::stories260k_path(), {1});
  const PythonSandbox sb(default_code_sandbox_config());
  auto task = load_code_task("mbpp", test::source_path("data/eval"), 2);
  CodeOptions o;
  o.max_new_tokens = 8;
  o.max_length = 64;
  o.progress = false;
  std::vector<CodeItemRecord> recs;
  const auto r = evaluate_code(pair, task, sb, o, &recs);
  ASSERT_EQ(recs.size(), 2u);
  for (const auto& rec : recs) {
    EXPECT_EQ(rec.base.tokens, rec.cand.tokens);
    EXPECT_EQ(rec.base_outcome.reason, rec.cand_outcome.reason);
  }
  EXPECT_DOUBLE_EQ(r.find_metric("identical_completion_rate")->value, 1.0);
  EXPECT_DOUBLE_EQ(r.find_metric("flip_rate")->value, 0.0);
  EXPECT_DOUBLE_EQ(r.find_metric("mcnemar_exact_p")->value, 1.0);
  ASSERT_NE(r.manifest().find("harness.code_execution"), nullptr);
  EXPECT_NE(r.manifest().find("harness.code_execution")->value.find("(2 of 2 items)"), std::string::npos);
}

}  // namespace
}  // namespace qb::eval
