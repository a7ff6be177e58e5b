// Multiple-choice tasks as versioned data. Each task is one row of a table (tasks/registry.cpp): its
// name, version, the dataset files it reads under a data directory, the sha256 of the full upstream
// files (a vendored slice records its own sha256 and says it is a slice), a description of the prompt
// template (hashed into the Manifest), and a loader that turns the files into items. Prompt
// construction follows lm-evaluation-harness: an item is a set of (context, continuation) requests,
// scored by the summed log-likelihood of the continuation given the context.
#pragma once
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

namespace qb::eval {

struct McOption {
  std::string context;
  std::string continuation;  // with lm-eval's target delimiter (" ") already in front
  size_t choice_chars = 0;   // length of the choice text without the delimiter (acc_norm's denominator)
};

struct McItem {
  std::string id;
  std::vector<McOption> options;
  size_t gold = 0;
};

struct TaskSpec {
  std::string name;
  std::string version;
  std::vector<std::string> files;  // relative to the data directory
  std::string full_sha256;         // sha256 of files[0] as published upstream (the full dataset)
  std::string prompt_template;     // human-readable; its sha256 is the Manifest's prompt_template_hash
  std::string notes;               // where we differ from lm-eval, said plainly
  bool has_acc_norm = true;        // false where every option shares the continuation (WinoGrande)
  std::function<std::vector<McItem>(const std::vector<std::string>& paths)> load;
};

const std::vector<TaskSpec>& task_registry();
const TaskSpec& find_task(const std::string& name);  // throws qb::Error listing the known names

struct LoadedTask {
  const TaskSpec* spec = nullptr;
  std::vector<McItem> items;
  std::string dataset_sha256;  // of the files read (files[0] alone when there is one)
  bool is_slice = false;       // the file read is not the pinned full dataset
};
// Loads `name` from `data_dir`; limit > 0 keeps the first `limit` items.
LoadedTask load_task(const std::string& name, const std::string& data_dir, size_t limit = 0);

// lm-eval's HellaSwag preprocess: strip, " [title]" -> ". ", drop "[...]" tags, "  " -> " ".
std::string hellaswag_preprocess(const std::string& text);

}  // namespace qb::eval
