// See attention.h.
#include "quantbench/runtime/cpu/attention.h"

#include <algorithm>
#include <cmath>

#include "quantbench/runtime/cpu/gemm_f32.h"

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

void attention_run_gemm(const AttentionParams& p, const float* q, int64_t q_stride, int64_t nt, int64_t pos0,
                        const float* k, const float* v, float* out, int64_t out_stride, ThreadPool& pool,
                        std::vector<float>& scratch) {
  const int64_t nk = pos0 + nt;
  if (scratch.size() < size_t(nt * nk)) scratch.resize(size_t(nt * nk));
  float* s = scratch.data();
  // S(t, j) = sum_d q[t][d] k[j][d]: both operands read with d as the k dimension.
  gemm_f32_tn(p.head_dim_k, nt, nk, GemmOperand{q, 1, q_stride}, GemmOperand{k, 1, p.k_stride}, s, nk, false, pool,
              /*accumulate=*/false);
  pool.parallel_for(size_t(nt), [&](size_t b, size_t e, int) {
    for (size_t t = b; t < e; ++t) {
      const int64_t pos = pos0 + int64_t(t);
      const int64_t first = p.window > 0 ? std::max<int64_t>(0, pos - p.window + 1) : 0;
      float* row = s + int64_t(t) * nk;
      float mx = -INFINITY;
      for (int64_t j = first; j <= pos; ++j) {
        float d = row[j] * p.scale;
        if (p.softcap > 0) d = p.softcap * std::tanh(d / p.softcap);
        row[j] = d;
        mx = std::max(mx, d);
      }
      float sum = 0;
      for (int64_t j = first; j <= pos; ++j) sum += (row[j] = std::exp(row[j] - mx));
      const float inv = 1.0f / sum;
      for (int64_t j = 0; j < first; ++j) row[j] = 0;
      for (int64_t j = first; j <= pos; ++j) row[j] *= inv;
      for (int64_t j = pos + 1; j < nk; ++j) row[j] = 0;
    }
  });
  // out(t, i) = sum_j P(t, j) v[j][i]: j is the k dimension.
  gemm_f32_tn(nk, nt, p.head_dim_v, GemmOperand{s, 1, nk}, GemmOperand{v, p.v_stride, 1}, out, out_stride, false, pool,
              /*accumulate=*/false);
}

}  // namespace qb::runtime::cpu
