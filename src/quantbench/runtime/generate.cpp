// See generate.h.
#include "quantbench/runtime/generate.h"

#include <algorithm>
#include <chrono>

#include "quantbench/core/error.h"

namespace qb::runtime {

GenerateResult generate(Backend& backend, std::span<const int32_t> prompt, const GenerateOptions& options) {
  QB_CHECK(!prompt.empty(), "generate: empty prompt");
  QB_CHECK(options.max_new_tokens >= 0, "generate: max_new_tokens must be >= 0");
  const auto& spec = backend.spec();
  const int64_t max_len = std::min<int64_t>(spec.n_ctx_train, int64_t(prompt.size()) + options.max_new_tokens);
  QB_CHECK(int64_t(prompt.size()) <= spec.n_ctx_train, "generate: prompt of {} tokens exceeds the context length {}",
           prompt.size(), spec.n_ctx_train);
  std::vector<int32_t> stops = options.extra_stop_ids;
  if (options.stop_at_eos) stops.insert(stops.end(), spec.stop_ids.begin(), spec.stop_ids.end());

  GenerateResult r;
  r.n_prompt = int64_t(prompt.size());
  if (options.max_new_tokens == 0) return r;
  Sampler sampler(options.sampler);
  const SeqId seq = backend.create_sequence(max_len);
  using clock = std::chrono::steady_clock;
  try {
    auto t0 = clock::now();
    Batch b;
    b.add_sequence(prompt, seq, 0);
    Logits lg = backend.forward(b);
    int32_t tok = sampler.sample(lg.row(0));
    auto t1 = clock::now();
    r.prefill_seconds = std::chrono::duration<double>(t1 - t0).count();
    r.tokens.push_back(tok);
    int64_t pos = int64_t(prompt.size());
    while (true) {
      if (std::find(stops.begin(), stops.end(), tok) != stops.end()) {
        r.stopped = true;
        break;
      }
      if (int64_t(r.tokens.size()) >= options.max_new_tokens || pos >= max_len) break;
      Batch d;
      d.add(tok, seq, pos++, true);
      tok = sampler.sample(backend.forward(d).row(0));
      r.tokens.push_back(tok);
    }
    r.decode_seconds = std::chrono::duration<double>(clock::now() - t1).count();
  } catch (...) {
    backend.free_sequence(seq);
    throw;
  }
  backend.free_sequence(seq);
  return r;
}

}  // namespace qb::runtime
