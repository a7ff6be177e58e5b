// UTF-8 validation and printable quoting; see text.h.
#include "quantbench/formats/text.h"

#include <fmt/format.h>

namespace qb::formats {
namespace {

// Length of the well-formed UTF-8 sequence starting at s[i], or 0 if it is not well formed.
size_t utf8_seq_len(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return uint8_t(s[k]); };
  const uint8_t c = b(i);
  if (c < 0x80) return 1;
  size_t n;
  uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte (tightened to forbid overlongs etc.)
  if (c >= 0xC2 && c <= 0xDF) n = 2;
  else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;        // overlong
    else if (c == 0xED) hi = 0x9F;   // UTF-16 surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;        // overlong
    else if (c == 0xF4) hi = 0x8F;   // above U+10FFFF
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  if (b(i + 1) < lo || b(i + 1) > hi) return 0;
  for (size_t k = 2; k < n; ++k)
    if (b(i + k) < 0x80 || b(i + k) > 0xBF) return 0;
  return n;
}

}  // namespace

std::optional<size_t> utf8_error_offset(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const size_t n = utf8_seq_len(s, i);
    if (n == 0) return i;
    i += n;
  }
  return std::nullopt;
}

std::string printable(std::string_view s, size_t max_bytes) {
  std::string out;
  const size_t end = s.size() < max_bytes ? s.size() : max_bytes;
  for (size_t i = 0; i < end;) {
    const uint8_t c = uint8_t(s[i]);
    if (c == '\n') { out += "\\n"; ++i; continue; }
    if (c == '\t') { out += "\\t"; ++i; continue; }
    if (c == '\\') { out += "\\\\"; ++i; continue; }
    if (c < 0x20 || c == 0x7F) { out += fmt::format("\\x{:02x}", c); ++i; continue; }
    const size_t n = utf8_seq_len(s, i);
    // Invalid bytes, a sequence cut by the limit, and C1 controls (U+0080..U+009F, NEL among them)
    // are escaped byte by byte.
    if (n == 0 || i + n > end || (c == 0xC2 && uint8_t(s[i + 1]) <= 0x9F)) {
      out += fmt::format("\\x{:02x}", c);
      ++i;
      continue;
    }
    out.append(s.substr(i, n));
    i += n;
  }
  if (end < s.size()) out += "...";
  return out;
}

}  // namespace qb::formats
