// Generation: greedy decode from each model, then one teacher-forced forward of prompt + baseline
// output through both models for the per-position KL and agreement.
#include "quantbench/eval/generation.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <numeric>

#include <nlohmann/json.hpp>

#include "quantbench/core/error.h"
#include "quantbench/core/progress.h"
#include "quantbench/core/sha256.h"
#include "quantbench/eval/paired_metrics.h"
#include "quantbench/eval/text_metrics.h"
#include "quantbench/runtime/generate.h"
#include "quantbench/tokenizer/chat_template.h"

namespace qb::eval {
namespace {

// Logits of every position from prompt_len - 1 on, for prompt + continuation, in a fresh sequence.
runtime::Logits teacher_forced(runtime::Backend& be, const std::vector<int32_t>& prompt, const std::vector<int32_t>& cont) {
  runtime::Batch b;
  const auto s = be.create_sequence(int64_t(prompt.size() + cont.size()));
  for (size_t i = 0; i < prompt.size(); ++i) b.add(prompt[i], s, int64_t(i), i + 1 == prompt.size());
  for (size_t i = 0; i + 1 < cont.size(); ++i) b.add(cont[i], s, int64_t(prompt.size() + i), true);
  auto l = be.forward(b);
  be.free_sequence(s);
  return l;
}

// The text of generated ids as Hugging Face's decode gives it (ill-formed UTF-8, e.g. a character cut
// at the token limit, as U+FFFD): what the text metrics score and the records hold.
std::string text_of(const tokenizer::Tokenizer& tok, std::vector<int32_t> ids) {
  if (!ids.empty() && tok.is_eog(ids.back())) ids.pop_back();
  return tok.decode_text(ids, /*render_special=*/false);
}

double mean_of(const std::vector<double>& v) {
  return v.empty() ? 0.0 : std::accumulate(v.begin(), v.end(), 0.0) / double(v.size());
}

// The per-prompt record of the Result.
nlohmann::json item_record(const tokenizer::Tokenizer& tok, const GenPrompt& p, const GenRecord& r) {
  const auto tb = text_of(tok, r.base), tc = text_of(tok, r.cand);
  return {{"id", p.id},
          {"first_divergence", r.first_divergence},
          {"identical", r.base == r.cand},
          {"baseline_tokens", r.base.size()},
          {"candidate_tokens", r.cand.size()},
          {"rouge_l_f", rouge_l(tb, tc).fmeasure},
          {"chrf", chrf(tc, tb)},
          {"tf_kld_mean", mean_of(r.tf_kl)},
          {"baseline_text", tb},
          {"candidate_text", tc}};
}

// The hook's record: the Result's record plus the tokens and per-position values the aggregates need.
// "tf_agree" and "agree" (free-running, position by position) feed the report's divergence curves.
nlohmann::json record_state(const tokenizer::Tokenizer& tok, const GenPrompt& p, const GenRecord& r) {
  auto j = item_record(tok, p, r);
  j["base_ids"] = r.base;
  j["cand_ids"] = r.cand;
  j["tf_kl"] = r.tf_kl;
  j["tf_agree"] = r.tf_agree;
  std::vector<uint8_t> agree;
  for (size_t t = 0; t < std::max(r.base.size(), r.cand.size()); ++t)
    agree.push_back(t < r.base.size() && t < r.cand.size() && r.base[t] == r.cand[t]);
  j["agree"] = agree;
  return j;
}

GenRecord record_from_json(const nlohmann::json& j, const std::string& key) {
  GenRecord r;
  try {
    r.base = j.at("base_ids").get<std::vector<int32_t>>();
    r.cand = j.at("cand_ids").get<std::vector<int32_t>>();
    for (const auto& v : j.at("tf_kl")) r.tf_kl.push_back(v.is_number() ? v.get<double>() : std::nan(""));
    r.tf_agree = j.at("tf_agree").get<std::vector<uint8_t>>();
    r.first_divergence = j.at("first_divergence").get<size_t>();
  } catch (const nlohmann::json::exception& e) {
    fail("stored generation item '{}': {}", key, e.what());
  }
  QB_CHECK(r.tf_kl.size() == r.base.size() && r.tf_agree.size() == r.base.size(),
           "stored generation item '{}': per-position values do not match its {} tokens", key, r.base.size());
  return r;
}

}  // namespace

std::vector<GenPrompt> load_prompt_jsonl(const std::string& path, const std::string& what, const ModelPair& pair,
                                         bool use_chat, size_t limit, std::string* template_name,
                                         const std::string& raw_name,
                                         const std::function<GenPrompt(const nlohmann::json&, size_t)>& parse_row) {
  std::ifstream in(path);
  QB_CHECK(bool(in), "{}: cannot open {}", path, what);
  const auto& tok = pair.tokenizer();
  std::optional<tokenizer::ChatTemplate> tmpl;
  if (use_chat) tmpl = pair.baseline().model->chat_template();
  if (template_name) *template_name = tmpl ? tmpl->name() : raw_name;
  std::vector<GenPrompt> out;
  std::string line;
  for (size_t ln = 1; std::getline(in, line); ++ln) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      fail("{}:{}: bad JSON: {}", path, ln, e.what());
    }
    GenPrompt p = parse_row(j, ln);
    if (tmpl) {
      std::vector<tokenizer::ChatMessage> msgs = {{"user", p.text}};
      p.tokens = tok.encode(tmpl->apply(msgs, true, tok), false, true);
    } else {
      p.tokens = tok.encode(p.text, true, false);
    }
    out.push_back(std::move(p));
    if (limit > 0 && out.size() >= limit) break;
  }
  QB_CHECK(!out.empty(), "{}: no {}", path, what);
  return out;
}

