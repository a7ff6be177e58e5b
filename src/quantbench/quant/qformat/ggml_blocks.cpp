// Reference dequantizers for ggml's block types, one plain loop per type in the element order of
// llama.cpp's dequantize_row_* (ggml-quants.c). Every float expression keeps llama.cpp's operation
// order (e.g. q4_1 is q*d + m, q6_K is (d*sc)*q) so results are bit-identical. GCC contracts a*b+c
// into an FMA in C++ whenever the target has FMA (e.g. -march=native), which would change roundings,
// so contraction is switched off for this file below.
#include "quantbench/quant/qformat/ggml_blocks.h"

#include <cmath>
#include <cstddef>
#include <cstring>

#include "quantbench/core/dtype.h"
#include "quantbench/core/error.h"
#include "quantbench/quant/qformat/ggml_block_structs.h"

// Keep every a*b+c as two roundings, as llama.cpp's reference C and the gguf package compute it.
#pragma GCC optimize("fp-contract=off")

namespace qb::qformat {

using formats::GgmlType;

namespace {

template <typename Block>
const Block* blocks_of(const void* src) { return static_cast<const Block*>(src); }

void deq_q4_0(const void* src, float* y, int64_t nb) {
  const auto* x = blocks_of<BlockQ4_0>(src);
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    const float d = f16_to_f32(x[i].d);
    for (int j = 0; j < kQK / 2; ++j) {
      y[j] = float((x[i].qs[j] & 0xF) - 8) * d;
      y[j + kQK / 2] = float((x[i].qs[j] >> 4) - 8) * d;
    }
  }
}

void deq_q4_1(const void* src, float* y, int64_t nb) {
  const auto* x = blocks_of<BlockQ4_1>(src);
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    const float d = f16_to_f32(x[i].d), m = f16_to_f32(x[i].m);
    for (int j = 0; j < kQK / 2; ++j) {
      y[j] = float(x[i].qs[j] & 0xF) * d + m;
      y[j + kQK / 2] = float(x[i].qs[j] >> 4) * d + m;
    }
  }
}

// Q5: the fifth bit of element j is bit j of the little-endian 32-bit qh.
template <typename Block, bool kHasMin>
void deq_q5(const void* src, float* y, int64_t nb) {
  const auto* x = blocks_of<Block>(src);
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    const float d = f16_to_f32(x[i].d);
    float m = 0;
    if constexpr (kHasMin) m = f16_to_f32(x[i].m);
    uint32_t qh;
    std::memcpy(&qh, x[i].qh, 4);
    for (int j = 0; j < kQK / 2; ++j) {
      const int h0 = int((qh >> j) & 1) << 4, h1 = int((qh >> (j + 16)) & 1) << 4;
      const int q0 = (x[i].qs[j] & 0xF) | h0, q1 = (x[i].qs[j] >> 4) | h1;
      if constexpr (kHasMin) {
        y[j] = float(q0) * d + m;
        y[j + kQK / 2] = float(q1) * d + m;
      } else {
        y[j] = float(q0 - 16) * d;
        y[j + kQK / 2] = float(q1 - 16) * d;
      }
    }
  }
}

void deq_q8_0(const void* src, float* y, int64_t nb) {
  const auto* x = blocks_of<BlockQ8_0>(src);
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    const float d = f16_to_f32(x[i].d);
    for (int j = 0; j < kQK; ++j) y[j] = float(x[i].qs[j]) * d;
  }
}

// Q2_K: 16 sub-blocks of 16; scales[k] low nibble = scale, high nibble = min. Each 32-byte group of
// qs holds four 2-bit planes; plane p of bytes [0,16) and [16,32) are sub-blocks 2p and 2p+1.
void deq_q2_k(const void* src, float* y, int64_t nb) {
  const auto* x = blocks_of<BlockQ2_K>(src);
  for (int64_t i = 0; i < nb; ++i) {
    const float d = f16_to_f32(x[i].d), dmin = f16_to_f32(x[i].dmin);
    const uint8_t* q = x[i].qs;
    int is = 0;
    for (int n = 0; n < kQKK; n += 128, q += 32) {
      for (int shift = 0; shift < 8; shift += 2) {
        for (int half = 0; half < 2; ++half) {
          const uint8_t sc = x[i].scales[is++];
          const float dl = d * float(sc & 0xF), ml = dmin * float(sc >> 4);
          for (int l = 0; l < 16; ++l) *y++ = dl * float((q[l + 16 * half] >> shift) & 3) - ml;
        }
      }
    }
  }
}

