// safetensors reader and writer; see safetensors.h. The header is parsed with nlohmann::json; a
// parse callback rejects duplicate tensor names (JSON parsers keep one silently) and deep nesting
// before it is built.
#include "quantbench/formats/safetensors.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <set>

#include <nlohmann/json.hpp>

#include "quantbench/core/error.h"
#include "quantbench/formats/text.h"

namespace qb::formats {
namespace {

using Json = nlohmann::ordered_json;

// The reference implementation refuses headers over 100 MB; so do we.
constexpr uint64_t kMaxHeader = 100'000'000;
constexpr size_t kMaxDims = 8;

struct DTypeRow {
  DType dtype;
  std::string_view name;
  int write_rank;  // the reference writer's dtype order (its enum order), written highest first
};
constexpr DTypeRow kDTypes[] = {
    {DType::F32, "F32", 6}, {DType::I32, "I32", 5}, {DType::BF16, "BF16", 4}, {DType::F16, "F16", 3},
    {DType::F8_E4M3, "F8_E4M3", 2}, {DType::I8, "I8", 1}, {DType::U8, "U8", 0},
};

const DTypeRow* row_of(DType t) {
  for (const auto& r : kDTypes)
    if (r.dtype == t) return &r;
  return nullptr;
}

// Elements of a shape, or nullopt if the count overflows int64.
std::optional<int64_t> element_count(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d) return std::nullopt;
    n *= d;
  }
  return n;
}

uint64_t get_offset(const Json& j, std::string_view what) {
  if (!j.is_number_unsigned()) fail("{} is not a non-negative integer", what);
  return j.get<uint64_t>();
}

}  // namespace

std::optional<DType> safetensors_dtype_from_name(std::string_view name) {
  for (const auto& r : kDTypes)
    if (r.name == name) return r.dtype;
  return std::nullopt;
}

std::string_view safetensors_dtype_name(DType t) {
  const auto* r = row_of(t);
  if (!r) fail("dtype {} cannot be stored in safetensors here (supported: {})", dtype_name(t), safetensors_supported_dtypes());
  return r->name;
}

std::string_view safetensors_supported_dtypes() { return "F32, F16, BF16, I8, U8, I32, F8_E4M3"; }

int64_t SafetensorsTensorInfo::n_elements() const { return element_count(shape).value_or(0); }

std::vector<int64_t> SafetensorsTensorInfo::ggml_shape() const { return {shape.rbegin(), shape.rend()}; }

std::unique_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  std::unique_ptr<SafetensorsFile> f(new SafetensorsFile(MappedFile(path)));
  try {
    f->parse();
  } catch (const std::exception& e) {
    rethrow_with_context(e, path);
  }
  return f;
}

