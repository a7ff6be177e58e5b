// See kv_cache.h. Scales are computed and applied in f32 (absmax / qmax, x / s, q * s) because that is
// what a device kernel does; fp8 codes come from quant's exact E4M3 encoder (checked against core's
// converter and torch.float8_e4m3fn in tests).
#include "quantbench/runtime/kv_cache.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

#include "quantbench/core/dtype.h"
#include "quantbench/core/error.h"
#include "quantbench/quant/qformat/fp8_e4m3.h"

namespace qb::runtime {
namespace {

const std::array<float, 256>& e4m3_table() {
  static const std::array<float, 256> t = [] {
    std::array<float, 256> v{};
    for (int c = 0; c < 256; ++c) v[size_t(c)] = f8e4m3_to_f32(uint8_t(c));
    return v;
  }();
  return t;
}

float group_absmax(const float* x, int64_t n) {
  float a = 0;
  for (int64_t i = 0; i < n; ++i) a = std::max(a, std::fabs(x[i]));
  return a;
}

int rne_clamp(float v, int lo, int hi) {
  // nearbyint rounds half to even in the default rounding mode (as __float2int_rn does).
  const float r = std::nearbyint(v);
  if (!(r >= float(lo))) return std::isnan(r) ? 0 : lo;
  if (r > float(hi)) return hi;
  return int(r);
}

}  // namespace

std::string_view kv_type_name(KvType t) {
  switch (t) {
    case KvType::F32: return "f32";
    case KvType::F16: return "f16";
    case KvType::Int8: return "int8";
    case KvType::Fp8: return "fp8";
    case KvType::Int4: return "int4";
  }
  return "?";
}

KvType parse_kv_type(std::string_view name) {
  for (KvType t : {KvType::F32, KvType::F16, KvType::Int8, KvType::Fp8, KvType::Int4})
    if (name == kv_type_name(t)) return t;
  fail("--kv: '{}' is not a KV cache type (use f32, f16, int8, fp8 or int4)", name);
}

KvLayout KvLayout::make(KvType type, int64_t n_head, int64_t head_dim) {
  QB_CHECK(n_head > 0 && head_dim > 0, "KV cache: impossible shape of {} heads x {}", n_head, head_dim);
  KvLayout l;
  l.type = type;
  l.n_head = n_head;
  l.head_dim = head_dim;
  switch (type) {
    case KvType::F32:
    case KvType::F16: l.group = 0; break;
    case KvType::Int8:
    case KvType::Fp8: l.group = head_dim; break;
    case KvType::Int4:
      QB_CHECK(head_dim % 2 == 0, "KV cache int4 packs two values per byte; head_dim {} is odd", head_dim);
      l.group = head_dim % 32 == 0 ? 32 : head_dim;
      break;
  }
  return l;
}

size_t KvLayout::code_bytes_per_row() const {
  const size_t n = size_t(values_per_row());
  switch (type) {
    case KvType::F32: return 4 * n;
    case KvType::F16: return 2 * n;
    case KvType::Int8:
    case KvType::Fp8: return n;
    case KvType::Int4: return n / 2;
  }
  return 0;
}

std::string KvLayout::describe() const {
  switch (type) {
    case KvType::F32: return "f32 (values as computed, no rounding)";
    case KvType::F16: return "f16 (round-to-nearest-even on write, no scales)";
    case KvType::Int8:
      return fmt::format("int8, symmetric, one f32 scale per token per KV head (group {} = head_dim), s = absmax/127, "
                         "round-half-even on write, code*scale on read; {} bytes per token per layer per K/V",
                         group, bytes_per_row());
    case KvType::Fp8:
      return fmt::format("fp8 e4m3 (OCP fn), one f32 scale per token per KV head (group {} = head_dim), s = absmax/448, "
                         "round-to-nearest-even saturating at 448 on write, code*scale on read; {} bytes per token per "
                         "layer per K/V",
                         group, bytes_per_row());
    case KvType::Int4:
      return fmt::format("int4, symmetric, one f32 scale per token per KV head per group of {} (head_dim {}), "
                         "s = absmax/7, codes round-half-even clamped to [-8, 7], two per byte; {} bytes per token per "
                         "layer per K/V",
                         group, head_dim, bytes_per_row());
  }
  return "?";
}

void kv_quantize_row(const KvLayout& l, const float* x, uint8_t* codes, float* scales) {
  const int64_t n = l.values_per_row();
  switch (l.type) {
    case KvType::F32: std::memcpy(codes, x, size_t(n) * 4); return;
    case KvType::F16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = f32_to_f16(x[i]);
        std::memcpy(codes + 2 * i, &h, 2);
      }
      return;
    case KvType::Int8:
    case KvType::Fp8:
    case KvType::Int4: break;
  }
  const float qmax = l.type == KvType::Int8 ? 127.0f : l.type == KvType::Fp8 ? 448.0f : 7.0f;
  for (int64_t g = 0; g < l.scales_per_row(); ++g) {
    const float* xg = x + g * l.group;
    const float s = group_absmax(xg, l.group) / qmax;
    scales[g] = s;
    for (int64_t i = 0; i < l.group; ++i) {
      const float v = s > 0 ? xg[i] / s : 0.0f;
      const int64_t j = g * l.group + i;
      switch (l.type) {
        case KvType::Int8: codes[j] = uint8_t(int8_t(rne_clamp(v, -127, 127))); break;
        case KvType::Fp8: codes[j] = quant::fp8_encode_value(v); break;
        case KvType::Int4: {
          const uint8_t q = uint8_t(rne_clamp(v, -8, 7) + 8);
          if (j % 2 == 0) codes[j / 2] = q;
          else codes[j / 2] = uint8_t(codes[j / 2] | (q << 4));
          break;
        }
        default: break;
      }
    }
  }
}

