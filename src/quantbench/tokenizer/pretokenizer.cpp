// Regex pre-tokenization in PCRE2 and the table of llama.cpp's pre-tokenizer types (see pretokenizer.h).
// The patterns are the ones the models' tokenizer.json files declare, in the form llama.cpp lists them
// (case-insensitive groups spelled out); PCRE2 runs them with Unicode semantics.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "quantbench/tokenizer/pretokenizer.h"

#include <pcre2.h>

#include "quantbench/core/error.h"
#include "quantbench/tokenizer/utf8.h"

namespace qb::tokenizer {

struct RegexSplitter::Compiled {
  pcre2_code* code = nullptr;
  ~Compiled() { pcre2_code_free(code); }
};

RegexSplitter::RegexSplitter(std::vector<std::string> patterns) : patterns_(std::move(patterns)) {
  for (const auto& p : patterns_) {
    int err = 0;
    PCRE2_SIZE err_off = 0;
    auto c = std::make_unique<Compiled>();
    // DOLLAR_ENDONLY: `$` means end of piece, as in ECMAScript and Oniguruma, not "before a final \n".
    c->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(p.data()), p.size(),
                            PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY, &err, &err_off, nullptr);
    if (!c->code) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof msg);
      fail("pre-tokenizer regex '{}': PCRE2 error at offset {}: {}", p, err_off, reinterpret_cast<char*>(msg));
    }
    pcre2_jit_compile(c->code, PCRE2_JIT_COMPLETE);  // optional speed-up; the interpreter is the fallback
    compiled_.push_back(std::move(c));
  }
}

RegexSplitter::~RegexSplitter() = default;

std::vector<Piece> RegexSplitter::split(std::string_view text) const {
  std::vector<Piece> pieces;
  if (text.empty()) return pieces;
  pieces.push_back({0, text.size()});
  for (const auto& c : compiled_) {
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(c->code, nullptr);
    if (!md) fail("pre-tokenizer: out of memory for PCRE2 match data");
    std::vector<Piece> next;
    next.reserve(pieces.size() * 2);
    for (const Piece& p : pieces) {
      // The subject is the piece alone, so lookaheads and `$` cannot see past it (Split semantics).
      const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data() + p.begin);
      const size_t len = p.end - p.begin;
      size_t pos = 0, last = 0;
      while (pos < len) {
        const int rc = pcre2_match(c->code, subject, len, pos, PCRE2_NO_UTF_CHECK, md, nullptr);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
          pcre2_match_data_free(md);
          fail("pre-tokenizer: PCRE2 match error {}", rc);
        }
        const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
        const size_t ms = ov[0], me = ov[1];
        if (me == ms) {  // an empty match splits nothing; step over one character
          pos = ms + utf8_lead_len(uint8_t(text[p.begin + ms]));
          continue;
        }
        if (ms > last) next.push_back({p.begin + last, p.begin + ms});
        next.push_back({p.begin + ms, p.begin + me});
        last = pos = me;
      }
      if (last < len) next.push_back({p.begin + last, p.end});
    }
    pcre2_match_data_free(md);
    pieces = std::move(next);
  }
  return pieces;
}

