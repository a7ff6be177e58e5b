// GSM8K and MGSM: loading with lm-eval's prompts, greedy decoding until a stop string, lm-eval's
// filters and exact_match, and the item-by-item comparison of the two models.
#include "quantbench/eval/math_task.h"

#include <algorithm>
#include <filesystem>
#include <map>

#include "quantbench/core/error.h"
#include "quantbench/core/progress.h"
#include "quantbench/core/sha256.h"
#include "quantbench/eval/paired_metrics.h"
#include "quantbench/eval/stats.h"
#include "quantbench/eval/tasks/python_random.h"
#include "quantbench/eval/tasks/task_io.h"
#include "quantbench/eval/text_metrics.h"
#include "quantbench/runtime/sampler.h"

namespace qb::eval {
namespace {

constexpr size_t kGsm8kTrainRows = 7473;  // openai/grade-school-math train.jsonl
constexpr uint32_t kFewshotSeed = 1234;   // lm-eval's fewshot_random_seed default

GenTaskSpec mgsm(const std::string& lang, const std::string& question, const std::string& answer, const std::string& sha) {
  GenTaskSpec s;
  s.name = "mgsm_direct_" + lang;
  s.version = "1";
  s.kind = GenTaskKind::MgsmDirect;
  s.files = {"mgsm/mgsm_" + lang + ".tsv"};
  s.full_sha256 = sha;
  s.until = {question, "</s>", "<|im_end|>"};
  s.question_word = question;
  s.answer_word = answer;
  s.prompt_template = "lm-eval 0.4.13 mgsm_direct_" + lang + " (v4.0), 0-shot: '" + question + " {question}\\n" + answer +
                      "'; until ['" + question + "', '</s>', '<|im_end|>']; filters remove_whitespace, flexible-extract; "
                      "exact_match ignore_case, ignore_punctuation";
  return s;
}

std::vector<GenTaskItem> load_gsm8k(const std::string& data_dir, size_t limit) {
  const std::string test = data_dir + "/gsm8k/test.jsonl";
  std::vector<GenTaskItem> items;
  for (const auto& [j, line] : task_io::read_jsonl_lines(test)) {
    const std::string where = test + ":" + std::to_string(line);
    GenTaskItem it;
    it.id = std::to_string(items.size());
    it.prompt = task_io::field_at<std::string>(j, "question", where);  // the question for now
    it.target = task_io::field_at<std::string>(j, "answer", where);
    QB_CHECK(it.target.find("#### ") != std::string::npos, "{}: answer has no '#### ' line", where);
    items.push_back(std::move(it));
    if (limit > 0 && items.size() >= limit) break;
  }
  QB_CHECK(!items.empty(), "{}: no questions", test);
  // The training rows: the full file, or the slice that keeps only the rows the draws reach, each
  // tagged with its row number in the full file.
  const std::string full = data_dir + "/gsm8k/train.jsonl", slice = data_dir + "/gsm8k/train_fewshot.jsonl";
  const bool is_full = std::filesystem::exists(full);
  const std::string train_path = is_full ? full : slice;
  std::map<size_t, std::pair<std::string, std::string>> train;
  size_t row = 0;
  for (const auto& [j, line] : task_io::read_jsonl_lines(train_path)) {
    const std::string where = train_path + ":" + std::to_string(line);
    const size_t r = is_full ? row++ : task_io::field_at<size_t>(j, "train_row", where);
    QB_CHECK(r < kGsm8kTrainRows, "{}: train_row {} is past the {} rows of the full train split", where, r, kGsm8kTrainRows);
    train[r] = {task_io::field_at<std::string>(j, "question", where), task_io::field_at<std::string>(j, "answer", where)};
  }
  QB_CHECK(!is_full || train.size() == kGsm8kTrainRows, "{}: {} rows, the GSM8K train split has {}", train_path,
           train.size(), kGsm8kTrainRows);
  const auto draws = gsm8k_fewshot_draws(items.size(), kGsm8kTrainRows);
  for (size_t d = 0; d < items.size(); ++d) {
    std::vector<std::pair<std::string, std::string>> shots;
    for (size_t r : draws[d]) {
      const auto it = train.find(r);
      QB_CHECK(it != train.end(), "{}: test item {} needs train row {}, which this file lacks (a slice; use the full "
               "train.jsonl or a smaller --limit)", train_path, d, r);
      shots.push_back(it->second);
    }
    items[d].prompt = gsm8k_context(shots, items[d].prompt);
  }
  return items;
}

std::vector<GenTaskItem> load_mgsm(const std::string& path, const GenTaskSpec& spec, size_t limit) {
  const auto lines = task_io::read_lines(path);
  std::vector<GenTaskItem> items;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].empty()) continue;
    const auto tab = lines[i].find('\t');
    QB_CHECK(tab != std::string::npos && lines[i].find('\t', tab + 1) == std::string::npos,
             "{}:{}: expected 'question<TAB>answer_number'", path, i + 1);
    std::string number;
    for (char c : lines[i].substr(tab + 1))
      if (c != ',') number += c;  // "2,125" in the TSV is answer_number 2125 in lm-eval's dataset
    const bool numeric = !number.empty() && std::all_of(number.begin() + (number[0] == '-'), number.end(),
                                                        [](char c) { return c >= '0' && c <= '9'; });
    QB_CHECK(numeric && number != "-", "{}:{}: answer '{}' is not an integer", path, i + 1, lines[i].substr(tab + 1));
    GenTaskItem it;
    it.id = std::to_string(items.size());
    it.prompt = spec.question_word + " " + lines[i].substr(0, tab) + "\n" + spec.answer_word;
    it.target = number;
    items.push_back(std::move(it));
    if (limit > 0 && items.size() >= limit) break;
  }
  QB_CHECK(!items.empty(), "{}: no questions", path);
  return items;
}

