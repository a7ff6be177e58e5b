// Code tasks: loaders for HumanEval and MBPP and lm-eval 0.4.13's prompt construction (see code_tasks.h).
// The few-shot join follows lm-eval's build_qa_turn: each example is question + target_delimiter
// (MBPP: "") + target + fewshot_delimiter ("\n\n"), then the question being asked with no delimiter.
#include "quantbench/eval/code_tasks.h"

#include <filesystem>
#include <map>
#include <span>

#include <nlohmann/json.hpp>

#include "quantbench/core/error.h"
#include "quantbench/core/read_file.h"
#include "quantbench/core/sha256.h"

namespace qb::eval {
namespace {

// Pinned full files (data/SOURCES.md of the shared data, and data/SOURCES.md here for the slices).
constexpr const char* kHumanEvalGzSha = "b796127e635a67f93fb35c04f4cb03cf06f38c8072ee7cee8833d7bee06979ef";
constexpr const char* kHumanEvalJsonlSha = "1d49078ba3e2b196b9344535bef34a43021f038fad9561d6ee7c53450609a6a2";
constexpr const char* kMbppSha = "adbb4fda9ec80be5648f106fb044a2d7e2f3d279d0030ea98ac9e73eae3cf5ff";

std::string sha_of(const std::string& s) {
  return sha256_hex(std::span(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
}

// Parsed JSON lines with their line numbers (blank lines skipped).
std::vector<std::pair<size_t, nlohmann::json>> json_lines(const std::string& path, const std::string& text) {
  std::vector<std::pair<size_t, nlohmann::json>> out;
  size_t ln = 0, start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    ++ln;
    const std::string line = text.substr(start, end - start);
    start = end + 1;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      out.emplace_back(ln, nlohmann::json::parse(line));
    } catch (const nlohmann::json::exception& e) {
      fail("{}:{}: bad JSON: {}", path, ln, e.what());
    }
    QB_CHECK(out.back().second.is_object(), "{}:{}: expected a JSON object", path, ln);
  }
  return out;
}

std::string str_field(const nlohmann::json& j, const char* key, const std::string& path, size_t ln) {
  QB_CHECK(j.contains(key) && j[key].is_string(), "{}:{}: field '{}' missing or not a string", path, ln, key);
  return j[key].get<std::string>();
}

std::vector<std::string> test_list(const nlohmann::json& j, const std::string& path, size_t ln) {
  QB_CHECK(j.contains("test_list") && j["test_list"].is_array(), "{}:{}: field 'test_list' missing or not an array",
           path, ln);
  std::vector<std::string> t;
  for (const auto& x : j["test_list"]) {
    QB_CHECK(x.is_string(), "{}:{}: 'test_list' holds a non-string", path, ln);
    t.push_back(x.get<std::string>());
  }
  // lm-eval's template indexes test_list[0..2] under StrictUndefined: fewer than three is an error there too.
  QB_CHECK(t.size() >= 3, "{}:{}: 'test_list' has {} tests, lm-eval's prompt needs 3", path, ln, t.size());
  return t;
}

CodeTask load_humaneval(const std::string& data_dir, size_t limit) {
  CodeTask t;
  t.name = "humaneval";
  t.version = "1.0";
  t.source = "lm-evaluation-harness 0.4.13 tasks/humaneval/humaneval.yaml + utils.py (greedy, pass@1)";
  t.stops = {"\nclass", "\ndef", "\n#", "\nif", "\nprint"};
  t.max_gen_toks = 1024;
  t.shots = 0;
  t.prompt_template = "{{prompt}}";
  const std::string gz = data_dir + "/humaneval/HumanEval.jsonl.gz", plain = data_dir + "/humaneval/HumanEval.jsonl";
  t.dataset_path = std::filesystem::exists(gz) ? gz : plain;
  QB_CHECK(std::filesystem::exists(t.dataset_path), "humaneval: neither {} nor {} exists", gz, plain);
  const std::string raw = read_file_maybe_gz(t.dataset_path);
  t.dataset_sha256 = sha256_file(t.dataset_path);  // of the file as stored
  const bool gzipped = t.dataset_path == gz;
  t.full_sha256 = gzipped ? kHumanEvalGzSha : kHumanEvalJsonlSha;
  t.is_slice = t.dataset_sha256 != t.full_sha256;
  for (const auto& [ln, j] : json_lines(t.dataset_path, raw)) {
    CodeItem it;
    it.id = str_field(j, "task_id", t.dataset_path, ln);
    const std::string prompt = str_field(j, "prompt", t.dataset_path, ln);
    const std::string entry = str_field(j, "entry_point", t.dataset_path, ln);
    it.prompt = humaneval_prompt(prompt);
    it.program_head = prompt;  // utils.build_predictions: doc["prompt"] + completion
    it.tests = str_field(j, "test", t.dataset_path, ln) + "\ncheck(" + entry + ")";  // doc_to_target
    it.canonical = str_field(j, "canonical_solution", t.dataset_path, ln);
    t.items.push_back(std::move(it));
    if (limit > 0 && t.items.size() >= limit) break;
  }
  QB_CHECK(!t.items.empty(), "{}: no problems", t.dataset_path);
  return t;
}

CodeTask load_mbpp(const std::string& data_dir, size_t limit) {
  CodeTask t;
  t.name = "mbpp";
  t.version = "1.0";
  t.source = "lm-evaluation-harness 0.4.13 tasks/mbpp/mbpp.yaml + utils.py (full config, test split = task ids "
             "11-510, 3-shot first_n from utils.list_fewshot_samples = task ids 2, 3, 4)";
  t.stops = {"[DONE]"};
  t.max_gen_toks = 256;
  t.shots = 3;
  t.prompt_template =
      "You are an expert Python programmer, and here is your task: {{text}} Your code should pass these tests:\\n\\n"
      "{{test_list[0]}}\\n{{test_list[1]}}\\n{{test_list[2]}}\\n[BEGIN]\\n; few-shot target {{code}}\\n[DONE]; "
      "target_delimiter \"\", fewshot_delimiter \"\\n\\n\"";
  t.dataset_path = data_dir + "/mbpp/mbpp.jsonl";
  QB_CHECK(std::filesystem::exists(t.dataset_path), "mbpp: {} does not exist", t.dataset_path);
  const std::string raw = read_file_maybe_gz(t.dataset_path);
  t.dataset_sha256 = sha_of(raw);
  t.full_sha256 = kMbppSha;
  t.is_slice = t.dataset_sha256 != t.full_sha256;
  std::map<int64_t, std::string> shots;  // task id -> rendered example
  std::vector<std::pair<size_t, nlohmann::json>> tests;
  for (auto& [ln, j] : json_lines(t.dataset_path, raw)) {
    QB_CHECK(j.contains("task_id") && j["task_id"].is_number_integer(), "{}:{}: field 'task_id' missing or not an integer",
             t.dataset_path, ln);
    const int64_t id = j["task_id"].get<int64_t>();
    if (id >= 2 && id <= 4) {
      shots[id] = mbpp_question(str_field(j, "text", t.dataset_path, ln), test_list(j, t.dataset_path, ln)) +
                  str_field(j, "code", t.dataset_path, ln) + "\n[DONE]" + "\n\n";
    } else if (id >= 11 && id <= 510) {
      tests.emplace_back(ln, std::move(j));
    }
  }
  QB_CHECK(shots.size() == 3, "{}: the few-shot examples (task ids 2, 3, 4) are not all present", t.dataset_path);
  const std::string fewshot = shots[2] + shots[3] + shots[4];
  for (const auto& [ln, j] : tests) {
    CodeItem it;
    it.id = "mbpp/" + std::to_string(j["task_id"].get<int64_t>());
    const auto tl = test_list(j, t.dataset_path, ln);
    it.prompt = fewshot + mbpp_question(str_field(j, "text", t.dataset_path, ln), tl);
    it.tests = tl[0] + "\n" + tl[1] + "\n" + tl[2];  // doc_to_target without is_fewshot
    it.canonical = str_field(j, "code", t.dataset_path, ln);
    t.items.push_back(std::move(it));
    if (limit > 0 && t.items.size() >= limit) break;
  }
  QB_CHECK(!t.items.empty(), "{}: no test-split problems (task ids 11-510)", t.dataset_path);
  return t;
}

}  // namespace

bool is_code_task(const std::string& name) { return name == "humaneval" || name == "mbpp"; }

const std::vector<std::string>& code_task_names() {
  static const std::vector<std::string> names{"humaneval", "mbpp"};
  return names;
}

std::string humaneval_prompt(const std::string& prompt) { return prompt; }

std::string mbpp_question(const std::string& text, const std::vector<std::string>& tl) {
  QB_CHECK(tl.size() >= 3, "mbpp: lm-eval's prompt needs 3 tests, got {}", tl.size());
  return "You are an expert Python programmer, and here is your task: " + text +
         " Your code should pass these tests:\n\n" + tl[0] + "\n" + tl[1] + "\n" + tl[2] + "\n[BEGIN]\n";
}

std::string code_program(const CodeItem& item, const std::string& completion) {
  return item.program_head + completion + "\n" + item.tests;
}

CodeTask load_code_task(const std::string& name, const std::string& data_dir, size_t limit) {
  if (name == "humaneval") return load_humaneval(data_dir, limit);
  if (name == "mbpp") return load_mbpp(data_dir, limit);
  fail("unknown code task '{}' (humaneval, mbpp)", name);
}

}  // namespace qb::eval
