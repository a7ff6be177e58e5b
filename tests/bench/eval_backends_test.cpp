// bench/gpu/eval_backends.py compares `quantbench eval --backend cpu` with `--backend cuda` on the same inputs (ab.sh's
// evalcuda block): a perplexity passes within 1e-3 relative, or within twice the largest floor, the distance between
// two runs that differ by one change that should not matter (--floor: the CPU run and FLOOR.json; --floor-pair A B:
// A and B). Tested here on hand-made eval JSON files: the limit, each kind of floor, the largest of several floors,
// a floor run without the metric, and a CUDA run whose manifest does not name its GPU.
#include <gtest/gtest.h>

#include <string>

#include "../cli_run.h"
#include "../formats/temp_dir.h"
#include "../test_paths.h"

namespace qb::test {
namespace {

// An eval JSON with one perplexity result (4 items) whose candidate perplexity is `ppl`; `cuda` gives it the
// manifest fields a CUDA run carries. Omitting the metric (ppl < 0) makes a run the floor check cannot use.
std::string eval_json(double ppl, bool cuda = false) {
  const std::string gpu = cuda ? R"j("hardware.gpu": {"value": "NVIDIA H200 (132 SMs)"},
      "toolchain.cuda": {"value": "CUDA driver API 13.0, runtime 13.0"},)j"
                               : "";
  const std::string candidate =
      ppl < 0 ? "" : R"j(, {"name": "candidate_ppl", "value": )j" + std::to_string(ppl) + "}";
  return R"j({"regimes": {"perplexity": [{"manifest": {)j" + gpu + R"j( "harness.task": "tinystories"},
      "metrics": [{"name": "baseline_ppl", "value": 9.0})j" +
         candidate + R"j(], "items": [1, 2, 3, 4]}]}})j";
}

struct Files {
  TempDir dir;
  std::string add(const std::string& name, const std::string& text) {
    const std::string p = dir.file(name);
    write_text(p, text);
    return p;
  }
};

CliRun compare(const std::string& args) {
  CliRun r = run_command("python3 " + source_path("bench/gpu/eval_backends.py") + " " + args);
  r.out += r.err;
  return r;
}

TEST(EvalBackends, APerplexityWithinTheLimitPassesAndOneBeyondItFails) {
  Files f;
  const std::string cpu = f.add("cpu.json", eval_json(10.0));
  const CliRun near = compare(cpu + " " + f.add("near.json", eval_json(10.009, true)));
  EXPECT_EQ(near.exit_code, 0) << near.out;
  EXPECT_NE(near.out.find("PASSED"), std::string::npos) << near.out;
  const CliRun far = compare(cpu + " " + f.add("far.json", eval_json(10.016, true)));
  EXPECT_EQ(far.exit_code, 1) << far.out;
  EXPECT_NE(far.out.find("candidate_ppl: cpu 10.0 cuda 10.016 (rel 1.60e-03 > 1.00e-03)"), std::string::npos)
      << far.out;
}

TEST(EvalBackends, AFloorPairWidensTheLimitToTwiceItsDistance) {
  Files f;
  const std::string cpu = f.add("cpu.json", eval_json(10.0)), cuda = f.add("cuda.json", eval_json(10.016, true));
  // the CUDA run against itself with another summation order: 8.5e-4 apart, so the limit is 1.7e-3
  const std::string a = f.add("a.json", eval_json(10.0, true)), b = f.add("b.json", eval_json(10.0085, true));
  const CliRun r = compare(cpu + " " + cuda + " --floor-pair " + a + " " + b);
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("floor 8.50e-04"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tolerance 1.70e-03"), std::string::npos) << r.out;
  // a floor half as wide does not cover it
  const std::string c = f.add("c.json", eval_json(10.004, true));
  const CliRun narrow = compare(cpu + " " + cuda + " --floor-pair " + a + " " + c);
  EXPECT_EQ(narrow.exit_code, 1) << narrow.out;
}

TEST(EvalBackends, TheLargestOfSeveralFloorsSetsTheLimit) {
  Files f;
  const std::string cpu = f.add("cpu.json", eval_json(10.0)), cuda = f.add("cuda.json", eval_json(10.016, true));
  const std::string cpu_f16 = f.add("cpu_f16.json", eval_json(10.002));  // --floor: against the CPU run, 2e-4
  const std::string a = f.add("a.json", eval_json(10.0, true)), b = f.add("b.json", eval_json(10.009, true));
  const CliRun small = compare(cpu + " " + cuda + " --floor " + cpu_f16);
  EXPECT_EQ(small.exit_code, 1) << small.out;
  const CliRun both = compare(cpu + " " + cuda + " --floor " + cpu_f16 + " --floor-pair " + a + " " + b);
  EXPECT_EQ(both.exit_code, 0) << both.out;
  EXPECT_NE(both.out.find("floor 2.00e-04"), std::string::npos) << both.out;
  EXPECT_NE(both.out.find("floor 9.00e-04"), std::string::npos) << both.out;
  EXPECT_NE(both.out.find("tolerance 1.80e-03"), std::string::npos) << both.out;
  // the same with the wide floor given first: the largest counts, not the last
  const std::string cpu_wide = f.add("cpu_wide.json", eval_json(10.009));
  const std::string c = f.add("c.json", eval_json(10.002, true));
  const CliRun wide_first = compare(cpu + " " + cuda + " --floor " + cpu_wide + " --floor-pair " + a + " " + c);
  EXPECT_EQ(wide_first.exit_code, 0) << wide_first.out;
}

TEST(EvalBackends, AFloorRunWithoutTheMetricFails) {
  Files f;
  const std::string cpu = f.add("cpu.json", eval_json(10.0)), cuda = f.add("cuda.json", eval_json(10.001, true));
  const CliRun r = compare(cpu + " " + cuda + " --floor-pair " + f.add("a.json", eval_json(10.0, true)) + " " +
                           f.add("b.json", eval_json(-1, true)));
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("a floor run has no value"), std::string::npos) << r.out;
}

TEST(EvalBackends, ACudaRunWhoseManifestDoesNotNameItsGpuFails) {
  Files f;
  const CliRun r = compare(f.add("cpu.json", eval_json(10.0)) + " " + f.add("cuda.json", eval_json(10.0)));
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("does not name its GPU and CUDA runtime"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace qb::test
