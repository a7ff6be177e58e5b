// UTF-8 validation against hand-made cases from RFC 3629's rules (boundaries, overlongs,
// surrogates, truncation), and the printable form used in error messages.
#include "quantbench/formats/text.h"

#include <gtest/gtest.h>

namespace qb::formats {
namespace {

TEST(Utf8, AcceptsWellFormed) {
  for (std::string_view s : {"", "ascii", "\x7F", "\xC2\x80", "\xDF\xBF", "\xE0\xA0\x80", "\xED\x9F\xBF",
                             "\xEE\x80\x80", "\xEF\xBF\xBF", "\xF0\x90\x80\x80", "\xF4\x8F\xBF\xBF"})
    EXPECT_TRUE(is_valid_utf8(s)) << printable(s);
  EXPECT_TRUE(is_valid_utf8(std::string_view("a\0b", 3)));  // NUL is a valid code point
}

TEST(Utf8, RejectsMalformedAtTheRightByte) {
  struct Case { std::string_view s; size_t at; };
  const Case cases[] = {
      {"\x80", 0},                  // lone continuation
      {"ab\xC0\x80", 2},            // overlong NUL
      {"\xC1\xBF", 0},              // overlong
      {"\xE0\x9F\xBF", 0},          // overlong 3-byte
      {"\xED\xA0\x80", 0},          // surrogate U+D800
      {"\xF0\x8F\xBF\xBF", 0},      // overlong 4-byte
      {"\xF4\x90\x80\x80", 0},      // U+110000
      {"\xF5\x80\x80\x80", 0},      // lead byte past F4
      {"x\xE2\x98", 1},             // truncated
      {"\xC3\xA9\xC3", 2},          // truncated after a valid char
      {"\xE2\x28\xA1", 0},          // bad continuation
      {"\xFF", 0},
  };
  for (const auto& c : cases) {
    auto at = utf8_error_offset(c.s);
    ASSERT_TRUE(at.has_value()) << printable(c.s);
    EXPECT_EQ(*at, c.at) << printable(c.s);
  }
}

TEST(Printable, EscapesWhatWouldBreakALine) {
  EXPECT_EQ(printable("plain.key"), "plain.key");
  EXPECT_EQ(printable("a\nb\tc\\d"), "a\\nb\\tc\\\\d");
  EXPECT_EQ(printable("\x01\x7F"), "\\x01\\x7f");
  EXPECT_EQ(printable("caf\xC3\xA9"), "caf\xC3\xA9");
  EXPECT_EQ(printable("\xFF" "a"), "\\xffa");
  EXPECT_EQ(printable("\xC2\x85"), "\\xc2\\x85");  // NEL, a C1 control
  EXPECT_EQ(printable("abcdef", 3), "abc...");
  EXPECT_EQ(printable("\xC3\xA9xyz", 1), "\\xc3...");  // a character cut by the limit is escaped
}

}  // namespace
}  // namespace qb::formats
