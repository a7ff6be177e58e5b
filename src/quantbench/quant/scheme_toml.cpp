// The TOML form of a scheme. Kept apart from scheme.cpp so only this file pays for toml++'s header.
// Every table rejects keys it does not know, naming the file, the table and the key.
#include <toml++/toml.h>

#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "quantbench/core/error.h"
#include "quantbench/quant/scheme.h"

namespace qb::quant {
namespace {

void check_keys(const toml::table& t, std::initializer_list<std::string_view> allowed, const std::string& where) {
  for (const auto& [k, v] : t) {
    bool ok = false;
    for (auto a : allowed) ok = ok || k.str() == a;
    if (!ok) fail("{}: unknown key '{}'", where, k.str());
  }
}

std::string get_string(const toml::table& t, std::string_view key, const std::string& where, bool required) {
  const toml::node* n = t.get(key);
  if (!n) {
    if (required) fail("{}: missing key '{}'", where, key);
    return {};
  }
  const auto v = n->value<std::string>();
  if (!v || !n->is_string()) fail("{}: '{}' must be a string", where, key);
  return *v;
}

// Applies the optional keys shared by the top level and each override, then re-validates.
void apply_extras(TensorScheme& s, const toml::table& t, const std::string& where, const MethodRegistry& methods) {
  if (const std::string sd = get_string(t, "scale_dtype", where, false); !sd.empty()) {
    if (s.action != TensorAction::Quantize || s.weights.format == QFormat::FP8E4M3)
      fail("{}: scale_dtype applies to int and nf4 formats only", where);
    if (sd == "f16") s.weights.scale_type = ScaleType::F16;
    else if (sd == "bf16") s.weights.scale_type = ScaleType::BF16;
    else fail("{}: scale_dtype must be \"f16\" or \"bf16\", not \"{}\"", where, sd);
  }
  if (const std::string fs = get_string(t, "fp8_scale", where, false); !fs.empty()) {
    if (s.action != TensorAction::Quantize || s.weights.format != QFormat::FP8E4M3)
      fail("{}: fp8_scale applies to -fp8 schemes only", where);
    if (fs == "tensor") s.weights.granularity = Granularity::Tensor;
    else if (fs == "channel") s.weights.granularity = Granularity::Channel;
    else fail("{}: fp8_scale must be \"tensor\" or \"channel\", not \"{}\"", where, fs);
  }
  if (const toml::node* m = t.get("method")) {
    const toml::table* mt = m->as_table();
    if (!mt) fail("{}: 'method' must be a table of options (the method itself is named in the scheme, e.g. \"w4g128:gptq\")", where);
    for (const auto& [k, v] : *mt) {
      const std::string key(k.str());
      if (auto b = v.value_exact<bool>()) s.method_options.set(key, *b);
      else if (auto i = v.value_exact<int64_t>()) s.method_options.set(key, *i);
      else if (auto d = v.value_exact<double>()) s.method_options.set(key, *d);
      else if (auto str = v.value_exact<std::string>()) s.method_options.set(key, *str);
      else fail("{}: method option '{}' must be a boolean, number or string", where, key);
    }
  }
  try {
    validate_tensor_scheme(s, methods);
  } catch (const std::exception& e) {
    rethrow_with_context(e, where);
  }
}

}  // namespace

Scheme parse_scheme_toml(std::string_view text, std::string_view source, const MethodRegistry& methods) {
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    fail("{}:{}:{}: {}", source, e.source().begin.line, e.source().begin.column, e.description());
  }
  const std::string src(source);
  check_keys(root, {"scheme", "scale_dtype", "fp8_scale", "method", "override"}, src);
  Scheme s;
  s.source = src;
  s.base = parse_tensor_scheme(get_string(root, "scheme", src, true), methods);
  apply_extras(s.base, root, src, methods);
  if (const toml::node* ov = root.get("override")) {
    const toml::array* arr = ov->as_array();
    if (!arr) fail("{}: 'override' must be an array of tables ([[override]])", src);
    int index = 0;
    for (const auto& n : *arr) {
      const std::string where = fmt::format("{}: override {}", src, ++index);
      const toml::table* t = n.as_table();
      if (!t) fail("{}: must be a table", where);
      check_keys(*t, {"pattern", "scheme", "scale_dtype", "fp8_scale", "method"}, where);
      TensorOverride o;
      o.pattern = get_string(*t, "pattern", where, true);
      if (o.pattern.empty()) fail("{}: empty pattern", where);
      try {
        o.scheme = parse_tensor_scheme(get_string(*t, "scheme", where, true), methods);
      } catch (const std::exception& e) {
        rethrow_with_context(e, where);
      }
      apply_extras(o.scheme, *t, where, methods);
      s.overrides.push_back(std::move(o));
    }
  }
  return s;
}

Scheme load_scheme(std::string_view arg, const MethodRegistry& methods) {
  if (arg.size() > 5 && arg.substr(arg.size() - 5) == ".toml") {
    std::ifstream f{std::string(arg)};
    if (!f) fail("cannot open scheme file {}", arg);
    std::stringstream ss;
    ss << f.rdbuf();
    return parse_scheme_toml(ss.str(), arg, methods);
  }
  return parse_scheme(arg, methods);
}

}  // namespace qb::quant
