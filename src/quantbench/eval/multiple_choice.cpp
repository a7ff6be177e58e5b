// Multiple choice: tokenization per lm-eval, shared-context scoring with truncate_sequence, and the
// comparison of the two models item by item.
#include "quantbench/eval/multiple_choice.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "quantbench/core/error.h"
#include "quantbench/core/progress.h"
#include "quantbench/core/sha256.h"
#include "quantbench/eval/paired_metrics.h"

namespace qb::eval {
namespace {

// One context and the options that share it.
struct Unit {
  size_t item = 0;
  std::vector<int32_t> ctx;
  std::vector<std::pair<size_t, std::vector<int32_t>>> conts;  // (option index, continuation tokens)
};

std::vector<Unit> build_units(const tokenizer::Tokenizer& tok, const std::vector<McItem>& items, int64_t n_ctx_max) {
  std::vector<Unit> units;
  for (size_t i = 0; i < items.size(); ++i) {
    std::map<std::string, size_t> by_ctx;  // context text -> unit index
    for (size_t j = 0; j < items[i].options.size(); ++j) {
      std::string ctx = items[i].options[j].context, cont = items[i].options[j].continuation;
      // lm-eval _encode_pair: trailing whitespace of the context belongs to the continuation.
      const size_t last = ctx.find_last_not_of(" \t\n\r\f\v");
      const size_t keep = last == std::string::npos ? 0 : last + 1;
      cont = ctx.substr(keep) + cont;
      ctx.resize(keep);
      auto ctx_enc = tok.encode(ctx, /*add_special=*/true, /*parse_special=*/false);
      const auto whole = tok.encode(ctx + cont, true, false);
      QB_CHECK(whole.size() > ctx_enc.size(), "item {} option {}: the continuation adds no tokens", items[i].id, j);
      std::vector<int32_t> cont_enc(whole.begin() + std::ptrdiff_t(ctx_enc.size()), whole.end());
      if (ctx_enc.empty()) {  // no BOS and an empty context: lm-eval's prefix token
        QB_CHECK(tok.eos() != tokenizer::kNoToken, "item {}: empty context and no BOS/EOS to stand for it", items[i].id);
        ctx_enc.push_back(tok.bos() != tokenizer::kNoToken ? tok.bos() : tok.eos());
      }
      QB_CHECK(n_ctx_max <= 0 || int64_t(ctx_enc.size() + cont_enc.size()) <= n_ctx_max,
               "item {} option {}: {} tokens exceed the model's context of {}", items[i].id, j,
               ctx_enc.size() + cont_enc.size(), n_ctx_max);
      auto [it, fresh] = by_ctx.try_emplace(ctx, units.size());
      if (fresh) units.push_back({i, std::move(ctx_enc), {}});
      units[it->second].conts.emplace_back(j, std::move(cont_enc));
    }
  }
  return units;
}

// The per-item record of the Result; candidate_acc / baseline_acc are 0/1 so `compare` can pair items.
nlohmann::json item_record(const TaskSpec& spec, const McItem& item, const std::vector<OptionScore>& sb,
                           const std::vector<OptionScore>& sc) {
  nlohmann::json rec{{"id", item.id}, {"gold", item.gold}};
  std::vector<double> lb, lc;
  for (size_t j = 0; j < sb.size(); ++j) lb.push_back(sb[j].loglik), lc.push_back(sc[j].loglik);
  rec["baseline_loglik"] = lb;
  rec["candidate_loglik"] = lc;
  rec["baseline_pred"] = predict_acc(sb);
  rec["candidate_pred"] = predict_acc(sc);
  if (!item.group.empty()) rec["group"] = item.group;
  // 0/1 correctness as the task scores it: argmax of the summed log-likelihood, or (LAMBADA) whether
  // the whole target is the greedy continuation. mc2 has no 0/1 score, only the true-answer mass.
  if (spec.scoring == McScoring::Argmax || spec.scoring == McScoring::Greedy) {
    const bool cb = spec.scoring == McScoring::Greedy ? sb[0].greedy : predict_acc(sb) == item.gold;
    const bool cc = spec.scoring == McScoring::Greedy ? sc[0].greedy : predict_acc(sc) == item.gold;
    rec["baseline_correct"] = cb;
    rec["candidate_correct"] = cc;
    rec["baseline_acc"] = cb ? 1 : 0;
    rec["candidate_acc"] = cc ? 1 : 0;
  }
  if (spec.scoring == McScoring::Greedy) {
    rec["baseline_greedy"] = sb[0].greedy;
    rec["candidate_greedy"] = sc[0].greedy;
  }
  if (spec.scoring == McScoring::Mc2) {
    rec["n_true"] = item.n_true;
    rec["baseline_mc2"] = mc2_score(item, sb);
    rec["candidate_mc2"] = mc2_score(item, sc);
  }
  if (spec.has_acc_norm && spec.scoring == McScoring::Argmax) {
    rec["baseline_pred_norm"] = predict_acc_norm(item, sb);
    rec["candidate_pred_norm"] = predict_acc_norm(item, sc);
    rec["baseline_acc_norm"] = predict_acc_norm(item, sb) == item.gold ? 1 : 0;
    rec["candidate_acc_norm"] = predict_acc_norm(item, sc) == item.gold ? 1 : 0;
  }
  return rec;
}

nlohmann::json scores_to_json(const std::vector<OptionScore>& s) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& x : s) a.push_back({x.loglik, x.n_tokens, x.greedy});
  return a;
}

