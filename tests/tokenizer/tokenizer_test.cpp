// Tokenizer behaviour beyond the reference vectors: the Hugging Face tokenizer.json loader against
// llama.cpp's qwen2 vectors, lossless round trips, special-token parsing, metadata quirks, bad input.
#include "quantbench/tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "quantbench/core/error.h"
#include "quantbench/tokenizer/utf8.h"
#include "tokenizer_test_data.h"
#include "utf8_replace_vectors.h"

namespace qb::tokenizer {
namespace {

const Tokenizer& qwen3() {
  static const Tokenizer tok = Tokenizer::from_hf_json_file(test::source_path("data/tokenizers/qwen3/tokenizer.json.gz"),
                                                            test::source_path("data/tokenizers/qwen3/tokenizer_config.json"));
  return tok;
}

Tokenizer gguf_vocab(const std::string& name) {
  return Tokenizer::from_gguf_file(test::inflated_path("data/vocab/ggml-vocab-" + name + ".gguf"));
}

TEST(HfTokenizerJson, Qwen3ReproducesQwen2Vectors) {
  const auto& tok = qwen3();
  EXPECT_EQ(tok.n_vocab(), 151669u);
  const auto cases = test::read_vocab_cases(test::source_path("data/vocab/ggml-vocab-qwen2.gguf.inp"),
                                            test::source_path("data/vocab/ggml-vocab-qwen2.gguf.out"));
  ASSERT_EQ(cases.size(), 46u);
  int passed = 0;
  for (const auto& c : cases) {
    const auto got = tok.encode(c.text, false, false);
    if (got == c.ids) ++passed;
    else ADD_FAILURE() << "qwen2 vector '" << c.text << "'";
  }
  std::printf("[ vectors  ] qwen3 tokenizer.json vs qwen2: %d/%zu\n", passed, cases.size());
}

TEST(HfTokenizerJson, Qwen3MatchesHuggingFaceTokenizers) {
  // Golden ids from the Rust `tokenizers` library (tests/golden/tokenizer/make_qwen3_golden.py). Hugging
  // Face splits out every added token, special or not, which is our parse_special = true.
  const auto g = nlohmann::json::parse(test::read_text_file(test::source_path("tests/golden/tokenizer/qwen3_golden.json")));
  int n = 0;
  for (const auto& c : g.at("cases")) {
    const std::string text = c.at("text");
    EXPECT_EQ(qwen3().encode(text, false, true), c.at("ids").get<std::vector<TokenId>>()) << text;
    ++n;
  }
  EXPECT_EQ(n, 16);
}

TEST(HfTokenizerJson, Qwen3SpecialTokensAndConfig) {
  const auto& tok = qwen3();
  const TokenId im_start = *tok.find("<|im_start|>");
  const TokenId im_end = *tok.find("<|im_end|>");
  EXPECT_EQ(im_start, 151644);
  EXPECT_EQ(tok.token(im_start).type, TokenType::Control);
  EXPECT_EQ(tok.eos(), im_end);             // tokenizer_config.json: eos_token <|im_end|>
  EXPECT_EQ(tok.pad(), *tok.find("<|endoftext|>"));
  EXPECT_EQ(tok.bos(), kNoToken);           // bos_token: null
  EXPECT_FALSE(tok.add_bos());
  EXPECT_TRUE(tok.is_eog(im_end));
  // parse_special: the control token is one id; without it the text is tokenized as text.
  const auto with = tok.encode("<|im_start|>user", false, true);
  ASSERT_EQ(with.size(), 2u);
  EXPECT_EQ(with[0], im_start);
  const auto without = tok.encode("<|im_start|>user", false, false);
  EXPECT_GT(without.size(), 2u);
  EXPECT_EQ(tok.decode(without), "<|im_start|>user");
  // Non-special added tokens (<think>) are always split out, as Hugging Face does.
  const auto think = tok.encode("a<think>b", false, false);
  ASSERT_EQ(think.size(), 3u);
  EXPECT_EQ(tok.token(think[1]).text, "<think>");
  EXPECT_EQ(tok.token(think[1]).type, TokenType::UserDefined);
  // NFC is recorded as not applied.
  bool noted = false;
  for (const auto& n : tok.notes()) noted |= n.find("NFC") != std::string::npos;
  EXPECT_TRUE(noted);
}

const std::vector<std::string>& round_trip_texts() {
  static const std::vector<std::string> texts = {
      "Hello world",
      "  leading and trailing spaces  ",
      "tabs\tand\nnew\r\nlines\n\n\n",
      "Grüße aus Köln — ça va? Ελληνικά, русский, עברית, العربية",
      "中文测试，日本語のテキスト、한국어 텍스트",
      "emoji 🦙🚀 😶‍🌫️ flags 🇫🇷 and ZWJ 👩‍👩‍👧",
      "code: for (int i = 0; i < 10; ++i) { x += a[i] * 3.14159; }",
      "numbers 1234567890 0.5e-3 1,000,000",
      "\xF0\x9F\x92\xA9 \xE2\x80\x8B zero-width, \xC2\xA0nbsp",
  };
  return texts;
}

TEST(Tokenizer, RoundTripSpm) {
  for (const char* name : {"llama-spm", "baichuan"}) {
    const auto tok = gguf_vocab(name);
    for (const auto& t : round_trip_texts()) {
      const auto ids = tok.encode(t, false, false);
      EXPECT_EQ(tok.decode(ids), t) << name << ": " << t;
    }
  }
}

TEST(Tokenizer, RoundTripByteLevelBpe) {
  // Vocabularies without decode clean-up are lossless; gpt-2 style ones (clean_spaces) are lossless on text
  // without " ." " ," " 's" patterns, which these texts avoid except where checked below.
  for (const char* name : {"deepseek-llm", "deepseek-coder"}) {
    const auto tok = gguf_vocab(name);
    for (const auto& t : round_trip_texts()) EXPECT_EQ(tok.decode(tok.encode(t, false, false)), t) << name << ": " << t;
  }
  for (const auto& t : round_trip_texts()) EXPECT_EQ(qwen3().decode(qwen3().encode(t, false, false)), t) << t;
  const auto gpt2 = gguf_vocab("gpt-2");
  EXPECT_EQ(gpt2.decode(gpt2.encode("Grüße 🦙\n\tok", false, false)), "Grüße 🦙\n\tok");
  EXPECT_EQ(gpt2.decode(gpt2.encode("wait , what 's that ?", false, false)), "wait, what's that?");  // clean-up
}

TEST(Tokenizer, SpmSpecialsAndDecodeRules) {
  const auto tok = gguf_vocab("llama-spm");
  EXPECT_EQ(tok.bos(), 1);
  EXPECT_EQ(tok.eos(), 2);
  EXPECT_EQ(tok.unk(), 0);
  EXPECT_TRUE(tok.add_bos());
  EXPECT_FALSE(tok.add_eos());
  EXPECT_EQ(tok.model_name(), "llama");
  const auto ids = tok.encode("Hello", true, false);
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_EQ(ids[0], 1);
  EXPECT_EQ(tok.token(ids[1]).text, "\xE2\x96\x81Hello");
  EXPECT_EQ(tok.token_to_piece(ids[1]), " Hello");
  EXPECT_EQ(tok.decode(std::vector<TokenId>{ids[1]}), "Hello");  // leading space of the first token dropped
  // Byte fallback for a character the vocabulary lacks, with invalid UTF-8 kept byte for byte.
  const std::string odd = "a\xFF\xC3(b";
  const auto odd_ids = tok.encode(odd, false, false);
  EXPECT_EQ(tok.token(odd_ids[odd_ids.size() - 3]).type, TokenType::Byte);
  EXPECT_EQ(tok.decode(odd_ids), odd);
  // parse_special: "</s>" in text is EOS only when asked.
  EXPECT_EQ(tok.encode("a</s>", false, true).back(), 2);
  EXPECT_NE(tok.encode("a</s>", false, false).back(), 2);
  // Special tokens render only when asked.
  EXPECT_EQ(tok.decode(std::vector<TokenId>{1}, true), "<s>");
  EXPECT_EQ(tok.decode(std::vector<TokenId>{1}, false), "");
}

TEST(Tokenizer, Stories260KPaddingMeansNone) {
  const auto tok = Tokenizer::from_gguf_file(test::stories260k_path());
  EXPECT_EQ(tok.n_vocab(), 512u);
  EXPECT_EQ(tok.pad(), kNoToken);  // stored as 4294967295
  EXPECT_EQ(tok.bos(), 1);
  // The model's known greedy output from BOS (data/SOURCES.md): its first ids decode to a prefix of the
  // known story text, and that text encodes back to the same ids.
  const std::string story =
      "Once upon a time, there was a little girl named Lily. She loved to play outside in the park.";
  const std::vector<TokenId> ids = {403, 407, 261, 378, 432, 383, 286, 261, 376, 298,
                                    315, 421, 395, 317, 426, 338, 401, 396, 267};
  const std::string text = tok.decode(ids);
  EXPECT_GT(text.size(), 60u);
  EXPECT_EQ(story.rfind(text, 0), 0u) << text;
  EXPECT_EQ(tok.encode(text, false, false), ids);
  const auto with_bos = tok.encode(text, true, false);
  ASSERT_FALSE(with_bos.empty());
  EXPECT_EQ(with_bos[0], 1);
}

TEST(Tokenizer, GptNeoxWithoutPreUsesDefaultAndSaysSo) {
  const auto tok = gguf_vocab("gpt-neox");
  EXPECT_EQ(tok.pre_name(), "");
  ASSERT_FALSE(tok.notes().empty());
  EXPECT_NE(tok.notes()[0].find("default"), std::string::npos);
  const std::string t = "Hello world, 123 tokens";
  EXPECT_EQ(tok.decode(tok.encode(t, false, false)), t);
}

TEST(Tokenizer, Phi3RstripAfterSpecialTokens) {
  const auto tok = gguf_vocab("phi-3");
  const TokenId user = *tok.find("<|user|>");
  EXPECT_TRUE(tok.token(user).rstrip);
  // The newline after <|user|> is swallowed, as llama.cpp does for Phi-3.
  const auto a = tok.encode("<|user|>\nHi", false, true);
  const auto b = tok.encode("<|user|>Hi", false, true);
  EXPECT_EQ(a, b);
  EXPECT_EQ(a[0], user);
}

TEST(HfTokenizerJson, AddedTokenLstripRstrip) {
  // Byte-level vocabulary of single characters plus two added tokens: <m> swallows spaces on its left,
  // <n> on its right, as Hugging Face's lstrip/rstrip flags (and llama.cpp's attributes) say.
  std::string vocab = R"({"\u0120": 0, "a": 1, "b": 2)";
  const std::string json = R"({"model": {"type": "BPE", "vocab": )" + vocab + R"(}, "merges": [["a", "b"]]},
      "added_tokens": [{"id": 3, "content": "<m>", "special": true, "lstrip": true, "rstrip": false},
                       {"id": 4, "content": "<n>", "special": false, "lstrip": false, "rstrip": true}],
      "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true}})";
  const auto tok = Tokenizer::from_hf_json(json, "strip.json");
  EXPECT_EQ(tok.encode("a  <m> b", false, true), (std::vector<TokenId>{1, 3, 0, 2}));
  // Control token not parsed: plain text, and '<' 'm' '>' are not in this toy vocabulary, so they are
  // dropped as llama.cpp drops bytes it cannot find.
  EXPECT_EQ(tok.encode("a  <m> b", false, false), (std::vector<TokenId>{1, 0, 0, 0, 2}));
  EXPECT_EQ(tok.encode("a <n>  b", false, false), (std::vector<TokenId>{1, 0, 4, 2}));  // user-defined: always
}

TEST(HfTokenizerJson, TemplateProcessingAddsBos) {
  // Llama-3 style: the post-processor puts <s> before every sequence, so add_bos is on.
  const auto tok = Tokenizer::from_hf_json(R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2},
      "merges": ["a b"]}, "added_tokens": [{"id": 3, "content": "<s>", "special": true}],
      "pre_tokenizer": {"type": "ByteLevel", "use_regex": true},
      "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                                                  {"Sequence": {"id": "A", "type_id": 0}}]}})",
                                           "tp.json");
  EXPECT_TRUE(tok.add_bos());
  EXPECT_FALSE(tok.add_eos());
  EXPECT_EQ(tok.encode("ab", true, false), (std::vector<TokenId>{3, 2}));
  EXPECT_EQ(tok.encode("ab", false, false), (std::vector<TokenId>{2}));
}

