// `quantbench quantize` through the binary: a good run writes OUT.gguf and reports bits per weight;
// a bad scheme, a method without calibration, too little calibration text, or an unwritable output
// give one error line, a non-zero exit and no output file.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <string>

#include "../cli_run.h"
#include "../test_paths.h"

namespace {

namespace fs = std::filesystem;

using Run = qb::test::CliRun;

Run quantize(const std::string& args) {
  return qb::test::run_cli("quantize " + qb::test::stories260k_path() + " -q -t 2 " + args);
}

int lines(const std::string& s) { return qb::test::count_lines(s); }

std::string out_path(const char* name) {
  const std::string p = ::testing::TempDir() + name + ".gguf";
  fs::remove(p);
  return p;
}

TEST(QuantizeCli, GptqWithCalibrationWritesGguf) {
  const std::string out = out_path("qb_cli_w4g32_gptq");
  const auto r = quantize("--scheme w4g32:gptq --calib " + qb::test::source_path("data/calib/tiny_stories_16k.txt") +
                          " --calib-samples 4 --calib-len 64 --seed 3 -o " + out);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("bits/weight"), std::string::npos) << r.out;
  EXPECT_TRUE(fs::exists(out));
  fs::remove(out);
}

TEST(QuantizeCli, ErrorsAreOneLineAndLeaveNoFile) {
  const std::string calib = qb::test::source_path("data/calib/tiny_stories_16k.txt");
  struct Case { std::string args; std::string expect; };
  for (const Case& c : {Case{"--scheme w5g32", "scheme 'w5g32'"},
                        Case{"--scheme w4g32:gptq", "needs calibration data"},
                        Case{"--scheme w4g32:gptq --calib " + calib + " --calib-samples 10000 --calib-len 64",
                             "too little calibration text"},
                        Case{"--scheme w4g32:no_such_method", "no_such_method"}}) {
    SCOPED_TRACE(c.args);
    const std::string out = out_path("qb_cli_bad");
    const auto r = quantize(c.args + " -o " + out);
    EXPECT_NE(r.exit_code, 0);
    EXPECT_EQ(lines(r.err), 1) << r.err;
    EXPECT_NE(r.err.find(c.expect), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(out));
  }
  const auto r = quantize("--scheme w8g32 -o /nonexistent_dir_qb/out.gguf");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_FALSE(fs::exists("/nonexistent_dir_qb/out.gguf"));
}

}  // namespace
