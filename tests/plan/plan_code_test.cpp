// The code regime and scored generation tasks in plans: validation names the line of every bad key,
// type or task; a tiny plan on stories260K runs HumanEval / MBPP in the sandbox and MGSM, stores the
// same numbers `quantbench eval` computes, renders the report, resumes by skipping finished steps, and
// `runs show --json` exports exactly what the store holds.
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "../cli_run.h"
#include "../formats/temp_dir.h"
#include "../test_paths.h"
#include "quiet_run_options.h"
#include "quantbench/core/error.h"
#include "quantbench/eval/run_eval.h"
#include "quantbench/plan/plan.h"
#include "quantbench/plan/run_export.h"
#include "quantbench/plan/run_plan.h"
#include "quantbench/report/store.h"

namespace qb::plan {
namespace {

namespace fs = std::filesystem;

const std::string kData = qb::test::source_path("data/eval");

// Lines 1-5 are fixed (no regime); the regimes given start at line 6.
std::string plan_text(const std::string& regimes) {
  return "name = \"t\"\n"
         "[baseline]\n"
         "model = \"" + qb::test::stories260k_path() + "\"\n"
         "[[candidate]]\n"
         "scheme = \"q8_0\"\n" + regimes;
}

std::string error_of(const std::string& text) {
  try {
    parse_plan(text, "/tmp/p/plan.toml");
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(PlanCode, CodeAndGenerationTasksParseWithDefaults) {
  const auto p = parse_plan(plan_text("[regimes.code]\ndata_dir = \"" + kData + "\"\n"
                                      "[regimes.generation]\ndata_dir = \"" + kData + "\"\ntasks = [\"gsm8k\", \"mgsm_direct_de\"]\nmax_tokens = 64\n"),
                            "/tmp/p/plan.toml");
  ASSERT_EQ(p.regimes.size(), 2u);
  const RegimePlan& code = p.regimes[0];
  EXPECT_EQ(code.name, "code");
  EXPECT_EQ(code.tasks, (std::vector<std::string>{"humaneval", "mbpp"}));
  EXPECT_EQ(code.max_tokens, 0);  // lm-eval's per-task budget
  EXPECT_EQ(code.ctx, 0);         // the model's context
  const RegimePlan& gen = p.regimes[1];
  EXPECT_EQ(gen.tasks, (std::vector<std::string>{"gsm8k", "mgsm_direct_de"}));
  EXPECT_EQ(gen.max_tokens, 64);
  EXPECT_FALSE(gen.runs_prompts());  // the tasks replace MT-Bench

  const auto q = parse_plan(plan_text("[regimes.code]\ndata_dir = \"" + kData + "\"\ntasks = [\"mbpp\"]\nmax_tokens = 32\nctx = 256\nlimit = 2\n"),
                            "/tmp/p/plan.toml");
  EXPECT_EQ(q.regimes[0].tasks, (std::vector<std::string>{"mbpp"}));
  EXPECT_EQ(q.regimes[0].max_tokens, 32);
  EXPECT_EQ(q.regimes[0].ctx, 256);
  EXPECT_EQ(q.regimes[0].limit, 2);
  EXPECT_TRUE(parse_plan(plan_text("[regimes.generation]\ndata_dir = \"" + kData + "\"\n"), "/tmp/p/plan.toml").regimes[0].runs_prompts());
}

TEST(PlanCode, BadCodeAndGenerationKeysNameTheLine) {
  const std::string dd = "data_dir = \"" + kData + "\"\n";  // line 7
  auto has = [](const std::string& e, const std::string& want) { return e.find(want) != std::string::npos; };
  std::string e = error_of(plan_text("[regimes.code]\n" + dd + "tasks = [\"humaneva\"]\n"));
  EXPECT_TRUE(has(e, "plan.toml:8: [regimes.code]: unknown code task 'humaneva' (known: humaneval, mbpp)")) << e;
  e = error_of(plan_text("[regimes.code]\n" + dd + "tasks = \"mbpp\"\n"));
  EXPECT_TRUE(has(e, "plan.toml:8: [regimes.code].tasks must be an array of strings")) << e;
  e = error_of(plan_text("[regimes.code]\n" + dd + "tasks = [\"mbpp\", \"mbpp\"]\n"));
  EXPECT_TRUE(has(e, "plan.toml:8: [regimes.code]: task 'mbpp' is listed twice")) << e;
  e = error_of(plan_text("[regimes.code]\n" + dd + "tasks = []\n"));
  EXPECT_TRUE(has(e, "plan.toml:8:")) << e;
  e = error_of(plan_text("[regimes.code]\n" + dd + "max_tokens = \"many\"\n"));
  EXPECT_TRUE(has(e, "plan.toml:8: [regimes.code].max_tokens must be an integer")) << e;
  e = error_of(plan_text("[regimes.code]\n" + dd + "ctx = -1\n"));
  EXPECT_TRUE(has(e, "plan.toml:8: [regimes.code].ctx = -1 is out of range")) << e;
  e = error_of(plan_text("[regimes.code]\n" + dd + "batch = 2\n"));  // code runs one prompt at a time
  EXPECT_TRUE(has(e, "plan.toml:8: unknown key 'batch' in [regimes.code]")) << e;
  e = error_of(plan_text("[regimes.code]\n" + dd + "prompts = \"x.jsonl\"\n"));
  EXPECT_TRUE(has(e, "plan.toml:8: unknown key 'prompts' in [regimes.code]")) << e;
  e = error_of(plan_text("[regimes.generation]\n" + dd + "tasks = [\"gsm9k\"]\n"));
  EXPECT_TRUE(has(e, "plan.toml:8: [regimes.generation]: unknown generation task 'gsm9k' (known: gsm8k")) << e;
  e = error_of(plan_text("[regimes.generation]\n" + dd + "tasks = [\"hellaswag\"]\n"));  // a multiple-choice task
  EXPECT_TRUE(has(e, "plan.toml:8: [regimes.generation]: unknown generation task 'hellaswag'")) << e;
  e = error_of(plan_text("[regimes.generation]\n" + dd + "tasks = [1]\n"));
  EXPECT_TRUE(has(e, "plan.toml:8: [regimes.generation].tasks must be an array of non-empty strings")) << e;
}

TEST(PlanCode, MissingTaskFilesNameTheLineAndPath) {
  const test::TempDir tmp;
  const std::string dir = tmp.path();
  fs::create_directories(dir + "/humaneval");
  fs::copy_file(kData + "/humaneval/HumanEval.jsonl", dir + "/humaneval/HumanEval.jsonl");
  const std::string dd = "data_dir = \"" + dir + "\"\n";
  EXPECT_NO_THROW(parse_plan(plan_text("[regimes.code]\n" + dd + "tasks = [\"humaneval\"]\n"), "/tmp/p/plan.toml"));
  std::string e = error_of(plan_text("[regimes.code]\n" + dd));  // both tasks by default: mbpp is missing
  EXPECT_NE(e.find("plan.toml:6: [regimes.code] task mbpp: file '" + dir + "/mbpp/mbpp.jsonl' not found"), std::string::npos) << e;
  e = error_of(plan_text("[regimes.generation]\n" + dd + "tasks = [\"mgsm_direct_en\"]\n"));
  EXPECT_NE(e.find("plan.toml:8: [regimes.generation] task mgsm_direct_en: file '" + dir + "/mgsm/mgsm_en.tsv' not found"),
            std::string::npos) << e;
  e = error_of(plan_text("[regimes.code]\ndata_dir = \"/no/such/dir\"\n"));
  EXPECT_NE(e.find("plan.toml:7: [regimes.code].data_dir: directory '/no/such/dir' not found"), std::string::npos) << e;
}

TEST(PlanCode, TaskDirectoriesInTheRegistryAreCheckedAsDirectories) {
  // MMLU's registry entry names directories ("mmlu/test/"): a plan using it must validate.
  const auto p = parse_plan(plan_text("[regimes.multiple_choice]\ndata_dir = \"" + kData + "\"\ntasks = [\"mmlu\"]\n"),
                            "/tmp/p/plan.toml");
  EXPECT_EQ(p.regimes[0].tasks, (std::vector<std::string>{"mmlu"}));
  const test::TempDir tmp;
  const std::string e = error_of(plan_text("[regimes.multiple_choice]\ndata_dir = \"" + tmp.path() + "\"\ntasks = [\"mmlu\"]\n"));
  EXPECT_NE(e.find("plan.toml:8: [regimes.multiple_choice] task mmlu: directory '" + tmp.path() + "/mmlu/test/' not found"),
            std::string::npos) << e;
}

using test::quiet_options;

TEST(PlanCode, TinyCodeAndMgsmPlanRunsStoresEvalNumbersAndExportsJson) {
  const test::TempDir tmp;
  const std::string dir = tmp.path();
  const std::string plan = test::write_text(
      dir + "/plan.toml",
      plan_text("[regimes.code]\ndata_dir = \"" + kData + "\"\nlimit = 2\nmax_tokens = 12\nctx = 256\n"
                "[regimes.generation]\ndata_dir = \"" + kData + "\"\ntasks = [\"mgsm_direct_en\"]\nlimit = 2\nmax_tokens = 8\n"));
  const std::string run = dir + "/run";
  const auto s = run_plan(load_plan(plan), quiet_options(run));
  EXPECT_EQ(s.steps_run, 3u);  // humaneval, mbpp, mgsm_direct_en
  std::map<std::string, report::StoredResult> res;
  for (auto& r : report::RunStore::open(run).load_results()) res.emplace(r.result.regime() + "/" + r.result.task(), std::move(r));
  ASSERT_EQ(res.size(), 3u);
  for (const char* k : {"code/humaneval", "code/mbpp", "generation/mgsm_direct_en"}) {
    ASSERT_TRUE(res.count(k)) << k;
    const auto& r = res.at(k);
    EXPECT_TRUE(r.finished) << k;
    EXPECT_EQ(r.candidate, "q8_0");
    EXPECT_EQ(r.result.items().size(), 2u) << k;
    EXPECT_EQ(r.result.manifest().value_or("scheme.name", ""), "q8_0") << k;
    EXPECT_FALSE(r.result.misses().empty()) << k;
  }
  // The item keys are the tasks' own ids.
  EXPECT_EQ(res.at("code/humaneval").result.items()[0].value("key", ""), "HumanEval/0");

  // The same numbers as `quantbench eval --regimes code` with the same settings.
  eval::EvalRequest q;
  q.baseline = qb::test::stories260k_path();
  q.candidate = run + "/artifacts/q8_0.gguf";
  q.regimes = {"code"};
  q.tasks = {"mbpp"};
  q.data_dir = kData;
  q.limit = 2;
  q.code_max_tokens = 12;
  q.code_ctx = 256;
  q.progress = false;
  const auto j = eval::run_evaluation(q)["regimes"]["code"][0];
  size_t compared = 0;
  for (const auto& jm : j["metrics"]) {
    const Metric* sm = res.at("code/mbpp").result.find_metric(jm["name"].get<std::string>());
    ASSERT_NE(sm, nullptr) << jm["name"];
    if (jm["value"].is_number()) EXPECT_EQ(sm->value, jm["value"].get<double>()) << jm["name"];
    ++compared;
  }
  EXPECT_GT(compared, 3u);
  for (size_t i = 0; i < 2; ++i)
    EXPECT_EQ(res.at("code/mbpp").result.items()[i]["candidate"]["completion"], j["items"][i]["candidate"]["completion"]);

  // The report renders and names the tasks.
  std::ifstream md(s.report_md);
  const std::string text((std::istreambuf_iterator<char>(md)), std::istreambuf_iterator<char>());
  for (const char* t : {"humaneval", "mbpp", "mgsm\\_direct\\_en"}) EXPECT_NE(text.find(t), std::string::npos) << t;
  EXPECT_TRUE(fs::exists(s.report_html));

  // Again: every step is done and skipped.
  const auto again = run_plan(load_plan(plan), quiet_options(run));
  EXPECT_EQ(again.steps_run, 0u);
  EXPECT_EQ(again.steps_skipped, 3u);

  // runs show --json: one document holding what the store holds.
  const std::string out = dir + "/run.json";
  const auto cli = qb::test::run_cli("runs show " + run + " --json " + out);
  ASSERT_EQ(cli.exit_code, 0) << cli.err;
  std::ifstream jf(out);
  const nlohmann::json doc = nlohmann::json::parse(jf);
  EXPECT_EQ(doc["schema"], kRunJsonSchema);
  EXPECT_EQ(doc["run"]["status"], "complete");
  EXPECT_EQ(doc["run"]["plan_text"], load_plan(plan).text);
  ASSERT_EQ(doc["results"].size(), 3u);
  for (const auto& jr : doc["results"]) {
    const auto& sr = res.at(jr["regime"].get<std::string>() + "/" + jr["task"].get<std::string>());
    EXPECT_EQ(jr["id"], sr.id);
    EXPECT_EQ(jr["candidate"], "q8_0");
    EXPECT_EQ(jr["finished"], true);
    EXPECT_EQ(jr["misses"], sr.result.misses());
    EXPECT_EQ(jr["items"], nlohmann::json(sr.result.items()));
    EXPECT_EQ(Manifest::from_json(jr["manifest"]).to_json(), sr.result.manifest().to_json());
    ASSERT_EQ(jr["metrics"].size(), sr.result.metrics().size());
    for (size_t i = 0; i < sr.result.metrics().size(); ++i) {
      const Metric& m = sr.result.metrics()[i];
      EXPECT_EQ(jr["metrics"][i]["name"], m.name);
      if (std::isfinite(m.value)) EXPECT_EQ(jr["metrics"][i]["value"].get<double>(), m.value) << m.name;
      if (m.interval) EXPECT_EQ(jr["metrics"][i]["interval"]["lo"].get<double>(), m.interval->lo) << m.name;
    }
  }
  EXPECT_EQ(run_to_json(report::RunStore::open(run)), doc);
  // A directory that is not a run: an error, and no file.
  const auto bad = qb::test::run_cli("runs show " + dir + " --json " + dir + "/bad.json");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_FALSE(fs::exists(dir + "/bad.json"));
}

}  // namespace
}  // namespace qb::plan
