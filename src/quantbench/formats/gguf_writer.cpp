// GGUF writer; see gguf_writer.h. The header (metadata and tensor infos) is built in memory, since it
// is small, then streamed with the tensor data into an AtomicFileWriter.
#include "quantbench/formats/gguf_writer.h"

#include <cstring>
#include <limits>

#include <fmt/ranges.h>

#include "quantbench/core/error.h"
#include "quantbench/formats/text.h"

namespace qb::formats {
namespace {

// The same limits the reader enforces, so whatever we write reads back.
constexpr size_t kMaxKeyLength = (1 << 16) - 1;
constexpr int kMaxArrayDepth = 4;
constexpr int64_t kMaxDim = int64_t(1) << 40;

void check_utf8(std::string_view s, std::string_view what) {
  if (auto bad = utf8_error_offset(s)) fail("{} is not valid UTF-8 (byte {})", what, *bad);
}

template <typename T>
void check_unsigned(const GgufValue& v) {
  if (!std::holds_alternative<uint64_t>(v.v)) fail("{} value must hold an unsigned integer", gguf_value_type_name(v.type));
  if (std::get<uint64_t>(v.v) > std::numeric_limits<T>::max())
    fail("{} value {} is out of range", gguf_value_type_name(v.type), std::get<uint64_t>(v.v));
}
template <typename T>
void check_signed(const GgufValue& v) {
  if (!std::holds_alternative<int64_t>(v.v)) fail("{} value must hold a signed integer", gguf_value_type_name(v.type));
  const int64_t x = std::get<int64_t>(v.v);
  if (x < std::numeric_limits<T>::min() || x > std::numeric_limits<T>::max())
    fail("{} value {} is out of range", gguf_value_type_name(v.type), x);
}

// Checks that a value's variant matches its declared type, recursively.
void check_value(const GgufValue& v, int depth) {
  switch (v.type) {
    case GgufValueType::UINT8: return check_unsigned<uint8_t>(v);
    case GgufValueType::UINT16: return check_unsigned<uint16_t>(v);
    case GgufValueType::UINT32: return check_unsigned<uint32_t>(v);
    case GgufValueType::UINT64: return check_unsigned<uint64_t>(v);
    case GgufValueType::INT8: return check_signed<int8_t>(v);
    case GgufValueType::INT16: return check_signed<int16_t>(v);
    case GgufValueType::INT32: return check_signed<int32_t>(v);
    case GgufValueType::INT64: return check_signed<int64_t>(v);
    case GgufValueType::FLOAT32:
    case GgufValueType::FLOAT64:
      if (!std::holds_alternative<double>(v.v)) fail("{} value must hold a double", gguf_value_type_name(v.type));
      return;
    case GgufValueType::BOOL:
      if (!std::holds_alternative<bool>(v.v)) fail("bool value must hold a bool");
      return;
    case GgufValueType::STRING:
      if (!std::holds_alternative<std::string>(v.v)) fail("string value must hold a string");
      check_utf8(std::get<std::string>(v.v), "string value");
      return;
    case GgufValueType::ARRAY: {
      if (depth >= kMaxArrayDepth) fail("arrays nested deeper than {}", kMaxArrayDepth);
      if (!std::holds_alternative<std::shared_ptr<GgufArray>>(v.v) || !std::get<std::shared_ptr<GgufArray>>(v.v))
        fail("array value must hold an array");
      const auto& a = *std::get<std::shared_ptr<GgufArray>>(v.v);
      if (uint32_t(a.elem_type) > uint32_t(GgufValueType::FLOAT64)) fail("array element type {} is unknown", uint32_t(a.elem_type));
      for (size_t i = 0; i < a.items.size(); ++i) {
        const auto& it = a.items[i];
        if (it.type != a.elem_type)
          fail("array of {} has a {} at index {}", gguf_value_type_name(a.elem_type), gguf_value_type_name(it.type), i);
        check_value(it, depth + 1);
      }
      return;
    }
  }
  fail("value type {} is unknown", uint32_t(v.type));
}

class Buffer {
 public:
  template <typename T>
  void put(T x) {
    const size_t at = bytes_.size();
    bytes_.resize(at + sizeof(T));
    std::memcpy(bytes_.data() + at, &x, sizeof(T));
  }
  void put_string(std::string_view s) {
    put<uint64_t>(s.size());
    bytes_.insert(bytes_.end(), s.begin(), s.end());
  }
  // Value body without its type tag (arrays carry their element type and length).
  void put_value(const GgufValue& v) {
    switch (v.type) {
      case GgufValueType::UINT8: return put(uint8_t(std::get<uint64_t>(v.v)));
      case GgufValueType::UINT16: return put(uint16_t(std::get<uint64_t>(v.v)));
      case GgufValueType::UINT32: return put(uint32_t(std::get<uint64_t>(v.v)));
      case GgufValueType::UINT64: return put(std::get<uint64_t>(v.v));
      case GgufValueType::INT8: return put(int8_t(std::get<int64_t>(v.v)));
      case GgufValueType::INT16: return put(int16_t(std::get<int64_t>(v.v)));
      case GgufValueType::INT32: return put(int32_t(std::get<int64_t>(v.v)));
      case GgufValueType::INT64: return put(std::get<int64_t>(v.v));
      case GgufValueType::FLOAT32: return put(float(std::get<double>(v.v)));
      case GgufValueType::FLOAT64: return put(std::get<double>(v.v));
      case GgufValueType::BOOL: return put(uint8_t(std::get<bool>(v.v) ? 1 : 0));
      case GgufValueType::STRING: return put_string(std::get<std::string>(v.v));
      case GgufValueType::ARRAY: {
        const auto& a = *std::get<std::shared_ptr<GgufArray>>(v.v);
        put(uint32_t(a.elem_type));
        put<uint64_t>(a.items.size());
        for (const auto& it : a.items) put_value(it);
        return;
      }
    }
  }
  void pad_to(uint64_t alignment) {
    const size_t rem = bytes_.size() % alignment;
    if (rem) bytes_.resize(bytes_.size() + alignment - rem, 0);
  }
  const std::vector<uint8_t>& bytes() const { return bytes_; }

