// Test-data helpers for the tokenizer tests: bundled files under data/ are gzip-compressed (the repo
// must stay small), so they are inflated with zlib into the build tree before use.
#pragma once
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "quantbench/core/error.h"
#include "quantbench/core/read_file.h"
#include "../test_paths.h"

namespace qb::test {

inline std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) qb::fail("{}: cannot open", path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Inflates data/<rel>.gz into the build tree once and returns the path of the plain file.
inline std::string inflated_path(const std::string& rel) {
  namespace fs = std::filesystem;
  const fs::path out = fs::path(QB_BINARY_DIR) / "test_data" / rel;
  if (!fs::exists(out)) {
    fs::create_directories(out.parent_path());
    const std::string bytes = read_file_maybe_gz(source_path(rel + ".gz"));
    const fs::path tmp = out.string() + ".tmp";
    {
      std::ofstream o(tmp, std::ios::binary);
      o.write(bytes.data(), std::streamsize(bytes.size()));
    }
    fs::rename(tmp, out);
  }
  return out.string();
}

// llama.cpp's test-tokenizer-0 format: .inp holds tests separated by "\n__ggml_vocab_test__\n", .out one
// line of space-separated ids per test.
struct VocabCase {
  std::string text;
  std::vector<int32_t> ids;
};
inline std::vector<VocabCase> read_vocab_cases(const std::string& inp_path, const std::string& out_path) {
  const std::string raw = read_text_file(inp_path);
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> inputs;
  for (size_t pos = 0; pos < raw.size();) {
    const size_t next = raw.find(sep, pos);
    if (next == std::string::npos) {
      inputs.push_back(raw.substr(pos));
      break;
    }
    inputs.push_back(raw.substr(pos, next - pos));
    pos = next + sep.size();
  }
  std::vector<std::vector<int32_t>> outputs;
  std::ifstream out(out_path);
  for (std::string line; std::getline(out, line);) {
    std::vector<int32_t> ids;
    size_t pos = 0;
    while (pos < line.size()) {
      while (pos < line.size() && line[pos] == ' ') ++pos;
      if (pos >= line.size()) break;
      size_t end = line.find(' ', pos);
      if (end == std::string::npos) end = line.size();
      ids.push_back(std::stoi(line.substr(pos, end - pos)));
      pos = end;
    }
    outputs.push_back(std::move(ids));
  }
  if (inputs.size() != outputs.size())
    qb::fail("{}: {} inputs but {} outputs", inp_path, inputs.size(), outputs.size());
  std::vector<VocabCase> cases;
  for (size_t i = 0; i < inputs.size(); ++i) cases.push_back({inputs[i], outputs[i]});
  return cases;
}

}  // namespace qb::test
