// The PCRE2 pre-tokenizer against Hugging Face tokenizers' own Split (Oniguruma) on the published
// regexes (tests/golden/tokenizer/make_pretok_golden.py): Llama-3, Qwen2 and GPT-2 rules, including the
// Llama-3 family whose vocabularies are not bundled.
#include "quantbench/tokenizer/pretokenizer.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "quantbench/core/error.h"
#include "tokenizer_test_data.h"

namespace qb::tokenizer {
namespace {

TEST(PreTokenizer, MatchesHuggingFaceSplit) {
  const auto g = nlohmann::json::parse(test::read_text_file(test::source_path("tests/golden/tokenizer/pretok_golden.json")));
  std::map<std::string, std::unique_ptr<RegexSplitter>> splitters;
  int n = 0;
  for (const auto& c : g.at("cases")) {
    const std::string pre = c.at("pre");
    auto& sp = splitters[pre];
    if (!sp) sp = std::make_unique<RegexSplitter>(pre_tokenizer_config(pre).regexes);
    const std::string text = c.at("text");
    std::vector<std::string> got;
    for (const Piece& p : sp->split(text)) got.push_back(text.substr(p.begin, p.end - p.begin));
    EXPECT_EQ(got, c.at("pieces").get<std::vector<std::string>>()) << pre << ": '" << text << "'";
    ++n;
  }
  EXPECT_EQ(n, 150);
}

TEST(PreTokenizer, SequenceSplitsEachPieceAndCoversText) {
  // StarCoder's rule: digits one by one first, then GPT-2's pattern inside each remaining piece.
  const RegexSplitter sp(pre_tokenizer_config("starcoder").regexes);
  const std::string text = "ab 123 cd";
  std::vector<std::string> got;
  for (const Piece& p : sp.split(text)) got.push_back(text.substr(p.begin, p.end - p.begin));
  EXPECT_EQ(got, (std::vector<std::string>{"ab", " ", "1", "2", "3", " cd"}));
  EXPECT_TRUE(sp.split("").empty());
}

TEST(PreTokenizer, KnownNamesAndErrors) {
  EXPECT_EQ(pre_tokenizer_config("llama-bpe").canonical, "llama3");
  EXPECT_TRUE(pre_tokenizer_config("llama-bpe").ignore_merges);
  EXPECT_EQ(pre_tokenizer_config("smollm").regexes, pre_tokenizer_config("starcoder").regexes);
  EXPECT_FALSE(pre_tokenizer_config("smollm").clean_spaces);
  EXPECT_EQ(pre_tokenizer_config("").canonical, "default");
  EXPECT_THROW(pre_tokenizer_config("no-such-pre"), Error);
  for (const char* name : {"gpt-2", "llama-bpe", "qwen2", "deepseek-llm", "deepseek-coder", "falcon", "starcoder",
                           "refact", "mpt", "smollm", "command-r", "default"})
    EXPECT_NO_THROW(RegexSplitter(pre_tokenizer_config(name).regexes)) << name;  // every pattern compiles
}

}  // namespace
}  // namespace qb::tokenizer
