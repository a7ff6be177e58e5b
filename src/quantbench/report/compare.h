// compare: pairs the results of two runs and ranks them only where their methodology agrees.
//
// Design choice: a manifest difference in a field that affects comparability (calibration data, task
// version, harness settings, ...) is not noise, so such a pair is refused with the field and both values
// named rather than ranked with a caveat (EVALUATION.md, "Disclosure"). Where a pair is ranked, each
// metric is ranked by the direction it declared, and a difference inside the noise is said to be so.
#pragma once
#include <string>
#include <vector>

#include "quantbench/core/manifest.h"
#include "quantbench/report/store.h"

namespace qb::report {

struct MetricComparison {
  std::string name;
  double a = 0, b = 0;
  Direction direction = Direction::Neither;
  // "A better", "B better", "equal", "inside the noise", "no direction declared", "missing in A/B"
  std::string verdict;
  std::string evidence;  // how the noise was judged: paired CI, interval overlap, or "no interval"
  bool inside_noise = false;
};

enum class PairStatus { Ranked, Refused, OnlyInA, OnlyInB };

struct PairComparison {
  std::string regime, task, candidate_a, candidate_b;
  PairStatus status = PairStatus::Ranked;
  std::vector<ManifestDifference> differences;  // every field that differs
  std::vector<ManifestDifference> blocking;     // those that affect comparability (why it was refused)
  std::vector<MetricComparison> metrics;
};

struct Comparison {
  std::vector<PairComparison> pairs;
  // Exit status of `quantbench compare`: 0 when every paired result was comparable and ranked, 3 when
  // at least one pair was refused for a methodology difference. Results present in one run only are
  // listed but do not change the status.
  int exit_code() const;
};

// Pairs by (regime, task, candidate label); results left over that share (regime, task) with exactly one
// left-over result in the other run are paired too (e.g. candidates labelled by their scheme name).
Comparison compare_results(const std::vector<StoredResult>& a, const std::vector<StoredResult>& b);

// Ranks one metric. Items are paired when both results have per-item records with the same "key" and a
// numeric (or boolean) field named like the metric, and the metric's aggregation is "mean": then the
// paired 95% CI of the mean difference decides. Otherwise the declared intervals (or stderr) decide.
MetricComparison compare_metric(const Metric& ma, const Result& ra, const Metric& mb, const Result& rb);

std::string render_comparison_text(const Comparison& c, const std::string& name_a, const std::string& name_b);

}  // namespace qb::report
