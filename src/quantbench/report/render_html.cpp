// render_html: markup built from escaped text, one <canvas> + JSON config per chart, and a small
// driver script that draws each chart and checks that it put pixels on its canvas.
#include "quantbench/report/render_html.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "quantbench/core/error.h"

namespace qb::report {
namespace {

using nlohmann::json;

const char* kStyle = R"css(
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f3f3f3}.pass{color:#070;font-weight:bold}.fail{color:#b00;font-weight:bold}.nm{color:#777;font-style:italic}
canvas{border:1px solid #eee;margin:.5em 0}code{font-size:90%}
)css";

// The driver: draws every canvas[data-chart] from its JSON config, then records what happened.
const char* kDriver = R"js(
(function () {
  var errors = [];
  window.addEventListener('error', function (e) { errors.push(String(e.message)); });
  var origError = console.error;
  console.error = function () { errors.push(Array.prototype.join.call(arguments, ' ')); origError.apply(console, arguments); };
  var canvases = document.querySelectorAll('canvas[data-chart]');
  var drawn = 0;
  canvases.forEach(function (canvas) {
    try {
      var cfg = JSON.parse(document.getElementById(canvas.dataset.chart).textContent);
      cfg.options = cfg.options || {};
      cfg.options.animation = false;
      cfg.options.responsive = false;
      new Chart(canvas, cfg);
      var px = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
      var inked = 0;
      for (var i = 3; i < px.length; i += 4) if (px[i] !== 0) inked++;
      if (inked > 100) drawn++; else errors.push('chart ' + canvas.dataset.chart + ' drew nothing');
    } catch (e) {
      errors.push('chart ' + canvas.dataset.chart + ': ' + e);
    }
  });
  document.body.dataset.chartsExpected = String(canvases.length);
  document.body.dataset.chartsDrawn = String(drawn);
  document.body.dataset.jsErrors = errors.join(' | ');
})();
)js";

const char* kPalette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"};
std::string color(size_t i) { return kPalette[i % (sizeof kPalette / sizeof kPalette[0])]; }

// Accumulates sections and chart configs.
class Page {
 public:
  void h2(const std::string& t) { body_ += "<h2>" + html_escape(t) + "</h2>\n"; }
  void h3(const std::string& t) { body_ += "<h3>" + html_escape(t) + "</h3>\n"; }
  void p(const std::string& t, const char* cls = nullptr) {
    body_ += cls ? fmt::format("<p class=\"{}\">{}</p>\n", cls, html_escape(t)) : "<p>" + html_escape(t) + "</p>\n";
  }
  void not_measured(const std::string& why) { p("not measured: " + why, "nm"); }
  void raw(const std::string& html) { body_ += html; }
  void table(const std::vector<std::string>& head, const std::vector<std::vector<std::string>>& rows) {
    body_ += "<table><tr>";
    for (const auto& h : head) body_ += "<th>" + html_escape(h) + "</th>";
    body_ += "</tr>\n";
    for (const auto& r : rows) {
      body_ += "<tr>";
      for (const auto& c : r) body_ += "<td>" + html_escape(c) + "</td>";
      body_ += "</tr>\n";
    }
    body_ += "</table>\n";
  }
  void chart(const json& config, int w = 900, int h = 420) {
    const std::string id = fmt::format("chart-{}", charts_++);
    body_ += fmt::format("<canvas width=\"{}\" height=\"{}\" data-chart=\"{}\"></canvas>\n", w, h, id);
    data_ += fmt::format("<script type=\"application/json\" id=\"{}\">{}</script>\n", id, script_safe_json(config));
  }
  std::string finish(const std::string& title, const std::string& chartjs) const {
    return "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>" + html_escape(title) +
           "</title>\n<style>" + kStyle + "</style>\n</head><body>\n" + body_ + data_ + "<script>\n" + chartjs +
           "\n</script>\n<script>" + kDriver + "</script>\n</body></html>\n";
  }

 private:
  std::string body_, data_;
  int charts_ = 0;
};

json axis(const std::string& title, const char* type = "linear") {
  return {{"type", type}, {"title", {{"display", true}, {"text", title}}}};
}

json scatter_config(const json& datasets, const std::string& x, const std::string& y, bool show_line) {
  json cfg = {{"type", "scatter"}, {"data", {{"datasets", datasets}}},
              {"options", {{"scales", {{"x", axis(x)}, {"y", axis(y)}}}, {"showLine", show_line}}}};
  return cfg;
}

std::string g(double v) { return fmt::format("{:.6g}", v); }
std::string opt(const std::optional<double>& v) { return v ? g(*v) : "not measured"; }

}  // namespace

