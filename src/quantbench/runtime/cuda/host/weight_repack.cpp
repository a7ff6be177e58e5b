// See weight_repack.h. The conversions of Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and our own int8/int4 tensors copy
// integers and f16 scale bits unchanged, so the packed weights equal the stored ones exactly (int8 code c
// with zero 128 -> q8 = c - 128; int4 codes and zero points as they are; Q4_0 nibbles with z = 8; Q4_1
// nibbles, and Q5_1's 5-bit values as int8, with their f16 d and m as scale and min; Q8_0 int8 values;
// Q5_0's 5-bit values q - 16 as int8 with its f16 d), checked host-side by tests/cuda/backend_check/model_vs_cpu.cpp
// against the CPU reference's dequantization. The K-quants' sub-block scales are products of an f16 and a
// small integer (exact in f32): Q2_K's d * sc and min -dmin * m (4-bit), Q3_K's d * (sc - 32) (6-bit
// signed), Q4_K's and Q5_K's d * sc and -dmin * m (6-bit), Q6_K's d * sc (int8). The packed forms hold one
// f16 scale (and min) per group, so those are rounded once to f16; the check holds them to that rounding.
// Their values are stored exactly: Q2_K's 0..3 and Q3_K's -4..3 as int8 with groups of 16 (w8g16m,
// w8g16), Q4_K's 0..15 as int4 (w4g32m), Q5_K's 0..31 as int8 (w8g32m), Q6_K's -32..31 as int8 (w8g16).
#include "quantbench/runtime/cuda/host/weight_repack.h"

#include <type_traits>

#include "quantbench/core/dtype.h"
#include "quantbench/core/error.h"
#include "quantbench/quant/qformat/bit_pack.h"
#include "quantbench/quant/qformat/ggml_block_structs.h"
#include "quantbench/quant/qformat/ggml_blocks.h"
#include "quantbench/quant/qformat/quantized_tensor.h"

