// UTF-8 helpers and the GPT-2 byte table (see utf8.h).
#include "quantbench/tokenizer/utf8.h"

namespace qb::tokenizer {

size_t utf8_lead_len(uint8_t lead) {
  static constexpr uint8_t kLen[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLen[lead >> 4];
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(char(cp));
  } else if (cp < 0x800) {
    out.push_back(char(0xC0 | (cp >> 6)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(char(0xE0 | (cp >> 12)));
    out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(char(0xF0 | (cp >> 18)));
    out.push_back(char(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  }
}

std::optional<uint32_t> decode_utf8_at(std::string_view s, size_t& pos) {
  const auto byte = [&](size_t i) { return uint8_t(s[i]); };
  const uint8_t b0 = byte(pos);
  if (b0 < 0x80) {
    ++pos;
    return b0;
  }
  size_t n;
  uint32_t cp, min;
  if ((b0 & 0xE0) == 0xC0) {
    n = 2, cp = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    n = 3, cp = b0 & 0x0F, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    n = 4, cp = b0 & 0x07, min = 0x10000;
  } else {
    return std::nullopt;
  }
  if (pos + n > s.size()) return std::nullopt;
  for (size_t i = 1; i < n; ++i) {
    const uint8_t b = byte(pos + i);
    if ((b & 0xC0) != 0x80) return std::nullopt;
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return std::nullopt;
  pos += n;
  return cp;
}

namespace {
// s with each ill-formed part replaced by one U+FFFD; bad_len(s, start) is how many bytes the part that
// starts at `start` spans (at least 1).
template <class BadLen>
std::string replace_ill_formed(std::string_view s, BadLen bad_len) {
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  while (pos < s.size()) {
    const size_t start = pos;
    if (decode_utf8_at(s, pos)) {
      out.append(s.substr(start, pos - start));
    } else {
      append_utf8(out, 0xFFFD);
      pos = start + bad_len(s, start);
    }
  }
  return out;
}

// The maximal subpart of the ill-formed sequence at `start`: the lead byte and the continuation bytes after
// it that a well-formed sequence could still have (Unicode Table 3-7: the second byte's range depends on
// the lead), up to the first that cannot. A byte that cannot lead is a subpart of its own.
size_t maximal_subpart(std::string_view s, size_t start) {
  const uint8_t b0 = uint8_t(s[start]);
  const size_t n = b0 >= 0xC2 && b0 <= 0xDF ? 2 : b0 >= 0xE0 && b0 <= 0xEF ? 3 : b0 >= 0xF0 && b0 <= 0xF4 ? 4 : 1;
  size_t end = start + 1;
  for (size_t k = 1; k < n && end < s.size(); ++k, ++end) {
    const uint8_t b = uint8_t(s[end]);
    const uint8_t lo = k > 1 ? 0x80 : b0 == 0xE0 ? 0xA0 : b0 == 0xF0 ? 0x90 : 0x80;
    const uint8_t hi = k > 1 ? 0xBF : b0 == 0xED ? 0x9F : b0 == 0xF4 ? 0x8F : 0xBF;
    if (b < lo || b > hi) break;
  }
  return end - start;
}
}  // namespace

std::string sanitize_utf8(std::string_view s) {  // one replacement per bad byte, as llama.cpp does
  return replace_ill_formed(s, [](std::string_view, size_t) { return size_t(1); });
}

std::string replace_invalid_utf8(std::string_view s) { return replace_ill_formed(s, maximal_subpart); }

bool is_valid_utf8(std::string_view s) {
  size_t pos = 0;
  while (pos < s.size()) {
    if (!decode_utf8_at(s, pos)) return false;
  }
  return true;
}

ByteUnicode::ByteUnicode() {
  cp_to_byte_.fill(-1);
  const auto printable = [](int b) { return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE); };
  int next = 256;
  for (int b = 0; b < 256; ++b) {
    const uint32_t cp = printable(b) ? uint32_t(b) : uint32_t(next++);
    append_utf8(byte_to_utf8_[b], cp);
    cp_to_byte_[cp] = int16_t(b);
  }
}

std::optional<uint8_t> ByteUnicode::decode(uint32_t cp) const {
  if (cp >= cp_to_byte_.size() || cp_to_byte_[cp] < 0) return std::nullopt;
  return uint8_t(cp_to_byte_[cp]);
}

std::string ByteUnicode::encode_bytes(std::string_view raw) const {
  std::string out;
  out.reserve(raw.size() * 2);
  for (char c : raw) out += byte_to_utf8_[uint8_t(c)];
  return out;
}

const ByteUnicode& byte_unicode() {
  static const ByteUnicode table;  // immutable after construction (thread-safe static init)
  return table;
}

}  // namespace qb::tokenizer