std::string html_escape(const std::string& s) {
  std::string o;
  o.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      case '\'': o += "&#39;"; break;
      default: o += c;
    }
  }
  return o;
}

std::string script_safe_json(const nlohmann::json& j) {
  // Invalid UTF-8 from a model output must not abort the report: replace it.
  const std::string s = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::string o;
  o.reserve(s.size());
  for (char c : s) {
    if (c == '<') o += "\\u003c";
    else if (c == '>') o += "\\u003e";
    else if (c == '&') o += "\\u0026";
    else o += c;
  }
  return o;
}

std::string load_chartjs(const std::string& dir) {
  for (const char* name : {"chart.umd.js", "chart.min.js", "chart.js"}) {
    const auto path = std::filesystem::path(dir) / name;
    std::ifstream f(path, std::ios::binary);
    if (!f) continue;
    std::stringstream ss;
    ss << f.rdbuf();
    std::string src = ss.str();
    // The UMD wrapper assigns the global: "...self).Chart=".
    if (src.find(").Chart=") == std::string::npos && src.find(".Chart = ") == std::string::npos) continue;
    // Inline scripts end at the first "</script"; the library must not contain one.
    std::string lower = src;
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    if (lower.find("</script") != std::string::npos || lower.find("<!--") != std::string::npos)
      fail("{}: contains '</script' or '<!--' and cannot be inlined", path.string());
    return src;
  }
  fail("{}: no Chart.js UMD build (chart.umd.js / chart.min.js defining window.Chart); install the Debian package "
       "libjs-chart.js", dir);
}

