// The report subcommands end to end through the binary: runs list/show, compare's exit status
// (0 ranked, 3 refused) and report writing report.md + report.html.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>

#include "demo_run.h"

namespace qb::report {
namespace {

struct CliOutput {
  int code = -1;
  std::string out;
};

CliOutput cli(const std::string& args) {
  CliOutput r;
  const std::string cmd = std::string(QB_BINARY_DIR) + "/quantbench " + args + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int st = ::pclose(p);
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
  return r;
}

void one_result_run(const std::string& dir, const Manifest& m) {
  RunStore s = RunStore::create(dir, "plan");
  s.finish_result(s.begin_result("perplexity_kld", "wiki", "cand", m), {test::metric("kld_mean", 0.1, Direction::LowerIsBetter, 0.01)});
  s.set_status("complete");
}

TEST(ReportCli, CompareExitsZeroWhenRankedAndThreeWhenRefused) {
  const std::string a = test::fresh_dir("cli_a"), b = test::fresh_dir("cli_b"), c = test::fresh_dir("cli_c");
  one_result_run(a, test::fake_manifest("q8_0", "8.5"));
  one_result_run(b, test::fake_manifest("q4_0", "4.5"));
  Manifest other = test::fake_manifest("q4_0", "4.5");
  other.set("harness.task_version", "2");
  one_result_run(c, other);
  const CliOutput ranked = cli("compare " + a + " " + b);
  EXPECT_EQ(ranked.code, 0) << ranked.out;
  EXPECT_NE(ranked.out.find("comparable"), std::string::npos) << ranked.out;
  const CliOutput refused = cli("compare " + a + " " + c);
  EXPECT_EQ(refused.code, 3) << refused.out;
  EXPECT_NE(refused.out.find("harness.task_version: A = 1 | B = 2"), std::string::npos) << refused.out;
  const CliOutput bad = cli("compare " + a + " /nonexistent-run");
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.out.find("/nonexistent-run"), std::string::npos) << bad.out;
}

TEST(ReportCli, RunsListShowAndReport) {
  const std::string dir = test::fresh_dir("cli_demo");
  test::make_demo_run(dir);
  const CliOutput list = cli("runs list " + dir);
  EXPECT_EQ(list.code, 0) << list.out;
  EXPECT_NE(list.out.find("complete"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("7 results"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("none,q4_0,q8_0"), std::string::npos) << list.out;
  const CliOutput show = cli("runs show " + dir);
  EXPECT_EQ(show.code, 0) << show.out;
  EXPECT_NE(show.out.find("[0.702, 0.898] 95% analytic (normal, stderr)"), std::string::npos) << show.out;
  EXPECT_NE(show.out.find("hardware.gpu"), std::string::npos);
  const std::string out = dir + "/out";
  const CliOutput rep = cli("report " + dir + " --out " + out);
  EXPECT_EQ(rep.code, 0) << rep.out;
  EXPECT_TRUE(std::filesystem::exists(out + "/report.md"));
  EXPECT_GT(std::filesystem::file_size(out + "/report.html"), 100000u);  // Chart.js is inlined
}

}  // namespace
}  // namespace qb::report
