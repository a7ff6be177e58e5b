// End-to-end test of eval/run_eval (what `quantbench eval` runs): every regime on tiny limits, the
// JSON document's shape (per regime: metrics with intervals, items, misses line, a complete
// Manifest), and the atomic write leaving nothing behind when the run fails.
#include "quantbench/eval/run_eval.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "eval_fixtures.h"
#include "quantbench/core/error.h"

namespace qb::eval {
namespace {

// The default data directory does not depend on where the command runs: from a directory outside the
// checkout it is found through the binary's own checkout; QB_DATA_DIR overrides it.
TEST(DefaultDataDir, FoundFromAnotherWorkingDirectoryAndOverriddenByTheEnvironment) {
  namespace fs = std::filesystem;
  const fs::path here = fs::current_path();
  const fs::path elsewhere = fs::temp_directory_path();
  fs::current_path(elsewhere);
  const std::string dir = default_data_dir();
  fs::current_path(here);
  EXPECT_TRUE(fs::path(dir).is_absolute()) << dir;
  EXPECT_TRUE(fs::exists(fs::path(dir) / "mmlu")) << dir;
  ::setenv("QB_DATA_DIR", "/some/data", 1);
  EXPECT_EQ(default_data_dir(), "/some/data");
  ::unsetenv("QB_DATA_DIR");
}

TEST(RunEval, AllRegimesProduceCompleteResults) {
  const auto q8 = test::make_quantized_stories(formats::GgmlType::Q8_0);
  const auto wl = (std::filesystem::temp_directory_path() / "qb_run_eval_workload.jsonl").string();
  {
    std::ofstream f(wl);
    f << "{\"prompt\": \"Once upon a time\", \"reference\": \"there was a girl\"}\n{\"prompt\": \"The dog\"}\n";
  }
  EvalRequest q;
  q.baseline = test::stories260k_path();
  q.candidate = q8;
  q.regimes = {"perplexity", "multiple_choice", "generation", "workload"};
  q.tasks = {"arc_easy", "winogrande"};
  q.data_dir = test::source_path("data/eval");
  q.text = test::tiny_eval_text_path();
  q.workload = wl;
  q.n_ctx = 128;
  q.limit = 4;
  q.max_tokens = 16;
  q.threads = 1;
  q.resamples = 50;
  q.progress = false;
  const auto j = run_evaluation(q);
  EXPECT_EQ(j["schema"], "quantbench.eval/1");
  for (const auto* reg : {"perplexity", "multiple_choice", "generation", "workload"}) {
    ASSERT_TRUE(j["regimes"].contains(reg)) << reg;
    for (const auto& r : j["regimes"][reg]) {
      EXPECT_FALSE(r["misses"].get<std::string>().empty()) << reg;
      EXPECT_FALSE(r["metrics"].empty()) << reg;
      EXPECT_FALSE(r["items"].empty()) << reg;
      EXPECT_TRUE(r["manifest"].contains("model.sha256")) << r["manifest"].dump();
      EXPECT_TRUE(r["manifest"].contains("baseline.sha256"));
      EXPECT_TRUE(r["manifest"].contains("harness.batch_size"));
      // what ran, from the backends themselves (runtime::Backend::describe_kv_cache / _activations)
      EXPECT_NE(r["manifest"]["scheme.kv_cache"].dump().find("candidate: K and V: f32"), std::string::npos);
      // (the candidate's Q8_0 matrices take 8-bit activation blocks on the fast kernels, as llama.cpp's do)
      EXPECT_NE(r["manifest"]["scheme.activations"].dump().find("candidate: 8-bit blocks"), std::string::npos);
      EXPECT_NE(r["manifest"]["scheme.activations"].dump().find("baseline: f32 into every matmul"), std::string::npos);
    }
  }
  EXPECT_EQ(j["regimes"]["multiple_choice"].size(), 2u);
  EXPECT_EQ(j["regimes"]["generation"][0]["task"], "mtbench_first_turn");
  EXPECT_TRUE(j["regimes"]["generation"][0]["extras"].contains("compounding_curve"));
  // the perplexity Result names its convention and K
  EXPECT_NE(j["regimes"]["perplexity"][0]["manifest"].dump().find("llama.cpp"), std::string::npos);

  const auto out = (std::filesystem::temp_directory_path() / "qb_run_eval_out.json").string();
  std::filesystem::remove(out);
  write_eval_json(out, j);
  std::ifstream in(out);
  EXPECT_EQ(nlohmann::json::parse(in), j);

  // --prompts: the user's prompts, named by their file as a plan names them (not MT-Bench)
  q.regimes = {"generation"};
  q.prompts = wl;
  const auto p = run_evaluation(q);
  EXPECT_EQ(p["regimes"]["generation"][0]["task"], "generation:qb_run_eval_workload.jsonl");
  EXPECT_EQ(p["regimes"]["generation"][0]["items"].size(), 2u);
}

TEST(RunEval, ErrorsAreClearAndWriteNothing) {
  EvalRequest q;
  q.baseline = test::stories260k_path();
  q.candidate = test::source_path("data/vocab/ggml-vocab-llama-spm.gguf.gz");  // not a model file
  q.progress = false;
  EXPECT_THROW(run_evaluation(q), Error);
  q.candidate = test::stories260k_path();
  q.regimes = {"vibes"};
  try {
    run_evaluation(q);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("vibes"), std::string::npos);
  }
  q.regimes = {"workload"};  // no --workload
  EXPECT_THROW(run_evaluation(q), Error);
}

}  // namespace
}  // namespace qb::eval
