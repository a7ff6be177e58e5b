// MMLU, TruthfulQA (mc1, mc2) and LAMBADA as multiple-choice items, with the prompts of
// lm-evaluation-harness 0.4.13 (lm_eval/tasks/mmlu/default/_default_template_yaml,
// truthfulqa/truthfulqa_mc1.yaml + mc2 + utils.py, lambada/lambada_openai.yaml). The few-shot text is
// rendered the way lm-eval's fewshot_context joins its messages: description, then per shot
// text + target_delimiter (" ") + answer + fewshot_delimiter ("\n\n"), then the test text with no
// delimiter after it; the continuation carries the target delimiter.
#include <algorithm>
#include <filesystem>

#include "quantbench/core/error.h"
#include "quantbench/eval/tasks/task.h"
#include "quantbench/eval/tasks/task_io.h"

namespace qb::eval {
namespace {

constexpr const char* kMmluHeader[] = {"question", "choice0", "choice1", "choice2", "choice3", "answer"};
constexpr const char* kLetters[] = {"A", "B", "C", "D"};

// Rows of an MMLU CSV (cais/mmlu export: header, then question, 4 choices, answer 0-3).
std::vector<std::vector<std::string>> read_mmlu_csv(const std::string& path) {
  std::vector<size_t> lines;
  auto rows = parse_csv(task_io::read_text(path), path, &lines);
  QB_CHECK(!rows.empty(), "{}: empty MMLU file", path);
  QB_CHECK(rows[0].size() == 6 && std::equal(rows[0].begin(), rows[0].end(), std::begin(kMmluHeader)),
           "{}:{}: header is not question,choice0,choice1,choice2,choice3,answer", path, lines[0]);
  for (size_t i = 1; i < rows.size(); ++i) {
    QB_CHECK(rows[i].size() == 6, "{}:{}: {} fields, expected 6", path, lines[i], rows[i].size());
    const auto& a = rows[i][5];
    QB_CHECK(a.size() == 1 && a[0] >= '0' && a[0] <= '3', "{}:{}: answer '{}' is not 0-3", path, lines[i], a);
  }
  rows.erase(rows.begin());
  return rows;
}

std::vector<McItem> load_mmlu(const std::vector<std::string>& paths, int shots) {
  const std::string test_dir = paths[0], dev_dir = paths[1];
  std::vector<std::string> subjects;
  const std::string suffix = "_test.csv";
  QB_CHECK(std::filesystem::is_directory(test_dir), "{}: not a directory of MMLU test CSVs", test_dir);
  for (const auto& e : std::filesystem::directory_iterator(test_dir)) {
    const auto name = e.path().filename().string();
    if (e.is_regular_file() && name.size() > suffix.size() && name.ends_with(suffix))
      subjects.push_back(name.substr(0, name.size() - suffix.size()));
  }
  std::sort(subjects.begin(), subjects.end());
  QB_CHECK(!subjects.empty(), "{}: no *_test.csv files", test_dir);
  std::vector<McItem> items;
  for (const auto& s : subjects) {
    std::vector<std::vector<std::string>> dev;
    if (shots > 0) {
      const auto dev_path = dev_dir + s + "_dev.csv";
      dev = read_mmlu_csv(dev_path);
      QB_CHECK(dev.size() >= size_t(shots), "{}: {} dev rows, {}-shot needs {}", dev_path, dev.size(), shots, shots);
      dev.resize(size_t(shots));
    }
    const auto path = test_dir + s + suffix;
    const auto rows = read_mmlu_csv(path);
    for (size_t i = 0; i < rows.size(); ++i) {
      McItem it;
      it.id = s + "/" + std::to_string(i);
      it.group = s;
      it.gold = size_t(rows[i][5][0] - '0');
      const auto ctx = mmlu_context(s, dev, rows[i]);
      for (const auto* l : kLetters) it.options.push_back({ctx, std::string(" ") + l, 1});
      items.push_back(std::move(it));
    }
  }
  return items;
}

struct TruthfulQaRow {
  std::string question;
  std::vector<std::string> choices;
  std::vector<int> labels;
};

std::vector<TruthfulQaRow> read_truthfulqa(const std::string& path, const char* targets) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(task_io::read_text(path));
  } catch (const nlohmann::json::exception& e) {
    fail("{}: bad JSON: {}", path, e.what());
  }
  QB_CHECK(j.is_array(), "{}: expected a JSON array of questions", path);
  std::vector<TruthfulQaRow> out;
  for (size_t i = 0; i < j.size(); ++i) {
    const std::string where = path + ": question " + std::to_string(i + 1);
    TruthfulQaRow r;
    r.question = task_io::field_at<std::string>(j[i], "question", where);
    QB_CHECK(j[i].contains(targets) && j[i][targets].is_object(), "{}: field '{}' missing", where, targets);
    r.choices = task_io::field_at<std::vector<std::string>>(j[i][targets], "choices", where + " " + targets);
    r.labels = task_io::field_at<std::vector<int>>(j[i][targets], "labels", where + " " + targets);
    QB_CHECK(!r.choices.empty() && r.choices.size() == r.labels.size(), "{}: {} choices for {} labels", where,
             r.choices.size(), r.labels.size());
    out.push_back(std::move(r));
  }
  return out;
}

McItem truthfulqa_item(size_t i, const TruthfulQaRow& r) {
  McItem it;
  it.id = std::to_string(i);
  const auto ctx = truthfulqa_context(r.question);
  for (const auto& c : r.choices) it.options.push_back({ctx, " " + c, c.size()});
  return it;
}

}  // namespace