std::vector<OptionScore> scores_from_json(const nlohmann::json& rec, const char* field, const McItem& item,
                                          const std::string& key) {
  const bool ok = rec.is_object() && rec.contains(field) && rec[field].is_array() && rec[field].size() == item.options.size();
  QB_CHECK(ok, "stored multiple-choice item '{}': '{}' missing or not {} option scores", key, field, item.options.size());
  std::vector<OptionScore> out;
  for (const auto& e : rec[field]) {
    QB_CHECK(e.is_array() && e.size() == 3 && e[0].is_number() && e[1].is_number_unsigned() && e[2].is_boolean(),
             "stored multiple-choice item '{}': malformed option score {}", key, e.dump());
    out.push_back({e[0].get<double>(), e[1].get<size_t>(), e[2].get<bool>()});
  }
  return out;
}

}  // namespace

std::vector<std::vector<OptionScore>> score_items(runtime::Backend& be, const tokenizer::Tokenizer& tok,
                                                  const std::vector<McItem>& items, const McScoreOptions& o) {
  QB_CHECK(o.batch >= 1, "multiple choice: batch must be >= 1, got {}", o.batch);
  const auto units = build_units(tok, items, be.spec().n_ctx_train);
  std::vector<std::vector<OptionScore>> out(items.size());
  for (size_t i = 0; i < items.size(); ++i) out[i].resize(items[i].options.size());
  Progress bar(o.label, int64_t(units.size()), o.progress);
  for (size_t u0 = 0; u0 < units.size(); u0 += size_t(o.batch)) {
    const size_t u1 = std::min(units.size(), u0 + size_t(o.batch));
    std::vector<runtime::SeqId> seqs;
    runtime::Batch b;
    for (size_t u = u0; u < u1; ++u) {
      seqs.push_back(be.create_sequence(0));
      b.add_sequence(units[u].ctx, seqs.back(), 0);
    }
    const auto lctx = be.forward(b);
    std::vector<std::vector<double>> last(u1 - u0);
    for (size_t u = u0; u < u1; ++u) last[u - u0] = log_softmax(lctx.row(u - u0));
    size_t max_opts = 0;
    for (size_t u = u0; u < u1; ++u) max_opts = std::max(max_opts, units[u].conts.size());
    for (size_t j = 0; j < max_opts; ++j) {
      runtime::Batch bj;
      std::vector<size_t> who;
      for (size_t u = u0; u < u1; ++u) {
        if (j >= units[u].conts.size()) continue;
        const auto& c = units[u].conts[j].second;
        const auto s = seqs[u - u0];
        const int64_t start = int64_t(units[u].ctx.size());
        // Logits for every continuation token but the last: they predict the next one.
        if (c.size() > 1)
          for (size_t t = 0; t < c.size(); ++t) bj.add(c[t], s, start + int64_t(t), t + 1 < c.size());
        who.push_back(u);
      }
      runtime::Logits lj;
      if (!bj.tokens.empty()) lj = be.forward(bj);
      size_t row = 0;
      for (size_t u : who) {
        const auto& [opt, c] = units[u].conts[j];
        OptionScore sc;
        sc.n_tokens = c.size();
        sc.loglik = last[u - u0][size_t(c[0])];
        sc.greedy = argmax(last[u - u0]) == size_t(c[0]);
        for (size_t t = 1; t < c.size(); ++t, ++row) {
          const auto lp = log_softmax(lj.row(row));
          sc.loglik += lp[size_t(c[t])];
          sc.greedy = sc.greedy && argmax(lp) == size_t(c[t]);
        }
        out[units[u].item][opt] = sc;
        if (c.size() > 1) be.truncate_sequence(seqs[u - u0], int64_t(units[u].ctx.size()));
      }
    }
    for (auto s : seqs) be.free_sequence(s);
    bar.advance(int64_t(u1 - u0));
  }
  bar.finish();
  return out;
}

