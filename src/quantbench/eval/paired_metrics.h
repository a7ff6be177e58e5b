// The metrics every evaluator builds the same way: one Metric from its parts, and the block that compares
// a 0/1 outcome per item between baseline and candidate (both means with stderr and a Wilson interval,
// the paired difference, flips both ways, the flip rate, exact McNemar). Multiple choice, the scored
// generation tasks and the code regime all report that block; only the metric names differ.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "quantbench/core/result.h"

namespace qb::eval {

Metric metric(std::string name, double value, Direction direction, std::string aggregation, std::string unit = "");

struct PairedBinaryNames {
  std::string baseline, candidate;                // the two means
  std::string mean_aggregation = "mean";
  std::string difference;                         // mean(candidate - baseline)
  std::string flips_to_wrong, flips_to_right;     // correct -> wrong, wrong -> correct
  std::string flip_rate;                          // empty: not reported
  std::string flip_rate_aggregation;
  std::string mcnemar;

  // baseline_<name>, candidate_<name>, <name>_difference, <name>_flips_correct_to_wrong, ..., <name>_mcnemar_exact_p.
  static PairedBinaryNames prefixed(const std::string& name, bool with_flip_rate);
};

// cb, cc: 1 where the item is correct for the baseline / candidate (same length, same items).
void add_paired_binary_metrics(Result& r, const std::vector<uint8_t>& cb, const std::vector<uint8_t>& cc, double level,
                               const PairedBinaryNames& names);

}  // namespace qb::eval
