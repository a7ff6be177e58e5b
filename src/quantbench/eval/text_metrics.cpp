// Text metrics; each follows the reference implementation named in text_metrics.h. Regexes go through
// PCRE2 (a Debian dependency already linked) because lm-eval's patterns are Python `re` syntax, which
// PCRE2 reads with the same meaning for these ASCII patterns; std::regex would differ at the edges.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "quantbench/eval/text_metrics.h"

#include <pcre2.h>

#include <algorithm>
#include <map>
#include <memory>
#include <unordered_map>

#include "quantbench/core/error.h"

namespace qb::eval {

namespace {

// ---- a minimal PCRE2 wrapper ---------------------------------------------------------------------

struct Match {
  size_t begin = 0, end = 0;
  std::vector<std::pair<size_t, size_t>> groups;  // [begin, end) per group; begin == npos if unset
};

class Regex {
 public:
  explicit Regex(std::string_view pattern) {
    int err = 0;
    PCRE2_SIZE off = 0;
    code_.reset(pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), 0, &err, &off, nullptr));
    QB_CHECK(code_ != nullptr, "regex '{}' does not compile (error {} at {})", pattern, err, off);
    data_.reset(pcre2_match_data_create_from_pattern(code_.get(), nullptr));
    QB_CHECK(data_ != nullptr, "regex '{}': out of memory", pattern);
  }

  // Every non-overlapping match, left to right, as Python's re.finditer.
  std::vector<Match> find_all(std::string_view s) const {
    std::vector<Match> out;
    size_t pos = 0;
    while (pos <= s.size()) {
      const int rc = pcre2_match(code_.get(), reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), pos, 0, data_.get(),
                                 nullptr);
      if (rc == PCRE2_ERROR_NOMATCH) break;
      QB_CHECK(rc > 0, "regex match failed (PCRE2 error {})", rc);
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(data_.get());
      Match m{ov[0], ov[1], {}};
      const uint32_t ngroups = pcre2_get_ovector_count(data_.get());
      for (uint32_t g = 1; g < ngroups; ++g)
        m.groups.emplace_back(g < static_cast<uint32_t>(rc) && ov[2 * g] != PCRE2_UNSET ? ov[2 * g] : std::string::npos,
                              g < static_cast<uint32_t>(rc) && ov[2 * g] != PCRE2_UNSET ? ov[2 * g + 1] : 0);
      out.push_back(m);
      pos = m.end > m.begin ? m.end : m.end + 1;  // step past an empty match
    }
    return out;
  }

  // s with every match removed (re.sub(pattern, "", s)).
  std::string remove_all(std::string_view s) const {
    std::string out;
    size_t last = 0;
    for (const Match& m : find_all(s)) {
      out.append(s.substr(last, m.begin - last));
      last = m.end;
    }
    out.append(s.substr(last));
    return out;
  }

 private:
  struct CodeFree {
    void operator()(pcre2_code* c) const { pcre2_code_free(c); }
  };
  struct DataFree {
    void operator()(pcre2_match_data* d) const { pcre2_match_data_free(d); }
  };
  std::unique_ptr<pcre2_code, CodeFree> code_;
  std::unique_ptr<pcre2_match_data, DataFree> data_;
};

std::string_view group_text(std::string_view s, const std::pair<size_t, size_t>& g) {
  if (g.first == std::string::npos) return {};
  return s.substr(g.first, g.second - g.first);
}

std::string_view strip_ascii_space(std::string_view s) {
  const auto sp = [](char c) { return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f); };
  while (!s.empty() && sp(s.front())) s.remove_prefix(1);
  while (!s.empty() && sp(s.back())) s.remove_suffix(1);
  return s;
}

// ---- UTF-8 -------------------------------------------------------------------------------------

std::vector<char32_t> decode_utf8(std::string_view s) {
  std::vector<char32_t> out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    int len = 0;
    char32_t cp = 0;
    if (b0 < 0x80) len = 1, cp = b0;
    else if ((b0 & 0xE0) == 0xC0) len = 2, cp = b0 & 0x1F;
    else if ((b0 & 0xF0) == 0xE0) len = 3, cp = b0 & 0x0F;
    else if ((b0 & 0xF8) == 0xF0) len = 4, cp = b0 & 0x07;
    else qb::fail("invalid UTF-8 lead byte 0x{:02x} at offset {}", b0, i);
    QB_CHECK(i + len <= s.size(), "truncated UTF-8 sequence at offset {}", i);
    for (int k = 1; k < len; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      QB_CHECK((b & 0xC0) == 0x80, "invalid UTF-8 continuation byte at offset {}", i + k);
      cp = (cp << 6) | (b & 0x3F);
    }
    static constexpr char32_t min_for_len[] = {0, 0, 0x80, 0x800, 0x10000};
    QB_CHECK(cp >= min_for_len[len] && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF),
             "invalid UTF-8 code point at offset {}", i);
    out.push_back(cp);
    i += len;
  }
  return out;
}

