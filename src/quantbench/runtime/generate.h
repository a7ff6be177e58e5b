// generate: token ids in, token ids out. One batched forward for the whole prompt (prefill), then
// one token per forward (decode) until a stop id or max_new_tokens. Timings are wall-clock for each
// phase, kept apart because they answer different questions (compute-bound vs bandwidth-bound).
// Text never appears here: tokenization is the caller's business.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "quantbench/runtime/backend.h"
#include "quantbench/runtime/sampler.h"

namespace qb::runtime {

struct GenerateOptions {
  int64_t max_new_tokens = 64;
  SamplerConfig sampler;
  bool stop_at_eos = true;            // stop at any of spec().stop_ids (the stop token is returned)
  std::vector<int32_t> extra_stop_ids;
};

struct GenerateResult {
  std::vector<int32_t> tokens;  // new tokens only
  bool stopped = false;         // ended on a stop id rather than max_new_tokens
  int64_t n_prompt = 0;
  double prefill_seconds = 0;   // the prompt's forward, including sampling the first token
  double decode_seconds = 0;    // every later forward and sample
};

// Runs in a fresh sequence of `backend`, freed before returning. The prompt must be non-empty.
GenerateResult generate(Backend& backend, std::span<const int32_t> prompt, const GenerateOptions& options);

}  // namespace qb::runtime