TEST(TokenizerBadInput, DecodeOutOfRangeThrows) {
  const auto tok = gguf_vocab("llama-spm");
  EXPECT_THROW(tok.decode(std::vector<TokenId>{5, 32000}), Error);
  EXPECT_THROW(tok.decode(std::vector<TokenId>{-1}), Error);
  EXPECT_THROW(tok.token_to_piece(1 << 30), Error);
}

TEST(TokenizerBadInput, InvalidUtf8DoesNotCrashBpe) {
  const auto tok = gguf_vocab("gpt-2");
  const std::string bad = "ok \xC0\x80 \xED\xA0\x80 \xF4\x90\x80\x80 \xFF\xFE trunc\xE2\x82";
  const auto ids = tok.encode(bad, false, false);
  EXPECT_FALSE(ids.empty());
  // Each bad byte became U+FFFD, so the text decodes to the sanitized string.
  const std::string rep = "\xEF\xBF\xBD";
  EXPECT_EQ(tok.decode(ids), "ok " + rep + rep + " " + rep + rep + rep + " " + rep + rep + rep + rep + " " + rep + rep +
                                 " trunc" + rep + rep);
}

// Generated text is read as Python's bytes.decode(errors="replace") reads it (the vectors' oracle,
// make_utf8_replace_vectors.py): one U+FFFD per maximal ill-formed subpart, valid text unchanged.
TEST(Utf8, ReplaceInvalidMatchesPythonsReplace) {
  for (const auto& v : kUtf8ReplaceVectors) {
    const std::string got = replace_invalid_utf8(v.in), want = v.out;
    EXPECT_EQ(got, want) << "input " << ::testing::PrintToString(std::string(v.in));
    EXPECT_TRUE(is_valid_utf8(got));
  }
  EXPECT_EQ(replace_invalid_utf8(""), "");
  const std::string text = "plain ASCII, caf\xC3\xA9, \xE4\xBD\xA0\xE5\xA5\xBD, \xF0\x9F\x98\x80";
  EXPECT_EQ(replace_invalid_utf8(text), text);
}

