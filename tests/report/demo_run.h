// A synthetic run that feeds every section of the report. All numbers are fake (simple formulas in
// this file), chosen only so each chart has something to draw; none is a measurement. Some labels
// carry HTML/script injection attempts, so every render test is also an escaping test.
#pragma once
#include <cmath>
#include <string>

#include "fake_results.h"
#include "quantbench/report/store.h"

namespace qb::report::test {

inline const char* kEvilTask = "<script>document.body.dataset.pwned='task'</script>";
inline const char* kEvilCandidate = "q4\"><img src=x onerror=\"document.body.dataset.pwned='img'\">";
inline const char* kEvilKey = "</script><script>document.body.dataset.pwned='key'</script>";

// Writes the demo run into dir and returns nothing; load it back with RunStore::open.
inline void make_demo_run(const std::string& dir) {
  RunStore s = RunStore::create(dir, "# fake plan\n");
  const Manifest base = fake_manifest("none", "16");
  const Manifest q8 = fake_manifest("q8_0", "8.5");
  Manifest q4 = fake_manifest("q4_0", "4.5");
  q4.set("model.source_file", "<iframe src=x></iframe>.gguf");

  // Multiple choice: baseline, q8 and q4 on the same 24 items (correctness patterns are arbitrary).
  struct Cand { const char* label; const Manifest* m; int mod; double acc; };
  for (const Cand& c : {Cand{"baseline", &base, 7, 0.80}, Cand{"q8", &q8, 5, 0.78}, Cand{kEvilCandidate, &q4, 3, 0.66}}) {
    const int64_t id = s.begin_result("multiple_choice", kEvilTask, c.label, *c.m, "compounding error in long generations <b>");
    for (int i = 0; i < 24; ++i) {
      const std::string key = i == 0 ? std::string(kEvilKey) : "item-" + std::to_string(i);
      s.append_item(id, key, {{"correct", i % c.mod != 0}});
    }
    s.finish_result(id, {metric("acc", c.acc, Direction::HigherIsBetter, 0.05)});
  }
  // Perplexity + KL: per-token KL arrays (fake: a smooth ramp scaled by the scheme).
  for (const Cand& c : {Cand{"q8", &q8, 1, 0}, Cand{"q4", &q4, 4, 0}}) {
    const int64_t id = s.begin_result("perplexity_kld", "wiki", c.label, *c.m, "tail behaviour on rare inputs");
    for (int w = 0; w < 10; ++w) {
      nlohmann::json kl = nlohmann::json::array();
      for (int t = 0; t < 100; ++t) kl.push_back(0.001 * c.mod * std::pow(1.05, (w * 100 + t) % 97));
      s.append_item(id, "window-" + std::to_string(w), {{"kld", kl}});
    }
    s.finish_result(id, {metric("kld_mean", 0.01 * c.mod, Direction::LowerIsBetter, 0.001)});
  }
  // Long-form generation: agreement by position, free-running decays faster than teacher-forced.
  {
    const int64_t id = s.begin_result("long_form", "prompts", "q4", q4, "latency and throughput under load");
    for (int p = 0; p < 5; ++p) {
      nlohmann::json f = nlohmann::json::array(), t = nlohmann::json::array();
      for (int i = 0; i < 64; ++i) {
        f.push_back(i < 20 + 8 * p ? 1 : 0);
        t.push_back((i + p) % 11 == 0 ? 0 : 1);
      }
      s.append_item(id, "prompt-" + std::to_string(p), {{"agree", f}, {"tf_agree", t}});
    }
    s.finish_result(id, {metric("token_agreement", 0.6, Direction::HigherIsBetter, 0.02)});
  }
  // Performance: throughput and latency at four batch sizes, and two roofline steps.
  {
    const int64_t id = s.begin_result("performance", "decode", "q4", q4, "");
    for (int b : {1, 2, 4, 8})
      s.append_item(id, "batch-" + std::to_string(b),
                    {{"batch_size", b}, {"tokens_per_s", 100.0 * b / (1 + 0.1 * b)}, {"latency_ms_p50", 10.0 + b}, {"latency_ms_p99", 15.0 + 2 * b}});
    s.append_item(id, "roof-decode", {{"roofline_label", "decode step <i>"}, {"achieved_gbps", 2400.0}, {"peak_gbps", 3000.0}});
    s.append_item(id, "roof-prefill", {{"roofline_label", "qgemv"}, {"achieved_gbps", 1500.0}, {"peak_gbps", 3000.0}});
    s.finish_result(id, {metric("decode_tokens_per_s", 444, Direction::HigherIsBetter)});
  }
  s.set_status("complete");
}

}  // namespace qb::report::test
