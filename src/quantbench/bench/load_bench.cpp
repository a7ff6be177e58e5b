// See load_bench.h.
#include "quantbench/bench/load_bench.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <thread>

#include "quantbench/bench/decode_bench.h"
#include "quantbench/core/error.h"
#include "quantbench/core/progress.h"
#include "quantbench/core/rng.h"
#include "quantbench/runtime/sampler.h"

namespace qb::bench {
namespace {

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

struct Live {  // a request while it runs
  size_t index = 0;
  runtime::SeqId seq = 0;
  int32_t next_token = 0;
};

LoadRun run_one_rate(runtime::Backend& backend, const LoadBenchOptions& o, double rate, Rng& rng,
                     Progress* bar) {
  const int64_t n_vocab = backend.spec().n_vocab;
  LoadRun run;
  run.offered_rate = rate;
  run.requests.resize(size_t(o.requests));
  std::vector<std::vector<int32_t>> prompts(size_t(o.requests));
  double t = 0;
  for (auto& r : run.requests) {
    t += -std::log(1.0 - rng.uniform()) / rate;  // exponential inter-arrival time, mean 1/rate
    r.arrival = t;
  }
  for (auto& p : prompts)
    for (int64_t i = 0; i < o.prompt_len; ++i) p.push_back(int32_t(rng.below(uint64_t(n_vocab))));

  std::vector<Live> running;
  size_t next_arrival = 0, done = 0;
  const auto t0 = clock_type::now();
  while (done < run.requests.size()) {
    double now = seconds_since(t0);
    if (running.empty() && next_arrival < run.requests.size() && run.requests[next_arrival].arrival > now) {
      std::this_thread::sleep_for(std::chrono::duration<double>(run.requests[next_arrival].arrival - now));
      now = seconds_since(t0);
    }
    runtime::Batch batch;
    for (const Live& l : running)
      batch.add(l.next_token, l.seq, backend.sequence_length(l.seq), true);
    std::vector<Live> admitted;
    while (next_arrival < run.requests.size() && run.requests[next_arrival].arrival <= now &&
           int64_t(running.size() + admitted.size()) < o.max_streams) {
      Live l{next_arrival, backend.create_sequence(o.prompt_len + o.gen_len + 1), 0};
      run.requests[next_arrival].admitted = now;
      batch.add_sequence(prompts[next_arrival], l.seq, 0);
      admitted.push_back(l);
      ++next_arrival;
    }
    if (batch.size() == 0) continue;  // nothing running and the sleep ended just before the next arrival
    const runtime::Logits logits = backend.forward(batch);
    const double after = seconds_since(t0);
    ++run.steps;
    // Rows come in batch order: first the running requests' decode tokens, then one per admitted prompt.
    size_t row = 0;
    std::vector<Live> still;
    auto take_token = [&](Live& l, bool first) {
      RequestTiming& r = run.requests[l.index];
      l.next_token = runtime::argmax(logits.row(row++));
      r.output.push_back(l.next_token);
      if (first) r.first_token = after;
      if (++r.generated < o.gen_len) {
        still.push_back(l);
        return;
      }
      r.done = after;
      backend.free_sequence(l.seq);
      ++done;
      if (bar) bar->advance(1);
    };
    for (Live& l : running) take_token(l, false);
    for (Live& l : admitted) take_token(l, true);
    running = std::move(still);
    run.max_running = std::max<int64_t>(run.max_running, int64_t(running.size()));
  }
  run.wall_s = seconds_since(t0) - run.requests.front().arrival;
  return run;
}

std::vector<double> collect(const LoadRun& run, double (*f)(const RequestTiming&, int64_t), int64_t gen_len) {
  std::vector<double> v;
  for (const auto& r : run.requests) v.push_back(f(r, gen_len));
  return v;
}

double ttft(const RequestTiming& r, int64_t) { return r.first_token - r.arrival; }
double e2e(const RequestTiming& r, int64_t) { return r.done - r.arrival; }
double tpot(const RequestTiming& r, int64_t gen) { return gen > 1 ? (r.done - r.first_token) / double(gen - 1) : 0.0; }
double queued(const RequestTiming& r, int64_t) { return r.admitted - r.arrival; }

std::string rate_prefix(double rate) { return fmt::format("rate{:g}.", rate); }

}  // namespace

void validate_load_options(const LoadBenchOptions& o, const model::ModelSpec& spec) {
  QB_CHECK(!o.rates.empty(), "--load-rate: give at least one request rate");
  for (double r : o.rates) QB_CHECK(std::isfinite(r) && r > 0, "--load-rate: rate {} must be > 0 requests/s", r);
  QB_CHECK(o.requests >= 1, "--load-requests must be >= 1, got {}", o.requests);
  QB_CHECK(o.prompt_len >= 1, "--prompt-len must be >= 1, got {}", o.prompt_len);
  QB_CHECK(o.gen_len >= 1, "--gen-len must be >= 1, got {}", o.gen_len);
  QB_CHECK(o.max_streams >= 1, "--max-streams must be >= 1, got {}", o.max_streams);
  QB_CHECK(o.prompt_len + o.gen_len <= spec.n_ctx_train,
           "prompt_len + gen_len = {} exceeds the model's context of {} tokens", o.prompt_len + o.gen_len,
           spec.n_ctx_train);
}

std::vector<LoadRun> run_load_bench(runtime::Backend& backend, const LoadBenchOptions& o, bool progress) {
  validate_load_options(o, backend.spec());
  Rng rng(o.seed);
  std::vector<LoadRun> runs;
  Progress bar("load", int64_t(o.rates.size()) * o.requests, progress);
  for (double rate : o.rates) runs.push_back(run_one_rate(backend, o, rate, rng, &bar));
  bar.finish();
  return runs;
}

Result make_load_result(const std::vector<LoadRun>& runs, const LoadBenchOptions& o, Manifest m) {
  const std::string rates = fmt::format("{:g}", fmt::join(o.rates, ","));
  m.set("harness.task", "bench load");
  m.set("harness.task_version", "1");
  m.set("harness.items", fmt::format("{} requests at each of {} rates", o.requests, o.rates.size()));
  m.set("harness.generation",
        fmt::format("Poisson arrivals at {} requests/s; prompt_len={}, gen_len={}, greedy argmax; continuous "
                    "batching, at most {} streams, prompts prefilled whole in the step that admits them",
                    rates, o.prompt_len, o.gen_len, o.max_streams));
  m.set("harness.seed", fmt::format("arrivals and prompt tokens: core Rng (xoshiro256**) seed {}", o.seed));
  m.set("harness.batch_size", fmt::format("dynamic, at most {} streams", o.max_streams));

  Result r("bench", "load", std::move(m));
  r.set_misses(
      "Speed only: says nothing about accuracy. Random prompt tokens, one fixed prompt and output length, greedy "
      "sampling, a single process; no preemption, chunked prefill or prefix caching; a short run's p99 rests on "
      "few requests.");
  for (const auto& run : runs) {
    const std::string p = rate_prefix(run.offered_rate);
    const auto ttfts = collect(run, ttft, o.gen_len), e2es = collect(run, e2e, o.gen_len),
               tpots = collect(run, tpot, o.gen_len), queues = collect(run, queued, o.gen_len);
    int64_t tokens = 0;
    for (const auto& q : run.requests) tokens += q.generated;
    const double req_s = double(run.requests.size()) / run.wall_s, tok_s = double(tokens) / run.wall_s;
    auto add = [&](const std::string& name, double v, Direction d, const std::string& agg, const std::string& unit) {
      r.add_metric({p + name, v, {}, {}, d, agg, unit});
    };
    add("offered_req_s", run.offered_rate, Direction::Neither, "set", "req/s");
    add("achieved_req_s", req_s, Direction::HigherIsBetter, "requests / wall", "req/s");
    add("output_tok_s", tok_s, Direction::HigherIsBetter, "generated tokens / wall", "tok/s");
    for (auto [name, v] : {std::pair{"ttft", &ttfts}, {"tpot", &tpots}, {"e2e", &e2es}, {"queue", &queues}})
      for (double q : {50.0, 90.0, 99.0})
        add(fmt::format("{}_p{:g}_s", name, q), percentile(*v, q), Direction::LowerIsBetter, fmt::format("p{:g}", q), "s");
    add("max_running", double(run.max_running), Direction::Neither, "max", "requests");
    for (size_t i = 0; i < run.requests.size(); ++i) {
      const auto& q = run.requests[i];
      r.add_item({{"key", fmt::format("{}{}", p, i)}, {"offered_req_s", run.offered_rate}, {"arrival_s", q.arrival},
                  {"queue_s", q.admitted - q.arrival}, {"ttft_s", q.first_token - q.arrival},
                  {"e2e_s", q.done - q.arrival}, {"generated", q.generated}});
    }
  }
  return r;
}

std::string render_load_table(const Result& result) {
  std::vector<double> rates;
  for (const auto& mt : result.metrics())
    if (mt.name.ends_with(".offered_req_s")) rates.push_back(mt.value);
  auto get = [&](double rate, const std::string& name) {
    const std::string key = rate_prefix(rate) + name;
    for (const auto& mt : result.metrics())
      if (mt.name == key) return mt.value;
    return std::nan("");
  };
  std::string s = fmt::format("{:>9} {:>9} {:>9} {:>10} {:>10} {:>10} {:>10} {:>9} {:>9}\n", "offered/s", "done/s",
                              "tok/s", "TTFT p50", "TTFT p99", "TPOT p50", "TPOT p99", "e2e p50", "e2e p99");
  for (double rate : rates)
    s += fmt::format("{:>9.3g} {:>9.3g} {:>9.1f} {:>9.3f}s {:>9.3f}s {:>8.1f}ms {:>8.1f}ms {:>8.2f}s {:>8.2f}s\n", rate,
                     get(rate, "achieved_req_s"), get(rate, "output_tok_s"), get(rate, "ttft_p50_s"),
                     get(rate, "ttft_p99_s"), 1e3 * get(rate, "tpot_p50_s"), 1e3 * get(rate, "tpot_p99_s"),
                     get(rate, "e2e_p50_s"), get(rate, "e2e_p99_s"));
  return s;
}

}  // namespace qb::bench
