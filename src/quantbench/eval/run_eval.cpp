// run_eval: regime dispatch and the output document.
#include "quantbench/eval/run_eval.h"

#include <cstdlib>
#include <filesystem>

#include "quantbench/core/error.h"
#include "quantbench/core/read_file.h"
#include "quantbench/core/mapped_file.h"
#include "quantbench/core/sha256.h"
#include "quantbench/eval/code.h"
#include "quantbench/eval/generation.h"
#include "quantbench/eval/math_task.h"
#include "quantbench/eval/multiple_choice.h"
#include "quantbench/eval/perplexity.h"
#include "quantbench/eval/workload.h"

namespace qb::eval {
namespace {

std::string first_existing(const std::vector<std::string>& paths, const std::string& what) {
  for (const auto& p : paths)
    if (std::filesystem::exists(p)) return p;
  std::string all;
  for (const auto& p : paths) all += (all.empty() ? "" : ", ") + p;
  fail("no {} given and none of the defaults exist ({})", what, all);
}

}  // namespace

std::string default_data_dir() {
  namespace fs = std::filesystem;
  if (const char* e = std::getenv("QB_DATA_DIR"); e && *e) return e;
  // The checkout the command runs in (the full datasets beside it in ../shared/data on the development
  // and CI machines, the bundled slices in data/eval), else the checkout the binary was built in
  // (build/quantbench, build/tests/qb_tests): so a command run from another directory finds the data.
  std::vector<fs::path> roots{fs::current_path()};
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec)
    for (fs::path d = exe.parent_path(); !d.empty() && roots.size() < 5; d = d.parent_path()) {
      roots.push_back(d);
      if (d == d.root_path()) break;
    }
  for (const auto& r : roots) {
    if (!fs::exists(r / "data/eval", ec)) continue;
    if (fs::exists(r / "../shared/data", ec)) return (r / "../shared/data").lexically_normal().string();
    return (r / "data/eval").string();
  }
  return "data/eval";  // not found: the error names this path
}

