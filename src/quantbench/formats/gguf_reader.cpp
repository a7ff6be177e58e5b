#include "quantbench/formats/gguf_reader.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "quantbench/core/error.h"
#include "quantbench/formats/text.h"

namespace qb::formats {
namespace {

// Hard limits that no real file comes near; they turn absurd counts into errors instead of
// multi-gigabyte allocations. Array items are capped at 2^24 (vocabularies and merge lists are far
// below): each item becomes a GgufValue of some 50 bytes, so the cap bounds what a hostile file can
// make us allocate.
constexpr uint64_t kMaxKeyLength = 1 << 16;
constexpr uint64_t kMaxStringLength = 1ull << 30;
constexpr uint64_t kMaxArrayItems = 1ull << 24;
constexpr uint64_t kMaxTensors = 1 << 20;
constexpr uint64_t kMaxKv = 1 << 20;
constexpr int kMaxArrayDepth = 4;

// Bounds-checked little-endian cursor over the mapped bytes.
class Cursor {
 public:
  Cursor(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  size_t pos() const { return pos_; }
  size_t left() const { return size_ - pos_; }

  void need(uint64_t n, std::string_view what) const {
    if (n > left()) fail("truncated: {} needs {} bytes at offset {}, file has {} left", what, n, pos_, left());
  }
  template <typename T>
  T read(std::string_view what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string read_string(std::string_view what, uint64_t max_len = kMaxStringLength) {
    const uint64_t n = read<uint64_t>(what);
    if (n > max_len) fail("{}: string length {} is absurd", what, n);
    need(n, what);
    std::string s(reinterpret_cast<const char*>(data_ + pos_), size_t(n));
    pos_ += size_t(n);
    return s;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

size_t scalar_size(GgufValueType t) {
  switch (t) {
    case GgufValueType::UINT8: case GgufValueType::INT8: case GgufValueType::BOOL: return 1;
    case GgufValueType::UINT16: case GgufValueType::INT16: return 2;
    case GgufValueType::UINT32: case GgufValueType::INT32: case GgufValueType::FLOAT32: return 4;
    case GgufValueType::UINT64: case GgufValueType::INT64: case GgufValueType::FLOAT64: return 8;
    default: return 0;
  }
}

bool valid_type(uint32_t t) { return t <= uint32_t(GgufValueType::FLOAT64); }

GgufValue read_value(Cursor& c, GgufValueType type, int depth) {
  switch (type) {
    case GgufValueType::UINT8: return {type, uint64_t(c.read<uint8_t>("u8 value"))};
    case GgufValueType::INT8: return {type, int64_t(c.read<int8_t>("i8 value"))};
    case GgufValueType::UINT16: return {type, uint64_t(c.read<uint16_t>("u16 value"))};
    case GgufValueType::INT16: return {type, int64_t(c.read<int16_t>("i16 value"))};
    case GgufValueType::UINT32: return {type, uint64_t(c.read<uint32_t>("u32 value"))};
    case GgufValueType::INT32: return {type, int64_t(c.read<int32_t>("i32 value"))};
    case GgufValueType::UINT64: return {type, c.read<uint64_t>("u64 value")};
    case GgufValueType::INT64: return {type, c.read<int64_t>("i64 value")};
    case GgufValueType::FLOAT32: return {type, double(c.read<float>("f32 value"))};
    case GgufValueType::FLOAT64: return {type, c.read<double>("f64 value")};
    case GgufValueType::BOOL: {
      const uint8_t b = c.read<uint8_t>("bool value");
      if (b > 1) fail("bool value {} is neither 0 nor 1", b);
      return {type, b == 1};
    }
    case GgufValueType::STRING: {
      std::string s = c.read_string("string value");
      if (auto bad = utf8_error_offset(s)) fail("string value is not valid UTF-8 (byte {})", *bad);
      return {type, std::move(s)};
    }
    case GgufValueType::ARRAY: {
      if (depth >= kMaxArrayDepth) fail("arrays nested deeper than {}", kMaxArrayDepth);
      const uint32_t et = c.read<uint32_t>("array element type");
      if (!valid_type(et)) fail("array element type {} is unknown", et);
      const uint64_t n = c.read<uint64_t>("array length");
      if (n > kMaxArrayItems) fail("array length {} is absurd", n);
      const auto elem = GgufValueType(et);
      // Each item needs at least its scalar size (8 for a string's length): check before allocating.
      const size_t min_item = elem == GgufValueType::STRING ? 8 : elem == GgufValueType::ARRAY ? 12 : scalar_size(elem);
      c.need(n * min_item, "array items");
      auto arr = std::make_shared<GgufArray>();
      arr->elem_type = elem;
      arr->items.reserve(size_t(n));
      for (uint64_t i = 0; i < n; ++i) {
        try {
          arr->items.push_back(read_value(c, elem, depth + 1));
        } catch (const std::exception& e) {
          rethrow_with_context(e, fmt::format("item {}", i));
        }
      }
      return {type, std::move(arr)};
    }
  }
  fail("value type {} is unknown", uint32_t(type));
}

}  // namespace

std::string_view gguf_value_type_name(GgufValueType t) {
  static constexpr std::string_view names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32",
                                               "bool", "string", "array", "u64", "i64", "f64"};
  const auto i = uint32_t(t);
  return i < std::size(names) ? names[i] : "?";
}

GgufValue GgufValue::string_array(const std::vector<std::string>& xs) {
  std::vector<GgufValue> items;
  items.reserve(xs.size());
  for (const auto& s : xs) items.push_back(str(s));
  return array(GgufValueType::STRING, std::move(items));
}
GgufValue GgufValue::f32_array(const std::vector<float>& xs) {
  std::vector<GgufValue> items;
  items.reserve(xs.size());
  for (float x : xs) items.push_back(f32(x));
  return array(GgufValueType::FLOAT32, std::move(items));
}
GgufValue GgufValue::i32_array(const std::vector<int32_t>& xs) {
  std::vector<GgufValue> items;
  items.reserve(xs.size());
  for (int32_t x : xs) items.push_back(i32(x));
  return array(GgufValueType::INT32, std::move(items));
}

bool GgufValue::is_integer() const {
  switch (type) {
    case GgufValueType::UINT8: case GgufValueType::INT8: case GgufValueType::UINT16: case GgufValueType::INT16:
    case GgufValueType::UINT32: case GgufValueType::INT32: case GgufValueType::UINT64: case GgufValueType::INT64:
      return true;
    default: return false;
  }
}

const GgufArray* GgufValue::as_array() const {
  if (type != GgufValueType::ARRAY) return nullptr;
  return std::get<std::shared_ptr<GgufArray>>(v).get();
}

std::string GgufValue::to_display(size_t max_items) const {
  if (const auto* a = as_array()) {
    std::string s = fmt::format("[{} x {}: ", a->items.size(), gguf_value_type_name(a->elem_type));
    for (size_t i = 0; i < a->items.size() && i < max_items; ++i) s += (i ? ", " : "") + a->items[i].to_display(0);
    if (a->items.size() > max_items) s += ", ...";
    return s + "]";
  }
  if (std::holds_alternative<uint64_t>(v)) return std::to_string(std::get<uint64_t>(v));
  if (std::holds_alternative<int64_t>(v)) return std::to_string(std::get<int64_t>(v));
  if (std::holds_alternative<double>(v)) return fmt::format("{:g}", std::get<double>(v));
  if (std::holds_alternative<bool>(v)) return std::get<bool>(v) ? "true" : "false";
  const auto& str = std::get<std::string>(v);
  return str.size() > 80 ? "\"" + str.substr(0, 77) + "...\"" : "\"" + str + "\"";
}

int64_t GgufTensorInfo::n_elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::unique_ptr<GgufFile> GgufFile::open(const std::string& path) {
  std::unique_ptr<GgufFile> f(new GgufFile(MappedFile(path)));
  try {
    f->parse();
  } catch (const std::exception& e) {
    rethrow_with_context(e, path);
  }
  return f;
}

void GgufFile::parse() {
  Cursor c(file_.data(), file_.size());
  const uint32_t magic = c.read<uint32_t>("magic");
  if (magic != 0x46554747u) fail("not a GGUF file (magic {:#010x}, expected 'GGUF')", magic);
  version_ = c.read<uint32_t>("version");
  if (version_ == 1) fail("GGUF version 1 is not supported (only 2 and 3)");
  if (version_ != 2 && version_ != 3) fail("GGUF version {} is not supported (only 2 and 3)", version_);
  const uint64_t n_tensors = c.read<uint64_t>("tensor count");
  const uint64_t n_kv = c.read<uint64_t>("metadata count");
  if (n_tensors > kMaxTensors) fail("tensor count {} is absurd", n_tensors);
  if (n_kv > kMaxKv) fail("metadata count {} is absurd", n_kv);

  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string key = c.read_string("metadata key", kMaxKeyLength);
    if (auto bad = utf8_error_offset(key))
      fail("metadata key #{} '{}' is not valid UTF-8 (byte {})", i, printable(key), *bad);
    const uint32_t t = c.read<uint32_t>("metadata value type");
    if (!valid_type(t)) fail("metadata {}: value type {} is unknown", printable(key), t);
    GgufValue value;
    try {
      value = read_value(c, GgufValueType(t), 0);
    } catch (const std::exception& e) {
      rethrow_with_context(e, "metadata " + printable(key));
    }
    if (kv_index_.count(key)) fail("metadata {}: duplicate key", printable(key));
    kv_index_.emplace(key, kv_.size());
    kv_.emplace_back(std::move(key), std::move(value));
  }

  if (const auto* a = find("general.alignment")) {
    if (!a->is_integer()) fail("metadata general.alignment: not an integer");
    const uint64_t al = std::holds_alternative<uint64_t>(a->v) ? std::get<uint64_t>(a->v) : uint64_t(std::get<int64_t>(a->v));
    if (al == 0 || (al & (al - 1)) != 0 || al > (1u << 20)) fail("metadata general.alignment: {} is not a power of two", al);
    alignment_ = uint32_t(al);
  }

  // Each tensor info takes at least 32 bytes (empty name, one dimension): check before reserving.
  c.need(n_tensors * 32, "tensor infos");
  tensors_.reserve(size_t(n_tensors));
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensorInfo ti;
    ti.name = c.read_string("tensor name", kMaxKeyLength);
    if (auto bad = utf8_error_offset(ti.name))
      fail("tensor #{} name '{}' is not valid UTF-8 (byte {})", i, printable(ti.name), *bad);
    const std::string who = printable(ti.name);
    const uint32_t n_dims = c.read<uint32_t>("tensor dimension count");
    if (n_dims == 0 || n_dims > 4) fail("tensor '{}': {} dimensions (1 to 4 allowed)", who, n_dims);
    int64_t n_elem = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t dim = c.read<uint64_t>("tensor dimension");
      if (dim == 0 || dim > (1ull << 40)) fail("tensor '{}': dimension {} is {}", who, d, dim);
      if (n_elem > std::numeric_limits<int64_t>::max() / int64_t(dim)) fail("tensor '{}': element count overflows", who);
      n_elem *= int64_t(dim);
      ti.shape.push_back(int64_t(dim));
    }
    const uint32_t type_id = c.read<uint32_t>("tensor type");
    const auto traits = ggml_type_traits(type_id);
    if (!traits) fail("tensor '{}': unknown ggml type id {}", who, type_id);
    ti.type = traits->type;
    if (ti.shape[0] % traits->block_size != 0)
      fail("tensor '{}': first dimension {} is not a multiple of {}'s block size {}", who, ti.shape[0], traits->name,
           traits->block_size);
    const uint64_t n_blocks = uint64_t(n_elem / traits->block_size);
    if (n_blocks > std::numeric_limits<uint64_t>::max() / traits->block_bytes)
      fail("tensor '{}': byte size overflows", who);
    ti.nbytes = size_t(n_blocks * traits->block_bytes);
    ti.offset = c.read<uint64_t>("tensor offset");
    if (ti.offset % alignment_ != 0) fail("tensor '{}': offset {} is not aligned to {}", who, ti.offset, alignment_);
    if (tensor_index_.count(ti.name)) fail("tensor '{}': duplicate name", who);
    tensor_index_.emplace(ti.name, tensors_.size());
    tensors_.push_back(std::move(ti));
  }

