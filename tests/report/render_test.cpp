// Report data and renderers: the numbers each section shows (checked against values computed here
// independently), "not measured" for absent data, and escaping of every piece of run text.
#include <gtest/gtest.h>

#include <algorithm>

#include "demo_run.h"
#include "quantbench/core/error.h"
#include "quantbench/report/render_html.h"
#include "quantbench/report/render_markdown.h"

namespace qb::report {
namespace {

size_t count(const std::string& s, const std::string& needle) {
  size_t n = 0;
  for (size_t p = s.find(needle); p != std::string::npos; p = s.find(needle, p + 1)) ++n;
  return n;
}

ReportData demo_data(const std::string& name, std::vector<Tolerance> tol = {}) {
  const std::string dir = test::fresh_dir(name);
  test::make_demo_run(dir);
  const RunStore s = RunStore::open(dir);
  return build_report_data({s.info(), s.load_results(), std::move(tol)});
}

TEST(ReportData, McNemarAndQuantilesMatchHandComputedValues) {
  EXPECT_NEAR(mcnemar_exact_p(1, 9), 2.0 * (1 + 10) / 1024, 1e-15);  // 2 * P(X <= 1), X ~ Bin(10, 1/2)
  EXPECT_DOUBLE_EQ(mcnemar_exact_p(5, 5), 1.0);
  EXPECT_DOUBLE_EQ(mcnemar_exact_p(0, 0), 1.0);
  std::vector<double> v;
  for (int i = 1; i <= 101; ++i) v.push_back(i);
  EXPECT_DOUBLE_EQ(quantile_sorted(v, 0.5), 51);
  EXPECT_DOUBLE_EQ(quantile_sorted(v, 0.99), 100);
  EXPECT_DOUBLE_EQ(quantile_sorted(v, 0.999), 100.9);
}

TEST(ReportData, EverySectionHasTheDemoRunsNumbers) {
  const ReportData d = demo_data("data", {{"multiple_choice", "acc", ">=", 0.7}, {"perplexity_kld", "kld_p99", "<=", 0.1}});
  // Flips: baseline correct when i % 7 != 0, q8 when i % 5 != 0, q4 when i % 3 != 0 (demo_run.h).
  ASSERT_EQ(d.flips.size(), 2u);
  for (const auto& f : d.flips) {
    const int mod = f.candidate == "q8" ? 5 : 3;
    size_t lost = 0, gained = 0;
    for (int i = 0; i < 24; ++i) {
      const bool b = i % 7 != 0, c = i % mod != 0;
      lost += b && !c;
      gained += !b && c;
    }
    EXPECT_EQ(f.paired, 24u);
    EXPECT_EQ(f.lost, lost) << f.candidate;
    EXPECT_EQ(f.gained, gained) << f.candidate;
    EXPECT_EQ(f.both_right + f.both_wrong + f.lost + f.gained, 24u);
  }
  // KL: 1000 tokens per result; p99 from an independent sort of the same formula.
  ASSERT_EQ(d.kl.size(), 2u);
  std::vector<double> kl;
  for (int w = 0; w < 10; ++w)
    for (int t = 0; t < 100; ++t) kl.push_back(0.001 * 4 * std::pow(1.05, (w * 100 + t) % 97));
  std::sort(kl.begin(), kl.end());
  const auto& q4 = d.kl[1];
  EXPECT_EQ(q4.n, 1000u);
  EXPECT_NEAR(q4.p99, kl[989] + 0.01 * (kl[990] - kl[989]), 1e-12);
  EXPECT_DOUBLE_EQ(q4.max, kl.back());
  EXPECT_LE(q4.curve.size(), 402u);
  // Positions: the free-running mean at position 20 is the share of prompts with 20 + 8p > 20 (4 of 5).
  ASSERT_EQ(d.positions.size(), 1u);
  EXPECT_DOUBLE_EQ(d.positions[0].free_running[20], 0.8);
  EXPECT_EQ(d.positions[0].teacher_forced.size(), 64u);
  ASSERT_EQ(d.perf.size(), 1u);
  EXPECT_EQ(d.perf[0].points.size(), 4u);
  EXPECT_DOUBLE_EQ(d.perf[0].points[3].batch, 8);
  ASSERT_EQ(d.roofline.size(), 2u);
  EXPECT_DOUBLE_EQ(d.roofline[0].fraction(), 0.8);
  EXPECT_EQ(d.bits.size(), 4u);  // every regime has a ranked metric and known bits per weight
  // Verdict: acc >= 0.7 passes for baseline and q8, fails for q4; kld_p99 was not measured.
  ASSERT_EQ(d.verdict.size(), 4u);
  EXPECT_TRUE(d.verdict[0].pass);
  EXPECT_TRUE(d.verdict[1].pass);
  EXPECT_FALSE(d.verdict[2].pass);
  EXPECT_EQ(d.verdict[0].evidence.find("inside the noise"), std::string::npos);  // [0.702, 0.898] excludes 0.7
  EXPECT_NE(d.verdict[1].evidence.find("inside the noise"), std::string::npos);  // [0.682, 0.878] contains 0.7
  EXPECT_FALSE(d.verdict[3].measured);
  EXPECT_EQ(d.misses.size(), 7u);  // one row per result
  EXPECT_EQ(d.manifests.size(), 3u);  // none, q8_0, q4_0
}

TEST(ReportRender, TolerancesParseAndRejectBadLines) {
  const auto t = parse_tolerances("# c\nperplexity_kld kld_p99 <= 0.05\n\nmultiple_choice acc >= 0.7 # x\n", "tol.txt");
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].op, "<=");
  EXPECT_DOUBLE_EQ(t[1].bound, 0.7);
  try {
    parse_tolerances("a b < 1\n", "tol.txt");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tol.txt:1"), std::string::npos);
  }
  EXPECT_THROW(parse_tolerances("a b <= x\n", "t"), Error);
  EXPECT_THROW(parse_tolerances("a b <= 1 extra\n", "t"), Error);
}

