// Perplexity and per-token KL divergence of a candidate against its baseline (EVALUATION.md,
// "Perplexity", "KL divergence vs baseline"). Two windowing conventions, named in every Result:
//   - llama.cpp (`llama-perplexity`): the whole text tokenized once with BOS, cut into consecutive
//     chunks of n_ctx tokens (a partial last chunk is dropped), the first token of each chunk replaced
//     by BOS, and only the second half scored: positions n_ctx/2 .. n_ctx-2 predict the next token
//     (n_ctx - 1 - n_ctx/2 tokens per chunk).
//   - lm-eval rolling (`loglikelihood_rolling`): each document tokenized without specials, a prefix
//     token (BOS, else EOS) before it, split into disjoint prediction windows of n_ctx tokens each with
//     a full left context (lm-eval's get_rolling_token_windows with context_len = 1); every token of the
//     document is scored once. Word and byte perplexity use lm-eval's counts (re.split(r"\s+") words,
//     UTF-8 bytes).
// The baseline can be read from a top-K cache (its K most probable log-probs per scored token plus the
// rest mass, on disk) so a sweep runs the baseline once; then KL is the lumped lower bound with the
// proven gap bound of stats.h beside it. When the baseline runs live the exact KL is reported too.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "quantbench/core/result.h"
#include "quantbench/eval/item_hook.h"
#include "quantbench/eval/model_pair.h"
#include "quantbench/eval/stats.h"

namespace qb::eval {

enum class PplConvention { LlamaCpp, Rolling };
std::string convention_name(PplConvention c);
PplConvention parse_convention(const std::string& s);  // "llama.cpp" | "rolling"

// One forward's worth of tokens: input[p] for p in [first, first + targets.size()) predicts targets[p - first].
struct PplWindow {
  std::vector<int32_t> input;
  int64_t first = 0;
  std::vector<int32_t> targets;
};
std::vector<PplWindow> llamacpp_windows(const std::vector<int32_t>& tokens_with_bos, int64_t n_ctx, int32_t bos);
// lm-eval's rolling windows for one document's tokens (no specials) and its prefix token.
std::vector<PplWindow> rolling_windows(const std::vector<int32_t>& tokens, int32_t prefix, int64_t max_len);

struct PerplexityOptions {
  PplConvention convention = PplConvention::LlamaCpp;
  int64_t n_ctx = 512;
  int64_t batch = 1;          // windows per forward (each in its own sequence)
  size_t top_k = 32;          // K of the baseline cache and of the lumped KL
  std::string cache_path;     // empty: no cache; else read if valid for this baseline/text, written otherwise
  int64_t max_windows = 0;    // 0: all
  BootstrapSpec bootstrap{1000, 1, 0.95};
  bool progress = true;
  // Optional: per-window records (key "window:N") as windows complete, and restoration of stored ones.
  // A restored window's baseline top-K is not kept, so the cache is not written when any was restored.
  const ItemHook* hook = nullptr;
};

// Per scored token, in window order; offsets[w] .. offsets[w+1] are window w's tokens.
struct PplTokenData {
  std::vector<size_t> offsets{0};
  std::vector<double> nll_base, nll_cand, kl_exact, kl_lumped, kl_gap, delta_p;
  std::vector<uint8_t> same_top1;
  bool exact_kl = false;  // false when the baseline came from the cache
  bool from_cache = false;
};

// Evaluates `documents` (llama.cpp joins nothing: pass the text as one document). text_sha256 identifies
// the text in the cache header and the Manifest.
Result evaluate_perplexity(ModelPair& pair, const std::vector<std::string>& documents, const std::string& text_name,
                           const std::string& text_sha256, const PerplexityOptions& o, PplTokenData* data_out = nullptr);

// ---- the baseline top-K cache ----------------------------------------------------------------------
// Layout (little-endian): "QBTOPK01", u32 version (1), u32 K, u64 n_vocab, u64 n_windows, u64 n_tokens,
// 64-char hex model sha256, 64-char hex text sha256, 64-char hex settings sha256 (convention, n_ctx,
// K), u64 offsets[n_windows + 1], then per token: i32 ref id, f64 ref log-prob, f64 rest log-mass,
// K x i32 ids, K x f64 log-probs.
struct TopKCacheHeader {
  uint32_t k = 0;
  uint64_t n_vocab = 0, n_windows = 0, n_tokens = 0;
  std::string model_sha256, text_sha256, settings_sha256;
};
struct TopKCacheToken {
  int32_t ref = 0;
  double ref_logprob = 0;
  TopKLogProbs topk;
};
struct TopKCache {
  TopKCacheHeader header;
  std::vector<uint64_t> offsets;
  std::vector<TopKCacheToken> tokens;
};
void write_topk_cache(const std::string& path, const TopKCache& c);
// Reads and validates against `expect` (every header field must match); throws qb::Error("PATH: ...")
// on any mismatch, truncation or inconsistency.
TopKCache read_topk_cache(const std::string& path, const TopKCacheHeader& expect);

}  // namespace qb::eval
