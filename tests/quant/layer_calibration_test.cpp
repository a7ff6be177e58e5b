// LayerCalibration's tiled X^T X against a plain row-by-row double sum. Products of two floats are
// exact in double and both add the rows in the same order, so the two must agree bit for bit, at
// widths and row counts that do not fill the tiles (200 inputs, rows added as 70 + 1 + 80).
#include "quantbench/quant/method/calibration.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "quantbench/core/rng.h"

namespace qb::quant {
namespace {

TEST(LayerCalibration, TiledGramEqualsRowByRowSum) {
  constexpr int64_t in = 200;
  Rng rng(11);
  std::vector<float> x(size_t(151 * in));
  for (auto& v : x) v = float(std::ldexp(2 * rng.uniform() - 1, int(rng.below(12)) - 6));  // several magnitudes
  LayerCalibration c(in);
  c.add(x.data(), 70);
  c.add(x.data() + 70 * in, 1);
  c.add(x.data() + 71 * in, 80);
  ASSERT_EQ(c.count(), 151);
  std::vector<double> ref(size_t(in * in), 0.0);
  for (int64_t r = 0; r < 151; ++r)
    for (int64_t i = 0; i < in; ++i)
      for (int64_t j = 0; j < in; ++j)
        ref[size_t(i * in + j)] += double(x[size_t(r * in + i)]) * double(x[size_t(r * in + j)]);
  const auto& g = c.xtx();
  int64_t differ = 0;
  for (size_t k = 0; k < ref.size(); ++k) differ += g[k] != ref[k];
  EXPECT_EQ(differ, 0);
  EXPECT_EQ(g[size_t(3 * in + 190)], g[size_t(190 * in + 3)]);
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
