// `bench synthetic:NAME` on the CPU (small shapes; the Manifest marks the model synthetic) and the
// one-line errors around it: unknown shape, a shape too large for host RAM, --scheme on the CPU, and a
// backend this build lacks.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "../cli_run.h"

namespace qb::test {
namespace {

TEST(BenchSyntheticCli, TinyRunsOnTheCpuAndIsMarkedSynthetic) {
  const std::string json = ::testing::TempDir() + "qb_bench_synth.json";
  const CliRun r = run_cli("bench synthetic:tiny --batch 1 --prompt-len 8 --gen-len 4 --reps 1 --warmup 0 -t 1 "
                           "--bandwidth-mib 8 --no-progress --json " + json);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::ifstream f(json);
  const auto j = nlohmann::json::parse(f);
  const auto& m = j.at("manifest");
  EXPECT_EQ(m.at("model.synthetic").dump().find("true") != std::string::npos, true) << m.dump();
  EXPECT_NE(m.at("model.shape").dump().find("synthetic:tiny"), std::string::npos);
  EXPECT_GT(j.at("items").at(0).at("decode_tok_s").at("median").get<double>(), 0.0);
}

TEST(BenchSyntheticCli, ErrorsAreOneLine) {
  const CliRun unknown = run_cli("bench synthetic:nope");
  EXPECT_NE(unknown.exit_code, 0);
  EXPECT_NE(unknown.err.find("known: synthetic:llama2-7b"), std::string::npos) << unknown.err;
  const CliRun big = run_cli("bench synthetic:llama2-7b --batch 1");
  EXPECT_NE(big.exit_code, 0);
  EXPECT_NE(big.err.find("too large for the CPU backend"), std::string::npos) << big.err;
  const CliRun scheme = run_cli("bench synthetic:tiny --scheme w4g128");
  EXPECT_NE(scheme.exit_code, 0);
  EXPECT_NE(scheme.err.find("--scheme"), std::string::npos) << scheme.err;
  const CliRun backend = run_cli("bench synthetic:tiny --backend tpu");
  EXPECT_NE(backend.exit_code, 0);
  EXPECT_NE(backend.err.find("--backend must be cpu or cuda"), std::string::npos) << backend.err;
  for (const CliRun* r : {&unknown, &big, &scheme, &backend})
    EXPECT_EQ(std::count(r->err.begin(), r->err.end(), '\n'), 1) << r->err;
}

}  // namespace
}  // namespace qb::test
