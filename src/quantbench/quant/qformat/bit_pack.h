// Bit packing shared by every sub-byte format: a row of k-bit codes is one LSB-first bit stream
// (code i occupies bits [i*k, i*k+k) counted from bit 0 of byte 0), padded to a whole packing unit.
// For k = 2, 4, 8 this is the usual "low bits first" nibble/crumb order; for k = 3 it means 8 codes
// fill 3 bytes read as a little-endian 24-bit word. One rule for all widths keeps the layout
// documentable in one sentence (docs/schemes.md) and lets groups start anywhere.
#pragma once
#include <cstdint>

namespace qb::quant {

// Writes n codes (each < 2^bits, bits in 1..8) starting at code index `first` of the stream at dst.
// Bits of dst outside the written codes are preserved.
void pack_codes(int bits, const uint8_t* codes, int64_t first, int64_t n, uint8_t* dst);

// Reads n codes starting at code index `first` of the stream at src. Never reads a byte past the one
// holding the last requested bit.
void unpack_codes(int bits, const uint8_t* src, int64_t first, int64_t n, uint8_t* codes);

}  // namespace qb::quant
