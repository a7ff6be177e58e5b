// run_plan: the steps in order (artifacts, eval regimes per candidate, bench, report), each skipped
// when the store already holds it finished, each eval item stored as it completes.
#include "quantbench/plan/run_plan.h"

#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include <fmt/format.h>

#include "quantbench/bench/bandwidth_probe.h"
#include "quantbench/bench/decode_bench.h"
#include "quantbench/core/error.h"
#include "quantbench/core/read_file.h"
#include "quantbench/core/mapped_file.h"
#include "quantbench/core/sha256.h"
#include "quantbench/eval/code.h"
#include "quantbench/eval/generation.h"
#include "quantbench/eval/item_hook.h"
#include "quantbench/eval/math_task.h"
#include "quantbench/eval/model_pair.h"
#include "quantbench/eval/multiple_choice.h"
#include "quantbench/eval/perplexity.h"
#include "quantbench/eval/workload.h"
#include "quantbench/formats/gguf_reader.h"
#include "quantbench/model/model.h"
#include "quantbench/quant/calibration_data.h"
#include "quantbench/quant/quantize_model.h"
#include "quantbench/quant/scheme.h"
#include "quantbench/quant/writers/gguf_output.h"
#include "quantbench/report/render_html.h"
#include "quantbench/report/render_markdown.h"
#include "quantbench/report/store.h"
#include "quantbench/runtime/cpu/cpu_backend.h"
#include "quantbench/tokenizer/tokenizer.h"

namespace qb::plan {
namespace {

namespace fs = std::filesystem;

void write_text(const std::string& path, const std::string& text) {
  AtomicFileWriter w(path);
  w.write(text.data(), text.size());
  w.commit();
}

// The quantbench.* metadata a quantized file carries, as Manifest facts without the prefix (none for a
// Hugging Face directory: quantbench writes its quantized models as GGUF).
Manifest file_meta(const model::Model& model) {
  Manifest m;
  if (!model.gguf()) return m;
  const formats::GgufFile& f = *model.gguf();
  for (const auto& [k, v] : f.metadata()) {
    if (!k.starts_with("quantbench.") || v.type != formats::GgufValueType::STRING) continue;
    const std::string key = k.substr(11), val = f.get_string(k);
    if (val.starts_with("unknown: ")) m.set_unknown(key, val.substr(9));
    else m.set(key, val);
  }
  return m;
}

Manifest model_facts(const std::string& path) {
  eval::LoadedModel lm;
  lm.path = path;
  lm.model = model::Model::load(path);
  lm.sha256 = lm.model->sha256();
  Manifest m;
  eval::describe_model(m, "model.", lm);
  return m;
}

struct Runner {
  Runner(const Plan& p, const RunOptions& o, report::RunStore s) : plan(p), opt(o), store(std::move(s)) {}
  const Plan& plan;
  const RunOptions& opt;
  report::RunStore store;
  std::set<std::string> finished;  // "regime\ntask\ncandidate"
  Manifest baseline_facts;
  RunSummary summary;
  size_t step = 0, n_steps = 0;

  static std::string fkey(const std::string& r, const std::string& t, const std::string& c) { return r + "\n" + t + "\n" + c; }

  void log(const std::string& s) const {
    if (opt.log) opt.log(s);
    else std::fprintf(stderr, "%s\n", s.c_str());
  }

  void refresh_finished() {
    finished.clear();
    for (const auto& sr : store.load_results())
      if (sr.finished) finished.insert(fkey(sr.result.regime(), sr.result.task(), sr.candidate));
  }

  // Returns true when the step must run; logs either way.
  bool start_step(const std::string& regime, const std::string& task, const std::string& cand) {
    ++step;
    const bool done = finished.count(fkey(regime, task, cand)) > 0;
    log(fmt::format("[{}/{}] {} / {} / {}{}", step, n_steps, regime, task, cand, done ? ": done earlier, skipped" : ""));
    if (done) ++summary.steps_skipped;
    else ++summary.steps_run;
    return !done;
  }

  // ---- artifacts ----

  std::string artifact_path(const CandidatePlan& c) const { return store.artifacts_dir() + "/" + c.name + ".gguf"; }