void SafetensorsFile::parse() {
  const uint64_t size = file_.size();
  if (size < 8) fail("truncated: {} bytes, too short for the 8-byte header length", size);
  std::memcpy(&header_size_, file_.data(), 8);
  if (header_size_ > kMaxHeader) fail("header length {} is absurd (limit {})", header_size_, kMaxHeader);
  if (header_size_ > size - 8) fail("truncated: header length {} exceeds the {} bytes after it", header_size_, size - 8);
  if (header_size_ < 2) fail("header length {} is too short for a JSON object", header_size_);

  const char* text = reinterpret_cast<const char*>(file_.data() + 8);
  std::set<std::string, std::less<>> seen;
  // Called by the parser per event; depth 1 keys are tensor names (and __metadata__).
  auto guard = [&seen](int depth, Json::parse_event_t event, Json& parsed) {
    if (depth > 3) fail("header JSON nests deeper than a safetensors header does");
    if (event == Json::parse_event_t::key && depth == 1) {
      const auto& k = parsed.get_ref<const std::string&>();
      if (!seen.insert(k).second) fail("header: duplicate entry '{}'", printable(k));
    }
    return true;
  };
  Json header;
  try {
    header = Json::parse(text, text + header_size_, guard);
  } catch (const Json::exception& e) {
    fail("header is not valid JSON: {}", printable(e.what(), 200));
  }
  if (!header.is_object()) fail("header is not a JSON object");

  const uint64_t data_size = size - 8 - header_size_;
  const uint8_t* data = file_.data() + 8 + header_size_;
  for (const auto& [name, entry] : header.items()) {
    const std::string who = "tensor '" + printable(name) + "'";
    if (name == "__metadata__") {
      if (!entry.is_object()) fail("__metadata__ is not an object");
      for (const auto& [k, v] : entry.items()) {
        if (!v.is_string()) fail("__metadata__ '{}': value is not a string", printable(k));
        metadata_[k] = v.get<std::string>();
      }
      continue;
    }
    if (!entry.is_object()) fail("{}: entry is not an object", who);
    for (const char* field : {"dtype", "shape", "data_offsets"})
      if (!entry.contains(field)) fail("{}: missing '{}'", who, field);
    SafetensorsTensorInfo ti;
    ti.name = name;
    const auto& dt = entry["dtype"];
    if (!dt.is_string()) fail("{}: dtype is not a string", who);
    const auto dtype = safetensors_dtype_from_name(dt.get<std::string>());
    if (!dtype)
      fail("{}: dtype '{}' is not supported (supported: {})", who, printable(dt.get<std::string>()), safetensors_supported_dtypes());
    ti.dtype = *dtype;
    const auto& shape = entry["shape"];
    if (!shape.is_array()) fail("{}: shape is not an array", who);
    if (shape.size() > kMaxDims) fail("{}: {} dimensions (at most {})", who, shape.size(), kMaxDims);
    for (const auto& d : shape) {
      if (!d.is_number_unsigned() || d.get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max()))
        fail("{}: shape {} has an entry that is not a non-negative integer", who, printable(shape.dump(), 100));
      ti.shape.push_back(int64_t(d.get<uint64_t>()));
    }
    const auto& offs = entry["data_offsets"];
    if (!offs.is_array() || offs.size() != 2) fail("{}: data_offsets is not a pair", who);
    ti.begin = get_offset(offs[0], who + ": data_offsets[0]");
    ti.end = get_offset(offs[1], who + ": data_offsets[1]");
    if (ti.begin > ti.end) fail("{}: data_offsets [{}, {}) run backwards", who, ti.begin, ti.end);
    if (ti.end > data_size)
      fail("{}: data_offsets [{}, {}) lie outside the data section ({} bytes; file truncated?)", who, ti.begin, ti.end, data_size);
    const auto n = element_count(ti.shape);
    const size_t esize = dtype_size(ti.dtype);
    if (!n || uint64_t(*n) > std::numeric_limits<uint64_t>::max() / esize) fail("{}: element count overflows", who);
    if (uint64_t(*n) * esize != ti.end - ti.begin)
      fail("{}: data_offsets hold {} bytes, but shape {} of {} needs {}", who, ti.end - ti.begin,
           printable(shape.dump(), 100), dt.get<std::string>(), uint64_t(*n) * esize);
    ti.data = data + ti.begin;
    index_.emplace(ti.name, tensors_.size());
    tensors_.push_back(std::move(ti));
  }

  std::vector<size_t> order(tensors_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return std::pair(tensors_[a].begin, tensors_[a].end) < std::pair(tensors_[b].begin, tensors_[b].end);
  });
  for (size_t k = 1; k < order.size(); ++k) {
    const auto& prev = tensors_[order[k - 1]];
    const auto& cur = tensors_[order[k]];
    // Empty tensors occupy no bytes and may sit anywhere in range.
    if (prev.end > cur.begin && cur.begin != cur.end && prev.begin != prev.end)
      fail("tensors '{}' and '{}' overlap", printable(prev.name), printable(cur.name));
  }
}

