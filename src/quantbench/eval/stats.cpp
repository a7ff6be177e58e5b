// Statistics for baseline-vs-candidate comparison; see stats.h for the conventions each function
// follows (numpy percentiles, statsmodels Wilson and exact McNemar) and the top-K bound's derivation.
#include "quantbench/eval/stats.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "quantbench/core/error.h"

namespace qb::eval {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

void check_finite(std::span<const double> x, const char* what) {
  QB_CHECK(!x.empty(), "{}: empty input", what);
  for (size_t i = 0; i < x.size(); ++i)
    QB_CHECK(std::isfinite(x[i]), "{}: value {} at index {} is not finite", what, x[i], i);
}

void check_level(double level) {
  QB_CHECK(level > 0 && level < 1, "confidence level {} must lie in (0, 1)", level);
}

// Log of the sum of exp(x_i) over the indices selected by `take`.
template <typename Pred>
double logsumexp_if(std::span<const double> x, Pred take) {
  double mx = -kInf;
  for (size_t i = 0; i < x.size(); ++i)
    if (take(i)) mx = std::max(mx, x[i]);
  if (mx == -kInf) return -kInf;
  if (mx == kInf) return kInf;
  double s = 0;
  for (size_t i = 0; i < x.size(); ++i)
    if (take(i)) s += std::exp(x[i] - mx);
  return mx + std::log(s);
}

// p * (lp - lq) with the conventions 0 * anything = 0 and p > 0, q = 0 -> +inf.
double kl_term(double lp, double lq) {
  if (lp == -kInf) return 0.0;
  if (lq == -kInf) return kInf;
  return std::exp(lp) * (lp - lq);
}

}  // namespace

// ---- normal distribution -------------------------------------------------------------------------