  data_offset_ = (c.pos() + alignment_ - 1) / alignment_ * alignment_;
  if (n_tensors > 0 && data_offset_ > file_.size()) fail("truncated: data section starts at {} past end of file ({} bytes)", data_offset_, file_.size());
  const uint64_t data_size = file_.size() > data_offset_ ? file_.size() - data_offset_ : 0;

  // Each tensor must lie inside the data section and no two may overlap.
  std::vector<std::pair<uint64_t, size_t>> extents;
  for (size_t i = 0; i < tensors_.size(); ++i) {
    auto& ti = tensors_[i];
    if (ti.offset > data_size || ti.nbytes > data_size - ti.offset)
      fail("tensor '{}': bytes [{}, {}) lie outside the data section ({} bytes; file truncated?)", printable(ti.name), ti.offset,
           ti.offset + ti.nbytes, data_size);
    ti.data = file_.data() + data_offset_ + ti.offset;
    extents.emplace_back(ti.offset, i);
  }
  std::sort(extents.begin(), extents.end());
  for (size_t k = 1; k < extents.size(); ++k) {
    const auto& prev = tensors_[extents[k - 1].second];
    const auto& cur = tensors_[extents[k].second];
    if (prev.offset + prev.nbytes > cur.offset)
      fail("tensors '{}' and '{}' overlap", printable(prev.name), printable(cur.name));
  }
}

const GgufValue* GgufFile::find(std::string_view key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

void GgufFile::fail_key(std::string_view key, std::string_view what) const {
  fail("{}: metadata {}: {}", path(), key, what);
}

namespace {
template <typename T>
std::optional<T> int_as(const GgufValue& v) {
  if (std::holds_alternative<uint64_t>(v.v)) {
    const uint64_t x = std::get<uint64_t>(v.v);
    if (x > uint64_t(std::numeric_limits<T>::max())) return std::nullopt;
    return T(x);
  }
  const int64_t x = std::get<int64_t>(v.v);
  if (x < 0 && std::is_unsigned_v<T>) return std::nullopt;
  if constexpr (std::is_signed_v<T>) {
    if (x < std::numeric_limits<T>::min() || x > std::numeric_limits<T>::max()) return std::nullopt;
  }
  return T(x);
}
}  // namespace

std::optional<std::string> GgufFile::find_string(std::string_view key) const {
  const auto* v = find(key);
  if (!v) return std::nullopt;
  if (v->type != GgufValueType::STRING) fail_key(key, fmt::format("expected string, found {}", gguf_value_type_name(v->type)));
  return std::get<std::string>(v->v);
}
std::string GgufFile::get_string(std::string_view key) const {
  auto s = find_string(key);
  if (!s) fail_key(key, "missing");
  return *s;
}
std::optional<int64_t> GgufFile::find_int(std::string_view key) const {
  const auto* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_integer()) fail_key(key, fmt::format("expected integer, found {}", gguf_value_type_name(v->type)));
  auto x = int_as<int64_t>(*v);
  if (!x) fail_key(key, "value out of range");
  return x;
}
int64_t GgufFile::get_int(std::string_view key) const {
  auto x = find_int(key);
  if (!x) fail_key(key, "missing");
  return *x;
}
std::optional<uint64_t> GgufFile::find_uint(std::string_view key) const {
  const auto* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_integer()) fail_key(key, fmt::format("expected integer, found {}", gguf_value_type_name(v->type)));
  auto x = int_as<uint64_t>(*v);
  if (!x) fail_key(key, "negative value where unsigned expected");
  return x;
}
uint64_t GgufFile::get_uint(std::string_view key) const {
  auto x = find_uint(key);
  if (!x) fail_key(key, "missing");
  return *x;
}
std::optional<double> GgufFile::find_float(std::string_view key) const {
  const auto* v = find(key);
  if (!v) return std::nullopt;
  if (v->is_float()) return std::get<double>(v->v);
  if (v->is_integer()) return double(*find_int(key));
  fail_key(key, fmt::format("expected number, found {}", gguf_value_type_name(v->type)));
}
double GgufFile::get_float(std::string_view key) const {
  auto x = find_float(key);
  if (!x) fail_key(key, "missing");
  return *x;
}
std::optional<bool> GgufFile::find_bool(std::string_view key) const {
  const auto* v = find(key);
  if (!v) return std::nullopt;
  if (v->type != GgufValueType::BOOL) fail_key(key, fmt::format("expected bool, found {}", gguf_value_type_name(v->type)));
  return std::get<bool>(v->v);
}
bool GgufFile::get_bool(std::string_view key) const {
  auto x = find_bool(key);
  if (!x) fail_key(key, "missing");
  return *x;
}

