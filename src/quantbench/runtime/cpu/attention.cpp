// See attention.h.
#include "quantbench/runtime/cpu/attention.h"

#include <algorithm>
#include <cmath>

namespace qb::runtime::cpu {

void attention_head(const AttentionParams& p, const float* q, const float* k, const float* v, int64_t pos,
                    float* out, std::vector<double>& scratch) {
  const int64_t first = p.window > 0 ? std::max<int64_t>(0, pos - p.window + 1) : 0;
  const int64_t n = pos - first + 1;
  scratch.resize(size_t(n) + size_t(p.head_dim_v));
  double* s = scratch.data();
  double* acc = s + n;
  double mx = -INFINITY;
  for (int64_t j = 0; j < n; ++j) {
    const float* kj = k + (first + j) * p.k_stride;
    double d = 0;
    for (int64_t i = 0; i < p.head_dim_k; ++i) d += double(q[i]) * kj[i];
    d *= double(p.scale);
    if (p.softcap > 0) d = double(p.softcap) * std::tanh(d / double(p.softcap));
    s[j] = d;
    mx = std::max(mx, d);
  }
  double sum = 0;
  for (int64_t j = 0; j < n; ++j) sum += (s[j] = std::exp(s[j] - mx));
  std::fill(acc, acc + p.head_dim_v, 0.0);
  for (int64_t j = 0; j < n; ++j) {
    const float* vj = v + (first + j) * p.v_stride;
    const double w = s[j] / sum;
    for (int64_t i = 0; i < p.head_dim_v; ++i) acc[i] += w * vj[i];
  }
  for (int64_t i = 0; i < p.head_dim_v; ++i) out[i] = float(acc[i]);
}

namespace {

// 16 partial sums, one per lane, added at the end: independent chains the compiler turns into
// vector FMAs (a single running float sum must stay scalar to keep its rounding order).
float dot_f32(const float* a, const float* b, int64_t n) {
  constexpr int64_t L = 16;
  float part[L] = {};
  int64_t i = 0;
  for (; i + L <= n; i += L)
    for (int64_t l = 0; l < L; ++l) part[l] += a[i + l] * b[i + l];
  for (int64_t l = 0; l < L / 2; ++l) part[l] += part[l + L / 2];  // pairwise: vector adds, not 16 scalar ones
  for (int64_t l = 0; l < L / 4; ++l) part[l] += part[l + L / 4];
  float sum = (part[0] + part[1]) + (part[2] + part[3]);
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

}  // namespace

void attention_head_f32(const AttentionParams& p, const float* q, const float* k, const float* v, int64_t pos,
                        float* out, std::vector<float>& scratch) {
  const int64_t first = p.window > 0 ? std::max<int64_t>(0, pos - p.window + 1) : 0;
  const int64_t n = pos - first + 1;
  scratch.resize(size_t(n));
  float* s = scratch.data();
  float mx = -INFINITY;
  for (int64_t j = 0; j < n; ++j) {
    float d = dot_f32(q, k + (first + j) * p.k_stride, p.head_dim_k) * p.scale;
    if (p.softcap > 0) d = p.softcap * std::tanh(d / p.softcap);
    s[j] = d;
    mx = std::max(mx, d);
  }
  float sum = 0;
  for (int64_t j = 0; j < n; ++j) sum += (s[j] = std::exp(s[j] - mx));
  const float inv = 1.0f / sum;
  std::fill(out, out + p.head_dim_v, 0.0f);
  // Four value rows per pass over `out`: a quarter of the loads and stores of one row at a time.
  int64_t j = 0;
  for (; j + 4 <= n; j += 4) {
    const float* v0 = v + (first + j) * p.v_stride;
    const float* v1 = v0 + p.v_stride;
    const float* v2 = v1 + p.v_stride;
    const float* v3 = v2 + p.v_stride;
    const float w0 = s[j] * inv, w1 = s[j + 1] * inv, w2 = s[j + 2] * inv, w3 = s[j + 3] * inv;
    for (int64_t i = 0; i < p.head_dim_v; ++i) out[i] += (w0 * v0[i] + w1 * v1[i]) + (w2 * v2[i] + w3 * v3[i]);
  }
  for (; j < n; ++j) {
    const float* vj = v + (first + j) * p.v_stride;
    const float w = s[j] * inv;
    for (int64_t i = 0; i < p.head_dim_v; ++i) out[i] += w * vj[i];
  }
}

}  // namespace qb::runtime::cpu
