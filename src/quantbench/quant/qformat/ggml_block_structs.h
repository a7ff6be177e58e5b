// Byte layouts of ggml's block types, as llama.cpp's ggml-common.h defines them (QK_K = 256).
// Shared by the dequantizers, the reference quantizers and the fused CPU kernels, so that one struct
// definition (pinned by static_assert against formats/ggml_types.cpp's block_bytes) serves all three.
// f16 fields are kept as raw uint16_t bit patterns: blocks are read straight from mapped files.
#pragma once
#include <cstdint>

namespace qb::qformat {

inline constexpr int kQK = 32;   // elements per block of the legacy types (q4_0 .. q8_1)
inline constexpr int kQKK = 256;  // elements per K-quant super-block
inline constexpr int kKScaleSize = 12;

struct BlockQ4_0 { uint16_t d; uint8_t qs[kQK / 2]; };
struct BlockQ4_1 { uint16_t d, m; uint8_t qs[kQK / 2]; };
struct BlockQ5_0 { uint16_t d; uint8_t qh[4]; uint8_t qs[kQK / 2]; };
struct BlockQ5_1 { uint16_t d, m; uint8_t qh[4]; uint8_t qs[kQK / 2]; };
struct BlockQ8_0 { uint16_t d; int8_t qs[kQK]; };

// K-quants: a 256-element super-block with f16 super-scales and packed per-sub-block scales.
struct BlockQ2_K { uint8_t scales[kQKK / 16]; uint8_t qs[kQKK / 4]; uint16_t d, dmin; };
struct BlockQ3_K { uint8_t hmask[kQKK / 8]; uint8_t qs[kQKK / 4]; uint8_t scales[12]; uint16_t d; };
struct BlockQ4_K { uint16_t d, dmin; uint8_t scales[kKScaleSize]; uint8_t qs[kQKK / 2]; };
struct BlockQ5_K { uint16_t d, dmin; uint8_t scales[kKScaleSize]; uint8_t qh[kQKK / 8]; uint8_t qs[kQKK / 2]; };
struct BlockQ6_K { uint8_t ql[kQKK / 2]; uint8_t qh[kQKK / 4]; int8_t scales[kQKK / 16]; uint16_t d; };

static_assert(sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20 && sizeof(BlockQ5_0) == 22);
static_assert(sizeof(BlockQ5_1) == 24 && sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ2_K) == 84 && sizeof(BlockQ3_K) == 110 && sizeof(BlockQ4_K) == 144);
static_assert(sizeof(BlockQ5_K) == 176 && sizeof(BlockQ6_K) == 210);
static_assert(alignof(BlockQ4_0) == 2 && alignof(BlockQ6_K) == 2);

// Q4_K/Q5_K pack eight 6-bit (scale, min) pairs into 12 bytes: pairs 0-3 sit in the low 6 bits of
// bytes 0-3 / 4-7; pairs 4-7 keep their low nibbles in bytes 8-11 and their top 2 bits in the spare
// high bits of bytes 0-7.
inline void k4_scale_min(int j, const uint8_t* q, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = uint8_t((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *m = uint8_t((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// Q3_K's sixteen 6-bit scales: low nibbles in bytes 0-7 (scales 0-7 low, 8-15 high nibble), top two
// bits in bytes 8-11 (scale k uses byte 8 + k%4, bits 2*(k/4)); stored with a +32 offset.
inline void q3_k_scales(const uint8_t* s, int8_t out[16]) {
  for (int k = 0; k < 16; ++k) {
    const int lo = k < 8 ? (s[k] & 0xF) : (s[k - 8] >> 4);
    const int hi = (s[8 + k % 4] >> (2 * (k / 4))) & 3;
    out[k] = int8_t((lo | (hi << 4)) - 32);
  }
}

}  // namespace qb::qformat
