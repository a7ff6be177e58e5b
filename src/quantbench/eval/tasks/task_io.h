// Reading task data files: lines, JSONL, typed JSON fields and whole files, each error naming the
// file and the line or row, shared by every task loader so the messages read the same everywhere.
#pragma once
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "quantbench/core/error.h"
#include "quantbench/core/read_file.h"

namespace qb::eval::task_io {

inline std::string read_text(const std::string& path) { return read_file(path, "dataset file"); }

inline std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  QB_CHECK(bool(in), "{}: cannot open dataset file", path);
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    out.push_back(line);
  }
  return out;
}

// Non-empty lines of a JSONL file, parsed, with their 1-based line numbers.
struct JsonLine {
  nlohmann::json value;
  size_t line = 0;
};
inline std::vector<JsonLine> read_jsonl_lines(const std::string& path) {
  std::vector<JsonLine> out;
  const auto lines = read_lines(path);
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].find_first_not_of(" \t") == std::string::npos) continue;
    try {
      out.push_back({nlohmann::json::parse(lines[i]), i + 1});
    } catch (const nlohmann::json::exception& e) {
      fail("{}:{}: bad JSON: {}", path, i + 1, e.what());
    }
  }
  return out;
}

inline std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::vector<nlohmann::json> out;
  for (auto& l : read_jsonl_lines(path)) out.push_back(std::move(l.value));
  return out;
}

// j[key] as T; `where` names the place ("file:line" or "file: row N").
template <class T>
T field_at(const nlohmann::json& j, const char* key, const std::string& where) {
  try {
    return j.at(key).get<T>();
  } catch (const nlohmann::json::exception&) {
    fail("{}: field '{}' missing or of the wrong type", where, key);
  }
}

inline std::string strip(const std::string& s) {
  const auto a = s.find_first_not_of(" \t\n\r\f\v");
  if (a == std::string::npos) return {};
  const auto b = s.find_last_not_of(" \t\n\r\f\v");
  return s.substr(a, b - a + 1);
}

}  // namespace qb::eval::task_io
