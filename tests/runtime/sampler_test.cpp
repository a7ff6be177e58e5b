// Sampler: determinism (same seed, same tokens; the RNG's stream is pinned by known values so it is
// the same on every platform), and distribution sanity (empirical frequencies match the softmax of
// the logits at the temperature; top-k and top-p cut where they should).
#include "quantbench/runtime/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "quantbench/core/error.h"

namespace qb::runtime {
namespace {

TEST(Rng, StreamIsPinned) {
  // splitmix64 seeding of xoshiro256**: the first outputs for seed 0 as printed by an independent
  // Python implementation, tests/golden/sampler/make_rng_values.py.
  Rng r(0);
  const uint64_t a = r.next(), b = r.next();
  Rng r2(0);
  EXPECT_EQ(r2.next(), a);
  EXPECT_EQ(r2.next(), b);
  EXPECT_EQ(a, 0x99EC5F36CB75F2B4ull);
  EXPECT_EQ(b, 0xBF6E1F784956452Aull);
  Rng r3(1);
  EXPECT_NE(r3.next(), a);
  for (int i = 0; i < 1000; ++i) {
    const double u = r.uniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
  }
}

TEST(Sampler, GreedyIsArgmaxWithLowestIdOnTies) {
  Sampler s({});
  const std::vector<float> l = {0.1f, 3.0f, -1.0f, 3.0f};
  EXPECT_EQ(s.sample(l), 1);
  EXPECT_EQ(argmax(l), 1);
}

TEST(Sampler, SameSeedSameTokens) {
  std::vector<float> l(50);
  for (size_t i = 0; i < l.size(); ++i) l[i] = float(std::sin(double(i) * 1.7) * 2);
  SamplerConfig c{0.8f, 20, 0.9f, 42};
  Sampler a(c), b(c), other({0.8f, 20, 0.9f, 43});
  std::vector<int32_t> ta, tb, tc;
  for (int i = 0; i < 200; ++i) {
    ta.push_back(a.sample(l));
    tb.push_back(b.sample(l));
    tc.push_back(other.sample(l));
  }
  EXPECT_EQ(ta, tb);
  EXPECT_NE(ta, tc);
}

TEST(Sampler, FrequenciesMatchTemperatureSoftmax) {
  const std::vector<float> l = {1.0f, 2.0f, 0.0f, 1.5f};
  const double t = 0.7;
  double z = 0;
  std::vector<double> p(l.size());
  for (size_t i = 0; i < l.size(); ++i) z += (p[i] = std::exp(l[i] / t));
  Sampler s({float(t), 0, 1.0f, 7});
  const int n = 40000;
  std::vector<int> count(l.size());
  for (int i = 0; i < n; ++i) ++count[size_t(s.sample(l))];
  for (size_t i = 0; i < l.size(); ++i) {
    const double want = p[i] / z, got = double(count[i]) / n;
    const double sigma = std::sqrt(want * (1 - want) / n);
    EXPECT_NEAR(got, want, 5 * sigma) << "token " << i;
  }
}

TEST(Sampler, TopKAndTopPCut) {
  const std::vector<float> l = {0.0f, 3.0f, 1.0f, 2.0f, -1.0f};  // order: 1, 3, 2, 0, 4
  Sampler k2({1.0f, 2, 1.0f, 1});
  auto d = k2.distribution(l);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].first, 1);
  EXPECT_EQ(d[1].first, 3);
  EXPECT_NEAR(d[0].second, 1 / (1 + std::exp(-1.0)), 1e-12);
  for (int i = 0; i < 500; ++i) {
    const int32_t t = k2.sample(l);
    ASSERT_TRUE(t == 1 || t == 3);
  }
  // Softmax masses: 0.6439, 0.2369, 0.0871, 0.0321, 0.0118. top_p 0.85 keeps the first two (0.881).
  Sampler p85({1.0f, 0, 0.85f, 1});
  d = p85.distribution(l);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_NEAR(d[0].second + d[1].second, 1.0, 1e-12);
  Sampler p50({1.0f, 0, 0.5f, 1});
  EXPECT_EQ(p50.distribution(l).size(), 1u);
}

TEST(Sampler, RejectsBadInput) {
  EXPECT_THROW(Sampler({1.0f, 0, 0.0f, 1}), Error);
  EXPECT_THROW(Sampler({1.0f, 0, 1.5f, 1}), Error);
  Sampler s({1.0f, 0, 1.0f, 1});
  EXPECT_THROW(s.sample(std::vector<float>{}), Error);
  EXPECT_THROW(s.sample(std::vector<float>{1.0f, NAN}), Error);
}

}  // namespace
}  // namespace qb::runtime
