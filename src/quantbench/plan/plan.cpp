// parse_plan: toml++ gives every node its source line, so each check below can name the line a person
// has to fix. Checks are strict on purpose: a misspelt key would otherwise silently fall back to a
// default and the run would measure something other than what the plan says.
#include "quantbench/plan/plan.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "quantbench/core/error.h"
#include "quantbench/eval/code.h"
#include "quantbench/eval/code_tasks.h"
#include "quantbench/eval/math_task.h"
#include "quantbench/eval/run_eval.h"
#include "quantbench/eval/tasks/task.h"
#include "quantbench/quant/method/method.h"
#include "quantbench/quant/scheme.h"

namespace qb::plan {
namespace {

namespace fs = std::filesystem;

// Validation context: the plan's path and directory, and error helpers that prefix PLAN:LINE.
struct Ctx {
  std::string path, dir;

  template <typename... A>
  [[noreturn]] void fail_at(int line, fmt::format_string<A...> f, A&&... a) const {
    fail("{}:{}: {}", path, line, fmt::format(f, std::forward<A>(a)...));
  }
  int line_of(const toml::node& n) const { return int(n.source().begin.line); }

  void check_keys(const toml::table& t, const std::vector<std::string>& allowed, const std::string& where) const {
    for (auto&& [k, v] : t) {
      if (std::find(allowed.begin(), allowed.end(), std::string(k.str())) != allowed.end()) continue;
      fail_at(int(k.source().begin.line ? k.source().begin.line : v.source().begin.line),
              "unknown key '{}' in {} (known: {})", k.str(), where, fmt::join(allowed, ", "));
    }
  }

  const toml::table* table(const toml::table& t, std::string_view key, const std::string& where) const {
    const toml::node* n = t.get(key);
    if (!n) return nullptr;
    if (!n->is_table()) fail_at(line_of(*n), "{}.{} must be a table", where, key);
    return n->as_table();
  }

  std::optional<std::string> str(const toml::table& t, std::string_view key, const std::string& where) const {
    const toml::node* n = t.get(key);
    if (!n) return std::nullopt;
    if (!n->is_string()) fail_at(line_of(*n), "{}.{} must be a string", where, key);
    const std::string s = n->as_string()->get();
    if (s.empty()) fail_at(line_of(*n), "{}.{} must not be empty", where, key);
    return s;
  }

  std::optional<int64_t> integer(const toml::table& t, std::string_view key, const std::string& where, int64_t min,
                                 int64_t max = INT64_MAX) const {
    const toml::node* n = t.get(key);
    if (!n) return std::nullopt;
    if (!n->is_integer()) fail_at(line_of(*n), "{}.{} must be an integer", where, key);
    const int64_t v = n->as_integer()->get();
    if (v < min || v > max)
      fail_at(line_of(*n), "{}.{} = {} is out of range (allowed {}..{})", where, key, v, min,
              max == INT64_MAX ? std::string("") : std::to_string(max));
    return v;
  }

  std::optional<bool> boolean(const toml::table& t, std::string_view key, const std::string& where) const {
    const toml::node* n = t.get(key);
    if (!n) return std::nullopt;
    if (!n->is_boolean()) fail_at(line_of(*n), "{}.{} must be true or false", where, key);
    return n->as_boolean()->get();
  }

  std::optional<double> number(const toml::table& t, std::string_view key, const std::string& where) const {
    const toml::node* n = t.get(key);
    if (!n) return std::nullopt;
    if (!n->is_number()) fail_at(line_of(*n), "{}.{} must be a number", where, key);
    const double v = n->value<double>().value();
    if (!std::isfinite(v)) fail_at(line_of(*n), "{}.{} must be finite", where, key);
    return v;
  }

  std::vector<std::string> strings(const toml::table& t, std::string_view key, const std::string& where) const {
    const toml::node* n = t.get(key);
    std::vector<std::string> out;
    if (!n) return out;
    const toml::array* a = n->as_array();
    if (!a) fail_at(line_of(*n), "{}.{} must be an array of strings", where, key);
    for (const auto& e : *a) {
      if (!e.is_string() || e.as_string()->get().empty())
        fail_at(line_of(e) ? line_of(e) : line_of(*n), "{}.{} must be an array of non-empty strings", where, key);
      out.push_back(e.as_string()->get());
    }
    return out;
  }

