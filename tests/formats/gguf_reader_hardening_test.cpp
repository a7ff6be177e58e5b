// Reader hardening on hand-built files: invalid UTF-8 in keys, string values and tensor names is
// rejected with a one-line message naming the key or tensor; byte sizes that overflow are caught.
#include <gtest/gtest.h>

#include "quantbench/core/error.h"
#include "quantbench/formats/gguf_reader.h"
#include "gguf_bytes.h"
#include "temp_dir.h"

namespace qb::formats {
namespace {

// Opens `bytes` as a file and returns the error message ("" if it parsed).
std::string open_error(const std::vector<uint8_t>& bytes) {
  test::TempDir dir;
  const auto path = dir.file("f.gguf");
  test::write_bytes(path, bytes);
  try {
    GgufFile::open(path);
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    EXPECT_EQ(msg.rfind(path, 0), 0u) << "message should start with the path: " << msg;
    return msg;
  }
  return "";
}

void expect_error(const std::vector<uint8_t>& bytes, std::initializer_list<std::string_view> parts) {
  const auto msg = open_error(bytes);
  ASSERT_FALSE(msg.empty()) << "file was accepted";
  for (auto p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
}

TEST(GgufReaderHardening, AcceptsValidUtf8) {
  test::GgufBytes g;
  g.header(1, 2).kv_str("general.name", "\xE2\x98\x83 \xF0\x9F\x98\x80 caf\xC3\xA9").kv_u32("k\xC3\xA9y", 1);
  g.tensor_info("t\xC3\xA9", {4}, 0, 0).pad(32).zeros(16);
  EXPECT_EQ(open_error(g.b), "");
}

TEST(GgufReaderHardening, RejectsBadUtf8Key) {
  test::GgufBytes g;
  g.header(0, 2).kv_u32("good", 1).kv_u32("ba\xFFkey", 2);
  expect_error(g.b, {"metadata key #1", "ba\\xffkey", "UTF-8", "byte 2"});
}

TEST(GgufReaderHardening, RejectsBadUtf8StringValue) {
  for (std::string_view bad : {"\xC0\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80", "abc\xE2\x98", "\x80"}) {
    test::GgufBytes g;
    g.header(0, 1).kv_str("general.name", bad);
    expect_error(g.b, {"metadata general.name", "string value is not valid UTF-8"});
  }
}

TEST(GgufReaderHardening, RejectsBadUtf8InStringArray) {
  test::GgufBytes g;
  g.header(0, 1).str("tokenizer.ggml.tokens").put<uint32_t>(9).put<uint32_t>(8).put<uint64_t>(3);
  g.str("a").str("b").str("\xFE");
  expect_error(g.b, {"metadata tokenizer.ggml.tokens", "item 2", "UTF-8"});
}

TEST(GgufReaderHardening, RejectsBadUtf8TensorName) {
  test::GgufBytes g;
  g.header(1, 0).tensor_info("blk.0.\xC3(", {4}, 0, 0).pad(32).zeros(16);
  expect_error(g.b, {"tensor #0", "blk.0.\\xc3(", "UTF-8"});
}

TEST(GgufReaderHardening, ControlCharactersInNamesStayOnOneLine) {
  test::GgufBytes g;
  g.header(0, 2).kv_u32("a\nb", 1).kv_u32("a\nb", 2);  // duplicate key with a newline in it
  expect_error(g.b, {"a\\nb", "duplicate key"});
}

TEST(GgufReaderHardening, RejectsByteSizeOverflow) {
  // 2^40 x 2^22 f32 elements: the element count fits int64, the byte count does not fit 64 bits.
  test::GgufBytes g;
  g.header(1, 0).tensor_info("huge", {1ull << 40, 1ull << 22}, 0, 0).pad(32).zeros(64);
  expect_error(g.b, {"tensor 'huge'", "overflows"});
}

TEST(GgufReaderHardening, RejectsTensorCountBeyondFile) {
  test::GgufBytes g;
  g.header(1000000, 0).pad(32);
  expect_error(g.b, {"tensor infos"});
}

}  // namespace
}  // namespace qb::formats