nlohmann::json run_evaluation(const EvalRequest& q) {
  const std::string data_dir = q.data_dir.empty() ? default_data_dir() : q.data_dir;
  QB_CHECK(q.batch >= 1, "--batch must be >= 1, got {}", q.batch);
  QB_CHECK(q.limit >= 0, "--limit must be >= 0, got {}", q.limit);
  for (const auto& r : q.regimes)
    QB_CHECK(r == "perplexity" || r == "multiple_choice" || r == "generation" || r == "workload" || r == "code",
             "unknown regime '{}' (perplexity, multiple_choice, generation, workload, code)", r);
  // Every task name must be a multiple-choice task or a scored generation task; each runs in its regime.
  std::vector<std::string> mc_tasks, gen_tasks;
  for (const auto& t : q.tasks) {
    if (is_code_task(t)) continue;  // the code regime's
    if (find_gen_task(t)) {
      gen_tasks.push_back(t);
      continue;
    }
    try {
      find_task(t);
    } catch (const Error& e) {
      std::string gen;
      for (const auto& g : gen_task_registry()) gen += ", " + g.name;
      fail("{} (generation tasks: {})", e.what(), gen.substr(2));
    }
    mc_tasks.push_back(t);
  }
  ModelPairOptions po;
  po.threads = q.threads;
  po.reference = q.reference;
  po.kv = runtime::parse_kv_type(q.kv);
  po.baseline_kv = runtime::parse_kv_type(q.baseline_kv);
  po.make_backend = q.make_backend;
  ModelPair pair(q.baseline, q.candidate, po);
  nlohmann::json out{{"schema", "quantbench.eval/1"},
                     {"baseline", q.baseline},
                     {"candidate", q.candidate},
                     {"data_dir", data_dir},
                     {"regimes", nlohmann::json::object()}};
  for (const auto& regime : q.regimes) {
    nlohmann::json results = nlohmann::json::array();
    if (regime == "perplexity") {
      const std::string path = q.text.empty() ? first_existing({data_dir + "/wikitext2/wiki.test.raw.reconstructed",
                                                                data_dir + "/tinystories/tiny_eval_slice.txt"},
                                                               "--text")
                                              : q.text;
      const std::string text = read_file(path);
      PerplexityOptions o;
      o.convention = parse_convention(q.convention);
      o.n_ctx = q.n_ctx;
      o.batch = q.batch;
      o.top_k = q.top_k;
      o.cache_path = q.kl_cache;
      o.max_windows = q.limit;
      o.bootstrap = {q.resamples, q.seed, 0.95};
      o.progress = q.progress;
      const auto sha = sha256_hex(std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
      results.push_back(evaluate_perplexity(pair, {text}, std::filesystem::path(path).filename().string(), sha, o).to_json());
    } else if (regime == "multiple_choice") {
      QB_CHECK(!mc_tasks.empty(), "multiple_choice: no multiple-choice task in --tasks");
      for (const auto& t : mc_tasks) {
        const auto task = load_task(t, data_dir, size_t(q.limit));
        McOptions o;
        o.batch = q.batch;
        o.progress = q.progress;
        nlohmann::json extras;
        auto j = evaluate_multiple_choice(pair, task, o, &extras).to_json();
        if (!extras.empty()) j["extras"] = std::move(extras);
        results.push_back(std::move(j));
      }
    } else if (regime == "code") {
      // The code tasks named in --tasks, or both when none is.
      std::vector<std::string> names;
      for (const auto& t : q.tasks)
        if (is_code_task(t)) names.push_back(t);
      if (names.empty()) names = code_task_names();
      const PythonSandbox sandbox(default_code_sandbox_config());
      CodeOptions o;
      o.max_new_tokens = q.code_max_tokens;
      o.max_length = q.code_ctx;
      o.progress = q.progress;
      for (const auto& t : names) {
        nlohmann::json extras;
        auto j = evaluate_code(pair, load_code_task(t, data_dir, size_t(q.limit)), sandbox, o, nullptr, &extras).to_json();
        j["extras"] = extras;
        results.push_back(std::move(j));
      }
    } else {
      // Scored generation tasks named in --tasks (GSM8K, MGSM) run here; MT-Bench (or --prompts) runs
      // when none is named or --prompts is given.
      if (regime == "generation")
        for (const auto& t : gen_tasks) {
          const auto task = load_gen_task(t, data_dir, size_t(q.limit));
          GenTaskOptions o;
          o.max_new_tokens = q.max_tokens;
          o.progress = q.progress;
          results.push_back(evaluate_gen_task(pair, task, o).to_json());
        }
      if (regime == "generation" && !gen_tasks.empty() && q.prompts.empty()) {
        out["regimes"][regime] = std::move(results);
        continue;
      }
      const bool wl = regime == "workload";
      std::string path = wl ? q.workload : (q.prompts.empty() ? data_dir + "/mtbench/question.jsonl" : q.prompts);
      QB_CHECK(!path.empty(), "the workload regime needs --workload FILE");
      const bool chat = q.chat && pair.baseline().model->chat_template_source().has_value();
      std::string tmpl;
      const auto prompts = wl || !q.prompts.empty() ? load_workload(path, pair, chat, size_t(q.limit), &tmpl)
                                                    : load_mtbench_prompts(path, pair, chat, size_t(q.limit), &tmpl);
      GenerationOptions o;
      o.max_new_tokens = q.max_tokens;
      o.progress = q.progress;
      o.bootstrap = {q.resamples, q.seed, 0.95};
      nlohmann::json extras;
      // (--prompts: the user's prompts, named as a plan names them, not MT-Bench)
      const std::string task = wl                  ? "workload:" + path
                               : q.prompts.empty() ? "mtbench_first_turn"
                                                   : "generation:" + std::filesystem::path(path).filename().string();
      auto j = evaluate_generation(pair, prompts, regime, task, sha256_file(path), tmpl, o, nullptr, &extras)
                   .to_json();
      j["extras"] = extras;
      results.push_back(std::move(j));
    }
    out["regimes"][regime] = std::move(results);
  }
  return out;
}

void write_eval_json(const std::string& path, const nlohmann::json& j) {
  const std::string s = j.dump(2) + "\n";
  AtomicFileWriter w(path);
  w.write(s.data(), s.size());
  w.commit();
}

}  // namespace qb::eval
