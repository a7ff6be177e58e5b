// Synthetic models: "synthetic:NAME" names a shape (dims from the real model's config.json) with random
// weights, so throughput runs need no model file to travel. The weights are made by the backend that
// runs them (the CUDA backend generates them on the GPU; nothing the size of a 7B model exists on the
// host), so a synthetic model is a ModelSpec plus a name here, and every Manifest marks it synthetic.
// The CPU backend takes only small shapes (make_synthetic_gguf writes a file it can load).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "quantbench/model/model_spec.h"

namespace qb::model {

struct SyntheticShape {
  std::string name;    // "llama2-7b"
  std::string source;  // where the dims come from
  ModelSpec spec;
};

// True for "synthetic:..." model arguments.
bool is_synthetic(std::string_view model_arg);
// The shape for "synthetic:NAME" or "NAME"; throws qb::Error listing the known names.
SyntheticShape synthetic_shape(std::string_view model_arg);
std::vector<std::string> synthetic_names();
// Parameters of the matrices plus the input and output embeddings, norm weights left out (for the
// host-RAM check and reports).
int64_t synthetic_parameters(const ModelSpec& spec);

// CPU path: writes a GGUF with random f32 weights (seeded) at `path`; refuses shapes above
// max_params parameters with a one-line error (the host would need the whole model in RAM).
void make_synthetic_gguf(const SyntheticShape& shape, uint64_t seed, const std::string& path,
                         int64_t max_params = 50'000'000);

}  // namespace qb::model
