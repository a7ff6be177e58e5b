// bench/gpu/sanitizer_verdict.py judges a racecheck log of the GPU checks run over every kernel (sanitize.sh's
// w8a8race), where cuBLASLt's own GEMM kernels (nvjet_*) report hazards that are counted apart. Its verdicts are
// tested here on hand-made logs in the sanitizer's format (as session 36's logs had it): clean in our kernels only
// when the program passed, every hazard counted was printed, and every printed record is a race inside nvjet kernels.
#include <gtest/gtest.h>

#include <string>

#include "../cli_run.h"
#include "../formats/temp_dir.h"
#include "../test_paths.h"

namespace qb::test {
namespace {

CliRun verdict_of(const std::string& log_text) {
  TempDir dir;
  const std::string log = dir.file("racecheck.log");
  write_text(log, log_text);
  CliRun r = run_command("python3 " + source_path("bench/gpu/sanitizer_verdict.py") + " " + log);
  r.out += r.err;
  return r;
}

const char* kHead =
    "========= COMPUTE-SANITIZER\n"
    "PASS kv int8 codes: GPU vs CPU on 280 rows\n";

// A race record as racecheck prints it: the first access, then each access it raced with.
std::string race(const std::string& first_kernel, const std::string& second_kernel) {
  return "========= Error: Race reported between Read access at " + first_kernel + "+0xe30\n" +
         "=========     and Write access at " + second_kernel + "+0x69c0 [84 hazards]\n=========\n";
}

const std::string kNvjet = "nvjet_sm90_qqsss_128x128_128x6_1x1_h_bz_coopA_algo2_ovscale_TNT";
const std::string kOurs = "_ZN2qb7runtime4cuda15w8a8_mma_kernelILb1ELi16EEEvPKhS4_";

std::string summary(int shown, int errors) {
  return "========= RACECHECK SUMMARY: " + std::to_string(shown) + " hazards displayed (" + std::to_string(errors) +
         " errors, 0 warnings)\n";
}

TEST(SanitizerVerdict, HazardsOnlyInsideNvjetAreCleanInOurs) {
  const CliRun r = verdict_of(kHead + race(kNvjet, kNvjet) + "PASS fp8 w8a8 fast form\n" + race(kNvjet, kNvjet) +
                              "PASSED: 78 checks\n" + summary(2, 2));
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("clean in ours; 2 hazards in cuBLASLt's nvjet kernels"), std::string::npos) << r.out;
}

TEST(SanitizerVerdict, ARaceTouchingOurKernelFailsAndIsNamed) {
  for (const std::string& bad : {race(kNvjet, kOurs), race(kOurs, kOurs)}) {
    const CliRun r = verdict_of(kHead + race(kNvjet, kNvjet) + bad + "PASSED: 78 checks\n" + summary(2, 2));
    EXPECT_EQ(r.exit_code, 1) << r.out;
    EXPECT_NE(r.out.find("a race in " + kOurs), std::string::npos) << r.out;
  }
}

TEST(SanitizerVerdict, HazardsPastThePrintLimitAreNotCleared) {
  // racecheck counted 3 but printed 2 (a print limit): the third could be ours
  const CliRun r = verdict_of(kHead + race(kNvjet, kNvjet) + race(kNvjet, kNvjet) + "PASSED: 78 checks\n" +
                              summary(2, 3));
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("1 of 3 hazards not printed"), std::string::npos) << r.out;
}

TEST(SanitizerVerdict, AnythingButARaceFails) {
  // session 36's internal error, here in a run whose program still printed PASSED
  const CliRun internal = verdict_of(
      "========= COMPUTE-SANITIZER\n========= Internal Sanitizer Error: The Sanitizer failed to handle a hardware "
      "exception.\n=========\nPASSED: 78 checks\n" + summary(0, 0));
  EXPECT_EQ(internal.exit_code, 1) << internal.out;
  EXPECT_NE(internal.out.find("Internal Sanitizer Error"), std::string::npos) << internal.out;
  const CliRun not_started = verdict_of(
      "========= COMPUTE-SANITIZER\n========= Error: Target application terminated before first instrumented API "
      "call\nPASSED: 1 checks\n" + summary(0, 0));
  EXPECT_EQ(not_started.exit_code, 1) << not_started.out;
  EXPECT_NE(not_started.out.find("Target application terminated"), std::string::npos) << not_started.out;
}

TEST(SanitizerVerdict, AProgramThatFailedOrWasCutShortIsNotClean) {
  const CliRun failed = verdict_of(kHead + race(kNvjet, kNvjet) + "FAILED: 1 of 78 checks\n" + summary(1, 1));
  EXPECT_EQ(failed.exit_code, 1) << failed.out;
  EXPECT_NE(failed.out.find("did not pass"), std::string::npos) << failed.out;
  const CliRun cut = verdict_of(kHead + race(kNvjet, kNvjet) + "PASSED: 78 checks\n");  // no summary
  EXPECT_EQ(cut.exit_code, 1) << cut.out;
  EXPECT_NE(cut.out.find("no racecheck summary"), std::string::npos) << cut.out;
}

TEST(SanitizerVerdict, BadUsageSaysSoInOneLine) {
  const CliRun r = run_command("python3 " + source_path("bench/gpu/sanitizer_verdict.py") + " /nonexistent/log");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("/nonexistent/log"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace qb::test
