#include "quantbench/core/manifest.h"

#include <gtest/gtest.h>

#include "quantbench/core/environment.h"
#include "quantbench/core/error.h"
#include "quantbench/core/result.h"

namespace qb {
namespace {

Manifest full_manifest() {
  Manifest m;
  for (const auto& f : manifest_schema()) m.set(std::string(f.key), "x");
  return m;
}

TEST(Manifest, JsonRoundTripKeepsUnknownReasons) {
  Manifest m;
  m.set("model.name", "stories260K");
  m.set_unknown("hardware.gpu", "no GPU backend in this run");
  const Manifest back = Manifest::from_json(m.to_json());
  EXPECT_EQ(back.find("model.name")->value, "stories260K");
  ASSERT_NE(back.find("hardware.gpu"), nullptr);
  EXPECT_FALSE(back.find("hardware.gpu")->known);
  EXPECT_EQ(back.find("hardware.gpu")->reason, "no GPU backend in this run");
  EXPECT_THROW(Manifest::from_json(nlohmann::json::array()), Error);
  EXPECT_THROW(Manifest::from_json(nlohmann::json{{"a", 3}}), Error);
}

TEST(Manifest, ResultRefusesIncompleteManifest) {
  Manifest m = full_manifest();
  EXPECT_NO_THROW(Result("perplexity", "wikitext2", m));
  Manifest partial = m;
  partial = Manifest();
  partial.set("model.name", "x");
  try {
    Result r("perplexity", "wikitext2", partial);
    FAIL() << "expected a throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("harness.task"), std::string::npos) << e.what();
  }
  // Unknown-with-reason counts as disclosed.
  Manifest with_unknown = m;
  with_unknown.set_unknown("hardware.gpu", "CPU run");
  EXPECT_NO_THROW(Result("perplexity", "wikitext2", with_unknown));
}

TEST(Manifest, DiffSaysWhichFieldsAffectComparability) {
  Manifest a = full_manifest(), b = full_manifest();
  b.set("scheme.name", "w4g128");
  b.set("calibration.dataset_sha256", "other");
  const auto d = diff_manifests(a, b);
  ASSERT_EQ(d.size(), 2u);
  for (const auto& x : d) {
    if (x.key == "scheme.name") EXPECT_FALSE(x.affects_comparability);
    if (x.key == "calibration.dataset_sha256") EXPECT_TRUE(x.affects_comparability);
  }
}

TEST(Manifest, ResultMetricsAreUniqueAndSerialised) {
  Result r("perplexity", "t", full_manifest());
  r.add_metric({.name = "ppl", .value = 12.5, .direction = Direction::LowerIsBetter, .aggregation = "exp(mean nll)"});
  EXPECT_THROW(r.add_metric({.name = "ppl"}), Error);
  const auto j = r.to_json();
  EXPECT_EQ(j["metrics"][0]["direction"], "lower_is_better");
  EXPECT_EQ(j["manifest"]["model.name"], "x");
}

TEST(Environment, FillsHostFacts) {
  Manifest m;
  add_build_and_host_facts(m, 2);
  for (const char* k : {"harness.quantbench_version", "toolchain.compiler", "toolchain.flags", "hardware.cpu", "hardware.threads"})
    EXPECT_NE(m.find(k), nullptr) << k;
  EXPECT_EQ(m.find("hardware.threads")->value, "2");
}

}  // namespace
}  // namespace qb