std::string render_html(const ReportData& d, const std::string& chartjs) {
  Page pg;
  pg.raw("<h1>quantbench report: run " + html_escape(d.run.id) + "</h1>\n");
  pg.p(fmt::format("created {} · status {} · plan sha256 {} · {} results", d.run.created, d.run.status, d.run.plan_sha256,
                   d.results.size()));

  if (!d.notes.empty()) {
    pg.h2("Read this first");
    std::string ul = "<ul class=\"notes\">\n";
    for (const auto& n : d.notes) ul += "<li>" + html_escape(n) + "</li>\n";
    pg.raw(ul + "</ul>\n");
  }
  pg.h2("Verdict against tolerances");
  if (d.verdict.empty()) pg.not_measured("no tolerances were given");
  else {
    std::string t = "<table><tr><th>regime</th><th>metric</th><th>bound</th><th>task</th><th>candidate</th><th>verdict</th><th>evidence</th></tr>\n";
    for (const auto& v : d.verdict) {
      const char* cls = !v.measured ? "nm" : v.pass ? "pass" : "fail";
      const char* word = !v.measured ? "not measured" : v.pass ? "pass" : "FAIL";
      t += "<tr><td>" + html_escape(v.tolerance.regime) + "</td><td>" + html_escape(v.tolerance.metric) + "</td><td>" +
           html_escape(v.tolerance.op + " " + g(v.tolerance.bound)) + "</td><td>" + html_escape(v.task) + "</td><td>" +
           html_escape(v.candidate) + "</td><td class=\"" + cls + "\">" + word + "</td><td>" + html_escape(v.evidence) + "</td></tr>\n";
    }
    pg.raw(t + "</table>\n");
  }

  pg.h2("Results");
  if (d.results.empty()) pg.not_measured("the run holds no results");
  for (const auto& sr : d.results) {
    pg.h3(result_label(sr) + (sr.finished ? "" : " (unfinished)"));
    std::vector<std::vector<std::string>> rows;
    for (const auto& m : sr.result.metrics())
      rows.push_back({m.name, g(m.value) + (m.unit.empty() ? "" : " " + m.unit), opt(m.stderr_),
                      m.interval ? fmt::format("[{}, {}] {:g}% {}", g(m.interval->lo), g(m.interval->hi), m.interval->level * 100, m.interval->method) : "none",
                      std::string(direction_name(m.direction)), m.aggregation});
    pg.table({"metric", "value", "stderr", "interval", "direction", "aggregation"}, rows);
  }

  pg.h2("Accuracy vs bits per weight");
  if (d.bits.empty()) pg.not_measured("no result records scheme.bits_per_weight with a ranked metric");
  for (const auto& c : d.bits) {
    pg.h3(c.regime);
    json ds = json::array();
    for (size_t i = 0; i < c.series.size(); ++i) {
      json pts = json::array();
      for (const auto& p : c.series[i].points) pts.push_back({{"x", p.x}, {"y", p.y}, {"label", p.label}});
      ds.push_back({{"label", c.series[i].name}, {"data", pts}, {"backgroundColor", color(i)}, {"borderColor", color(i)}, {"pointRadius", 6}});
    }
    pg.chart(scatter_config(ds, "bits per weight", "headline metric", false));
  }

  pg.h2("KL divergence distribution (CDF)");
  if (d.kl.empty()) pg.not_measured("no per-item \"kld\" records");
  else {
    json ds = json::array();
    std::vector<std::vector<std::string>> rows;
    for (size_t i = 0; i < d.kl.size(); ++i) {
      const auto& k = d.kl[i];
      json pts = json::array();
      for (const auto& [x, y] : k.curve) pts.push_back({{"x", x}, {"y", y}});
      ds.push_back({{"label", k.label}, {"data", pts}, {"borderColor", color(i)}, {"backgroundColor", color(i)}, {"pointRadius", 0}, {"showLine", true}});
      json marks = json::array();
      for (auto [q, v] : {std::pair{0.5, k.p50}, {0.9, k.p90}, {0.99, k.p99}, {0.999, k.p999}}) marks.push_back({{"x", v}, {"y", q}});
      ds.push_back({{"label", k.label + ": p50 / p90 / p99 / p99.9"}, {"data", marks}, {"borderColor", color(i)},
                    {"backgroundColor", color(i)}, {"pointStyle", "triangle"}, {"pointRadius", 8}, {"showLine", false}});
      rows.push_back({k.label, std::to_string(k.n), g(k.mean), g(k.p50), g(k.p90), g(k.p99), g(k.p999), g(k.max)});
    }
    pg.chart(scatter_config(ds, "KL(P_base || P_cand), nats", "fraction of tokens <= x", false));
    pg.table({"result", "tokens", "mean", "p50", "p90", "p99", "p99.9", "max"}, rows);
  }

  pg.h2("Flips against the baseline");
  if (d.flips.empty()) pg.not_measured("no baseline and candidate with per-item \"correct\" records on the same items");
  for (const auto& f : d.flips) {
    pg.h3(f.regime + " / " + f.task + ": " + f.candidate + " vs baseline " + f.baseline);
    pg.table({"", "candidate right", "candidate wrong"},
             {{"baseline right", std::to_string(f.both_right), std::to_string(f.lost) + " (lost)"},
              {"baseline wrong", std::to_string(f.gained) + " (gained)", std::to_string(f.both_wrong)}});
    pg.p(fmt::format("{} paired items; exact McNemar p = {:.4g}", f.paired, f.mcnemar_p));
    auto keys = [&](const char* what, const std::vector<std::string>& ks) {
      if (ks.empty()) return;
      std::string s = what;
      for (const auto& k : ks) s += " " + k;
      pg.p(s);
    };
    keys("lost items (first 20):", f.lost_keys);
    keys("gained items (first 20):", f.gained_keys);
  }

  pg.h2("Divergence by position");
  if (d.positions.empty()) pg.not_measured("no per-item \"agree\" / \"tf_agree\" records");
  else {
    json ds = json::array();
    size_t ci = 0;
    for (const auto& p : d.positions) {
      auto add = [&](const std::vector<double>& v, const std::string& what, bool dashed) {
        if (v.empty()) return;
        json pts = json::array();
        for (size_t i = 0; i < v.size(); ++i) pts.push_back({{"x", i}, {"y", v[i]}});
        json one = {{"label", p.label + " · " + what}, {"data", pts}, {"borderColor", color(ci)}, {"backgroundColor", color(ci)},
                    {"pointRadius", 0}, {"showLine", true}};
        if (dashed) one["borderDash"] = {6, 4};
        ds.push_back(one);
      };
      add(p.free_running, "free-running", false);
      add(p.teacher_forced, "teacher-forced", true);
      ++ci;
    }
    pg.chart(scatter_config(ds, "token position", "agreement with baseline", false));
    pg.p("The gap between the teacher-forced (dashed) and free-running curves is error compounding along the generation.");
  }

  pg.h2("Throughput and latency vs batch size");
  if (d.perf.empty()) pg.not_measured("no per-item \"batch_size\" + \"tokens_per_s\" records");
  else {
    json ds = json::array();
    std::vector<std::vector<std::string>> rows;
    for (size_t i = 0; i < d.perf.size(); ++i) {
      json tput = json::array(), lat = json::array();
      for (const auto& pt : d.perf[i].points) {
        tput.push_back({{"x", pt.batch}, {"y", pt.tokens_per_s}});
        if (pt.p50) lat.push_back({{"x", pt.batch}, {"y", *pt.p50}});
        rows.push_back({d.perf[i].label, g(pt.batch), g(pt.tokens_per_s), opt(pt.p50), opt(pt.p99)});
      }
      ds.push_back({{"label", d.perf[i].label + " · tokens/s"}, {"data", tput}, {"borderColor", color(i)}, {"backgroundColor", color(i)},
                    {"showLine", true}, {"yAxisID", "y"}});
      if (!lat.empty())
        ds.push_back({{"label", d.perf[i].label + " · latency p50 (ms)"}, {"data", lat}, {"borderColor", color(i)},
                      {"backgroundColor", color(i)}, {"borderDash", {6, 4}}, {"showLine", true}, {"yAxisID", "y1"}});
    }
    json cfg = scatter_config(ds, "batch size", "tokens/s", false);
    cfg["options"]["scales"]["y1"] = axis("latency p50 (ms)");
    cfg["options"]["scales"]["y1"]["position"] = "right";
    pg.chart(cfg);
    pg.table({"result", "batch", "tokens/s", "latency p50 (ms)", "latency p99 (ms)"}, rows);
  }

  pg.h2("Roofline");
  if (d.roofline.empty()) pg.not_measured("no per-item \"achieved_gbps\" + \"peak_gbps\" records");
  else {
    json labels = json::array(), vals = json::array();
    std::vector<std::vector<std::string>> rows;
    for (const auto& r : d.roofline) {
      labels.push_back(r.label);
      vals.push_back(100 * r.fraction());
      rows.push_back({r.label, g(r.achieved_gbps), g(r.peak_gbps), fmt::format("{:.1f}%", 100 * r.fraction())});
    }
    json cfg = {{"type", "bar"},
                {"data", {{"labels", labels}, {"datasets", json::array({{{"label", "% of measured-bandwidth roofline"}, {"data", vals}, {"backgroundColor", color(0)}}})}}},
                {"options", {{"scales", {{"y", axis("% of roofline")}}}}}};
    cfg["options"]["scales"]["y"]["min"] = 0;
    pg.chart(cfg);
    pg.table({"step", "achieved GB/s", "roofline GB/s", "fraction"}, rows);
  }

  pg.h2("What each regime misses");
  if (d.misses.empty()) pg.not_measured("the run holds no results");
  else {
    std::vector<std::vector<std::string>> rows;
    for (const auto& m : d.misses) rows.push_back({m.regime, m.task, m.candidate, m.misses.empty() ? "not stated by the evaluator" : m.misses});
    pg.table({"regime", "task", "candidate", "misses"}, rows);
  }

  pg.h2("Manifest");
  if (d.manifests.empty()) pg.not_measured("the run holds no results");
  for (size_t i = 0; i < d.manifests.size(); ++i) {
    const auto& grp = d.manifests[i];
    std::string used;
    for (const auto& u : grp.used_by) used += (used.empty() ? "" : "; ") + u;
    pg.h3(fmt::format("Manifest {} (used by: {})", i + 1, used));
    std::vector<std::vector<std::string>> rows;
    for (const auto& f : manifest_schema())
      rows.push_back({std::string(f.key), fact_text(grp.manifest.find(f.key)), f.affects_comparability ? "yes" : "no", std::string(f.description)});
    for (const auto& [k, v] : extra_fact_rows(grp.manifest)) rows.push_back({k, v, "yes (outside the schema)", ""});
    pg.table({"field", "value", "affects comparability", "description"}, rows);
  }
  return pg.finish("quantbench report " + d.run.id, chartjs);
}

}  // namespace qb::report