void kv_dequantize_head(const KvLayout& l, const uint8_t* codes, const float* scales, int64_t head, float* out) {
  const int64_t d = l.head_dim, base = head * d;
  switch (l.type) {
    case KvType::F32: std::memcpy(out, codes + 4 * base, size_t(d) * 4); return;
    case KvType::F16:
      for (int64_t i = 0; i < d; ++i) {
        uint16_t h;
        std::memcpy(&h, codes + 2 * (base + i), 2);
        out[i] = f16_to_f32(h);
      }
      return;
    case KvType::Int8:
      for (int64_t i = 0; i < d; ++i) out[i] = float(int8_t(codes[base + i])) * scales[(base + i) / l.group];
      return;
    case KvType::Fp8: {
      const auto& t = e4m3_table();
      for (int64_t i = 0; i < d; ++i) out[i] = t[codes[base + i]] * scales[(base + i) / l.group];
      return;
    }
    case KvType::Int4:
      for (int64_t i = 0; i < d; ++i) {
        const int64_t j = base + i;
        const int q = int((codes[j / 2] >> (4 * (j % 2))) & 0xf) - 8;
        out[i] = float(q) * scales[j / l.group];
      }
      return;
  }
}

void KvStore::ensure(int64_t n_pos) {
  if (n_pos <= capacity_) return;
  if (layout_.type == KvType::F32) f32_.resize(size_t(n_pos * layout_.values_per_row()));
  else {
    codes_.resize(size_t(n_pos) * layout_.code_bytes_per_row());
    scales_.resize(size_t(n_pos * layout_.scales_per_row()));
  }
  capacity_ = n_pos;
}

void KvStore::write(int64_t pos, const float* row) {
  QB_CHECK(pos >= 0 && pos < capacity_, "KV cache: write at position {} outside capacity {}", pos, capacity_);
  const int64_t n = layout_.values_per_row();
  if (layout_.type == KvType::F32) {
    std::copy(row, row + n, f32_.data() + pos * n);
    return;
  }
  kv_quantize_row(layout_, row, codes_.data() + size_t(pos) * layout_.code_bytes_per_row(),
                  scales_.data() + pos * layout_.scales_per_row());
}

const float* KvStore::f32_rows() const {
  QB_CHECK(layout_.type == KvType::F32, "KV cache: f32_rows on a {} cache", kv_type_name(layout_.type));
  return f32_.data();
}

void KvStore::read_head(int64_t p0, int64_t n, int64_t head, float* out) const {
  QB_CHECK(p0 >= 0 && n >= 0 && p0 + n <= capacity_ && head >= 0 && head < layout_.n_head,
           "KV cache: read of positions [{}, {}) head {} outside {} positions x {} heads", p0, p0 + n, head, capacity_,
           layout_.n_head);
  const int64_t d = layout_.head_dim;
  for (int64_t p = p0; p < p0 + n; ++p) {
    float* o = out + (p - p0) * d;
    if (layout_.type == KvType::F32) {
      const float* src = f32_.data() + p * layout_.values_per_row() + head * d;
      std::copy(src, src + d, o);
    } else {
      kv_dequantize_head(layout_, codes_.data() + size_t(p) * layout_.code_bytes_per_row(),
                         scales_.data() + p * layout_.scales_per_row(), head, o);
    }
  }
}

}  // namespace qb::runtime