  std::string candidate_file(const CandidatePlan& c) {
    if (!c.model.empty()) return c.model;
    const std::string out = artifact_path(c);
    if (fs::exists(out)) {  // written atomically: present means complete
      log(fmt::format("quantize {}: reusing {}", c.name, out));
      return out;
    }
    const auto t0 = std::chrono::steady_clock::now();
    const auto methods = quant::builtin_methods();
    const quant::Scheme scheme = quant::load_scheme(c.scheme, methods);
    std::shared_ptr<const formats::GgufFile> file = formats::GgufFile::open(plan.baseline);
    auto model = model::Model::load(file);
    quant::CalibrationData cd;
    if (c.calibration) {
      const auto tok = tokenizer::Tokenizer::from_gguf(*file);
      cd = quant::load_calibration({c.calibration->text, c.calibration->samples, c.calibration->seq_len, c.calibration->seed}, tok);
    }
    quant::QuantizeOptions qo;
    qo.calibration = c.calibration ? &cd.samples : nullptr;
    qo.n_threads = plan.threads;
    qo.progress = opt.progress;
    const auto qm = quant::quantize_model(model, scheme, methods, qo);
    Manifest mf = qm.manifest;
    for (const auto& [k, v] : cd.facts) mf.set(k, v);
    if (!c.calibration) mf.set("calibration.dataset", "none");
    quant::write_quantized_gguf(qm, mf, out);
    log(fmt::format("quantize {}: scheme {}, {:.4f} bits/weight -> {} ({:.1f} s)", c.name, scheme.source, qm.bpw_all, out,
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()));
    return out;
  }

  // ---- eval ----

  // Runs one evaluator call with a hook bound to the store; stores its metrics when it returns.
  template <typename Fn>
  void evaluate(const std::string& cand, const Manifest& cand_meta, Fn&& fn) {
    int64_t id = -1;
    eval::ItemHook hook;
    hook.begin = [&](const std::string& regime, const std::string& task, const Manifest& m, const std::string& misses) {
      id = store.begin_result(regime, task, cand, candidate_manifest(m, baseline_facts, cand_meta), misses);
      auto stored = store.item_records(id);
      if (!stored.empty()) log(fmt::format("  resuming: {} items stored earlier are restored, not recomputed", stored.size()));
      return stored;
    };
    hook.on_item = [&](const std::string& key, const nlohmann::json& rec) { store.append_item(id, key, rec); };
    const Result r = fn(&hook);
    QB_CHECK(id >= 0, "internal: the evaluator did not begin its result");
    store.finish_result(id, r.metrics());
  }

  // For evaluators without an ItemHook (code, scored generation tasks): the step runs as a whole and
  // its result is stored when it returns, so a kill mid-step recomputes that step (and only it).
  void store_whole(const std::string& cand, const Manifest& cand_meta, const Result& r) {
    const int64_t id = store.begin_result(r.regime(), r.task(), cand, candidate_manifest(r.manifest(), baseline_facts, cand_meta),
                                          r.misses());
    std::vector<std::string> ids;
    for (size_t i = 0; i < r.items().size(); ++i) {
      const auto& rec = r.items()[i];
      std::string k = std::to_string(i);
      for (const char* f : {"task_id", "id"})
        if (rec.is_object() && rec.contains(f)) {
          k = rec[f].is_string() ? rec[f].get<std::string>() : rec[f].dump();
          break;
        }
      ids.push_back(k);
    }
    const auto keys = eval::unique_item_keys(ids);
    for (size_t i = 0; i < r.items().size(); ++i) store.append_item(id, keys[i], r.items()[i]);
    store.finish_result(id, r.metrics());
  }

  std::optional<eval::PythonSandbox> sandbox;  // made (and self-tested) by the first code step

