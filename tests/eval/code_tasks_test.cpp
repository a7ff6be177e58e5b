// Code tasks: our prompts, test programs and stop-sequence truncation against goldens rendered by
// lm-evaluation-harness 0.4.13's own task files (tests/golden/code_eval/make_prompts.py), plus the
// loaders' errors on malformed rows.
#include "quantbench/eval/code_tasks.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "../test_paths.h"
#include "quantbench/core/error.h"
#include "quantbench/eval/code.h"

namespace qb::eval {
namespace {

nlohmann::json golden() {
  std::ifstream in(test::source_path("tests/golden/code_eval/prompts.json"));
  return nlohmann::json::parse(in);
}

void check_task(const std::string& name) {
  const auto g = golden()[name];
  const auto task = load_code_task(name, test::source_path("data/eval"), 3);
  ASSERT_EQ(task.items.size(), g["items"].size());
  EXPECT_EQ(task.stops, g["until"].get<std::vector<std::string>>());
  EXPECT_EQ(task.max_gen_toks, g["max_gen_toks"].get<int64_t>());
  EXPECT_TRUE(task.is_slice);
  for (size_t i = 0; i < task.items.size(); ++i) {
    const auto& it = task.items[i];
    const auto& gi = g["items"][i];
    EXPECT_EQ(it.id, gi["task_id"].get<std::string>());
    EXPECT_EQ(it.prompt, gi["prompt"].get<std::string>()) << it.id;
    EXPECT_EQ(code_program(it, it.canonical), gi["canonical_program"].get<std::string>()) << it.id;
  }
}

TEST(CodeTasks, HumanEvalPromptAndProgramAsLmEval) { check_task("humaneval"); }
TEST(CodeTasks, MbppThreeShotPromptAndProgramAsLmEval) { check_task("mbpp"); }

TEST(CodeTasks, TruncationAtStopsAsLmEval) {
  const auto g = golden()["truncation"];
  ASSERT_GE(g.size(), 10u);
  for (const auto& c : g) {
    const auto text = c["text"].get<std::string>();
    EXPECT_EQ(cut_at_stops(text, c["until"].get<std::vector<std::string>>()), c["expected"].get<std::string>())
        << nlohmann::json(text).dump();
  }
  EXPECT_EQ(first_stop("abc", {"", "c"}), 2u);  // an empty stop never matches
  EXPECT_EQ(first_stop("abc", {}), std::string::npos);
}

TEST(CodeTasks, LimitAndRegistry) {
  EXPECT_TRUE(is_code_task("humaneval"));
  EXPECT_TRUE(is_code_task("mbpp"));
  EXPECT_FALSE(is_code_task("hellaswag"));
  EXPECT_EQ(load_code_task("mbpp", test::source_path("data/eval"), 0).items.size(), 30u);
  EXPECT_EQ(load_code_task("humaneval", test::source_path("data/eval"), 5).items.size(), 5u);
  EXPECT_THROW(load_code_task("apps", test::source_path("data/eval")), Error);
}

TEST(CodeTasks, MalformedRowsNameFileAndLine) {
  const auto dir = std::filesystem::temp_directory_path() / "qb_code_tasks_bad";
  std::filesystem::create_directories(dir / "humaneval");
  std::filesystem::create_directories(dir / "mbpp");
  {
    std::ofstream f(dir / "humaneval" / "HumanEval.jsonl");
    f << R"({"task_id": "HumanEval/0", "prompt": "def f():\n", "entry_point": "f", "canonical_solution": "  return 1\n", "test": "def check(c): pass"})" "\n";
    f << R"({"task_id": "HumanEval/1", "prompt": 3})" "\n";
  }
  try {
    load_code_task("humaneval", dir.string());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("HumanEval.jsonl:2: field 'prompt'"), std::string::npos) << e.what();
  }
  {
    std::ofstream f(dir / "mbpp" / "mbpp.jsonl");
    f << R"({"task_id": 11, "text": "t", "code": "c", "test_list": ["assert 1"]})" "\n";
  }
  try {
    load_code_task("mbpp", dir.string());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("mbpp.jsonl"), std::string::npos) << e.what();
  }
  {
    std::ofstream f(dir / "mbpp" / "mbpp.jsonl");
    f << "{not json\n";
  }
  EXPECT_THROW(load_code_task("mbpp", dir.string()), Error);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace qb::eval
