// End-to-end checks of `quantbench bench`: a tiny run writes a JSON Result with every manifest field
// and per-batch items, the table reaches stdout, and bad arguments give one error line and a non-zero
// exit.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "../cli_run.h"
#include "../test_paths.h"
#include "quantbench/core/manifest.h"

namespace {

using qb::test::CliRun;
using qb::test::count_lines;
using qb::test::run_cli;


const std::string kTiny = " --prompt-len 4 --gen-len 3 --reps 2 --warmup 1 --threads 2 --bandwidth-mib 4 --no-progress";

TEST(BenchCli, TinyRunWritesACompleteJsonResult) {
  const std::string out = ::testing::TempDir() + "bench_result.json";
  std::remove(out.c_str());
  const CliRun r = run_cli("bench " + qb::test::stories260k_path() + " --batch 1,2" + kTiny + " --json " + out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("TPOT p99"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("roofline"), std::string::npos) << r.out;

  std::ifstream f(out);
  ASSERT_TRUE(f.good());
  const auto j = nlohmann::json::parse(f);
  EXPECT_EQ(j.at("regime"), "bench");
  const auto m = qb::Manifest::from_json(j.at("manifest"));
  EXPECT_TRUE(m.missing("").empty());
  EXPECT_EQ(m.find("model.sha256")->value.size(), 64u);
  EXPECT_EQ(m.find("harness.batch_size")->value, "1,2");
  ASSERT_EQ(j.at("items").size(), 2u);
  for (const auto& it : j.at("items")) {
    for (const char* k : {"batch", "prefill_tok_s", "decode_tok_s", "ttft_s", "tpot_s", "bytes_per_step",
                          "achieved_gbps", "roofline_share", "peak_memory_kib"})
      EXPECT_TRUE(it.contains(k)) << k;
    EXPECT_LE(it["tpot_s"]["p50"].get<double>(), it["tpot_s"]["p90"].get<double>());
    EXPECT_LE(it["tpot_s"]["p90"].get<double>(), it["tpot_s"]["p99"].get<double>());
    EXPECT_LE(it["decode_tok_s"]["min"].get<double>(), it["decode_tok_s"]["max"].get<double>());
    EXPECT_GT(it["peak_memory_kib"]["vm_hwm"].get<int64_t>(), 0);
  }
}

TEST(BenchCli, BadArgumentsGiveOneLineAndNonZeroExit) {
  const std::string common = " --threads 2 --bandwidth-mib 4 --no-progress --warmup 0";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {" --batch 0 --prompt-len 4 --gen-len 2 --reps 1", "--batch"},
      {" --batch 1 --prompt-len 4000 --gen-len 2 --reps 1", "context"},  // stories260K's context is 2048
      {" --batch 1 --prompt-len 4 --gen-len 2 --reps 0", "--reps"}};
  for (const auto& [args, needle] : cases) {
    const CliRun r = run_cli("bench " + qb::test::stories260k_path() + common + args);
    EXPECT_NE(r.exit_code, 0) << args;
    EXPECT_EQ(count_lines(r.err), 1) << args << ": " << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << args << ": " << r.err;
  }
}

}  // namespace
