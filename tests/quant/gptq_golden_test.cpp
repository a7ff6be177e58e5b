// GPTQ against an independent NumPy implementation (tests/golden/gptq/make_golden.py, following the
// paper's Algorithm 1 and the reference fasterquant). Inputs are regenerated here bit-identically;
// the golden file holds the NumPy codes, scales, zero points and output errors.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "method_test_data.h"
#include "quantbench/quant/method/method.h"

namespace qb::quant {
namespace {

nlohmann::json load_golden() {
  std::ifstream f(QB_SOURCE_DIR "/tests/golden/gptq/gptq_golden.json");
  EXPECT_TRUE(f.good());
  return nlohmann::json::parse(f);
}

double output_error_of(const QuantizedTensor& q, const testing::Problem& p) {
  std::vector<float> deq(static_cast<size_t>(p.rows * p.cols));
  dequantize(q, deq.data());
  double e = 0;
  for (int64_t s = 0; s < p.samples; ++s)
    for (int64_t r = 0; r < p.rows; ++r) {
      double y = 0;
      for (int64_t j = 0; j < p.cols; ++j)
        y += (double(p.w[size_t(r * p.cols + j)]) - deq[size_t(r * p.cols + j)]) * p.x[size_t(s * p.cols + j)];
      e += y * y;
    }
  return e;
}

TEST(GptqGolden, MatchesIndependentNumpyImplementation) {
  const auto g = load_golden();
  const auto p = testing::make_problem(g["rows"], g["cols"], g["samples"], g["latent"], g["seed"]);
  // Same inputs as Python (checked by checksums before anything else).
  double sw = 0, sx = 0;
  for (float v : p.w) sw += v;
  for (float v : p.x) sx += double(v) * v;
  ASSERT_DOUBLE_EQ(sw, g["checksum_w"].get<double>());
  ASSERT_DOUBLE_EQ(sx, g["checksum_x"].get<double>());

  LayerCalibration cal(p.cols);
  cal.add(p.x.data(), p.samples);
  const auto reg = builtin_methods();
  for (const auto& c : g["configs"]) {
    SCOPED_TRACE(c["name"].get<std::string>());
    MethodOptions o;
    o.set("damp", c["damp"].get<double>());
    o.set("block_size", c["block"].get<int64_t>());
    o.set("act_order", c["act_order"].get<bool>());
    o.set("static_groups", c["static_groups"].get<bool>());
    const auto m = reg.create("gptq", o);
    QuantLayout l;
    l.format = *int_format(c["bits"].get<int>());
    const int64_t group = c["group"];
    l.granularity = group ? Granularity::Group : Granularity::Channel;
    l.group_size = group;
    l.asymmetric = c["asym"];
    const auto res = quantize_layer(*m, LayerInput{"golden", p.w.data(), p.rows, p.cols, &cal}, l);
    const auto& q = res.weight;

    const std::string codes = c["codes"];
    int64_t mismatched = 0, off_by_more = 0;
    for (int64_t i = 0; i < p.rows * p.cols; ++i) {
      const int want = std::stoi(codes.substr(size_t(2 * i), 2), nullptr, 16);
      const int got = q.code(i / p.cols, i % p.cols);
      if (got != want) ++mismatched;
      if (std::abs(got - want) > 1) ++off_by_more;
    }
    // Double precision on both sides, different Cholesky/inverse and summation orders: a code may
    // flip only where a value sits within rounding of a half-step (a tie); allow 0.2% such flips.
    EXPECT_EQ(off_by_more, 0);
    EXPECT_LE(mismatched, p.rows * p.cols / 500) << mismatched << " codes differ";
    const auto& scales = c["scales"];
    const auto& zeros = c["zeros"];
    int64_t scale_diff = 0;
    for (int64_t r = 0; r < p.rows; ++r)
      for (int64_t k = 0; k < q.groups_per_row(); ++k) {
        const auto gp = q.params(r, k);
        const size_t i = size_t(r * q.groups_per_row() + k);
        if (gp.scale != scales[i].get<double>() || gp.zero != zeros[i].get<int>()) ++scale_diff;
      }
    EXPECT_LE(scale_diff, q.num_scales() / 100) << scale_diff << " group params differ";
    const double err = output_error_of(q, p), want_err = c["output_error"];
    EXPECT_NEAR(err, want_err, (mismatched ? 1e-2 : 1e-7) * want_err);
    EXPECT_LT(err, 0.5 * c["rtn_output_error"].get<double>());  // GPTQ really helps on this data
    std::printf("[ golden ] %s: %lld/%lld codes differ, output error %.6f (numpy %.6f)\n",
                c["name"].get<std::string>().c_str(), (long long)mismatched, (long long)(p.rows * p.cols), err, want_err);
  }
}

}  // namespace
}  // namespace qb::quant
