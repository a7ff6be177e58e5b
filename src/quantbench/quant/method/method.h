// A quantization method turns one layer's float weights (plus, optionally, calibration statistics of
// its inputs) into a QuantizedTensor. vLLM's habit: each method is one file with a config parser that
// validates its own fields and a per-layer apply; a registry maps names to methods and rejects
// duplicates. Capability is a query (unsupported()), not a crash deep inside apply.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "quantbench/quant/method/calibration.h"
#include "quantbench/quant/qformat/quantized_tensor.h"

namespace qb::quant {

using OptionValue = std::variant<bool, int64_t, double, std::string>;

// Method options by name (from a TOML table or defaults). Getters validate type and range; a method's
// parser reads every field it knows, then finish() rejects whatever is left (a misspelt option is an
// error, not a silent default).
class MethodOptions {
 public:
  void set(std::string key, OptionValue v) { values_[std::move(key)] = std::move(v); }
  bool empty() const { return values_.empty(); }
  const std::map<std::string, OptionValue>& values() const { return values_; }

  bool get_bool(const std::string& key, bool def);
  int64_t get_int(const std::string& key, int64_t def, int64_t lo, int64_t hi);
  double get_double(const std::string& key, double def, double lo, double hi);  // ints accepted
  void finish(std::string_view method) const;  // throws naming the first unknown option

 private:
  const OptionValue* find(const std::string& key);
  std::map<std::string, OptionValue> values_;
  std::set<std::string> used_;
};

std::string option_to_string(const OptionValue& v);

struct LayerInput {
  std::string name;               // tensor name, for messages
  const float* weight = nullptr;  // rows x cols, row-major (rows = output channels)
  int64_t rows = 0, cols = 0;
  const LayerCalibration* calibration = nullptr;  // null when no calibration data was given
  ThreadPool* pool = nullptr;  // methods may spread independent rows over it; results must not depend on it
};

struct LayerResult {
  QuantizedTensor weight;
  // Non-empty for AWQ and SmoothQuant: `weight` quantizes W * diag(s) (column j scaled by s[j]), so
  // the layer's input must be divided by s -- the model folds 1/s into the previous op (a norm's
  // gain, or the previous linear's rows).
  std::vector<float> input_scales;
  std::vector<std::string> notes;  // what the method chose ("alpha 0.35", "3 dead columns"), for the manifest
};

class Method {
 public:
  virtual ~Method() = default;
  virtual std::string_view name() const = 0;
  // Why this method cannot produce `layout` (e.g. "gptq supports integer formats only"), or nullopt.
  virtual std::optional<std::string> unsupported(const QuantLayout& layout) const { return std::nullopt; }
  virtual bool needs_calibration() const { return false; }
  // Options after defaults, for the manifest.
  virtual std::map<std::string, OptionValue> config() const { return {}; }
  virtual LayerResult apply(const LayerInput& in, const QuantLayout& layout) const = 0;
};

// Quantizes one layer through a method after checking the inputs and the method's capability; the
// entry point callers use (errors carry the tensor name).
LayerResult quantize_layer(const Method& m, const LayerInput& in, const QuantLayout& layout);

using MethodFactory = std::function<std::unique_ptr<Method>(MethodOptions&)>;

class MethodRegistry {
 public:
  void add(std::string name, MethodFactory f);  // throws qb::Error on a duplicate name
  bool contains(std::string_view name) const;
  std::vector<std::string> names() const;       // sorted
  // Parses opts with the method's parser; throws on an unknown method (listing the known ones) or a
  // bad/unknown option.
  std::unique_ptr<Method> create(std::string_view name, MethodOptions opts = {}) const;

 private:
  std::map<std::string, MethodFactory, std::less<>> factories_;
};

// A registry holding every built-in method (rtn, rtn_clip, imatrix, gptq, awq, smoothquant).
MethodRegistry builtin_methods();

}  // namespace qb::quant
