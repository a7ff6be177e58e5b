// KV cache storage in a precision chosen at run time (`--kv f32|f16|int8|fp8|int4`). Each cached row
// is one position's K (or V) across all KV heads; a quantized row is quantized ON WRITE with the
// rounding a GPU kernel would use, and dequantized ON READ by attention (code * scale in f32), so the
// CPU engine computes exactly what a quantized-cache kernel computes before its own accumulation order.
//
// Groups and scales (one f32 scale per group, symmetric, no zero point):
//   f32   as computed (the engine's historical default; no rounding)
//   f16   round-to-nearest-even to IEEE half, no scale
//   int8  one group per token per KV head (group = head_dim): s = absmax/127, q = rne(x/s) in [-127, 127]
//   fp8   one group per token per KV head: s = absmax/448, q = e4m3(x/s), round-to-nearest-even, saturating
//         at +-448 (OCP E4M3 "fn", as __nv_cvt_float_to_fp8(..., __NV_SATFINITE, __NV_E4M3) does)
//   int4  groups of 32 within each KV head (the whole head when head_dim is not a multiple of 32):
//         s = absmax/7, q = rne(x/s) clamped to [-8, 7], two codes per byte, low nibble first
// A group that is all zeros stores s = 0 and zero codes. Design choice: attention reads the current
// batch's own keys/values back from the cache too (quantized), so a prompt scored in one forward and
// the same prompt decoded token by token see identical numbers; batch shape never changes a result.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace qb::runtime {

enum class KvType : uint8_t { F32, F16, Int8, Fp8, Int4 };

std::string_view kv_type_name(KvType t);  // "f32", "f16", "int8", "fp8", "int4"
// Throws qb::Error("--kv: 'int3' is not a KV cache type (use f32, f16, int8, fp8 or int4)").
KvType parse_kv_type(std::string_view name);

// How one cached row (n_head KV heads of head_dim values) is stored.
struct KvLayout {
  KvType type = KvType::F32;
  int64_t n_head = 0;
  int64_t head_dim = 0;
  int64_t group = 0;  // values per scale (0 for f32/f16)

  // Throws qb::Error on impossible dims (int4 needs an even head_dim).
  static KvLayout make(KvType type, int64_t n_head, int64_t head_dim);
  int64_t values_per_row() const { return n_head * head_dim; }
  int64_t scales_per_row() const { return group > 0 ? values_per_row() / group : 0; }
  size_t code_bytes_per_row() const;
  size_t bytes_per_row() const { return code_bytes_per_row() + size_t(scales_per_row()) * sizeof(float); }
  // For the Manifest: "int8, symmetric, one f32 scale per token per KV head (group 64), round-half-even".
  std::string describe() const;
};

// Quantizes one row of values_per_row() floats into codes (code_bytes_per_row()) and scales
// (scales_per_row()). Non-finite inputs are stored as their nearest code (NaN scales propagate).
void kv_quantize_row(const KvLayout& l, const float* x, uint8_t* codes, float* scales);
// Decodes head `head` of one stored row into head_dim floats.
void kv_dequantize_head(const KvLayout& l, const uint8_t* codes, const float* scales, int64_t head, float* out);

// One layer's K (or V) cache of one sequence: rows by position, grown on demand.
class KvStore {
 public:
  KvStore() = default;
  explicit KvStore(KvLayout layout) : layout_(layout) {}

  const KvLayout& layout() const { return layout_; }
  int64_t capacity() const { return capacity_; }
  void ensure(int64_t n_pos);                  // capacity >= n_pos (contents kept)
  void write(int64_t pos, const float* row);   // pos < capacity(); quantizes for non-f32 types
  // f32 storage only: the row-major positions x values_per_row() array (attention reads it in place).
  const float* f32_rows() const;
  // Positions [p0, p0 + n) of KV head `head`, dequantized into out (n x head_dim, row-major).
  void read_head(int64_t p0, int64_t n, int64_t head, float* out) const;

 private:
  KvLayout layout_;
  int64_t capacity_ = 0;
  std::vector<float> f32_;       // F32
  std::vector<uint8_t> codes_;   // every other type
  std::vector<float> scales_;
};

}  // namespace qb::runtime
