// Tests for the MMLU, TruthfulQA, LAMBADA, GSM8K and MGSM tasks: prompts equal to lm-evaluation-
// harness 0.4.13's own templates rendered by jinja2 (tests/golden/eval_tasks/make_task_goldens.py),
// CPython's random draws (GSM8K's few-shot sampler), mc2 and exact_match against lm-eval's Python on
// hand-made inputs, malformed data named by file and line, and each task end to end on stories260K.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "eval_fixtures.h"
#include "quantbench/core/error.h"
#include "quantbench/eval/math_task.h"
#include "quantbench/eval/multiple_choice.h"
#include "quantbench/eval/run_eval.h"
#include "quantbench/eval/tasks/python_random.h"
#include "quantbench/runtime/generate.h"
#include "quantbench/eval/tasks/task.h"

namespace qb::eval {
namespace {

std::string data_dir() { return test::source_path("data/eval"); }

nlohmann::json golden(const std::string& name) {
  std::ifstream in(test::source_path("tests/golden/eval_tasks/" + name));
  return nlohmann::json::parse(in);
}

const McItem& item_by_id(const LoadedTask& t, const std::string& id) {
  for (const auto& it : t.items)
    if (it.id == id) return it;
  throw std::runtime_error("no item " + id);
}

void expect_mc_item(const McItem& it, const nlohmann::json& g, const std::string& what) {
  const auto conts = g["continuations"].get<std::vector<std::string>>();
  ASSERT_EQ(it.options.size(), conts.size()) << what;
  for (size_t j = 0; j < conts.size(); ++j) {
    EXPECT_EQ(it.options[j].context, g["context"].get<std::string>()) << what << " option " << j;
    EXPECT_EQ(it.options[j].continuation, conts[j]) << what << " option " << j;
  }
  if (g.contains("gold")) EXPECT_EQ(it.gold, g["gold"].get<size_t>()) << what;
  if (g.contains("n_true")) EXPECT_EQ(it.n_true, g["n_true"].get<size_t>()) << what;
}

TEST(EvalTasks, MultipleChoicePromptsEqualLmEvalRendering) {
  const auto g = golden("prompts.json");
  const auto mmlu0 = load_task("mmlu", data_dir()), mmlu5 = load_task("mmlu_5shot", data_dir());
  for (const auto* s : {"abstract_algebra", "world_religions"}) {
    expect_mc_item(item_by_id(mmlu0, std::string(s) + "/1"), g[std::string("mmlu_0shot_") + s + "_1"], s);
    expect_mc_item(item_by_id(mmlu5, std::string(s) + "/1"), g[std::string("mmlu_5shot_") + s + "_1"], s);
  }
  EXPECT_EQ(item_by_id(mmlu0, "marketing/0").group, "marketing");
  const auto mc1 = load_task("truthfulqa_mc1", data_dir()), mc2 = load_task("truthfulqa_mc2", data_dir());
  for (int i : {0, 3}) {
    expect_mc_item(mc1.items[size_t(i)], g["truthfulqa_mc1_" + std::to_string(i)], "mc1");
    expect_mc_item(mc2.items[size_t(i)], g["truthfulqa_mc2_" + std::to_string(i)], "mc2");
  }
  const auto lam = load_task("lambada_openai", data_dir());
  for (int i : {0, 7}) expect_mc_item(lam.items[size_t(i)], g["lambada_openai_" + std::to_string(i)], "lambada");
  // every vendored slice is a slice, and says so
  for (const auto* t : {"mmlu", "truthfulqa_mc1", "lambada_openai"}) EXPECT_TRUE(load_task(t, data_dir()).is_slice) << t;
}

TEST(EvalTasks, MmluLimitIsPerSubject) {
  const auto t = load_task("mmlu_5shot", data_dir(), 3);
  ASSERT_EQ(t.items.size(), 12u);  // 4 vendored subjects x 3
  EXPECT_EQ(t.items[3].id, "high_school_geography/0");
  EXPECT_EQ(t.spec->shots, 5);
}

TEST(EvalTasks, GenerationPromptsEqualLmEvalRendering) {
  const auto g = golden("prompts.json");
  const auto gsm = load_gen_task("gsm8k", data_dir());
  ASSERT_EQ(gsm.items.size(), 20u);
  for (int i : {0, 2}) {
    const auto& e = g["gsm8k_" + std::to_string(i)];
    EXPECT_EQ(gsm.items[size_t(i)].prompt, e["context"].get<std::string>()) << i;
    EXPECT_EQ(gsm.items[size_t(i)].target, e["target"].get<std::string>()) << i;
    EXPECT_EQ(gsm.spec->until, e["until"].get<std::vector<std::string>>());
  }
  for (const auto* lang : {"de", "zh", "fr", "bn"}) {
    const auto t = load_gen_task(std::string("mgsm_direct_") + lang, data_dir(), 1);
    const auto& e = g[std::string("mgsm_direct_") + lang + "_0"];
    ASSERT_EQ(t.items.size(), 1u);
    EXPECT_EQ(t.items[0].prompt, e["context"].get<std::string>()) << lang;
    EXPECT_EQ(t.items[0].target, e["target"].get<std::string>()) << lang;
    // lm-eval's until is the language's question word plus the two end tokens
    EXPECT_EQ(t.spec->until, e["until"].get<std::vector<std::string>>()) << lang;
  }
  EXPECT_EQ(find_gen_task("hellaswag"), nullptr);
}

TEST(EvalTasks, PythonRandomMatchesCPython) {
  const auto g = golden("python_random.json");
  PyRandom r(1234);
  for (const auto& v : g["seed1234_getrandbits32"]) EXPECT_EQ(r.getrandbits(32), v.get<uint32_t>());
  PyRandom r2(1234);
  const int ks[] = {1, 5, 13, 31};
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(r2.getrandbits(ks[i]), g["seed1234_getrandbits_1_5_13_31"][i].get<uint32_t>());
  PyRandom r7(7);  // the same sequence of calls as the script: both sample branches
  const auto& s = g["seed7_samples"];
  EXPECT_EQ(r7.sample(10, 3), s["pool_10_3"].get<std::vector<size_t>>());
  EXPECT_EQ(r7.sample(7473, 5), s["set_7473_5"].get<std::vector<size_t>>());
  EXPECT_EQ(r7.sample(100, 10), s["big_100_10"].get<std::vector<size_t>>());
  EXPECT_EQ(r7.sample(1000, 12), s["set_1000_12"].get<std::vector<size_t>>());
  const auto draws = gsm8k_fewshot_draws(6, 7473);
  for (size_t d = 0; d < 6; ++d) EXPECT_EQ(draws[d], g["gsm8k_draws"][d].get<std::vector<size_t>>()) << d;
}

TEST(EvalTasks, Mc2MatchesLmEvalOnHandMadeLoglik) {
  const auto g = golden("scoring.json");
  for (const auto& c : g["mc2"]) {
    const auto labels = c["labels"].get<std::vector<int>>();
    McItem it;
    it.id = "x";
    std::vector<OptionScore> s;
    for (double ll : c["lls"].get<std::vector<double>>()) s.push_back({ll, 1, false});
    it.options.resize(s.size());
    it.n_true = size_t(std::find(labels.begin(), labels.end(), 0) - labels.begin());
    EXPECT_NEAR(mc2_score(it, s), c["mc2"].get<double>(), 1e-12);
  }
  // Far below exp's range lm-eval would divide 0 by 0; the shifted sum still gives the ratio.
  McItem it;
  it.id = "tiny";
  it.options.resize(2);
  it.n_true = 1;
  EXPECT_NEAR(mc2_score(it, {{-2000.0, 1, false}, {-2001.0, 1, false}}), 1 / (1 + std::exp(-1.0)), 1e-12);
  it.n_true = 0;
  EXPECT_THROW(mc2_score(it, {{-1.0, 1, false}, {-2.0, 1, false}}), Error);
}

TEST(EvalTasks, AnswerExtractionMatchesLmEval) {
  const auto g = golden("scoring.json");
  for (const auto* k : {"mgsm", "gsm8k"}) {
    const auto kind = std::string(k) == "gsm8k" ? GenTaskKind::Gsm8k : GenTaskKind::MgsmDirect;
    for (const auto& c : g[k]) {
      const auto s = score_gen_response(kind, c["response"], c["target"]);
      const std::string what = std::string(k) + " " + c["response"].dump();
      EXPECT_EQ(s.strict, c["strict"].get<std::string>()) << what;
      EXPECT_EQ(s.flexible, c["flexible"].get<std::string>()) << what;
      EXPECT_EQ(s.strict_ok, c["strict_ok"].get<bool>()) << what;
      EXPECT_EQ(s.flexible_ok, c["flexible_ok"].get<bool>()) << what;
    }
  }
  EXPECT_EQ(cut_at_stops("12\n\nQuestion: next</s>", {"Question:", "</s>"}), "12\n\n");
  EXPECT_EQ(cut_at_stops("no stop here", {"Frage:"}), "no stop here");
  EXPECT_EQ(mgsm_normalize("A-1,000.5!"), "a10005");
}

TEST(EvalTasks, CsvParserHandlesQuotesAndNamesBadLines) {
  std::vector<size_t> lines;
  const auto rows = parse_csv("a,\"b, \"\"c\"\"\",d\r\n\"multi\nline\",,x\n\nlast,1", "f.csv", &lines);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(lines, (std::vector<size_t>{1, 2, 5}));
  EXPECT_EQ(rows[0], (std::vector<std::string>{"a", "b, \"c\"", "d"}));
  EXPECT_EQ(rows[1], (std::vector<std::string>{"multi\nline", "", "x"}));
  EXPECT_EQ(rows[2], (std::vector<std::string>{"last", "1"}));
  try {
    parse_csv("a,b\nc,\"open\n\nmore", "bad.csv");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.csv:2"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_csv("a,b\"c\n", "q.csv"), Error);
}

void write_file(const std::filesystem::path& p, const std::string& s) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p) << s;
}

