// Load benchmark: requests arrive as a Poisson process at a given rate (exponential inter-arrival
// times from the seeded core Rng), each with prompt_len random tokens and gen_len tokens to generate,
// and are served by continuous batching: every engine step is ONE forward carrying one decode token for
// each running request plus the whole prompt of each request admitted at that step (at most
// max_streams run at once; later arrivals queue). Time to first token therefore includes queueing and
// the prefills of requests admitted beside it, as a user would see it.
//
// Design choice: arrivals follow the wall clock (an open-loop load), so an engine that cannot keep up
// shows growing TTFT rather than a throttled offered rate; each rate's run reports the rate it offered
// and the throughput it achieved, so latency can be read against throughput.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "quantbench/core/result.h"
#include "quantbench/model/model_spec.h"
#include "quantbench/runtime/backend.h"

namespace qb::bench {

struct LoadBenchOptions {
  std::vector<double> rates{1.0};  // offered requests per second, one run each
  int64_t requests = 32;           // per rate
  int64_t prompt_len = 128;
  int64_t gen_len = 64;
  int64_t max_streams = 16;        // requests decoded together at most
  uint64_t seed = 20260101;        // arrival times and prompt tokens
};

// One-line qb::Error for impossible settings (rate <= 0, no requests, lengths beyond the context, ...).
void validate_load_options(const LoadBenchOptions& o, const model::ModelSpec& spec);

struct RequestTiming {  // seconds from the start of the rate's run
  double arrival = 0, admitted = 0, first_token = 0, done = 0;
  int64_t generated = 0;
  std::vector<int32_t> output;  // the greedy tokens, so tests can check batching changed nothing
};

struct LoadRun {
  double offered_rate = 0;  // requests/s
  std::vector<RequestTiming> requests;
  double wall_s = 0;        // first arrival to last completion
  int64_t steps = 0;        // forwards
  int64_t max_running = 0;  // most requests decoded together
};

std::vector<LoadRun> run_load_bench(runtime::Backend& backend, const LoadBenchOptions& options,
                                    bool progress = false);

// The Result (regime "bench", task "load"): per rate, achieved throughput and TTFT / TPOT / end-to-end
// latency percentiles; one item per request. `manifest` carries the model, build and host facts (as
// for the decode bench); the harness fields of the load mode are set here.
Result make_load_result(const std::vector<LoadRun>& runs, const LoadBenchOptions& options, Manifest manifest);

// The stdout table: offered rate, achieved req/s and tok/s, TTFT p50/p99, TPOT p50/p99, e2e p50/p99.
std::string render_load_table(const Result& result);

}  // namespace qb::bench
