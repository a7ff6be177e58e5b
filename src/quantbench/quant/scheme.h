// Scheme: what to do with every weight tensor of a model. A short form names one recipe for all
// tensors -- w<bits>[a<bits>][g<group>][-asym][-nf4|-fp8][:<method>], a GGUF type (q4_k, ...), or
// f16/bf16/f32 to keep a tensor unquantized -- and a TOML form adds method options, the scale dtype
// and per-tensor overrides by name pattern. Everything is validated when parsed (bits, groups,
// format/method compatibility, method options) so a bad scheme fails before any work starts.
// docs/schemes.md is the user-facing description.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "quantbench/core/dtype.h"
#include "quantbench/formats/ggml_types.h"
#include "quantbench/quant/method/method.h"
#include "quantbench/quant/qformat/format_traits.h"

namespace qb::quant {

enum class TensorAction : uint8_t {
  Keep,      // store in keep_dtype (f16, bf16 or f32), no quantization
  Quantize,  // one of our packed formats (QuantLayout) through a method
  Ggml,      // a ggml block type; its quantizer lives with ggml's formats
};

struct TensorScheme {
  TensorAction action = TensorAction::Quantize;
  DType keep_dtype = DType::F16;                    // Keep
  QuantLayout weights;                              // Quantize
  formats::GgmlType ggml = formats::GgmlType::Q8_0; // Ggml
  int activation_bits = 16;    // 16: activations stay in float; 8: quantized per token at run time
  bool activation_fp8 = false; // with activation_bits == 8: FP8 E4M3 instead of int8
  std::string method = "rtn";  // registry name (Quantize; for Ggml only rtn or imatrix)
  MethodOptions method_options;

  std::string spec() const;    // canonical short form, e.g. "w4g128-asym:gptq", "q4_K", "f16"
};

struct TensorOverride {
  std::string pattern;  // glob over tensor names: '*' any run, '?' one character
  TensorScheme scheme;
};

struct Scheme {
  std::string source;  // the short form, or the TOML file's name
  TensorScheme base;
  std::vector<TensorOverride> overrides;  // the first matching pattern wins

  const TensorScheme& for_tensor(std::string_view name) const;
};

// Parses a short form (see top of file). Throws qb::Error whose message quotes the scheme and says
// what is wrong ("scheme 'w5': 5-bit weights are not supported (use 2, 3, 4 or 8)").
TensorScheme parse_tensor_scheme(std::string_view text, const MethodRegistry& methods);
Scheme parse_scheme(std::string_view text, const MethodRegistry& methods);

// Parses the TOML form; `source` names it in messages (a file name). Schema in docs/schemes.md.
Scheme parse_scheme_toml(std::string_view toml_text, std::string_view source, const MethodRegistry& methods);
// Short form, or the TOML file at `arg` when it ends in ".toml".
Scheme load_scheme(std::string_view arg, const MethodRegistry& methods);

// Checks a TensorScheme's internal consistency and its method (name, options, capability).
void validate_tensor_scheme(const TensorScheme& s, const MethodRegistry& methods);

bool glob_match(std::string_view pattern, std::string_view name);

// What a rows x cols tensor costs under a scheme: exact bytes including scales, zero points and row
// padding, and bits per weight. Throws if the tensor cannot take the scheme (a ggml block size that
// does not divide the row).
struct StorageEstimate {
  size_t bytes = 0;
  double bits_per_weight = 0;
  bool ragged_last_group = false;  // group size does not divide cols; the last group is shorter
  int64_t last_group_cols = 0;
  std::string describe() const;    // "4.1250 bpw (34816 bytes)" plus a ragged note
};
StorageEstimate estimate_storage(const TensorScheme& s, int64_t rows, int64_t cols);

}  // namespace qb::quant
