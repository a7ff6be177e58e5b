// Byte-level BPE pre-tokenization: a sequence of regexes, each splitting every piece left by the one
// before into its matches and the gaps between them (Hugging Face's Split with behaviour "Isolated",
// which is also how llama.cpp's unicode_regex_split applies its per-type lists). The regexes run in
// PCRE2 with UTF and UCP, so \p{L}, \p{N} and \s carry their Unicode meaning directly instead of
// llama.cpp's category-collapsing trick; the results agree with the reference vectors.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace qb::tokenizer {

// One piece of the input: a byte range [begin, end).
struct Piece {
  size_t begin = 0, end = 0;
};

class RegexSplitter {
 public:
  // Compiles each pattern; throws qb::Error naming the pattern that PCRE2 rejects.
  explicit RegexSplitter(std::vector<std::string> patterns);
  ~RegexSplitter();
  RegexSplitter(const RegexSplitter&) = delete;
  RegexSplitter& operator=(const RegexSplitter&) = delete;

  // Splits valid UTF-8 `text` (callers sanitize first). Pieces are non-empty, ordered, and cover the text.
  std::vector<Piece> split(std::string_view text) const;
  const std::vector<std::string>& patterns() const { return patterns_; }

 private:
  struct Compiled;
  std::vector<std::string> patterns_;
  std::vector<std::unique_ptr<Compiled>> compiled_;
};

// The regex list llama.cpp uses for a GGUF `tokenizer.ggml.pre` value, with the flags that go with it.
struct PreTokenizerConfig {
  std::string canonical;               // llama.cpp's family name, e.g. "llama3" for "llama-bpe"
  std::vector<std::string> regexes;
  bool clean_spaces = true;            // llama.cpp's decode-time clean-up of " ," " 's" etc.
  bool ignore_merges = false;          // a whole pre-token found in the vocab is taken as is
  bool add_bos = false;                // default for add_bos when the file does not say
};
// Throws qb::Error for a pre type this build does not know. An empty name means llama.cpp's "default".
PreTokenizerConfig pre_tokenizer_config(const std::string& pre_name);

}  // namespace qb::tokenizer
