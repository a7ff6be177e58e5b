// Token sampling: greedy (temperature 0) or seeded sampling with temperature, top-k and top-p.
// The random stream is core/rng.h's (pinned on every platform and compiler). Candidates are ordered by logit
// with ties broken by the lower id, so the choice never depends on sort stability.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "quantbench/core/rng.h"

namespace qb::runtime {

struct SamplerConfig {
  float temperature = 0.0f;  // <= 0: greedy
  int top_k = 0;             // <= 0: no limit
  float top_p = 1.0f;        // in (0, 1]; 1: no limit
  uint64_t seed = 0;

  std::string describe() const;  // for the Manifest
};

class Sampler {
 public:
  explicit Sampler(SamplerConfig config);  // throws qb::Error on out-of-range settings

  // Picks a token id from one row of logits. Throws on an empty row or non-finite logits.
  int32_t sample(std::span<const float> logits);

  // The probabilities sample() draws from (after temperature, top-k, top-p), as (id, p) pairs in
  // draw order; greedy gives the argmax with p = 1. Exposed for tests and for evaluators that score.
  std::vector<std::pair<int32_t, double>> distribution(std::span<const float> logits) const;

  const SamplerConfig& config() const { return config_; }

 private:
  SamplerConfig config_;
  Rng rng_;
};

// Index of the largest logit; the lowest index among ties.
int32_t argmax(std::span<const float> logits);

}  // namespace qb::runtime
