// The task table and its loaders. Each loader reads one upstream layout (see data/SOURCES.md and
// /work/shared/data/SOURCES.md for where the files come from) and reproduces lm-eval's prompt for the
// task; a malformed row is an error naming the file and line.
#include "quantbench/eval/tasks/task.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>

#include <nlohmann/json.hpp>

#include "quantbench/core/error.h"
#include "quantbench/core/sha256.h"
#include "quantbench/eval/tasks/task_io.h"

namespace qb::eval {
namespace {

using task_io::read_jsonl;
using task_io::read_lines;
using task_io::strip;

template <class T>
T field(const nlohmann::json& j, const char* key, const std::string& path, size_t row) {
  return task_io::field_at<T>(j, key, path + ": row " + std::to_string(row + 1));
}

McItem shared_context_item(std::string id, const std::string& context, const std::vector<std::string>& choices, size_t gold,
                           const std::string& path) {
  QB_CHECK(gold < choices.size(), "{}: item {}: gold index {} with {} choices", path, id, gold, choices.size());
  McItem it;
  it.id = std::move(id);
  it.gold = gold;
  for (const auto& c : choices) it.options.push_back({context, " " + c, c.size()});
  return it;
}

// llm-foundry's {query, choices, gold} rows (ARC), lm-eval's "Question: {q}\nAnswer:" + " {choice}".
std::vector<McItem> load_query_choices(const std::vector<std::string>& paths) {
  std::vector<McItem> items;
  const auto rows = read_jsonl(paths[0]);
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto q = field<std::string>(rows[i], "query", paths[0], i);
    const auto ch = field<std::vector<std::string>>(rows[i], "choices", paths[0], i);
    const auto g = field<size_t>(rows[i], "gold", paths[0], i);
    items.push_back(shared_context_item(std::to_string(i), q + "\nAnswer:", ch, g, paths[0]));
  }
  return items;
}

std::vector<McItem> load_piqa(const std::vector<std::string>& paths) {
  const auto rows = read_jsonl(paths[0]);
  auto labels = read_lines(paths[1]);
  while (!labels.empty() && labels.back().empty()) labels.pop_back();
  QB_CHECK(labels.size() == rows.size(), "{}: {} labels for {} rows of {}", paths[1], labels.size(), rows.size(), paths[0]);
  std::vector<McItem> items;
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto goal = field<std::string>(rows[i], "goal", paths[0], i);
    const std::vector<std::string> ch = {field<std::string>(rows[i], "sol1", paths[0], i),
                                         field<std::string>(rows[i], "sol2", paths[0], i)};
    QB_CHECK(labels[i] == "0" || labels[i] == "1", "{}:{}: label '{}' is not 0 or 1", paths[1], i + 1, labels[i]);
    items.push_back(shared_context_item(std::to_string(i), "Question: " + goal + "\nAnswer:", ch, size_t(labels[i][0] - '0'),
                                        paths[0]));
  }
  return items;
}

// klosax/hellaswag_text_data: 6 lines per task (context, gold, 4 endings).
std::vector<McItem> load_hellaswag(const std::vector<std::string>& paths) {
  auto lines = read_lines(paths[0]);
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  QB_CHECK(lines.size() % 6 == 0, "{}: {} lines, not a multiple of 6 (context, gold, 4 endings)", paths[0], lines.size());
  std::vector<McItem> items;
  for (size_t t = 0; t < lines.size() / 6; ++t) {
    const auto& g = lines[t * 6 + 1];
    QB_CHECK(g.size() == 1 && g[0] >= '0' && g[0] <= '3', "{}:{}: gold '{}' is not 0-3", paths[0], t * 6 + 2, g);
    std::vector<std::string> ch;
    for (int e = 0; e < 4; ++e) ch.push_back(hellaswag_preprocess(lines[t * 6 + 2 + size_t(e)]));
    items.push_back(shared_context_item(std::to_string(t), hellaswag_preprocess(lines[t * 6]), ch, size_t(g[0] - '0'),
                                        paths[0]));
  }
  return items;
}

