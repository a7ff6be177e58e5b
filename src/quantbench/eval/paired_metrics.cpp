// See paired_metrics.h.
#include "quantbench/eval/paired_metrics.h"

#include <algorithm>

#include "quantbench/core/error.h"
#include "quantbench/eval/stats.h"

namespace qb::eval {

Metric metric(std::string name, double value, Direction direction, std::string aggregation, std::string unit) {
  Metric m;
  m.name = std::move(name);
  m.value = value;
  m.direction = direction;
  m.aggregation = std::move(aggregation);
  m.unit = std::move(unit);
  return m;
}

PairedBinaryNames PairedBinaryNames::prefixed(const std::string& name, bool with_flip_rate) {
  PairedBinaryNames n;
  n.baseline = "baseline_" + name;
  n.candidate = "candidate_" + name;
  n.difference = name + "_difference";
  n.flips_to_wrong = name + "_flips_correct_to_wrong";
  n.flips_to_right = name + "_flips_wrong_to_correct";
  if (with_flip_rate) {
    n.flip_rate = name + "_flip_rate";
    n.flip_rate_aggregation = "proportion of items whose correctness changed";
  }
  n.mcnemar = name + "_mcnemar_exact_p";
  return n;
}

void add_paired_binary_metrics(Result& r, const std::vector<uint8_t>& cb, const std::vector<uint8_t>& cc, double level,
                               const PairedBinaryNames& names) {
  QB_CHECK(cb.size() == cc.size() && !cb.empty(), "paired outcomes: {} baseline and {} candidate items", cb.size(),
           cc.size());
  const size_t n = cb.size();
  const std::vector<double> db(cb.begin(), cb.end()), dc(cc.begin(), cc.end());
  for (int who = 0; who < 2; ++who) {
    const auto& c = who ? cc : cb;
    const auto ms = mean_stats(who ? dc : db, level);
    const auto w = wilson(size_t(std::count(c.begin(), c.end(), 1)), n, level);
    auto mm = metric(who ? names.candidate : names.baseline, ms.mean, Direction::HigherIsBetter, names.mean_aggregation);
    mm.stderr_ = ms.stderr_;
    mm.interval = w.ci;
    r.add_metric(mm);
  }
  const auto pd = paired_difference(db, dc, level);
  auto md = metric(names.difference, pd.mean, Direction::HigherIsBetter, "mean(candidate - baseline)");
  md.stderr_ = pd.stderr_;
  md.interval = pd.ci;
  r.add_metric(md);
  const auto f = count_flips(cb, cc);
  r.add_metric(metric(names.flips_to_wrong, double(f.correct_to_wrong), Direction::LowerIsBetter, "count"));
  r.add_metric(metric(names.flips_to_right, double(f.wrong_to_correct), Direction::Neither, "count"));
  if (!names.flip_rate.empty()) {
    const auto fr = wilson(f.flipped(), n, level);
    auto mf = metric(names.flip_rate, fr.rate, Direction::LowerIsBetter, names.flip_rate_aggregation);
    mf.interval = fr.ci;
    r.add_metric(mf);
  }
  r.add_metric(metric(names.mcnemar, mcnemar_exact(f).p_value, Direction::Neither, "two-sided exact McNemar p-value"));
}

}  // namespace qb::eval
