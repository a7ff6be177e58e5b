// The fast path's f32 attention against the double reference (attention_head), on fresh random
// inputs at several head widths (including ones that are not a multiple of the 16 lanes), lengths,
// soft-capping and sliding windows. Bound: the output is a convex combination of value rows, so its
// f32 error is at most a few ulps of max|v| per term of the sums; we allow 1e-5 * max|v| + 1e-5 *
// (scale of the score error through the softmax), i.e. 2e-5 relative to max|v|, with scores up to ~10.
#include "quantbench/runtime/cpu/attention.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "quantbench/core/rng.h"

namespace qb::runtime::cpu {
namespace {

std::vector<float> random_values(Rng& rng, size_t n, float amp) {
  std::vector<float> v(n);
  for (auto& x : v) x = float((2 * rng.uniform() - 1) * amp);
  return v;
}

TEST(AttentionF32, MatchesDoubleReference) {
  Rng rng(20261127);
  int cases = 0;
  for (int64_t hd : {8, 64, 72, 128}) {
    for (int64_t pos : {0, 1, 6, 31, 300}) {
      for (float softcap : {0.0f, 50.0f}) {
        for (int64_t window : {int64_t(0), int64_t(17)}) {
          AttentionParams p;
          p.head_dim_k = p.head_dim_v = hd;
          p.k_stride = p.v_stride = hd + 5;  // rows not packed, as in a cache of several heads
          p.scale = 1.0f / std::sqrt(float(hd));
          p.softcap = softcap;
          p.window = window;
          const size_t rows = size_t(pos + 1) * size_t(p.k_stride);
          // Amplitudes that give scores of a few units: a softmax that is neither flat nor one-hot.
          auto q = random_values(rng, size_t(hd), 2.0f);
          auto k = random_values(rng, rows, 2.0f);
          auto v = random_values(rng, rows, 3.0f);
          std::vector<float> ref(static_cast<size_t>(hd));
          std::vector<float> fast(static_cast<size_t>(hd), std::numeric_limits<float>::quiet_NaN());
          std::vector<double> sd;
          std::vector<float> sf;
          attention_head(p, q.data(), k.data(), v.data(), pos, ref.data(), sd);
          attention_head_f32(p, q.data(), k.data(), v.data(), pos, fast.data(), sf);
          for (int64_t i = 0; i < hd; ++i)
            ASSERT_NEAR(fast[size_t(i)], ref[size_t(i)], 2e-5 * 3.0)
                << "hd " << hd << " pos " << pos << " softcap " << softcap << " window " << window << " i " << i;
          ++cases;
        }
      }
    }
  }
  EXPECT_EQ(cases, 80);
}

// attention_run_gemm (a prefill run through two GEMMs) against attention_head per token, for runs
// that start at 0 and later (pos0 > 0, keys before the run already cached), with soft-capping and
// windows, head widths that are not multiples of the tiles, strided q / out rows; same bound.
TEST(AttentionRunGemm, MatchesDoubleReferencePerToken) {
  Rng rng(99);
  ThreadPool pool(2);
  for (int64_t hd : {8, 72}) {
    for (auto [pos0, nt] : {std::pair<int64_t, int64_t>{0, 40}, {23, 37}}) {
      for (float softcap : {0.0f, 50.0f}) {
        for (int64_t window : {int64_t(0), int64_t(17)}) {
          AttentionParams p;
          p.head_dim_k = p.head_dim_v = hd;
          p.k_stride = p.v_stride = hd + 5;
          p.scale = 1.0f / std::sqrt(float(hd));
          p.softcap = softcap;
          p.window = window;
          const int64_t qs = hd + 3, os = hd + 2;
          auto q = random_values(rng, size_t(nt * qs), 2.0f);
          auto k = random_values(rng, size_t((pos0 + nt) * p.k_stride), 2.0f);
          auto v = random_values(rng, size_t((pos0 + nt) * p.v_stride), 3.0f);
          std::vector<float> out(size_t(nt * os), std::numeric_limits<float>::quiet_NaN()), scratch;
          attention_run_gemm(p, q.data(), qs, nt, pos0, k.data(), v.data(), out.data(), os, pool, scratch);
          std::vector<float> ref(static_cast<size_t>(hd));
          std::vector<double> sd;
          for (int64_t t = 0; t < nt; ++t) {
            attention_head(p, q.data() + t * qs, k.data(), v.data(), pos0 + t, ref.data(), sd);
            for (int64_t i = 0; i < hd; ++i)
              ASSERT_NEAR(out[size_t(t * os + i)], ref[size_t(i)], 2e-5 * 3.0)
                  << "hd " << hd << " pos0 " << pos0 << " t " << t << " softcap " << softcap << " window " << window;
          }
        }
      }
    }
  }
}

// A window of one key returns that key's value row exactly, on both paths.
TEST(AttentionF32, WindowOfOneReturnsTheLastValue) {
  Rng rng(7);
  AttentionParams p;
  p.head_dim_k = p.head_dim_v = p.k_stride = p.v_stride = 24;
  p.window = 1;
  auto q = random_values(rng, 24, 1.0f);
  auto k = random_values(rng, 24 * 10, 1.0f);
  auto v = random_values(rng, 24 * 10, 1.0f);
  std::vector<float> out(24), scratch;
  attention_head_f32(p, q.data(), k.data(), v.data(), 9, out.data(), scratch);
  for (int i = 0; i < 24; ++i) EXPECT_EQ(out[size_t(i)], v[size_t(9 * 24 + i)]);
}

}  // namespace
}  // namespace qb::runtime::cpu
