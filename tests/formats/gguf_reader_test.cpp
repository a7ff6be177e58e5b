#include "quantbench/formats/gguf_reader.h"

#include <gtest/gtest.h>

#include "quantbench/core/error.h"
#include "../test_paths.h"

namespace qb::formats {
namespace {

TEST(GgufReader, ReadsStories260K) {
  auto f = GgufFile::open(test::stories260k_path());
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->architecture(), "llama");
  EXPECT_EQ(f->get_int("llama.embedding_length"), 64);
  EXPECT_EQ(f->get_int("llama.block_count"), 5);
  // The file's quirk: pad_token_id stored as u32 4294967295.
  EXPECT_EQ(f->find_uint("tokenizer.ggml.padding_token_id").value_or(0), 4294967295u);
  EXPECT_EQ(f->get_string_array("tokenizer.ggml.tokens").size(), 512u);
  int64_t params = 0;
  for (const auto& t : f->tensors()) params += t.n_elements();
  EXPECT_EQ(params, 292800);
  const auto& emb = f->tensor("token_embd.weight");
  EXPECT_EQ(emb.type, GgmlType::F32);
  EXPECT_EQ(emb.shape, (std::vector<int64_t>{64, 512}));
  EXPECT_THROW(f->tensor("nope"), Error);
  EXPECT_THROW(f->get_string("llama.block_count"), Error);
}

}  // namespace
}  // namespace qb::formats
