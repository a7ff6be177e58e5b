// The Manifest: the methodology every number carries (EVALUATION.md, "Disclosure"). It is a flat,
// ordered map from dotted keys ("model.sha256", "scheme.group_size", ...) to Facts. Each Fact is either
// known (a value) or unknown with a reason: a field is never silently absent.
//
// Why a keyed map and not a struct: later layers (quantization, evaluation, CUDA) add fields, and
// `compare` must reason about fields generically (which differ, which matter for a regime). The schema
// below names every field the disclosure list requires and which regimes it affects.
#pragma once
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace qb {

struct Fact {
  std::string value;   // the value, as text (numbers formatted exactly)
  bool known = true;
  std::string reason;  // why it is unknown; empty when known

  static Fact of(std::string v) { return {std::move(v), true, {}}; }
  static Fact unknown(std::string why) { return {"unknown", false, std::move(why)}; }
  bool operator==(const Fact&) const = default;
};

// One row of the disclosure schema.
struct ManifestField {
  std::string_view key;
  std::string_view description;
  // Whether two results that differ in this field may still be compared (ranked). Facts such as the
  // host name or timestamps do not change a number's methodology; the scheme does not either (it is
  // what is being compared), but calibration data, task version or harness settings do.
  bool affects_comparability;
};

// Every field EVALUATION.md's disclosure list requires, in display order.
const std::vector<ManifestField>& manifest_schema();

class Manifest {
 public:
  void set(std::string key, std::string value) { facts_[std::move(key)] = Fact::of(std::move(value)); }
  void set_unknown(std::string key, std::string reason) { facts_[std::move(key)] = Fact::unknown(std::move(reason)); }
  void set_fact(std::string key, Fact f) { facts_[std::move(key)] = std::move(f); }
  void merge(const Manifest& other);  // other's facts win

  const Fact* find(std::string_view key) const;
  std::string value_or(std::string_view key, std::string fallback) const;
  const std::map<std::string, Fact, std::less<>>& facts() const { return facts_; }

  // Schema keys with the given prefix ("model.", "harness.") that are not set at all.
  std::vector<std::string> missing(std::string_view prefix = "") const;

  nlohmann::json to_json() const;
  static Manifest from_json(const nlohmann::json& j);  // throws qb::Error on malformed input

 private:
  std::map<std::string, Fact, std::less<>> facts_;
};

// A difference between two manifests, for `compare`.
struct ManifestDifference {
  std::string key;
  Fact a, b;
  bool affects_comparability;
};
std::vector<ManifestDifference> diff_manifests(const Manifest& a, const Manifest& b);

}  // namespace qb
