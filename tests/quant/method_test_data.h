// Deterministic test problems for the quantization methods: a splitmix64 generator and a correlated,
// channel-uneven activation model. tests/golden/gptq/make_golden.py implements the same generator in
// Python with the same elementwise double arithmetic, so both sides produce bit-identical inputs.
#pragma once
#include <cstdint>
#include <vector>

#include "quantbench/quant/qformat/format_traits.h"

namespace qb::quant::testing {

class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : s_(seed) {}
  uint64_t next() {
    s_ += 0x9E3779B97F4A7C15ull;
    uint64_t z = s_;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return double(next() >> 11) * (1.0 / 9007199254740992.0); }
  double centered() { return uniform() * 2.0 - 1.0; }

 private:
  uint64_t s_;
};

// Group-wise int<bits> with f16 scales: the layout the method tests share.
inline QuantLayout int_group_layout(int bits, int64_t group_size, bool asymmetric) {
  QuantLayout l;
  l.format = *int_format(bits);
  l.granularity = Granularity::Group;
  l.group_size = group_size;
  l.asymmetric = asymmetric;
  return l;
}

struct Problem {
  int64_t rows, cols, samples;
  std::vector<float> w;  // rows x cols
  std::vector<float> x;  // samples x cols
};

// x = diag(cs) (L f + 0.3 e) with `latent` shared factors; w = sum of three uniforms. `outliers`
// multiplies every 16th channel's scale by that factor (LLM-like salient channels) when != 1.
inline Problem make_problem(int64_t rows, int64_t cols, int64_t samples, int64_t latent, uint64_t seed,
                            double outliers = 1.0) {
  SplitMix64 g(seed);
  std::vector<std::vector<double>> L(static_cast<size_t>(cols), std::vector<double>(static_cast<size_t>(latent)));
  for (auto& row : L)
    for (auto& v : row) v = g.centered();
  std::vector<double> cs(static_cast<size_t>(cols));
  for (auto& v : cs) v = 0.25 + 2.0 * g.uniform();
  if (outliers != 1.0)
    for (int64_t j = 3; j < cols; j += 16) cs[size_t(j)] *= outliers;
  Problem p{rows, cols, samples, {}, {}};
  p.x.resize(size_t(samples * cols));
  std::vector<double> f(static_cast<size_t>(latent)), e(static_cast<size_t>(cols));
  for (int64_t s = 0; s < samples; ++s) {
    for (auto& v : f) v = g.centered();
    for (auto& v : e) v = g.centered();
    for (int64_t j = 0; j < cols; ++j) {
      double acc = 0.0;
      for (int64_t k = 0; k < latent; ++k) acc += L[size_t(j)][size_t(k)] * f[size_t(k)];
      p.x[size_t(s * cols + j)] = float(cs[size_t(j)] * (acc + 0.3 * e[size_t(j)]));
    }
  }
  p.w.resize(size_t(rows * cols));
  for (auto& v : p.w) {
    const double a = g.centered();
    const double b = g.centered();
    const double c = g.centered();
    v = float(a + b + c);
  }
  return p;
}

// Fresh activations from the same distribution (same L and channel scales, new factors and noise):
// the problem generator run with the same seed but more samples, keeping the ones after `skip`.
inline std::vector<float> held_out_x(int64_t rows, int64_t cols, int64_t skip, int64_t n, int64_t latent,
                                     uint64_t seed, double outliers = 1.0) {
  // Weights are generated after the samples, so regenerate with skip + n samples and keep the tail.
  const Problem p = make_problem(rows, cols, skip + n, latent, seed, outliers);
  return std::vector<float>(p.x.begin() + skip * cols, p.x.end());
}

}  // namespace qb::quant::testing