// Python's str.isspace() (what str.split() splits on).
bool is_unicode_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

std::vector<std::map<std::u32string, uint64_t>> char_ngrams(std::string_view text, int order) {
  std::vector<char32_t> cps = decode_utf8(text);
  std::erase_if(cps, is_unicode_space);
  std::vector<std::map<std::u32string, uint64_t>> grams(order);
  for (int n = 1; n <= order; ++n)
    for (size_t i = 0; i + n <= cps.size(); ++i) ++grams[n - 1][std::u32string(cps.begin() + i, cps.begin() + i + n)];
  return grams;
}

}  // namespace

// ---- ROUGE-L -------------------------------------------------------------------------------------

std::vector<std::string> rouge_tokenize(std::string_view text) {
  std::vector<std::string> tokens;
  std::string cur;
  for (char ch : text) {
    char c = (ch >= 'A' && ch <= 'Z') ? static_cast<char>(ch - 'A' + 'a') : ch;
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
      cur.push_back(c);
    } else if (!cur.empty()) {
      tokens.push_back(std::move(cur));
      cur.clear();
    }
  }
  if (!cur.empty()) tokens.push_back(std::move(cur));
  return tokens;
}

size_t lcs_length(std::span<const int32_t> a, std::span<const int32_t> b) {
  if (a.empty() || b.empty()) return 0;
  std::vector<size_t> prev(b.size() + 1, 0), cur(b.size() + 1, 0);
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = a[i - 1] == b[j - 1] ? prev[j - 1] + 1 : std::max(prev[j], cur[j - 1]);
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

PrfScore rouge_l_tokens(std::span<const int32_t> reference, std::span<const int32_t> candidate) {
  if (reference.empty() || candidate.empty()) return {};
  const double lcs = static_cast<double>(lcs_length(reference, candidate));
  PrfScore s;
  s.precision = lcs / static_cast<double>(candidate.size());
  s.recall = lcs / static_cast<double>(reference.size());
  s.fmeasure = s.precision + s.recall > 0 ? 2 * s.precision * s.recall / (s.precision + s.recall) : 0.0;
  return s;
}

PrfScore rouge_l(std::string_view reference, std::string_view candidate) {
  std::unordered_map<std::string, int32_t> ids;
  auto to_ids = [&](std::string_view text) {
    std::vector<int32_t> out;
    for (auto& t : rouge_tokenize(text)) out.push_back(ids.emplace(std::move(t), static_cast<int32_t>(ids.size())).first->second);
    return out;
  };
  const auto r = to_ids(reference);
  const auto c = to_ids(candidate);
  return rouge_l_tokens(r, c);
}

// ---- chrF ----------------------------------------------------------------------------------------

ChrfStats& ChrfStats::operator+=(const ChrfStats& o) {
  QB_CHECK(counts.size() == o.counts.size(), "chrF statistics of different orders cannot be summed");
  for (size_t i = 0; i < counts.size(); ++i) counts[i] += o.counts[i];
  return *this;
}

ChrfStats chrf_statistics(std::string_view hypothesis, std::string_view reference, int char_order) {
  QB_CHECK(char_order >= 1 && char_order <= 32, "chrF character order {} out of range", char_order);
  const auto hyp = char_ngrams(hypothesis, char_order);
  const auto ref = char_ngrams(reference, char_order);
  ChrfStats s;
  s.counts.assign(3 * char_order, 0);
  for (int n = 0; n < char_order; ++n) {
    uint64_t hyp_count = 0, ref_count = 0, match = 0;
    for (const auto& [g, c] : hyp[n]) {
      hyp_count += c;
      if (auto it = ref[n].find(g); it != ref[n].end()) match += std::min(c, it->second);
    }
    for (const auto& [g, c] : ref[n]) ref_count += c;
    s.counts[3 * n] = ref[n].empty() ? 0 : hyp_count;
    s.counts[3 * n + 1] = ref_count;
    s.counts[3 * n + 2] = match;
  }
  return s;
}

double chrf_from_statistics(const ChrfStats& s, double beta) {
  QB_CHECK(!s.counts.empty() && s.counts.size() % 3 == 0, "malformed chrF statistics");
  const double factor = beta * beta;
  double avg_prec = 0, avg_rec = 0;
  int effective = 0;
  for (size_t i = 0; i + 2 < s.counts.size(); i += 3) {
    const uint64_t h = s.counts[i], r = s.counts[i + 1], m = s.counts[i + 2];
    if (h > 0 && r > 0) {
      avg_prec += static_cast<double>(m) / static_cast<double>(h);
      avg_rec += static_cast<double>(m) / static_cast<double>(r);
      ++effective;
    }
  }
  if (effective == 0) return 0.0;
  avg_prec /= effective;
  avg_rec /= effective;
  if (avg_prec + avg_rec == 0) return 0.0;
  return 100 * (1 + factor) * avg_prec * avg_rec / (factor * avg_prec + avg_rec);
}

double chrf(std::string_view hypothesis, std::string_view reference) {
  return chrf_from_statistics(chrf_statistics(hypothesis, reference, 6), 2.0);
}

// ---- sequences -----------------------------------------------------------------------------------

size_t first_divergence(std::span<const int32_t> a, std::span<const int32_t> b) {
  const size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; ++i)
    if (a[i] != b[i]) return i;
  return n;
}