std::vector<GenPrompt> load_mtbench_prompts(const std::string& path, const ModelPair& pair, bool use_chat, size_t limit,
                                            std::string* template_name) {
  return load_prompt_jsonl(path, "MT-Bench questions", pair, use_chat, limit, template_name,
                           "raw text (no chat template)", [&](const nlohmann::json& j, size_t ln) {
    QB_CHECK(j.contains("turns") && j["turns"].is_array() && !j["turns"].empty() && j["turns"][0].is_string(),
             "{}:{}: 'turns' must be a non-empty array of strings", path, ln);
    GenPrompt p;
    p.id = j.contains("question_id") ? j["question_id"].dump() : std::to_string(ln);
    p.text = j["turns"][0].get<std::string>();
    return p;
  });
}

Result evaluate_generation(ModelPair& pair, const std::vector<GenPrompt>& prompts, const std::string& regime,
                           const std::string& task_name, const std::string& dataset_sha256,
                           const std::string& prompt_template, const GenerationOptions& o,
                           std::vector<GenRecord>* records_out, nlohmann::json* extras_out) {
  QB_CHECK(!prompts.empty(), "generation: no prompts");
  QB_CHECK(o.max_new_tokens > 0 && o.bucket > 0, "generation: max_new_tokens and bucket must be positive");
  const auto& tok = pair.tokenizer();
  runtime::GenerateOptions go;
  go.stop_at_eos = o.stop_at_eos;
  go.sampler.temperature = 0;  // greedy

  std::vector<GenRecord> recs(prompts.size());
  PositionAgreement free_running;
  Manifest m;
  pair.describe(m);
  m.set("harness.task", task_name);
  m.set("harness.task_version", "1");
  m.set("harness.dataset_sha256", dataset_sha256);
  m.set("harness.items", std::to_string(prompts.size()));
  m.set("harness.shots", "0");
  m.set("harness.prompt_template_hash",
        sha256_hex(std::span(reinterpret_cast<const uint8_t*>(prompt_template.data()), prompt_template.size())) + " (" +
            prompt_template + ")");
  m.set("harness.generation", "greedy, max_new_tokens=" + std::to_string(o.max_new_tokens) +
                                  (o.stop_at_eos ? ", stop at end-of-generation tokens" : ", no stop"));
  m.set("harness.seed", "bootstrap seed " + std::to_string(o.bootstrap.seed) + " (decoding is greedy)");
  m.set("harness.batch_size", "1 (one prompt at a time)");
  std::vector<std::string> ids;
  for (const auto& p : prompts) ids.push_back(p.id);
  const auto keys = unique_item_keys(ids);
  std::map<std::string, nlohmann::json> restored;
  const std::string misses = regime == "workload" ? "comparability across reports (it is the user's own data)"
                                                  : "latency and throughput under load";
  if (o.hook && o.hook->begin) restored = o.hook->begin(regime, task_name, m, misses);
  Progress bar(regime + " " + task_name, int64_t(prompts.size()), o.progress);
  for (size_t i = 0; i < prompts.size(); ++i) {
    const auto& p = prompts[i];
    QB_CHECK(!p.tokens.empty(), "{}: prompt {} is empty", task_name, p.id);
    auto& r = recs[i];
    if (auto it = restored.find(keys[i]); it != restored.end()) {
      r = record_from_json(it->second, keys[i]);
      free_running.add(r.base, r.cand);
      bar.advance(1);
      continue;
    }
    go.max_new_tokens = p.max_tokens > 0 ? p.max_tokens : o.max_new_tokens;
    r.base = runtime::generate(*pair.baseline().backend, p.tokens, go).tokens;
    r.cand = runtime::generate(*pair.candidate().backend, p.tokens, go).tokens;
    r.first_divergence = first_divergence(r.base, r.cand);
    free_running.add(r.base, r.cand);
    if (!r.base.empty()) {
      const auto lb = teacher_forced(*pair.baseline().backend, p.tokens, r.base);
      const auto lc = teacher_forced(*pair.candidate().backend, p.tokens, r.base);
      for (size_t t = 0; t < r.base.size(); ++t) {
        const auto a = log_softmax(lb.row(t)), b = log_softmax(lc.row(t));
        r.tf_kl.push_back(kl_divergence(a, b));
        r.tf_agree.push_back(argmax(b) == size_t(r.base[t]));
      }
    }
    if (o.hook && o.hook->on_item) o.hook->on_item(keys[i], record_state(tok, p, r));
    bar.advance(1);
  }
  bar.finish();

  Result res(regime, task_name, m);
  res.set_misses(misses);

  const size_t n = prompts.size();
  std::vector<double> fd(n), rouge(n), chrf_v(n), rep_b(n), rep_c(n), identical(n);
  std::vector<double> kl_all, agree_all;
  std::vector<size_t> offsets{0};
  for (size_t i = 0; i < n; ++i) {
    const auto& r = recs[i];
    fd[i] = double(r.first_divergence);
    identical[i] = r.base == r.cand;
    const auto tb = text_of(tok, r.base), tc = text_of(tok, r.cand);
    rouge[i] = rouge_l(tb, tc).fmeasure;
    chrf_v[i] = chrf(tc, tb);
    rep_b[i] = repetition_rate(r.base);
    rep_c[i] = repetition_rate(r.cand);
    kl_all.insert(kl_all.end(), r.tf_kl.begin(), r.tf_kl.end());
    for (auto a : r.tf_agree) agree_all.push_back(a);
    offsets.push_back(kl_all.size());
  }
  auto add_mean = [&](const std::string& name, const std::vector<double>& x, Direction d, const std::string& unit = "") {
    const auto ms = mean_stats(x, o.bootstrap.level);
    auto mm = metric(name, ms.mean, d, "mean over prompts", unit);
    mm.stderr_ = ms.stderr_;
    mm.interval = bootstrap_mean_ci(x, o.bootstrap);
    res.add_metric(mm);
  };
  add_mean("first_divergence_mean", fd, Direction::HigherIsBetter, "tokens");
  res.add_metric(metric("first_divergence_median", percentile(fd, 50), Direction::HigherIsBetter, "median", "tokens"));
  res.add_metric(metric("first_divergence_p10", percentile(fd, 10), Direction::HigherIsBetter, "p10", "tokens"));
  res.add_metric(metric("first_divergence_p90", percentile(fd, 90), Direction::HigherIsBetter, "p90", "tokens"));
  add_mean("identical_output_rate", identical, Direction::HigherIsBetter);
  add_mean("rouge_l_f", rouge, Direction::HigherIsBetter);
  add_mean("chrf", chrf_v, Direction::HigherIsBetter);
  add_mean("baseline_repetition_rate", rep_b, Direction::LowerIsBetter);
  add_mean("candidate_repetition_rate", rep_c, Direction::LowerIsBetter);
  if (!kl_all.empty()) {
    const auto s = summarize_kl(kl_all, o.bootstrap.level);
    auto mm = metric("tf_kld_mean", s.mean.mean, Direction::LowerIsBetter, "mean over baseline positions", "nats");
    mm.interval = bootstrap_clustered_mean_ci(kl_all, offsets, o.bootstrap);
    res.add_metric(mm);
    res.add_metric(metric("tf_kld_p99", s.p99, Direction::LowerIsBetter, "p99", "nats"));
    res.add_metric(metric("tf_kld_max", s.max, Direction::LowerIsBetter, "max", "nats"));
    auto ma = metric("tf_agreement", std::accumulate(agree_all.begin(), agree_all.end(), 0.0) / double(agree_all.size()),
                     Direction::HigherIsBetter, "teacher-forced same next token, over baseline positions");
    ma.interval = bootstrap_clustered_mean_ci(agree_all, offsets, o.bootstrap);
    res.add_metric(ma);
  }
  // References (workload): each output against the user's reference.
  std::vector<double> ref_b, ref_c;
  for (size_t i = 0; i < n; ++i)
    if (prompts[i].reference) {
      ref_b.push_back(rouge_l(*prompts[i].reference, text_of(tok, recs[i].base)).fmeasure);
      ref_c.push_back(rouge_l(*prompts[i].reference, text_of(tok, recs[i].cand)).fmeasure);
    }
  if (!ref_b.empty()) {
    add_mean("baseline_reference_rouge_l_f", ref_b, Direction::HigherIsBetter);
    add_mean("candidate_reference_rouge_l_f", ref_c, Direction::HigherIsBetter);
  }

  // The compounding curve, by position bucket.
  nlohmann::json curve = nlohmann::json::array();
  size_t max_len = 0;
  for (const auto& r : recs) max_len = std::max({max_len, r.base.size(), r.cand.size()});
  for (size_t b0 = 0; b0 < max_len; b0 += size_t(o.bucket)) {
    const size_t b1 = b0 + size_t(o.bucket);
    double kl = 0, ag = 0, n_tf = 0, fr_agree = 0, fr_n = 0;
    for (const auto& r : recs)
      for (size_t t = b0; t < std::min(b1, r.tf_kl.size()); ++t) kl += r.tf_kl[t], ag += r.tf_agree[t], n_tf += 1;
    for (size_t t = b0; t < std::min(b1, free_running.counted.size()); ++t)
      fr_agree += double(free_running.agree[t]), fr_n += double(free_running.counted[t]);
    curve.push_back({{"positions", {b0, b1}},
                     {"tf_kld_mean", n_tf > 0 ? nlohmann::json(kl / n_tf) : nlohmann::json(nullptr)},
                     {"tf_agreement", n_tf > 0 ? nlohmann::json(ag / n_tf) : nlohmann::json(nullptr)},
                     {"free_running_agreement", fr_n > 0 ? nlohmann::json(fr_agree / fr_n) : nlohmann::json(nullptr)},
                     {"tokens_teacher_forced", n_tf}, {"tokens_free_running", fr_n}});
  }
  // The first-divergence distribution, by the same buckets ("never" when the outputs are identical).
  nlohmann::json fd_hist = nlohmann::json::object();
  for (size_t i = 0; i < n; ++i) {
    const std::string key = identical[i] ? "never" : std::to_string(recs[i].first_divergence / size_t(o.bucket) * size_t(o.bucket));
    fd_hist[key] = fd_hist.value(key, 0) + 1;
  }
  // Worst items: earliest divergence, then highest teacher-forced KL.
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  auto mean_kl = [&](size_t i) {
    return recs[i].tf_kl.empty() ? 0.0 : std::accumulate(recs[i].tf_kl.begin(), recs[i].tf_kl.end(), 0.0) / double(recs[i].tf_kl.size());
  };
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (identical[a] != identical[b]) return identical[a] < identical[b];
    if (fd[a] != fd[b]) return fd[a] < fd[b];
    return mean_kl(a) > mean_kl(b);
  });
  nlohmann::json worst = nlohmann::json::array();
  for (size_t k = 0; k < std::min(o.worst_items, n); ++k) {
    const size_t i = order[k];
    worst.push_back({{"id", prompts[i].id}, {"prompt", prompts[i].text}, {"baseline", text_of(tok, recs[i].base)},
                     {"candidate", text_of(tok, recs[i].cand)}, {"first_divergence", recs[i].first_divergence},
                     {"tf_kld_mean", mean_kl(i)}});
  }
  for (size_t i = 0; i < n; ++i) res.add_item(item_record(tok, prompts[i], recs[i]));
  if (extras_out)
    *extras_out = {{"bucket", o.bucket}, {"compounding_curve", curve}, {"first_divergence_histogram", fd_hist},
                   {"worst_items", worst}};
  if (records_out) *records_out = std::move(recs);
  return res;
}

}  // namespace qb::eval
