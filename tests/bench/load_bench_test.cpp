// The Poisson load mode on stories260K: every request is served to its full length, the timestamps of
// each request are ordered, the stream cap holds, and continuous batching changes no request's greedy
// tokens (each request is re-run alone on a fresh backend and must produce the same tokens). Timing
// values themselves are not asserted: they are measurements, not results.
#include <gtest/gtest.h>

#include "../test_paths.h"
#include "quantbench/bench/load_bench.h"
#include "quantbench/core/error.h"
#include "quantbench/core/manifest.h"
#include "quantbench/core/rng.h"
#include "quantbench/model/model.h"
#include "quantbench/runtime/cpu/cpu_backend.h"

namespace {

using namespace qb;

std::vector<int32_t> greedy_alone(const std::shared_ptr<const model::Model>& model, const std::vector<int32_t>& prompt,
                                  int64_t gen_len) {
  runtime::cpu::CpuBackend backend(model, {});
  const auto seq = backend.create_sequence();
  runtime::Batch b;
  b.add_sequence(prompt, seq, 0);
  std::vector<int32_t> out;
  for (int64_t i = 0; i < gen_len; ++i) {
    const auto logits = backend.forward(b);
    const auto row = logits.row(0);
    out.push_back(int32_t(std::max_element(row.begin(), row.end()) - row.begin()));
    b = {};
    b.add(out.back(), seq, backend.sequence_length(seq), true);
  }
  return out;
}

TEST(LoadBench, ServesEveryRequestAndBatchingChangesNoToken) {
  auto model = model::Model::load(test::stories260k_path());
  runtime::cpu::CpuBackend backend(model, {});
  bench::LoadBenchOptions o;
  o.rates = {2000.0, 200.0};  // the first arrives all at once (forces queueing behind the cap)
  o.requests = 7;
  o.prompt_len = 6;
  o.gen_len = 5;
  o.max_streams = 3;
  o.seed = 11;
  const auto runs = bench::run_load_bench(backend, o);
  ASSERT_EQ(runs.size(), 2u);

  // The prompts are drawn after the arrivals from the same stream: rebuild them independently.
  Rng rng(o.seed);
  for (const auto& run : runs) {
    EXPECT_LE(run.max_running, o.max_streams);
    ASSERT_EQ(run.requests.size(), size_t(o.requests));
    for (int64_t i = 0; i < o.requests; ++i) (void)rng.uniform();
    for (const auto& q : run.requests) {
      std::vector<int32_t> prompt;
      for (int64_t i = 0; i < o.prompt_len; ++i) prompt.push_back(int32_t(rng.below(uint64_t(model->spec().n_vocab))));
      EXPECT_EQ(q.generated, o.gen_len);
      EXPECT_LE(q.arrival, q.admitted);
      EXPECT_LE(q.admitted, q.first_token);
      EXPECT_LE(q.first_token, q.done);
      EXPECT_EQ(q.output, greedy_alone(model, prompt, o.gen_len));
    }
  }
  Manifest m;  // the caller supplies the model/build/host facts; placeholders here
  for (const auto& f : manifest_schema()) m.set(std::string(f.key), "test");
  const Result r = bench::make_load_result(runs, o, m);
  EXPECT_EQ(r.manifest().value_or("harness.task", ""), "bench load");
  EXPECT_EQ(r.items().size(), size_t(2 * o.requests));
  EXPECT_NE(bench::render_load_table(r).find("TTFT p50"), std::string::npos);
}

TEST(LoadBench, BadOptionsThrow) {
  auto model = model::Model::load(test::stories260k_path());
  runtime::cpu::CpuBackend backend(model, {});
  bench::LoadBenchOptions o;
  o.rates = {0.0};
  EXPECT_THROW(bench::run_load_bench(backend, o), Error);
  o.rates = {1.0};
  o.requests = 0;
  EXPECT_THROW(bench::run_load_bench(backend, o), Error);
  o.requests = 1;
  o.prompt_len = 1 << 20;
  EXPECT_THROW(bench::run_load_bench(backend, o), Error);
}

}  // namespace