std::vector<std::string> GgufFile::get_string_array(std::string_view key) const {
  const auto* v = find(key);
  if (!v) fail_key(key, "missing");
  const auto* a = v->as_array();
  if (!a || a->elem_type != GgufValueType::STRING) fail_key(key, "expected array of strings");
  std::vector<std::string> out;
  out.reserve(a->items.size());
  for (const auto& it : a->items) out.push_back(std::get<std::string>(it.v));
  return out;
}

std::vector<float> GgufFile::get_float_array(std::string_view key) const {
  const auto* v = find(key);
  if (!v) fail_key(key, "missing");
  const auto* a = v->as_array();
  if (!a) fail_key(key, "expected array");
  std::vector<float> out;
  out.reserve(a->items.size());
  for (const auto& it : a->items) {
    if (it.is_float()) out.push_back(float(std::get<double>(it.v)));
    else if (it.is_integer()) out.push_back(std::holds_alternative<uint64_t>(it.v) ? float(std::get<uint64_t>(it.v)) : float(std::get<int64_t>(it.v)));
    else fail_key(key, "expected array of numbers");
  }
  return out;
}

std::vector<int64_t> GgufFile::get_int_array(std::string_view key) const {
  const auto* v = find(key);
  if (!v) fail_key(key, "missing");
  const auto* a = v->as_array();
  if (!a) fail_key(key, "expected array");
  std::vector<int64_t> out;
  out.reserve(a->items.size());
  for (const auto& it : a->items) {
    if (!it.is_integer()) fail_key(key, "expected array of integers");
    auto x = int_as<int64_t>(it);
    if (!x) fail_key(key, "array value out of range");
    out.push_back(*x);
  }
  return out;
}

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const GgufTensorInfo& GgufFile::tensor(std::string_view name) const {
  const auto* t = find_tensor(name);
  if (!t) fail("{}: tensor '{}' is missing", path(), name);
  return *t;
}

}  // namespace qb::formats
