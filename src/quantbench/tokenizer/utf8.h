// UTF-8 helpers shared by the tokenizers: strict decoding (each invalid byte becomes U+FFFD, so a
// hostile string never reaches PCRE2's UTF mode as invalid UTF-8), encoding, and GPT-2's byte <-> unicode
// table, which maps every byte to a printable code point so byte-level BPE vocabularies are plain text.
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace qb::tokenizer {

// Length of the UTF-8 sequence a lead byte announces (1 for continuation or invalid bytes), as
// llama.cpp's SPM and BPE symbol splitting use it.
size_t utf8_lead_len(uint8_t lead);

// Appends the UTF-8 encoding of `cp` (must be <= 0x10FFFF and not a surrogate).
void append_utf8(std::string& out, uint32_t cp);

// Decodes one code point at `pos`; returns nullopt (and leaves pos) if the bytes there are not a
// valid, shortest-form, non-surrogate sequence.
std::optional<uint32_t> decode_utf8_at(std::string_view s, size_t& pos);

// Returns `s` with every byte that does not start a valid sequence replaced by U+FFFD.
std::string sanitize_utf8(std::string_view s);
// Returns `s` with each maximal ill-formed subpart replaced by one U+FFFD (the Unicode Standard's
// recommended practice, ch. 3.9): what Python's bytes.decode(errors="replace") and Rust's
// String::from_utf8_lossy give, so generated text reads as Hugging Face's decode (and lm-eval) has it.
// A sequence cut short, e.g. a generation that stopped inside a character, becomes one U+FFFD.
std::string replace_invalid_utf8(std::string_view s);
bool is_valid_utf8(std::string_view s);

// GPT-2 byte-level table: printable bytes ! .. ~, ¡ .. ¬, ® .. ÿ map to themselves, the other 68 bytes
// to U+0100 upward in byte order.
class ByteUnicode {
 public:
  ByteUnicode();
  const std::string& encode(uint8_t b) const { return byte_to_utf8_[b]; }
  // The byte a code point stands for, or nullopt if it is not one of the 256.
  std::optional<uint8_t> decode(uint32_t cp) const;
  std::string encode_bytes(std::string_view raw) const;

 private:
  std::array<std::string, 256> byte_to_utf8_;
  std::array<int16_t, 512> cp_to_byte_{};  // all 256 images are below U+0200
};
const ByteUnicode& byte_unicode();  // immutable, built once

}  // namespace qb::tokenizer