 private:
  std::vector<uint8_t> bytes_;
};

uint64_t padded(uint64_t n, uint64_t alignment) { return (n + alignment - 1) / alignment * alignment; }

}  // namespace

GgufWriter::GgufWriter(uint32_t version) : version_(version) {
  if (version != 2 && version != 3) fail("GGUF writer: version {} is not supported (only 2 and 3)", version);
}

void GgufWriter::set(std::string key, GgufValue value) {
  try {
    if (key.empty()) fail("metadata key is empty");
    if (key.size() > kMaxKeyLength) fail("metadata key of {} bytes is longer than {}", key.size(), kMaxKeyLength);
    check_utf8(key, "metadata key");
    check_value(value, 0);
    if (key == "general.alignment") {
      if (!value.is_integer()) fail("not an integer");
      const uint64_t al = std::holds_alternative<uint64_t>(value.v) ? std::get<uint64_t>(value.v)
                                                                     : uint64_t(std::get<int64_t>(value.v));
      if (al == 0 || (al & (al - 1)) != 0 || al > (1u << 20)) fail("{} is not a power of two up to 2^20", al);
    }
  } catch (const std::exception& e) {
    rethrow_with_context(e, "GGUF writer: metadata " + printable(key));
  }
  for (auto& [k, v] : kv_) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  kv_.emplace_back(std::move(key), std::move(value));
}

bool GgufWriter::remove(std::string_view key) {
  for (auto it = kv_.begin(); it != kv_.end(); ++it) {
    if (it->first == key) {
      kv_.erase(it);
      return true;
    }
  }
  return false;
}

const GgufValue* GgufWriter::find(std::string_view key) const {
  for (const auto& [k, v] : kv_)
    if (k == key) return &v;
  return nullptr;
}

void GgufWriter::copy_metadata_from(const GgufFile& f) {
  for (const auto& [k, v] : f.metadata()) set(k, v);
}

uint32_t GgufWriter::alignment() const {
  const auto* a = find("general.alignment");
  if (!a) return 32;
  return uint32_t(std::holds_alternative<uint64_t>(a->v) ? std::get<uint64_t>(a->v) : uint64_t(std::get<int64_t>(a->v)));
}

void GgufWriter::check_tensor(const std::string& name, GgmlType type, const std::vector<int64_t>& shape,
                              size_t nbytes) const {
  const std::string who = "GGUF writer: tensor '" + printable(name) + "'";
  if (name.empty()) fail("GGUF writer: tensor name is empty");
  if (name.size() > kMaxKeyLength) fail("{}: name is longer than {} bytes", who, kMaxKeyLength);
  if (auto bad = utf8_error_offset(name)) fail("{}: name is not valid UTF-8 (byte {})", who, *bad);
  if (tensor_index_.count(name)) fail("{}: duplicate name", who);
  const auto traits = ggml_type_traits(uint32_t(type));
  if (!traits) fail("{}: unknown ggml type id {}", who, uint32_t(type));
  if (shape.empty() || shape.size() > 4) fail("{}: {} dimensions (1 to 4 allowed)", who, shape.size());
  int64_t n = 1;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] <= 0 || shape[d] > kMaxDim) fail("{}: dimension {} is {}", who, d, shape[d]);
    if (n > std::numeric_limits<int64_t>::max() / shape[d]) fail("{}: element count overflows", who);
    n *= shape[d];
  }
  if (shape[0] % traits->block_size != 0)
    fail("{}: first dimension {} is not a multiple of {}'s block size {}", who, shape[0], traits->name, traits->block_size);
  const uint64_t want = uint64_t(n / traits->block_size) * traits->block_bytes;
  if (want != nbytes) fail("{}: {} bytes given, {} of shape {} needs {}", who, nbytes, traits->name, fmt::join(shape, "x"), want);
}