// Greedy decoding until an end-of-generation token, a stop string in the decoded text, or max_new.
std::vector<int32_t> decode_until(runtime::Backend& be, const tokenizer::Tokenizer& tok, const std::vector<int32_t>& prompt,
                                  const std::vector<std::string>& until, int64_t max_new) {
  runtime::Sampler greedy(runtime::SamplerConfig{});
  std::vector<int32_t> out;
  const auto seq = be.create_sequence(int64_t(prompt.size()) + max_new);
  try {
    runtime::Batch b;
    b.add_sequence(prompt, seq, 0);
    int32_t t = greedy.sample(be.forward(b).row(0));
    int64_t pos = int64_t(prompt.size());
    while (true) {
      out.push_back(t);
      if (tok.is_eog(t) || int64_t(out.size()) >= max_new || pos + 1 >= be.spec().n_ctx_train) break;
      const auto text = tok.decode(out, false);
      if (cut_at_stops(text, until).size() != text.size()) break;
      runtime::Batch d;
      d.add(t, seq, pos++, true);
      t = greedy.sample(be.forward(d).row(0));
    }
  } catch (...) {
    be.free_sequence(seq);
    throw;
  }
  be.free_sequence(seq);
  return out;
}

std::string response_text(const tokenizer::Tokenizer& tok, std::vector<int32_t> ids, const std::vector<std::string>& until) {
  if (!ids.empty() && tok.is_eog(ids.back())) ids.pop_back();
  return cut_at_stops(tok.decode_text(ids, false), until);
}

// Python str.strip(): the ASCII whitespace characters (Unicode spaces are left; see docs/eval.md).
std::string py_strip(const std::string& s) { return task_io::strip(s); }

std::string flexible(const std::string& response) { return gsm8k_extract_flexible(response); }

}  // namespace

const std::vector<GenTaskSpec>& gen_task_registry() {
  static const std::vector<GenTaskSpec> tasks = [] {
    std::vector<GenTaskSpec> t;
    GenTaskSpec g;
    g.name = "gsm8k";
    g.version = "1";
    g.kind = GenTaskKind::Gsm8k;
    g.files = {"gsm8k/test.jsonl"};
    g.full_sha256 = "3730d312f6e3440559ace48831e51066acaca737f6eabec99bccb9e4b3c39d14";
    g.until = {"Question:", "</s>", "<|im_end|>"};
    g.shots = 5;
    g.prompt_template =
        "lm-eval 0.4.13 gsm8k (v3.0), 5-shot from train by random.Random(1234).sample per test doc in order: "
        "'Question: {q}\\nAnswer: {answer}\\n\\n' x5 + 'Question: {q}\\nAnswer:'; until ['Question:', '</s>', "
        "'<|im_end|>']; filters strict-match '#### (\\-?[0-9\\.\\,]+)' first, flexible-extract last number; "
        "exact_match ignoring ',', '$', '(?s).*#### ', '\\.$', case";
    t.push_back(g);
    t.push_back(mgsm("bn", "\u09aa\u09cd\u09b0\u09b6\u09cd\u09a8:", "Answer:",
                     "6b00bc7cc635547e866989284afa924d789b5affa2eb8de623c385dd943ad977"));
    t.push_back(mgsm("de", "Frage:", "Antwort:", "4dfea30fede44b813e2e496f5f0534049e83c7cc8aed6e00600b30ec62053626"));
    t.push_back(mgsm("en", "Question:", "Answer:", "50021d0f28cc957edcb44e7806425b1c7fbd648ddcb9e0a8ec689d10e57d40fa"));
    t.push_back(mgsm("es", "Pregunta:", "Respuesta:", "5bd27ebdf00140cec845c5298dc17715f5cd57d8edda6df1976db40bf3f0750a"));
    t.push_back(mgsm("fr", "Question :", "R\u00e9ponse :", "36207c1c03fd7cd3ea491441eb755408199f94e4a647851df531bbaedc99d606"));
    t.push_back(mgsm("ja", "\u554f\u984c\uff1a", "Answer:", "59a2b50debe77981fd784cb3b2bef1505e3abf2a37116dc9d7a366ab029b4637"));
    t.push_back(mgsm("ru", "\u0417\u0430\u0434\u0430\u0447\u0430:", "Answer:",
                     "6bd30fd2e80c5bac23f566fb4ae0e6a55a19578401fbf9a01fb21beb3645fef8"));
    t.push_back(mgsm("sw", "Swali:", "Answer:", "2bac828d77229e65d7c7197b1ad4a2cb5b1fe99b163f2cbdd66501de6a2115c4"));
    t.push_back(mgsm("te", "\u0c2a\u0c4d\u0c30\u0c36\u0c4d\u0c28:", "Answer:",
                     "dd6b1452c244bb2e4ba254c01ea84137f80c1cefc57d69c23b0ed88b9c0f36b7"));
    t.push_back(mgsm("th", "\u0e42\u0e08\u0e17\u0e22\u0e4c:", "Answer:",
                     "f3932dc5ad8e9d0ea82b017adc1e1461dd647af861e7166d6741986602a0cfd6"));
    t.push_back(mgsm("zh", "\u95ee\u9898\uff1a", "Answer:", "b2fa63151022370a0de1f4211c8c284eae74b0f5a3b003b1d5982c0d4a73f661"));
    return t;
  }();
  return tasks;
}

