// Text and token-sequence metrics for long-form generation and math answers (EVALUATION.md:
// "Long-form generation", "Out-of-distribution"): ROUGE-L, chrF, first divergence, agreement by
// position, repetition rate, and GSM8K answer extraction.
//
// Design choice: each metric follows one named reference implementation exactly, so our numbers can be
// set beside published ones: ROUGE-L is Google's `rouge-score` (rougeL, default tokenizer, no
// stemmer), chrF is sacrebleu's CHRF() defaults (char order 6, word order 0, beta 2, whitespace
// removed, no lowercasing, no eps smoothing), GSM8K extraction is lm-evaluation-harness's gsm8k task
// (version 3.0) regexes. Golden files made by those packages test each one.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace qb::eval {

struct PrfScore {
  double precision = 0, recall = 0, fmeasure = 0;
};

// rouge-score's default tokenizer: lowercase, every run of characters outside [a-z0-9] is a separator.
// Exact for ASCII; bytes >= 0x80 are treated as separators (Python's str.lower() would fold a few
// non-ASCII letters such as the Kelvin sign into ASCII ones).
std::vector<std::string> rouge_tokenize(std::string_view text);
// Length of the longest common subsequence.
size_t lcs_length(std::span<const int32_t> a, std::span<const int32_t> b);
// ROUGE-L of candidate against reference: precision = LCS / |candidate|, recall = LCS / |reference|,
// F1; all zero if either side has no tokens (rouge-score's RougeScorer(["rougeL"]).score(ref, cand)).
PrfScore rouge_l(std::string_view reference, std::string_view candidate);
// The same on token ids (e.g. the model's own tokens).
PrfScore rouge_l_tokens(std::span<const int32_t> reference, std::span<const int32_t> candidate);

// chrF statistics: for each character n-gram order 1..order, {hyp n-grams, ref n-grams, matches}
// (sacrebleu counts hyp n-grams as 0 when the reference has none of that order). Text is UTF-8 and
// n-grams are over code points after removing Unicode whitespace (Python's str.split() set).
// Throws qb::Error on invalid UTF-8.
struct ChrfStats {
  std::vector<uint64_t> counts;  // 3 * order: hyp, ref, match per order
  ChrfStats& operator+=(const ChrfStats& o);
};
ChrfStats chrf_statistics(std::string_view hypothesis, std::string_view reference, int char_order = 6);
// chrF in [0, 100] from (possibly corpus-summed) statistics: precision and recall averaged over the
// orders where both sides have n-grams, then F_beta.
double chrf_from_statistics(const ChrfStats& s, double beta = 2.0);
// Sentence chrF, as sacrebleu CHRF().sentence_score(hypothesis, [reference]).score.
double chrf(std::string_view hypothesis, std::string_view reference);

// Index of the first position where the sequences differ; if one is a prefix of the other (or they
// are equal) it is the shorter length.
size_t first_divergence(std::span<const int32_t> a, std::span<const int32_t> b);

// Token agreement by position over many (baseline, candidate) pairs. Position i of a pair counts when
// i < max(|a|, |b|) and agrees when both have a token there and it is the same (a sequence that
// stopped early disagrees with one that goes on).
struct PositionAgreement {
  std::vector<uint64_t> agree, counted;
  void add(std::span<const int32_t> a, std::span<const int32_t> b);
  double rate(size_t position) const;  // agree / counted; throws if nothing was counted there
};

// Repetition (degeneration) rate: the fraction of the sequence's n-grams that repeat an n-gram seen
// earlier in the same sequence, 1 - distinct / total; 0 when the sequence has no n-gram. Default n = 4.
double repetition_rate(std::span<const int32_t> tokens, size_t n = 4);

// GSM8K answer extraction, lm-eval gsm8k.yaml v3.0. Both return "[invalid]" when nothing matches.
inline constexpr std::string_view kGsm8kInvalid = "[invalid]";
// strict-match: regex "#### (\-?[0-9\.\,]+)", first match, group 1.
std::string gsm8k_extract_strict(std::string_view response);
// flexible-extract: regex "(-?[$0-9.,]{2,})|(-?[0-9]+)", last match, first non-empty group, stripped.
std::string gsm8k_extract_flexible(std::string_view response);
// exact_match's normalisation: remove every match of ",", "\$", "(?s).*#### ", "\.$", then lowercase.
std::string gsm8k_normalize(std::string_view s);
// exact_match of an extracted answer against the dataset's answer field ("...#### 72").
bool gsm8k_exact_match(std::string_view extracted, std::string_view target);

}  // namespace qb::eval
