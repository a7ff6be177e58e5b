// run_plan end to end on stories260K with tiny settings: a run stores what `eval` computes (same
// numbers), writes the report with the verdict, survives kill -9 and resumes without loss or double
// counting, and produces run directories that `compare` ranks or refuses by their methodology.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "../cli_run.h"
#include "../formats/temp_dir.h"
#include "../test_paths.h"
#include "quiet_run_options.h"
#include "quantbench/core/error.h"
#include "quantbench/eval/run_eval.h"
#include "quantbench/plan/plan.h"
#include "quantbench/plan/run_plan.h"
#include "quantbench/report/compare.h"
#include "quantbench/report/store.h"

extern char** environ;

namespace qb::plan {
namespace {

namespace fs = std::filesystem;

const std::string kPrompts =
    "{\"id\": \"a\", \"prompt\": \"Once upon a time, there was a little girl named Lily. She\"}\n"
    "{\"id\": \"b\", \"prompt\": \"Tom had a small dog called Max. Every morning, Max\"}\n"
    "{\"id\": \"c\", \"prompt\": \"One day it started to rain. Sue looked out and said,\"}\n"
    "{\"id\": \"d\", \"prompt\": \"Mom made a big cake for Ben. When Ben saw it, he\"}\n";

// A plan over stories260K; `cands` is the candidate block; the prompts file is written beside the plan.
std::string tiny_plan(const std::string& dir, const std::string& cands, const std::string& regimes) {
  test::write_text(dir + "/prompts.jsonl", kPrompts);
  return test::write_text(dir + "/plan.toml",
               "name = \"tiny\"\nresamples = 50\n[baseline]\nmodel = \"" + qb::test::stories260k_path() + "\"\n" + cands +
                   regimes);
}

const std::string kPerplexity = "[regimes.perplexity]\ntext = \"" +
                                qb::test::source_path("data/eval/tinystories/tiny_eval_slice.txt") +
                                "\"\nctx = 64\nlimit = 6\n";

struct Key {
  std::string regime, task, candidate;
  auto operator<=>(const Key&) const = default;
};

std::map<Key, report::StoredResult> results_of(const std::string& dir) {
  std::map<Key, report::StoredResult> out;
  for (auto& r : report::RunStore::open(dir).load_results())
    out.emplace(Key{r.result.regime(), r.result.task(), r.candidate}, std::move(r));
  return out;
}

using test::quiet_options;

TEST(RunPlan, TinyPlanEndToEndStoresEvalNumbersAndWritesTheVerdict) {
  const test::TempDir tmp;
  const std::string dir = tmp.path();
  const std::string plan = tiny_plan(
      dir, "[[candidate]]\nscheme = \"q8_0\"\n",
      kPerplexity + "[regimes.generation]\nprompts = \"prompts.jsonl\"\nmax_tokens = 12\nchat = false\n"
                    "[regimes.multiple_choice]\ntasks = [\"arc_easy\"]\nlimit = 3\ndata_dir = \"" + qb::test::source_path("data/eval") + "\"\n"
                    "[bench]\nbatch_sizes = [1, 2]\nprompt_len = 8\ngen_len = 4\nreps = 1\nwarmup = 0\nbandwidth_mib = 4\n"
                    "[tolerances]\nmax_kld_mean = 1000.0\nmax_accuracy_drop = 1.0\nmin_decode_speedup = 1e9\n"
                    "[report]\nnotes = [\"a toy model\"]\n");
  const auto s = run_plan(load_plan(plan), quiet_options(dir + "/run"));
  EXPECT_EQ(s.steps_run, 5u);  // perplexity, generation, arc_easy for q8_0; bench for baseline and q8_0
  EXPECT_EQ(s.steps_skipped, 0u);
  EXPECT_TRUE(fs::exists(dir + "/run/artifacts/q8_0.gguf"));
  const auto res = results_of(dir + "/run");
  ASSERT_EQ(res.size(), 5u);
  for (const auto& [k, r] : res) EXPECT_TRUE(r.finished) << k.regime << " " << k.task << " " << k.candidate;
  const auto& ppl = res.at({"perplexity", "perplexity:tiny_eval_slice.txt", "q8_0"});
  EXPECT_EQ(ppl.result.items().size(), 6u);
  EXPECT_EQ(res.at({"generation", "generation:prompts.jsonl", "q8_0"}).result.items().size(), 4u);
  EXPECT_EQ(res.at({"multiple_choice", "arc_easy", "q8_0"}).result.items().size(), 3u);
  EXPECT_EQ(res.at({"bench", "decode", "baseline"}).result.items().size(), 2u);
  ASSERT_NE(res.at({"bench", "decode", "q8_0"}).result.find_metric("decode_speedup"), nullptr);
  // The model under test is the baseline's file; the candidate file that ran is under scheme.artifact_*.
  const auto& m = ppl.result.manifest();
  EXPECT_EQ(m.value_or("model.source_file", ""), qb::test::stories260k_path());
  EXPECT_EQ(m.value_or("scheme.artifact_source_file", ""), dir + "/run/artifacts/q8_0.gguf");
  EXPECT_EQ(m.value_or("scheme.name", ""), "q8_0");
  // Every disclosure field of every stored result is filled or says why not (EVALUATION.md).
  for (const auto& [k, r] : res)
    EXPECT_TRUE(r.result.manifest().missing().empty())
        << k.regime << " " << k.task << " " << k.candidate << ": " << r.result.manifest().missing().front();
  EXPECT_EQ(m.value_or("scheme.kv_cache", "").find("candidate: K and V: f32"), 0u) << m.value_or("scheme.kv_cache", "");

  // Same numbers as `quantbench eval` with the same settings (the hook changes nothing).
  eval::EvalRequest q;
  q.baseline = qb::test::stories260k_path();
  q.candidate = dir + "/run/artifacts/q8_0.gguf";
  q.regimes = {"perplexity"};
  q.text = qb::test::source_path("data/eval/tinystories/tiny_eval_slice.txt");
  q.n_ctx = 64;
  q.limit = 6;
  q.resamples = 50;
  q.progress = false;
  const auto j = eval::run_evaluation(q)["regimes"]["perplexity"][0];
  size_t compared = 0;
  for (const auto& jm : j["metrics"]) {
    const Metric* sm = ppl.result.find_metric(jm["name"].get<std::string>());
    ASSERT_NE(sm, nullptr) << jm["name"];
    EXPECT_EQ(sm->value, jm["value"].get<double>()) << jm["name"];
    ++compared;
  }
  EXPECT_GT(compared, 10u);

  // The report: notes first, the verdict with PASS and FAIL rows.
  std::ifstream md(s.report_md);
  const std::string text((std::istreambuf_iterator<char>(md)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("a toy model"), std::string::npos);
  EXPECT_NE(text.find("| perplexity | kld\\_mean | <= 1000 |"), std::string::npos) << text.substr(0, 2000);
  EXPECT_NE(text.find("**pass**"), std::string::npos);
  EXPECT_NE(text.find("**FAIL**"), std::string::npos);  // the impossible speed-up
  EXPECT_TRUE(fs::exists(s.report_html));
  EXPECT_EQ(s.tolerances_failed, 1u);

  // Running it again does nothing new.
  const auto again = run_plan(load_plan(plan), quiet_options(dir + "/run"));
  EXPECT_EQ(again.steps_run, 0u);
  EXPECT_EQ(again.steps_skipped, 5u);
  // A different plan text in the same directory is refused.
  test::write_text(plan, std::string("# changed\n") + Plan(load_plan(plan)).text);
  EXPECT_THROW(run_plan(load_plan(plan), quiet_options(dir + "/run")), Error);
}

// Starts `quantbench run` as a child, SIGKILLs it once some items are stored, reruns it to the end and
// checks the store equals that of a run never killed: same results, same item keys, same metrics.
TEST(RunPlan, KillNineMidRunThenResumeLosesAndDoublesNothing) {
  const test::TempDir tmp;
  const std::string dir = tmp.path();
  std::string prompts;
  for (int i = 0; i < 16; ++i)
    prompts += "{\"id\": \"p" + std::to_string(i) + "\", \"prompt\": \"Once upon a time, number " + std::to_string(i) +
               " went to the park and\"}\n";
  test::write_text(dir + "/many.jsonl", prompts);
  const std::string plan =
      tiny_plan(dir, "[[candidate]]\nname = \"q8\"\nscheme = \"q8_0\"\n",
                "[regimes.generation]\nprompts = \"many.jsonl\"\nmax_tokens = 32\nchat = false\n" + kPerplexity);
  const std::string bin = std::string(QB_BINARY_DIR) + "/quantbench";
  const std::string killed = dir + "/killed";

  std::vector<std::string> args{bin, "run", plan, "--out", killed, "--quiet"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, bin.c_str(), &fa, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&fa);
  size_t seen = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (seen == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    if (!fs::exists(killed + "/" + report::kDatabaseFile)) continue;
    try {
      for (const auto& r : report::RunStore::open(killed).load_results()) seen += r.result.items().size();
    } catch (const Error&) {  // the child may be creating the schema right now
    }
  }
  ASSERT_GT(seen, 0u) << "the child stored no item in time";
  ::kill(pid, SIGKILL);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the child finished before it could be killed: make the plan longer";
  {
    size_t stored = 0;
    bool all_finished = true;
    for (const auto& r : report::RunStore::open(killed).load_results()) stored += r.result.items().size(), all_finished &= r.finished;
    ASSERT_FALSE(all_finished && stored == 16 + 6) << "nothing was left to resume";
  }

  const auto resumed = qb::test::run_cli("run " + plan + " --out " + killed + " --quiet");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_NE(resumed.err.find("resuming"), std::string::npos) << resumed.err;
  EXPECT_NE(resumed.out.find("report: " + killed + "/reports/report.md"), std::string::npos) << resumed.out;

  const auto whole = qb::test::run_cli("run " + plan + " --out " + dir + "/whole --quiet");
  ASSERT_EQ(whole.exit_code, 0) << whole.err;

  const auto a = results_of(killed), b = results_of(dir + "/whole");
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [k, ra] : a) {
    ASSERT_TRUE(b.count(k)) << k.regime << " " << k.task;
    const auto& rb = b.at(k);
    EXPECT_TRUE(ra.finished);
    std::vector<std::string> ka, kb;
    for (const auto& it : ra.result.items()) ka.push_back(it["key"]);
    for (const auto& it : rb.result.items()) kb.push_back(it["key"]);
    std::sort(ka.begin(), ka.end());
    std::sort(kb.begin(), kb.end());
    EXPECT_EQ(ka, kb) << k.regime;
    ASSERT_EQ(ra.result.metrics().size(), rb.result.metrics().size()) << k.regime;
    for (size_t i = 0; i < ra.result.metrics().size(); ++i)
      EXPECT_EQ(ra.result.metrics()[i].value, rb.result.metrics()[i].value) << k.regime << " " << ra.result.metrics()[i].name;
  }
  EXPECT_EQ(a.at({"generation", "generation:many.jsonl", "q8"}).result.items().size(), 16u);
  EXPECT_EQ(a.at({"perplexity", "perplexity:tiny_eval_slice.txt", "q8"}).result.items().size(), 6u);
}

// Runs made by `run` that differ only in scheme are ranked; a calibration difference is refused.
TEST(RunPlan, CompareRanksSchemeOnlyDifferencesAndRefusesCalibrationDifferences) {
  const test::TempDir tmp;
  const std::string dir = tmp.path();
  auto make = [&](const std::string& name, const std::string& cand) {
    fs::create_directories(dir + "/" + name);
    const std::string plan = tiny_plan(dir + "/" + name, cand, kPerplexity);
    run_plan(load_plan(plan), quiet_options(dir + "/" + name + "/run"));
    return report::RunStore::open(dir + "/" + name + "/run").load_results();
  };
  const auto w8 = make("w8", "[[candidate]]\nname = \"cand\"\nscheme = \"w8g32\"\n");
  const auto w4 = make("w4", "[[candidate]]\nname = \"cand\"\nscheme = \"w4g32\"\n");
  const auto ranked = report::compare_results(w8, w4);
  ASSERT_EQ(ranked.pairs.size(), 1u);
  EXPECT_EQ(ranked.pairs[0].status, report::PairStatus::Ranked);
  for (const auto& d : ranked.pairs[0].blocking) ADD_FAILURE() << "blocking: " << d.key;
  EXPECT_EQ(ranked.exit_code(), 0);
  bool w8_better_kld = false;
  for (const auto& m : ranked.pairs[0].metrics)
    if (m.name == "kld_mean") w8_better_kld = m.verdict == "A better";
  EXPECT_TRUE(w8_better_kld);  // 8-bit weights stay closer to the baseline than 4-bit ones

  const std::string calib = "[candidate.calibration]\ntext = \"" + qb::test::source_path("data/calib/tiny_stories_16k.txt") +
                            "\"\nsamples = 4\nseq_len = 64\n";
  const auto s1 = make("s1", "[[candidate]]\nname = \"cand\"\nscheme = \"w4g32:gptq\"\n" + calib + "seed = 1\n");
  const auto s2 = make("s2", "[[candidate]]\nname = \"cand\"\nscheme = \"w4g32:gptq\"\n" + calib + "seed = 2\n");
  const auto refused = report::compare_results(s1, s2);
  ASSERT_EQ(refused.pairs.size(), 1u);
  EXPECT_EQ(refused.pairs[0].status, report::PairStatus::Refused);
  bool calibration_named = false;
  for (const auto& d : refused.pairs[0].blocking) calibration_named |= d.key.starts_with("calibration.");
  EXPECT_TRUE(calibration_named);
  EXPECT_EQ(refused.exit_code(), 3);
}

}  // namespace
}  // namespace qb::plan