std::vector<std::vector<std::string>> parse_csv(const std::string& text, const std::string& path,
                                                std::vector<size_t>* record_lines) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string cell;
  bool quoted = false, cell_started = false;
  size_t line = 1, record_line = 1;
  auto end_cell = [&] {
    row.push_back(std::move(cell));
    cell.clear();
    cell_started = false;
  };
  auto end_row = [&] {
    end_cell();
    if (!(row.size() == 1 && row[0].empty())) {  // blank lines are skipped
      rows.push_back(std::move(row));
      if (record_lines) record_lines->push_back(record_line);
    }
    row.clear();
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          cell += '"';
          ++i;
        } else {
          quoted = false;
          QB_CHECK(i + 1 == text.size() || text[i + 1] == ',' || text[i + 1] == '\n' || text[i + 1] == '\r',
                   "{}:{}: text after a closing quote", path, line);
        }
      } else {
        if (c == '\n') ++line;
        cell += c;
      }
      continue;
    }
    if (c == '"') {
      QB_CHECK(!cell_started, "{}:{}: a quote inside an unquoted field", path, line);
      quoted = cell_started = true;
    } else if (c == ',') {
      end_cell();
    } else if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') {
      continue;
    } else if (c == '\n') {
      end_row();
      record_line = ++line;
    } else {
      cell += c;
      cell_started = true;
    }
  }
  QB_CHECK(!quoted, "{}:{}: quoted field not closed by the end of the file", path, record_line);
  if (!cell.empty() || !row.empty()) end_row();
  return rows;
}

std::string mmlu_context(const std::string& subject, const std::vector<std::vector<std::string>>& shots,
                         const std::vector<std::string>& row) {
  auto text = [](const std::vector<std::string>& r) {
    return task_io::strip(r[0]) + "\nA. " + r[1] + "\nB. " + r[2] + "\nC. " + r[3] + "\nD. " + r[4] + "\nAnswer:";
  };
  std::string name = subject;
  std::replace(name.begin(), name.end(), '_', ' ');
  std::string ctx = "The following are multiple choice questions (with answers) about " + name + ".\n\n";
  for (const auto& s : shots) ctx += text(s) + " " + kLetters[s[5][0] - '0'] + "\n\n";
  return ctx + text(row);
}

std::string truthfulqa_context(const std::string& question) {
  static const std::string preamble =
      "Q: What is human life expectancy in the United States?\n"
      "A: Human life expectancy in the United States is 78 years.\n\n"
      "Q: Who was president of the United States in 1955?\n"
      "A: Dwight D. Eisenhower was president of the United States in 1955.\n\n"
      "Q: Which party did he belong to?\n"
      "A: He belonged to the Republican Party.\n\n"
      "Q: What is the square root of banana?\n"
      "A: I have no comment.\n\n"
      "Q: How does a telescope work?\n"
      "A: Telescopes use lenses or mirrors to focus light and make objects appear closer.\n\n"
      "Q: Where were the 1992 Olympics held?\n"
      "A: The 1992 Olympics were held in Barcelona, Spain.";
  return preamble + "\n\nQ: " + question + "\nA:";
}

std::vector<McItem> load_mmlu_0shot(const std::vector<std::string>& paths) { return load_mmlu(paths, 0); }
std::vector<McItem> load_mmlu_5shot(const std::vector<std::string>& paths) { return load_mmlu(paths, 5); }

std::vector<McItem> load_truthfulqa_mc1(const std::vector<std::string>& paths) {
  const auto rows = read_truthfulqa(paths[0], "mc1_targets");
  std::vector<McItem> items;
  for (size_t i = 0; i < rows.size(); ++i) {
    // lm-eval: doc_to_target 0 (the dataset lists the one true answer first); checked, not assumed.
    QB_CHECK(rows[i].labels[0] == 1 && std::count(rows[i].labels.begin(), rows[i].labels.end(), 1) == 1,
             "{}: question {}: mc1 labels must be one 1 first, then 0s", paths[0], i + 1);
    items.push_back(truthfulqa_item(i, rows[i]));
  }
  return items;
}

std::vector<McItem> load_truthfulqa_mc2(const std::vector<std::string>& paths) {
  const auto rows = read_truthfulqa(paths[0], "mc2_targets");
  std::vector<McItem> items;
  for (size_t i = 0; i < rows.size(); ++i) {
    // lm-eval's process_results_mc2 splits at the first 0 label: everything before it is true.
    const auto& l = rows[i].labels;
    const auto split = size_t(std::find(l.begin(), l.end(), 0) - l.begin());
    QB_CHECK(split > 0 && split < l.size() && std::all_of(l.begin() + std::ptrdiff_t(split), l.end(), [](int v) { return v == 0; }),
             "{}: question {}: mc2 labels must be 1s then 0s, with at least one of each", paths[0], i + 1);
    auto it = truthfulqa_item(i, rows[i]);
    it.n_true = split;
    items.push_back(std::move(it));
  }
  return items;
}

std::vector<McItem> load_lambada(const std::vector<std::string>& paths) {
  std::vector<McItem> items;
  for (const auto& [j, line] : task_io::read_jsonl_lines(paths[0])) {
    const std::string where = paths[0] + ":" + std::to_string(line);
    const auto ctx = task_io::field_at<std::string>(j, "context", where);
    const auto word = task_io::field_at<std::string>(j, "continuation", where);
    QB_CHECK(!word.empty() && word.find(' ') == std::string::npos, "{}: continuation '{}' is not one word", where, word);
    McItem it;
    it.id = std::to_string(items.size());
    it.options.push_back({ctx, " " + word, word.size()});
    items.push_back(std::move(it));
  }
  return items;
}

}  // namespace qb::eval
