// Code regime: greedy completion with text stop sequences, sandboxed execution, pass@1 and flips.
#include "quantbench/eval/code.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <span>

#include "quantbench/core/error.h"
#include "quantbench/core/progress.h"
#include "quantbench/core/sha256.h"
#include "quantbench/eval/paired_metrics.h"
#include "quantbench/eval/stats.h"
#include "quantbench/runtime/sampler.h"

namespace qb::eval {
namespace {

std::string sha_of(const std::string& s) {
  return sha256_hex(std::span(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
}

// The last non-empty line of a stream tail.
std::string last_line(const std::string& s) {
  size_t end = s.find_last_not_of("\r\n \t");
  if (end == std::string::npos) return {};
  size_t start = s.rfind('\n', end);
  start = start == std::string::npos ? 0 : start + 1;
  return s.substr(start, end + 1 - start);
}

// The exception type named by a traceback's last line ("NameError: ...", "AssertionError",
// "json.decoder.JSONDecodeError: ..."), or "" when the line does not look like one.
std::string exception_type(const std::string& line) {
  size_t i = 0;
  while (i < line.size() && (std::isalnum(static_cast<unsigned char>(line[i])) || line[i] == '_' || line[i] == '.')) ++i;
  if (i == 0 || std::isdigit(static_cast<unsigned char>(line[0]))) return {};
  if (i != line.size() && line[i] != ':') return {};
  const std::string name = line.substr(0, i);
  const auto dot = name.rfind('.');
  const std::string tail = dot == std::string::npos ? name : name.substr(dot + 1);
  // Python's exception names end in Error, Exception, Exit or Interrupt (StopIteration, Warning aside).
  for (const char* suffix : {"Error", "Exception", "Exit", "Interrupt", "Iteration", "Warning"}) {
    const std::string sfx(suffix);
    if (tail.size() >= sfx.size() && tail.compare(tail.size() - sfx.size(), sfx.size(), sfx) == 0) return name;
  }
  return {};
}

}  // namespace

Completion complete_until(runtime::Backend& backend, const tokenizer::Tokenizer& tok, std::vector<int32_t> prompt,
                          const std::vector<std::string>& stops, int64_t max_new_tokens, int64_t max_length) {
  QB_CHECK(!prompt.empty(), "code: empty prompt");
  QB_CHECK(max_new_tokens > 0, "code: max_new_tokens must be positive, got {}", max_new_tokens);
  const auto& spec = backend.spec();
  const int64_t n_ctx = max_length > 0 ? std::min(max_length, spec.n_ctx_train) : spec.n_ctx_train;
  QB_CHECK(n_ctx >= 2, "code: the model's context ({}) is too small", n_ctx);
  Completion c;
  // lm-eval (HF): context_enc[-(max_length - max_gen_toks):]. With a context shorter than the budget we
  // keep at least half the context for the prompt rather than failing.
  const int64_t budget = std::min(max_new_tokens, n_ctx / 2);
  const int64_t keep = n_ctx - budget;
  if (int64_t(prompt.size()) > keep) {
    c.prompt_truncated = prompt.size() - size_t(keep);
    prompt.erase(prompt.begin(), prompt.begin() + std::ptrdiff_t(c.prompt_truncated));
  }
  c.prompt_tokens = prompt.size();
  const int64_t max_len = std::min<int64_t>(n_ctx, int64_t(prompt.size()) + max_new_tokens);

  runtime::Sampler greedy(runtime::SamplerConfig{});  // temperature 0: argmax
  const auto seq = backend.create_sequence(max_len);
  try {
    runtime::Batch b;
    b.add_sequence(prompt, seq, 0);
    int32_t t = greedy.sample(backend.forward(b).row(0));
    int64_t pos = int64_t(prompt.size());
    while (true) {
      c.tokens.push_back(t);
      if (std::find(spec.stop_ids.begin(), spec.stop_ids.end(), t) != spec.stop_ids.end() || tok.is_eog(t)) {
        c.ended_by = "end_of_generation";
        break;
      }
      c.raw = tok.decode_text(c.tokens, /*render_special=*/false);
      if (first_stop(c.raw, stops) != std::string::npos) {
        c.ended_by = "stop_sequence";
        break;
      }
      if (int64_t(c.tokens.size()) >= max_new_tokens) {
        c.ended_by = "max_tokens";
        break;
      }
      if (pos >= max_len) {
        c.ended_by = "context";
        break;
      }
      runtime::Batch d;
      d.add(t, seq, pos++, true);
      t = greedy.sample(backend.forward(d).row(0));
    }
  } catch (...) {
    backend.free_sequence(seq);
    throw;
  }
  backend.free_sequence(seq);
  if (c.ended_by == "end_of_generation") {
    std::vector<int32_t> body(c.tokens.begin(), c.tokens.end() - 1);
    c.raw = tok.decode_text(body, false);
  }
  c.text = cut_at_stops(c.raw, stops);
  return c;
}

SandboxConfig default_code_sandbox_config() {
  SandboxConfig c;
  c.limits.cpu_seconds = 3;
  c.limits.wall_seconds = 10;
  c.limits.address_space_bytes = 1ull << 30;
  return c;
}

CodeOutcome run_code(const PythonSandbox& sandbox, const std::string& program) {
  const std::string sentinel = "__qb_tests_finished_" + sha_of(program).substr(0, 16) + "__";
  const SandboxResult r = sandbox.run(program + "\nprint('" + sentinel + "')\n");
  CodeOutcome o;
  o.wall_seconds = r.wall_seconds;
  switch (r.reason) {
    case FailureReason::None: {
      const bool finished = r.stdout_tail.size() >= sentinel.size() + 1 &&
                            r.stdout_tail.compare(r.stdout_tail.size() - sentinel.size() - 1, sentinel.size() + 1,
                                                  sentinel + "\n") == 0;
      o.passed = finished;
      o.reason = finished ? "passed" : "exited_early";
      if (!finished) o.detail = "exit status 0 before the tests finished";
      return o;
    }
    case FailureReason::Timeout: o.reason = "timeout"; break;
    case FailureReason::CpuTime:
    case FailureReason::Memory:
    case FailureReason::FileSize:
    case FailureReason::OutputLimit: o.reason = "killed_by_limit"; break;
    case FailureReason::Signal: o.reason = "signal"; break;
    case FailureReason::SandboxError: o.reason = "sandbox_error"; break;
    case FailureReason::ExitCode: {
      const std::string type = exception_type(last_line(r.stderr_tail));
      if (type == "AssertionError") {
        o.reason = "assertion";
      } else if (!type.empty()) {
        o.reason = "exception";
        o.detail = type;
        return o;
      } else {
        o.reason = "exit_code";
      }
      break;
    }
  }
  if (o.reason == "killed_by_limit") o.detail = std::string(failure_reason_name(r.reason)) + ": " + r.detail;
  else if (o.detail.empty()) o.detail = r.reason == FailureReason::ExitCode ? last_line(r.stderr_tail) : r.detail;
  return o;
}

Result evaluate_code(ModelPair& pair, const CodeTask& task, const PythonSandbox& sandbox, const CodeOptions& o,
                     std::vector<CodeItemRecord>* records_out, nlohmann::json* extras_out) {
  QB_CHECK(!task.items.empty(), "code: task {} has no items", task.name);
  const int64_t max_new = o.max_new_tokens > 0 ? o.max_new_tokens : task.max_gen_toks;
  const auto& tok = pair.tokenizer();
  std::vector<CodeItemRecord> recs(task.items.size());
  size_t shared_runs = 0, truncated_prompts = 0;
  Progress bar("code " + task.name, int64_t(task.items.size()), o.progress);
  for (size_t i = 0; i < task.items.size(); ++i) {
    const auto& item = task.items[i];
    const auto ids = tok.encode(item.prompt, /*add_special=*/true, /*parse_special=*/false);
    auto& r = recs[i];
    r.base = complete_until(*pair.baseline().backend, tok, ids, task.stops, max_new, o.max_length);
    r.cand = complete_until(*pair.candidate().backend, tok, ids, task.stops, max_new, o.max_length);
    truncated_prompts += r.base.prompt_truncated > 0;
    const std::string pb = code_program(item, r.base.text), pc = code_program(item, r.cand.text);
    r.base_outcome = run_code(sandbox, pb);
    if (pc == pb) {
      r.cand_outcome = r.base_outcome;
      ++shared_runs;
    } else {
      r.cand_outcome = run_code(sandbox, pc);
    }
    bar.advance(1);
  }
  bar.finish();

  Manifest m;
  pair.describe(m);
  m.set("harness.task", task.name);
  m.set("harness.task_version", task.version + " (" + task.source + ")");
  m.set("harness.dataset_sha256", task.dataset_sha256 + (task.is_slice ? " (a slice: not the pinned full file " +
                                                                             task.full_sha256 + ")" : ""));
  m.set("harness.items", std::to_string(task.items.size()));
  m.set("harness.shots", std::to_string(task.shots));
  const std::string tmpl = task.prompt_template + "; BOS " + (tok.add_bos() ? "prepended" : "not prepended");
  m.set("harness.prompt_template_hash", sha_of(tmpl) + " (" + tmpl + ")");
  std::string stops;
  for (const auto& s : task.stops) stops += (stops.empty() ? "" : ", ") + nlohmann::json(s).dump();
  const int64_t ctx = pair.baseline().backend->spec().n_ctx_train;
  const int64_t used_ctx = o.max_length > 0 ? std::min(o.max_length, ctx) : ctx;
  m.set("harness.generation", "greedy, max_new_tokens=" + std::to_string(max_new) + ", stop sequences [" + stops +
                                  "] and end-of-generation tokens; context " + std::to_string(used_ctx) +
                                  " tokens, prompts longer than the context minus the budget are cut from the left (" +
                                  std::to_string(truncated_prompts) + " were)");
  m.set("harness.seed", "none (greedy decoding, deterministic)");
  m.set("harness.batch_size", "1 (one prompt at a time)");
  for (const auto& [k, v] : sandbox.manifest_facts()) m.set(k, v);
  m.set("harness.code_execution",
        "program = head + completion + \"\\n\" + tests (HF code_eval's join), run once per distinct program; passed = "
        "exit 0 and a sentinel printed after the tests; identical programs from both models share one run (" +
            std::to_string(shared_runs) + " of " + std::to_string(task.items.size()) + " items)");

  Result res("code", task.name, m);
  res.set_misses("prose quality; code style and efficiency beyond what the tests check; sampling (pass@k for k > 1)");
  const size_t n = task.items.size();
  std::vector<uint8_t> cb(n), cc(n);
  std::vector<double> same(n);
  for (size_t i = 0; i < n; ++i) {
    cb[i] = recs[i].base_outcome.passed;
    cc[i] = recs[i].cand_outcome.passed;
    same[i] = recs[i].base.text == recs[i].cand.text;
  }
  PairedBinaryNames names;
  names.baseline = "baseline_pass_at_1";
  names.candidate = "candidate_pass_at_1";
  names.mean_aggregation = "mean over problems (greedy, one sample each)";
  names.difference = "pass_at_1_difference";
  names.flips_to_wrong = "flips_pass_to_fail";
  names.flips_to_right = "flips_fail_to_pass";
  names.flip_rate = "flip_rate";
  names.flip_rate_aggregation = "proportion of problems whose outcome changed";
  names.mcnemar = "mcnemar_exact_p";
  add_paired_binary_metrics(res, cb, cc, o.level, names);
  {
    const auto ms = mean_stats(same, o.level);
    auto mm = metric("identical_completion_rate", ms.mean, Direction::HigherIsBetter,
                     "proportion of problems with the same truncated completion");
    mm.stderr_ = ms.stderr_;
    res.add_metric(mm);
  }

  std::map<std::string, int64_t> reasons_b, reasons_c;
  auto side = [](const Completion& c, const CodeOutcome& out) {
    return nlohmann::json{{"passed", out.passed},          {"reason", out.reason},
                          {"detail", out.detail},          {"completion", c.text},
                          {"ended_by", c.ended_by},        {"tokens", c.tokens.size()},
                          {"prompt_tokens", c.prompt_tokens}, {"prompt_truncated", c.prompt_truncated},
                          {"run_seconds", out.wall_seconds}};
  };
  for (size_t i = 0; i < n; ++i) {
    const auto& r = recs[i];
    ++reasons_b[r.base_outcome.reason];
    ++reasons_c[r.cand_outcome.reason];
    res.add_item({{"task_id", task.items[i].id},
                  {"identical_completion", bool(same[i])},
                  {"flip", cb[i] == cc[i] ? "none" : (cb[i] ? "pass_to_fail" : "fail_to_pass")},
                  {"baseline", side(r.base, r.base_outcome)},
                  {"candidate", side(r.cand, r.cand_outcome)}});
  }
  if (extras_out)
    *extras_out = {{"failure_reasons", {{"baseline", reasons_b}, {"candidate", reasons_c}}},
                   {"max_new_tokens", max_new},
                   {"stops", task.stops}};
  if (records_out) *records_out = std::move(recs);
  return res;
}

}  // namespace qb::eval