TEST(TokenizerBadInput, MissingOrBrokenPieces) {
  VocabSpec s;
  s.algorithm = Algorithm::Bpe;
  s.model_name = "gpt2";
  s.tokens = {{"a"}, {"b"}, {"ab"}};
  s.pre_regexes = {R"(\p{L}+)"};
  EXPECT_THROW(Tokenizer{s}, Error);  // no merges
  s.merges = {{"a", "b"}};
  const Tokenizer ok{s};
  EXPECT_EQ(ok.encode("ab", false, false), (std::vector<TokenId>{2}));
  s.pre_regexes = {"(unclosed"};
  EXPECT_THROW(Tokenizer{s}, Error);  // PCRE2 rejects it; message names the pattern
  s.pre_regexes = {R"(\p{L}+)"};
  s.tokens.push_back({"a"});
  EXPECT_THROW(Tokenizer{s}, Error);  // duplicate token text
  s.tokens.pop_back();
  s.tokens.push_back({"<0xZZ>", 0.0f, TokenType::Byte});
  EXPECT_THROW(Tokenizer{s}, Error);  // byte token with a bad name
  s.tokens.pop_back();
  s.add_bos = true;
  EXPECT_THROW(Tokenizer{s}, Error);  // add_bos without a BOS id
}

TEST(TokenizerBadInput, HfJsonErrorsNameTheProblem) {
  const auto expect_error = [](const std::string& json, const std::string& needle) {
    try {
      Tokenizer::from_hf_json(json, "t.json");
      ADD_FAILURE() << "no error for " << json;
    } catch (const Error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("t.json"), std::string::npos) << what;
      EXPECT_NE(what.find(needle), std::string::npos) << what;
    }
  };
  expect_error("{not json", "parse");
  expect_error(R"({"model": {"type": "Unigram", "vocab": []}})", "Unigram");
  expect_error(R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": []},
                  "pre_tokenizer": {"type": "ByteLevel"}})", "merges");
  expect_error(R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a b"]},
                  "pre_tokenizer": {"type": "Whitespace"}})", "Whitespace");
  expect_error(R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["ab"]},
                  "pre_tokenizer": {"type": "ByteLevel"}})", "merges[0]");
  // Both merge spellings load and agree.
  const auto a = Tokenizer::from_hf_json(R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2},
      "merges": ["a b"]}, "pre_tokenizer": {"type": "ByteLevel"}})", "t.json");
  const auto b = Tokenizer::from_hf_json(R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2},
      "merges": [["a", "b"]]}, "pre_tokenizer": {"type": "ByteLevel"}})", "t.json");
  EXPECT_EQ(a.encode("ab", false, false), (std::vector<TokenId>{2}));
  EXPECT_EQ(b.encode("ab", false, false), (std::vector<TokenId>{2}));
}

