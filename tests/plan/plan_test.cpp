// Plan validation: every error names the plan file and the line to fix, and nothing is created.
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "../cli_run.h"
#include "../formats/temp_dir.h"
#include "../test_paths.h"
#include "quantbench/core/error.h"
#include "quantbench/plan/plan.h"

namespace qb::plan {
namespace {

namespace fs = std::filesystem;

// A valid plan; `extra` is appended, `candidate` replaces the candidate block.
std::string plan_text(const std::string& extra = "", const std::string& candidate = "[[candidate]]\nscheme = \"q8_0\"\n") {
  return "name = \"t\"\n"
         "[baseline]\n"
         "model = \"" + qb::test::stories260k_path() + "\"\n" +
         candidate +
         "[regimes.perplexity]\n"
         "text = \"" + qb::test::source_path("data/eval/tinystories/tiny_eval_slice.txt") + "\"\n"
         "ctx = 64\n" + extra;
}

// The error message parse_plan throws for `text`.
std::string error_of(const std::string& text, const std::string& path = "/tmp/p/plan.toml") {
  try {
    parse_plan(text, path);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(PlanParse, ValidPlanParsesWithResolvedPathsAndDefaults) {
  const auto p = parse_plan(plan_text("limit = 3\n[bench]\nbatch_sizes = [1, 2]\n[tolerances]\nmax_kld_mean = 0.1\n"),
                            "/tmp/x/plan.toml");
  EXPECT_EQ(p.name, "t");
  ASSERT_EQ(p.candidates.size(), 1u);
  EXPECT_EQ(p.candidates[0].name, "q8_0");
  ASSERT_EQ(p.regimes.size(), 1u);
  EXPECT_EQ(p.regimes[0].ctx, 64);
  EXPECT_EQ(p.regimes[0].limit, 3);
  EXPECT_EQ(p.regimes[0].top_k, 32u);
  ASSERT_TRUE(p.bench);
  EXPECT_EQ(p.bench->batch_sizes, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(p.bench->reps, 3);
  ASSERT_EQ(p.tolerances.size(), 1u);
  EXPECT_EQ(p.tolerances[0].metric, "kld_mean");
  EXPECT_EQ(p.tolerances[0].op, "<=");
}

TEST(PlanParse, RelativePathsResolveAgainstThePlanDirectory) {
  const test::TempDir tmp;
  const std::string dir = tmp.path();
  fs::create_directories(dir + "/sub");
  test::write_text(dir + "/sub/prompts.jsonl", "{\"prompt\": \"Once\"}\n");
  const std::string text = plan_text("[regimes.generation]\nprompts = \"sub/prompts.jsonl\"\n");
  const auto p = parse_plan(text, dir + "/plan.toml");
  ASSERT_EQ(p.regimes.size(), 2u);
  EXPECT_EQ(p.regimes[1].prompts, fs::path(dir + "/sub/prompts.jsonl").lexically_normal().string());
  // The same plan elsewhere does not find the file, and says where it looked.
  const std::string e = error_of(text, "/nonexistent/plan.toml");
  EXPECT_NE(e.find("/nonexistent/plan.toml:"), std::string::npos) << e;
  EXPECT_NE(e.find("/nonexistent/sub/prompts.jsonl"), std::string::npos) << e;
}

TEST(PlanParse, TypoKeyNamesPlanAndLine) {
  // plan_text: lines 1-8 (candidate at 4-5, [regimes.perplexity] at 6-8); the extra text starts at line 9.
  const std::string text = plan_text("limt = 3\n");
  const std::string e = error_of(text);
  EXPECT_NE(e.find("/tmp/p/plan.toml:9: unknown key 'limt' in [regimes.perplexity]"), std::string::npos) << e;
  EXPECT_NE(e.find("limit"), std::string::npos) << e;  // lists the known keys
  const std::string top = error_of("nmae = \"x\"\n" + plan_text());
  EXPECT_NE(top.find("plan.toml:1: unknown key 'nmae'"), std::string::npos) << top;
}

TEST(PlanParse, UnknownSchemeNamesLineAndScheme) {
  const std::string e = error_of(plan_text("", "[[candidate]]\nscheme = \"w5g32\"\n"));
  EXPECT_NE(e.find("plan.toml:5:"), std::string::npos) << e;
  EXPECT_NE(e.find("w5g32"), std::string::npos) << e;
}

TEST(PlanParse, MissingFileNamesLineAndPath) {
  std::string text = plan_text();
  text.replace(text.find(qb::test::stories260k_path()), qb::test::stories260k_path().size(), "/no/such/model.gguf");
  const std::string e = error_of(text);
  EXPECT_NE(e.find("plan.toml:3:"), std::string::npos) << e;
  EXPECT_NE(e.find("/no/such/model.gguf"), std::string::npos) << e;
  EXPECT_NE(e.find("not found"), std::string::npos) << e;
}

TEST(PlanParse, BadValuesAndShapesAreRefusedWithTheirLine) {
  EXPECT_NE(error_of(plan_text("limit = -1\n")).find("plan.toml:9: [regimes.perplexity].limit = -1 is out of range"),
            std::string::npos);
  EXPECT_NE(error_of(plan_text("ctx = \"big\"\n")).find("plan.toml:9:"), std::string::npos);  // duplicate key: toml++ error
  EXPECT_NE(error_of(plan_text("[regimes.multiple_choice]\ntasks = [\"no_such_task\"]\n")).find("plan.toml:10:"),
            std::string::npos);
  EXPECT_NE(error_of(plan_text("[regimes.perplexty]\n")).find("plan.toml:9: unknown regime 'perplexty'"), std::string::npos);
  EXPECT_NE(error_of(plan_text("[bench]\nbatch_sizes = [0]\n")).find("plan.toml:10:"), std::string::npos);
  EXPECT_NE(error_of(plan_text("[tolerances]\nmax_kld_mean = \"small\"\n")).find("plan.toml:10:"), std::string::npos);
  EXPECT_NE(error_of(plan_text("", "[[candidate]]\nscheme = \"q8_0\"\nmodel = \"x.gguf\"\n")).find("plan.toml:4: "),
            std::string::npos);
  EXPECT_NE(error_of(plan_text("", "[[candidate]]\nscheme = \"q8_0\"\n[[candidate]]\nscheme = \"q8_0\"\n"))
                .find("used twice"),
            std::string::npos);
  EXPECT_NE(error_of("[baseline\n").find("plan.toml:1:"), std::string::npos);  // TOML syntax error
  EXPECT_NE(error_of(plan_text("", "")).find("at least one [[candidate]]"), std::string::npos);
}

TEST(PlanCli, InvalidPlanExitsNonZeroAndCreatesNothing) {
  const test::TempDir tmp;
  const std::string dir = tmp.path();
  const std::string plan = test::write_text(dir + "/plan.toml", plan_text("limt = 3\n"));
  const auto r = qb::test::run_cli("run " + plan + " --out " + dir + "/run");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find(plan + ":9: unknown key 'limt'"), std::string::npos) << r.err;
  EXPECT_EQ(qb::test::count_lines(r.err), 1) << r.err;
  EXPECT_FALSE(fs::exists(dir + "/run"));
  EXPECT_FALSE(fs::exists("runs/t"));
}

}  // namespace
}  // namespace qb::plan
