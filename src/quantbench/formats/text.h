// Text checks shared by the format readers: UTF-8 validation of names and strings read from files,
// and a printable form of untrusted names for error messages. Error messages must stay on one line
// and valid UTF-8 whatever bytes a hostile file holds, so every name we quote passes through
// printable() first.
#pragma once
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace qb::formats {

// Byte offset of the first byte that is not part of well-formed UTF-8 (RFC 3629: no overlongs, no
// surrogates, nothing above U+10FFFF), or nullopt when all of `s` is valid.
std::optional<size_t> utf8_error_offset(std::string_view s);
inline bool is_valid_utf8(std::string_view s) { return !utf8_error_offset(s).has_value(); }

// `s` with control characters, backslashes and invalid UTF-8 bytes written as \xNN (\n, \t as such),
// cut to at most `max_bytes` bytes of input with "..." appended when cut.
std::string printable(std::string_view s, size_t max_bytes = 120);

}  // namespace qb::formats
