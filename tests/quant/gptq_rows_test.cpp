// GPTQ's rows are independent given the Hessian: quantize_model stacks matrices that share an input
// (q/k/v, gate/up) into one GPTQ call, and the method spreads rows over a thread pool. Both rely on
// the codes and params of a row not depending on the other rows or on the thread count; this checks
// it bit for bit, for grouped (params found mid-sweep) and act-order configurations.
#include <gtest/gtest.h>

#include "method_test_data.h"
#include "quantbench/quant/method/method.h"

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
    QuantLayout l;
    l.format = *int_format(3);
    l.granularity = Granularity::Group;
    l.group_size = 32;
    l.asymmetric = true;
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

}  // namespace
}  // namespace qb::quant
