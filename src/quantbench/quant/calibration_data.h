// Calibration data: token samples drawn from a named text or JSONL file, tokenized with the model's
// own tokenizer. The whole file is tokenized once, cut into non-overlapping windows of `seq_len`
// tokens, and `n_samples` windows are picked by a seeded shuffle (std::mt19937_64 is specified
// bit-exactly by the standard, so a seed means the same samples everywhere). Everything that decides
// the samples (file sha256, sizes, seed, tokenizer) is recorded as calibration.* Manifest facts.
// Too little text is an error, not a silent reuse of windows.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "quantbench/tokenizer/tokenizer.h"

namespace qb::quant {

struct CalibrationConfig {
  std::string path;          // .jsonl (one object per line with a "text" string) or plain UTF-8 text
  int64_t n_samples = 128;
  int64_t seq_len = 512;     // tokens per sample, BOS included when the vocabulary adds one
  uint64_t seed = 0;
};

struct CalibrationData {
  std::vector<std::vector<int32_t>> samples;               // n_samples x seq_len token ids
  std::vector<std::pair<std::string, std::string>> facts;  // "calibration.*" keys, in order
  std::vector<int32_t> all_tokens;                         // the whole tokenized file (for overlap checks)
};

// Reads, tokenizes and samples. Throws qb::Error naming the file on unreadable input, bad JSONL, or
// too few tokens for n_samples x seq_len.
CalibrationData load_calibration(const CalibrationConfig& cfg, const tokenizer::Tokenizer& tok);
// Same from text already in memory (`source` names it in messages and facts).
CalibrationData make_calibration(const std::string& text, const std::string& source, const CalibrationConfig& cfg,
                                 const tokenizer::Tokenizer& tok);

// Fraction of the distinct n-grams of `eval` (token ids) that also occur in `calib`: 0 when the two
// share no n-gram. A contamination check: calibrating on the evaluation text flatters the result.
double ngram_overlap(const std::vector<int32_t>& calib, const std::vector<int32_t>& eval, int n = 32);
// A one-line warning when the overlap exceeds `threshold`, else nullopt.
std::optional<std::string> overlap_warning(const std::vector<int32_t>& calib, const std::vector<int32_t>& eval,
                                           int n = 32, double threshold = 0.01);

}  // namespace qb::quant
