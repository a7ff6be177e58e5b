// The --kv option of generate, eval and bench: a bad value is one error line and a non-zero exit
// before any work; a good one runs and says which KV cache precision ran.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "../cli_run.h"
#include "../test_paths.h"

namespace {

using qb::test::CliRun;
using qb::test::count_lines;
using qb::test::run_cli;

TEST(KvCli, BadKvTypeIsOneLine) {
  const std::string m = qb::test::stories260k_path();
  for (const std::string& args :
       std::vector<std::string>{"generate " + m + " --kv int3", "bench " + m + " --kv int3 --json /dev/null",
                                "eval --baseline " + m + " --candidate " + m + " --kv int3 --json /tmp/qb_kv_never.json",
                                "eval --baseline " + m + " --candidate " + m + " --baseline-kv fp4 --json /tmp/qb_kv_never.json"}) {
    const CliRun r = run_cli(args);
    EXPECT_NE(r.exit_code, 0) << args;
    EXPECT_EQ(count_lines(r.err), 1) << args << ": " << r.err;
    EXPECT_NE(r.err.find("is not a KV cache type"), std::string::npos) << r.err;
    EXPECT_TRUE(r.out.empty()) << args;
  }
}

TEST(KvCli, GenerateReportsTheKvCacheThatRan) {
  const CliRun r = run_cli("generate " + qb::test::stories260k_path() + " --max-tokens 8 --threads 2 --kv int4");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("kv cache int4"), std::string::npos) << r.err;
}

}  // namespace