const SafetensorsTensorInfo* SafetensorsFile::find_tensor(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

const SafetensorsTensorInfo& SafetensorsFile::tensor(std::string_view name) const {
  const auto* t = find_tensor(name);
  if (!t) fail("{}: tensor '{}' is missing", path(), printable(name));
  return *t;
}

void SafetensorsWriter::set_metadata(std::string key, std::string value) {
  if (!is_valid_utf8(key) || !is_valid_utf8(value)) fail("safetensors writer: __metadata__ '{}': not valid UTF-8", printable(key));
  metadata_[std::move(key)] = std::move(value);
}

void SafetensorsWriter::check_tensor(const std::string& name, DType dtype, const std::vector<int64_t>& shape,
                                     size_t nbytes) const {
  const std::string who = "safetensors writer: tensor '" + printable(name) + "'";
  if (name.empty() || name == "__metadata__") fail("{}: name not allowed", who);
  if (!is_valid_utf8(name)) fail("{}: name is not valid UTF-8", who);
  if (index_.count(name)) fail("{}: duplicate name", who);
  if (!row_of(dtype)) fail("{}: dtype {} is not supported (supported: {})", who, dtype_name(dtype), safetensors_supported_dtypes());
  if (shape.size() > kMaxDims) fail("{}: {} dimensions (at most {})", who, shape.size(), kMaxDims);
  for (int64_t d : shape)
    if (d < 0) fail("{}: negative dimension {}", who, d);
  const auto n = element_count(shape);
  if (!n) fail("{}: element count overflows", who);
  if (uint64_t(*n) * dtype_size(dtype) != nbytes)
    fail("{}: {} bytes given, {} elements of {} need {}", who, nbytes, *n, safetensors_dtype_name(dtype),
         uint64_t(*n) * dtype_size(dtype));
}

void SafetensorsWriter::add_tensor(std::string name, DType dtype, std::vector<int64_t> shape, std::span<const uint8_t> data) {
  check_tensor(name, dtype, shape, data.size());
  index_.emplace(name, tensors_.size());
  tensors_.push_back({std::move(name), dtype, std::move(shape), data, nullptr});
}

void SafetensorsWriter::add_tensor_owned(std::string name, DType dtype, std::vector<int64_t> shape,
                                         std::vector<uint8_t>&& data) {
  check_tensor(name, dtype, shape, data.size());
  auto owned = std::make_shared<std::vector<uint8_t>>(std::move(data));
  index_.emplace(name, tensors_.size());
  tensors_.push_back({std::move(name), dtype, std::move(shape), std::span<const uint8_t>(*owned), owned});
}

void SafetensorsWriter::write(const std::string& path) const {
  // The reference writer's order: dtype (its enum order, highest first), then name. Larger elements
  // come first, which keeps every tensor aligned to its element size.
  std::vector<const Tensor*> order;
  for (const auto& t : tensors_) order.push_back(&t);
  std::sort(order.begin(), order.end(), [](const Tensor* a, const Tensor* b) {
    const int ra = row_of(a->dtype)->write_rank, rb = row_of(b->dtype)->write_rank;
    return ra != rb ? ra > rb : a->name < b->name;
  });
  Json header = Json::object();
  if (!metadata_.empty()) {
    Json md = Json::object();
    for (const auto& [k, v] : metadata_) md[k] = v;
    header["__metadata__"] = std::move(md);
  }
  uint64_t offset = 0;
  for (const Tensor* t : order) {
    Json e = Json::object();
    e["dtype"] = safetensors_dtype_name(t->dtype);
    e["shape"] = t->shape;
    e["data_offsets"] = {offset, offset + t->data.size()};
    offset += t->data.size();
    header[t->name] = std::move(e);
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  try {
    AtomicFileWriter out(path);
    const uint64_t n = text.size();
    out.write(&n, 8);
    out.write(text.data(), text.size());
    for (const Tensor* t : order) out.write(t->data.data(), t->data.size());
    out.commit();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    rethrow_with_context(e, path);
  }
}

}  // namespace qb::formats
