// Short-form scheme parsing, validation and storage estimates. The parser is hand-written (a few
// dozen lines) so each rejection can say exactly which part of the string is wrong.
#include "quantbench/quant/scheme.h"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>

#include "quantbench/core/error.h"

namespace qb::quant {
namespace {

using formats::GgmlType;

constexpr GgmlType kGgmlTypes[] = {GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1,
                                   GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K};

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = char(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Reads decimal digits at s[pos]; nullopt if there are none (or too many to be a bit width/group).
std::optional<int> read_int(const std::string& s, size_t& pos) {
  size_t end = pos;
  while (end < s.size() && std::isdigit(static_cast<unsigned char>(s[end])) && end - pos < 6) ++end;
  if (end == pos) return std::nullopt;
  const int v = std::stoi(s.substr(pos, end - pos));
  pos = end;
  return v;
}

TensorScheme parse_body(const std::string& t) {
  const size_t colon = t.find(':');
  const std::string body = t.substr(0, colon);
  const std::string method = colon == std::string::npos ? "" : t.substr(colon + 1);
  if (colon != std::string::npos && method.empty()) fail("':' must be followed by a method name");
  TensorScheme s;
  if (body == "f16" || body == "bf16" || body == "f32") {
    if (!method.empty()) fail("{} keeps the tensor unquantized; it takes no :{}", body, method);
    s.action = TensorAction::Keep;
    s.keep_dtype = body == "f16" ? DType::F16 : body == "bf16" ? DType::BF16 : DType::F32;
    return s;
  }
  if (const auto g = formats::ggml_type_from_name(body)) {
    if (std::find(std::begin(kGgmlTypes), std::end(kGgmlTypes), *g) == std::end(kGgmlTypes))
      fail("GGUF type {} is not supported here (use q8_0, q4_0, q4_1, q4_k, q5_k or q6_k)", formats::ggml_type_name(*g));
    s.action = TensorAction::Ggml;
    s.ggml = *g;
    if (!method.empty()) s.method = method;
    return s;
  }
  size_t pos = 0;
  if (body.empty() || body[0] != 'w') fail("expected w<bits>, a GGUF type (q4_k, ...) or f16/bf16/f32");
  ++pos;
  const auto wbits = read_int(body, pos);
  if (!wbits) fail("expected the weight bit width after 'w' (e.g. w4)");
  std::optional<int> abits, group;
  if (pos < body.size() && body[pos] == 'a') {
    ++pos;
    abits = read_int(body, pos);
    if (!abits) fail("expected the activation bit width after 'a' (e.g. a8)");
  }
  if (pos < body.size() && body[pos] == 'g') {
    ++pos;
    group = read_int(body, pos);
    if (!group) fail("expected the group size after 'g' (e.g. g128)");
  }
  bool asym = false, nf4 = false, fp8 = false, bf16 = false, tensor = false;
  while (pos < body.size()) {
    if (body[pos] != '-') fail("unexpected '{}' after '{}'", body.substr(pos), body.substr(0, pos));
    const size_t end = std::min(body.find('-', pos + 1), body.size());
    const std::string suffix = body.substr(pos + 1, end - pos - 1);
    bool* flag = suffix == "asym" ? &asym : suffix == "nf4" ? &nf4 : suffix == "fp8" ? &fp8
               : suffix == "bf16" ? &bf16 : suffix == "tensor" ? &tensor : nullptr;
    if (!flag) fail("unknown suffix '-{}' (use -asym, -nf4, -fp8, -bf16 or -tensor)", suffix);
    if (*flag) fail("suffix '-{}' given twice", suffix);
    *flag = true;
    pos = end;
  }

  if (*wbits != 2 && *wbits != 3 && *wbits != 4 && *wbits != 8)
    fail("{}-bit weights are not supported (use w2, w3, w4 or w8)", *wbits);
  if (abits && *abits != 8 && *abits != 16) fail("{}-bit activations are not supported (use a8 or a16)", *abits);
  if (group && *group != 32 && *group != 64 && *group != 128)
    fail("group size {} is not supported (use g32, g64 or g128)", *group);
  if (nf4 && fp8) fail("-nf4 and -fp8 exclude each other");
  if (nf4 && *wbits != 4) fail("nf4 is a 4-bit format; use w4 with -nf4, not w{}", *wbits);
  if (fp8 && *wbits != 8) fail("fp8 is an 8-bit format; use w8 with -fp8, not w{}", *wbits);
  if ((nf4 || fp8) && asym) fail("{} has no zero point; drop -asym", nf4 ? "nf4" : "fp8");
  if (fp8 && group) fail("fp8 uses per-channel or per-tensor scales, not groups; drop g{}", *group);
  if (fp8 && bf16) fail("fp8 scales are f32; drop -bf16");
  if (tensor && !fp8) fail("-tensor (one scale per tensor) is only for -fp8");
  if (abits == 8 && *wbits != 8) fail("8-bit activations need 8-bit weights (W8A8); w{}a8 is not supported", *wbits);

  s.action = TensorAction::Quantize;
  QuantLayout& l = s.weights;
  l.format = nf4 ? QFormat::NF4 : fp8 ? QFormat::FP8E4M3 : *int_format(*wbits);
  l.granularity = tensor ? Granularity::Tensor : group ? Granularity::Group : Granularity::Channel;
  l.group_size = group.value_or(0);
  l.asymmetric = asym;
  l.scale_type = fp8 ? ScaleType::F32 : bf16 ? ScaleType::BF16 : ScaleType::F16;
  s.activation_bits = abits.value_or(16);
  s.activation_fp8 = fp8 && s.activation_bits == 8;
  if (!method.empty()) s.method = method;
  return s;
}

}  // namespace

std::string TensorScheme::spec() const {
  switch (action) {
    case TensorAction::Keep: return std::string(dtype_name(keep_dtype));
    case TensorAction::Ggml:
      return std::string(formats::ggml_type_name(ggml)) + (method == "rtn" ? "" : ":" + method);
    case TensorAction::Quantize: break;
  }
  std::string s = fmt::format("w{}", format_traits(weights.format).bits);
  if (activation_bits != 16) s += fmt::format("a{}", activation_bits);
  if (weights.granularity == Granularity::Group) s += fmt::format("g{}", weights.group_size);
  if (weights.asymmetric) s += "-asym";
  if (weights.format == QFormat::NF4) s += "-nf4";
  if (weights.format == QFormat::FP8E4M3) s += "-fp8";
  if (weights.scale_type == ScaleType::BF16) s += "-bf16";
  if (weights.granularity == Granularity::Tensor) s += "-tensor";
  if (method != "rtn") s += ":" + method;
  return s;
}

void validate_tensor_scheme(const TensorScheme& s, const MethodRegistry& methods) {
  switch (s.action) {
    case TensorAction::Keep:
      if (s.keep_dtype != DType::F16 && s.keep_dtype != DType::BF16 && s.keep_dtype != DType::F32)
        fail("tensors can be kept as f16, bf16 or f32, not {}", dtype_name(s.keep_dtype));
      return;
    case TensorAction::Ggml:
      if (s.method != "rtn" && s.method != "imatrix")
        fail("GGUF types are quantized by their own rule; only :rtn or :imatrix apply, not :{}", s.method);
      if (!s.method_options.empty()) fail("GGUF types take no method options");
      return;
    case TensorAction::Quantize: break;
  }
  validate_layout(s.weights);
  if (s.activation_bits != 8 && s.activation_bits != 16)
    fail("{}-bit activations are not supported (use a8 or a16)", s.activation_bits);
  if (s.activation_bits == 8 && format_traits(s.weights.format).bits != 8)
    fail("8-bit activations need 8-bit weights (W8A8)");
  if (s.activation_fp8 && (s.activation_bits != 8 || s.weights.format != QFormat::FP8E4M3))
    fail("fp8 activations need w8a8-fp8");
  // W8A8 runs as one integer (or fp8) product per output channel, rescaled once: one weight scale per
  // row (or tensor), no zero point -- what W8A8 GEMM kernels implement.
  if (s.activation_bits == 8 && s.weights.granularity == Granularity::Group)
    fail("W8A8 uses per-channel weight scales; drop g{}", s.weights.group_size);
  if (s.activation_bits == 8 && s.weights.asymmetric) fail("W8A8 weights are symmetric; drop -asym");
  if (s.activation_bits == 8 && s.weights.format == QFormat::Int8 && s.weights.granularity == Granularity::Tensor)
    fail("W8A8 int8 weights use per-channel scales");
  const auto m = methods.create(s.method, s.method_options);
  if (auto why = m->unsupported(s.weights)) fail("{}", *why);
  if (s.method == "smoothquant" && s.activation_bits != 8)
    fail("smoothquant migrates activation outliers into the weights; it needs a8 (e.g. w8a8:smoothquant)");
}

TensorScheme parse_tensor_scheme(std::string_view text, const MethodRegistry& methods) {
  try {
    std::string t = lower(text);
    t.erase(std::remove_if(t.begin(), t.end(), [](char c) { return std::isspace(static_cast<unsigned char>(c)); }), t.end());
    if (t.empty()) fail("empty scheme");
    TensorScheme s = parse_body(t);
    validate_tensor_scheme(s, methods);
    return s;
  } catch (const std::exception& e) {
    rethrow_with_context(e, fmt::format("scheme '{}'", text));
  }
}

Scheme parse_scheme(std::string_view text, const MethodRegistry& methods) {
  Scheme s;
  s.source = std::string(text);
  s.base = parse_tensor_scheme(text, methods);
  return s;
}

const TensorScheme& Scheme::for_tensor(std::string_view name) const {
  for (const auto& o : overrides)
    if (glob_match(o.pattern, name)) return o.scheme;
  return base;
}

bool glob_match(std::string_view p, std::string_view n) {
  // Iterative wildcard match with one backtrack point (the last '*'): linear in practice.
  size_t pi = 0, ni = 0, star = std::string_view::npos, mark = 0;
  while (ni < n.size()) {
    if (pi < p.size() && (p[pi] == '?' || p[pi] == n[ni])) {
      ++pi;
      ++ni;
    } else if (pi < p.size() && p[pi] == '*') {
      star = pi++;
      mark = ni;
    } else if (star != std::string_view::npos) {
      pi = star + 1;
      ni = ++mark;
    } else {
      return false;
    }
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

StorageEstimate estimate_storage(const TensorScheme& s, int64_t rows, int64_t cols) {
  QB_CHECK(rows > 0 && cols > 0, "cannot estimate storage of a {}x{} tensor", rows, cols);
  StorageEstimate e;
  switch (s.action) {
    case TensorAction::Keep: e.bytes = size_t(rows * cols) * dtype_size(s.keep_dtype); break;
    case TensorAction::Ggml: {
      const auto& t = formats::ggml_traits(s.ggml);
      QB_CHECK(cols % t.block_size == 0, "{} needs rows whose length is a multiple of {}; this tensor's rows have {}",
               t.name, t.block_size, cols);
      e.bytes = size_t(rows) * formats::ggml_row_bytes(s.ggml, cols);
      break;
    }
    case TensorAction::Quantize: {
      e.bytes = storage_bytes(s.weights, rows, cols);
      if (s.weights.granularity == Granularity::Group && cols % s.weights.group_size != 0) {
        e.ragged_last_group = true;
        e.last_group_cols = cols % s.weights.group_size;
      }
      break;
    }
  }
  e.bits_per_weight = 8.0 * double(e.bytes) / (double(rows) * double(cols));
  return e;
}

std::string StorageEstimate::describe() const {
  std::string s = fmt::format("{:.4f} bpw ({} bytes)", bits_per_weight, bytes);
  if (ragged_last_group) s += fmt::format(", ragged last group of {} columns", last_group_cols);
  return s;
}

}  // namespace qb::quant
