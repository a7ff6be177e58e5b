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

}  // namespace qb::runtime::cpu
