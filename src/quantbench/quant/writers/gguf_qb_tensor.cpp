// See gguf_qb_tensor.h. The layout string is key=value pairs so that a reader of any language can
// parse it without knowing our enums' numeric values.
#include "quantbench/quant/writers/gguf_qb_tensor.h"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <map>

#include "quantbench/core/error.h"

namespace qb::quant {

namespace {

std::string_view granularity_name(Granularity g) {
  switch (g) {
    case Granularity::Tensor: return "tensor";
    case Granularity::Channel: return "channel";
    case Granularity::Group: return "group";
  }
  return "?";
}

int64_t to_int(std::string_view v, std::string_view key, std::string_view where) {
  int64_t x = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
  if (ec != std::errc() || p != v.data() + v.size()) fail("{}: layout field '{}' is not an integer: '{}'", where, key, v);
  return x;
}

}  // namespace

std::string encode_layout(const QuantizedTensor& q) {
  const QuantLayout& l = q.layout;
  return fmt::format("format={};granularity={};group_size={};asym={};scale={};cols={};rows={}",
                     format_traits(l.format).name, granularity_name(l.granularity), l.group_size,
                     l.asymmetric ? 1 : 0, scale_type_name(l.scale_type), q.cols, q.rows);
}

QuantizedTensor decode_layout(std::string_view text, std::string_view where) {
  std::map<std::string, std::string, std::less<>> kv;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find(';', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view item = text.substr(pos, end - pos);
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos) fail("{}: malformed layout '{}'", where, text);
    kv[std::string(item.substr(0, eq))] = std::string(item.substr(eq + 1));
    pos = end + 1;
  }
  auto get = [&](std::string_view k) -> const std::string& {
    auto it = kv.find(k);
    if (it == kv.end()) fail("{}: layout '{}' lacks '{}'", where, text, k);
    return it->second;
  };
  QuantLayout l;
  const auto fmt_ = format_from_name(get("format"));
  if (!fmt_) fail("{}: unknown format '{}'", where, get("format"));
  l.format = *fmt_;
  const std::string& g = get("granularity");
  if (g == "tensor") l.granularity = Granularity::Tensor;
  else if (g == "channel") l.granularity = Granularity::Channel;
  else if (g == "group") l.granularity = Granularity::Group;
  else fail("{}: unknown granularity '{}'", where, g);
  l.group_size = to_int(get("group_size"), "group_size", where);
  l.asymmetric = to_int(get("asym"), "asym", where) != 0;
  const std::string& st = get("scale");
  if (st == "f16") l.scale_type = ScaleType::F16;
  else if (st == "bf16") l.scale_type = ScaleType::BF16;
  else if (st == "f32") l.scale_type = ScaleType::F32;
  else fail("{}: unknown scale dtype '{}'", where, st);
  const int64_t cols = to_int(get("cols"), "cols", where), rows = to_int(get("rows"), "rows", where);
  try {
    return QuantizedTensor::allocate(l, rows, cols);
  } catch (const std::exception& e) {
    fail("{}: {}", where, e.what());
  }
}

void add_qb_tensor(formats::GgufWriter& w, const std::string& name, const QuantizedTensor& q) {
  q.check();
  w.set("quantbench.tensor." + name + ".layout", formats::GgufValue::str(encode_layout(q)));
  w.add_tensor_owned(name + ".qb_codes", formats::GgmlType::I8, {int64_t(q.row_bytes()), q.rows},
                     std::vector<uint8_t>(q.codes));
  w.add_tensor_owned(name + ".qb_scales", formats::GgmlType::I8, {int64_t(q.scales.size())},
                     std::vector<uint8_t>(q.scales));
  if (!q.zeros.empty())
    w.add_tensor_owned(name + ".qb_zeros", formats::GgmlType::I8, {int64_t(q.zeros.size())},
                       std::vector<uint8_t>(q.zeros));
}

bool has_qb_tensor(const formats::GgufFile& f, std::string_view name) {
  return f.has("quantbench.tensor." + std::string(name) + ".layout");
}

QuantizedTensor read_qb_tensor(const formats::GgufFile& f, const std::string& name) {
  const std::string where = fmt::format("{}: tensor '{}'", f.path(), name);
  QuantizedTensor q = decode_layout(f.get_string("quantbench.tensor." + name + ".layout"), where);
  auto part = [&](const char* suffix, std::vector<uint8_t>& dst) {
    const std::string pn = name + suffix;
    const formats::GgufTensorInfo* t = f.find_tensor(pn);
    if (!t) fail("{}: part '{}' is missing", where, pn);
    if (t->type != formats::GgmlType::I8) fail("{}: part '{}' must be I8", where, pn);
    if (t->nbytes != dst.size())
      fail("{}: part '{}' has {} bytes, the layout needs {}", where, pn, t->nbytes, dst.size());
    std::copy(t->data, t->data + t->nbytes, dst.begin());
  };
  part(".qb_codes", q.codes);
  part(".qb_scales", q.scales);
  if (q.layout.asymmetric) part(".qb_zeros", q.zeros);
  try {
    q.check();
    std::vector<float> row(size_t(q.cols));
    for (int64_t r = 0; r < q.rows; ++r) {
      dequantize_row(q, r, row.data());
      for (int64_t c = 0; c < q.cols; ++c)
        if (!std::isfinite(row[size_t(c)])) fail("non-finite weight at row {} column {}", r, c);
    }
  } catch (const std::exception& e) {
    fail("{}: {}", where, e.what());
  }
  return q;
}

}  // namespace qb::quant
