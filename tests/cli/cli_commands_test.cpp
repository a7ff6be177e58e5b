// End-to-end checks of the CLI binary: the README's main command prints the recorded stories260K
// text, inspect reports what the file stores, and bad arguments give one error line and a non-zero
// exit.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../cli_run.h"
#include "../test_paths.h"

namespace {

using qb::test::CliRun;
using qb::test::count_lines;
using qb::test::run_cli;


TEST(Cli, GenerateStories260KPrintsTheRecordedText) {
  // The text recorded for this model (shared/models/SOURCES.md): greedy, from BOS, 60 new tokens.
  const std::string expected =
      "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she "
      "saw a big, red ball. She wanted to play with it, but it was too high\n";
  const CliRun r = run_cli("generate " + qb::test::stories260k_path() + " --max-tokens 60 --threads 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, expected);
  EXPECT_NE(r.err.find("decode 59 tokens"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("tok/s"), std::string::npos) << r.err;
}

// eval says on stderr when the default fast kernels quantized a quantized matrix's input (8-bit blocks, as
// llama.cpp's do), and not on the exact --reference path.
TEST(Cli, EvalNotesTheFastKernelsActivationBlocks) {
  const std::string dir = ::testing::TempDir(), w8 = dir + "qb_cli_stories_w8.gguf";
  const CliRun q = run_cli("quantize " + qb::test::stories260k_path() + " --scheme w8 -q -o " + w8);
  ASSERT_EQ(q.exit_code, 0) << q.err;
  const std::string args = "eval --baseline " + qb::test::stories260k_path() + " --candidate " + w8 +
                           " --regimes perplexity --limit 2 --quiet --threads 2 --text " +
                           qb::test::source_path("data/eval/tinystories/tiny_eval_slice.txt") + " --json " + dir +
                           "qb_cli_eval.json";
  const CliRun fast = run_cli(args), exact = run_cli(args + " --reference");
  ASSERT_EQ(fast.exit_code, 0) << fast.err;
  ASSERT_EQ(exact.exit_code, 0) << exact.err;
  EXPECT_NE(fast.err.find("eval: note: the CPU's fast kernels quantized"), std::string::npos) << fast.err;
  EXPECT_EQ(exact.err.find("eval: note:"), std::string::npos) << exact.err;
}

TEST(Cli, InspectReportsStoredParameters) {
  const CliRun r = run_cli("inspect --json " + qb::test::stories260k_path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["parameters"], 292800);
  EXPECT_EQ(j["architecture"], "llama");
  EXPECT_EQ(j["tensors"].size(), 48u);
  EXPECT_DOUBLE_EQ(j["bits_per_weight"].get<double>(), 32.0);
  EXPECT_EQ(j["tokenizer"]["n_vocab"], 512);
}

TEST(Cli, BadArgumentsGiveOneLineAndNonZeroExit) {
  for (const std::string& args : std::vector<std::string>{"generate /nonexistent.gguf", "inspect /nonexistent.gguf",
                                 "generate " + qb::test::stories260k_path() + " --max-tokens 0",
                                 "generate " + qb::test::stories260k_path() + " --top-p 2"}) {
    const CliRun r = run_cli(args);
    EXPECT_NE(r.exit_code, 0) << args;
    EXPECT_EQ(count_lines(r.err), 1) << args << ": " << r.err;
    EXPECT_TRUE(r.out.empty()) << args;
  }
  EXPECT_NE(run_cli("frobnicate").exit_code, 0);
}

}  // namespace

namespace {

// --chat renders the model's own template: for SmolLM2 that is ChatML with its default system turn,
// 37 tokens for this question (the count Jinja2 + llama.cpp's tokenizer give for the GGUF's template).
TEST(Cli, GenerateChatUsesTheModelsTemplate) {
  const std::string smol = qb::test::source_path(".models/smollm2-135m-instruct-q4_1/SmolLM2-135M-Instruct.Q4_1.gguf");
  const CliRun r = run_cli("generate " + smol + " --chat --prompt 'What is the capital of France?' --max-tokens 2 -t 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("chat template chatml"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("prefill 37 tokens"), std::string::npos) << r.err;
  // A model without a template: one clear line, non-zero exit.
  const CliRun bad = run_cli("generate " + qb::test::stories260k_path() + " --chat --prompt hi");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_EQ(count_lines(bad.err), 1) << bad.err;
  EXPECT_NE(bad.err.find("chat_template"), std::string::npos) << bad.err;
}

}  // namespace
