// Tests for eval/multiple_choice and eval/tasks: prompt construction checked against lm-eval's
// documented formats, the HellaSwag preprocess, scores against a direct full-sequence computation
// (no shared prefix, no truncation), identical models giving no flips, a Q4_0 candidate giving a
// consistent flip table, batch invariance, and malformed data named by file and line.
#include "quantbench/eval/multiple_choice.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "eval_fixtures.h"
#include "quantbench/core/error.h"

namespace qb::eval {
namespace {

std::string data_dir() { return test::source_path("data/eval"); }

double mv(const Result& r, const std::string& n) {
  const auto* m = r.find_metric(n);
  if (!m) throw std::runtime_error("no metric " + n);
  return m->value;
}

TEST(McTasks, HellaswagPreprocessLikeLmEval) {
  EXPECT_EQ(hellaswag_preprocess("  Roof [header] shingle [title] removal  now "), "Roof shingle. removal now");
  EXPECT_EQ(hellaswag_preprocess("a  b"), "a b");
  EXPECT_EQ(hellaswag_preprocess("a   b"), "a  b");  // Python str.replace: one pass (values from lm-eval's code run in CPython)
}

TEST(McTasks, VendoredSlicesLoadWithLmEvalPrompts) {
  for (const auto* name : {"hellaswag", "arc_easy", "arc_challenge", "piqa", "winogrande", "boolq"}) {
    const auto t = load_task(name, data_dir());
    EXPECT_EQ(t.items.size(), 50u) << name;
    EXPECT_TRUE(t.is_slice) << name;  // the vendored files are slices, and the Manifest must say so
  }
  const auto arc = load_task("arc_easy", data_dir(), 3);
  ASSERT_EQ(arc.items.size(), 3u);
  EXPECT_EQ(arc.items[0].options[0].context,
            "Question: Which statement best explains why photosynthesis is the foundation of most food webs?\nAnswer:");
  EXPECT_EQ(arc.items[0].options[0].continuation, " Sunlight is the source of energy for nearly all ecosystems.");
  EXPECT_EQ(arc.items[0].gold, 0u);
  const auto piqa = load_task("piqa", data_dir(), 1);
  EXPECT_EQ(piqa.items[0].options[1].context, "Question: How do I ready a guinea pig cage for it's new occupants?\nAnswer:");
  EXPECT_EQ(piqa.items[0].gold, 0u);
  const auto hs = load_task("hellaswag", data_dir(), 1);
  EXPECT_EQ(hs.items[0].options[3].context, "Roof shingle removal: A man is sitting on a roof. he");
  EXPECT_EQ(hs.items[0].options[3].continuation, " starts pulling up roofing on a roof.");
  EXPECT_EQ(hs.items[0].options[3].choice_chars, std::string("starts pulling up roofing on a roof.").size());
  const auto wg = load_task("winogrande", data_dir(), 1);
  EXPECT_NE(wg.items[0].options[0].context, wg.items[0].options[1].context);
  EXPECT_EQ(wg.items[0].options[0].continuation, wg.items[0].options[1].continuation);
}

TEST(McTasks, BadDataNamesFileAndLine) {
  const auto dir = std::filesystem::temp_directory_path() / "qb_mc_bad";
  std::filesystem::create_directories(dir / "llm_foundry_icl");
  {
    std::ofstream f(dir / "llm_foundry_icl/arc_easy.jsonl");
    f << "{\"query\": \"Q\", \"choices\": [\"a\"], \"gold\": 0}\n{not json\n";
  }
  try {
    load_task("arc_easy", dir.string());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("arc_easy.jsonl:2"), std::string::npos) << e.what();
  }
  EXPECT_THROW(find_task("no_such_task"), Error);
}

// The shared-prefix path must equal scoring each option as one full sequence.
TEST(McScoring, SharedContextEqualsFullSequenceScoring) {
  ModelPair pair(test::stories260k_path(), test::stories260k_path(), {1});
  const auto& tok = pair.tokenizer();
  auto& be = *pair.baseline().backend;
  std::vector<McItem> items = {
      {"a", {{"Once upon a time there was", " a little girl", 13}, {"Once upon a time there was", " a big dog", 9}}, 0},
      {"b", {{"Lily saw a bird ", "in the sky.", 11}, {"Tom saw a cat", " in the tree", 11}}, 1}};
  McScoreOptions so;
  so.progress = false;
  const auto s = score_items(be, tok, items, so);
  for (size_t i = 0; i < items.size(); ++i)
    for (size_t j = 0; j < 2; ++j) {
      std::string ctx = items[i].options[j].context, cont = items[i].options[j].continuation;
      while (!ctx.empty() && ctx.back() == ' ') cont = " " + cont, ctx.pop_back();
      const auto ce = tok.encode(ctx, true, false);
      const auto we = tok.encode(ctx + cont, true, false);
      std::vector<int32_t> full = ce;
      full.insert(full.end(), we.begin() + std::ptrdiff_t(ce.size()), we.end());
      const auto seq = be.create_sequence();
      runtime::Batch b;
      b.add_sequence(full, seq, 0, true);
      const auto lg = be.forward(b);
      be.free_sequence(seq);
      double ll = 0;
      for (size_t t = ce.size(); t < full.size(); ++t) ll += log_softmax(lg.row(t - 1))[size_t(full[t])];
      EXPECT_NEAR(s[i][j].loglik, ll, 1e-9) << i << "," << j;
      EXPECT_EQ(s[i][j].n_tokens, full.size() - ce.size());
      EXPECT_LT(ll, 0.0);
    }
}

TEST(McEval, IdenticalModelsNoFlips) {
  ModelPair pair(test::stories260k_path(), test::stories260k_path(), {1});
  const auto t = load_task("hellaswag", data_dir(), 20);
  McOptions o;
  o.progress = false;
  const auto r = evaluate_multiple_choice(pair, t, o);
  EXPECT_EQ(mv(r, "baseline_acc"), mv(r, "candidate_acc"));
  EXPECT_EQ(mv(r, "acc_flip_rate"), 0.0);
  EXPECT_EQ(mv(r, "acc_norm_flip_rate"), 0.0);
  EXPECT_EQ(mv(r, "acc_mcnemar_exact_p"), 1.0);
  EXPECT_EQ(r.items().size(), 20u);
  EXPECT_NE(r.manifest().find("harness.dataset_sha256")->value.find("slice"), std::string::npos);
}

// LAMBADA has one continuation per item: no option argmax to change, so no answer_changed_rate (it
// would always read 0 while the accuracy moves); a task with options keeps it.
TEST(McEval, AnswerChangedRateOnlyForTasksWithOptions) {
  const auto q4 = test::make_quantized_stories(formats::GgmlType::Q4_0);
  ModelPair pair(test::stories260k_path(), q4, {1});
  McOptions o;
  o.progress = false;
  const auto lam = evaluate_multiple_choice(pair, load_task("lambada_openai", data_dir(), 5), o);
  EXPECT_EQ(lam.find_metric("answer_changed_rate"), nullptr);
  EXPECT_NE(lam.find_metric("acc_flip_rate"), nullptr);
  const auto arc = evaluate_multiple_choice(pair, load_task("arc_easy", data_dir(), 5), o);
  EXPECT_NE(arc.find_metric("answer_changed_rate"), nullptr);
}

TEST(McEval, QuantizedCandidateFlipTableConsistentAndBatchInvariant) {
  const auto q4 = test::make_quantized_stories(formats::GgmlType::Q4_0);
  ModelPair pair(test::stories260k_path(), q4, {1});
  const auto t = load_task("arc_easy", data_dir(), 30);
  McOptions o;
  o.progress = false;
  const auto r1 = evaluate_multiple_choice(pair, t, o);
  o.batch = 8;
  const auto r8 = evaluate_multiple_choice(pair, t, o);
  // Tolerance: per-row computation is batch-independent on the CPU backend; 1e-9 nats per option.
  for (size_t i = 0; i < r1.items().size(); ++i)
    for (size_t j = 0; j < r1.items()[i]["candidate_loglik"].size(); ++j)
      EXPECT_NEAR(r1.items()[i]["candidate_loglik"][j].get<double>(), r8.items()[i]["candidate_loglik"][j].get<double>(), 1e-9);
  // flips reconcile the two accuracies: acc_c - acc_b = (w->c - c->w) / n
  const double n = 30;
  EXPECT_NEAR(mv(r1, "candidate_acc") - mv(r1, "baseline_acc"),
              (mv(r1, "acc_flips_wrong_to_correct") - mv(r1, "acc_flips_correct_to_wrong")) / n, 1e-12);
  // Q4_0 moves the log-likelihoods
  double maxdiff = 0;
  for (const auto& it : r1.items())
    for (size_t j = 0; j < it["baseline_loglik"].size(); ++j)
      maxdiff = std::max(maxdiff, std::abs(it["baseline_loglik"][j].get<double>() - it["candidate_loglik"][j].get<double>()));
  EXPECT_GT(maxdiff, 1e-3);
}

}  // namespace
}  // namespace qb::eval
