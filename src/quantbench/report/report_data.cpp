// build_report_data: turns stored Results into the sections of a report. Pure computation, no
// formatting, so both renderers (and tests) see the same numbers.
#include "quantbench/report/report_data.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>

#include <fmt/format.h>

#include "quantbench/core/error.h"

namespace qb::report {
namespace {

std::optional<double> num(const nlohmann::json& rec, const char* field) {
  if (!rec.is_object() || !rec.contains(field)) return std::nullopt;
  const auto& v = rec[field];
  if (v.is_boolean()) return v.get<bool>() ? 1.0 : 0.0;
  if (v.is_number()) {
    const double d = v.get<double>();
    if (std::isfinite(d)) return d;
  }
  return std::nullopt;
}

std::vector<double> num_array(const nlohmann::json& rec, const char* field) {
  std::vector<double> out;
  if (!rec.is_object() || !rec.contains(field)) return out;
  const auto& v = rec[field];
  if (v.is_number() || v.is_boolean()) {
    if (auto d = num(rec, field)) out.push_back(*d);
  } else if (v.is_array()) {
    for (const auto& e : v)
      if (e.is_boolean()) out.push_back(e.get<bool>() ? 1.0 : 0.0);
      else if (e.is_number() && std::isfinite(e.get<double>())) out.push_back(e.get<double>());
  }
  return out;
}

std::string item_key(const nlohmann::json& rec) {
  return rec.is_object() && rec.contains("key") && rec["key"].is_string() ? rec["key"].get<std::string>() : std::string();
}

bool is_baseline(const StoredResult& r) {
  return r.candidate == "baseline" || r.result.manifest().value_or("scheme.name", "") == "none";
}

std::string fmt_metric(const Metric& m) {
  std::string s = fmt::format("{:.6g}", m.value);
  if (!m.unit.empty()) s += " " + m.unit;
  if (m.interval) s += fmt::format(" [{:.6g}, {:.6g}] ({:g}% {})", m.interval->lo, m.interval->hi, m.interval->level * 100, m.interval->method);
  else if (m.stderr_) s += fmt::format(" ± {:.4g} stderr", *m.stderr_);
  else s += " (no interval)";
  return s;
}

std::vector<VerdictRow> verdicts(const ReportInput& in) {
  std::vector<VerdictRow> out;
  for (const auto& t : in.tolerances) {
    bool any = false;
    for (const auto& sr : in.results) {
      if (sr.result.regime() != t.regime) continue;
      const Metric* m = sr.result.find_metric(t.metric);
      if (!m) continue;
      any = true;
      VerdictRow v{t, sr.result.task(), sr.candidate, true, false, ""};
      v.pass = t.op == "<=" ? m->value <= t.bound : m->value >= t.bound;
      v.evidence = fmt::format("{} = {} vs bound {} {:g}", t.metric, fmt_metric(*m), t.op, t.bound);
      if (m->interval && m->interval->lo <= t.bound && t.bound <= m->interval->hi)
        v.evidence += "; the interval contains the bound, so the verdict is inside the noise";
      out.push_back(std::move(v));
    }
    if (!any) out.push_back({t, "", "", false, false, "not measured: no result in this regime has this metric"});
  }
  return out;
}

}  // namespace

std::string result_label(const StoredResult& r) { return r.result.regime() + " / " + r.result.task() + " / " + r.candidate; }

double quantile_sorted(const std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  const double pos = q * double(v.size() - 1);
  const size_t lo = size_t(std::floor(pos));
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - double(lo));
}

double mcnemar_exact_p(size_t b, size_t c) {
  const size_t n = b + c;
  if (n == 0) return 1;
  const size_t k = std::min(b, c);
  double p = 0;
  for (size_t i = 0; i <= k; ++i)
    p += std::exp(std::lgamma(double(n) + 1) - std::lgamma(double(i) + 1) - std::lgamma(double(n - i) + 1) - double(n) * std::log(2.0));
  return std::min(1.0, 2 * p);
}

