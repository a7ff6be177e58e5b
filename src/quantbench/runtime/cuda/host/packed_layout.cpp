// See packed_layout.h. pack()/unpack() are written as plain loops over the index formulas in qgemv.h,
// so they are the readable definition of the layout that the kernels must agree with (the tests check
// unpack(pack(m)) == m and the kernels against a float64 product of m).
#include "quantbench/runtime/cuda/host/packed_layout.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

namespace qb::runtime::cuda {
namespace {

double f16_value(uint16_t h) {
  const int e = (h >> 10) & 31, m = h & 1023;
  const double sign = (h & 0x8000) ? -1.0 : 1.0;
  if (e == 0) return sign * std::ldexp(m, -24);
  if (e == 31) return m ? NAN : sign * INFINITY;
  return sign * std::ldexp(1024 + m, e - 25);
}
double bf16_value(uint16_t h) {
  uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

int lanes_per_chunk(WeightFormat f) { return f == WeightFormat::BF16 ? 4 : f == WeightFormat::W8A16 ? 2 : 1; }

// Where element (row r in 0..15, column k in 0..63) of a 16x64 chunk lives: lane, vector, and the
// element's slot inside the lane's 16 bytes (u16 index for bf16, byte for int8, nibble for int4).
struct Slot { int lane, v, pos; };
Slot slot_of(WeightFormat f, int r, int k) {
  const int s = k / 16, kk = k % 16;
  const int g = r % 8, t = (kk % 8) / 2;
  const int e = (kk % 2) + 2 * (r / 8) + 4 * (kk / 8);  // inverse of the e -> (row, column) rule
  const int lane = 4 * g + t;
  switch (f) {
    case WeightFormat::BF16: return {lane, s, e};
    case WeightFormat::W8A16: return {lane, s >> 1, 8 * (s & 1) + e};
    case WeightFormat::W4A16: return {lane, 0, 8 * s + (e >> 1) + 4 * (e & 1)};
  }
  return {0, 0, 0};
}
size_t weight_offset(const PackedShape& p, int64_t rb, int64_t c, int v, int lane) {
  return size_t(((rb * p.chunks + c) * lanes_per_chunk(p.spec.format) + v) * 32 + lane) * 16;
}
size_t scale_index(const PackedShape& p, int64_t row, int64_t gi) {
  const int64_t rb = row / 16, r = row % 16;
  return size_t(((rb * p.groups + gi) * 8 + r % 8) * 2 + r / 8);
}
// Asymmetric int4 keeps each (row block, group, g)'s scale pair and zero-point pair in one 8-byte entry
// of the scales array (qgemv.h): byte offsets of row `row`'s scale and zero point there.
size_t asym_scale_byte(const PackedShape& p, int64_t row, int64_t gi) {
  const size_t at = scale_index(p, row, gi);
  return (at / 2) * 8 + (at % 2) * 2;
}
size_t asym_zero_byte(const PackedShape& p, int64_t row, int64_t gi) {
  const size_t at = scale_index(p, row, gi);
  return (at / 2) * 8 + 4 + at % 2;
}

}  // namespace

std::string spec_name(const QuantSpec& s) {
  switch (s.format) {
    case WeightFormat::BF16: return "bf16";
    case WeightFormat::W8A16: return s.group ? "w8g" + std::to_string(s.group) + (s.mins ? "m" : "") : "w8";
    case WeightFormat::W4A16: return "w4g" + std::to_string(s.group) + (s.asym ? "a" : s.mins ? "m" : "");
  }
  return "?";
}

double HostMatrix::weight(int64_t o, int64_t i) const {
  const size_t at = size_t(o * n_in + i);
  switch (spec.format) {
    case WeightFormat::BF16: return bf16_value(bf16[at]);
    case WeightFormat::W8A16: {
      if (!spec.group) return double(q8[at]) * f16_value(scales[o]);
      const size_t g = size_t(o * (n_in / spec.group) + i / spec.group);
      return double(q8[at]) * f16_value(scales[g]) + (spec.mins ? f16_value(mins[g]) : 0.0);
    }
    case WeightFormat::W4A16: {
      const size_t g = size_t(o * (n_in / spec.group) + i / spec.group);
      if (spec.mins) return double(q4[at]) * f16_value(scales[g]) + f16_value(mins[g]);
      const int z = spec.asym ? zeros[g] : 8;
      return double(int(q4[at]) - z) * f16_value(scales[g]);
    }
  }
  return 0;
}

PackedShape packed_shape(const QuantSpec& spec, int64_t n_out, int64_t n_in) {
  if (n_out <= 0 || n_in <= 0) throw std::invalid_argument("qgemv: matrix shape must be positive");
  PackedShape p;
  p.spec = spec;
  p.n_out = n_out;
  p.n_in = n_in;
  p.row_blocks = (n_out + 15) / 16;
  p.chunks = (n_in + 63) / 64;
  if (spec.format == WeightFormat::W4A16) {
    if (spec.group != 32 && spec.group != 128)
      throw std::invalid_argument("qgemv: w4 group must be 32 or 128, got " + std::to_string(spec.group));
    if (spec.mins && (spec.group != 32 || spec.asym))
      throw std::invalid_argument("qgemv: w4 with mins needs group 32 and no zero points");
    if (n_in % spec.group)
      throw std::invalid_argument("qgemv: n_in " + std::to_string(n_in) + " is not a multiple of group " +
                                  std::to_string(spec.group));
    p.groups = (p.chunks * 64 + spec.group - 1) / spec.group;
  } else if (spec.format == WeightFormat::W8A16 && spec.group != 0) {
    // w8g32 / w8g16: one f16 scale per 32 or 16 inputs (GGUF Q8_0's blocks, Q6_K's sub-blocks), symmetric;
    // with mins (GGUF Q5_K's form w8g32m, Q2_K's w8g16m): an f16 min per group too.
    if ((spec.group != 32 && spec.group != 16) || spec.asym)
      throw std::invalid_argument("qgemv: w8 groups must be 16 or 32, without zero points, got " + spec_name(spec));
    if (n_in % spec.group)
      throw std::invalid_argument("qgemv: n_in " + std::to_string(n_in) + " is not a multiple of " +
                                  std::to_string(spec.group));
    p.groups = p.chunks * (64 / spec.group);
  } else if (spec.group != 0 || spec.asym || spec.mins) {
    throw std::invalid_argument("qgemv: group/asym/mins apply to w4 and grouped w8 only");
  }
  return p;
}

PackedSizes packed_sizes(const PackedShape& p) {
  PackedSizes s;
  s.weights = size_t(p.row_blocks * p.chunks * lanes_per_chunk(p.spec.format) * 32 * 16);
  if (p.spec.format == WeightFormat::W8A16 && !p.spec.group) s.scales = size_t(p.row_blocks * 16) * 2;
  if (p.spec.format == WeightFormat::W4A16 || (p.spec.format == WeightFormat::W8A16 && p.spec.group)) s.scales = size_t(p.row_blocks * p.groups * 16) * 2;
  if (p.spec.format == WeightFormat::W4A16 && p.spec.asym) s.scales *= 2;  // + the zero-point pairs and 2 bytes of padding
  if (p.spec.mins) s.zeros = size_t(p.row_blocks * p.groups * 16) * 2;
  return s;
}

PackedHost pack(const HostMatrix& m) {
  PackedHost out;
  const PackedShape p = out.shape = packed_shape(m.spec, m.n_out, m.n_in);
  const WeightFormat f = p.spec.format;
  const size_t n = size_t(m.n_out * m.n_in);
  const bool ok = f == WeightFormat::BF16    ? m.bf16.size() == n
                  : f == WeightFormat::W8A16 ? m.q8.size() == n &&
                                                   m.scales.size() == size_t(p.spec.group ? m.n_out * (m.n_in / p.spec.group)
                                                                                          : m.n_out) &&
                                                   (!p.spec.mins || m.mins.size() == m.scales.size())
                                             : m.q4.size() == n &&
                                                   m.scales.size() == size_t(m.n_out * (m.n_in / p.spec.group)) &&
                                                   (!p.spec.asym || m.zeros.size() == m.scales.size()) &&
                                                   (!p.spec.mins || m.mins.size() == m.scales.size());
  if (!ok) throw std::invalid_argument("qgemv: HostMatrix arrays do not match its shape");

  const PackedSizes sizes = packed_sizes(p);
  out.weights.assign(sizes.weights, 0);
  for (int64_t o = 0; o < m.n_out; ++o) {
    for (int64_t i = 0; i < m.n_in; ++i) {
      const Slot s = slot_of(f, int(o % 16), int(i % 64));
      uint8_t* vec = &out.weights[weight_offset(p, o / 16, i / 64, s.v, s.lane)];
      const size_t at = size_t(o * m.n_in + i);
      if (f == WeightFormat::BF16) {
        std::memcpy(vec + 2 * s.pos, &m.bf16[at], 2);
      } else if (f == WeightFormat::W8A16) {
        vec[s.pos] = uint8_t(int(m.q8[at]) + 128);
      } else {
        if (m.q4[at] > 15) throw std::invalid_argument("qgemv: q4 value above 15");
        vec[s.pos / 2] |= uint8_t((m.q4[at] & 15) << (4 * (s.pos % 2)));
      }
    }
  }
  if (f == WeightFormat::W8A16 && !p.spec.group) {
    out.scales.assign(sizes.scales, 0);
    std::memcpy(out.scales.data(), m.scales.data(), m.scales.size() * 2);
  } else if (p.groups) {
    const int64_t ng = m.n_in / p.spec.group;
    out.scales.assign(sizes.scales, 0);  // padding groups: scale 0
    out.zeros.assign(sizes.zeros, 0);  // padding groups: min 0
    for (int64_t o = 0; o < m.n_out; ++o) {
      for (int64_t g = 0; g < ng; ++g) {
        const size_t at = scale_index(p, o, g);
        if (p.spec.asym) {
          if (m.zeros[size_t(o * ng + g)] > 15) throw std::invalid_argument("qgemv: zero point above 15");
          std::memcpy(&out.scales[asym_scale_byte(p, o, g)], &m.scales[size_t(o * ng + g)], 2);
          out.scales[asym_zero_byte(p, o, g)] = m.zeros[size_t(o * ng + g)];
        } else {
          std::memcpy(&out.scales[at * 2], &m.scales[size_t(o * ng + g)], 2);
        }
        if (p.spec.mins) std::memcpy(&out.zeros[at * 2], &m.mins[size_t(o * ng + g)], 2);
      }
    }
  }
  return out;
}

HostMatrix unpack(const PackedHost& ph) {
  const PackedShape& p = ph.shape;
  const WeightFormat f = p.spec.format;
  HostMatrix m;
  m.spec = p.spec;
  m.n_out = p.n_out;
  m.n_in = p.n_in;
  const size_t n = size_t(m.n_out * m.n_in);
  if (f == WeightFormat::BF16) m.bf16.resize(n);
  if (f == WeightFormat::W8A16) m.q8.resize(n);
  if (f == WeightFormat::W4A16) m.q4.resize(n);
  for (int64_t o = 0; o < m.n_out; ++o) {
    for (int64_t i = 0; i < m.n_in; ++i) {
      const Slot s = slot_of(f, int(o % 16), int(i % 64));
      const uint8_t* vec = &ph.weights[weight_offset(p, o / 16, i / 64, s.v, s.lane)];
      const size_t at = size_t(o * m.n_in + i);
      if (f == WeightFormat::BF16) std::memcpy(&m.bf16[at], vec + 2 * s.pos, 2);
      else if (f == WeightFormat::W8A16) m.q8[at] = int8_t(int(vec[s.pos]) - 128);
      else m.q4[at] = (vec[s.pos / 2] >> (4 * (s.pos % 2))) & 15;
    }
  }
  if (f == WeightFormat::W8A16 && !p.spec.group) {
    m.scales.resize(size_t(m.n_out));
    std::memcpy(m.scales.data(), ph.scales.data(), m.scales.size() * 2);
  } else if (p.groups) {
    const int64_t ng = m.n_in / p.spec.group;
    m.scales.resize(size_t(m.n_out * ng));
    if (p.spec.asym) m.zeros.resize(m.scales.size());
    if (p.spec.mins) m.mins.resize(m.scales.size());
    for (int64_t o = 0; o < m.n_out; ++o) {
      for (int64_t g = 0; g < ng; ++g) {
        const size_t at = scale_index(p, o, g);
        if (p.spec.asym) {
          std::memcpy(&m.scales[size_t(o * ng + g)], &ph.scales[asym_scale_byte(p, o, g)], 2);
          m.zeros[size_t(o * ng + g)] = ph.scales[asym_zero_byte(p, o, g)];
        } else {
          std::memcpy(&m.scales[size_t(o * ng + g)], &ph.scales[at * 2], 2);
        }
        if (p.spec.mins) std::memcpy(&m.mins[size_t(o * ng + g)], &ph.zeros[at * 2], 2);
      }
    }
  }
  return m;
}

HostMatrix interleave_row_blocks16(const HostMatrix& m) {
  const int64_t half = m.n_out / 2;
  if (m.n_out % 2 != 0 || half % 16 != 0)
    throw std::invalid_argument("interleave_row_blocks16: gate|up needs n_out / 2 to be a multiple of 16");
  HostMatrix out = m;
  // Every per-row array moves with its row: elements [n_out][k] for k = its size / n_out.
  auto permute = [&](const auto& src, auto& dst) {
    if (src.empty()) return;
    const size_t k = src.size() / size_t(m.n_out);
    for (int64_t r = 0; r < m.n_out; ++r) {
      const int64_t b = r / 32, w = r % 32;
      const int64_t from = w < 16 ? 16 * b + w : half + 16 * b + (w - 16);
      std::copy_n(src.begin() + ptrdiff_t(size_t(from) * k), k, dst.begin() + ptrdiff_t(size_t(r) * k));
    }
  };
  permute(m.bf16, out.bf16);
  permute(m.q8, out.q8);
  permute(m.q4, out.q4);
  permute(m.scales, out.scales);
  permute(m.zeros, out.zeros);
  permute(m.mins, out.mins);
  return out;
}

}  // namespace qb::runtime::cuda