// Q3_K: 2 low bits as in Q2_K; hmask bit (plane index) set means +0, clear means -4.
void deq_q3_k(const void* src, float* y, int64_t nb) {
  const auto* x = blocks_of<BlockQ3_K>(src);
  for (int64_t i = 0; i < nb; ++i) {
    const float d_all = f16_to_f32(x[i].d);
    int8_t scales[16];
    q3_k_scales(x[i].scales, scales);
    const uint8_t* q = x[i].qs;
    const uint8_t* hm = x[i].hmask;
    uint8_t m = 1;
    int is = 0;
    for (int n = 0; n < kQKK; n += 128, q += 32) {
      for (int shift = 0; shift < 8; shift += 2, m = uint8_t(m << 1)) {
        for (int half = 0; half < 2; ++half) {
          const float dl = d_all * float(scales[is++]);
          for (int l = 16 * half; l < 16 * half + 16; ++l)
            *y++ = dl * float(((q[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4));
        }
      }
    }
  }
}

// Q4_K: 8 sub-blocks of 32; each 32 bytes of qs hold sub-block 2k (low nibbles) and 2k+1 (high).
void deq_q4_k(const void* src, float* y, int64_t nb) {
  const auto* x = blocks_of<BlockQ4_K>(src);
  for (int64_t i = 0; i < nb; ++i) {
    const float d = f16_to_f32(x[i].d), dmin = f16_to_f32(x[i].dmin);
    const uint8_t* q = x[i].qs;
    for (int is = 0; is < 8; is += 2, q += 32) {
      uint8_t sc, m;
      k4_scale_min(is, x[i].scales, &sc, &m);
      const float d1 = d * float(sc), m1 = dmin * float(m);
      k4_scale_min(is + 1, x[i].scales, &sc, &m);
      const float d2 = d * float(sc), m2 = dmin * float(m);
      for (int l = 0; l < 32; ++l) *y++ = d1 * float(q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * float(q[l] >> 4) - m2;
    }
  }
}

// Q5_K: Q4_K plus a fifth bit: bit (2k) / (2k+1) of qh[l] belongs to sub-block 2k / 2k+1.
void deq_q5_k(const void* src, float* y, int64_t nb) {
  const auto* x = blocks_of<BlockQ5_K>(src);
  for (int64_t i = 0; i < nb; ++i) {
    const float d = f16_to_f32(x[i].d), dmin = f16_to_f32(x[i].dmin);
    const uint8_t* ql = x[i].qs;
    const uint8_t* qh = x[i].qh;
    uint8_t u1 = 1, u2 = 2;
    for (int is = 0; is < 8; is += 2, ql += 32, u1 = uint8_t(u1 << 2), u2 = uint8_t(u2 << 2)) {
      uint8_t sc, m;
      k4_scale_min(is, x[i].scales, &sc, &m);
      const float d1 = d * float(sc), m1 = dmin * float(m);
      k4_scale_min(is + 1, x[i].scales, &sc, &m);
      const float d2 = d * float(sc), m2 = dmin * float(m);
      for (int l = 0; l < 32; ++l) *y++ = d1 * float((ql[l] & 0xF) + ((qh[l] & u1) ? 16 : 0)) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * float((ql[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) - m2;
    }
  }
}

// Q6_K: per 128 elements, ql holds 64 bytes of low nibbles and qh 32 bytes of 2-bit high parts for
// the four 32-element quarters; 16 int8 scales, one per 16 elements; values offset by 32.
void deq_q6_k(const void* src, float* y, int64_t nb) {
  const auto* x = blocks_of<BlockQ6_K>(src);
  for (int64_t i = 0; i < nb; ++i) {
    const float d = f16_to_f32(x[i].d);
    const uint8_t* ql = x[i].ql;
    const uint8_t* qh = x[i].qh;
    const int8_t* sc = x[i].scales;
    for (int n = 0; n < kQKK; n += 128, y += 128, ql += 64, qh += 32, sc += 8) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l] = d * float(sc[is]) * float(q1);
        y[l + 32] = d * float(sc[is + 2]) * float(q2);
        y[l + 64] = d * float(sc[is + 4]) * float(q3);
        y[l + 96] = d * float(sc[is + 6]) * float(q4);
      }
    }
  }
}

// Where each block type keeps its f16 super-scales (byte offsets of d and, if any, dmin/m).
struct ScaleFields { int d_offset; int min_offset; const char* min_name; };

std::optional<ScaleFields> scale_fields(GgmlType type) {
  switch (type) {
    case GgmlType::Q4_0: case GgmlType::Q5_0: case GgmlType::Q8_0: return ScaleFields{0, -1, ""};
    case GgmlType::Q4_1: case GgmlType::Q5_1: return ScaleFields{0, 2, "m"};
    case GgmlType::Q2_K: return ScaleFields{int(offsetof(BlockQ2_K, d)), int(offsetof(BlockQ2_K, dmin)), "dmin"};
    case GgmlType::Q3_K: return ScaleFields{int(offsetof(BlockQ3_K, d)), -1, ""};
    case GgmlType::Q4_K: return ScaleFields{int(offsetof(BlockQ4_K, d)), int(offsetof(BlockQ4_K, dmin)), "dmin"};
    case GgmlType::Q5_K: return ScaleFields{int(offsetof(BlockQ5_K, d)), int(offsetof(BlockQ5_K, dmin)), "dmin"};
    case GgmlType::Q6_K: return ScaleFields{int(offsetof(BlockQ6_K, d)), -1, ""};
    default: return std::nullopt;
  }
}

const char* non_finite_name(float f) { return std::isnan(f) ? "NaN" : "Inf"; }

uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

}  // namespace

bool can_dequantize(GgmlType type) {
  switch (type) {
    case GgmlType::F32: case GgmlType::F16: case GgmlType::BF16:
    case GgmlType::Q4_0: case GgmlType::Q4_1: case GgmlType::Q5_0: case GgmlType::Q5_1: case GgmlType::Q8_0:
    case GgmlType::Q2_K: case GgmlType::Q3_K: case GgmlType::Q4_K: case GgmlType::Q5_K: case GgmlType::Q6_K:
      return true;
    default: return false;
  }
}

void dequantize_row(GgmlType type, const void* src, float* dst, int64_t n) {
  const int64_t bs = formats::ggml_traits(type).block_size;
  QB_CHECK(n >= 0 && n % bs == 0, "dequantize {}: {} elements is not a multiple of the block size {}",
           formats::ggml_type_name(type), n, bs);
  const int64_t nb = n / bs;
  switch (type) {
    case GgmlType::F32: std::memcpy(dst, src, size_t(n) * 4); return;
    case GgmlType::F16: {
      const auto* h = static_cast<const uint8_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = f16_to_f32(load_u16(h + 2 * i));
      return;
    }
    case GgmlType::BF16: {
      const auto* h = static_cast<const uint8_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(load_u16(h + 2 * i));
      return;
    }
    case GgmlType::Q4_0: return deq_q4_0(src, dst, nb);
    case GgmlType::Q4_1: return deq_q4_1(src, dst, nb);
    case GgmlType::Q5_0: return deq_q5<BlockQ5_0, false>(src, dst, nb);
    case GgmlType::Q5_1: return deq_q5<BlockQ5_1, true>(src, dst, nb);
    case GgmlType::Q8_0: return deq_q8_0(src, dst, nb);
    case GgmlType::Q2_K: return deq_q2_k(src, dst, nb);
    case GgmlType::Q3_K: return deq_q3_k(src, dst, nb);
    case GgmlType::Q4_K: return deq_q4_k(src, dst, nb);
    case GgmlType::Q5_K: return deq_q5_k(src, dst, nb);
    case GgmlType::Q6_K: return deq_q6_k(src, dst, nb);
    default: fail("dequantization of {} is not implemented", formats::ggml_type_name(type));
  }
}

std::optional<std::string> find_non_finite(GgmlType type, const void* src, int64_t n) {
  const auto& traits = formats::ggml_traits(type);
  QB_CHECK(n >= 0 && n % traits.block_size == 0, "finiteness check of {}: {} elements is not a multiple of {}",
           traits.name, n, traits.block_size);
  const auto* bytes = static_cast<const uint8_t*>(src);
  switch (type) {
    case GgmlType::F32:
      for (int64_t i = 0; i < n; ++i) {
        float f;
        std::memcpy(&f, bytes + 4 * i, 4);
        if (!std::isfinite(f)) return fmt::format("element {} is {}", i, non_finite_name(f));
      }
      return std::nullopt;
    case GgmlType::F16: case GgmlType::BF16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = load_u16(bytes + 2 * i);
        const float f = type == GgmlType::F16 ? f16_to_f32(h) : bf16_to_f32(h);
        if (!std::isfinite(f)) return fmt::format("element {} is {}", i, non_finite_name(f));
      }
      return std::nullopt;
    default: break;
  }
  const auto fields = scale_fields(type);
  if (!fields) fail("finiteness check of {} is not implemented", traits.name);
  // Sub-block scales are small integers and always finite; only the f16 super-scales can be NaN/Inf.
  for (int64_t b = 0; b < n / traits.block_size; ++b) {
    const uint8_t* blk = bytes + size_t(b) * traits.block_bytes;
    const float d = f16_to_f32(load_u16(blk + fields->d_offset));
    if (!std::isfinite(d)) return fmt::format("block {}: scale d is {}", b, non_finite_name(d));
    if (fields->min_offset >= 0) {
      const float m = f16_to_f32(load_u16(blk + fields->min_offset));
      if (!std::isfinite(m)) return fmt::format("block {}: scale {} is {}", b, fields->min_name, non_finite_name(m));
    }
  }
  return std::nullopt;
}

}  // namespace qb::qformat
