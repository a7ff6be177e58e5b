// render_markdown: sections in a fixed order; a section without data says "not measured".
#include "quantbench/report/render_markdown.h"

#include <fmt/format.h>

namespace qb::report {
namespace {

std::string opt(const std::optional<double>& v) { return v ? fmt::format("{:.4g}", *v) : "not measured"; }

}  // namespace

std::string markdown_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '|': o += "\\|"; break;
      case '`': o += "\\`"; break;
      case '*': o += "\\*"; break;
      case '_': o += "\\_"; break;
      case '[': o += "\\["; break;
      case ']': o += "\\]"; break;
      case '\n': case '\r': o += ' '; break;
      default: o += c;
    }
  }
  return o;
}

std::string render_markdown(const ReportData& d) {
  auto e = markdown_escape;
  std::string s = fmt::format("# quantbench report: run {}\n\ncreated {} · status {} · plan sha256 `{}` · {} results\n",
                              e(d.run.id), e(d.run.created), e(d.run.status), e(d.run.plan_sha256), d.results.size());

  if (!d.notes.empty()) {
    s += "\n## Read this first\n\n";
    for (const auto& n : d.notes) s += "- " + e(n) + "\n";
  }
  s += "\n## Verdict against tolerances\n\n";
  if (d.verdict.empty()) s += "not measured: no tolerances were given\n";
  else {
    s += "| regime | metric | bound | task | candidate | verdict | evidence |\n|---|---|---|---|---|---|---|\n";
    for (const auto& v : d.verdict)
      s += fmt::format("| {} | {} | {} {:g} | {} | {} | {} | {} |\n", e(v.tolerance.regime), e(v.tolerance.metric),
                       v.tolerance.op, v.tolerance.bound, e(v.task), e(v.candidate),
                       !v.measured ? "not measured" : v.pass ? "**pass**" : "**FAIL**", e(v.evidence));
  }

  s += "\n## Results\n\n";
  if (d.results.empty()) s += "not measured: the run holds no results\n";
  for (const auto& sr : d.results) {
    s += fmt::format("### {}{}\n\n| metric | value | stderr | interval | direction | aggregation |\n|---|---|---|---|---|---|\n",
                     e(result_label(sr)), sr.finished ? "" : " (unfinished)");
    for (const auto& m : sr.result.metrics())
      s += fmt::format("| {} | {:.6g} {} | {} | {} | {} | {} |\n", e(m.name), m.value, e(m.unit), opt(m.stderr_),
                       m.interval ? fmt::format("[{:.6g}, {:.6g}] {:g}% {}", m.interval->lo, m.interval->hi,
                                                m.interval->level * 100, e(m.interval->method))
                                  : "none",
                       direction_name(m.direction), e(m.aggregation));
    s += "\n";
  }

  s += "\n## Accuracy vs bits per weight\n\n";
  if (d.bits.empty()) s += "not measured: no result records scheme.bits_per_weight with a ranked metric\n";
  for (const auto& c : d.bits) {
    s += fmt::format("### {}\n\n| series | candidate | bits/weight | value |\n|---|---|---|---|\n", e(c.regime));
    for (const auto& ser : c.series)
      for (const auto& p : ser.points) s += fmt::format("| {} | {} | {:.4g} | {:.6g} |\n", e(ser.name), e(p.label), p.x, p.y);
    s += "\n";
  }

  s += "\n## KL divergence distribution\n\n";
  if (d.kl.empty()) s += "not measured: no per-item \"kld\" records\n";
  else {
    s += "| result | tokens | mean | p50 | p90 | p99 | p99.9 | max |\n|---|---|---|---|---|---|---|---|\n";
    for (const auto& k : d.kl)
      s += fmt::format("| {} | {} | {:.4g} | {:.4g} | {:.4g} | {:.4g} | {:.4g} | {:.4g} |\n", e(k.label), k.n, k.mean, k.p50,
                       k.p90, k.p99, k.p999, k.max);
  }

  s += "\n## Flips against the baseline\n\n";
  if (d.flips.empty()) s += "not measured: no baseline and candidate with per-item \"correct\" records on the same items\n";
  for (const auto& f : d.flips) {
    s += fmt::format("### {} / {}: {} vs baseline {}\n\n| | candidate right | candidate wrong |\n|---|---|---|\n"
                     "| baseline right | {} | {} (lost) |\n| baseline wrong | {} (gained) | {} |\n\n"
                     "{} paired items; exact McNemar p = {:.4g}\n",
                     e(f.regime), e(f.task), e(f.candidate), e(f.baseline), f.both_right, f.lost, f.gained, f.both_wrong,
                     f.paired, f.mcnemar_p);
    auto keys = [&](const char* what, const std::vector<std::string>& ks) {
      if (ks.empty()) return;
      s += fmt::format("\n{}:", what);
      for (const auto& k : ks) s += fmt::format(" {}", e(k));
      s += "\n";
    };
    keys("lost items (first 20)", f.lost_keys);
    keys("gained items (first 20)", f.gained_keys);
    s += "\n";
  }

  s += "\n## Divergence by position\n\n";
  if (d.positions.empty()) s += "not measured: no per-item \"agree\" / \"tf_agree\" records\n";
  else {
    s += "| result | items | positions | free-running agreement at end | teacher-forced agreement at end |\n|---|---|---|---|---|\n";
    for (const auto& p : d.positions)
      s += fmt::format("| {} | {} | {} | {} | {} |\n", e(p.label), p.items,
                       std::max(p.free_running.size(), p.teacher_forced.size()),
                       p.free_running.empty() ? "not measured" : fmt::format("{:.4g}", p.free_running.back()),
                       p.teacher_forced.empty() ? "not measured" : fmt::format("{:.4g}", p.teacher_forced.back()));
  }

  s += "\n## Throughput and latency vs batch size\n\n";
  if (d.perf.empty()) s += "not measured: no per-item \"batch_size\" + \"tokens_per_s\" records\n";
  else {
    s += "| result | batch | tokens/s | latency p50 (ms) | latency p99 (ms) |\n|---|---|---|---|---|\n";
    for (const auto& p : d.perf)
      for (const auto& pt : p.points)
        s += fmt::format("| {} | {:g} | {:.4g} | {} | {} |\n", e(p.label), pt.batch, pt.tokens_per_s, opt(pt.p50), opt(pt.p99));
  }

  s += "\n## Roofline\n\n";
  if (d.roofline.empty()) s += "not measured: no per-item \"achieved_gbps\" + \"peak_gbps\" records\n";
  else {
    s += "| step | achieved GB/s | roofline GB/s | fraction |\n|---|---|---|---|\n";
    for (const auto& r : d.roofline)
      s += fmt::format("| {} | {:.4g} | {:.4g} | {:.1f}% |\n", e(r.label), r.achieved_gbps, r.peak_gbps, 100 * r.fraction());
  }

  s += "\n## What each regime misses\n\n";
  if (d.misses.empty()) s += "not measured: the run holds no results\n";
  else {
    s += "| regime | task | candidate | misses |\n|---|---|---|---|\n";
    for (const auto& m : d.misses)
      s += fmt::format("| {} | {} | {} | {} |\n", e(m.regime), e(m.task), e(m.candidate),
                       m.misses.empty() ? "not stated by the evaluator" : e(m.misses));
  }

  s += "\n## Manifest\n\n";
  if (d.manifests.empty()) s += "not measured: the run holds no results\n";
  for (size_t i = 0; i < d.manifests.size(); ++i) {
    const auto& g = d.manifests[i];
    s += fmt::format("### Manifest {} (used by:", i + 1);
    for (const auto& u : g.used_by) s += fmt::format(" {};", e(u));
    s += ")\n\n| field | value | affects comparability | description |\n|---|---|---|---|\n";
    for (const auto& f : manifest_schema())
      s += fmt::format("| {} | {} | {} | {} |\n", f.key, e(fact_text(g.manifest.find(f.key))), f.affects_comparability ? "yes" : "no",
                       e(std::string(f.description)));
    for (const auto& [k, v] : extra_fact_rows(g.manifest))
      s += fmt::format("| {} | {} | yes (outside the schema) | |\n", e(k), e(v));
    s += "\n";
  }
  return s;
}

}  // namespace qb::report
