// A model's tokenizer: the vocabulary (token strings, scores, types, special ids, add-BOS/EOS flags) and
// the two algorithms quantbench needs, each reproducing llama.cpp's behaviour token for token:
//   - SentencePiece-style ("llama" in GGUF): spaces become U+2581 with a leading space, bigrams merge by
//     score, pieces missing from the vocabulary fall back to <0xXX> byte tokens;
//   - byte-level BPE ("gpt2" in GGUF, or a Hugging Face tokenizer.json): regex pre-tokenization, GPT-2's
//     byte-to-unicode mapping, merges by rank.
// Special and added tokens written literally in the text are split out first, longest first (llama.cpp's
// tokenizer_st_partition). A Tokenizer is immutable after construction and safe to share across threads.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace qb::formats {
class GgufFile;
}

namespace qb::tokenizer {

using TokenId = int32_t;
inline constexpr TokenId kNoToken = -1;

// GGUF's tokenizer.ggml.token_type codes.
enum class TokenType : int32_t { Undefined = 0, Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 };
const char* token_type_name(TokenType t);

enum class Algorithm { Spm, Bpe };

struct TokenInfo {
  std::string text;  // as stored: U+2581 for spaces (SPM), GPT-2 byte images (BPE), raw text for added tokens
  float score = 0.0f;
  TokenType type = TokenType::Normal;
  bool lstrip = false;  // when split out of text, swallow ASCII whitespace on its left / right
  bool rstrip = false;
};

// Everything a loader gathers; the Tokenizer constructor validates it.
struct VocabSpec {
  Algorithm algorithm = Algorithm::Spm;
  std::string model_name;  // "llama" or "gpt2" (GGUF tokenizer.ggml.model), "tokenizer.json:BPE", ...
  std::string pre_name;    // GGUF tokenizer.ggml.pre as written, or a description of the tokenizer.json one
  std::vector<TokenInfo> tokens;
  std::vector<std::pair<std::string, std::string>> merges;  // BPE only, in rank order
  std::vector<std::string> pre_regexes;                     // BPE only
  TokenId bos = kNoToken, eos = kNoToken, unk = kNoToken, pad = kNoToken;
  bool add_bos = false, add_eos = false;
  bool add_space_prefix = false;  // SPM: a space goes before the text and after each special token
  bool clean_spaces = false;      // decode: llama.cpp's clean-up of " ." " 's" etc.
  bool ignore_merges = false;     // BPE: a pre-token found whole in the vocabulary is used as is
  std::vector<std::string> notes; // what the loader assumed or could not honour, for the Manifest
};

class Tokenizer {
 public:
  explicit Tokenizer(VocabSpec spec);  // throws qb::Error on an inconsistent vocabulary
  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

  // Loaders. GGUF: tokenizer.ggml.* metadata with llama.cpp's defaults where a key is absent.
  static Tokenizer from_gguf(const formats::GgufFile& file);
  static Tokenizer from_gguf_file(const std::string& path);
  // Hugging Face tokenizer.json (byte-level BPE model). `origin` names the source in error messages.
  // The optional tokenizer_config.json supplies bos/eos/unk/pad, add_bos/add_eos and the decode clean-up.
  static Tokenizer from_hf_json(std::string_view json_text, const std::string& origin, std::string_view config_json = {});
  // Reads .gz files transparently; config_path may be empty.
  static Tokenizer from_hf_json_file(const std::string& path, const std::string& config_path = {});

  // add_special: BOS/EOS as the vocabulary's add_bos/add_eos say. parse_special: control tokens written
  // in the text become their ids (user-defined tokens always do, as in llama.cpp and Hugging Face).
  // Invalid UTF-8 never fails: SPM falls back to byte tokens, BPE sees U+FFFD for each bad byte.
  std::vector<TokenId> encode(std::string_view text, bool add_special, bool parse_special) const;

  // Text of a sequence, as llama.cpp's detokenize does: leading-space rule for SPM, clean-up where the
  // vocabulary asks for it. render_special: control tokens print their text (else nothing).
  // Throws qb::Error on an id outside [0, n_vocab()).
  std::string decode(std::span<const TokenId> ids, bool render_special = true) const;
  // decode() read as Hugging Face's decode reads the bytes: each ill-formed UTF-8 part (a character cut
  // at a token limit, stray bytes) one U+FFFD (replace_invalid_utf8). Valid text for the evaluators'
  // metrics and records; decode() itself keeps the bytes, as llama.cpp's detokenize does.
  std::string decode_text(std::span<const TokenId> ids, bool render_special = true) const;
  std::string token_to_piece(TokenId id, bool render_special = true) const;

  size_t n_vocab() const { return spec_.tokens.size(); }
  const TokenInfo& token(TokenId id) const;  // throws on a bad id
  std::optional<TokenId> find(std::string_view text) const;
  Algorithm algorithm() const { return spec_.algorithm; }
  const std::string& model_name() const { return spec_.model_name; }
  const std::string& pre_name() const { return spec_.pre_name; }
  const std::vector<std::string>& notes() const { return spec_.notes; }
  TokenId bos() const { return spec_.bos; }
  TokenId eos() const { return spec_.eos; }
  TokenId unk() const { return spec_.unk; }
  TokenId pad() const { return spec_.pad; }
  bool add_bos() const { return spec_.add_bos; }
  bool add_eos() const { return spec_.add_eos; }
  bool add_space_prefix() const { return spec_.add_space_prefix; }
  bool is_eog(TokenId id) const;  // end of generation: EOS, or a token such as <|im_end|>, <|eot_id|>
  const VocabSpec& spec() const { return spec_; }

 private:
  struct Impl;
  void encode_spm(std::string_view text, std::vector<TokenId>& out) const;
  void encode_bpe(std::string_view text, std::vector<TokenId>& out) const;
  TokenId byte_token(uint8_t b) const;

  VocabSpec spec_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace qb::tokenizer
