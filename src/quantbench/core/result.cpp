#include "quantbench/core/result.h"

#include "quantbench/core/error.h"

namespace qb {

std::string_view direction_name(Direction d) {
  switch (d) {
    case Direction::HigherIsBetter: return "higher_is_better";
    case Direction::LowerIsBetter: return "lower_is_better";
    case Direction::Neither: return "neither";
  }
  return "?";
}

Result::Result(std::string regime, std::string task, Manifest manifest, const std::vector<std::string>& required_prefixes)
    : regime_(std::move(regime)), task_(std::move(task)), manifest_(std::move(manifest)) {
  std::string missing;
  for (const auto& prefix : required_prefixes)
    for (const auto& k : manifest_.missing(prefix)) {
      if (!missing.empty()) missing += ", ";
      missing += k;
    }
  if (!missing.empty()) fail("result {}/{}: manifest lacks {}", regime_, task_, missing);
}

void Result::add_metric(Metric m) {
  if (find_metric(m.name)) fail("result {}/{}: metric '{}' added twice", regime_, task_, m.name);
  metrics_.push_back(std::move(m));
}

const Metric* Result::find_metric(std::string_view name) const {
  for (const auto& m : metrics_)
    if (m.name == name) return &m;
  return nullptr;
}

nlohmann::json Result::to_json() const {
  nlohmann::json j;
  j["regime"] = regime_;
  j["task"] = task_;
  j["misses"] = misses_;
  j["metrics"] = nlohmann::json::array();
  for (const auto& m : metrics_) {
    nlohmann::json mj{{"name", m.name}, {"value", m.value}, {"direction", direction_name(m.direction)},
                      {"aggregation", m.aggregation}, {"unit", m.unit}};
    if (m.stderr_) mj["stderr"] = *m.stderr_;
    if (m.interval)
      mj["interval"] = {{"lo", m.interval->lo}, {"hi", m.interval->hi}, {"level", m.interval->level}, {"method", m.interval->method}};
    j["metrics"].push_back(std::move(mj));
  }
  j["items"] = items_;
  j["manifest"] = manifest_.to_json();
  return j;
}

}  // namespace qb