void PositionAgreement::add(std::span<const int32_t> a, std::span<const int32_t> b) {
  const size_t n = std::max(a.size(), b.size());
  if (counted.size() < n) {
    counted.resize(n, 0);
    agree.resize(n, 0);
  }
  for (size_t i = 0; i < n; ++i) {
    ++counted[i];
    if (i < a.size() && i < b.size() && a[i] == b[i]) ++agree[i];
  }
}

double PositionAgreement::rate(size_t position) const {
  QB_CHECK(position < counted.size() && counted[position] > 0, "no sequence reached position {}", position);
  return static_cast<double>(agree[position]) / static_cast<double>(counted[position]);
}

double repetition_rate(std::span<const int32_t> tokens, size_t n) {
  QB_CHECK(n >= 1, "repetition_rate: n must be at least 1");
  if (tokens.size() < n) return 0.0;
  std::vector<std::vector<int32_t>> grams;
  grams.reserve(tokens.size() - n + 1);
  for (size_t i = 0; i + n <= tokens.size(); ++i) grams.emplace_back(tokens.begin() + i, tokens.begin() + i + n);
  const size_t total = grams.size();
  std::sort(grams.begin(), grams.end());
  const size_t distinct = static_cast<size_t>(std::unique(grams.begin(), grams.end()) - grams.begin());
  return 1.0 - static_cast<double>(distinct) / static_cast<double>(total);
}

// ---- GSM8K ---------------------------------------------------------------------------------------

std::string gsm8k_extract_strict(std::string_view response) {
  const Regex re(R"(#### (\-?[0-9\.\,]+))");
  const auto ms = re.find_all(response);
  if (ms.empty()) return std::string(kGsm8kInvalid);
  return std::string(strip_ascii_space(group_text(response, ms.front().groups[0])));
}

std::string gsm8k_extract_flexible(std::string_view response) {
  const Regex re(R"((-?[$0-9.,]{2,})|(-?[0-9]+))");
  const auto ms = re.find_all(response);
  if (ms.empty()) return std::string(kGsm8kInvalid);
  const Match& m = ms.back();
  for (const auto& g : m.groups) {
    const std::string_view t = group_text(response, g);
    if (!t.empty()) return std::string(strip_ascii_space(t));
  }
  return std::string(kGsm8kInvalid);  // unreachable: one alternative always captures a non-empty text
}

std::string gsm8k_normalize(std::string_view s) {
  std::string out(s);
  for (const char* pattern : {",", R"(\$)", R"((?s).*#### )", R"(\.$)"}) out = Regex(pattern).remove_all(out);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

bool gsm8k_exact_match(std::string_view extracted, std::string_view target) {
  return gsm8k_normalize(extracted) == gsm8k_normalize(target);
}

}  // namespace qb::eval
