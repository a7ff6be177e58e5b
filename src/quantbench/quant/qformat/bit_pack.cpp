// Reference bit-stream packing: per code, at most two bytes are touched, and the second only when the
// code straddles a byte boundary, so the last code of a row never reads past the row.
#include "quantbench/quant/qformat/bit_pack.h"

namespace qb::quant {

void pack_codes(int bits, const uint8_t* codes, int64_t first, int64_t n, uint8_t* dst) {
  const unsigned mask = (1u << bits) - 1;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t bit = (first + i) * bits;
    const int64_t byte = bit >> 3;
    const int shift = int(bit & 7);
    const unsigned v = (codes[i] & mask) << shift;
    const unsigned m = mask << shift;
    dst[byte] = uint8_t((dst[byte] & ~m) | (v & 0xff));
    if (shift + bits > 8) dst[byte + 1] = uint8_t((dst[byte + 1] & ~(m >> 8)) | (v >> 8));
  }
}

void unpack_codes(int bits, const uint8_t* src, int64_t first, int64_t n, uint8_t* codes) {
  const unsigned mask = (1u << bits) - 1;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t bit = (first + i) * bits;
    const int64_t byte = bit >> 3;
    const int shift = int(bit & 7);
    unsigned w = src[byte];
    if (shift + bits > 8) w |= unsigned(src[byte + 1]) << 8;
    codes[i] = uint8_t((w >> shift) & mask);
  }
}

}  // namespace qb::quant
