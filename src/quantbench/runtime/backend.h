// Backend: the narrow interface between the engine and everything that consumes logits (evaluators,
// generate, bench, the CLI). A backend owns a model's weights on its device and a set of sequences,
// each with its own KV cache; one call, forward(batch), advances any number of sequences by any
// number of tokens and returns the logits that were asked for. That is all an evaluator needs:
// perplexity feeds whole windows, multiple choice shares a prefix then truncates back to it, decode
// feeds one token per sequence. A CUDA backend implements the same five calls; nothing above changes.
//
// Rules (every backend enforces them and throws qb::Error otherwise):
// - A sequence's positions are contiguous from 0: the tokens of sequence s in a batch must carry
//   positions length(s), length(s)+1, ... in batch order. forward() appends them to s's cache.
// - Attention is causal within a sequence and never crosses sequences.
// - truncate(s, n) forgets positions >= n, so a shared prefix is computed once and reused.
// - Logits are returned only for tokens with want_logits, in batch order, n_vocab floats each, f32.
// - forward() is all-or-nothing for validation errors (bad token, bad position, unknown sequence):
//   they are checked before any cache is modified.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "quantbench/model/model_spec.h"

namespace qb::runtime {

using SeqId = int32_t;

struct BatchToken {
  int32_t token = 0;
  SeqId seq = 0;
  int64_t pos = 0;
  bool want_logits = false;
};

struct Batch {
  std::vector<BatchToken> tokens;

  void add(int32_t token, SeqId seq, int64_t pos, bool want_logits) {
    tokens.push_back({token, seq, pos, want_logits});
  }
  // Appends `ids` to `seq` starting at position `start`; logits for the last one only, or for all.
  void add_sequence(std::span<const int32_t> ids, SeqId seq, int64_t start, bool all_logits = false) {
    for (size_t i = 0; i < ids.size(); ++i)
      add(ids[i], seq, start + int64_t(i), all_logits || i + 1 == ids.size());
  }
  size_t size() const { return tokens.size(); }
};

// Logits rows for the batch tokens that wanted them, in batch order.
struct Logits {
  int64_t n_vocab = 0;
  std::vector<size_t> batch_index;  // row r belongs to batch.tokens[batch_index[r]]
  std::vector<float> data;          // rows() x n_vocab

  size_t rows() const { return batch_index.size(); }
  std::span<const float> row(size_t r) const {
    return {data.data() + r * size_t(n_vocab), size_t(n_vocab)};
  }
};

class Backend {
 public:
  virtual ~Backend() = default;

  // "cpu-reference", "cpu-fast", "cuda", ...; and a longer account of what ran (ISA, kernel path per
  // weight type, KV-cache precision) for the Manifest.
  virtual std::string name() const = 0;
  virtual std::string describe() const = 0;
  virtual const model::ModelSpec& spec() const = 0;
  // For the Manifest, where the harness cannot know them: what the KV cache stores (scheme.kv_cache),
  // what precision reaches the matrix products (scheme.activations), and on a GPU the device with its
  // driver, runtime and library versions (hardware.gpu, toolchain.cuda; empty on the CPU).
  virtual std::string describe_kv_cache() const = 0;
  virtual std::string describe_activations() const = 0;
  virtual std::string device_facts() const { return {}; }

  // Sequences. create_sequence returns a fresh id with an empty cache; max_len (0: the model's
  // training context) bounds its positions.
  virtual SeqId create_sequence(int64_t max_len = 0) = 0;
  virtual void free_sequence(SeqId seq) = 0;
  virtual int64_t sequence_length(SeqId seq) const = 0;
  virtual void truncate_sequence(SeqId seq, int64_t new_length) = 0;  // 0 resets it

  virtual Logits forward(const Batch& batch) = 0;
};

}  // namespace qb::runtime
