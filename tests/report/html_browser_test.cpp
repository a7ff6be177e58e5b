// Renders the demo run's HTML report in headless Chromium and reads back what the page's own driver
// script recorded: every chart drew pixels, no script error, and no injected markup ran. This test
// fails (does not skip) when chromium is missing: scripts/setup installs it.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>

#include "demo_run.h"
#include "quantbench/report/render_html.h"

namespace qb::report {
namespace {

std::string run_capture(const std::string& cmd, int* status) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return out;
  std::array<char, 65536> buf{};
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  *status = ::pclose(p);
  return out;
}

std::string attr(const std::string& dom, const std::string& name) {
  const std::string open = " " + name + "=\"";
  const size_t p = dom.find(open);
  if (p == std::string::npos) return "(absent)";
  const size_t b = p + open.size();
  return dom.substr(b, dom.find('"', b) - b);
}

TEST(ReportBrowser, EveryChartDrawsWithoutScriptErrorsInHeadlessChromium) {
  int status = 0;
  run_capture("command -v chromium >/dev/null 2>&1", &status);
  ASSERT_EQ(status, 0) << "chromium is not installed; run scripts/setup (it installs the Debian package chromium)";

  const std::string dir = test::fresh_dir("browser");
  test::make_demo_run(dir);
  const RunStore s = RunStore::open(dir);
  const ReportData d = build_report_data({s.info(), s.load_results(), {{"multiple_choice", "acc", ">=", 0.7}}});
  const std::string html = render_html(d, load_chartjs());
  const std::string path = dir + "/report.html";
  std::ofstream(path, std::ios::binary) << html;

  const std::string profile = dir + "/chromium-profile";
  const std::string cmd = "timeout 60 chromium --headless=new --no-sandbox --disable-gpu --no-first-run "
                          "--user-data-dir=" + profile + " --dump-dom 'file://" + path + "' 2>/dev/null";
  const std::string dom = run_capture(cmd, &status);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "chromium failed: " << cmd;
  ASSERT_NE(dom.find("<body"), std::string::npos) << dom.substr(0, 500);

  size_t charts = 0;
  for (size_t p = html.find("<canvas"); p != std::string::npos; p = html.find("<canvas", p + 1)) ++charts;
  ASSERT_GE(charts, 5u);
  EXPECT_EQ(attr(dom, "data-charts-expected"), std::to_string(charts));
  EXPECT_EQ(attr(dom, "data-charts-drawn"), std::to_string(charts));
  EXPECT_EQ(attr(dom, "data-js-errors"), "");
  EXPECT_EQ(attr(dom, "data-pwned"), "(absent)");  // no injected script or handler ran
}

}  // namespace
}  // namespace qb::report