// llm-foundry WinoGrande: {context_options, continuation, gold}; partial scoring: the continuation
// after the blank is scored given each filled-in context.
std::vector<McItem> load_winogrande(const std::vector<std::string>& paths) {
  const auto rows = read_jsonl(paths[0]);
  std::vector<McItem> items;
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto ctxs = field<std::vector<std::string>>(rows[i], "context_options", paths[0], i);
    const auto cont = field<std::string>(rows[i], "continuation", paths[0], i);
    const auto g = field<size_t>(rows[i], "gold", paths[0], i);
    QB_CHECK(g < ctxs.size(), "{}: row {}: gold {} with {} options", paths[0], i + 1, g, ctxs.size());
    McItem it;
    it.id = std::to_string(i);
    it.gold = g;
    for (const auto& c : ctxs) it.options.push_back({c, " " + cont, cont.size()});
    items.push_back(std::move(it));
  }
  return items;
}

std::vector<McItem> load_boolq(const std::vector<std::string>& paths) {
  const auto rows = read_jsonl(paths[0]);
  std::vector<McItem> items;
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto q = field<std::string>(rows[i], "query", paths[0], i);
    const auto g = field<size_t>(rows[i], "gold", paths[0], i);
    items.push_back(shared_context_item(std::to_string(i), q + "\nAnswer:", {"no", "yes"}, g, paths[0]));
  }
  return items;
}

}  // namespace

std::string sha256_directory(const std::string& dir) {
  QB_CHECK(std::filesystem::is_directory(dir), "{}: not a directory", dir);
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.is_regular_file()) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  std::string listing;
  for (const auto& n : names) listing += sha256_file(dir + "/" + n) + "  " + n + "\n";
  return sha256_hex(std::span(reinterpret_cast<const uint8_t*>(listing.data()), listing.size()));
}

std::string hellaswag_preprocess(const std::string& text) {
  // Python's str.replace is one left-to-right pass over non-overlapping matches; so is replace_all.
  auto replace_all = [](const std::string& in, const std::string& from, const std::string& to) {
    std::string out;
    size_t at = 0;
    for (size_t p; (p = in.find(from, at)) != std::string::npos; at = p + from.size()) out += in.substr(at, p - at) + to;
    return out + in.substr(at);
  };
  std::string s = replace_all(strip(text), " [title]", ". ");
  static const std::regex tags("\\[.*?\\]");
  s = std::regex_replace(s, tags, "");
  return replace_all(s, "  ", " ");
}

