// Result: what an evaluator or benchmark returns. A Result cannot be made without its Manifest, and
// every metric declares its direction and aggregation where it is defined (lm-eval's habit), so
// reporting never guesses which way is better. Intervals are carried with the method that made them.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "quantbench/core/manifest.h"

namespace qb {

enum class Direction { HigherIsBetter, LowerIsBetter, Neither };
std::string_view direction_name(Direction d);

struct Interval {
  double lo = 0, hi = 0;
  double level = 0.95;
  std::string method;  // "analytic (normal, stderr)", "bootstrap (n=1000, seed=1)", "exact (Clopper-Pearson)"
};

struct Metric {
  std::string name;         // "kld_mean", "acc", "ppl", ...
  double value = 0;
  std::optional<double> stderr_;  // standard error where defined
  std::optional<Interval> interval;
  Direction direction = Direction::Neither;
  std::string aggregation;  // "mean", "median", "p99", "count", ...
  std::string unit;         // "nats", "tok/s", "", ...
};

class Result {
 public:
  // Throws qb::Error listing the missing fields if the manifest lacks any schema field under the
  // given prefixes (a field may be set as unknown with a reason, but not left out).
  Result(std::string regime, std::string task, Manifest manifest,
         const std::vector<std::string>& required_prefixes = {"model.", "harness.", "toolchain.", "hardware."});

  const std::string& regime() const { return regime_; }
  const std::string& task() const { return task_; }
  const Manifest& manifest() const { return manifest_; }

  void add_metric(Metric m);
  const std::vector<Metric>& metrics() const { return metrics_; }
  const Metric* find_metric(std::string_view name) const;

  void add_item(nlohmann::json record) { items_.push_back(std::move(record)); }
  const std::vector<nlohmann::json>& items() const { return items_; }

  // The line EVALUATION.md requires in every report: what this regime cannot see.
  void set_misses(std::string s) { misses_ = std::move(s); }
  const std::string& misses() const { return misses_; }

  nlohmann::json to_json() const;

 private:
  std::string regime_, task_;
  Manifest manifest_;
  std::vector<Metric> metrics_;
  std::vector<nlohmann::json> items_;
  std::string misses_;
};

}  // namespace qb
