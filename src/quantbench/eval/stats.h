// Statistics for comparing a candidate against its baseline on the same items (EVALUATION.md,
// "Metrics"): means with intervals, numpy-convention percentiles, seeded bootstrap, Wilson intervals,
// exact McNemar, flips, and the per-token divergence pieces (KL, delta-p, top-1) including the top-K
// truncated baseline with its proven error bound.
//
// Design choices: every interval is a qb::Interval whose `method` names how it was made (and the seed
// and resample count for bootstraps), so a report never has to guess. Randomness comes only from our
// own xoshiro256** generator seeded explicitly, so a bootstrap gives the same numbers on every platform
// and standard library. Per-token log-probs are double: they are derived once per token and the
// differences that matter (KL near 1e-6 for good schemes) would drown in float rounding.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "quantbench/core/result.h"

#include "quantbench/core/rng.h"

namespace qb::eval {

// ---- deterministic randomness ---------------------------------------------------------------------

using qb::Rng;  // core/rng.h: the pinned xoshiro256** stream

// ---- descriptive statistics ----------------------------------------------------------------------

// Two-sided standard normal critical value for a confidence level, e.g. 0.95 -> 1.959963984540054.
double normal_critical_value(double level);
// Inverse of the standard normal CDF, accurate to a few ulp on (0, 1).
double normal_quantile(double p);

struct MeanStats {
  size_t n = 0;
  double mean = 0;
  double sd = 0;       // sample standard deviation (ddof = 1; 0 when n < 2)
  double stderr_ = 0;  // sd / sqrt(n), lm-eval's mean_stderr
  Interval ci;         // mean +- z * stderr (normal approximation)
};
// Throws qb::Error on empty input or non-finite values.
MeanStats mean_stats(std::span<const double> x, double level = 0.95);

// Percentile q in [0, 100] with numpy's default 'linear' rule (Hyndman & Fan type 7): with the data
// sorted ascending, h = (n - 1) * q / 100 and the result interpolates x[floor(h)] and x[floor(h) + 1].
double percentile(std::span<const double> x, double q);
// Several percentiles from one sort.
std::vector<double> percentiles(std::span<const double> x, std::span<const double> qs);
// Same rule on data already sorted ascending (no copy).
double percentile_sorted(std::span<const double> sorted, double q);

// ---- bootstrap -----------------------------------------------------------------------------------

struct BootstrapSpec {
  size_t resamples = 1000;
  uint64_t seed = 1;
  double level = 0.95;
};
// Percentile-method bootstrap interval of any statistic: `resamples` resamples of size n drawn with
// replacement from x by Rng(seed); the interval is the numpy-linear percentiles (1-level)/2 and
// (1+level)/2 of the resampled statistics. The statistic may reorder its argument.
// method = "bootstrap percentile (<stat_name>, B=<resamples>, seed=<seed>, xoshiro256**)".
Interval bootstrap_ci(std::span<const double> x, const std::function<double(std::span<double>)>& statistic,
                      const std::string& stat_name, const BootstrapSpec& spec = {});
Interval bootstrap_mean_ci(std::span<const double> x, const BootstrapSpec& spec = {});
Interval bootstrap_percentile_ci(std::span<const double> x, double q, const BootstrapSpec& spec = {});
// Cluster bootstrap of the pooled mean: per-token values from one sequence are correlated, so resample
// whole sequences. x is the concatenation of the clusters; cluster i is x[offsets[i], offsets[i+1]),
// offsets starting at 0 and ending at x.size(). The statistic is sum / count over the drawn clusters.
// With one value per cluster it draws exactly what bootstrap_mean_ci draws.
Interval bootstrap_clustered_mean_ci(std::span<const double> x, std::span<const size_t> offsets,
                                     const BootstrapSpec& spec = {});

// ---- proportions, flips, McNemar -----------------------------------------------------------------

struct Proportion {
  size_t k = 0, n = 0;
  double rate = 0;  // k / n
  Interval ci;      // Wilson score interval
};
// Wilson score interval, as statsmodels' proportion_confint(method="wilson"). Throws if k > n or n == 0.
Proportion wilson(size_t k, size_t n, double level = 0.95);

// How each item's correctness moved from baseline to candidate.
struct Flips {
  size_t correct_to_wrong = 0;  // baseline right, candidate wrong (McNemar's b)
  size_t wrong_to_correct = 0;  // baseline wrong, candidate right (McNemar's c)
  size_t both_correct = 0, both_wrong = 0;
  size_t n() const { return correct_to_wrong + wrong_to_correct + both_correct + both_wrong; }
  size_t flipped() const { return correct_to_wrong + wrong_to_correct; }
};
// Throws qb::Error if the vectors differ in length (they must be the same items, in the same order).
Flips count_flips(std::span<const uint8_t> base_correct, std::span<const uint8_t> cand_correct);

struct McNemar {
  size_t b = 0, c = 0;  // discordant pairs: base-right/cand-wrong, base-wrong/cand-right
  double p_value = 1;   // two-sided exact: min(1, 2 * BinomCDF(min(b, c); b + c, 1/2)), as statsmodels
                        // mcnemar(table, exact=True); 1 when b + c == 0
};
McNemar mcnemar_exact(size_t b, size_t c);
McNemar mcnemar_exact(const Flips& f);
// P(X <= k) for X ~ Binomial(n, 1/2), summed in log space (long double) so n in the millions is fine.
double binomial_half_cdf(size_t k, size_t n);

// Paired difference cand - base, item by item: mean, stderr of the differences, normal interval.
MeanStats paired_difference(std::span<const double> base, std::span<const double> cand, double level = 0.95);

// ---- per-token divergence ------------------------------------------------------------------------

// Log-softmax of raw logits, in double.
std::vector<double> log_softmax(std::span<const float> logits);
// KL(P_base || P_cand) = sum_i p_i (log p_i - log q_i) in nats, from two normalised log-prob vectors of
// the same length. Terms with p_i = 0 contribute 0; a q_i = 0 where p_i > 0 gives +inf.
double kl_divergence(std::span<const double> base_logprobs, std::span<const double> cand_logprobs);
// Delta-p of the reference token: p_cand(ref) - p_base(ref) (llama.cpp's sign: negative = lost mass).
double delta_p(std::span<const double> base_logprobs, std::span<const double> cand_logprobs, size_t ref);
// Index of the largest entry; ties go to the lowest index (numpy.argmax).
size_t argmax(std::span<const double> x);
bool same_top1(std::span<const double> base_logprobs, std::span<const double> cand_logprobs);

// The baseline stored as its K most probable tokens plus the mass of the rest (full logits are 10-40
// GiB for a real model). Ids are ordered by base log-prob descending, ties by lower id.
struct TopKLogProbs {
  std::vector<int32_t> ids;
  std::vector<double> logprobs;
  double rest_logmass = 0;  // log of the base mass outside `ids`; -inf when ids cover the vocabulary
  size_t vocab = 0;
  size_t k() const { return ids.size(); }
};
TopKLogProbs truncate_top_k(std::span<const double> base_logprobs, size_t k);

// KL of the lumped distributions: the K stored tokens stay, everything else (in both base and
// candidate) becomes one bucket R. With P' and Q' the lumped distributions, the chain rule gives
//   KL(P || Q) = KL(P' || Q') + p_R * KL(P|R || Q|R) >= KL(P' || Q')           (log-sum inequality)
// so `kl_lumped` is a lower bound of the true KL. The gap p_R * KL(P|R || Q|R) equals
// sum_{i in R} p_i log(p_i / q_i) - p_R log(p_R / q_R); the stored data only tell us that each tail
// p_i lies in [0, t] with t = the smallest stored base probability, and sum_{i in R} p_i = p_R. The
// first term is convex in p, so its maximum over that polytope is at a vertex: m = floor(p_R / t)
// coordinates equal t and one equals r = p_R - m t; by the rearrangement inequality the t's sit on the
// m tokens of R the candidate finds least likely and r on the next. That maximum, minus the second
// term, is `gap_bound`: KL_true lies in [kl_lumped, kl_lumped + gap_bound], and the bound is attained
// by that base tail, so no smaller bound follows from what is stored.
struct TopKKl {
  double kl_lumped = 0;
  double gap_bound = 0;
  size_t k = 0;
};
// Throws qb::Error if the candidate's length is not the stored vocabulary size.
TopKKl kl_top_k(const TopKLogProbs& base, std::span<const double> cand_logprobs);

// ---- summaries over tokens -----------------------------------------------------------------------

struct KlSummary {
  MeanStats mean;  // with normal interval (tokens treated as independent; see report caveats)
  double median = 0, p90 = 0, p99 = 0, p999 = 0, max = 0;
};
KlSummary summarize_kl(std::span<const double> per_token_kl, double level = 0.95);

struct DeltaPSummary {
  MeanStats mean;
  double rms = 0;  // sqrt(mean(dp^2))
  double min = 0, max = 0;
  // Percentiles at delta_p_percentile_levels(), numpy-linear.
  std::vector<double> percentiles;
};
const std::vector<double>& delta_p_percentile_levels();  // {0.1, 1, 5, 10, 25, 50, 75, 90, 95, 99, 99.9}
DeltaPSummary summarize_delta_p(std::span<const double> per_token_dp, double level = 0.95);

// Same-top-1 rate with a Wilson interval.
Proportion same_top1_rate(std::span<const uint8_t> per_token_same, double level = 0.95);

// Top-K summary: the true mean KL lies in [mean(kl_lumped), mean(kl_lumped) + mean(gap_bound)].
struct TopKKlSummary {
  size_t k = 0;
  KlSummary lumped;
  double mean_gap_bound = 0, max_gap_bound = 0;
};
TopKKlSummary summarize_kl_top_k(std::span<const TopKKl> per_token, double level = 0.95);

}  // namespace qb::eval