  void run_regime(const RegimePlan& rp, const CandidatePlan& c, const std::string& cand_path,
                  std::unique_ptr<eval::ModelPair>& pair, Manifest& cand_meta) {
    auto ensure_pair = [&] {
      if (!pair) {
        eval::ModelPairOptions po;
        po.threads = plan.threads;
        pair = std::make_unique<eval::ModelPair>(plan.baseline, cand_path, po);
        cand_meta = file_meta(*pair->candidate().model);
      }
    };
    const eval::BootstrapSpec bs{plan.resamples, plan.seed, 0.95};
    if (rp.name == "perplexity") {
      const std::string name = fs::path(rp.text).filename().string();
      if (!start_step("perplexity", "perplexity:" + name, c.name)) return;
      ensure_pair();
      const std::string text = read_file(rp.text);
      const auto sha = sha256_hex(std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
      eval::PerplexityOptions o;
      o.convention = eval::parse_convention(rp.convention);
      o.n_ctx = rp.ctx;
      o.batch = rp.batch;
      o.top_k = rp.top_k;
      o.max_windows = rp.limit;
      o.bootstrap = bs;
      o.progress = opt.progress;
      evaluate(c.name, cand_meta, [&](const eval::ItemHook* h) {
        o.hook = h;
        return eval::evaluate_perplexity(*pair, {text}, name, sha, o);
      });
    } else if (rp.name == "multiple_choice") {
      for (const auto& t : rp.tasks) {
        const std::string task = eval::find_task(t).name;
        if (!start_step("multiple_choice", task, c.name)) continue;
        ensure_pair();
        const auto loaded = eval::load_task(t, rp.data_dir, size_t(rp.limit));
        eval::McOptions o;
        o.batch = rp.batch;
        o.progress = opt.progress;
        evaluate(c.name, cand_meta, [&](const eval::ItemHook* h) {
          o.hook = h;
          return eval::evaluate_multiple_choice(*pair, loaded, o);
        });
      }
    } else if (rp.name == "code") {
      for (const auto& t : rp.tasks) {
        if (!start_step("code", t, c.name)) continue;
        ensure_pair();
        if (!sandbox) sandbox.emplace(eval::default_code_sandbox_config());
        const auto task = eval::load_code_task(t, rp.data_dir, size_t(rp.limit));
        eval::CodeOptions o;
        o.max_new_tokens = rp.max_tokens;
        o.max_length = rp.ctx;
        o.progress = opt.progress;
        store_whole(c.name, cand_meta, eval::evaluate_code(*pair, task, *sandbox, o));
      }
    } else if (rp.name == "generation" && !rp.tasks.empty()) {
      for (const auto& t : rp.tasks) {
        if (!start_step("generation", t, c.name)) continue;
        ensure_pair();
        const auto task = eval::load_gen_task(t, rp.data_dir, size_t(rp.limit));
        eval::GenTaskOptions o;
        o.max_new_tokens = rp.max_tokens;
        o.progress = opt.progress;
        store_whole(c.name, cand_meta, eval::evaluate_gen_task(*pair, task, o));
      }
      if (rp.runs_prompts()) {  // explicit prompts beside the tasks, as eval does
        RegimePlan prompts_only = rp;
        prompts_only.tasks.clear();
        run_regime(prompts_only, c, cand_path, pair, cand_meta);
      }
    } else if (rp.name == "generation" || rp.name == "workload") {
      const bool wl = rp.name == "workload";
      const std::string path = wl ? rp.file : (rp.prompts.empty() ? rp.data_dir + "/mtbench/question.jsonl" : rp.prompts);
      const std::string task = wl ? "workload:" + fs::path(path).filename().string()
                                  : (rp.prompts.empty() ? "mtbench_first_turn" : "generation:" + fs::path(path).filename().string());
      if (!start_step(rp.name, task, c.name)) return;
      ensure_pair();
      const bool chat = rp.chat && pair->baseline().model->chat_template_source().has_value();
      std::string tmpl;
      const auto prompts = wl || !rp.prompts.empty() ? eval::load_workload(path, *pair, chat, size_t(rp.limit), &tmpl)
                                                      : eval::load_mtbench_prompts(path, *pair, chat, size_t(rp.limit), &tmpl);
      eval::GenerationOptions o;
      o.max_new_tokens = rp.max_tokens;
      o.progress = opt.progress;
      o.bootstrap = bs;
      evaluate(c.name, cand_meta, [&](const eval::ItemHook* h) {
        o.hook = h;
        return eval::evaluate_generation(*pair, prompts, rp.name, task, sha256_file(path), tmpl, o);
      });
    } else {
      fail("{}:{}: regime '{}' has no runner in this build", plan.path, rp.line, rp.name);
    }
  }

  // ---- bench ----

  std::optional<bench::BandwidthResult> bandwidth;
  // Baseline decode tok/s per batch size: (min, median, max) over reps, read back from the store.
  std::map<int64_t, std::array<double, 3>> baseline_decode() const {
    std::map<int64_t, std::array<double, 3>> out;
    for (const auto& sr : store.load_results()) {
      if (sr.result.regime() != "bench" || sr.candidate != plan.baseline_label || !sr.finished) continue;
      for (const auto& rec : sr.result.items()) {
        if (!rec.contains("batch") || !rec.contains("decode_tok_s")) continue;
        const auto& d = rec["decode_tok_s"];
        out[rec["batch"].get<int64_t>()] = {d.value("min", 0.0), d.value("median", 0.0), d.value("max", 0.0)};
      }
    }
    return out;
  }

  void run_bench(const std::string& label, const std::string& path, bool is_baseline) {
    if (!start_step("bench", "decode", label)) return;
    const BenchPlan& b = *plan.bench;
    bench::DecodeBenchOptions o;
    o.batch_sizes = b.batch_sizes;
    o.prompt_len = b.prompt_len;
    o.gen_len = b.gen_len;
    o.reps = b.reps;
    o.warmup = b.warmup;
    o.seed = b.seed;
    auto model = model::Model::load(path);
    bench::validate_options(o, model->spec());
    runtime::cpu::CpuBackendOptions bo;
    bo.n_threads = plan.threads;
    runtime::cpu::CpuBackend backend(model, bo);
    const auto run = bench::run_decode_bench(backend, *model, o, opt.progress);
    if (!bandwidth) {  // once per invocation: the same roofline for every model of the run
      bench::BandwidthOptions bwo;
      bwo.buffer_bytes = size_t(b.bandwidth_mib) << 20;
      bwo.threads = plan.threads;
      bandwidth = bench::measure_bandwidth(bwo);
    }
    bench::BenchContext ctx{path, model->sha256(), plan.threads > 0 ? plan.threads : bandwidth->threads};
    Result r = bench::make_bench_result(run, *bandwidth, *model, backend, ctx);
    Manifest m = r.manifest();
    if (!is_baseline) m = candidate_manifest(m, baseline_facts, file_meta(*model));
    std::vector<Metric> metrics = r.metrics();
    if (!is_baseline) {
      const auto base = baseline_decode();
      bool headline = false;
      for (const auto& bt : run.batches) {
        auto it = base.find(bt.batch);
        if (it == base.end() || it->second[1] <= 0 || it->second[0] <= 0) continue;
        std::vector<double> v = bt.decode_tok_s;
        std::sort(v.begin(), v.end());
        const double med = bench::percentile(v, 50);
        Metric s;
        s.name = fmt::format("b{}_decode_speedup", bt.batch);
        s.value = med / it->second[1];
        s.interval = Interval{v.front() / it->second[2], v.back() / it->second[0], 1.0,
                              "range over reps: slowest candidate / fastest baseline .. fastest / slowest"};
        s.direction = Direction::HigherIsBetter;
        s.aggregation = "ratio of medians over reps (candidate / baseline)";
        s.unit = "x";
        if (!headline) {  // the first batch size of the plan is the headline
          Metric h = s;
          h.name = "decode_speedup";
          metrics.push_back(h);
          headline = true;
        }
        metrics.push_back(s);
      }
    }
    const int64_t id = store.begin_result("bench", "decode", label, m, r.misses());
    for (const auto& rec0 : r.items()) {
      nlohmann::json rec = rec0;
      // The fields the report's throughput and roofline charts read.
      rec["batch_size"] = rec["batch"];
      rec["tokens_per_s"] = rec["decode_tok_s"]["median"];
      rec["latency_ms_p50"] = rec["tpot_s"]["p50"].get<double>() * 1000;
      rec["latency_ms_p99"] = rec["tpot_s"]["p99"].get<double>() * 1000;
      rec["roofline_label"] = fmt::format("decode b={}", rec["batch"].get<int64_t>());
      rec["peak_gbps"] = bandwidth->read.median;
      store.append_item(id, fmt::format("batch:{}", rec["batch"].get<int64_t>()), rec);
    }
    store.finish_result(id, metrics);
  }
};

std::string default_out(const Plan& p) {
  std::string s;
  for (char ch : p.name) s += (std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_' || ch == '.') ? ch : '_';
  return "runs/" + s;
}

}  // namespace

namespace {

// "ENGINE; matmul: KERNELS...; weights: ..." -> ENGINE (backend, ISA, threads): what the scheme does not decide.
std::string engine_part(const std::string& describe) {
  const size_t p = describe.find("; matmul:");
  return p == std::string::npos ? describe : describe.substr(0, p);
}

}  // namespace

Manifest candidate_manifest(const Manifest& evaluated, const Manifest& baseline_facts, const Manifest& candidate_meta) {
  Manifest out;
  const bool ours = candidate_meta.find("scheme.name") != nullptr;  // made by quantbench quantize
  for (const auto& [k, f] : evaluated.facts()) {
    // The file's own facts win; what only the run knows (scheme.kv_cache, ...) is kept.
    if (ours && (k.starts_with("scheme.") || k.starts_with("calibration.")) && candidate_meta.find(k)) continue;
    if (k.starts_with("model.")) out.set_fact("scheme.artifact_" + k.substr(6), f);  // the file that ran
    else out.set_fact(k, f);
  }
  // The kernels that ran follow from the weight format, i.e. from the scheme: the full description goes
  // to scheme.artifact_backend; toolchain.backend keeps the engine (backend, ISA, threads) and the
  // baseline's side, which must match for two results to be compared.
  if (const Fact* tb = evaluated.find("toolchain.backend"); tb && tb->known) {
    out.set("scheme.artifact_backend", tb->value);
    const std::string& v = tb->value;
    const std::string cand = "candidate: ", base = "; baseline: ";
    const size_t bp = v.find(base);
    if (v.starts_with(cand) && bp != std::string::npos)
      out.set("toolchain.backend", cand + engine_part(v.substr(cand.size(), bp - cand.size())) +
                                       " (kernels per weight format: scheme.artifact_backend)" + v.substr(bp));
    else
      out.set("toolchain.backend", engine_part(v) + " (kernels per weight format: scheme.artifact_backend)");
  }
  for (const auto& [k, f] : baseline_facts.facts())
    if (k.starts_with("model.")) out.set_fact(k, f);  // the model under test is the baseline's source
  for (const auto& [k, f] : candidate_meta.facts())
    if (k.starts_with("scheme.") || k.starts_with("calibration.")) out.set_fact(k, f);
  if (!ours)
    out.set_unknown("scheme.name", "the candidate file carries no quantbench metadata (not made by quantbench quantize)");
  if (!candidate_meta.find("calibration.dataset"))
    for (const char* k : {"calibration.method", "calibration.dataset"})
      out.set_unknown(k, "the candidate file carries no quantbench calibration metadata");
  return out;
}

RunSummary run_plan(const Plan& plan, const RunOptions& opt) {
  const std::string dir = opt.out.empty() ? default_out(plan) : opt.out;
  const std::string chartjs = report::load_chartjs(opt.chartjs_dir.empty() ? report::kChartJsDir : opt.chartjs_dir);
  std::error_code ec;
  const bool resume = fs::exists(fs::path(dir) / report::kDatabaseFile, ec);
  Runner R{plan, opt, resume ? report::RunStore::open(dir) : report::RunStore::create(dir, plan.text)};
  if (resume) {
    const auto info = R.store.info();
    if (info.plan_text != plan.text)
      fail("{}: holds a run of a different plan (stored plan sha256 {}); give another --out, or restore the plan text",
           dir, info.plan_sha256.substr(0, 12));
    R.log(fmt::format("resuming the run in {}", dir));
  }
  R.store.set_status("running");
  R.summary.dir = dir;
  R.refresh_finished();
  R.baseline_facts = model_facts(plan.baseline);

  size_t per_cand = 0;
  for (const auto& r : plan.regimes) {
    if (r.name == "multiple_choice" || r.name == "code") per_cand += r.tasks.size();
    else if (r.name == "generation") per_cand += r.tasks.size() + (r.runs_prompts() ? 1 : 0);
    else per_cand += 1;
  }
  R.n_steps = plan.candidates.size() * per_cand + (plan.bench ? plan.candidates.size() + 1 : 0);

  std::vector<std::string> paths;
  for (const auto& c : plan.candidates) paths.push_back(R.candidate_file(c));
  for (size_t i = 0; i < plan.candidates.size(); ++i) {
    std::unique_ptr<eval::ModelPair> pair;  // loaded once per candidate, only if a step needs it
    Manifest meta;
    for (const auto& rp : plan.regimes) R.run_regime(rp, plan.candidates[i], paths[i], pair, meta);
  }
  if (plan.bench) {
    R.run_bench(plan.baseline_label, plan.baseline, true);
    for (size_t i = 0; i < plan.candidates.size(); ++i) R.run_bench(plan.candidates[i].name, paths[i], false);
  }
  R.store.set_status("complete");

  report::ReportInput in{R.store.info(), R.store.load_results(), plan.tolerances, plan.notes};
  const auto data = report::build_report_data(in);
  R.summary.verdict_rows = data.verdict.size();
  for (const auto& v : data.verdict) {
    if (!v.measured) ++R.summary.tolerances_unmeasured;
    else if (!v.pass) ++R.summary.tolerances_failed;
  }
  R.summary.report_md = R.store.reports_dir() + "/report.md";
  R.summary.report_html = R.store.reports_dir() + "/report.html";
  write_text(R.summary.report_md, report::render_markdown(data));
  write_text(R.summary.report_html, report::render_html(data, chartjs));
  return R.summary;
}

}  // namespace qb::plan
