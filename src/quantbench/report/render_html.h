// HTML report: ONE self-contained file (Chart.js inlined, data inlined as JSON, no network), so a
// report can be mailed or archived and still open years later.
//
// Design choice: all text from a run (model outputs, task names, file names, manifest values) reaches
// the page either HTML-escaped in markup or inside a JSON data block whose '<', '>' and '&' are written
// as \u escapes, so no run data can close a tag or start a script. The page's own script draws every
// chart, then records how many drew (document.body.dataset.chartsDrawn, out of data-charts-expected) and
// any script errors (data-js-errors), which the headless-browser test reads.
#pragma once
#include <string>

#include "quantbench/report/report_data.h"

namespace qb::report {

// Where Debian's libjs-chart.js puts the UMD build (the one that defines window.Chart).
inline constexpr const char* kChartJsDir = "/usr/share/javascript/chart.js";

// Reads the Chart.js UMD build from dir (chart.umd.js, chart.min.js or chart.js, the first that defines
// the global Chart). Throws qb::Error naming the directory and the package libjs-chart.js if none.
std::string load_chartjs(const std::string& dir = kChartJsDir);

std::string render_html(const ReportData& d, const std::string& chartjs_source);

std::string html_escape(const std::string& s);
// JSON text safe to place inside <script type="application/json">.
std::string script_safe_json(const nlohmann::json& j);

}  // namespace qb::report