// A minimal GGUF v3 writer for hostile-metadata tests (no tensors).
class MiniGguf {
 public:
  void str(const std::string& key, const std::string& v) {
    this->key(key, 8);
    put_str(v);
  }
  void strs(const std::string& key, const std::vector<std::string>& v) {
    this->key(key, 9);
    put<uint32_t>(8);
    put<uint64_t>(v.size());
    for (const auto& x : v) put_str(x);
  }
  void i32s(const std::string& key, const std::vector<int32_t>& v) {
    this->key(key, 9);
    put<uint32_t>(5);
    put<uint64_t>(v.size());
    for (auto x : v) put<int32_t>(x);
  }
  std::string write(const std::string& name) const {
    std::string bytes = "GGUF";
    const auto app = [&](auto x) { bytes.append(reinterpret_cast<const char*>(&x), sizeof x); };
    app(uint32_t(3));
    app(uint64_t(0));
    app(uint64_t(n_kv_));
    bytes += body_;
    const std::string path = std::string(QB_BINARY_DIR) + "/test_data/" + name;
    std::filesystem::create_directories(std::string(QB_BINARY_DIR) + "/test_data");
    std::ofstream(path, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
    return path;
  }

 private:
  template <typename T>
  void put(T x) { body_.append(reinterpret_cast<const char*>(&x), sizeof x); }
  void put_str(const std::string& v) {
    put<uint64_t>(v.size());
    body_ += v;
  }
  void key(const std::string& k, uint32_t type) {
    put_str(k);
    put<uint32_t>(type);
    ++n_kv_;
  }
  std::string body_;
  size_t n_kv_ = 0;
};

void expect_gguf_error(const std::string& path, const std::string& needle) {
  try {
    Tokenizer::from_gguf_file(path);
    ADD_FAILURE() << "no error for " << path;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(TokenizerBadInput, GgufHostileMetadata) {
  MiniGguf g;
  g.str("general.architecture", "gpt2");
  g.str("tokenizer.ggml.model", "gpt2");
  g.str("tokenizer.ggml.pre", "gpt-2");
  g.strs("tokenizer.ggml.tokens", {"a", "b", "ab"});
  expect_gguf_error(g.write("no_merges.gguf"), "tokenizer.ggml.merges");
  MiniGguf h = g;
  h.strs("tokenizer.ggml.merges", {"ab"});
  expect_gguf_error(h.write("bad_merge.gguf"), "tokenizer.ggml.merges[0]");
  MiniGguf k = g;
  k.strs("tokenizer.ggml.merges", {"a b"});
  k.i32s("tokenizer.ggml.token_type", {1, 1});
  expect_gguf_error(k.write("short_types.gguf"), "token_type");
  MiniGguf u;
  u.str("general.architecture", "t5");
  u.str("tokenizer.ggml.model", "t5");
  u.strs("tokenizer.ggml.tokens", {"a"});
  expect_gguf_error(u.write("t5.gguf"), "'t5' is not supported");
  MiniGguf p = g;
  p.strs("tokenizer.ggml.merges", {"a b"});
  MiniGguf q;
  q.str("general.architecture", "gpt2");
  q.str("tokenizer.ggml.model", "gpt2");
  q.str("tokenizer.ggml.pre", "no-such-pre");
  q.strs("tokenizer.ggml.tokens", {"a", "b", "ab"});
  q.strs("tokenizer.ggml.merges", {"a b"});
  expect_gguf_error(q.write("bad_pre.gguf"), "no-such-pre");
  // The well-formed one loads, with llama.cpp's BPE defaults (BOS/EOS 11) disabled as out of range.
  const auto tok = Tokenizer::from_gguf_file(p.write("ok.gguf"));
  EXPECT_EQ(tok.encode("ab", false, false), (std::vector<TokenId>{2}));
  EXPECT_EQ(tok.bos(), kNoToken);
}

}  // namespace
}  // namespace qb::tokenizer
