// `quantbench runs list DIR...` and `quantbench runs show RUN [--json OUT]`: what runs exist and what
// each holds (--json: the whole run as one document, plan/run_export.h).
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <set>

#include <fmt/format.h>

#include "quantbench/cli/commands.h"
#include "quantbench/core/error.h"
#include "quantbench/plan/run_export.h"
#include "quantbench/report/store.h"

namespace qb::cli {
namespace {

std::string fmt_interval(const Metric& m) {
  std::string s;
  if (m.stderr_) s += fmt::format(" ± {:.4g} (stderr)", *m.stderr_);
  if (m.interval) s += fmt::format(" [{:.6g}, {:.6g}] {:g}% {}", m.interval->lo, m.interval->hi, m.interval->level * 100, m.interval->method);
  if (!m.stderr_ && !m.interval) s += " (no interval)";
  return s;
}

void list_run(const std::string& dir) {
  const auto store = report::RunStore::open(dir);
  const auto info = store.info();
  const auto results = store.load_results();
  std::set<std::string> schemes;
  for (const auto& r : results) schemes.insert(r.result.manifest().value_or("scheme.name", "unknown"));
  std::string names;
  for (const auto& s : schemes) names += (names.empty() ? "" : ",") + s;
  std::printf("%s  %s  %-9s %3zu results  %s  %s\n", info.id.c_str(), info.created.c_str(), info.status.c_str(),
              results.size(), names.empty() ? "-" : names.c_str(), dir.c_str());
}

}  // namespace

void register_runs(CLI::App& app) {
  auto* cmd = app.add_subcommand("runs", "List run directories or show one run's results and manifest");
  cmd->require_subcommand(1);
  auto* list = cmd->add_subcommand("list", "One line per run: id, date, status, results, schemes");
  auto dirs = std::make_shared<std::vector<std::string>>();
  list->add_option("dirs", *dirs, "run directories, or directories holding run directories")->required();
  list->callback([dirs] {
    for (const auto& d : *dirs) {
      if (std::filesystem::exists(std::filesystem::path(d) / report::kDatabaseFile)) {
        list_run(d);
        continue;
      }
      std::vector<std::string> subs;
      std::error_code ec;
      for (const auto& e : std::filesystem::directory_iterator(d, ec))
        if (std::filesystem::exists(e.path() / report::kDatabaseFile)) subs.push_back(e.path().string());
      if (ec) qb::fail("{}: {}", d, ec.message());
      if (subs.empty()) qb::fail("{}: not a quantbench run directory and holds none", d);
      std::sort(subs.begin(), subs.end());
      for (const auto& s : subs) list_run(s);
    }
  });
  auto* show = cmd->add_subcommand("show", "Results, metrics with intervals, and the full manifest of one run");
  auto run = std::make_shared<std::string>();
  auto json_out = std::make_shared<std::string>();
  show->add_option("run", *run, "run directory")->required();
  show->add_option("--json", *json_out, "also write every stored result (metrics, items, manifests) as one JSON file (docs/results.md)");
  show->callback([run, json_out] {
    if (!json_out->empty()) plan::write_run_json(*run, *json_out);
    const auto store = report::RunStore::open(*run);
    const auto info = store.info();
    std::printf("run %s\ncreated %s\nstatus %s\nplan sha256 %s\n", info.id.c_str(), info.created.c_str(),
                info.status.c_str(), info.plan_sha256.c_str());
    for (const auto& sr : store.load_results()) {
      const Result& r = sr.result;
      std::printf("\nresult %lld: %s / %s / %s%s (%zu items)\n", static_cast<long long>(sr.id), r.regime().c_str(),
                  r.task().c_str(), sr.candidate.c_str(), sr.finished ? "" : " [unfinished]", r.items().size());
      for (const auto& m : r.metrics())
        std::printf("  %-24s %.6g %s (%s, %s)%s\n", m.name.c_str(), m.value, m.unit.c_str(),
                    std::string(direction_name(m.direction)).c_str(), m.aggregation.c_str(), fmt_interval(m).c_str());
      if (!r.misses().empty()) std::printf("  misses: %s\n", r.misses().c_str());
      std::printf("  manifest:\n");
      for (const auto& [k, f] : r.manifest().facts())
        std::printf("    %-36s %s\n", k.c_str(), f.known ? f.value.c_str() : ("unknown (" + f.reason + ")").c_str());
      for (const auto& k : r.manifest().missing()) std::printf("    %-36s not recorded\n", k.c_str());
    }
  });
}

}  // namespace qb::cli
