// Portable kernels: the same algorithm as the SIMD files (integer dot products against 8-bit
// activation blocks, offsets and mins applied through the blocks' sums) in plain loops. They are the
// fallback on non-x86 machines and make the SIMD kernels' arithmetic easy to read and check.
#include <cmath>
#include <cstring>
#include <limits>

#include "quantbench/core/dtype.h"
#include "quantbench/quant/qformat/ggml_block_structs.h"
#include "quantbench/runtime/cpu/matmul_kernels.h"

namespace qb::runtime::cpu {

using namespace qb::qformat;

void quantize_activations_q8(const float* x, int64_t n, ActQ8Block* out) {
  for (int64_t b = 0; b < n / 32; ++b, x += 32) {
    ActQ8Block& a = out[b];
    float amax = 0;
    bool finite = true;
    for (int i = 0; i < 32; ++i) {
      finite = finite && std::isfinite(x[i]);
      amax = std::max(amax, std::fabs(x[i]));
    }
    if (!finite) {  // NaN/Inf in: a NaN block, so every output that reads it is NaN (never a number)
      a = ActQ8Block{};
      a.d = a.dsum = std::numeric_limits<float>::quiet_NaN();
      continue;
    }
    const float d = amax / 127.0f;
    const float id = amax > 0 ? 127.0f / amax : 0.0f;
    a.d = d;
    int s[2] = {0, 0};
    for (int i = 0; i < 32; ++i) {
      // |x*id| <= 127 up to one rounding, so the rounded value always fits int8.
      const int q = std::max(-127, std::min(127, int(std::nearbyint(x[i] * id))));
      a.qs[i] = int8_t(q);
      s[i / 16] += q;
    }
    a.sum16[0] = int16_t(s[0]);
    a.sum16[1] = int16_t(s[1]);
    a.dsum = d * float(s[0] + s[1]);
  }
}

namespace {

float load_f16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_f32(h);
}

void dot_f32(const uint8_t* wrow, int64_t n, const float* const* xs, int nt, float* out) {
  for (int t = 0; t < nt; ++t) {
    float acc = 0;
    for (int64_t i = 0; i < n; ++i) {
      float w;
      std::memcpy(&w, wrow + 4 * i, 4);
      acc += w * xs[t][i];
    }
    out[t] = acc;
  }
}

void dot_f16(const uint8_t* wrow, int64_t n, const float* const* xs, int nt, float* out) {
  for (int t = 0; t < nt; ++t) {
    float acc = 0;
    for (int64_t i = 0; i < n; ++i) acc += load_f16(wrow + 2 * i) * xs[t][i];
    out[t] = acc;
  }
}

int block_sum(const ActQ8Block& a) { return a.sum16[0] + a.sum16[1]; }

void dot_q8_0(const uint8_t* wrow, int64_t n, const ActQ8Block* const* acts, int nt, float* out) {
  const auto* w = reinterpret_cast<const BlockQ8_0*>(wrow);
  for (int t = 0; t < nt; ++t) {
    float acc = 0;
    for (int64_t b = 0; b < n / 32; ++b) {
      const ActQ8Block& a = acts[t][b];
      int sumi = 0;
      for (int i = 0; i < 32; ++i) sumi += w[b].qs[i] * a.qs[i];
      acc += f16_to_f32(w[b].d) * a.d * float(sumi);
    }
    out[t] = acc;
  }
}

// Nibble i (< 16) is the low half of qs[i]; nibble i >= 16 is the high half of qs[i - 16].
int dot_nibbles(const uint8_t* qs, const int8_t* a) {
  int sumi = 0;
  for (int i = 0; i < 16; ++i) sumi += (qs[i] & 0xF) * a[i] + (qs[i] >> 4) * a[i + 16];
  return sumi;
}

void dot_q4_0(const uint8_t* wrow, int64_t n, const ActQ8Block* const* acts, int nt, float* out) {
  const auto* w = reinterpret_cast<const BlockQ4_0*>(wrow);
  for (int t = 0; t < nt; ++t) {
    float acc = 0;
    for (int64_t b = 0; b < n / 32; ++b) {
      const ActQ8Block& a = acts[t][b];
      const int sumi = dot_nibbles(w[b].qs, a.qs) - 8 * block_sum(a);
      acc += f16_to_f32(w[b].d) * a.d * float(sumi);
    }
    out[t] = acc;
  }
}

void dot_q4_1(const uint8_t* wrow, int64_t n, const ActQ8Block* const* acts, int nt, float* out) {
  const auto* w = reinterpret_cast<const BlockQ4_1*>(wrow);
  for (int t = 0; t < nt; ++t) {
    float acc = 0;
    for (int64_t b = 0; b < n / 32; ++b) {
      const ActQ8Block& a = acts[t][b];
      acc += f16_to_f32(w[b].d) * a.d * float(dot_nibbles(w[b].qs, a.qs)) +
             f16_to_f32(w[b].m) * a.d * float(block_sum(a));
    }
    out[t] = acc;
  }
}

// Q5: element i's fifth bit is bit i of the block's little-endian 32-bit qh.
template <typename Block>
int dot_q5_unsigned(const Block& w, const int8_t* a) {
  uint32_t qh;
  std::memcpy(&qh, w.qh, 4);
  int sumi = 0;
  for (int i = 0; i < 16; ++i) {
    sumi += ((w.qs[i] & 0xF) | int(((qh >> i) & 1) << 4)) * a[i];
    sumi += ((w.qs[i] >> 4) | int(((qh >> (i + 16)) & 1) << 4)) * a[i + 16];
  }
  return sumi;
}

void dot_q5_0(const uint8_t* wrow, int64_t n, const ActQ8Block* const* acts, int nt, float* out) {
  const auto* w = reinterpret_cast<const BlockQ5_0*>(wrow);
  for (int t = 0; t < nt; ++t) {
    float acc = 0;
    for (int64_t b = 0; b < n / 32; ++b) {
      const ActQ8Block& a = acts[t][b];
      acc += f16_to_f32(w[b].d) * a.d * float(dot_q5_unsigned(w[b], a.qs) - 16 * block_sum(a));
    }
    out[t] = acc;
  }
}

void dot_q5_1(const uint8_t* wrow, int64_t n, const ActQ8Block* const* acts, int nt, float* out) {
  const auto* w = reinterpret_cast<const BlockQ5_1*>(wrow);
  for (int t = 0; t < nt; ++t) {
    float acc = 0;
    for (int64_t b = 0; b < n / 32; ++b) {
      const ActQ8Block& a = acts[t][b];
      acc += f16_to_f32(w[b].d) * a.d * float(dot_q5_unsigned(w[b], a.qs)) + f16_to_f32(w[b].m) * a.dsum;
    }
    out[t] = acc;
  }
}

void dot_q4_k(const uint8_t* wrow, int64_t n, const ActQ8Block* const* acts, int nt, float* out) {
  const auto* w = reinterpret_cast<const BlockQ4_K*>(wrow);
  for (int t = 0; t < nt; ++t) {
    float acc = 0;
    for (int64_t b = 0; b < n / 256; ++b) {
      const float d = f16_to_f32(w[b].d), dmin = f16_to_f32(w[b].dmin);
      for (int j = 0; j < 8; ++j) {
        const ActQ8Block& a = acts[t][8 * b + j];
        uint8_t sc, m;
        k4_scale_min(j, w[b].scales, &sc, &m);
        const uint8_t* q = w[b].qs + 32 * (j / 2);
        const int shift = 4 * (j % 2);
        int sumi = 0;
        for (int i = 0; i < 32; ++i) sumi += ((q[i] >> shift) & 0xF) * a.qs[i];
        acc += d * float(sc) * a.d * float(sumi) - dmin * float(m) * a.d * float(block_sum(a));
      }
    }
    out[t] = acc;
  }
}

// Q5_K: Q4_K plus a fifth bit: bit j of qh[l] belongs to element l of sub-block j.
void dot_q5_k(const uint8_t* wrow, int64_t n, const ActQ8Block* const* acts, int nt, float* out) {
  const auto* w = reinterpret_cast<const BlockQ5_K*>(wrow);
  for (int t = 0; t < nt; ++t) {
    float acc = 0;
    for (int64_t b = 0; b < n / 256; ++b) {
      const float d = f16_to_f32(w[b].d), dmin = f16_to_f32(w[b].dmin);
      for (int j = 0; j < 8; ++j) {
        const ActQ8Block& a = acts[t][8 * b + j];
        uint8_t sc, m;
        k4_scale_min(j, w[b].scales, &sc, &m);
        const uint8_t* q = w[b].qs + 32 * (j / 2);
        const int shift = 4 * (j % 2);
        int sumi = 0;
        for (int i = 0; i < 32; ++i) sumi += (((q[i] >> shift) & 0xF) | (((w[b].qh[i] >> j) & 1) << 4)) * a.qs[i];
        acc += d * float(sc) * a.d * float(sumi) - dmin * float(m) * a.dsum;
      }
    }
    out[t] = acc;
  }
}

void dot_q6_k(const uint8_t* wrow, int64_t n, const ActQ8Block* const* acts, int nt, float* out) {
  const auto* w = reinterpret_cast<const BlockQ6_K*>(wrow);
  for (int t = 0; t < nt; ++t) {
    float acc = 0;
    for (int64_t b = 0; b < n / 256; ++b) {
      const float d = f16_to_f32(w[b].d);
      for (int h = 0; h < 2; ++h) {
        const uint8_t* ql = w[b].ql + 64 * h;
        const uint8_t* qh = w[b].qh + 32 * h;
        for (int qd = 0; qd < 4; ++qd) {  // quarter qd of this 128-element half: one activation block
          const ActQ8Block& a = acts[t][8 * b + 4 * h + qd];
          const uint8_t* lo = ql + 32 * (qd % 2);
          const int lshift = 4 * (qd / 2), hshift = 2 * qd;
          int sumi = 0;
          for (int half = 0; half < 2; ++half) {
            int s = 0;
            for (int l = 16 * half; l < 16 * half + 16; ++l)
              s += (((lo[l] >> lshift) & 0xF) | (((qh[l] >> hshift) & 3) << 4)) * a.qs[l];
            sumi += w[b].scales[8 * h + 2 * qd + half] * (s - 32 * a.sum16[half]);
          }
          acc += d * a.d * float(sumi);
        }
      }
    }
    out[t] = acc;
  }
}

// Adapts a one-row kernel (out[t] for nt tokens) to the rows interface.
template <auto RowFn, typename X>
void over_rows(const uint8_t* w, size_t row_bytes, int64_t n_rows, int64_t n_in, const X* const* xs, int nt,
               float* y, int64_t y_stride) {
  float out[kMaxTileTokens];
  for (int64_t r = 0; r < n_rows; ++r) {
    RowFn(w + size_t(r) * row_bytes, n_in, xs, nt, out);
    for (int t = 0; t < nt; ++t) y[t * y_stride + r] = out[t];
  }
}

}  // namespace

const KernelTable& scalar_kernels() {
  using A = ActQ8Block;
  static const KernelTable table{"scalar int32",           "scalar",
                                 over_rows<dot_f32, float>, over_rows<dot_f16, float>,
                                 over_rows<dot_q8_0, A>,    over_rows<dot_q4_0, A>,
                                 over_rows<dot_q4_1, A>,    over_rows<dot_q5_0, A>,
                                 over_rows<dot_q5_1, A>,    over_rows<dot_q4_k, A>,
                                 over_rows<dot_q5_k, A>,    over_rows<dot_q6_k, A>,
                                 quantize_activations_q8};
  return table;
}

}  // namespace qb::runtime::cpu