size_t predict_acc(const std::vector<OptionScore>& s) {
  std::vector<double> v;
  for (const auto& x : s) v.push_back(x.loglik);
  return argmax(v);
}

size_t predict_acc_norm(const McItem& item, const std::vector<OptionScore>& s) {
  std::vector<double> v;
  for (size_t j = 0; j < s.size(); ++j) v.push_back(s[j].loglik / double(std::max<size_t>(1, item.options[j].choice_chars)));
  return argmax(v);
}

double mc2_score(const McItem& item, const std::vector<OptionScore>& s) {
  QB_CHECK(item.n_true > 0 && item.n_true < s.size(), "item {}: mc2 needs true and false options ({} true of {})",
           item.id, item.n_true, s.size());
  // lm-eval divides exp(ll) sums directly; shifting by the max first gives the same ratio without
  // underflowing to 0/0 when every option is very unlikely.
  double mx = s[0].loglik;
  for (const auto& x : s) mx = std::max(mx, x.loglik);
  double t = 0, all = 0;
  for (size_t j = 0; j < s.size(); ++j) {
    const double p = std::exp(s[j].loglik - mx);
    all += p;
    if (j < item.n_true) t += p;
  }
  return t / all;
}

Result evaluate_multiple_choice(ModelPair& pair, const LoadedTask& task, const McOptions& o, nlohmann::json* extras_out) {
  const auto& spec = *task.spec;
  const auto& items = task.items;
  Manifest m;
  pair.describe(m);
  m.set("harness.task", spec.name);
  m.set("harness.task_version", spec.version);
  m.set("harness.dataset_sha256", task.dataset_sha256 + (task.is_slice ? " (a slice: not the pinned full file " +
                                                                              spec.full_sha256 + ")" : ""));
  m.set("harness.items", std::to_string(items.size()));
  m.set("harness.shots", std::to_string(spec.shots) + (spec.shots > 0 ? " (the first dev rows, in file order)" : ""));
  const std::string tmpl = spec.prompt_template + "; BOS " + (pair.tokenizer().add_bos() ? "prepended" : "not prepended");
  m.set("harness.prompt_template_hash",
        sha256_hex(std::span(reinterpret_cast<const uint8_t*>(tmpl.data()), tmpl.size())) + " (" + tmpl + ")");
  m.set("harness.generation", "none (log-likelihood scoring)");
  m.set("harness.seed", "none (deterministic)");
  m.set("harness.batch_size", std::to_string(o.batch) + " items per forward");
  if (!spec.notes.empty()) m.set("harness.task_notes", spec.notes);

  const std::string misses = "compounding error in long generations, code, OOD behaviour";
  std::vector<std::vector<OptionScore>> sb, sc;
  McScoreOptions so{o.batch, o.progress, spec.name + " baseline"};
  if (!o.hook) {
    sb = score_items(*pair.baseline().backend, pair.tokenizer(), items, so);
    so.label = spec.name + " candidate";
    sc = score_items(*pair.candidate().backend, pair.tokenizer(), items, so);
  } else {
    // Item by item (in chunks of `batch`), both models, so each item is complete -- and kept -- as soon
    // as possible; stored items are restored.
    std::vector<std::string> ids;
    for (const auto& it : items) ids.push_back(it.id);
    const auto keys = unique_item_keys(ids);
    std::map<std::string, nlohmann::json> restored;
    if (o.hook->begin) restored = o.hook->begin("multiple_choice", spec.name, m, misses);
    sb.resize(items.size());
    sc.resize(items.size());
    so.progress = false;
    Progress bar(spec.name, int64_t(items.size()), o.progress);
    for (size_t i0 = 0; i0 < items.size();) {
      if (auto it = restored.find(keys[i0]); it != restored.end()) {
        sb[i0] = scores_from_json(it->second, "baseline_scores", items[i0], keys[i0]);
        sc[i0] = scores_from_json(it->second, "candidate_scores", items[i0], keys[i0]);
        ++i0;
        bar.advance(1);
        continue;
      }
      size_t i1 = i0;
      while (i1 < items.size() && i1 - i0 < size_t(o.batch) && !restored.count(keys[i1])) ++i1;
      const std::vector<McItem> chunk(items.begin() + std::ptrdiff_t(i0), items.begin() + std::ptrdiff_t(i1));
      auto cb = score_items(*pair.baseline().backend, pair.tokenizer(), chunk, so);
      auto cc = score_items(*pair.candidate().backend, pair.tokenizer(), chunk, so);
      for (size_t i = i0; i < i1; ++i) {
        sb[i] = std::move(cb[i - i0]);
        sc[i] = std::move(cc[i - i0]);
        if (o.hook->on_item) {
          auto rec = item_record(spec, items[i], sb[i], sc[i]);
          rec["baseline_scores"] = scores_to_json(sb[i]);
          rec["candidate_scores"] = scores_to_json(sc[i]);
          o.hook->on_item(keys[i], rec);
        }
      }
      bar.advance(int64_t(i1 - i0));
      i0 = i1;
    }
    bar.finish();
  }

  Result r("multiple_choice", spec.name, m);
  r.set_misses(misses);
  const size_t n = items.size();
  // A 0/1 score per item and model: accuracies, the paired difference, flips both ways, McNemar.
  auto add_binary = [&](const std::string& name, const std::vector<uint8_t>& cb, const std::vector<uint8_t>& cc) {
    add_paired_binary_metrics(r, cb, cc, o.level, PairedBinaryNames::prefixed(name, /*with_flip_rate=*/true));
  };
  std::vector<uint8_t> acc_b(n), acc_c(n);  // kept for the per-group table
  if (spec.scoring == McScoring::Argmax) {
    for (int norm = 0; norm < (spec.has_acc_norm ? 2 : 1); ++norm) {
      std::vector<uint8_t> cb(n), cc(n);
      for (size_t i = 0; i < n; ++i) {
        cb[i] = (norm ? predict_acc_norm(items[i], sb[i]) : predict_acc(sb[i])) == items[i].gold;
        cc[i] = (norm ? predict_acc_norm(items[i], sc[i]) : predict_acc(sc[i])) == items[i].gold;
      }
      if (!norm) acc_b = cb, acc_c = cc;
      add_binary(norm ? "acc_norm" : "acc", cb, cc);
    }
  } else if (spec.scoring == McScoring::Greedy) {
    std::vector<double> llb(n), llc(n);
    for (size_t i = 0; i < n; ++i) {
      QB_CHECK(sb[i].size() == 1, "{}: item {} has {} options; greedy scoring takes one", spec.name, items[i].id, sb[i].size());
      acc_b[i] = sb[i][0].greedy;
      acc_c[i] = sc[i][0].greedy;
      llb[i] = sb[i][0].loglik;
      llc[i] = sc[i][0].loglik;
    }
    add_binary("acc", acc_b, acc_c);
    // lm-eval's perplexity aggregation: exp(-mean over items of the target's summed log-likelihood).
    const auto mb = mean_stats(llb, o.level), mc = mean_stats(llc, o.level);
    r.add_metric(metric("baseline_perplexity", std::exp(-mb.mean), Direction::LowerIsBetter, "exp(-mean target loglik)"));
    r.add_metric(metric("candidate_perplexity", std::exp(-mc.mean), Direction::LowerIsBetter, "exp(-mean target loglik)"));
    const auto pd = paired_difference(llb, llc, o.level);
    auto md = metric("ln_perplexity_ratio", -pd.mean, Direction::LowerIsBetter,
                     "ln(candidate ppl / baseline ppl) = -mean(candidate - baseline loglik)", "nats");
    md.stderr_ = pd.stderr_;
    md.interval = {-pd.ci.hi, -pd.ci.lo, pd.ci.level, pd.ci.method};
    r.add_metric(md);
  } else {  // Mc2
    std::vector<double> db(n), dc(n);
    for (size_t i = 0; i < n; ++i) db[i] = mc2_score(items[i], sb[i]), dc[i] = mc2_score(items[i], sc[i]);
    for (int who = 0; who < 2; ++who) {
      const auto ms = mean_stats(who ? dc : db, o.level);
      auto mm = metric((who ? "candidate_" : "baseline_") + std::string("mc2"), ms.mean, Direction::HigherIsBetter,
                       "mean of the normalized probability mass on the true answers");
      mm.stderr_ = ms.stderr_;
      mm.interval = ms.ci;
      r.add_metric(mm);
    }
    const auto pd = paired_difference(db, dc, o.level);
    auto md = metric("mc2_difference", pd.mean, Direction::HigherIsBetter, "mean(candidate - baseline)");
    md.stderr_ = pd.stderr_;
    md.interval = pd.ci;
    r.add_metric(md);
  }
  // The argmax over options can only change when there are options to choose from: a one-continuation
  // task (LAMBADA: is the greedy continuation the target?) would always report 0 here, which reads as
  // "no answer changed" while its accuracy moved. Its flips say what changed.
  bool has_choices = false;
  for (const auto& it : items) has_choices |= it.options.size() > 1;
  if (has_choices) {
    size_t changed = 0;
    for (size_t i = 0; i < n; ++i) changed += predict_acc(sb[i]) != predict_acc(sc[i]);
    auto w = wilson(changed, n, o.level);
    auto mm = metric("answer_changed_rate", w.rate, Direction::LowerIsBetter, "proportion (acc argmax differs)");
    mm.interval = w.ci;
    r.add_metric(mm);
  }
  if (extras_out) {
    // Per group (MMLU subject): items, both accuracies and the flips, from the same 0/1 scores.
    nlohmann::json groups = nlohmann::json::object();
    for (size_t i = 0; i < n; ++i) {
      if (items[i].group.empty() || spec.scoring == McScoring::Mc2) continue;
      auto& g = groups[items[i].group];
      if (g.is_null()) g = {{"items", 0}, {"baseline_correct", 0}, {"candidate_correct", 0},
                            {"flips_correct_to_wrong", 0}, {"flips_wrong_to_correct", 0}};
      g["items"] = g["items"].get<size_t>() + 1;
      g["baseline_correct"] = g["baseline_correct"].get<size_t>() + acc_b[i];
      g["candidate_correct"] = g["candidate_correct"].get<size_t>() + acc_c[i];
      g["flips_correct_to_wrong"] = g["flips_correct_to_wrong"].get<size_t>() + (acc_b[i] && !acc_c[i]);
      g["flips_wrong_to_correct"] = g["flips_wrong_to_correct"].get<size_t>() + (!acc_b[i] && acc_c[i]);
    }
    for (auto& [k, g] : groups.items()) {
      g["baseline_acc"] = g["baseline_correct"].get<double>() / g["items"].get<double>();
      g["candidate_acc"] = g["candidate_correct"].get<double>() / g["items"].get<double>();
    }
    *extras_out = nlohmann::json::object();
    if (!groups.empty()) (*extras_out)["per_group"] = std::move(groups);
  }
  for (size_t i = 0; i < n; ++i) r.add_item(item_record(spec, items[i], sb[i], sc[i]));
  return r;
}

}  // namespace qb::eval
