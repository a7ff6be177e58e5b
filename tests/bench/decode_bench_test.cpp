// Checks of the bench library on stories260K with tiny lengths: bytes per decode step against an
// independent sum over the GGUF's tensor table, the counts and ordering of the timing samples, the
// Result's Manifest complete, percentile against numpy's default (linear) definition, and bad
// options rejected with one-line errors.
#include <gtest/gtest.h>

#include <string>

#include "../test_paths.h"
#include "quantbench/bench/bandwidth_probe.h"
#include "quantbench/bench/decode_bench.h"
#include "quantbench/core/error.h"
#include "quantbench/core/manifest.h"
#include "quantbench/formats/gguf_reader.h"
#include "quantbench/model/model.h"
#include "quantbench/runtime/cpu/cpu_backend.h"

namespace {

using namespace qb;

// Independent of Model: every 2-D tensor of a block plus the logits matrix (output.weight when
// stored, else token_embd.weight), in bytes as the GGUF tensor table gives them.
int64_t gguf_matrix_bytes(const formats::GgufFile& f) {
  int64_t total = 0;
  for (const auto& t : f.tensors())
    if (t.name.rfind("blk.", 0) == 0 && t.shape.size() == 2) total += int64_t(t.nbytes);
  const auto* out = f.find_tensor("output.weight");
  total += int64_t((out ? out : f.find_tensor("token_embd.weight"))->nbytes);
  return total;
}

TEST(Bench, WeightBytesPerStepMatchesTheGgufTensorTable) {
  auto file = std::shared_ptr<const formats::GgufFile>(formats::GgufFile::open(test::stories260k_path()));
  auto model = model::Model::load(file);
  EXPECT_EQ(bench::weight_bytes_per_step(*model), gguf_matrix_bytes(*file));
  // stories260K by hand: 5 layers x (64x64 x2 + 64x32 x2 + 64x172 x3) f32 + 64x512 f32 logits.
  EXPECT_EQ(bench::weight_bytes_per_step(*model), 4 * (5 * (2 * 4096 + 2 * 2048 + 3 * 11008) + 32768));
}

TEST(Bench, PercentileIsLinearInterpolation) {
  // numpy.percentile([1, 2, 3, 4, 5], [0, 50, 90, 99, 100]) = 1, 3, 4.6, 4.96, 5
  const std::vector<double> v{5, 1, 4, 2, 3};
  EXPECT_DOUBLE_EQ(bench::percentile(v, 0), 1);
  EXPECT_DOUBLE_EQ(bench::percentile(v, 50), 3);
  EXPECT_NEAR(bench::percentile(v, 90), 4.6, 1e-12);
  EXPECT_NEAR(bench::percentile(v, 99), 4.96, 1e-12);
  EXPECT_DOUBLE_EQ(bench::percentile(v, 100), 5);
  EXPECT_THROW(bench::percentile({}, 50), Error);
  const auto s = bench::spread_of({3, 1, 2, 10});
  EXPECT_EQ(s.min, 1);
  EXPECT_EQ(s.median, 2.5);
  EXPECT_EQ(s.max, 10);
}

TEST(Bench, BadOptionsThrowOneLine) {
  auto model = model::Model::load(test::stories260k_path());
  auto expect_error = [&](bench::DecodeBenchOptions o, const std::string& needle) {
    try {
      bench::validate_options(o, model->spec());
      ADD_FAILURE() << "no error for " << needle;
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(needle), std::string::npos) << msg;
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    }
  };
  bench::DecodeBenchOptions o;
  o.batch_sizes = {1, 0};
  expect_error(o, "--batch");
  o = {};
  o.prompt_len = 4000;  // stories260K's context is 2048
  expect_error(o, "context");
  o = {};
  o.gen_len = 0;
  expect_error(o, "--gen-len");
  o = {};
  o.reps = 0;
  expect_error(o, "--reps");
  o = {};
  o.batch_sizes = {};
  expect_error(o, "--batch");
}

