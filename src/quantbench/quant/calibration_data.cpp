// See calibration_data.h. JSONL documents are joined with a blank line between them before
// tokenizing, so windows may span documents (as llama.cpp's imatrix does with its text file).
#include "quantbench/quant/calibration_data.h"

#include <fmt/format.h>

#include <random>
#include <sstream>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "quantbench/core/error.h"
#include "quantbench/core/read_file.h"
#include "quantbench/core/sha256.h"

namespace qb::quant {

namespace {

bool ends_with(const std::string& s, std::string_view suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

std::string jsonl_text(const std::string& raw, const std::string& source) {
  std::string out;
  std::istringstream in(raw);
  std::string line;
  int64_t lineno = 0, docs = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const std::exception& e) {
      fail("{}: line {}: not valid JSON ({})", source, lineno, e.what());
    }
    if (!j.is_object() || !j.contains("text") || !j["text"].is_string())
      fail("{}: line {}: expected an object with a string field \"text\"", source, lineno);
    if (docs++) out += "\n\n";
    out += j["text"].get<std::string>();
  }
  return out;
}

}  // namespace

CalibrationData make_calibration(const std::string& raw, const std::string& source, const CalibrationConfig& cfg,
                                 const tokenizer::Tokenizer& tok) {
  QB_CHECK(cfg.n_samples > 0, "calibration: --calib-samples must be positive, got {}", cfg.n_samples);
  QB_CHECK(cfg.seq_len >= 2, "calibration: --calib-len must be at least 2, got {}", cfg.seq_len);
  const bool jsonl = ends_with(source, ".jsonl");
  const std::string text = jsonl ? jsonl_text(raw, source) : raw;

  CalibrationData d;
  d.all_tokens = tok.encode(text, /*add_special=*/false, /*parse_special=*/false);
  const bool bos = tok.add_bos() && tok.bos() != tokenizer::kNoToken;
  const int64_t body = cfg.seq_len - (bos ? 1 : 0);
  const int64_t n_windows = int64_t(d.all_tokens.size()) / body;
  if (n_windows < cfg.n_samples)
    fail("{}: too little calibration text: {} tokens make {} windows of {} tokens, but {} samples were asked for "
         "(need at least {} tokens)",
         source, d.all_tokens.size(), n_windows, cfg.seq_len, cfg.n_samples, cfg.n_samples * body);

  // Seeded Fisher-Yates over window indices with raw mt19937_64 output (its sequence is fixed by the
  // standard; uniform_int_distribution's is not), then the first n_samples windows in shuffled order.
  std::vector<int64_t> idx(static_cast<size_t>(n_windows));
  for (int64_t i = 0; i < n_windows; ++i) idx[size_t(i)] = i;
  std::mt19937_64 rng(cfg.seed);
  for (int64_t i = n_windows - 1; i > 0; --i) std::swap(idx[size_t(i)], idx[size_t(rng() % uint64_t(i + 1))]);
  for (int64_t s = 0; s < cfg.n_samples; ++s) {
    std::vector<int32_t> sample;
    sample.reserve(size_t(cfg.seq_len));
    if (bos) sample.push_back(tok.bos());
    const auto* p = d.all_tokens.data() + idx[size_t(s)] * body;
    sample.insert(sample.end(), p, p + body);
    d.samples.push_back(std::move(sample));
  }

  auto fact = [&](std::string k, std::string v) { d.facts.emplace_back("calibration." + k, std::move(v)); };
  fact("dataset", source);
  fact("dataset_sha256", sha256_hex({reinterpret_cast<const uint8_t*>(raw.data()), raw.size()}));
  fact("format", jsonl ? "jsonl (field \"text\", documents joined by a blank line)" : "text");
  fact("bytes", std::to_string(raw.size()));
  fact("tokens_total", std::to_string(d.all_tokens.size()));
  fact("samples", fmt::format("{} x {}", cfg.n_samples, cfg.seq_len));
  fact("seed", std::to_string(cfg.seed));
  fact("sampling", fmt::format("{} non-overlapping windows of {} tokens{}, shuffled with mt19937_64(seed)", n_windows,
                               body, bos ? " after BOS" : ""));
  fact("tokens_used", std::to_string(cfg.n_samples * cfg.seq_len));
  return d;
}

CalibrationData load_calibration(const CalibrationConfig& cfg, const tokenizer::Tokenizer& tok) {
  return make_calibration(read_file(cfg.path, "calibration file"), cfg.path, cfg, tok);
}

namespace {
uint64_t ngram_hash(const int32_t* p, int n) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a over the ids; collisions only overstate overlap
  for (int i = 0; i < n; ++i) {
    h ^= uint32_t(p[i]);
    h *= 1099511628211ull;
  }
  return h;
}
}  // namespace

double ngram_overlap(const std::vector<int32_t>& calib, const std::vector<int32_t>& eval, int n) {
  QB_CHECK(n > 0, "ngram_overlap: n must be positive");
  if (int64_t(eval.size()) < n || int64_t(calib.size()) < n) return 0.0;
  std::unordered_set<uint64_t> c, e;
  for (size_t i = 0; i + size_t(n) <= calib.size(); ++i) c.insert(ngram_hash(calib.data() + i, n));
  for (size_t i = 0; i + size_t(n) <= eval.size(); ++i) e.insert(ngram_hash(eval.data() + i, n));
  size_t shared = 0;
  for (uint64_t h : e) shared += c.count(h);
  return double(shared) / double(e.size());
}

std::optional<std::string> overlap_warning(const std::vector<int32_t>& calib, const std::vector<int32_t>& eval, int n,
                                           double threshold) {
  const double f = ngram_overlap(calib, eval, n);
  if (f <= threshold) return std::nullopt;
  return fmt::format("calibration text overlaps the evaluation text: {:.1f}% of the evaluation's {}-grams occur in "
                     "it (results may be flattered)",
                     100.0 * f, n);
}

}  // namespace qb::quant