const GenTaskSpec* find_gen_task(const std::string& name) {
  for (const auto& t : gen_task_registry())
    if (t.name == name) return &t;
  return nullptr;
}

LoadedGenTask load_gen_task(const std::string& name, const std::string& data_dir, size_t limit) {
  LoadedGenTask lt;
  lt.spec = find_gen_task(name);
  QB_CHECK(lt.spec != nullptr, "unknown generation task '{}'", name);
  const std::string path = data_dir + "/" + lt.spec->files[0];
  lt.items = lt.spec->kind == GenTaskKind::Gsm8k ? load_gsm8k(data_dir, limit) : load_mgsm(path, *lt.spec, limit);
  lt.dataset_sha256 = sha256_file(path);
  lt.is_slice = lt.dataset_sha256 != lt.spec->full_sha256;
  return lt;
}

std::string gsm8k_context(const std::vector<std::pair<std::string, std::string>>& shots, const std::string& question) {
  std::string s;
  for (const auto& [q, a] : shots) s += "Question: " + q + "\nAnswer: " + a + "\n\n";
  return s + "Question: " + question + "\nAnswer:";
}

std::vector<std::vector<size_t>> gsm8k_fewshot_draws(size_t n_docs, size_t n_train) {
  PyRandom rnd(kFewshotSeed);
  std::vector<std::vector<size_t>> out;
  for (size_t d = 0; d < n_docs; ++d) out.push_back(rnd.sample(n_train, 5));
  return out;
}