TEST(Bench, TinyRunFillsEveryFieldAndOrdersPercentiles) {
  auto model = model::Model::load(test::stories260k_path());
  runtime::cpu::CpuBackend backend(model, {runtime::cpu::CpuMode::Fast, 2});
  bench::DecodeBenchOptions o;
  o.batch_sizes = {1, 3};
  o.prompt_len = 6;
  o.gen_len = 5;
  o.reps = 2;
  o.warmup = 1;
  const auto run = bench::run_decode_bench(backend, *model, o);
  ASSERT_EQ(run.batches.size(), 2u);
  const auto& spec = model->spec();
  for (const auto& bt : run.batches) {
    EXPECT_EQ(bt.step_s.size(), size_t(o.reps * o.gen_len));  // warm-up excluded
    EXPECT_EQ(bt.ttft_s.size(), size_t(o.reps * bt.batch));
    EXPECT_EQ(bt.prefill_tok_s.size(), size_t(o.reps));
    EXPECT_EQ(bt.decode_tok_s.size(), size_t(o.reps));
    // KV: mean context over steps = 6 + (5+1)/2 = 9 positions; 2 x n_layer x kv_dim x 4 bytes each.
    EXPECT_EQ(bt.kv_bytes_per_step, bt.batch * 9 * spec.n_layer * 2 * spec.kv_dim_k() * 4);
    EXPECT_EQ(bt.bytes_per_step, run.weight_bytes + bt.kv_bytes_per_step);
    EXPECT_GT(bt.peak_rss_kib, 0);
  }
  bench::BandwidthOptions bwo;
  bwo.buffer_bytes = size_t(4) << 20;
  bwo.reps = 3;
  bwo.threads = 2;
  const auto bw = bench::measure_bandwidth(bwo);
  ASSERT_EQ(bw.read_gbps.size(), 3u);
  EXPECT_GT(bw.read.min, 0);
  EXPECT_LE(bw.read.min, bw.read.median);
  EXPECT_LE(bw.read.median, bw.read.max);
  EXPECT_LE(bw.copy.min, bw.copy.max);

  const Result r = bench::make_bench_result(run, bw, *model, backend, {test::stories260k_path(), "00", 2});
  EXPECT_EQ(r.regime(), "bench");
  EXPECT_TRUE(r.manifest().missing("").empty());  // every schema field, known or unknown with a reason
  EXPECT_FALSE(r.manifest().find("hardware.gpu")->known);
  EXPECT_TRUE(r.manifest().find("hardware.bandwidth")->known);
  EXPECT_EQ(r.manifest().find("toolchain.backend")->value, backend.describe());
  EXPECT_EQ(r.manifest().find("model.baseline_precision")->value, model->describe_weight_types());
  for (int64_t b : o.batch_sizes) {
    const std::string p = "b" + std::to_string(b) + ".";
    const auto* p50 = r.find_metric(p + "tpot_p50_s");
    const auto* p90 = r.find_metric(p + "tpot_p90_s");
    const auto* p99 = r.find_metric(p + "tpot_p99_s");
    ASSERT_TRUE(p50 && p90 && p99);
    EXPECT_GT(p50->value, 0);
    EXPECT_LE(p50->value, p90->value);
    EXPECT_LE(p90->value, p99->value);
    EXPECT_EQ(p50->direction, Direction::LowerIsBetter);
    EXPECT_EQ(r.find_metric(p + "decode_tok_s")->direction, Direction::HigherIsBetter);
    EXPECT_EQ(r.find_metric(p + "prefill_tok_s")->direction, Direction::HigherIsBetter);
    EXPECT_LE(r.find_metric(p + "ttft_p50_s")->value, r.find_metric(p + "ttft_p99_s")->value);
    EXPECT_GT(r.find_metric(p + "roofline_share")->value, 0);
  }
  const auto table = bench::render_bench_table(r);
  EXPECT_NE(table.find("roofline"), std::string::npos);
}

}  // namespace
