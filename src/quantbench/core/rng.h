// The one random stream of quantbench: xoshiro256** (Blackman & Vigna) with its state filled from the
// seed by splitmix64. Sampling (runtime/sampler) and the bootstrap (eval/stats) both draw from it.
// Our own generator rather than std::mt19937 + std:: distributions, whose output the standard leaves to
// the library: a recorded seed must give the same tokens and the same intervals on every platform and
// compiler. The stream is pinned by values from an independent Python implementation
// (tests/golden/sampler/make_rng_values.py).
#pragma once
#include <cstdint>

namespace qb {

class Rng {
 public:
  explicit Rng(uint64_t seed);
  uint64_t next();
  uint64_t below(uint64_t n);  // uniform in [0, n), unbiased (Lemire's multiply-and-reject); n > 0
  double uniform();            // uniform in [0, 1) with 53 random bits

 private:
  uint64_t s_[4];
};

}  // namespace qb
