// GPTQ's rows are independent given the Hessian: quantize_model stacks matrices that share an input
// (q/k/v, gate/up) into one GPTQ call, and the method spreads rows over a thread pool. Both rely on
// the codes and params of a row not depending on the other rows or on the thread count; this checks
// it bit for bit, for grouped (params found mid-sweep) and act-order configurations. Also here: the
// mse range search of GPTQ's group params.
#include <gtest/gtest.h>

#include <cmath>

#include "method_test_data.h"
#include "quantbench/quant/method/method.h"
#include "quantbench/quant/qformat/int_format.h"
#include "quantbench/quant/qformat/quantized_tensor.h"

namespace qb::quant {
namespace {

TEST(GptqRows, StackedAndThreadedRunsGiveTheSameCodesAsSeparateOnes) {
  const auto p = testing::make_problem(40, 96, 300, 6, 21);
  LayerCalibration cal(p.cols);
  cal.add(p.x.data(), p.samples);
  for (bool act_order : {false, true}) {
    MethodOptions o;
    o.set("block_size", int64_t(32));
    o.set("act_order", act_order);
    o.set("static_groups", act_order);
    const auto m = builtin_methods().create("gptq", o);
    const QuantLayout l = testing::int_group_layout(3, 32, /*asymmetric=*/true);
    ThreadPool pool(3);
    LayerInput all{"stacked", p.w.data(), p.rows, p.cols, &cal, &pool};
    const QuantizedTensor whole = quantize_layer(*m, all, l).weight;
    // The first 15 rows alone, then the other 25 alone, without a pool.
    const QuantizedTensor top = quantize_layer(*m, LayerInput{"top", p.w.data(), 15, p.cols, &cal}, l).weight;
    const QuantizedTensor bottom =
        quantize_layer(*m, LayerInput{"bottom", p.w.data() + 15 * p.cols, 25, p.cols, &cal}, l).weight;
    int64_t differ = 0;
    for (int64_t r = 0; r < p.rows; ++r) {
      const QuantizedTensor& part = r < 15 ? top : bottom;
      const int64_t pr = r < 15 ? r : r - 15;
      for (int64_t c = 0; c < p.cols; ++c) differ += whole.code(r, c) != part.code(pr, c);
      for (int64_t k = 0; k < whole.groups_per_row(); ++k) {
        const GroupParams a = whole.params(r, k), b = part.params(pr, k);
        differ += a.scale != b.scale || a.zero != b.zero;
      }
    }
    EXPECT_EQ(differ, 0) << "act_order " << act_order;
  }
}


// The mse option (the reference quantizer's range search): with static groups every group's params
// come from the original weights before any update, so each must be the shrink p * [min, max],
// p = 1 - i/100 for i < 80, with the least sum |q(w) - w|^2.4 over its columns, found here by an
// independent loop over the public grid functions; and the search must do no worse than the full range.
TEST(GptqRows, MseOptionPicksTheBestShrunkRangePerGroup) {
  const auto p = testing::make_problem(6, 96, 200, 6, 23);
  LayerCalibration cal(p.cols);
  cal.add(p.x.data(), p.samples);
  const QuantLayout l = testing::int_group_layout(3, 32, /*asymmetric=*/true);
  MethodOptions o;
  o.set("mse", true);
  o.set("static_groups", true);
  const auto m = builtin_methods().create("gptq", o);
  EXPECT_TRUE(std::get<bool>(m->config().at("mse")));
  const LayerResult res = quantize_layer(*m, LayerInput{"w", p.w.data(), p.rows, p.cols, &cal}, l);
  const QuantizedTensor& q = res.weight;
  ASSERT_FALSE(res.notes.empty());
  EXPECT_NE(res.notes[0].find("mse range search"), std::string::npos) << res.notes[0];  // the manifest says so
  int64_t wrong = 0, groups = 0, shrunk = 0;
  for (int64_t r = 0; r < p.rows; ++r)
    for (int64_t k = 0; k < q.groups_per_row(); ++k, ++groups) {
      const float* w = p.w.data() + r * p.cols + k * 32;
      float lo = 0, hi = 0;
      for (int j = 0; j < 32; ++j) lo = std::min(lo, w[j]), hi = std::max(hi, w[j]);
      auto err = [&](GroupParams gp) {
        double e = 0;
        for (int j = 0; j < 32; ++j)
          e += std::pow(std::fabs(double(decode_code(l, encode_value(l, w[j], gp), gp)) - w[j]), 2.4);
        return e;
      };
      double best = INFINITY;
      GroupParams want{};
      for (int i = 0; i < 80; ++i) {
        const double s = 1.0 - i / 100.0;
        const GroupParams gp = int_params_from_range(3, true, float(s * lo), float(s * hi), l.scale_type);
        if (err(gp) < best) best = err(gp), want = gp;
      }
      const GroupParams got = q.params(r, k);
      wrong += got.scale != want.scale || got.zero != want.zero;
      shrunk += got.scale < int_params_from_range(3, true, lo, hi, l.scale_type).scale;
      EXPECT_LE(err(got), err(int_params_from_range(3, true, lo, hi, l.scale_type)));
    }
  EXPECT_EQ(wrong, 0);
  EXPECT_GT(shrunk, 0) << "no group chose a shrunk range: the search did nothing on " << groups << " groups";
}

}  // namespace
}  // namespace qb::quant