namespace {

// GPT-2's pattern (with its final \s+, which llama.cpp's hand-written splitter also applies).
constexpr const char* kGpt2 = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
constexpr const char* kLlama3 =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kQwen2 =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// DeepSeek LLM's cased-letter class, written with escapes so no editor or transport can normalize it.
constexpr const char* kDeepseekLetters =
    R"(\s?[\x{41}-\x{5A}\x{61}-\x{7A}\x{B5}\x{C0}-\x{D6}\x{D8}-\x{F6}\x{F8}-\x{1BA}\x{1BC}-\x{1BF}\x{1C4}-\x{293})"
    R"(\x{295}-\x{2AF}\x{370}-\x{373}\x{376}\x{377}\x{37B}-\x{37D}\x{37F}\x{386}\x{388}-\x{38A}\x{38C}\x{38E}-\x{3A1})"
    R"(\x{3A3}-\x{3F5}\x{3F7}-\x{481}\x{48A}-\x{52F}\x{531}-\x{556}\x{10A0}-\x{10C5}\x{13A0}-\x{13F5}\x{13F8}-\x{13FD})"
    R"(\x{1C90}-\x{1CBA}\x{1CBD}-\x{1CBF}\x{1D00}-\x{1D2B}\x{1D6B}-\x{1D77}\x{1D79}-\x{1D9A}\x{1E00}-\x{1F15})"
    R"(\x{1F18}-\x{1F1D}\x{1F20}-\x{1F45}\x{1F48}-\x{1F4D}\x{1F50}-\x{1F57}\x{1F59}\x{1F5B}\x{1F5D}\x{1F5F}-\x{1F7D})"
    R"(\x{1F80}-\x{1FB4}\x{1FB6}-\x{1FBC}\x{1FBE}\x{1FC2}-\x{1FC4}\x{1FC6}-\x{1FCC}\x{1FD0}-\x{1FD3}\x{1FD6}-\x{1FDB})"
    R"(\x{1FE0}-\x{1FEC}\x{1FF2}-\x{1FF4}\x{1FF6}-\x{1FFC}\x{2102}\x{2107}\x{210A}-\x{2113}\x{2115}\x{2119}-\x{211D})"
    R"(\x{2124}\x{2126}\x{2128}\x{212A}-\x{212D}\x{212F}-\x{2134}\x{2139}\x{213C}-\x{213F}\x{2145}-\x{2149}\x{214E})"
    R"(\x{2183}\x{2184}\x{2C00}-\x{2C7B}\x{2C7E}-\x{2CE4}\x{2CEB}-\x{2CEE}\x{2CF2}\x{2CF3}\x{A640}-\x{A66D})"
    R"(\x{A680}-\x{A69B}\x{A722}-\x{A76F}\x{A771}-\x{A787}\x{A78B}-\x{A78E}\x{AB70}-\x{ABBF}\x{FB00}-\x{FB06})"
    R"(\x{FB13}-\x{FB17}\x{FF21}-\x{FF3A}\x{FF41}-\x{FF5A}\x{10400}-\x{1044F}\x{104B0}-\x{104D3}\x{104D8}-\x{104FB})"
    R"(\x{10C80}-\x{10CB2}\x{10CC0}-\x{10CF2}\x{118A0}-\x{118DF}\x{1E900}-\x{1E943}]+)";
constexpr const char* kCjk = R"([\x{4E00}-\x{9FA5}\x{800}-\x{4E00}\x{AC00}-\x{D7FF}]+)";

}  // namespace

PreTokenizerConfig pre_tokenizer_config(const std::string& name) {
  PreTokenizerConfig c;
  const auto is = [&](std::initializer_list<const char*> names) {
    for (const char* n : names)
      if (name == n) return true;
    return false;
  };
  if (name.empty() || name == "default") {
    c.canonical = "default";
    c.regexes = {R"([\p{P}\$\+<=>\^~\|]+)", R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))",
                 R"(\p{N}+)", "[0-9][0-9][0-9]"};
  } else if (is({"llama3", "llama-v3", "llama-bpe", "falcon3", "pixtral", "dbrx", "smaug-bpe"})) {
    c.canonical = "llama3";
    c.regexes = {kLlama3};
    c.ignore_merges = is({"llama3", "llama-v3", "llama-bpe", "falcon3", "pixtral"});
    c.add_bos = c.ignore_merges;
  } else if (name == "deepseek-llm") {
    c.canonical = name;
    c.regexes = {"[\r\n]", kDeepseekLetters, R"(\s?[!-/:-~\x{FF01}-\x{FF0F}\x{FF1A}-\x{FF5E}\x{2018}-\x{201F}\x{3000}-\x{3002}]+)",
                 R"(\s+$)", kCjk, R"(\p{N}+)"};
    c.clean_spaces = false;
  } else if (name == "deepseek-coder") {
    c.canonical = name;
    c.regexes = {"[\r\n]", R"(\s?\p{L}+)", R"(\s?\p{P}+)", kCjk, R"(\p{N})"};
    c.clean_spaces = false;
  } else if (name == "falcon") {
    c.canonical = name;
    c.regexes = {R"([\p{P}\$\+<=>\^~\|`]+)", R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))",
                 "[0-9][0-9][0-9]"};
  } else if (is({"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b"})) {
    // SmolLM's GGUF declares "smollm"; llama.cpp gives it StarCoder's rule (single digits, then GPT-2).
    c.canonical = name == "smollm" ? "smollm (starcoder rule)" : name;
    c.regexes = {R"(\p{N})", kGpt2};
    c.clean_spaces = !is({"command-r", "smollm"});
  } else if (is({"gpt-2", "phi-2", "mpt", "olmo", "jais", "trillion", "gpt2", "roberta-bpe", "jina-v1-en", "exaone4"})) {
    c.canonical = is({"mpt", "olmo"}) ? name : "gpt-2";
    c.regexes = {kGpt2};
    c.clean_spaces = name != "trillion";
  } else if (is({"qwen2", "deepseek-r1-qwen", "stablelm2", "megrez", "hunyuan"})) {
    c.canonical = "qwen2";
    c.regexes = {kQwen2};
    c.clean_spaces = is({"stablelm2", "megrez"});
  } else if (is({"chatglm-bpe", "glm4"})) {
    c.canonical = "chatglm4";
    c.regexes = {kLlama3};
  } else {
    fail("unsupported pre-tokenizer type '{}'", name);
  }
  return c;
}

}  // namespace qb::tokenizer
