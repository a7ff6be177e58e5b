// compare: pairing, the refusal rule, and per-metric ranking with a noise test.
#include "quantbench/report/compare.h"

#include <cmath>
#include <map>
#include <optional>

#include <fmt/format.h>

namespace qb::report {
namespace {

std::optional<double> numeric(const nlohmann::json& rec, const std::string& field) {
  if (!rec.is_object() || !rec.contains(field)) return std::nullopt;
  const auto& v = rec[field];
  if (v.is_boolean()) return v.get<bool>() ? 1.0 : 0.0;
  if (v.is_number()) return v.get<double>();
  return std::nullopt;
}

std::map<std::string, double> per_item(const Result& r, const std::string& field) {
  std::map<std::string, double> out;
  for (const auto& rec : r.items()) {
    if (!rec.is_object() || !rec.contains("key") || !rec["key"].is_string()) continue;
    if (auto v = numeric(rec, field)) out[rec["key"].get<std::string>()] = *v;
  }
  return out;
}

std::string fmt_fact(const Fact& f) { return f.known ? f.value : "unknown (" + f.reason + ")"; }

}  // namespace

MetricComparison compare_metric(const Metric& ma, const Result& ra, const Metric& mb, const Result& rb) {
  MetricComparison c{ma.name, ma.value, mb.value, ma.direction, "", "", false};
  if (ma.direction != mb.direction || ma.direction == Direction::Neither) {
    c.verdict = "no direction declared";
    c.evidence = ma.direction != mb.direction ? "the runs declare different directions" : "metric has no better side";
    return c;
  }
  const double diff = mb.value - ma.value;  // B - A
  // 1. Paired items.
  if (ma.aggregation == "mean") {
    const auto ia = per_item(ra, ma.name), ib = per_item(rb, mb.name);
    std::vector<double> d;
    for (const auto& [k, va] : ia)
      if (auto it = ib.find(k); it != ib.end()) d.push_back(it->second - va);
    if (d.size() >= 2) {
      double mean = 0;
      for (double x : d) mean += x;
      mean /= double(d.size());
      double ss = 0;
      for (double x : d) ss += (x - mean) * (x - mean);
      const double se = std::sqrt(ss / double(d.size() - 1) / double(d.size()));
      const double lo = mean - 1.96 * se, hi = mean + 1.96 * se;
      c.inside_noise = lo <= 0 && 0 <= hi;
      c.evidence = fmt::format("paired over {} items: mean B-A {:.6g}, 95% CI [{:.6g}, {:.6g}]", d.size(), mean, lo, hi);
    }
  }
  // 2. Declared intervals / stderr.
  if (c.evidence.empty()) {
    if (ma.interval && mb.interval) {
      c.inside_noise = ma.interval->lo <= mb.interval->hi && mb.interval->lo <= ma.interval->hi;
      c.evidence = fmt::format("intervals A [{:.6g}, {:.6g}] and B [{:.6g}, {:.6g}] {}", ma.interval->lo, ma.interval->hi,
                               mb.interval->lo, mb.interval->hi, c.inside_noise ? "overlap" : "do not overlap");
    } else if (ma.stderr_ && mb.stderr_) {
      const double half = 1.96 * std::sqrt(*ma.stderr_ * *ma.stderr_ + *mb.stderr_ * *mb.stderr_);
      c.inside_noise = std::fabs(diff) <= half;
      c.evidence = fmt::format("B-A {:.6g} vs 95% half-width {:.6g} from the two stderrs", diff, half);
    } else {
      c.evidence = "no interval: cannot tell whether the difference is outside the noise";
    }
  }
  if (diff == 0) c.verdict = "equal";
  else if (c.inside_noise) c.verdict = "inside the noise";
  else {
    const bool b_better = (ma.direction == Direction::HigherIsBetter) == (diff > 0);
    c.verdict = b_better ? "B better" : "A better";
  }
  return c;
}

Comparison compare_results(const std::vector<StoredResult>& a, const std::vector<StoredResult>& b) {
  Comparison out;
  std::vector<bool> used_a(a.size()), used_b(b.size());
  std::vector<std::pair<size_t, size_t>> pairs;
  for (size_t i = 0; i < a.size(); ++i)
    for (size_t j = 0; j < b.size(); ++j)
      if (!used_b[j] && a[i].result.regime() == b[j].result.regime() && a[i].result.task() == b[j].result.task() &&
          a[i].candidate == b[j].candidate) {
        pairs.emplace_back(i, j);
        used_a[i] = used_b[j] = true;
        break;
      }
  // Left-overs: pair when each side has exactly one for the (regime, task).
  for (size_t i = 0; i < a.size(); ++i) {
    if (used_a[i]) continue;
    auto same = [&](const StoredResult& x) { return x.result.regime() == a[i].result.regime() && x.result.task() == a[i].result.task(); };
    std::vector<size_t> ca, cb;
    for (size_t k = 0; k < a.size(); ++k) if (!used_a[k] && same(a[k])) ca.push_back(k);
    for (size_t k = 0; k < b.size(); ++k) if (!used_b[k] && same(b[k])) cb.push_back(k);
    if (ca.size() == 1 && cb.size() == 1) {
      pairs.emplace_back(i, cb[0]);
      used_a[i] = used_b[cb[0]] = true;
    }
  }
  for (auto [i, j] : pairs) {
    const Result& ra = a[i].result;
    const Result& rb = b[j].result;
    PairComparison p{ra.regime(), ra.task(), a[i].candidate, b[j].candidate, PairStatus::Ranked, {}, {}, {}};
    p.differences = diff_manifests(ra.manifest(), rb.manifest());
    for (const auto& d : p.differences)
      if (d.affects_comparability) p.blocking.push_back(d);
    if (!p.blocking.empty()) p.status = PairStatus::Refused;
    else {
      for (const auto& ma : ra.metrics()) {
        if (const Metric* mb = rb.find_metric(ma.name)) p.metrics.push_back(compare_metric(ma, ra, *mb, rb));
        else p.metrics.push_back({ma.name, ma.value, 0, ma.direction, "missing in B", "", false});
      }
      for (const auto& mb : rb.metrics())
        if (!ra.find_metric(mb.name)) p.metrics.push_back({mb.name, 0, mb.value, mb.direction, "missing in A", "", false});
    }
    out.pairs.push_back(std::move(p));
  }
  for (size_t i = 0; i < a.size(); ++i)
    if (!used_a[i]) out.pairs.push_back({a[i].result.regime(), a[i].result.task(), a[i].candidate, "", PairStatus::OnlyInA, {}, {}, {}});
  for (size_t j = 0; j < b.size(); ++j)
    if (!used_b[j]) out.pairs.push_back({b[j].result.regime(), b[j].result.task(), "", b[j].candidate, PairStatus::OnlyInB, {}, {}, {}});
  return out;
}

int Comparison::exit_code() const {
  for (const auto& p : pairs)
    if (p.status == PairStatus::Refused) return 3;
  return 0;
}

std::string render_comparison_text(const Comparison& c, const std::string& name_a, const std::string& name_b) {
  std::string s = fmt::format("A = {}\nB = {}\n", name_a, name_b);
  for (const auto& p : c.pairs) {
    const std::string label = p.candidate_a == p.candidate_b || p.candidate_b.empty() ? p.candidate_a
                              : p.candidate_a.empty()                                 ? p.candidate_b
                                                                                      : p.candidate_a + " vs " + p.candidate_b;
    s += fmt::format("\n{} / {} / {}: ", p.regime, p.task, label);
    switch (p.status) {
      case PairStatus::OnlyInA: s += "only in A, not compared\n"; continue;
      case PairStatus::OnlyInB: s += "only in B, not compared\n"; continue;
      case PairStatus::Refused: s += "REFUSED: the methodology differs, so the difference is not noise\n"; break;
      case PairStatus::Ranked: s += "comparable\n"; break;
    }
    for (const auto& d : p.differences)
      s += fmt::format("  {} {}: A = {} | B = {}\n", d.affects_comparability ? "differs (affects comparability)" : "differs",
                       d.key, fmt_fact(d.a), fmt_fact(d.b));
    for (const auto& m : p.metrics)
      s += fmt::format("  {:<24} A {:<12.6g} B {:<12.6g} {:<18} {} ({})\n", m.name, m.a, m.b, direction_name(m.direction),
                       m.verdict, m.evidence);
  }
  const int code = c.exit_code();
  s += code == 0 ? "\nall paired results comparable and ranked\n" : "\nsome pairs refused (exit status 3)\n";
  return s;
}

}  // namespace qb::report
