// run_plan: executes a validated Plan into a run directory (report/store.h) -- quantize each candidate
// into RUN/artifacts/, run every regime on every candidate against the baseline, benchmark baseline and
// candidates, and write RUN/reports/report.{md,html} with the verdict against the plan's tolerances.
//
// Design choice: the run directory is the checkpoint. Artifacts are written atomically, so one that
// exists is complete and is reused; each evaluated item is stored the moment it completes (eval's
// ItemHook) and restored instead of recomputed after a kill; a finished result is skipped. Running
// the same command again therefore continues where it stopped and counts nothing twice.
//
// The Manifest of an eval result names the model under test (the baseline's source file) under model.*
// and the candidate file that ran under scheme.artifact_*, with the scheme.* and calibration.* facts the
// quantizer wrote into it: two runs that differ only in scheme are then comparable (the scheme is what
// is compared), while a calibration difference is not.
#pragma once
#include <cstddef>
#include <functional>
#include <string>

#include "quantbench/plan/plan.h"

namespace qb::plan {

struct RunOptions {
  std::string out;          // run directory; empty: runs/<plan name> under the current directory
  bool progress = true;     // progress bars on stderr
  std::string chartjs_dir;  // empty: report::kChartJsDir
  std::function<void(const std::string&)> log;  // one line per step; empty: stderr
};

struct RunSummary {
  std::string dir, report_md, report_html;
  size_t steps_run = 0, steps_skipped = 0;
  size_t verdict_rows = 0;  // one per (tolerance, result that has its metric), plus unmeasured tolerances
  size_t tolerances_failed = 0, tolerances_unmeasured = 0;  // verdict rows that failed / were not measured
};

// Throws qb::Error with a one-line message. A run directory that holds a run of a different plan text
// is refused (resume only continues the same plan).
RunSummary run_plan(const Plan& plan, const RunOptions& options);

// The eval result's Manifest as run_plan stores it (see the top of this file). `baseline_facts` holds
// the baseline's model.* facts; `candidate_meta` the candidate file's quantbench.* metadata.
Manifest candidate_manifest(const Manifest& evaluated, const Manifest& baseline_facts, const Manifest& candidate_meta);

}  // namespace qb::plan
