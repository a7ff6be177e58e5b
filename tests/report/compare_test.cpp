// compare: runs that differ only in scheme are ranked by each metric's declared direction; runs that
// differ in calibration data are refused with the field and both values named; differences inside
// the noise are reported as such (paired items, or overlapping intervals).
#include "quantbench/report/compare.h"

#include <gtest/gtest.h>

#include "fake_results.h"

namespace qb::report {
namespace {

using test::fake_manifest;
using test::fresh_dir;
using test::metric;

// One run with a perplexity result whose per-item KL is `kld_base + i * step` (fake numbers).
void make_run(const std::string& dir, const Manifest& m, double kld_base, double acc, double acc_se) {
  RunStore s = RunStore::create(dir, "plan");
  const int64_t id = s.begin_result("perplexity_kld", "wiki", "cand", m);
  for (int i = 0; i < 20; ++i) s.append_item(id, "w" + std::to_string(i), {{"kld", kld_base + 0.01 * (i % 5)}});
  Metric kld = metric("kld", kld_base + 0.02, Direction::LowerIsBetter);
  Metric ppl = metric("ppl", 10 + kld_base, Direction::LowerIsBetter);
  ppl.aggregation = "exp(mean nll)";
  Metric top = metric("same_top1", acc, Direction::HigherIsBetter, acc_se);
  top.aggregation = "rate";
  Metric note = metric("tokens", 1000, Direction::Neither);
  s.finish_result(id, {kld, ppl, top, note});
}

const MetricComparison& find(const PairComparison& p, const std::string& name) {
  for (const auto& m : p.metrics)
    if (m.name == name) return m;
  throw std::runtime_error("no metric " + name);
}

TEST(Compare, RunsDifferingOnlyInSchemeAreRanked) {
  const std::string a = fresh_dir("cmp_a"), b = fresh_dir("cmp_b");
  make_run(a, fake_manifest("q8_0", "8.5"), 0.01, 0.99, 0.001);
  make_run(b, fake_manifest("q4_0", "4.5"), 0.10, 0.90, 0.001);
  const auto c = compare_results(RunStore::open(a).load_results(), RunStore::open(b).load_results());
  ASSERT_EQ(c.pairs.size(), 1u);
  const auto& p = c.pairs[0];
  EXPECT_EQ(p.status, PairStatus::Ranked);
  EXPECT_EQ(c.exit_code(), 0);
  // scheme.name and scheme.bits_per_weight differ, neither blocks.
  EXPECT_EQ(p.differences.size(), 2u);
  EXPECT_TRUE(p.blocking.empty());
  // kld: lower is better, A lower on every paired item.
  EXPECT_EQ(find(p, "kld").verdict, "A better");
  EXPECT_NE(find(p, "kld").evidence.find("paired over 20 items"), std::string::npos) << find(p, "kld").evidence;
  EXPECT_EQ(find(p, "ppl").verdict, "A better");  // no interval, but ranked and says so
  EXPECT_NE(find(p, "ppl").evidence.find("no interval"), std::string::npos);
  EXPECT_EQ(find(p, "same_top1").verdict, "A better");  // higher is better, intervals apart
  EXPECT_EQ(find(p, "tokens").verdict, "no direction declared");
  const std::string text = render_comparison_text(c, a, b);
  EXPECT_NE(text.find("all paired results comparable and ranked"), std::string::npos) << text;
}

TEST(Compare, DifferenceInsideTheNoiseIsReportedAsSuch) {
  const std::string a = fresh_dir("cmp_na"), b = fresh_dir("cmp_nb");
  make_run(a, fake_manifest("q8_0", "8.5"), 0.05, 0.95, 0.05);
  make_run(b, fake_manifest("q6_k", "6.6"), 0.05, 0.94, 0.05);
  const auto c = compare_results(RunStore::open(a).load_results(), RunStore::open(b).load_results());
  ASSERT_EQ(c.pairs.size(), 1u);
  EXPECT_EQ(find(c.pairs[0], "same_top1").verdict, "inside the noise");
  EXPECT_TRUE(find(c.pairs[0], "same_top1").inside_noise);
  EXPECT_EQ(find(c.pairs[0], "kld").verdict, "equal");
}

TEST(Compare, RunsDifferingInCalibrationDataAreRefusedWithTheFieldNamed) {
  const std::string a = fresh_dir("cmp_ca"), b = fresh_dir("cmp_cb");
  Manifest mb = fake_manifest("q4_0", "4.5");
  mb.set("calibration.dataset_sha256", "bbbb2222");
  make_run(a, fake_manifest("q4_0", "4.5"), 0.01, 0.99, 0.001);
  make_run(b, mb, 0.10, 0.90, 0.001);
  const auto c = compare_results(RunStore::open(a).load_results(), RunStore::open(b).load_results());
  ASSERT_EQ(c.pairs.size(), 1u);
  EXPECT_EQ(c.pairs[0].status, PairStatus::Refused);
  EXPECT_TRUE(c.pairs[0].metrics.empty());  // nothing ranked
  ASSERT_EQ(c.pairs[0].blocking.size(), 1u);
  EXPECT_EQ(c.pairs[0].blocking[0].key, "calibration.dataset_sha256");
  EXPECT_EQ(c.exit_code(), 3);
  const std::string text = render_comparison_text(c, a, b);
  EXPECT_NE(text.find("REFUSED"), std::string::npos);
  EXPECT_NE(text.find("calibration.dataset_sha256: A = aaaa1111 | B = bbbb2222"), std::string::npos) << text;
}

TEST(Compare, UnpairedResultsAreListedNotRanked) {
  const std::string a = fresh_dir("cmp_ua"), b = fresh_dir("cmp_ub");
  make_run(a, fake_manifest("q8_0", "8.5"), 0.01, 0.99, 0.001);
  {
    RunStore s = RunStore::create(b, "plan");
    s.finish_result(s.begin_result("multiple_choice", "arc_easy", "cand", fake_manifest("q4_0", "4.5")), {});
  }
  const auto c = compare_results(RunStore::open(a).load_results(), RunStore::open(b).load_results());
  ASSERT_EQ(c.pairs.size(), 2u);
  EXPECT_EQ(c.pairs[0].status, PairStatus::OnlyInA);
  EXPECT_EQ(c.pairs[1].status, PairStatus::OnlyInB);
  EXPECT_EQ(c.exit_code(), 0);
}

}  // namespace
}  // namespace qb::report