void expect_error_naming(const std::function<void()>& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one naming " << needle;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(EvalTasks, MalformedDataNamesFileAndLine) {
  const auto dir = std::filesystem::temp_directory_path() / "qb_eval_tasks_bad";
  std::filesystem::remove_all(dir);
  write_file(dir / "mmlu/test/x_test.csv",
             "question,choice0,choice1,choice2,choice3,answer\n\"Q\nmore\",a,b,c,d,1\nQ2,a,b,c,d,7\n");
  write_file(dir / "mmlu/dev/x_dev.csv", "question,choice0,choice1,choice2,choice3,answer\nQ,a,b,c,d,1\n");
  expect_error_naming([&] { load_task("mmlu", dir.string()); }, "x_test.csv:4: answer '7'");
  expect_error_naming([&] { load_task("mmlu_5shot", dir.string()); }, "x_dev.csv");  // 1 dev row for 5 shots
  write_file(dir / "llm_foundry_icl/lambada_openai.jsonl", "{\"context\": \"a b\", \"continuation\": \"c\"}\n{oops\n");
  expect_error_naming([&] { load_task("lambada_openai", dir.string()); }, "lambada_openai.jsonl:2");
  write_file(dir / "truthfulqa/en.validation.json",
             R"([{"question": "q", "mc2_targets": {"choices": ["a", "b"], "labels": [0, 1]}}])");
  expect_error_naming([&] { load_task("truthfulqa_mc2", dir.string()); }, "question 1");
  write_file(dir / "mgsm/mgsm_de.tsv", "Frage eins\t3\nkein tab hier\n");
  expect_error_naming([&] { load_gen_task("mgsm_direct_de", dir.string()); }, "mgsm_de.tsv:2");
  write_file(dir / "mgsm/mgsm_de.tsv", "Frage eins\tdrei\n");
  expect_error_naming([&] { load_gen_task("mgsm_direct_de", dir.string()); }, "mgsm_de.tsv:1");
  // GSM8K: the first test doc's draws reach rows this train slice does not hold.
  write_file(dir / "gsm8k/test.jsonl", "{\"question\": \"q\", \"answer\": \"x\\n#### 1\"}\n");
  write_file(dir / "gsm8k/train_fewshot.jsonl", "{\"question\": \"q\", \"answer\": \"#### 2\", \"train_row\": 5}\n");
  expect_error_naming([&] { load_gen_task("gsm8k", dir.string()); }, "needs train row 6374");
  write_file(dir / "gsm8k/test.jsonl", "{\"question\": \"q\", \"answer\": \"no marker\"}\n");
  expect_error_naming([&] { load_gen_task("gsm8k", dir.string()); }, "test.jsonl:1");
}

