// Every command takes a Hugging Face directory: inspect, generate, quantize (then generate on its
// output), eval (the directory vs its quantized GGUF) and bench. Broken checkpoints give one error line and a non-zero exit.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "../cli_run.h"
#include "../formats/temp_dir.h"
#include "../test_paths.h"

namespace {

namespace fs = std::filesystem;
using qb::test::run_cli;

std::string tiny(const std::string& name) { return qb::test::source_path("data/models/tiny-hf/" + name); }

TEST(HfModelCli, InspectGenerateQuantizeBenchEval) {
  auto r = run_cli("inspect " + tiny("qwen2"));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Hugging Face safetensors (3 files)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("qwen2"), std::string::npos) << r.out;

  r = run_cli("generate " + tiny("llama-gqa") + " --prompt 'Once upon a time' --max-tokens 4 -t 2");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("Once upon a time", 0), 0u) << r.out;

  const std::string out = ::testing::TempDir() + "qb_hf_cli_q8";
  fs::remove(out + ".gguf");
  r = run_cli("quantize " + tiny("qwen3") + " --scheme q8_0 -q -t 2 -o " + out + ".gguf");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(fs::exists(out + ".gguf"));
  r = run_cli("generate " + out + ".gguf --prompt 'Once upon a time' --max-tokens 4 -t 2");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("Once upon a time", 0), 0u) << r.out;
  // eval: the directory as baseline, its quantized GGUF as candidate (one shared tokenizer).
  const std::string json = out + ".json";
  r = run_cli("eval --baseline " + tiny("qwen3") + " --candidate " + out + ".gguf --regimes perplexity --ctx 64 -t 2 "
              "--data-dir " + qb::test::source_path("data/eval") + " --json " + json);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::ifstream j(json);
  const std::string text((std::istreambuf_iterator<char>(j)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("\"baseline.source_file\""), std::string::npos);
  fs::remove(json);
  fs::remove(out + ".gguf");

  r = run_cli("bench " + tiny("gemma3") + " --batch 1 --prompt-len 8 --gen-len 4 --reps 1 --warmup 0 "
              "--bandwidth-mib 8 -t 1 --no-progress");
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST(HfModelCli, BrokenDirectoriesFailWithOneLine) {
  qb::test::TempDir tmp;
  struct Case { std::string name, file, from, to, expect; };
  for (const Case& c : {Case{"missing_field", "config.json", "\"num_hidden_layers\"", "\"n_layers\"", "num_hidden_layers"},
                        Case{"bad_shape", "config.json", "\"hidden_size\": 32", "\"hidden_size\": 40", "shape"},
                        Case{"truncated", "model.safetensors", "", "", "model.safetensors"}}) {
    SCOPED_TRACE(c.name);
    const std::string dir = tmp.file(c.name);
    fs::copy(tiny("llama-gqa"), dir, fs::copy_options::recursive);
    const std::string p = dir + "/" + c.file;
    if (c.from.empty()) {
      fs::resize_file(p, fs::file_size(p) / 2);
    } else {
      auto b = qb::test::read_bytes(p);
      std::string s(b.begin(), b.end());
      const auto at = s.find(c.from);
      ASSERT_NE(at, std::string::npos);
      s.replace(at, c.from.size(), c.to);
      std::ofstream(p, std::ios::binary | std::ios::trunc) << s;
    }
    for (const char* cmd : {"inspect ", "generate "}) {
      const auto r = run_cli(cmd + dir);
      EXPECT_NE(r.exit_code, 0) << cmd;
      EXPECT_EQ(qb::test::count_lines(r.err), 1) << r.err;
      EXPECT_NE(r.err.find(c.expect), std::string::npos) << r.err;
    }
  }
}

}  // namespace