std::vector<Tolerance> parse_tolerances(const std::string& text, const std::string& source) {
  std::vector<Tolerance> out;
  std::istringstream in(text);
  std::string line;
  for (int no = 1; std::getline(in, line); ++no) {
    if (auto h = line.find('#'); h != std::string::npos) line.resize(h);
    std::istringstream ls(line);
    Tolerance t;
    std::string bound, extra;
    if (!(ls >> t.regime)) continue;
    if (!(ls >> t.metric >> t.op >> bound) || (ls >> extra) || (t.op != "<=" && t.op != ">="))
      fail("{}:{}: expected 'REGIME METRIC <= BOUND' or '>=', got '{}'", source, no, line);
    try {
      size_t used = 0;
      t.bound = std::stod(bound, &used);
      if (used != bound.size() || !std::isfinite(t.bound)) throw std::invalid_argument("");
    } catch (const std::exception&) {
      fail("{}:{}: bound '{}' is not a number", source, no, bound);
    }
    out.push_back(std::move(t));
  }
  return out;
}

ReportData build_report_data(const ReportInput& in) {
  ReportData d;
  d.run = in.run;
  d.notes = in.notes;
  d.results = in.results;
  d.verdict = verdicts(in);

  // Accuracy (headline metric) vs bits per weight, one chart per regime, one series per task + metric.
  std::map<std::string, std::map<std::string, ScatterSeries>> bits;
  for (const auto& sr : in.results) {
    const std::string bpw = sr.result.manifest().value_or("scheme.bits_per_weight", "");
    double x = 0;
    try {
      size_t used = 0;
      x = std::stod(bpw, &used);
      if (used == 0) continue;
    } catch (const std::exception&) {
      continue;
    }
    for (const auto& m : sr.result.metrics()) {
      if (m.direction == Direction::Neither) continue;
      auto& s = bits[sr.result.regime()][sr.result.task() + " · " + m.name];
      s.name = sr.result.task() + " · " + m.name;
      s.points.push_back({sr.candidate, x, m.value});
      break;
    }
  }
  for (auto& [regime, series] : bits) {
    BitsChart c{regime, {}};
    for (auto& [_, s] : series) c.series.push_back(std::move(s));
    d.bits.push_back(std::move(c));
  }

  for (const auto& sr : in.results) {
    const Result& r = sr.result;
    // KL CDF.
    std::vector<double> kl;
    for (const auto& rec : r.items())
      for (double v : num_array(rec, "kld")) kl.push_back(v);
    if (!kl.empty()) {
      std::sort(kl.begin(), kl.end());
      KlCdf c;
      c.label = result_label(sr);
      c.n = kl.size();
      for (double v : kl) c.mean += v;
      c.mean /= double(kl.size());
      c.p50 = quantile_sorted(kl, 0.5);
      c.p90 = quantile_sorted(kl, 0.9);
      c.p99 = quantile_sorted(kl, 0.99);
      c.p999 = quantile_sorted(kl, 0.999);
      c.max = kl.back();
      const size_t step = (kl.size() + 399) / 400;  // at most 400 points plus the maximum
      for (size_t i = 0; i < kl.size(); i += step) c.curve.emplace_back(kl[i], double(i + 1) / double(kl.size()));
      if (c.curve.back().first != kl.back()) c.curve.emplace_back(kl.back(), 1.0);
      d.kl.push_back(std::move(c));
    }
    // Divergence by position.
    PositionCurve pc;
    pc.label = result_label(sr);
    std::vector<double> fsum, fcnt, tsum, tcnt;
    auto accumulate = [](const std::vector<double>& v, std::vector<double>& sum, std::vector<double>& cnt) {
      if (v.size() > sum.size()) sum.resize(v.size()), cnt.resize(v.size());
      for (size_t i = 0; i < v.size(); ++i) sum[i] += v[i], cnt[i] += 1;
    };
    for (const auto& rec : r.items()) {
      const auto f = num_array(rec, "agree");
      const auto t = num_array(rec, "tf_agree");
      if (f.empty() && t.empty()) continue;
      ++pc.items;
      accumulate(f, fsum, fcnt);
      accumulate(t, tsum, tcnt);
    }
    for (size_t i = 0; i < fsum.size(); ++i) pc.free_running.push_back(fsum[i] / fcnt[i]);
    for (size_t i = 0; i < tsum.size(); ++i) pc.teacher_forced.push_back(tsum[i] / tcnt[i]);
    if (pc.items) d.positions.push_back(std::move(pc));
    // Throughput / latency vs batch size.
    PerfSeries ps{result_label(sr), {}};
    for (const auto& rec : r.items()) {
      auto b = num(rec, "batch_size");
      auto t = num(rec, "tokens_per_s");
      if (b && t) ps.points.push_back({*b, *t, num(rec, "latency_ms_p50"), num(rec, "latency_ms_p99")});
    }
    std::sort(ps.points.begin(), ps.points.end(), [](const PerfPoint& a, const PerfPoint& b) { return a.batch < b.batch; });
    if (!ps.points.empty()) d.perf.push_back(std::move(ps));
    // Roofline.
    for (const auto& rec : r.items()) {
      auto a = num(rec, "achieved_gbps");
      auto p = num(rec, "peak_gbps");
      if (!a || !p || *p <= 0) continue;
      std::string label = rec.contains("roofline_label") && rec["roofline_label"].is_string()
                              ? rec["roofline_label"].get<std::string>() : item_key(rec);
      d.roofline.push_back({sr.candidate + ": " + label, *a, *p});
    }
    // What this regime misses.
    d.misses.push_back({r.regime(), r.task(), sr.candidate, r.misses()});
  }

  // Flip tables: each non-baseline result against the baseline of its regime and task.
  for (const auto& base : in.results) {
    if (!is_baseline(base)) continue;
    std::map<std::string, bool> bc;
    for (const auto& rec : base.result.items())
      if (auto c = num(rec, "correct"); c && !item_key(rec).empty()) bc[item_key(rec)] = *c != 0;
    if (bc.empty()) continue;
    for (const auto& cand : in.results) {
      if (&cand == &base || is_baseline(cand) || cand.result.regime() != base.result.regime() ||
          cand.result.task() != base.result.task())
        continue;
      FlipTable f;
      f.regime = base.result.regime();
      f.task = base.result.task();
      f.baseline = base.candidate;
      f.candidate = cand.candidate;
      for (const auto& rec : cand.result.items()) {
        auto c = num(rec, "correct");
        auto it = bc.find(item_key(rec));
        if (!c || it == bc.end()) continue;
        const bool b = it->second, k = *c != 0;
        ++f.paired;
        if (b && k) ++f.both_right;
        else if (!b && !k) ++f.both_wrong;
        else if (b) { ++f.lost; if (f.lost_keys.size() < 20) f.lost_keys.push_back(it->first); }
        else { ++f.gained; if (f.gained_keys.size() < 20) f.gained_keys.push_back(it->first); }
      }
      if (f.paired == 0) continue;
      f.mcnemar_p = mcnemar_exact_p(f.lost, f.gained);
      d.flips.push_back(std::move(f));
    }
  }

  // Manifests: one block per distinct manifest, naming the results that share it.
  for (const auto& sr : in.results) {
    auto it = std::find_if(d.manifests.begin(), d.manifests.end(),
                           [&](const ManifestGroup& g) { return g.manifest.facts() == sr.result.manifest().facts(); });
    if (it == d.manifests.end()) d.manifests.push_back({{result_label(sr)}, sr.result.manifest()});
    else it->used_by.push_back(result_label(sr));
  }
  return d;
}

std::string fact_text(const Fact* f) {
  if (!f) return "not recorded";
  return f->known ? f->value : "unknown (" + f->reason + ")";
}

std::vector<std::pair<std::string, std::string>> extra_fact_rows(const Manifest& m) {
  std::vector<std::pair<std::string, std::string>> rows;
  std::map<std::string, size_t> per_tensor;  // text -> tensors
  size_t n_tensors = 0;
  for (const auto& [k, f] : m.facts()) {
    bool in_schema = false;
    for (const auto& sf : manifest_schema()) in_schema |= sf.key == k;
    if (in_schema) continue;
    if (k.starts_with("scheme.tensor.")) {
      ++per_tensor[fact_text(&f)];
      ++n_tensors;
      continue;
    }
    rows.emplace_back(k, fact_text(&f));
  }
  if (n_tensors > 0) {
    std::string v;
    for (const auto& [text, n] : per_tensor) v += fmt::format("{}{} x {}", v.empty() ? "" : "; ", n, text);
    rows.emplace_back(fmt::format("scheme.tensor.* ({} tensors; each named in the store)", n_tensors), v);
  }
  return rows;
}

}  // namespace qb::report
