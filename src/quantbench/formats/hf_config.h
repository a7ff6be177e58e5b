// A thin typed view of a Hugging Face config.json. The model layer maps it to its ModelSpec; this
// layer only reads fields, and every error names the file and the field path
// ("model/config.json: field 'rope_scaling.factor': expected number, found string").
//
// JSON null counts as absent (HF writes "rope_scaling": null), so find_* return nullopt for it and
// get_* report it as missing.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace qb::formats {

class HfConfig {
 public:
  // Reads and parses a config.json; throws qb::Error naming the path.
  static HfConfig load(const std::string& path);
  // Parses JSON text; `source` names it in errors (a path, or "config.json inside X").
  static HfConfig parse(std::string_view json_text, std::string source);

  const std::string& source() const { return source_; }
  bool has(std::string_view field) const;  // present and not null

  // Integers: JSON integers, or floats with an integral value (2048.0). Floats accept integers too.
  int64_t get_int(std::string_view field) const;
  double get_float(std::string_view field) const;
  std::string get_string(std::string_view field) const;
  bool get_bool(std::string_view field) const;
  std::optional<int64_t> find_int(std::string_view field) const;
  std::optional<double> find_float(std::string_view field) const;
  std::optional<std::string> find_string(std::string_view field) const;
  std::optional<bool> find_bool(std::string_view field) const;
  int64_t get_int_or(std::string_view field, int64_t fallback) const { return find_int(field).value_or(fallback); }
  double get_float_or(std::string_view field, double fallback) const { return find_float(field).value_or(fallback); }

  std::vector<int64_t> get_int_array(std::string_view field) const;
  std::vector<double> get_float_array(std::string_view field) const;
  std::vector<std::string> get_string_array(std::string_view field) const;

  // Nested objects (rope_scaling, text_config, quantization_config): a view whose errors name the
  // full path ("rope_scaling.factor").
  std::optional<HfConfig> find_object(std::string_view field) const;
  HfConfig get_object(std::string_view field) const;

  // Fields of this object, in file order (for diagnostics and for passing unknown fields through).
  std::vector<std::string> keys() const;
  const nlohmann::ordered_json& json() const { return *node_; }

 private:
  HfConfig(std::shared_ptr<const nlohmann::ordered_json> root, const nlohmann::ordered_json* node, std::string source,
           std::string prefix)
      : root_(std::move(root)), node_(node), source_(std::move(source)), prefix_(std::move(prefix)) {}
  const nlohmann::ordered_json* lookup(std::string_view field) const;  // nullptr if absent or null
  [[noreturn]] void fail_field(std::string_view field, std::string_view what) const;

  std::shared_ptr<const nlohmann::ordered_json> root_;  // keeps node_ alive; views share it
  const nlohmann::ordered_json* node_;
  std::string source_;
  std::string prefix_;  // "rope_scaling." for a nested view
};

}  // namespace qb::formats