void GgufWriter::add_tensor(std::string name, GgmlType type, std::vector<int64_t> shape, std::span<const uint8_t> data) {
  check_tensor(name, type, shape, data.size());
  tensor_index_.emplace(name, tensors_.size());
  tensors_.push_back({std::move(name), type, std::move(shape), data, nullptr});
}

void GgufWriter::add_tensor_owned(std::string name, GgmlType type, std::vector<int64_t> shape, std::vector<uint8_t>&& data) {
  check_tensor(name, type, shape, data.size());
  auto owned = std::make_shared<std::vector<uint8_t>>(std::move(data));
  tensor_index_.emplace(name, tensors_.size());
  tensors_.push_back({std::move(name), type, std::move(shape), std::span<const uint8_t>(*owned), owned});
}

void GgufWriter::write(const std::string& path) const {
  const uint64_t align = alignment();
  Buffer h;
  h.put<uint32_t>(0x46554747u);  // "GGUF"
  h.put<uint32_t>(version_);
  h.put<uint64_t>(tensors_.size());
  h.put<uint64_t>(kv_.size());
  for (const auto& [k, v] : kv_) {
    h.put_string(k);
    h.put(uint32_t(v.type));
    h.put_value(v);
  }
  uint64_t offset = 0;
  for (const auto& t : tensors_) {
    h.put_string(t.name);
    h.put<uint32_t>(uint32_t(t.shape.size()));
    for (int64_t d : t.shape) h.put<uint64_t>(uint64_t(d));
    h.put<uint32_t>(uint32_t(t.type));
    h.put<uint64_t>(offset);
    offset += padded(t.data.size(), align);
  }
  h.pad_to(align);

  try {
    AtomicFileWriter out(path);
    out.write(h.bytes().data(), h.bytes().size());
    for (const auto& t : tensors_) {
      out.write(t.data.data(), t.data.size());
      out.write_zeros(padded(t.data.size(), align) - t.data.size());
    }
    out.commit();
  } catch (const Error&) {
    throw;  // already names the path
  } catch (const std::exception& e) {
    rethrow_with_context(e, path);
  }
}

}  // namespace qb::formats
