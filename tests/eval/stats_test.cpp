// Tests for eval/stats: golden values from numpy/scipy/statsmodels (tests/golden/eval/
// make_stats_golden.py), bootstrap behaviour checked statistically, and the top-K KL bound checked on
// thousands of random (including heavy-tailed) distributions and shown to be attained.
#include "quantbench/eval/stats.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <numeric>

#include "../test_paths.h"
#include "quantbench/core/error.h"

namespace qb::eval {
namespace {

const nlohmann::json& golden() {
  static const nlohmann::json j = [] {
    std::ifstream f(qb::test::source_path("tests/golden/eval/stats_golden.json"));
    EXPECT_TRUE(f.good());
    return nlohmann::json::parse(f);
  }();
  return j;
}

void expect_rel(double got, double want, double rtol, const std::string& what) {
  EXPECT_NEAR(got, want, rtol * std::max(1e-300, std::abs(want)) + 1e-300) << what;
}

TEST(EvalStats, NormalQuantileMatchesScipy) {
  for (const auto& pq : golden()["normal_ppf"]) {
    const double p = pq[0], want = pq[1];
    expect_rel(normal_quantile(p), want, 1e-13, "p=" + std::to_string(p));
  }
  EXPECT_NEAR(normal_critical_value(0.95), 1.959963984540054, 1e-14);
  EXPECT_THROW(normal_quantile(0.0), Error);
  EXPECT_THROW(normal_critical_value(1.0), Error);
}

TEST(EvalStats, MeanStderrPercentilesMatchNumpy) {
  const auto& g = golden();
  std::vector<double> qs = g["percentile_qs"].get<std::vector<double>>();
  for (const auto& s : g["samples"]) {
    const auto x = s["x"].get<std::vector<double>>();
    const MeanStats m = mean_stats(x);
    expect_rel(m.mean, s["mean"], 1e-12, "mean");
    expect_rel(m.sd, s["sd"], 1e-12, "sd");
    expect_rel(m.stderr_, s["stderr"], 1e-12, "stderr");
    EXPECT_NEAR(m.ci.lo, s["ci95"][0].get<double>(), 1e-12 * (1 + std::abs(m.mean)));
    EXPECT_NEAR(m.ci.hi, s["ci95"][1].get<double>(), 1e-12 * (1 + std::abs(m.mean)));
    EXPECT_NE(m.ci.method.find("normal"), std::string::npos);
    const auto p = percentiles(x, qs);
    for (size_t i = 0; i < qs.size(); ++i) {
      expect_rel(p[i], s["percentiles"][i], 1e-14, "q=" + std::to_string(qs[i]));
      expect_rel(percentile(x, qs[i]), s["percentiles"][i], 1e-14, "q=" + std::to_string(qs[i]));
    }
  }
  EXPECT_THROW(mean_stats(std::vector<double>{}), Error);
  EXPECT_THROW(mean_stats(std::vector<double>{1, NAN}), Error);
  EXPECT_THROW(percentile(std::vector<double>{1, 2}, 101), Error);
}

TEST(EvalStats, WilsonMatchesStatsmodels) {
  for (const auto& w : golden()["wilson"]) {
    const Proportion p = wilson(w["k"], w["n"], w["level"]);
    EXPECT_NEAR(p.ci.lo, w["lo"].get<double>(), 1e-13);
    EXPECT_NEAR(p.ci.hi, w["hi"].get<double>(), 1e-13);
    EXPECT_EQ(p.ci.method, "Wilson score");
  }
  EXPECT_THROW(wilson(3, 2), Error);
  EXPECT_THROW(wilson(0, 0), Error);
}

TEST(EvalStats, McNemarExactMatchesStatsmodels) {
  for (const auto& m : golden()["mcnemar"]) {
    const McNemar r = mcnemar_exact(m["b"].get<size_t>(), m["c"].get<size_t>());
    expect_rel(r.p_value, m["p"], 1e-10, "b=" + m["b"].dump() + " c=" + m["c"].dump());
  }
  for (const auto& t : golden()["binom_half_cdf"])
    expect_rel(binomial_half_cdf(t[0], t[1]), t[2], 1e-10, "binom " + t.dump());
}

TEST(EvalStats, FlipsCountBothWaysAndFeedMcNemar) {
  const std::vector<uint8_t> base = {1, 1, 0, 0, 1, 0, 1, 1};
  const std::vector<uint8_t> cand = {1, 0, 1, 0, 0, 0, 1, 1};
  const Flips f = count_flips(base, cand);
  EXPECT_EQ(f.correct_to_wrong, 2u);
  EXPECT_EQ(f.wrong_to_correct, 1u);
  EXPECT_EQ(f.both_correct, 3u);
  EXPECT_EQ(f.both_wrong, 2u);
  EXPECT_EQ(f.n(), 8u);
  const McNemar m = mcnemar_exact(f);
  EXPECT_EQ(m.b, 2u);
  EXPECT_EQ(m.c, 1u);
  // b=2, c=1: 2 * P(X <= 1 | n=3) = 2 * 4/8 = 1.
  EXPECT_DOUBLE_EQ(m.p_value, 1.0);
  EXPECT_THROW(count_flips(base, std::vector<uint8_t>{1}), Error);
}

TEST(EvalStats, PairedDifferenceMatchesNumpy) {
  const auto& g = golden()["paired"];
  const auto base = g["base"].get<std::vector<double>>(), cand = g["cand"].get<std::vector<double>>();
  const MeanStats d = paired_difference(base, cand);
  expect_rel(d.mean, g["mean"], 1e-12, "mean");
  expect_rel(d.stderr_, g["stderr"], 1e-12, "stderr");
  EXPECT_NEAR(d.ci.lo, g["ci95"][0].get<double>(), 1e-12);
  EXPECT_NEAR(d.ci.hi, g["ci95"][1].get<double>(), 1e-12);
}

TEST(EvalStats, PerTokenKlDeltaPTop1MatchScipy) {
  for (const auto& k : golden()["kl"]) {
    const auto lb = k["logits_base"].get<std::vector<float>>(), lc = k["logits_cand"].get<std::vector<float>>();
    const auto pb = log_softmax(lb), pc = log_softmax(lc);
    for (int i = 0; i < 3; ++i) expect_rel(pb[i], k["log_softmax_base_first3"][i], 1e-13, "log_softmax");
    // Both sides work in double from logits of magnitude ~10-30: log-softmax rounding (~1e-15 absolute)
    // bounds the agreement, so the tolerance is absolute plus relative.
    const double kl = k["kl"].get<double>();
    EXPECT_NEAR(kl_divergence(pb, pc), kl, 1e-12 + 1e-9 * kl);
    EXPECT_NEAR(delta_p(pb, pc, k["ref"]), k["delta_p"].get<double>(), 1e-14);
    EXPECT_EQ(same_top1(pb, pc), k["same_top1"].get<bool>());
  }
  const std::vector<double> a = {std::log(0.5), std::log(0.5), -INFINITY};
  EXPECT_EQ(argmax(a), 0u);  // ties -> lowest index
  EXPECT_EQ(kl_divergence(a, a), 0.0);
  const std::vector<double> zero_q = {0.0, -INFINITY, -INFINITY};
  EXPECT_EQ(kl_divergence(a, zero_q), INFINITY);
  EXPECT_THROW(kl_divergence(a, std::vector<double>{0.0}), Error);
  EXPECT_THROW(delta_p(a, a, 3), Error);
}

TEST(EvalStats, RngIsDeterministicAndUniform) {
  Rng a(7), b(7), c(8);
  bool differs = false;
  for (int i = 0; i < 100; ++i) {
    const uint64_t x = a.next();
    EXPECT_EQ(x, b.next());
    differs |= x != c.next();
  }
  EXPECT_TRUE(differs);
  // Chi-square over 10 bins of below(10): 100000 draws, 9 dof; 99.99% quantile is about 33.7.
  Rng r(123);
  std::vector<int> bins(10, 0);
  for (int i = 0; i < 100000; ++i) ++bins[r.below(10)];
  double chi2 = 0;
  for (int c2 : bins) chi2 += (c2 - 10000.0) * (c2 - 10000.0) / 10000.0;
  EXPECT_LT(chi2, 33.7);
  for (int i = 0; i < 1000; ++i) {
    const double u = r.uniform();
    EXPECT_GE(u, 0.0);
    EXPECT_LT(u, 1.0);
  }
}

std::vector<double> exponential_sample(Rng& r, size_t n) {
  std::vector<double> x(n);
  for (auto& v : x) v = -std::log1p(-r.uniform());
  return x;
}

TEST(EvalStats, BootstrapIsSeededRecordedAndAgreesWithAnalytic) {
  Rng r(99);
  const auto x = exponential_sample(r, 400);
  const BootstrapSpec spec{1000, 42, 0.95};
  const Interval a = bootstrap_mean_ci(x, spec), b = bootstrap_mean_ci(x, spec);
  EXPECT_EQ(a.lo, b.lo);
  EXPECT_EQ(a.hi, b.hi);
  EXPECT_NE(a.method.find("seed=42"), std::string::npos) << a.method;
  EXPECT_NE(a.method.find("B=1000"), std::string::npos) << a.method;
  const Interval other = bootstrap_mean_ci(x, BootstrapSpec{1000, 43, 0.95});
  EXPECT_TRUE(other.lo != a.lo || other.hi != a.hi);
  // The bootstrap and the normal interval estimate the same thing for a mean of 400 draws.
  const MeanStats m = mean_stats(x);
  const double width = m.ci.hi - m.ci.lo;
  EXPECT_NEAR(a.lo, m.ci.lo, 0.15 * width);
  EXPECT_NEAR(a.hi, m.ci.hi, 0.15 * width);
  // Median interval brackets the sample median and sits inside the data range.
  const Interval med = bootstrap_percentile_ci(x, 50, spec);
  const double sm = percentile(x, 50);
  EXPECT_LE(med.lo, sm);
  EXPECT_GE(med.hi, sm);
  EXPECT_NE(med.method.find("p50"), std::string::npos);
}

TEST(EvalStats, ClusteredBootstrapResamplesWholeSequences) {
  Rng r(31);
  const auto x = exponential_sample(r, 300);
  // One value per cluster: the same draws as the plain bootstrap, so the same interval.
  std::vector<size_t> singletons(301);
  std::iota(singletons.begin(), singletons.end(), 0);
  const BootstrapSpec spec{500, 9, 0.95};
  const Interval plain = bootstrap_mean_ci(x, spec), clustered = bootstrap_clustered_mean_ci(x, singletons, spec);
  EXPECT_NEAR(clustered.lo, plain.lo, 1e-12);
  EXPECT_NEAR(clustered.hi, plain.hi, 1e-12);
  EXPECT_NE(clustered.method.find("seed=9"), std::string::npos);
  // 30 sequences of 10 identical values: only 30 independent draws, so the honest interval is about
  // sqrt(10) times wider than the one that treats the 300 values as independent.
  std::vector<double> y;
  std::vector<size_t> offsets = {0};
  for (int c = 0; c < 30; ++c) {
    const double v = -std::log1p(-r.uniform());
    for (int i = 0; i < 10; ++i) y.push_back(v);
    offsets.push_back(y.size());
  }
  const Interval naive = bootstrap_mean_ci(y, spec), honest = bootstrap_clustered_mean_ci(y, offsets, spec);
  const double ratio = (honest.hi - honest.lo) / (naive.hi - naive.lo);
  EXPECT_GT(ratio, 2.3);
  EXPECT_LT(ratio, 4.3);
  EXPECT_THROW(bootstrap_clustered_mean_ci(y, std::vector<size_t>{0, 5}, spec), Error);
  EXPECT_THROW(bootstrap_clustered_mean_ci(y, std::vector<size_t>{0, 0, 300}, spec), Error);
}

TEST(EvalStats, BootstrapMeanCoverageIsNearNominal) {
  // Exponential(1) has mean 1; over 300 independent samples of 80 the 90% interval should cover 1
  // about 270 times (binomial sd about 5; the percentile bootstrap under-covers slightly on skewed data).
  Rng r(2024);
  int covered = 0;
  for (int rep = 0; rep < 300; ++rep) {
    const auto x = exponential_sample(r, 80);
    const Interval ci = bootstrap_mean_ci(x, BootstrapSpec{400, static_cast<uint64_t>(rep), 0.90});
    covered += ci.lo <= 1.0 && 1.0 <= ci.hi;
  }
  EXPECT_GT(covered, 245);
  EXPECT_LT(covered, 290);
}

TEST(EvalStats, SummariesUseTheNamedPercentiles) {
  std::vector<double> kl(1000);
  for (size_t i = 0; i < kl.size(); ++i) kl[i] = static_cast<double>(i);  // 0..999
  const KlSummary s = summarize_kl(kl);
  EXPECT_DOUBLE_EQ(s.median, 499.5);
  EXPECT_DOUBLE_EQ(s.p90, 899.1);
  EXPECT_DOUBLE_EQ(s.p99, 989.01);
  EXPECT_NEAR(s.p999, 998.001, 1e-9);
  EXPECT_DOUBLE_EQ(s.max, 999);
  EXPECT_DOUBLE_EQ(s.mean.mean, 499.5);

  const std::vector<double> dp = {-0.3, 0.1, 0.0, 0.2};
  const DeltaPSummary d = summarize_delta_p(dp);
  EXPECT_NEAR(d.rms, std::sqrt((0.09 + 0.01 + 0.04) / 4), 1e-15);
  EXPECT_EQ(d.min, -0.3);
  EXPECT_EQ(d.max, 0.2);
  ASSERT_EQ(d.percentiles.size(), delta_p_percentile_levels().size());
  EXPECT_NEAR(d.percentiles[5], 0.05, 1e-15);  // median of {-0.3, 0, 0.1, 0.2}

  const std::vector<uint8_t> same = {1, 1, 0, 1};
  const Proportion p = same_top1_rate(same);
  EXPECT_EQ(p.k, 3u);
  EXPECT_DOUBLE_EQ(p.rate, 0.75);
}

// ---- top-K truncation bound ------------------------------------------------------------------------

double normal(Rng& r) {  // Box-Muller
  const double u1 = 1 - r.uniform(), u2 = r.uniform();
  return std::sqrt(-2 * std::log(u1)) * std::cos(2 * M_PI * u2);
}

std::vector<double> normalise(std::vector<double> logits) {
  double mx = -INFINITY;
  for (double v : logits) mx = std::max(mx, v);
  long double s = 0;
  for (double v : logits) s += std::exp(v - mx);
  const double lse = mx + std::log(static_cast<double>(s));
  for (double& v : logits) v -= lse;
  return logits;
}

// A random base distribution from one of several families, and a candidate derived from it.
void random_pair(Rng& r, std::vector<double>& base, std::vector<double>& cand) {
  const size_t v = 2 + r.below(r.below(4) == 0 ? 3000 : 300);
  base.resize(v);
  const int family = static_cast<int>(r.below(5));
  const double scale = std::exp(3 * r.uniform() - 1);  // 0.37 .. 7.4
  for (size_t i = 0; i < v; ++i) {
    switch (family) {
      case 0: base[i] = scale * normal(r); break;
      case 1: base[i] = scale * std::tan(M_PI * (r.uniform() - 0.5)); break;  // Cauchy logits: extreme
      case 2: base[i] = -scale * std::log(static_cast<double>(i + 1)); break;  // Zipf: heavy tail of mass
      case 3: base[i] = 0.01 * normal(r); break;                               // nearly flat
      default: base[i] = (i == 0 ? 20.0 : 0.0) + normal(r); break;            // one dominant token
    }
  }
  cand = base;
  const int perturb = static_cast<int>(r.below(4));
  const double eps = std::exp(6 * r.uniform() - 6);  // 0.0025 .. 1
  for (size_t i = 0; i < v; ++i) {
    switch (perturb) {
      case 0: cand[i] += eps * normal(r); break;
      case 1: cand[i] += eps * std::tan(M_PI * (r.uniform() - 0.5)); break;
      case 2: cand[i] = scale * normal(r); break;  // unrelated distribution
      default: cand[i] = base[(i + 1) % v]; break;  // shifted: same shape, wrong tokens
    }
  }
  base = normalise(base);
  cand = normalise(cand);
}

TEST(EvalStats, TopKLumpedKlBoundsTrueKlOnRandomDistributions) {
  Rng r(77);
  int cases = 0, truncated = 0;
  for (int it = 0; it < 3000; ++it) {
    std::vector<double> base, cand;
    random_pair(r, base, cand);
    const size_t k = 1 + r.below(r.below(3) == 0 ? base.size() + 2 : 64);
    const double truth = kl_divergence(base, cand);
    const TopKLogProbs t = truncate_top_k(base, k);
    ASSERT_EQ(t.k(), std::min(k, base.size()));
    const TopKKl b = kl_top_k(t, cand);
    ASSERT_EQ(b.k, t.k());
    const double tol = 1e-12 + 1e-11 * truth;
    ASSERT_LE(b.kl_lumped, truth + tol) << "case " << it;
    ASSERT_GE(b.kl_lumped + b.gap_bound, truth - tol) << "case " << it << " gap " << b.gap_bound;
    if (t.k() == base.size()) {
      EXPECT_NEAR(b.kl_lumped, truth, tol);
      EXPECT_EQ(b.gap_bound, 0.0);
    } else {
      ++truncated;
    }
    ++cases;
  }
  EXPECT_EQ(cases, 3000);
  EXPECT_GT(truncated, 2000);
}

TEST(EvalStats, TopKGapBoundIsAttainedByTheWorstTail) {
  // Build a base whose tail is exactly the maximiser described in stats.h: the bound must then equal
  // the true gap, i.e. it cannot be tightened using only what is stored.
  Rng r(5);
  for (int it = 0; it < 200; ++it) {
    const size_t v = 50 + r.below(400), k = 1 + r.below(20);
    std::vector<double> cand(v);
    for (auto& c : cand) c = 2 * normal(r);
    cand = normalise(cand);
    std::vector<double> p(v, 0.0);
    double t = INFINITY;
    for (size_t i = 0; i < k; ++i) {
      p[i] = 0.05 + r.uniform();
      t = std::min(t, p[i]);
    }
    // Tail tokens are ids >= k; the worst case puts t on the m of them with smallest candidate mass.
    std::vector<size_t> tail(v - k);
    std::iota(tail.begin(), tail.end(), k);
    std::sort(tail.begin(), tail.end(), [&](size_t a, size_t b) { return cand[a] < cand[b]; });
    const size_t m = r.below(std::min<size_t>(tail.size() - 1, 30));
    const double frac = 0.05 + 0.9 * r.uniform();
    for (size_t j = 0; j < m; ++j) p[tail[j]] = t;
    p[tail[m]] = frac * t;
    double total = std::accumulate(p.begin(), p.end(), 0.0);
    std::vector<double> base(v);
    for (size_t i = 0; i < v; ++i) base[i] = std::log(p[i] / total);
    const TopKLogProbs s = truncate_top_k(base, k);
    for (size_t i = 0; i < k; ++i) ASSERT_LT(s.ids[i], static_cast<int32_t>(k));  // ties go to lower ids
    const TopKKl b = kl_top_k(s, cand);
    const double truth = kl_divergence(base, cand);
    EXPECT_NEAR(b.kl_lumped + b.gap_bound, truth, 1e-10 * (1 + truth)) << "case " << it << " v=" << v << " k=" << k << " m=" << m << " frac=" << frac << " t=" << t;
    EXPECT_GT(b.gap_bound, 0.0);
  }
}

TEST(EvalStats, TopKRejectsBadRecordsAndSummarises) {
  const std::vector<double> base = normalise({3, 2, 1, 0, -1});
  TopKLogProbs t = truncate_top_k(base, 2);
  EXPECT_EQ(t.ids, (std::vector<int32_t>{0, 1}));
  EXPECT_NEAR(std::exp(t.rest_logmass), std::exp(base[2]) + std::exp(base[3]) + std::exp(base[4]), 1e-15);
  EXPECT_THROW(kl_top_k(t, std::vector<double>(4, std::log(0.25))), Error);
  TopKLogProbs bad = t;
  bad.ids[1] = 0;
  EXPECT_THROW(kl_top_k(bad, base), Error);
  bad.ids[1] = 9;
  EXPECT_THROW(kl_top_k(bad, base), Error);
  EXPECT_THROW(truncate_top_k(base, 0), Error);
  const std::vector<TopKKl> toks = {{0.1, 0.01, 2}, {0.3, 0.03, 2}};
  const TopKKlSummary s = summarize_kl_top_k(toks);
  EXPECT_EQ(s.k, 2u);
  EXPECT_NEAR(s.lumped.mean.mean, 0.2, 1e-15);
  EXPECT_NEAR(s.mean_gap_bound, 0.02, 1e-15);
  EXPECT_EQ(s.max_gap_bound, 0.03);
  const std::vector<TopKKl> mixed = {{0.1, 0.01, 2}, {0.3, 0.03, 3}};
  EXPECT_THROW(summarize_kl_top_k(mixed), Error);
}

}  // namespace
}  // namespace qb::eval
