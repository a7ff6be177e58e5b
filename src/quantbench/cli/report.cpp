// `quantbench report RUN [--out DIR] [--tolerances FILE]`: writes report.md and one self-contained
// report.html (Chart.js inlined from Debian's libjs-chart.js) into DIR (default RUN/reports).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "quantbench/cli/commands.h"
#include "quantbench/core/error.h"
#include "quantbench/report/render_html.h"
#include "quantbench/report/render_markdown.h"

namespace qb::cli {
namespace {

void write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
  if (!f) qb::fail("{}: cannot write", path);
}

}  // namespace

void register_report(CLI::App& app) {
  auto* cmd = app.add_subcommand("report", "Write a Markdown and a self-contained HTML report of a run");
  auto run = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto tol = std::make_shared<std::string>();
  cmd->add_option("run", *run, "run directory")->required();
  cmd->add_option("--out", *out, "output directory (default RUN/reports)");
  cmd->add_option("--tolerances", *tol, "tolerance file: lines 'REGIME METRIC <= BOUND' (or >=)");
  cmd->callback([run, out, tol] {
    const auto store = report::RunStore::open(*run);
    report::ReportInput in{store.info(), store.load_results(), {}};
    if (!tol->empty()) {
      std::ifstream f(*tol, std::ios::binary);
      if (!f) qb::fail("{}: cannot read the tolerance file", *tol);
      std::stringstream ss;
      ss << f.rdbuf();
      in.tolerances = report::parse_tolerances(ss.str(), *tol);
    }
    const std::string chartjs = report::load_chartjs();  // fail before writing anything
    const auto data = report::build_report_data(in);
    const std::string dir = out->empty() ? store.reports_dir() : *out;
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) qb::fail("{}: cannot create: {}", dir, ec.message());
    write_file(dir + "/report.md", report::render_markdown(data));
    write_file(dir + "/report.html", report::render_html(data, chartjs));
    std::printf("%s/report.md\n%s/report.html\n", dir.c_str(), dir.c_str());
  });
}

}  // namespace qb::cli
