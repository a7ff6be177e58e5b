// Method options, the registry and the checked per-layer entry point.
#include "quantbench/quant/method/method.h"

#include <cmath>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "quantbench/core/error.h"

namespace qb::quant {

std::string option_to_string(const OptionValue& v) {
  return std::visit([](const auto& x) -> std::string {
    using T = std::decay_t<decltype(x)>;
    if constexpr (std::is_same_v<T, bool>) return x ? "true" : "false";
    else if constexpr (std::is_same_v<T, std::string>) return "\"" + x + "\"";
    else return fmt::format("{}", x);
  }, v);
}

const OptionValue* MethodOptions::find(const std::string& key) {
  used_.insert(key);
  const auto it = values_.find(key);
  return it == values_.end() ? nullptr : &it->second;
}

bool MethodOptions::get_bool(const std::string& key, bool def) {
  const OptionValue* v = find(key);
  if (!v) return def;
  if (const auto* b = std::get_if<bool>(v)) return *b;
  fail("option '{}' must be true or false, got {}", key, option_to_string(*v));
}

int64_t MethodOptions::get_int(const std::string& key, int64_t def, int64_t lo, int64_t hi) {
  const OptionValue* v = find(key);
  if (!v) return def;
  const auto* i = std::get_if<int64_t>(v);
  if (!i) fail("option '{}' must be an integer, got {}", key, option_to_string(*v));
  if (*i < lo || *i > hi) fail("option '{}' = {} is outside [{}, {}]", key, *i, lo, hi);
  return *i;
}

double MethodOptions::get_double(const std::string& key, double def, double lo, double hi) {
  const OptionValue* v = find(key);
  if (!v) return def;
  double d;
  if (const auto* i = std::get_if<int64_t>(v)) d = double(*i);
  else if (const auto* f = std::get_if<double>(v)) d = *f;
  else fail("option '{}' must be a number, got {}", key, option_to_string(*v));
  if (!(d >= lo && d <= hi)) fail("option '{}' = {} is outside [{}, {}]", key, d, lo, hi);
  return d;
}

void MethodOptions::finish(std::string_view method) const {
  for (const auto& [k, v] : values_)
    if (!used_.count(k)) fail("method {}: unknown option '{}'", method, k);
}

LayerResult quantize_layer(const Method& m, const LayerInput& in, const QuantLayout& layout) {
  try {
    QB_CHECK(in.weight && in.rows > 0 && in.cols > 0, "empty weight ({}x{})", in.rows, in.cols);
    for (int64_t i = 0; i < in.rows * in.cols; ++i)
      QB_CHECK(std::isfinite(in.weight[i]), "weight [{}, {}] is not finite", i / in.cols, i % in.cols);
    validate_layout(layout);
    if (auto why = m.unsupported(layout)) fail("{}", *why);
    if (m.needs_calibration() && !in.calibration) fail("method {} needs calibration activations", m.name());
    if (in.calibration && in.calibration->in_features() != in.cols)
      fail("calibration has {} input features, weight has {} columns", in.calibration->in_features(), in.cols);
    return m.apply(in, layout);
  } catch (const std::exception& e) {
    rethrow_with_context(e, fmt::format("tensor '{}'", in.name));
  }
}

void MethodRegistry::add(std::string name, MethodFactory f) {
  QB_CHECK(!factories_.count(name), "quantization method '{}' is registered twice", name);
  factories_.emplace(std::move(name), std::move(f));
}

bool MethodRegistry::contains(std::string_view name) const { return factories_.find(name) != factories_.end(); }

std::vector<std::string> MethodRegistry::names() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : factories_) out.push_back(k);
  return out;
}

std::unique_ptr<Method> MethodRegistry::create(std::string_view name, MethodOptions opts) const {
  const auto it = factories_.find(name);
  if (it == factories_.end()) fail("unknown quantization method '{}' (known: {})", name, fmt::join(names(), ", "));
  auto m = it->second(opts);
  opts.finish(name);
  return m;
}

}  // namespace qb::quant
