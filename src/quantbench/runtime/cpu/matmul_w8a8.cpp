// See matmul_w8a8.h. Activations of all tokens are quantized first (parallel over tokens), then the
// product runs over output rows (parallel, contiguous chunks: results never depend on scheduling).
// 8-bit weight codes are bytes of the QuantizedTensor row (its bit stream at k = 8 is one code per
// byte); the symmetric int8 grid stores q + 128, so the signed weight is code - 128.
#include "quantbench/runtime/cpu/matmul_w8a8.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "quantbench/core/dtype.h"
#include "quantbench/core/error.h"
#include "quantbench/quant/qformat/fp8_e4m3.h"
#include "quantbench/quant/qformat/quantized_tensor.h"

namespace qb::runtime::cpu {
namespace {

// Largest n_in for which the accumulation stays exact: int8 |q_w q_x| <= 128 * 127 summed in int32;
// fp8 sums in double (see the header).
constexpr int64_t kMaxInInt8 = int64_t(2147483647) / (128 * 127);
constexpr int64_t kMaxInFp8 = int64_t(1) << 17;

const std::array<float, 256>& e4m3_values() {
  static const std::array<float, 256> t = [] {
    std::array<float, 256> v{};
    for (int c = 0; c < 256; ++c) v[size_t(c)] = f8e4m3_to_f32(uint8_t(c));
    return v;
  }();
  return t;
}

float row_absmax(const float* x, int64_t n) {
  float a = 0;
  for (int64_t i = 0; i < n; ++i) {
    QB_CHECK(std::isfinite(x[i]), "w8a8: activation {} is not finite ({})", i, x[i]);
    a = std::max(a, std::fabs(x[i]));
  }
  return a;
}

}  // namespace

std::string_view act_quant_name(ActQuant a) {
  switch (a) {
    case ActQuant::None: return "none";
    case ActQuant::Int8PerToken: return "int8";
    case ActQuant::Fp8PerToken: return "fp8";
  }
  return "?";
}

ActQuant parse_act_quant(std::string_view text, std::string_view where) {
  for (ActQuant a : {ActQuant::None, ActQuant::Int8PerToken, ActQuant::Fp8PerToken})
    if (text == act_quant_name(a)) return a;
  fail("{}: activation quantization '{}' is unknown (use none, int8 or fp8)", where, text);
}

std::string describe_act_quant(ActQuant a) {
  switch (a) {
    case ActQuant::None: return "f32 (not quantized)";
    case ActQuant::Int8PerToken:
      return "int8 per-token dynamic (symmetric, s = absmax/127, round-half-even), int8 x int8 products summed "
             "exactly in int32, then * s_x * s_w in f32";
    case ActQuant::Fp8PerToken:
      return "fp8 e4m3 per-token dynamic (s = absmax/448, round-to-nearest-even, saturating), e4m3 x e4m3 products "
             "summed exactly, then * s_x * s_w in f32";
  }
  return "?";
}

float quantize_row_int8(const float* x, int64_t n, int8_t* q) {
  const float s = row_absmax(x, n) / 127.0f;
  for (int64_t i = 0; i < n; ++i) {
    // nearbyint: round half to even in the default rounding mode (__float2int_rn on a GPU).
    const float v = s > 0 ? std::nearbyint(x[i] / s) : 0.0f;
    q[i] = int8_t(std::clamp(v, -127.0f, 127.0f));
  }
  return s;
}

float quantize_row_fp8(const float* x, int64_t n, uint8_t* q) {
  const float s = row_absmax(x, n) / 448.0f;
  for (int64_t i = 0; i < n; ++i) q[i] = s > 0 ? quant::fp8_encode_value(x[i] / s) : uint8_t(0);
  return s;
}

void check_w8a8(const WeightMatrix& w) {
  if (w.act == ActQuant::None) return;
  QB_CHECK(w.quantized != nullptr, "w8a8: {} activations need 8-bit weights in quantbench's int8/fp8 format",
           act_quant_name(w.act));
  const quant::QuantizedTensor& q = *w.quantized;
  q.check();
  const quant::QuantLayout& l = q.layout;
  QB_CHECK(q.rows == w.n_out && q.cols == w.n_in, "w8a8: quantized tensor is {}x{}, the matrix {}x{}", q.rows, q.cols,
           w.n_out, w.n_in);
  if (w.act == ActQuant::Int8PerToken) {
    QB_CHECK(l.format == quant::QFormat::Int8 && !l.asymmetric && l.granularity == quant::Granularity::Channel,
             "w8a8: int8 activations need int8 symmetric per-channel weights, not {}", quant::layout_name(l));
    QB_CHECK(w.n_in <= kMaxInInt8, "w8a8: {} inputs overflow the exact int32 accumulation (max {})", w.n_in, kMaxInInt8);
  } else {
    QB_CHECK(l.format == quant::QFormat::FP8E4M3 && l.granularity != quant::Granularity::Group,
             "w8a8: fp8 activations need fp8 weights with per-channel or per-tensor scales, not {}",
             quant::layout_name(l));
    QB_CHECK(w.n_in <= kMaxInFp8, "w8a8: {} inputs exceed the exact fp8 accumulation bound (max {})", w.n_in, kMaxInFp8);
  }
}

void matmul_w8a8(const WeightMatrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool) {
  check_w8a8(w);
  QB_CHECK(n_tokens >= 0 && x != nullptr && y != nullptr, "w8a8: bad arguments");
  if (n_tokens == 0) return;
  const quant::QuantizedTensor& q = *w.quantized;
  const int64_t n = w.n_in;
  const bool fp8 = w.act == ActQuant::Fp8PerToken;
  std::vector<uint8_t> xq(static_cast<size_t>(n_tokens * n));
  std::vector<float> xs(static_cast<size_t>(n_tokens));
  pool.parallel_for(size_t(n_tokens), [&](size_t b, size_t e, int) {
    for (size_t t = b; t < e; ++t) {
      const float* xt = x + int64_t(t) * n;
      uint8_t* qt = xq.data() + int64_t(t) * n;
      xs[t] = fp8 ? quantize_row_fp8(xt, n, qt) : quantize_row_int8(xt, n, reinterpret_cast<int8_t*>(qt));
    }
  });
  const size_t rb = q.row_bytes();
  const auto& ev = e4m3_values();
  pool.parallel_for(size_t(w.n_out), [&](size_t b, size_t e, int) {
    for (size_t r = b; r < e; ++r) {
      const uint8_t* wr = q.codes.data() + r * rb;
      const float sw = q.params(int64_t(r), 0).scale;
      for (int64_t t = 0; t < n_tokens; ++t) {
        const uint8_t* qt = xq.data() + t * n;
        float acc;
        if (fp8) {
          double sum = 0;  // exact: see the header
          for (int64_t i = 0; i < n; ++i) sum += double(ev[wr[i]] * ev[qt[i]]);
          acc = float(sum);
        } else {
          int32_t sum = 0;
          const int8_t* qs = reinterpret_cast<const int8_t*>(qt);
          for (int64_t i = 0; i < n; ++i) sum += (int32_t(wr[i]) - 128) * int32_t(qs[i]);
          acc = float(sum);
        }
        y[t * w.n_out + int64_t(r)] = acc * xs[size_t(t)] * sw;
      }
    }
  });
}

}  // namespace qb::runtime::cpu