double mv(const nlohmann::json& r, const std::string& name) {
  for (const auto& m : r["metrics"])
    if (m["name"] == name) return m["value"].get<double>();
  throw std::runtime_error("no metric " + name + " in " + r["task"].get<std::string>());
}

// Short synthetic MMLU and GSM8K files keep the few-shot contexts small: the reference CPU attention
// is quadratic, and the real 5-shot prompts (checked above against lm-eval) run to ~2000 tokens with
// stories260K's 512-token vocabulary.
std::string synthetic_data_dir() {
  const auto dir = std::filesystem::temp_directory_path() / "qb_eval_tasks_synthetic";
  std::filesystem::remove_all(dir);
  const std::string header = "question,choice0,choice1,choice2,choice3,answer\n";
  for (const auto* s : {"alpha", "beta_gamma"}) {
    write_file(dir / "mmlu/dev" / (std::string(s) + "_dev.csv"),
               header + "A cat?,yes,no,maybe,\"so, so\",0\nA dog?,a,b,c,d,1\nSun?,hot,cold,wet,dry,0\nOne?,1,2,3,4,0\n"
                        "Two?,1,2,3,4,1\n");
    write_file(dir / "mmlu/test" / (std::string(s) + "_test.csv"), header + "Tom ran?,fast,slow,up,down,0\nLily?,a,b,c,d,3\n");
  }
  std::string train;
  const auto draws = gsm8k_fewshot_draws(1, 7473);
  for (size_t r : draws[0])
    train += "{\"question\": \"One plus one?\", \"answer\": \"It is 2.\\n#### 2\", \"train_row\": " + std::to_string(r) + "}\n";
  write_file(dir / "gsm8k/train_fewshot.jsonl", train);
  write_file(dir / "gsm8k/test.jsonl", "{\"question\": \"Two plus one?\", \"answer\": \"3\\n#### 3\"}\n");
  return dir.string();
}