  std::vector<int64_t> integers(const toml::table& t, std::string_view key, const std::string& where, int64_t min) const {
    const toml::node* n = t.get(key);
    std::vector<int64_t> out;
    if (!n) return out;
    const toml::array* a = n->as_array();
    if (!a || a->empty()) fail_at(line_of(*n), "{}.{} must be a non-empty array of integers", where, key);
    for (const auto& e : *a) {
      if (!e.is_integer()) fail_at(line_of(*n), "{}.{} must be an array of integers", where, key);
      const int64_t v = e.as_integer()->get();
      if (v < min) fail_at(line_of(*n), "{}.{}: {} is below the minimum {}", where, key, v, min);
      out.push_back(v);
    }
    return out;
  }

  // Resolves a path against the plan's directory and checks it exists.
  std::string file(const toml::table& t, std::string_view key, const std::string& where, bool directory = false) const {
    const auto s = str(t, key, where);
    if (!s) return "";
    return existing(*s, line_of(*t.get(key)), fmt::format("{}.{}", where, key), directory);
  }
  std::string existing(const std::string& p, int line, const std::string& what, bool directory = false) const {
    fs::path fp(p);
    if (fp.is_relative()) fp = fs::path(dir) / fp;
    fp = fp.lexically_normal();
    std::error_code ec;
    const bool ok = directory ? fs::is_directory(fp, ec) : fs::is_regular_file(fp, ec);
    if (!ok)
      fail_at(line, "{}: {} '{}' not found (relative paths resolve against the plan's directory {})", what,
              directory ? "directory" : "file", fp.string(), dir);
    return fp.string();
  }
};

const std::vector<std::string> kTopKeys = {"name", "baseline", "candidate", "regimes", "bench", "tolerances",
                                           "report", "threads", "seed", "resamples", "data_dir"};

CandidatePlan parse_candidate(const Ctx& c, const toml::table& t, int line, size_t index, const quant::MethodRegistry& methods) {
  const std::string where = fmt::format("[[candidate]] #{}", index + 1);
  c.check_keys(t, {"name", "scheme", "model", "calibration"}, where);
  CandidatePlan cp;
  cp.line = line;
  const auto scheme = c.str(t, "scheme", where);
  const auto model = c.str(t, "model", where);
  if (bool(scheme) == bool(model)) c.fail_at(line, "{}: give exactly one of 'scheme' (to quantize) or 'model' (an existing file)", where);
  if (scheme) {
    const int sl = c.line_of(*t.get("scheme"));
    cp.scheme = *scheme;
    if (scheme->size() > 5 && scheme->ends_with(".toml")) cp.scheme = c.existing(*scheme, sl, where + ".scheme");
    try {
      (void)quant::load_scheme(cp.scheme, methods);
    } catch (const Error& e) {
      c.fail_at(sl, "{}", e.what());
    }
  } else {
    cp.model = c.file(t, "model", where);
  }
  cp.name = c.str(t, "name", where).value_or(scheme ? *scheme : fs::path(cp.model).stem().string());
  for (char ch : cp.name)
    if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-' || ch == '.' || ch == ':'))
      c.fail_at(line, "{}: name '{}' may hold only letters, digits and _ - . : (it names an artifact file)", where, cp.name);
  if (const toml::table* cal = c.table(t, "calibration", where)) {
    const std::string w = where + ".calibration";
    c.check_keys(*cal, {"text", "samples", "seq_len", "seed"}, w);
    if (!model) {
      CalibrationPlan p;
      p.text = c.file(*cal, "text", w);
      if (p.text.empty()) c.fail_at(c.line_of(*cal) ? c.line_of(*cal) : line, "{}: 'text' is required", w);
      p.samples = c.integer(*cal, "samples", w, 1).value_or(p.samples);
      p.seq_len = c.integer(*cal, "seq_len", w, 2).value_or(p.seq_len);
      p.seed = uint64_t(c.integer(*cal, "seed", w, 0).value_or(0));
      cp.calibration = p;
    } else {
      c.fail_at(c.line_of(*t.get("calibration")), "{}: calibration applies only to a candidate with a scheme", where);
    }
  }
  return cp;
}

// Each task is one step stored under its name: the same task twice would be one result counted twice.
void check_unique(const Ctx& c, const std::vector<std::string>& tasks, int line, const std::string& where) {
  std::set<std::string> seen;
  for (const auto& t : tasks)
    if (!seen.insert(t).second) c.fail_at(line, "{}: task '{}' is listed twice", where, t);
}

RegimePlan parse_regime(const Ctx& c, const std::string& name, const toml::table& t, const std::string& data_dir) {
  const auto& specs = regime_specs();
  auto it = std::find_if(specs.begin(), specs.end(), [&](const RegimeSpec& s) { return s.name == name; });
  std::vector<std::string> known;
  for (const auto& s : specs) known.push_back(s.name);
  const int line = c.line_of(t);
  if (it == specs.end()) c.fail_at(line, "unknown regime '{}' (known: {})", name, fmt::join(known, ", "));
  const std::string where = "[regimes." + name + "]";
  auto keys = it->keys;
  keys.push_back("limit");
  if (name != "code") keys.push_back("batch");  // code runs one prompt at a time
  c.check_keys(t, keys, where);
  RegimePlan r;
  r.name = name;
  r.line = line;
  r.limit = c.integer(t, "limit", where, 0).value_or(0);
  r.batch = c.integer(t, "batch", where, 1, 4096).value_or(1);
  r.data_dir = data_dir;
  if (name == "perplexity") {
    r.text = c.file(t, "text", where);
    if (r.text.empty()) r.text = c.existing(data_dir + "/tinystories/tiny_eval_slice.txt", line, where + ".text (default)");
    r.ctx = c.integer(t, "ctx", where, 4, 1 << 20).value_or(512);
    r.top_k = size_t(c.integer(t, "top_k", where, 1, 1 << 20).value_or(32));
    r.convention = c.str(t, "convention", where).value_or("llama.cpp");
    if (r.convention != "llama.cpp" && r.convention != "rolling")
      c.fail_at(c.line_of(*t.get("convention")), "{}.convention must be \"llama.cpp\" or \"rolling\", got \"{}\"", where,
                r.convention);
  } else if (name == "multiple_choice") {
    r.tasks = c.strings(t, "tasks", where);
    if (r.tasks.empty()) c.fail_at(line, "{}: 'tasks' must list at least one task", where);
    const int tl = c.line_of(*t.get("tasks"));
    if (const auto dd = c.str(t, "data_dir", where)) r.data_dir = c.existing(*dd, c.line_of(*t.get("data_dir")), where + ".data_dir", true);
    for (const auto& task : r.tasks) {
      const eval::TaskSpec* spec = nullptr;
      try {
        spec = &eval::find_task(task);
      } catch (const Error& e) {
        c.fail_at(tl, "{}", e.what());
      }
      // A registry entry ending in '/' is a directory of files (MMLU's per-subject CSVs).
      for (const auto& f : spec->files) c.existing(r.data_dir + "/" + f, tl, where + " task " + task, f.ends_with('/'));
    }
  } else if (name == "code") {
    if (const auto dd = c.str(t, "data_dir", where)) r.data_dir = c.existing(*dd, c.line_of(*t.get("data_dir")), where + ".data_dir", true);
    r.tasks = c.strings(t, "tasks", where);
    const int tl = t.get("tasks") ? c.line_of(*t.get("tasks")) : line;
    if (t.get("tasks") && r.tasks.empty()) c.fail_at(tl, "{}: 'tasks' must list at least one task (leave it out for all)", where);
    if (r.tasks.empty()) r.tasks = eval::code_task_names();
    check_unique(c, r.tasks, tl, where);
    for (const auto& task : r.tasks) {
      if (!eval::is_code_task(task))
        c.fail_at(tl, "{}: unknown code task '{}' (known: {})", where, task, fmt::join(eval::code_task_names(), ", "));
      if (task == "humaneval") {
        if (!fs::exists(r.data_dir + "/humaneval/HumanEval.jsonl.gz")) c.existing(r.data_dir + "/humaneval/HumanEval.jsonl", tl, where + " task humaneval");
      } else {
        c.existing(r.data_dir + "/" + task + "/" + task + ".jsonl", tl, where + " task " + task);
      }
    }
    r.max_tokens = c.integer(t, "max_tokens", where, 0, 1 << 20).value_or(0);
    r.ctx = c.integer(t, "ctx", where, 0, 1 << 20).value_or(0);
    // The programs run in bubblewrap with the system python; without either nothing can be scored.
    const eval::SandboxConfig sc = eval::default_code_sandbox_config();
    for (const std::string& exe : {sc.bwrap, sc.python})
      if (access(exe.c_str(), X_OK) != 0)
        c.fail_at(line, "{}: the code regime runs each program with {} inside bubblewrap, and {} is not an executable here",
                  where, sc.python, exe);
  } else if (name == "generation" || name == "workload") {
    if (name == "generation") {
      if (const auto dd = c.str(t, "data_dir", where)) r.data_dir = c.existing(*dd, c.line_of(*t.get("data_dir")), where + ".data_dir", true);
      r.tasks = c.strings(t, "tasks", where);
      if (const toml::node* tn = t.get("tasks")) {
        const int tl = c.line_of(*tn);
        if (r.tasks.empty()) c.fail_at(tl, "{}: 'tasks' must list at least one task (leave it out for MT-Bench)", where);
        check_unique(c, r.tasks, tl, where);
        for (const auto& task : r.tasks) {
          const eval::GenTaskSpec* spec = eval::find_gen_task(task);
          if (!spec) {
            std::vector<std::string> known;
            for (const auto& g : eval::gen_task_registry()) known.push_back(g.name);
            c.fail_at(tl, "{}: unknown generation task '{}' (known: {})", where, task, fmt::join(known, ", "));
          }
          for (const auto& f : spec->files) c.existing(r.data_dir + "/" + f, tl, where + " task " + task, f.ends_with('/'));
        }
      }
      r.prompts = c.file(t, "prompts", where);
      if (r.runs_prompts() && r.prompts.empty())
        c.existing(r.data_dir + "/mtbench/question.jsonl", line, where + " (default MT-Bench prompts)");
    } else {
      r.file = c.file(t, "file", where);
      if (r.file.empty()) c.fail_at(line, "{}: 'file' (the workload JSONL) is required", where);
    }
    r.max_tokens = c.integer(t, "max_tokens", where, 1, 1 << 20).value_or(256);
    r.chat = c.boolean(t, "chat", where).value_or(true);
  }
  return r;
}

BenchPlan parse_bench(const Ctx& c, const toml::table& t) {
  const std::string where = "[bench]";
  c.check_keys(t, {"batch_sizes", "prompt_len", "gen_len", "reps", "warmup", "bandwidth_mib", "seed"}, where);
  BenchPlan b;
  if (t.get("batch_sizes")) b.batch_sizes = c.integers(t, "batch_sizes", where, 1);
  b.prompt_len = c.integer(t, "prompt_len", where, 1).value_or(b.prompt_len);
  b.gen_len = c.integer(t, "gen_len", where, 1).value_or(b.gen_len);
  b.reps = int(c.integer(t, "reps", where, 1, 1000).value_or(b.reps));
  b.warmup = int(c.integer(t, "warmup", where, 0, 1000).value_or(b.warmup));
  b.bandwidth_mib = c.integer(t, "bandwidth_mib", where, 1, 1 << 16).value_or(b.bandwidth_mib);
  b.seed = uint64_t(c.integer(t, "seed", where, 0).value_or(int64_t(b.seed)));
  return b;
}

std::vector<report::Tolerance> parse_tolerances(const Ctx& c, const toml::table& t) {
  const std::string where = "[tolerances]";
  c.check_keys(t, {"max_kld_mean", "max_accuracy_drop", "min_decode_speedup", "metric"}, where);
  std::vector<report::Tolerance> out;
  if (auto v = c.number(t, "max_kld_mean", where)) out.push_back({"perplexity", "kld_mean", "<=", *v});
  if (auto v = c.number(t, "max_accuracy_drop", where)) {
    if (*v < 0) c.fail_at(c.line_of(*t.get("max_accuracy_drop")), "{}.max_accuracy_drop is a drop: give it as >= 0", where);
    out.push_back({"multiple_choice", "acc_difference", ">=", -*v});
  }
  if (auto v = c.number(t, "min_decode_speedup", where)) out.push_back({"bench", "decode_speedup", ">=", *v});
  if (const toml::node* n = t.get("metric")) {
    const toml::array* a = n->as_array();
    if (!a) c.fail_at(c.line_of(*n), "{}.metric must be an array of tables ([[tolerances.metric]])", where);
    std::set<std::string> regimes{"bench"};
    for (const auto& s : regime_specs()) regimes.insert(s.name);
    for (const auto& e : *a) {
      const toml::table* mt = e.as_table();
      if (!mt) c.fail_at(c.line_of(*n), "{}.metric must be an array of tables", where);
      const std::string w = "[[tolerances.metric]]";
      c.check_keys(*mt, {"regime", "name", "max", "min"}, w);
      const int line = c.line_of(*mt);
      const auto regime = c.str(*mt, "regime", w);
      const auto name = c.str(*mt, "name", w);
      if (!regime || !name) c.fail_at(line, "{}: 'regime' and 'name' are required", w);
      if (!regimes.count(*regime))
        c.fail_at(c.line_of(*mt->get("regime")), "{}: unknown regime '{}' (known: {})", w, *regime, fmt::join(regimes, ", "));
      const auto mx = c.number(*mt, "max", w), mn = c.number(*mt, "min", w);
      if (bool(mx) == bool(mn)) c.fail_at(line, "{}: give exactly one of 'max' or 'min'", w);
      out.push_back({*regime, *name, mx ? "<=" : ">=", mx ? *mx : *mn});
    }
  }
  return out;
}

}  // namespace

const std::vector<RegimeSpec>& regime_specs() {
  static const std::vector<RegimeSpec> specs = {
      {"perplexity", {"text", "ctx", "top_k", "convention"}, "perplexity and per-token KL against the baseline on a text"},
      {"multiple_choice", {"tasks", "data_dir"}, "lm-eval style multiple choice: accuracy, flips, McNemar"},
      {"generation", {"prompts", "max_tokens", "chat", "tasks", "data_dir"},
       "greedy generation divergence on prompts; scored tasks (gsm8k, mgsm_direct_*): exact match, flips, McNemar"},
      {"workload", {"file", "max_tokens", "chat"}, "your own prompts (JSONL), worst items quoted"},
      {"code", {"tasks", "max_tokens", "ctx", "data_dir"}, "HumanEval / MBPP programs run in the sandbox: pass@1, flips, McNemar"},
  };
  return specs;
}

Plan parse_plan(const std::string& text, const std::string& path) {
  Ctx c{path, fs::absolute(fs::path(path)).parent_path().lexically_normal().string()};
  toml::table root;
  try {
    root = toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    c.fail_at(int(e.source().begin.line), "{}", e.description());
  }
  c.check_keys(root, kTopKeys, "the plan");
  Plan p;
  p.path = path;
  p.dir = c.dir;
  p.text = text;
  p.name = c.str(root, "name", "plan").value_or(fs::path(path).stem().string());
  p.threads = int(c.integer(root, "threads", "plan", 0, 4096).value_or(0));
  p.seed = uint64_t(c.integer(root, "seed", "plan", 0).value_or(1));
  p.resamples = size_t(c.integer(root, "resamples", "plan", 10, 1000000).value_or(1000));
  std::string data_dir;
  if (root.get("data_dir")) data_dir = c.file(root, "data_dir", "plan", true);
  else data_dir = fs::absolute(eval::default_data_dir()).lexically_normal().string();

  const toml::table* base = c.table(root, "baseline", "plan");
  if (!base) c.fail_at(1, "the plan needs a [baseline] table with 'model'");
  c.check_keys(*base, {"model", "label"}, "[baseline]");
  p.baseline = c.file(*base, "model", "[baseline]");
  if (p.baseline.empty()) c.fail_at(c.line_of(*base), "[baseline]: 'model' is required");
  p.baseline_label = c.str(*base, "label", "[baseline]").value_or("baseline");

  const auto methods = quant::builtin_methods();
  if (const toml::node* n = root.get("candidate")) {
    const toml::array* a = n->as_array();
    if (!a) c.fail_at(c.line_of(*n), "'candidate' must be an array of tables ([[candidate]])");
    std::set<std::string> names{p.baseline_label};
    for (size_t i = 0; i < a->size(); ++i) {
      const toml::table* t = (*a)[i].as_table();
      if (!t) c.fail_at(c.line_of(*n), "'candidate' must be an array of tables ([[candidate]])");
      auto cp = parse_candidate(c, *t, c.line_of(*t), i, methods);
      if (!names.insert(cp.name).second)
        c.fail_at(cp.line, "candidate name '{}' is used twice (or equals the baseline's label); set 'name'", cp.name);
      p.candidates.push_back(std::move(cp));
    }
  }
  if (p.candidates.empty()) c.fail_at(1, "the plan needs at least one [[candidate]]");

  if (const toml::table* rt = c.table(root, "regimes", "plan")) {
    for (auto&& [k, v] : *rt) {
      const toml::table* t = v.as_table();
      if (!t) c.fail_at(c.line_of(v), "regimes.{} must be a table", k.str());
      p.regimes.push_back(parse_regime(c, std::string(k.str()), *t, data_dir));
    }
    std::stable_sort(p.regimes.begin(), p.regimes.end(), [](const RegimePlan& a, const RegimePlan& b) { return a.line < b.line; });
  }
  if (const toml::table* bt = c.table(root, "bench", "plan")) p.bench = parse_bench(c, *bt);
  if (p.regimes.empty() && !p.bench) c.fail_at(1, "the plan measures nothing: add [regimes.*] tables or [bench]");
  if (const toml::table* tt = c.table(root, "tolerances", "plan")) p.tolerances = parse_tolerances(c, *tt);
  if (const toml::table* rp = c.table(root, "report", "plan")) {
    c.check_keys(*rp, {"notes"}, "[report]");
    p.notes = c.strings(*rp, "notes", "[report]");
  }
  return p;
}

Plan load_plan(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot read the plan", path);
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_plan(ss.str(), path);
}

}  // namespace qb::plan