std::string mgsm_normalize(const std::string& s) {
  static const std::string punct = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";  // Python's string.punctuation
  std::string out;
  for (char c : s) {
    if (punct.find(c) != std::string::npos) continue;
    out += (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c;
  }
  return out;
}

GenTaskScore score_gen_response(GenTaskKind kind, const std::string& response, const std::string& target) {
  GenTaskScore s;
  s.flexible = flexible(response);
  if (kind == GenTaskKind::Gsm8k) {
    s.strict = gsm8k_extract_strict(response);
    s.strict_ok = gsm8k_exact_match(s.strict, target);
    s.flexible_ok = gsm8k_exact_match(s.flexible, target);
  } else {
    s.strict = py_strip(response);
    s.strict_ok = mgsm_normalize(s.strict) == mgsm_normalize(target);
    s.flexible_ok = mgsm_normalize(s.flexible) == mgsm_normalize(target);
  }
  return s;
}

Result evaluate_gen_task(ModelPair& pair, const LoadedGenTask& task, const GenTaskOptions& o) {
  const auto& spec = *task.spec;
  const auto& items = task.items;
  const auto& tok = pair.tokenizer();
  QB_CHECK(o.max_new_tokens > 0, "{}: max_new_tokens must be positive", spec.name);
  const size_t n = items.size();
  std::vector<std::vector<int32_t>> out_b(n), out_c(n);
  std::vector<std::string> text_b(n), text_c(n);
  size_t truncated = 0;
  Progress bar("generation " + spec.name, int64_t(n), o.progress);
  for (size_t i = 0; i < n; ++i) {
    auto prompt = tok.encode(items[i].prompt, true, false);
    // lm-eval (HF generate_until) keeps the last max_length - max_gen_toks context tokens.
    const int64_t room = std::min(pair.baseline().backend->spec().n_ctx_train, pair.candidate().backend->spec().n_ctx_train) -
                         o.max_new_tokens;
    QB_CHECK(room > 0, "{}: --max-tokens {} leaves no room for a prompt in the model's context", spec.name, o.max_new_tokens);
    if (int64_t(prompt.size()) > room) {
      prompt.erase(prompt.begin(), prompt.end() - room);
      ++truncated;
    }
    out_b[i] = decode_until(*pair.baseline().backend, tok, prompt, spec.until, o.max_new_tokens);
    out_c[i] = decode_until(*pair.candidate().backend, tok, prompt, spec.until, o.max_new_tokens);
    text_b[i] = response_text(tok, out_b[i], spec.until);
    text_c[i] = response_text(tok, out_c[i], spec.until);
    bar.advance(1);
  }
  bar.finish();

  Manifest m;
  pair.describe(m);
  m.set("harness.task", spec.name);
  m.set("harness.task_version", spec.version);
  m.set("harness.dataset_sha256", task.dataset_sha256 + (task.is_slice ? " (a slice: not the pinned full file " +
                                                                              spec.full_sha256 + ")" : ""));
  m.set("harness.items", std::to_string(n));
  m.set("harness.shots", std::to_string(spec.shots) + (spec.shots ? " (lm-eval default sampler, seed 1234)" : ""));
  const std::string tmpl = spec.prompt_template + "; BOS " + (tok.add_bos() ? "prepended" : "not prepended");
  m.set("harness.prompt_template_hash",
        sha256_hex(std::span(reinterpret_cast<const uint8_t*>(tmpl.data()), tmpl.size())) + " (" + tmpl + ")");
  m.set("harness.generation", "greedy, max_new_tokens=" + std::to_string(o.max_new_tokens) +
                                  ", stop at end-of-generation tokens or a stop string; prompts longer than the "
                                  "context less max_new_tokens keep their last tokens (" +
                                  std::to_string(truncated) + " truncated)");
  m.set("harness.seed", "none (greedy decoding)");
  m.set("harness.batch_size", "1 (one prompt at a time)");
  Result r("generation", spec.name, m);
  r.set_misses("latency and throughput under load; partial credit for reasoning with a wrong final number");

  std::vector<GenTaskScore> sb(n), sc(n);
  for (size_t i = 0; i < n; ++i) {
    sb[i] = score_gen_response(spec.kind, text_b[i], items[i].target);
    sc[i] = score_gen_response(spec.kind, text_c[i], items[i].target);
  }
  const std::string strict_name = spec.kind == GenTaskKind::Gsm8k ? "strict_match" : "remove_whitespace";
  for (int flex = 0; flex < 2; ++flex) {
    const std::string name = "exact_match_" + (flex ? std::string("flexible_extract") : strict_name);
    std::vector<uint8_t> cb(n), cc(n);
    for (size_t i = 0; i < n; ++i) {
      cb[i] = flex ? sb[i].flexible_ok : sb[i].strict_ok;
      cc[i] = flex ? sc[i].flexible_ok : sc[i].strict_ok;
    }
    add_paired_binary_metrics(r, cb, cc, o.level, PairedBinaryNames::prefixed(name, /*with_flip_rate=*/false));
  }
  std::vector<double> fd(n), same(n);
  for (size_t i = 0; i < n; ++i) {
    fd[i] = double(first_divergence(out_b[i], out_c[i]));
    same[i] = text_b[i] == text_c[i];
  }
  const auto ms = mean_stats(same, o.level);
  auto mi = metric("identical_response_rate", ms.mean, Direction::HigherIsBetter, "mean over items (after the stop cut)");
  mi.stderr_ = ms.stderr_;
  r.add_metric(mi);
  r.add_metric(metric("first_divergence_median", percentile(fd, 50), Direction::HigherIsBetter, "median tokens"));
  for (size_t i = 0; i < n; ++i)
    r.add_item({{"id", items[i].id},
                {"target", items[i].target},
                {"baseline_response", text_b[i]},
                {"candidate_response", text_c[i]},
                {"baseline_strict", sb[i].strict},
                {"candidate_strict", sc[i].strict},
                {"baseline_flexible", sb[i].flexible},
                {"candidate_flexible", sc[i].flexible},
                {"baseline_strict_correct", sb[i].strict_ok},
                {"candidate_strict_correct", sc[i].strict_ok},
                {"baseline_flexible_correct", sb[i].flexible_ok},
                {"candidate_flexible_correct", sc[i].flexible_ok},
                {"first_divergence", size_t(fd[i])}});
  return r;
}

}  // namespace qb::eval