TEST(EvalTasks, EveryTaskRunsEndToEndOnStories260K) {
  const auto q8 = test::make_quantized_stories(formats::GgmlType::Q4_0);
  EvalRequest q;
  q.baseline = test::stories260k_path();
  q.candidate = q8;
  q.regimes = {"multiple_choice", "generation"};
  q.tasks = {"mmlu", "mmlu_5shot", "gsm8k"};
  q.data_dir = synthetic_data_dir();
  q.limit = 2;
  q.max_tokens = 12;
  q.threads = 1;
  q.progress = false;
  const auto syn = run_evaluation(q);
  q.tasks = {"truthfulqa_mc1", "truthfulqa_mc2", "lambada_openai", "mgsm_direct_de"};
  q.data_dir = data_dir();
  q.limit = 1;  // TruthfulQA's preamble and its 8-13 options per question are the slow part
  const auto j = run_evaluation(q);
  // MMLU: 2 subjects x 2 items; the per-subject table adds up to the overall accuracy
  const auto& mm = syn["regimes"]["multiple_choice"];
  ASSERT_EQ(mm.size(), 2u);
  EXPECT_EQ(mm[1]["manifest"]["harness.shots"].get<std::string>().substr(0, 1), "5");
  for (const auto& r : mm) {
    ASSERT_EQ(r["items"].size(), 4u);
    double correct = 0;
    for (const auto& [k, g] : r["extras"]["per_group"].items()) correct += g["baseline_correct"].get<double>();
    EXPECT_NEAR(correct / 4, mv(r, "baseline_acc"), 1e-12);
    EXPECT_EQ(r["items"][0]["group"], "alpha");
    EXPECT_EQ(r["items"][3]["group"], "beta_gamma");
  }
  const auto& g8 = syn["regimes"]["generation"];
  ASSERT_EQ(g8.size(), 1u);
  EXPECT_EQ(g8[0]["task"], "gsm8k");
  EXPECT_EQ(g8[0]["items"].size(), 1u);
  EXPECT_NE(g8[0]["manifest"]["harness.generation"].get<std::string>().find("(0 truncated)"), std::string::npos);

  const auto& mc = j["regimes"]["multiple_choice"];
  ASSERT_EQ(mc.size(), 3u);
  for (const auto& r : mc) EXPECT_EQ(r["items"].size(), 1u) << r["task"];
  // TruthfulQA mc2 is a probability mass; mc1 has flips and McNemar
  for (const auto* m : {"baseline_mc2", "candidate_mc2"}) {
    EXPECT_GE(mv(mc[1], m), 0.0);
    EXPECT_LE(mv(mc[1], m), 1.0);
  }
  EXPECT_GE(mv(mc[0], "acc_mcnemar_exact_p"), 0.0);
  // LAMBADA: perplexity is exp(-mean target loglik) over the items
  const auto& lam = mc[2];
  double ll = 0;
  for (const auto& it : lam["items"]) ll += it["baseline_loglik"][0].get<double>();
  EXPECT_NEAR(mv(lam, "baseline_perplexity"), std::exp(-ll), 1e-9 * mv(lam, "baseline_perplexity"));
  EXPECT_GT(mv(lam, "candidate_perplexity"), 1.0);
  // generation: both filters, flips reconcile the accuracies
  const auto& mg = j["regimes"]["generation"];
  ASSERT_EQ(mg.size(), 1u);
  EXPECT_EQ(mg[0]["task"], "mgsm_direct_de");
  for (const auto& r : {g8[0], mg[0]})
    for (const auto* f : {"exact_match_flexible_extract", r["task"] == "gsm8k" ? "exact_match_strict_match"
                                                                                 : "exact_match_remove_whitespace"}) {
      const std::string n = f;
      const double items = double(r["items"].size());
      EXPECT_NEAR(mv(r, "candidate_" + n) - mv(r, "baseline_" + n),
                  (mv(r, n + "_flips_wrong_to_correct") - mv(r, n + "_flips_correct_to_wrong")) / items, 1e-12);
    }
  // the responses were cut at the stop strings
  for (const auto& it : g8[0]["items"]) EXPECT_EQ(it["baseline_response"].get<std::string>().find("Question:"), std::string::npos);
  for (const auto& it : mg[0]["items"]) EXPECT_EQ(it["candidate_response"].get<std::string>().find("Frage:"), std::string::npos);
}