TEST(ReportRender, EmptyRunSaysNotMeasuredEverywhere) {
  const std::string dir = test::fresh_dir("empty");
  { RunStore::create(dir, ""); }
  const RunStore s = RunStore::open(dir);
  const ReportData d = build_report_data({s.info(), s.load_results(), {}});
  const std::string md = render_markdown(d);
  EXPECT_EQ(count(md, "not measured"), 10u) << md;
  const std::string html = render_html(d, "/* no chart library needed */");
  EXPECT_EQ(count(html, "not measured"), 10u);
  EXPECT_EQ(count(html, "<canvas"), 0u);
}

TEST(ReportRender, HtmlAndMarkdownEscapeEveryRunString) {
  const ReportData d = demo_data("escape");
  const std::string html = render_html(d, "/* chart.js stand-in */");
  // No run text can open a tag: the injected strings appear only escaped.
  EXPECT_EQ(html.find("<img"), std::string::npos);
  EXPECT_EQ(html.find("<iframe"), std::string::npos);
  EXPECT_EQ(html.find("<b>"), std::string::npos);
  EXPECT_EQ(html.find("<i>"), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;document.body.dataset.pwned"), std::string::npos);
  // The only <script elements are the chart data blocks, the library and the driver.
  const size_t charts = count(html, "<canvas");
  EXPECT_EQ(count(html, "<script"), charts + 2);
  EXPECT_EQ(count(html, "</script>"), charts + 2);
  EXPECT_EQ(charts, 4 + d.bits.size());  // bits charts + KL CDF + positions + throughput + roofline
  // Inside a JSON data block, run text keeps its content but cannot end the block.
  EXPECT_EQ(script_safe_json(nlohmann::json("</script><!--&")), "\"\\u003c/script\\u003e\\u003c!--\\u0026\"");
  EXPECT_EQ(nlohmann::json::parse(script_safe_json(nlohmann::json("</script>"))), "</script>");

  const std::string md = render_markdown(d);
  EXPECT_EQ(md.find("<img"), std::string::npos);
  EXPECT_EQ(md.find("<script"), std::string::npos);
  EXPECT_EQ(md.find("<iframe"), std::string::npos);
  EXPECT_EQ(markdown_escape("a|b\nc<d>"), "a\\|b c&lt;d&gt;");
}

TEST(ReportRender, ChartJsIsFoundOrTheErrorNamesThePackage) {
  try {
    load_chartjs("/nonexistent/chart.js");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("libjs-chart.js"), std::string::npos);
  }
  const std::string js = load_chartjs();  // scripts/setup installs libjs-chart.js
  EXPECT_NE(js.find("Chart"), std::string::npos);
}

}  // namespace
}  // namespace qb::report
