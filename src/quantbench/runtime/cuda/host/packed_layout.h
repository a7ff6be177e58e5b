// The packed decode layout on the host: formats and their specs, the plain (unpacked) matrix, the packed
// geometry, and pack()/unpack(), the readable definition of the layout (its index rules are written out
// in qgemv.h) that the kernels must agree with. Plain C++ without the CUDA toolkit, so the main library
// builds it and the CPU test suite checks it (tests/runtime/cuda_repack_test.cpp) under the sanitizers.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace qb::runtime::cuda {

enum class WeightFormat { BF16, W8A16, W4A16 };

struct QuantSpec {
  WeightFormat format = WeightFormat::BF16;
  int group = 0;      // W4A16: 32 or 128 inputs per scale; W8A16: 0 (per row), 16 or 32; BF16: 0
  bool asym = false;  // W4A16: per-group zero point (else z = 8)
  bool mins = false;  // W4A16 group 32, W8A16 group 16 or 32: per-group f16 offset m (weight q * s + m); not with asym
};
std::string spec_name(const QuantSpec& spec);  // "bf16", "w8", "w8g16", "w8g32m", "w4g128", "w4g32a", "w4g32m", ...
inline bool same_spec(const QuantSpec& a, const QuantSpec& b) {
  return a.format == b.format && a.group == b.group && a.asym == b.asym && a.mins == b.mins;
}

// The plain, unpacked matrix: what a quantizer produces and what the CPU reference reads.
// weight(o, i) = bf16[o][i] | q8[o][i] * scales[o] | (q4[o][i] - zero) * scales[o][i / group]
// | q4[o][i] * scales[o][i / group] + mins[o][i / group] (w4 with mins; w8 with mins likewise, q8).
struct HostMatrix {
  QuantSpec spec;
  int64_t n_out = 0, n_in = 0;
  std::vector<uint16_t> bf16;    // [n_out][n_in] bf16 bits
  std::vector<int8_t> q8;        // [n_out][n_in]
  std::vector<uint8_t> q4;       // [n_out][n_in], one value 0..15 per byte
  std::vector<uint16_t> scales;  // f16 bits: [n_out] (w8) or [n_out][n_in / group] (w4)
  std::vector<uint8_t> zeros;    // [n_out][n_in / group], 0..15 (asymmetric w4 only)
  std::vector<uint16_t> mins;    // f16 bits: [n_out][n_in / group] (formats with mins only)
  double weight(int64_t o, int64_t i) const;  // exact value in double (the reference's view)
};

// Geometry of the packed form (see the layout comment above).
struct PackedShape {
  QuantSpec spec;
  int64_t n_out = 0, n_in = 0;
  int64_t row_blocks = 0;  // ceil(n_out / 16)
  int64_t chunks = 0;      // ceil(n_in / 64)
  int64_t groups = 0;      // w4: chunks * 64 / group (padding groups have scale 0)
};

// Bytes of each packed array (padding included: what the kernels stream).
struct PackedSizes { size_t weights = 0, scales = 0, zeros = 0; };
PackedSizes packed_sizes(const PackedShape& p);

struct PackedHost {
  PackedShape shape;
  std::vector<uint8_t> weights, scales, zeros;  // zeros: the mins' f16 pairs (asymmetric int4's zero points
                                                // share the scales' 8-byte entries: qgemv.h)
};

// Throws std::invalid_argument on impossible shapes (w4 needs n_in % group == 0, group 32 or 128).
PackedShape packed_shape(const QuantSpec& spec, int64_t n_out, int64_t n_in);
PackedHost pack(const HostMatrix& m);
// m's rows are gate (first half) then up (second half); returns them as interleaved blocks of 16: rows
// 32 b .. 32 b + 15 are gate rows 16 b .. 16 b + 15, rows 32 b + 16 .. 32 b + 31 the same up rows
// (QgemvGatedOut's layout). Needs n_out / 2 % 16 == 0 (throws std::invalid_argument otherwise).
HostMatrix interleave_row_blocks16(const HostMatrix& m);
HostMatrix unpack(const PackedHost& p);  // exact inverse of pack() on the unpadded region

}  // namespace qb::runtime::cuda
