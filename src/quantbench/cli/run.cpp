// `quantbench run PLAN.toml [--out DIR] [--quiet]`: validates the plan (nothing is created when it is
// wrong), then quantizes, evaluates, benchmarks and reports into the run directory; running the same
// command again resumes a killed run. docs/plan.md describes the plan format.
#include <cstdio>
#include <memory>

#include "quantbench/cli/commands.h"
#include "quantbench/plan/plan.h"
#include "quantbench/plan/run_plan.h"

namespace qb::cli {

void register_run(CLI::App& app) {
  auto* cmd = app.add_subcommand("run", "Run a plan: quantize, evaluate, benchmark and report, resumably (docs/plan.md)");
  auto plan = std::make_shared<std::string>();
  auto o = std::make_shared<plan::RunOptions>();
  auto quiet = std::make_shared<bool>(false);
  auto check = std::make_shared<bool>(false);
  cmd->add_option("plan", *plan, "plan file (TOML)")->required();
  cmd->add_option("--out", o->out, "run directory (default runs/<plan name>); an existing one of the same plan resumes");
  cmd->add_flag("--quiet,-q", *quiet, "no progress bars");
  cmd->add_flag("--check", *check, "validate the plan and exit");
  cmd->callback([plan, o, quiet, check] {
    const auto p = plan::load_plan(*plan);  // every check before any work
    if (*check) {
      std::printf("%s: valid (%zu candidates, %zu regimes%s)\n", plan->c_str(), p.candidates.size(), p.regimes.size(),
                  p.bench ? ", bench" : "");
      return;
    }
    o->progress = !*quiet;
    const auto s = plan::run_plan(p, *o);
    std::printf("run: %s (%zu steps run, %zu done earlier)\n", s.dir.c_str(), s.steps_run, s.steps_skipped);
    if (!p.tolerances.empty())
      std::printf("verdict: %zu of %zu checks FAIL, %zu not measured (%zu tolerances; the report has each number and its interval)\n",
                  s.tolerances_failed, s.verdict_rows, s.tolerances_unmeasured, p.tolerances.size());
    std::printf("report: %s\nreport: %s\n", s.report_md.c_str(), s.report_html.c_str());
  });
}

}  // namespace qb::cli
