// LayerCalibration's X^T X (runtime/cpu/gemm_f32: f32 sums over chunks of 256 rows, chunks summed
// in double) against a plain row-by-row double sum, at widths and row counts that do not fill the
// tiles or the chunks (200 inputs, rows added as 70 + 1 + 300). Each element must be within the f32
// summation bound: 256 roundings of 2^-24 relative to the sum of |products| it adds.
#include "quantbench/quant/method/calibration.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "quantbench/core/rng.h"

namespace qb::quant {
namespace {

TEST(LayerCalibration, GramWithinF32BoundOfDoubleSum) {
  constexpr int64_t in = 200;
  Rng rng(11);
  std::vector<float> x(size_t(371 * in));
  for (auto& v : x) v = float(std::ldexp(2 * rng.uniform() - 1, int(rng.below(12)) - 6));  // several magnitudes
  LayerCalibration c(in);
  c.add(x.data(), 70);
  c.add(x.data() + 70 * in, 1);
  ThreadPool pool(2);
  c.add(x.data() + 71 * in, 300, &pool);
  ASSERT_EQ(c.count(), 371);
  std::vector<double> ref(size_t(in * in), 0.0), mag(size_t(in * in), 0.0);
  for (int64_t r = 0; r < 371; ++r)
    for (int64_t i = 0; i < in; ++i)
      for (int64_t j = 0; j < in; ++j) {
        const double p = double(x[size_t(r * in + i)]) * double(x[size_t(r * in + j)]);
        ref[size_t(i * in + j)] += p;
        mag[size_t(i * in + j)] += std::fabs(p);
      }
  const auto& g = c.xtx();
  int64_t outside = 0;
  double worst = 0;
  for (size_t k = 0; k < ref.size(); ++k) {
    const double rel = std::fabs(g[k] - ref[k]) / mag[k];
    worst = std::max(worst, rel);
    outside += rel > 256 * std::ldexp(1.0, -24);
  }
  EXPECT_EQ(outside, 0) << "worst relative error " << worst;
  EXPECT_GT(worst, 0.0) << "f32 sums that are all exact: the test data is too easy";
  for (int64_t i = 0; i < in; ++i)
    for (int64_t j = 0; j < i; ++j) ASSERT_EQ(g[size_t(i * in + j)], g[size_t(j * in + i)]) << i << " " << j;
}

TEST(LayerCalibration, NonFiniteRowNamesItsIndex) {
  LayerCalibration c(4);
  std::vector<float> x{1, 2, 3, 4, 1, NAN, 0, 0};
  try {
    c.add(x.data(), 2);
    FAIL() << "no error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("row 1 channel 1"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace qb::quant
