// HfConfig; see hf_config.h. The parsed document is shared by a config and its nested views, so a
// view stays valid when the config it came from goes away.
#include "quantbench/formats/hf_config.h"

#include <cmath>
#include <limits>

#include <nlohmann/json.hpp>

#include "quantbench/core/error.h"
#include "quantbench/core/read_file.h"
#include "quantbench/formats/text.h"

namespace qb::formats {
namespace {

using Json = nlohmann::ordered_json;

std::string kind(const Json& j) {
  if (j.is_number_integer()) return "integer";
  if (j.is_number_float()) return "number";
  return j.type_name();
}

std::optional<int64_t> as_int(const Json& j) {
  if (j.is_number_unsigned()) {
    const uint64_t u = j.get<uint64_t>();
    if (u > uint64_t(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return int64_t(u);
  }
  if (j.is_number_integer()) return j.get<int64_t>();
  if (j.is_number_float()) {
    const double d = j.get<double>();
    // Integral and inside int64's range (2^63 itself is not).
    if (std::isfinite(d) && d == std::floor(d) && d >= -9.223372036854775808e18 && d < 9.223372036854775808e18)
      return int64_t(d);
  }
  return std::nullopt;
}

}  // namespace

HfConfig HfConfig::load(const std::string& path) {
  return parse(read_file(path), path);
}

HfConfig HfConfig::parse(std::string_view json_text, std::string source) {
  auto root = std::make_shared<Json>();
  try {
    *root = Json::parse(json_text.begin(), json_text.end());
  } catch (const Json::exception& e) {
    fail("{}: not valid JSON: {}", source, printable(e.what(), 200));
  }
  if (!root->is_object()) fail("{}: top level is {}, expected an object", source, kind(*root));
  const Json* node = root.get();
  return HfConfig(std::move(root), node, std::move(source), "");
}

void HfConfig::fail_field(std::string_view field, std::string_view what) const {
  fail("{}: field '{}{}': {}", source_, prefix_, printable(field), what);
}

const Json* HfConfig::lookup(std::string_view field) const {
  auto it = node_->find(std::string(field));
  if (it == node_->end() || it->is_null()) return nullptr;
  return &*it;
}

bool HfConfig::has(std::string_view field) const { return lookup(field) != nullptr; }

std::optional<int64_t> HfConfig::find_int(std::string_view field) const {
  const Json* j = lookup(field);
  if (!j) return std::nullopt;
  if (!j->is_number()) fail_field(field, "expected integer, found " + kind(*j));
  auto v = as_int(*j);
  if (!v) fail_field(field, fmt::format("expected integer, found {}", j->dump()));
  return v;
}
std::optional<double> HfConfig::find_float(std::string_view field) const {
  const Json* j = lookup(field);
  if (!j) return std::nullopt;
  if (!j->is_number()) fail_field(field, "expected number, found " + kind(*j));
  return j->get<double>();
}
std::optional<std::string> HfConfig::find_string(std::string_view field) const {
  const Json* j = lookup(field);
  if (!j) return std::nullopt;
  if (!j->is_string()) fail_field(field, "expected string, found " + kind(*j));
  return j->get<std::string>();
}
std::optional<bool> HfConfig::find_bool(std::string_view field) const {
  const Json* j = lookup(field);
  if (!j) return std::nullopt;
  if (!j->is_boolean()) fail_field(field, "expected boolean, found " + kind(*j));
  return j->get<bool>();
}

int64_t HfConfig::get_int(std::string_view field) const {
  auto v = find_int(field);
  if (!v) fail_field(field, "missing");
  return *v;
}
double HfConfig::get_float(std::string_view field) const {
  auto v = find_float(field);
  if (!v) fail_field(field, "missing");
  return *v;
}
std::string HfConfig::get_string(std::string_view field) const {
  auto v = find_string(field);
  if (!v) fail_field(field, "missing");
  return *v;
}
bool HfConfig::get_bool(std::string_view field) const {
  auto v = find_bool(field);
  if (!v) fail_field(field, "missing");
  return *v;
}

std::vector<int64_t> HfConfig::get_int_array(std::string_view field) const {
  const Json* j = lookup(field);
  if (!j) fail_field(field, "missing");
  if (!j->is_array()) fail_field(field, "expected array, found " + kind(*j));
  std::vector<int64_t> out;
  for (size_t i = 0; i < j->size(); ++i) {
    auto v = (*j)[i].is_number() ? as_int((*j)[i]) : std::nullopt;
    if (!v) fail_field(field, fmt::format("item {}: expected integer, found {}", i, kind((*j)[i])));
    out.push_back(*v);
  }
  return out;
}
std::vector<double> HfConfig::get_float_array(std::string_view field) const {
  const Json* j = lookup(field);
  if (!j) fail_field(field, "missing");
  if (!j->is_array()) fail_field(field, "expected array, found " + kind(*j));
  std::vector<double> out;
  for (size_t i = 0; i < j->size(); ++i) {
    if (!(*j)[i].is_number()) fail_field(field, fmt::format("item {}: expected number, found {}", i, kind((*j)[i])));
    out.push_back((*j)[i].get<double>());
  }
  return out;
}
std::vector<std::string> HfConfig::get_string_array(std::string_view field) const {
  const Json* j = lookup(field);
  if (!j) fail_field(field, "missing");
  if (!j->is_array()) fail_field(field, "expected array, found " + kind(*j));
  std::vector<std::string> out;
  for (size_t i = 0; i < j->size(); ++i) {
    if (!(*j)[i].is_string()) fail_field(field, fmt::format("item {}: expected string, found {}", i, kind((*j)[i])));
    out.push_back((*j)[i].get<std::string>());
  }
  return out;
}

std::optional<HfConfig> HfConfig::find_object(std::string_view field) const {
  const Json* j = lookup(field);
  if (!j) return std::nullopt;
  if (!j->is_object()) fail_field(field, "expected object, found " + kind(*j));
  return HfConfig(root_, j, source_, prefix_ + std::string(field) + ".");
}
HfConfig HfConfig::get_object(std::string_view field) const {
  auto v = find_object(field);
  if (!v) fail_field(field, "missing");
  return *v;
}

std::vector<std::string> HfConfig::keys() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : node_->items()) out.push_back(k);
  return out;
}

}  // namespace qb::formats
