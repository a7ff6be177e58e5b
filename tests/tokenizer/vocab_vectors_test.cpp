// llama.cpp's tokenizer test vectors (tests/test-tokenizer-0): every test of every bundled vocabulary
// must give exactly the reference ids. The .out files were made by Hugging Face tokenizers; llama.cpp's
// test calls the tokenizer with add_special = false and parse_special = false, and so do we.
#include <gtest/gtest.h>

#include "quantbench/tokenizer/tokenizer.h"
#include "tokenizer_test_data.h"

namespace qb::tokenizer {
namespace {

std::string describe(const Tokenizer& tok, const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) {
    s += std::to_string(id);
    if (id >= 0 && size_t(id) < tok.n_vocab()) s += "'" + tok.token(id).text + "'";
    s += ' ';
  }
  return s;
}

int run_cases(const Tokenizer& tok, const std::string& vocab, int* total) {
  const auto cases = test::read_vocab_cases(test::source_path("data/vocab/ggml-vocab-" + vocab + ".gguf.inp"),
                                            test::source_path("data/vocab/ggml-vocab-" + vocab + ".gguf.out"));
  int passed = 0;
  for (const auto& c : cases) {
    const auto got = tok.encode(c.text, /*add_special=*/false, /*parse_special=*/false);
    if (got == c.ids) {
      ++passed;
    } else {
      ADD_FAILURE() << vocab << ": '" << c.text << "'\n  want " << describe(tok, c.ids) << "\n  got  " << describe(tok, got);
    }
  }
  *total = int(cases.size());
  return passed;
}

class VocabVectors : public ::testing::TestWithParam<const char*> {};

TEST_P(VocabVectors, AllTestsPass) {
  const std::string vocab = GetParam();
  const auto tok = Tokenizer::from_gguf_file(test::inflated_path("data/vocab/ggml-vocab-" + vocab + ".gguf"));
  int total = 0;
  const int passed = run_cases(tok, vocab, &total);
  EXPECT_EQ(total, 46);
  EXPECT_EQ(passed, total);
  std::printf("[ vectors  ] %s: %d/%d\n", vocab.c_str(), passed, total);
}

INSTANTIATE_TEST_SUITE_P(Llama, VocabVectors,
                         ::testing::Values("llama-spm", "phi-3", "gpt-2", "falcon", "starcoder", "deepseek-coder",
                                           "deepseek-llm", "mpt", "refact"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (auto& ch : n)
                             if (ch == '-') ch = '_';
                           return n;
                         });

}  // namespace
}  // namespace qb::tokenizer