double normal_quantile(double p) {
  QB_CHECK(p > 0 && p < 1, "normal_quantile: p = {} outside (0, 1)", p);
  // Acklam's rational approximation (relative error < 1.2e-9), then one Halley step on the exact CDF
  // (via erfc), which brings it to full double precision.
  static constexpr double a[] = {-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                                 1.383577518672690e+02,  -3.066479806614716e+01, 2.506628277459239e+00};
  static constexpr double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                                 6.680131188771972e+01,  -1.328068155288572e+01};
  static constexpr double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                                 -2.549732539343734e+00, 4.374664141464968e+00,  2.938163982698783e+00};
  static constexpr double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                                 3.754408661907416e+00};
  constexpr double plow = 0.02425, phigh = 1 - plow;
  double x;
  if (p < plow) {
    const double q = std::sqrt(-2 * std::log(p));
    x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  } else if (p <= phigh) {
    const double q = p - 0.5, r = q * q;
    x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
        (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
  } else {
    const double q = std::sqrt(-2 * std::log1p(-p));
    x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  for (int it = 0; it < 2; ++it) {
    // Residual computed on the side where it keeps relative precision.
    const double e = (x < 0) ? 0.5 * std::erfc(-x / std::sqrt(2.0)) - p : -(0.5 * std::erfc(x / std::sqrt(2.0)) - (1 - p));
    const double u = e * std::sqrt(2 * M_PI) * std::exp(x * x / 2);
    x = x - u / (1 + x * u / 2);
  }
  return x;
}

double normal_critical_value(double level) {
  check_level(level);
  return -normal_quantile((1 - level) / 2);
}

// ---- descriptive ---------------------------------------------------------------------------------

MeanStats mean_stats(std::span<const double> x, double level) {
  check_finite(x, "mean_stats");
  check_level(level);
  MeanStats s;
  s.n = x.size();
  long double sum = 0;
  for (double v : x) sum += v;
  s.mean = static_cast<double>(sum / s.n);
  if (s.n > 1) {
    long double ss = 0;
    for (double v : x) ss += (static_cast<long double>(v) - s.mean) * (static_cast<long double>(v) - s.mean);
    s.sd = std::sqrt(static_cast<double>(ss / (s.n - 1)));
  }
  s.stderr_ = s.sd / std::sqrt(static_cast<double>(s.n));
  const double z = normal_critical_value(level);
  s.ci = Interval{s.mean - z * s.stderr_, s.mean + z * s.stderr_, level, "analytic (normal, mean +- z*stderr, ddof=1)"};
  return s;
}

double percentile_sorted(std::span<const double> sorted, double q) {
  QB_CHECK(!sorted.empty(), "percentile of an empty sample");
  QB_CHECK(q >= 0 && q <= 100, "percentile {} outside [0, 100]", q);
  const size_t n = sorted.size();
  // numpy: virtual index (n - 1) * (q / 100), then _lerp, which switches form at t >= 0.5 so that the
  // result is monotone and exact at both ends.
  const double h = static_cast<double>(n - 1) * (q / 100.0);
  const double fl = std::floor(h);
  size_t lo = static_cast<size_t>(fl);
  if (lo >= n - 1) return sorted[n - 1];
  const double t = h - fl;
  const double a = sorted[lo], b = sorted[lo + 1];
  const double diff = b - a;
  return t >= 0.5 ? b - diff * (1 - t) : a + diff * t;
}

double percentile(std::span<const double> x, double q) {
  std::vector<double> s(x.begin(), x.end());
  std::sort(s.begin(), s.end());
  return percentile_sorted(s, q);
}

std::vector<double> percentiles(std::span<const double> x, std::span<const double> qs) {
  std::vector<double> s(x.begin(), x.end());
  std::sort(s.begin(), s.end());
  std::vector<double> out;
  out.reserve(qs.size());
  for (double q : qs) out.push_back(percentile_sorted(s, q));
  return out;
}

// ---- bootstrap -----------------------------------------------------------------------------------

Interval bootstrap_ci(std::span<const double> x, const std::function<double(std::span<double>)>& statistic,
                      const std::string& stat_name, const BootstrapSpec& spec) {
  check_finite(x, "bootstrap_ci");
  check_level(spec.level);
  QB_CHECK(spec.resamples >= 2, "bootstrap_ci: need at least 2 resamples, got {}", spec.resamples);
  Rng rng(spec.seed);
  const size_t n = x.size();
  std::vector<double> sample(n), stats(spec.resamples);
  for (size_t b = 0; b < spec.resamples; ++b) {
    for (size_t i = 0; i < n; ++i) sample[i] = x[rng.below(n)];
    stats[b] = statistic(sample);
  }
  std::sort(stats.begin(), stats.end());
  const double alpha = 1 - spec.level;
  return Interval{percentile_sorted(stats, 100 * alpha / 2), percentile_sorted(stats, 100 * (1 - alpha / 2)),
                  spec.level,
                  fmt::format("bootstrap percentile ({}, B={}, seed={}, xoshiro256**)", stat_name, spec.resamples,
                              spec.seed)};
}

Interval bootstrap_mean_ci(std::span<const double> x, const BootstrapSpec& spec) {
  return bootstrap_ci(
      x,
      [](std::span<double> s) {
        long double sum = 0;
        for (double v : s) sum += v;
        return static_cast<double>(sum / s.size());
      },
      "mean", spec);
}

Interval bootstrap_percentile_ci(std::span<const double> x, double q, const BootstrapSpec& spec) {
  QB_CHECK(q >= 0 && q <= 100, "percentile {} outside [0, 100]", q);
  return bootstrap_ci(
      x,
      [q](std::span<double> s) {
        std::sort(s.begin(), s.end());
        return percentile_sorted(s, q);
      },
      fmt::format("p{}", q), spec);
}

Interval bootstrap_clustered_mean_ci(std::span<const double> x, std::span<const size_t> offsets,
                                     const BootstrapSpec& spec) {
  check_finite(x, "bootstrap_clustered_mean_ci");
  check_level(spec.level);
  QB_CHECK(spec.resamples >= 2, "bootstrap_clustered_mean_ci: need at least 2 resamples, got {}", spec.resamples);
  QB_CHECK(offsets.size() >= 2 && offsets.front() == 0 && offsets.back() == x.size(),
           "bootstrap_clustered_mean_ci: offsets must run from 0 to {} (the number of values)", x.size());
  const size_t k = offsets.size() - 1;
  std::vector<long double> sums(k);
  std::vector<size_t> counts(k);
  for (size_t c = 0; c < k; ++c) {
    QB_CHECK(offsets[c] < offsets[c + 1], "bootstrap_clustered_mean_ci: cluster {} is empty or offsets decrease", c);
    for (size_t i = offsets[c]; i < offsets[c + 1]; ++i) sums[c] += x[i];
    counts[c] = offsets[c + 1] - offsets[c];
  }
  Rng rng(spec.seed);
  std::vector<double> stats(spec.resamples);
  for (size_t b = 0; b < spec.resamples; ++b) {
    long double sum = 0;
    size_t count = 0;
    for (size_t i = 0; i < k; ++i) {
      const size_t c = rng.below(k);
      sum += sums[c];
      count += counts[c];
    }
    stats[b] = static_cast<double>(sum / count);
  }
  std::sort(stats.begin(), stats.end());
  const double alpha = 1 - spec.level;
  return Interval{percentile_sorted(stats, 100 * alpha / 2), percentile_sorted(stats, 100 * (1 - alpha / 2)),
                  spec.level,
                  fmt::format("cluster bootstrap percentile (mean over {} clusters, B={}, seed={}, xoshiro256**)", k,
                              spec.resamples, spec.seed)};
}

// ---- proportions ---------------------------------------------------------------------------------

Proportion wilson(size_t k, size_t n, double level) {
  QB_CHECK(n > 0, "wilson: no trials");
  QB_CHECK(k <= n, "wilson: {} successes out of {} trials", k, n);
  check_level(level);
  const double z = normal_critical_value(level), z2 = z * z;
  const double nn = static_cast<double>(n), p = static_cast<double>(k) / nn;
  const double denom = 1 + z2 / nn;
  const double center = (p + z2 / (2 * nn)) / denom;
  const double half = z * std::sqrt(p * (1 - p) / nn + z2 / (4 * nn * nn)) / denom;
  return Proportion{k, n, p, Interval{center - half, center + half, level, "Wilson score"}};
}

Flips count_flips(std::span<const uint8_t> base_correct, std::span<const uint8_t> cand_correct) {
  QB_CHECK(base_correct.size() == cand_correct.size(),
           "count_flips: baseline has {} items, candidate {}; they must be the same items", base_correct.size(),
           cand_correct.size());
  Flips f;
  for (size_t i = 0; i < base_correct.size(); ++i) {
    const bool b = base_correct[i] != 0, c = cand_correct[i] != 0;
    if (b && c) ++f.both_correct;
    else if (b) ++f.correct_to_wrong;
    else if (c) ++f.wrong_to_correct;
    else ++f.both_wrong;
  }
  return f;
}

double binomial_half_cdf(size_t k, size_t n) {
  if (k >= n) return 1.0;
  // Terms C(n, i) / 2^n in log space, summed with the largest factored out.
  const long double ln2 = std::log(2.0L);
  const long double lg_n1 = std::lgamma(static_cast<long double>(n) + 1);
  std::vector<long double> logs(k + 1);
  long double mx = -std::numeric_limits<long double>::infinity();
  for (size_t i = 0; i <= k; ++i) {
    logs[i] = lg_n1 - std::lgamma(static_cast<long double>(i) + 1) - std::lgamma(static_cast<long double>(n - i) + 1) -
              static_cast<long double>(n) * ln2;
    mx = std::max(mx, logs[i]);
  }
  long double s = 0;
  for (long double l : logs) s += std::exp(l - mx);
  return static_cast<double>(std::min(1.0L, std::exp(mx) * s));
}

McNemar mcnemar_exact(size_t b, size_t c) {
  McNemar m{b, c, 1.0};
  m.p_value = std::min(1.0, 2.0 * binomial_half_cdf(std::min(b, c), b + c));
  return m;
}

McNemar mcnemar_exact(const Flips& f) { return mcnemar_exact(f.correct_to_wrong, f.wrong_to_correct); }

MeanStats paired_difference(std::span<const double> base, std::span<const double> cand, double level) {
  QB_CHECK(base.size() == cand.size(), "paired_difference: baseline has {} items, candidate {}", base.size(),
           cand.size());
  std::vector<double> d(base.size());
  for (size_t i = 0; i < d.size(); ++i) d[i] = cand[i] - base[i];
  MeanStats s = mean_stats(d, level);
  s.ci.method = "analytic (normal, paired differences cand - base, ddof=1)";
  return s;
}

// ---- per-token -----------------------------------------------------------------------------------

std::vector<double> log_softmax(std::span<const float> logits) {
  QB_CHECK(!logits.empty(), "log_softmax: empty logits");
  std::vector<double> out(logits.begin(), logits.end());
  for (size_t i = 0; i < out.size(); ++i)
    QB_CHECK(!std::isnan(out[i]) && out[i] != kInf, "log_softmax: logit {} at index {} is NaN or +inf", out[i], i);
  const double lse = logsumexp_if(std::span<const double>(out), [](size_t) { return true; });
  QB_CHECK(lse != -kInf, "log_softmax: every logit is -inf");
  for (double& v : out) v -= lse;
  return out;
}

double kl_divergence(std::span<const double> base_logprobs, std::span<const double> cand_logprobs) {
  QB_CHECK(base_logprobs.size() == cand_logprobs.size(), "kl_divergence: vocab sizes differ ({} vs {})",
           base_logprobs.size(), cand_logprobs.size());
  long double s = 0;
  for (size_t i = 0; i < base_logprobs.size(); ++i) s += kl_term(base_logprobs[i], cand_logprobs[i]);
  // Rounding can leave a tiny negative sum for identical distributions; KL is non-negative.
  return std::max(0.0, static_cast<double>(s));
}

double delta_p(std::span<const double> base_logprobs, std::span<const double> cand_logprobs, size_t ref) {
  QB_CHECK(base_logprobs.size() == cand_logprobs.size(), "delta_p: vocab sizes differ ({} vs {})",
           base_logprobs.size(), cand_logprobs.size());
  QB_CHECK(ref < base_logprobs.size(), "delta_p: reference token {} outside vocab of {}", ref, base_logprobs.size());
  return std::exp(cand_logprobs[ref]) - std::exp(base_logprobs[ref]);
}

size_t argmax(std::span<const double> x) {
  QB_CHECK(!x.empty(), "argmax of an empty vector");
  size_t best = 0;
  for (size_t i = 1; i < x.size(); ++i)
    if (x[i] > x[best]) best = i;
  return best;
}

bool same_top1(std::span<const double> base_logprobs, std::span<const double> cand_logprobs) {
  QB_CHECK(base_logprobs.size() == cand_logprobs.size(), "same_top1: vocab sizes differ ({} vs {})",
           base_logprobs.size(), cand_logprobs.size());
  return argmax(base_logprobs) == argmax(cand_logprobs);
}

TopKLogProbs truncate_top_k(std::span<const double> base_logprobs, size_t k) {
  const size_t v = base_logprobs.size();
  QB_CHECK(v > 0, "truncate_top_k: empty distribution");
  QB_CHECK(k > 0, "truncate_top_k: K must be at least 1");
  QB_CHECK(v <= static_cast<size_t>(std::numeric_limits<int32_t>::max()), "truncate_top_k: vocab {} too large", v);
  k = std::min(k, v);
  std::vector<int32_t> order(v);
  std::iota(order.begin(), order.end(), 0);
  auto better = [&](int32_t a, int32_t b) {
    return base_logprobs[a] > base_logprobs[b] || (base_logprobs[a] == base_logprobs[b] && a < b);
  };
  std::partial_sort(order.begin(), order.begin() + k, order.end(), better);
  TopKLogProbs t;
  t.vocab = v;
  t.ids.assign(order.begin(), order.begin() + k);
  for (int32_t id : t.ids) t.logprobs.push_back(base_logprobs[id]);
  std::vector<uint8_t> kept(v, 0);
  for (int32_t id : t.ids) kept[id] = 1;
  t.rest_logmass = logsumexp_if(base_logprobs, [&](size_t i) { return !kept[i]; });
  return t;
}

TopKKl kl_top_k(const TopKLogProbs& base, std::span<const double> cand_logprobs) {
  const size_t v = cand_logprobs.size();
  QB_CHECK(v == base.vocab, "kl_top_k: candidate vocab {} differs from the stored baseline's {}", v, base.vocab);
  QB_CHECK(base.ids.size() == base.logprobs.size() && !base.ids.empty(), "kl_top_k: malformed top-K record");
  std::vector<uint8_t> kept(v, 0);
  for (int32_t id : base.ids) {
    QB_CHECK(id >= 0 && static_cast<size_t>(id) < v && !kept[id], "kl_top_k: bad or repeated token id {}", id);
    kept[id] = 1;
  }
  TopKKl r;
  r.k = base.ids.size();
  const double lq_rest = logsumexp_if(cand_logprobs, [&](size_t i) { return !kept[i]; });
  long double kl = 0;
  for (size_t j = 0; j < base.ids.size(); ++j) kl += kl_term(base.logprobs[j], cand_logprobs[base.ids[j]]);
  kl += kl_term(base.rest_logmass, lq_rest);
  r.kl_lumped = std::max(0.0, static_cast<double>(kl));

  // Worst case of the unseen tail (see stats.h): m tail tokens at t, one at r, placed on the tokens of
  // R with the smallest candidate probability.
  const double lp_rest = base.rest_logmass;
  if (lp_rest == -kInf) return r;  // nothing truncated: the lumped KL is the true KL
  const double lt = *std::min_element(base.logprobs.begin(), base.logprobs.end());
  std::vector<double> lq_tail;
  lq_tail.reserve(v - r.k);
  for (size_t i = 0; i < v; ++i)
    if (!kept[i]) lq_tail.push_back(cand_logprobs[i]);
  if (lt == -kInf) return r;  // cannot happen for a sorted record: the tail would be empty
  // Work with the ratio p_R / t in log space: t alone can underflow for extreme distributions.
  const double p_rest = std::exp(lp_rest), t = std::exp(lt);
  const double log_ratio = lp_rest - lt;
  size_t m = lq_tail.size();
  double log_rem = -kInf;  // log of r = p_R - m t
  if (log_ratio < std::log(static_cast<double>(lq_tail.size()))) {
    const double ratio = std::exp(log_ratio);
    const double mf = std::floor(ratio);
    m = static_cast<size_t>(mf);
    if (ratio > mf) log_rem = lt + std::log(ratio - mf);
  }
  if (m > lq_tail.size()) m = lq_tail.size();
  const size_t need = std::min(lq_tail.size(), m + 1);
  std::nth_element(lq_tail.begin(), lq_tail.begin() + (need - 1), lq_tail.end());
  std::sort(lq_tail.begin(), lq_tail.begin() + need);
  long double worst = 0;
  for (size_t j = 0; j < m; ++j) {
    if (lq_tail[j] == -kInf) return TopKKl{r.kl_lumped, kInf, r.k};
    worst += static_cast<long double>(t) * (lt - lq_tail[j]);
  }
  if (log_rem != -kInf && m < lq_tail.size()) {
    if (lq_tail[m] == -kInf) return TopKKl{r.kl_lumped, kInf, r.k};
    worst += static_cast<long double>(std::exp(log_rem)) * (log_rem - lq_tail[m]);
  }
  worst -= static_cast<long double>(p_rest) * (lp_rest - lq_rest);
  r.gap_bound = std::max(0.0, static_cast<double>(worst));
  return r;
}

// ---- summaries -----------------------------------------------------------------------------------

KlSummary summarize_kl(std::span<const double> per_token_kl, double level) {
  KlSummary s;
  s.mean = mean_stats(per_token_kl, level);
  static constexpr double qs[] = {50, 90, 99, 99.9, 100};
  const auto p = percentiles(per_token_kl, qs);
  s.median = p[0];
  s.p90 = p[1];
  s.p99 = p[2];
  s.p999 = p[3];
  s.max = p[4];
  return s;
}

const std::vector<double>& delta_p_percentile_levels() {
  static const std::vector<double> levels = {0.1, 1, 5, 10, 25, 50, 75, 90, 95, 99, 99.9};
  return levels;
}

DeltaPSummary summarize_delta_p(std::span<const double> per_token_dp, double level) {
  DeltaPSummary s;
  s.mean = mean_stats(per_token_dp, level);
  long double sq = 0;
  for (double v : per_token_dp) sq += static_cast<long double>(v) * v;
  s.rms = std::sqrt(static_cast<double>(sq / per_token_dp.size()));
  const auto [mn, mx] = std::minmax_element(per_token_dp.begin(), per_token_dp.end());
  s.min = *mn;
  s.max = *mx;
  s.percentiles = percentiles(per_token_dp, delta_p_percentile_levels());
  return s;
}

Proportion same_top1_rate(std::span<const uint8_t> per_token_same, double level) {
  size_t k = 0;
  for (uint8_t v : per_token_same) k += v != 0;
  return wilson(k, per_token_same.size(), level);
}

TopKKlSummary summarize_kl_top_k(std::span<const TopKKl> per_token, double level) {
  QB_CHECK(!per_token.empty(), "summarize_kl_top_k: no tokens");
  TopKKlSummary s;
  s.k = per_token.front().k;
  std::vector<double> lumped;
  lumped.reserve(per_token.size());
  long double gap = 0;
  for (const auto& t : per_token) {
    QB_CHECK(t.k == s.k, "summarize_kl_top_k: tokens stored with different K ({} and {})", s.k, t.k);
    lumped.push_back(t.kl_lumped);
    gap += t.gap_bound;
    s.max_gap_bound = std::max(s.max_gap_bound, t.gap_bound);
  }
  s.lumped = summarize_kl(lumped, level);
  s.mean_gap_bound = static_cast<double>(gap / per_token.size());
  return s;
}

}  // namespace qb::eval
