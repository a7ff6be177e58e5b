// ReportData: everything a report shows, computed once from a run's Results so that the Markdown and
// HTML renderers draw the same numbers. Each section is a list that is empty when the run did not
// measure it; renderers then print "not measured" instead of leaving the section out silently.
//
// Per-item record fields read here (each optional; a result without them simply feeds no chart):
//   "kld"            number, or array of numbers (per-token KL(P_base || P_cand))  -> KL CDF
//   "correct"        bool (per-item correctness)                                   -> flip tables
//   "agree"          array of 0/1 or fractions, free-running agreement by position  -> divergence curves
//   "tf_agree"       array, teacher-forced agreement by position                    -> divergence curves
//   "batch_size", "tokens_per_s", "latency_ms_p50", "latency_ms_p99" (numbers)      -> throughput/latency
//   "roofline_label" (string), "achieved_gbps", "peak_gbps" (numbers)              -> roofline bars
// The baseline of a flip table is the result with the same regime and task whose scheme.name is
// "none" or whose candidate label is "baseline". The accuracy-vs-bits chart plots, per result, its first
// metric that declares a direction against scheme.bits_per_weight.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "quantbench/report/store.h"

namespace qb::report {

struct Tolerance {
  std::string regime, metric;
  std::string op;  // "<=" or ">="
  double bound = 0;
};
// One tolerance per line: `REGIME METRIC <= BOUND` or `>=`; '#' starts a comment. Throws naming
// source and line on anything else.
std::vector<Tolerance> parse_tolerances(const std::string& text, const std::string& source);

struct ReportInput {
  RunInfo run;
  std::vector<StoredResult> results;
  std::vector<Tolerance> tolerances;
  std::vector<std::string> notes;  // sentences shown first (e.g. "this model is a toy"), from the plan
};

struct VerdictRow {
  Tolerance tolerance;
  std::string task, candidate;  // empty when not measured
  bool measured = false, pass = false;
  std::string evidence;
};

struct ScatterPoint { std::string label; double x = 0, y = 0; };
struct ScatterSeries { std::string name; std::vector<ScatterPoint> points; };
struct BitsChart { std::string regime; std::vector<ScatterSeries> series; };

struct KlCdf {
  std::string label;
  size_t n = 0;
  double mean = 0, p50 = 0, p90 = 0, p99 = 0, p999 = 0, max = 0;
  std::vector<std::pair<double, double>> curve;  // (kl, fraction <= kl), at most ~400 points
};

struct FlipTable {
  std::string regime, task, baseline, candidate;
  size_t paired = 0, both_right = 0, both_wrong = 0, lost = 0, gained = 0;
  double mcnemar_p = 1;  // exact two-sided
  std::vector<std::string> lost_keys, gained_keys;  // at most 20 each
};

struct PositionCurve {
  std::string label;
  size_t items = 0;
  std::vector<double> free_running, teacher_forced;  // mean over items at each position
};

struct PerfPoint { double batch = 0, tokens_per_s = 0; std::optional<double> p50, p99; };
struct PerfSeries { std::string label; std::vector<PerfPoint> points; };

struct RooflineBar { std::string label; double achieved_gbps = 0, peak_gbps = 0; double fraction() const { return achieved_gbps / peak_gbps; } };

struct MissesRow { std::string regime, task, candidate, misses; };

struct ManifestGroup {
  std::vector<std::string> used_by;  // "regime / task / candidate"
  Manifest manifest;
};

struct ReportData {
  RunInfo run;
  std::vector<std::string> notes;
  std::vector<StoredResult> results;
  std::vector<VerdictRow> verdict;   // empty when no tolerances were given
  std::vector<BitsChart> bits;
  std::vector<KlCdf> kl;
  std::vector<FlipTable> flips;
  std::vector<PositionCurve> positions;
  std::vector<PerfSeries> perf;
  std::vector<RooflineBar> roofline;
  std::vector<MissesRow> misses;
  std::vector<ManifestGroup> manifests;
};

ReportData build_report_data(const ReportInput& in);

// Exact two-sided McNemar p-value for b and c discordant pairs (binomial, p = 1/2).
double mcnemar_exact_p(size_t b, size_t c);
// Quantile by linear interpolation between order statistics (sorted input).
double quantile_sorted(const std::vector<double>& v, double q);

std::string result_label(const StoredResult& r);  // "regime / task / candidate"

// A fact's text for a report: its value, "unknown (reason)", or "not recorded" when absent.
std::string fact_text(const Fact* f);

// The manifest's facts outside the disclosure schema, as (field, text) rows for a report. The per-tensor
// facts (scheme.tensor.NAME, one per matrix: 210 for SmolLM2) become one row per distinct text with
// its count, so a report stays readable; the store and `runs show --json` keep every one.
std::vector<std::pair<std::string, std::string>> extra_fact_rows(const Manifest& m);

}  // namespace qb::report
