// See sampler.h.
#include "quantbench/runtime/sampler.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "quantbench/core/error.h"

namespace qb::runtime {

std::string SamplerConfig::describe() const {
  if (temperature <= 0) return "greedy";
  return fmt::format("temperature {} top_k {} top_p {} seed {} (xoshiro256**)", temperature, top_k, top_p, seed);
}

Sampler::Sampler(SamplerConfig config) : config_(config), rng_(config.seed) {
  QB_CHECK(std::isfinite(config.temperature), "sampler: temperature must be finite");
  QB_CHECK(config.top_p > 0 && config.top_p <= 1, "sampler: top_p {} must be in (0, 1]", config.top_p);
}

int32_t argmax(std::span<const float> logits) {
  QB_CHECK(!logits.empty(), "sampler: empty logits");
  size_t best = 0;
  for (size_t i = 1; i < logits.size(); ++i)
    if (logits[i] > logits[best]) best = i;
  return int32_t(best);
}

std::vector<std::pair<int32_t, double>> Sampler::distribution(std::span<const float> logits) const {
  QB_CHECK(!logits.empty(), "sampler: empty logits");
  for (size_t i = 0; i < logits.size(); ++i)
    QB_CHECK(std::isfinite(logits[i]), "sampler: logit {} is not finite ({})", i, logits[i]);
  if (config_.temperature <= 0) return {{argmax(logits), 1.0}};

  std::vector<int32_t> ids(logits.size());
  std::iota(ids.begin(), ids.end(), 0);
  auto better = [&](int32_t a, int32_t b) { return logits[size_t(a)] > logits[size_t(b)] || (logits[size_t(a)] == logits[size_t(b)] && a < b); };
  size_t n = ids.size();
  if (config_.top_k > 0 && size_t(config_.top_k) < n) {
    n = size_t(config_.top_k);
    std::partial_sort(ids.begin(), ids.begin() + std::ptrdiff_t(n), ids.end(), better);
  } else {
    std::sort(ids.begin(), ids.end(), better);
  }
  ids.resize(n);

  const double inv_t = 1.0 / double(config_.temperature);
  const double mx = double(logits[size_t(ids[0])]);
  std::vector<std::pair<int32_t, double>> out(n);
  double sum = 0;
  for (size_t i = 0; i < n; ++i) {
    const double p = std::exp((double(logits[size_t(ids[i])]) - mx) * inv_t);
    out[i] = {ids[i], p};
    sum += p;
  }
  for (auto& e : out) e.second /= sum;
  if (config_.top_p < 1) {  // smallest prefix whose mass reaches top_p
    double cum = 0;
    size_t keep = 0;
    while (keep < n) {
      cum += out[keep++].second;
      if (cum >= double(config_.top_p)) break;
    }
    out.resize(keep);
    for (auto& e : out) e.second /= cum;
  }
  return out;
}

int32_t Sampler::sample(std::span<const float> logits) {
  const auto dist = distribution(logits);
  if (config_.temperature <= 0) return dist[0].first;
  const double u = rng_.uniform();
  double cum = 0;
  for (const auto& [id, p] : dist) {
    cum += p;
    if (u < cum) return id;
  }
  return dist.back().first;  // u within rounding of 1
}

}  // namespace qb::runtime