TEST(EvalTasks, UnknownTaskListsBothKinds) {
  EvalRequest q;
  q.baseline = q.candidate = test::stories260k_path();
  q.tasks = {"gsm8k_cot_typo"};
  q.progress = false;
  expect_error_naming([&] { run_evaluation(q); }, "mgsm_direct_zh");
  q.tasks = {"gsm8k"};  // a generation task alone cannot feed the multiple-choice regime
  q.regimes = {"multiple_choice"};
  expect_error_naming([&] { run_evaluation(q); }, "no multiple-choice task");
}

TEST(EvalTasks, GreedyFlagAgreesWithDecoding) {
  // LAMBADA's acc: the target is the greedy continuation. Check the flag against explicit greedy
  // decoding on a context built so that it is (the model's own greedy continuation) and on one that is not.
  ModelPair pair(test::stories260k_path(), test::stories260k_path(), {1});
  const auto& tok = pair.tokenizer();
  auto& be = *pair.baseline().backend;
  const std::string ctx = "Once upon a time there was a little";
  auto ids = tok.encode(ctx, true, false);
  runtime::GenerateOptions go;
  go.max_new_tokens = 4;
  const auto out = runtime::generate(be, ids, go).tokens;
  std::string cont = tok.decode(out, false);
  if (cont.empty() || cont[0] != ' ') cont = " " + cont;  // SPM decode drops the first token's space
  const auto sp = cont.find(' ', 1);
  if (sp != std::string::npos) cont = cont.substr(0, sp);  // the first word, with its leading space
  ASSERT_GT(cont.size(), 1u);
  std::vector<McItem> items = {{"greedy", {{ctx, cont, cont.size() - 1}}, 0, "", 0},
                               {"other", {{ctx, " zebra", 5}}, 0, "", 0}};
  McScoreOptions so;
  so.progress = false;
  const auto s = score_items(be, tok, items, so);
  EXPECT_TRUE(s[0][0].greedy) << "'" << cont << "'";
  EXPECT_FALSE(s[1][0].greedy);
}

}  // namespace
}  // namespace qb::eval
