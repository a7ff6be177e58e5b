// AWQ's scale search and the clip searches (rtn_clip, imatrix, AWQ's) spread rows over the layer's
// thread pool; each row's error and chosen ratio are kept per row and summed in row order, so the
// result must be bit-identical with and without a pool, whatever its size. This checks it.
#include <gtest/gtest.h>

#include "method_test_data.h"
#include "quantbench/quant/method/method.h"

namespace qb::quant {
namespace {

int64_t count_differences(const LayerResult& a, const LayerResult& b) {
  int64_t differ = 0;
  for (int64_t r = 0; r < a.weight.rows; ++r) {
    for (int64_t c = 0; c < a.weight.cols; ++c) differ += a.weight.code(r, c) != b.weight.code(r, c);
    for (int64_t k = 0; k < a.weight.groups_per_row(); ++k) {
      const GroupParams x = a.weight.params(r, k), y = b.weight.params(r, k);
      differ += x.scale != y.scale || x.zero != y.zero;
    }
  }
  differ += a.input_scales != b.input_scales;
  differ += a.notes != b.notes;  // the chosen alpha and the mean clip ratio
  return differ;
}

TEST(SearchThreads, AwqImatrixAndRtnClipDoNotDependOnThePool) {
  const auto p = testing::make_problem(37, 96, 200, 6, 5);
  LayerCalibration cal(p.cols);
  cal.add(p.x.data(), p.samples);
  const QuantLayout l = testing::int_group_layout(3, 32, /*asymmetric=*/true);
  for (const char* method : {"awq", "imatrix", "rtn_clip"}) {
    const auto m = builtin_methods().create(method);
    const LayerResult alone = quantize_layer(*m, LayerInput{"w", p.w.data(), p.rows, p.cols, &cal}, l);
    for (int threads : {2, 3}) {
      ThreadPool pool(threads);
      const LayerResult pooled = quantize_layer(*m, LayerInput{"w", p.w.data(), p.rows, p.cols, &cal, &pool}, l);
      EXPECT_EQ(count_differences(alone, pooled), 0) << method << " with " << threads << " threads";
    }
  }
}

}  // namespace
}  // namespace qb::quant