const std::vector<TaskSpec>& task_registry() {
  static const std::vector<TaskSpec> tasks = {
      {"hellaswag", "1", {"hellaswag/hellaswag_val_full.txt"},
       "d572539320eb2050e858ca34b495bbe2103e3b3f1391a9c3bcdf215b0bb93bd1",
       "context = preprocess(activity_label + ': ' + ctx); continuation = ' ' + preprocess(ending)",
       "klosax 6-line layout: ctx_b is not capitalised as lm-eval does (the split of ctx_a/ctx_b is not in the file)",
       true, load_hellaswag},
      {"arc_easy", "1", {"llm_foundry_icl/arc_easy.jsonl"},
       "d2d12e59543acf9a5ef6079634a72b30215e36c2fd4236fff3bc855d287b87f5",
       "context = 'Question: {question}\\nAnswer:'; continuation = ' {choice}'", "", true, load_query_choices},
      {"arc_challenge", "1", {"llm_foundry_icl/arc_challenge.jsonl"},
       "1ae3aeedf1951d881cbd5c2e3a31e78a1993d251479afbe4cb413b6707244636",
       "context = 'Question: {question}\\nAnswer:'; continuation = ' {choice}'", "", true, load_query_choices},
      {"piqa", "1", {"piqa/valid.jsonl", "piqa/valid-labels.lst"},
       "93503cc97c679e459b065c3d13e848282e44b2a25213985bed3e5d458abef72d",
       "context = 'Question: {goal}\\nAnswer:'; continuation = ' {sol}'", "", true, load_piqa},
      {"winogrande", "1", {"llm_foundry_icl/winogrande.jsonl"},
       "ea1592526f3bfdd0948ed3acb1b4dfa3f83d23698917118688ee1df7f8d4b8d7",
       "partial scoring: context = sentence up to the blank with the option filled in; continuation = ' ' + rest",
       "llm-foundry export of the dev split", false, load_winogrande},
      {"boolq", "1", {"llm_foundry_icl/boolq.jsonl"},
       "454ff101e614370bb1807fe7ebbda6fdb57e794b9662cc1ccae211bf1ff626c8",
       "context = 'Passage: {passage}\\nQuestion: {question}?\\nAnswer:'; continuation = ' no' | ' yes'",
       "llm-foundry's query carries a 'Passage: ' prefix that lm-eval's boolq prompt lacks", true, load_boolq},
      // lm-eval 0.4.13 mmlu (default): acc only; the group's acc is the mean over every item.
      {"mmlu", "1", {"mmlu/test/", "mmlu/dev/"}, "dc9f1087a5aaddee37e8c99147726202d55255b5b5d2aab850ab720821a64c62",
       "context = 'The following are multiple choice questions (with answers) about {subject}.\\n\\n"
       "{question.strip()}\\nA. {c0}\\nB. {c1}\\nC. {c2}\\nD. {c3}\\nAnswer:'; continuation = ' A'|' B'|' C'|' D'",
       "subjects in alphabetical order; --limit applies per subject as lm-eval's does", false, load_mmlu_0shot,
       McScoring::Argmax, 0, true},
      {"mmlu_5shot", "1", {"mmlu/test/", "mmlu/dev/"}, "dc9f1087a5aaddee37e8c99147726202d55255b5b5d2aab850ab720821a64c62",
       "description, then the subject's 5 dev rows in file order (sampler first_n) as '{text} {letter}\\n\\n', then "
       "the test row's text; continuation = ' A'|' B'|' C'|' D'",
       "subjects in alphabetical order; --limit applies per subject; a context longer than the model's is an "
       "error where lm-eval would cut it from the left", false, load_mmlu_5shot, McScoring::Argmax, 5, true},
      // lm-eval 0.4.13 truthfulqa_mc1 (v2.0) / truthfulqa_mc2 (v3.0).
      {"truthfulqa_mc1", "1", {"truthfulqa/en.validation.json"},
       "7feae44809acaca86b254a7ab6c188f4f62eb40b620b61140add87ca684a5452",
       "context = 6-question QA preamble + '\\n\\nQ: {question}\\nA:'; continuation = ' {mc1 choice}'; gold = 0",
       "truthfulqa-multi's English export of the validation split", false, load_truthfulqa_mc1},
      {"truthfulqa_mc2", "1", {"truthfulqa/en.validation.json"},
       "7feae44809acaca86b254a7ab6c188f4f62eb40b620b61140add87ca684a5452",
       "context = 6-question QA preamble + '\\n\\nQ: {question}\\nA:'; continuation = ' {mc2 choice}'; "
       "score = sum p(true) / sum p(all)",
       "truthfulqa-multi's English export of the validation split", false, load_truthfulqa_mc2, McScoring::Mc2},
      // lm-eval 0.4.13 lambada_openai (v1.0): output_type loglikelihood, acc = is_greedy, perplexity.
      {"lambada_openai", "1", {"llm_foundry_icl/lambada_openai.jsonl"},
       "411bfbe5b9054346b6a19299c0242670adbefb9162efd958593cbc0290b8c9dc",
       "context = text without its last word; continuation = ' ' + last word",
       "llm-foundry's split of the openai LAMBADA test text into context and last word", false, load_lambada,
       McScoring::Greedy},
  };
  return tasks;
}

const TaskSpec& find_task(const std::string& name) {
  std::string known;
  for (const auto& t : task_registry()) {
    if (t.name == name) return t;
    known += (known.empty() ? "" : ", ") + t.name;
  }
  fail("unknown task '{}' (known: {})", name, known);
}

LoadedTask load_task(const std::string& name, const std::string& data_dir, size_t limit) {
  LoadedTask lt;
  lt.spec = &find_task(name);
  std::vector<std::string> paths;
  for (const auto& f : lt.spec->files) paths.push_back(data_dir + "/" + f);
  lt.items = lt.spec->load(paths);
  QB_CHECK(!lt.items.empty(), "{}: task {} has no items", paths[0], name);
  auto sha = [](const std::string& p) { return p.ends_with("/") ? sha256_directory(p) : sha256_file(p); };
  lt.dataset_sha256 = sha(paths[0]);
  for (size_t i = 1; i < paths.size(); ++i) lt.dataset_sha256.append("+").append(sha(paths[i]));
  lt.is_slice = lt.dataset_sha256.substr(0, 64) != lt.spec->full_sha256;
  if (limit > 0 && lt.spec->limit_per_group) {
    std::vector<McItem> kept;
    std::map<std::string, size_t> seen;
    for (auto& it : lt.items)
      if (seen[it.group]++ < limit) kept.push_back(std::move(it));
    lt.items = std::move(kept);
  } else if (limit > 0 && lt.items.size() > limit) {
    lt.items.resize(limit);
  }
  return lt;
}

}  // namespace qb::eval