namespace qb::runtime::cuda {
namespace {
using formats::GgmlType;
}  // namespace

std::string supported_list() {
  std::string dense;
  for (auto t : {GgmlType::F32, GgmlType::F16, GgmlType::BF16})
    if (qformat::can_dequantize(t)) dense += (dense.empty() ? "" : ", ") + std::string(formats::ggml_type_name(t));
  return "packed for the qgemv decode kernels: w8 (int8 per-row, f16 scales), w4g32 and w4g128 (int4, f16 "
         "scales, sym or asym), GGUF q2_k, q3_k, q4_0, q4_1, q4_k, q5_0, q5_1, q5_k, q6_k and q8_0; dense f16 or bf16 "
         "(dequantized at load): GGUF " +
         dense;
}

namespace {
uint16_t u16_at(const uint8_t* p) { return uint16_t(p[0] | (p[1] << 8)); }

// An f16 scale or min of a K-quant from its exact f32 value, rounded once; a value f16 cannot hold stops
// the load (no real model has one: it would be a weight beyond 65504 / 31, or 65504 / 32).
uint16_t f16_rounded(float v, const char* type, const std::string& what) {
  const uint16_t h = f32_to_f16(v);
  QB_CHECK((h & 0x7c00) != 0x7c00, "cuda backend: a {} {} ({}) is not finite or beyond f16's range; this matrix has no GPU path",
           type, what, v);
  return h;
}

// One row of Q4_K or Q5_K super-blocks (256 elements: f16 d and dmin, eight 6-bit (sc, m) pairs, and 128
// bytes holding sub-blocks 2k (low nibbles) and 2k + 1 (high) in bytes 32k .. 32k + 31; Q5_K adds the
// fifth bit of sub-block j's element l at bit j of qh[l], qformat::deq_q5_k): per sub-block its scale d*sc
// and min -dmin*m, each rounded once to f16, and its 32 values q (weight d*sc*q - dmin*m) into q.
template <class KBlock, class Q>
void unpack_k_row(const KBlock* blocks, int64_t n_in, const char* type, uint16_t* scales, uint16_t* mins, Q* q) {
  for (int64_t sb = 0; sb < n_in / 256; ++sb) {
    const KBlock& blk = blocks[sb];
    for (int j = 0; j < 8; ++j) {
      uint8_t sc = 0, mn = 0;
      qformat::k4_scale_min(j, blk.scales, &sc, &mn);
      scales[8 * sb + j] = f16_rounded(f16_to_f32(blk.d) * float(sc), type, "scale");
      mins[8 * sb + j] = f16_rounded(-(f16_to_f32(blk.dmin) * float(mn)), type, "min");
      const uint8_t* qs = blk.qs + 32 * (j / 2);
      for (int l = 0; l < 32; ++l) {
        int v = (j % 2) ? qs[l] >> 4 : qs[l] & 15;
        if constexpr (std::is_same_v<KBlock, qformat::BlockQ5_K>) v |= ((blk.qh[l] >> j) & 1) << 4;
        q[256 * sb + 32 * j + l] = Q(v);
      }
    }
  }
}

// The 32 nibbles of a Q4_0 or Q4_1 block: elements j and j + 16 in the low and high nibble of byte j.
void unpack_q4_values(const uint8_t* qs, uint8_t* out) {
  for (int j = 0; j < 16; ++j) {
    out[j] = qs[j] & 15;
    out[j + 16] = qs[j] >> 4;
  }
}

// The 32 values of a Q5_0 or Q5_1 block (16 bytes of nibbles: elements j and j + 16 in byte j; the fifth
// bit of element j at bit j of qh), minus `offset` (Q5_0: 16; Q5_1: 0).
void unpack_q5_values(const uint8_t* qs, const uint8_t* qh_bytes, int offset, int8_t* out) {
  const uint32_t qh = uint32_t(qh_bytes[0]) | uint32_t(qh_bytes[1]) << 8 | uint32_t(qh_bytes[2]) << 16 |
                      uint32_t(qh_bytes[3]) << 24;
  for (int j = 0; j < 16; ++j) {
    out[j] = int8_t(((qs[j] & 15) | ((qh >> j) & 1) << 4) - offset);
    out[j + 16] = int8_t(((qs[j] >> 4) | ((qh >> (j + 16)) & 1) << 4) - offset);
  }
}

// One row of Q2_K or Q3_K super-blocks (qformat::deq_q2_k / deq_q3_k): each 128 elements read 32 bytes
// of qs as four 2-bit planes, plane p of byte l being element 32 p + l, so sub-block (group of 16) j
// of the super-block is plane j / 2 % 4 of bytes 16 (j % 2) .. + 15 in the j / 8-th 32 bytes. Q2_K:
// weight d*sc*q - dmin*m, q = 0..3, (sc, m) the nibbles of scales[j]; Q3_K: weight d*(sc-32)*q3 with
// q3 = q - 4 where bit 4 (j / 8) + p of hmask[l] is clear, else q. mins: Q2_K's (null for Q3_K).
void unpack_k_low_row(const model::WeightMatrix& w, int64_t r, int64_t n_in, uint16_t* scales, uint16_t* mins,
                      int8_t* q) {
  const bool q2 = w.type == GgmlType::Q2_K;
  const uint8_t* row = w.data + size_t(r) * w.row_bytes;
  for (int64_t sb = 0; sb < n_in / 256; ++sb) {
    const uint8_t* qs;
    const uint8_t* hmask = nullptr;
    int8_t sc3[16];
    if (q2) {
      const auto& blk = reinterpret_cast<const qformat::BlockQ2_K*>(row)[sb];
      const float d = f16_to_f32(blk.d), dmin = f16_to_f32(blk.dmin);
      for (int j = 0; j < 16; ++j) {
        scales[16 * sb + j] = f16_rounded(d * float(blk.scales[j] & 15), "q2_k", "scale");
        mins[16 * sb + j] = f16_rounded(-(dmin * float(blk.scales[j] >> 4)), "q2_k", "min");
      }
      qs = blk.qs;
    } else {
      const auto& blk = reinterpret_cast<const qformat::BlockQ3_K*>(row)[sb];
      qformat::q3_k_scales(blk.scales, sc3);
      const float d = f16_to_f32(blk.d);
      for (int j = 0; j < 16; ++j) scales[16 * sb + j] = f16_rounded(d * float(sc3[j]), "q3_k", "scale");
      qs = blk.qs;
      hmask = blk.hmask;
    }
    for (int half = 0; half < 2; ++half)      // elements 128 half ..
      for (int p = 0; p < 4; ++p)             // plane p: elements 128 half + 32 p + l
        for (int l = 0; l < 32; ++l) {
          int v = (qs[32 * half + l] >> (2 * p)) & 3;
          if (!q2 && !((hmask[l] >> (4 * half + p)) & 1)) v -= 4;
          q[256 * sb + 128 * half + 32 * p + l] = int8_t(v);
        }
  }
}
}  // namespace

PartPlan plan_for(const model::WeightMatrix& w, const std::string& what) {
  if (w.quantized) {
    const quant::QuantizedTensor& q = *w.quantized;
    const quant::QuantLayout& l = q.layout;
    const std::string name = quant::layout_name(l);
    if (l.scale_type == quant::ScaleType::F16 && !q.ragged_last_group) {
      if (l.format == quant::QFormat::Int8 && l.granularity == quant::Granularity::Channel && !l.asymmetric)
        return {true, {WeightFormat::W8A16, 0, false}, name + " -> w8 packed (qgemv)"};
      if (l.format == quant::QFormat::Int4 && l.granularity == quant::Granularity::Group &&
          (l.group_size == 32 || l.group_size == 128) && w.n_in % l.group_size == 0)
        return {true, {WeightFormat::W4A16, int(l.group_size), l.asymmetric},
                name + " -> " + spec_name({WeightFormat::W4A16, int(l.group_size), l.asymmetric}) + " packed (qgemv)"};
    }
    fail("cuda backend: weight {} is stored as {}, which has no GPU path (supported: {})", what, name,
         supported_list());
  }
  const std::string tn(formats::ggml_type_name(w.type));
  if (w.type == GgmlType::Q4_0 && w.n_in % 32 == 0)
    return {true, {WeightFormat::W4A16, 32, false}, tn + " -> w4g32 packed (qgemv, exact repack)"};
  if (w.type == GgmlType::Q4_1 && w.n_in % 32 == 0)
    return {true, {WeightFormat::W4A16, 32, false, true}, tn + " -> w4g32m packed (qgemv, exact repack)"};
  if (w.type == GgmlType::Q4_K && w.n_in % 256 == 0)
    return {true, {WeightFormat::W4A16, 32, false, true},
            tn + " -> w4g32m packed (qgemv; sub-block scales d*sc and mins dmin*m rounded once to f16)"};
  if (w.type == GgmlType::Q8_0 && w.n_in % 32 == 0)
    return {true, {WeightFormat::W8A16, 32, false}, tn + " -> w8g32 packed (qgemv, exact repack)"};
  if (w.type == GgmlType::Q5_0 && w.n_in % 32 == 0)
    return {true, {WeightFormat::W8A16, 32, false}, tn + " -> w8g32 packed (qgemv, exact repack)"};
  if (w.type == GgmlType::Q5_K && w.n_in % 256 == 0)
    return {true, {WeightFormat::W8A16, 32, false, true},
            tn + " -> w8g32m packed (qgemv; 5-bit values exact as int8, sub-block scales d*sc and mins dmin*m "
                 "rounded once to f16)"};
  if (w.type == GgmlType::Q5_1 && w.n_in % 32 == 0)
    return {true, {WeightFormat::W8A16, 32, false, true}, tn + " -> w8g32m packed (qgemv, exact repack)"};
  if (w.type == GgmlType::Q6_K && w.n_in % 256 == 0)
    return {true, {WeightFormat::W8A16, 16, false},
            tn + " -> w8g16 packed (qgemv; 6-bit values exact as int8, sub-block scales d*sc rounded once to f16)"};
  if (w.type == GgmlType::Q3_K && w.n_in % 256 == 0)
    return {true, {WeightFormat::W8A16, 16, false},
            tn + " -> w8g16 packed (qgemv; 3-bit values exact as int8, sub-block scales d*(sc-32) rounded once to f16)"};
  if (w.type == GgmlType::Q2_K && w.n_in % 256 == 0)
    return {true, {WeightFormat::W8A16, 16, false, true},
            tn + " -> w8g16m packed (qgemv; 2-bit values exact as int8, sub-block scales d*sc and mins dmin*m "
                 "rounded once to f16)"};
  // The rest run dense (dequantized at load): the unquantized types, and any other type the CPU can
  // dequantize (a packable type's rows are whole blocks, which GGUF requires, so none lands here).
  if (w.type == GgmlType::F32 || w.type == GgmlType::F16 || w.type == GgmlType::BF16 || qformat::can_dequantize(w.type))
    return {false, {}, tn + " -> dense"};
  fail("cuda backend: weight {} has type {}, which has no GPU path (supported: {})", what, tn, supported_list());
}

// Appends rows [0, n_out) of w, in its packed spec, to the host matrix m (whose spec matches).
void append_packed_rows(const model::WeightMatrix& w, HostMatrix& m) {
  const int64_t n_in = w.n_in, row0 = m.n_out;
  const QuantSpec& sp = m.spec;
  const int64_t ng = sp.group ? n_in / sp.group : 1;
  m.n_out += w.n_out;
  const size_t n = size_t(m.n_out * n_in);
  if (sp.format == WeightFormat::W4A16) m.q4.resize(n);
  else m.q8.resize(n);
  m.scales.resize(size_t(m.n_out * ng));
  if (sp.asym) m.zeros.resize(m.scales.size());
  if (sp.mins) m.mins.resize(m.scales.size());
  for (int64_t r = 0; r < w.n_out; ++r) {
    const size_t at = size_t((row0 + r) * n_in), sat = size_t((row0 + r) * ng);
    if (w.quantized) {
      const quant::QuantizedTensor& q = *w.quantized;
      const uint8_t* codes = q.codes.data() + size_t(r) * q.row_bytes();
      if (sp.format == WeightFormat::W8A16) {
        for (int64_t i = 0; i < n_in; ++i) m.q8[at + size_t(i)] = int8_t(int(codes[i]) - 128);
      } else {
        quant::unpack_codes(4, codes, 0, n_in, m.q4.data() + at);
      }
      for (int64_t g = 0; g < ng; ++g) {
        const size_t si = q.scale_index(r, g);
        m.scales[sat + size_t(g)] = u16_at(q.scales.data() + 2 * si);
        if (sp.asym) m.zeros[sat + size_t(g)] = q.zeros[si];
      }
    } else if (w.type == GgmlType::Q4_0) {  // 18-byte blocks: f16 d, 16 bytes of nibbles (low: 0..15)
      const uint8_t* row = w.data + size_t(r) * w.row_bytes;
      for (int64_t b = 0; b < ng; ++b) {
        const uint8_t* blk = row + 18 * b;
        m.scales[sat + size_t(b)] = u16_at(blk);
        unpack_q4_values(blk + 2, m.q4.data() + at + size_t(32 * b));
      }
    } else if (w.type == GgmlType::Q4_1) {  // 20-byte blocks: f16 d, f16 m, 16 bytes of nibbles
      const uint8_t* row = w.data + size_t(r) * w.row_bytes;
      for (int64_t b = 0; b < ng; ++b) {
        const uint8_t* blk = row + sizeof(qformat::BlockQ4_1) * size_t(b);
        m.scales[sat + size_t(b)] = u16_at(blk);
        m.mins[sat + size_t(b)] = u16_at(blk + 2);
        unpack_q4_values(blk + 4, m.q4.data() + at + size_t(32 * b));
      }
    } else if (w.type == GgmlType::Q4_K) {
      unpack_k_row(reinterpret_cast<const qformat::BlockQ4_K*>(w.data + size_t(r) * w.row_bytes), n_in, "q4_k",
                   m.scales.data() + sat, m.mins.data() + sat, m.q4.data() + at);
    } else if (w.type == GgmlType::Q5_0) {  // 22-byte blocks: f16 d, 32 fifth bits, 16 bytes of nibbles
      const auto* blocks = reinterpret_cast<const qformat::BlockQ5_0*>(w.data + size_t(r) * w.row_bytes);
      for (int64_t b = 0; b < ng; ++b) {
        const qformat::BlockQ5_0& blk = blocks[b];
        m.scales[sat + size_t(b)] = blk.d;
        unpack_q5_values(blk.qs, blk.qh, 16, m.q8.data() + at + size_t(32 * b));
      }
    } else if (w.type == GgmlType::Q5_1) {  // 24-byte blocks: f16 d, f16 m, 32 fifth bits, 16 bytes of nibbles
      const auto* blocks = reinterpret_cast<const qformat::BlockQ5_1*>(w.data + size_t(r) * w.row_bytes);
      for (int64_t b = 0; b < ng; ++b) {
        const qformat::BlockQ5_1& blk = blocks[b];
        m.scales[sat + size_t(b)] = blk.d;
        m.mins[sat + size_t(b)] = blk.m;
        unpack_q5_values(blk.qs, blk.qh, 0, m.q8.data() + at + size_t(32 * b));
      }
    } else if (w.type == GgmlType::Q2_K || w.type == GgmlType::Q3_K) {
      unpack_k_low_row(w, r, n_in, m.scales.data() + sat, sp.mins ? m.mins.data() + sat : nullptr, m.q8.data() + at);
    } else if (w.type == GgmlType::Q5_K) {  // values 0..31 as int8 (w8g32m)
      unpack_k_row(reinterpret_cast<const qformat::BlockQ5_K*>(w.data + size_t(r) * w.row_bytes), n_in, "q5_k",
                   m.scales.data() + sat, m.mins.data() + sat, m.q8.data() + at);
    } else if (w.type == GgmlType::Q6_K) {
      // 256-element super-blocks (qformat::deq_q6_k's layout): per half of 128, ql's 64 bytes hold the low
      // nibbles of quarters 0 and 2 (low / high nibble of bytes 0-31) and 1 and 3 (bytes 32-63), qh's 32
      // bytes their 2-bit high parts (bits 2k..2k+1 for quarter k); 16 int8 scales, one per 16 elements;
      // weight d * sc * (q - 32).
      const auto* blocks = reinterpret_cast<const qformat::BlockQ6_K*>(w.data + size_t(r) * w.row_bytes);
      for (int64_t sb = 0; sb < n_in / 256; ++sb) {
        const qformat::BlockQ6_K& blk = blocks[sb];
        const float d = f16_to_f32(blk.d);
        for (int j = 0; j < 16; ++j)
          m.scales[sat + size_t(16 * sb + j)] = f16_rounded(d * float(blk.scales[j]), "q6_k", "scale");
        for (int half = 0; half < 2; ++half) {
          const uint8_t* ql = blk.ql + 64 * half;
          const uint8_t* qh = blk.qh + 32 * half;
          int8_t* out = m.q8.data() + at + size_t(256 * sb + 128 * half);
          for (int l = 0; l < 32; ++l)
            for (int k = 0; k < 4; ++k) {
              const uint8_t byte = k & 1 ? ql[l + 32] : ql[l];  // quarters 1, 3: bytes 32-63
              const uint8_t low = k & 2 ? byte >> 4 : byte & 15;   // quarters 2, 3: high nibbles
              out[32 * k + l] = int8_t((low | (((qh[l] >> (2 * k)) & 3) << 4)) - 32);
            }
        }
      }
    } else {  // Q8_0: 34-byte blocks: f16 d, 32 int8
      const uint8_t* row = w.data + size_t(r) * w.row_bytes;
      for (int64_t b = 0; b < ng; ++b) {
        const uint8_t* blk = row + 34 * b;
        m.scales[sat + size_t(b)] = u16_at(blk);
        for (int j = 0; j < 32; ++j) m.q8[at + size_t(32 * b + j)] = int8_t(blk[2 + j]);
      }
    }
  }
}

}  // namespace qb::runtime::cuda
