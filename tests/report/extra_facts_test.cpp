// A report's manifest rows outside the schema: per-tensor facts collapse into one counted row, other
// facts pass through, and nothing is lost from the counts.
#include <gtest/gtest.h>

#include "quantbench/core/manifest.h"
#include "quantbench/report/report_data.h"

namespace qb::report {
namespace {

TEST(ExtraFactRows, PerTensorFactsCollapseWithCounts) {
  Manifest m;
  m.set("model.name", "m");  // in the schema: not an extra row
  m.set("scheme.tensor.blk.0.attn_q.weight", "int4 g128 via rtn");
  m.set("scheme.tensor.blk.1.attn_q.weight", "int4 g128 via rtn");
  m.set("scheme.tensor.token_embd.weight", "q8_0 (kept as stored)");
  m.set("scheme.folded.blk.0.ffn_up", "divided by awq input scales");
  const auto rows = extra_fact_rows(m);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].first, "scheme.folded.blk.0.ffn_up");
  EXPECT_EQ(rows[1].first, "scheme.tensor.* (3 tensors; each named in the store)");
  EXPECT_EQ(rows[1].second, "2 x int4 g128 via rtn; 1 x q8_0 (kept as stored)");
}

}  // namespace
}  // namespace qb::report
