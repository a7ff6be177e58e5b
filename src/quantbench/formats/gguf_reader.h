// GGUF reader (versions 2 and 3). The file is memory-mapped; every length, count, offset and tensor
// extent is checked against the file before use, so a truncated or hostile file yields a qb::Error
// naming the file and the field, never an out-of-bounds read.
//
// Shapes are in ggml order: shape[0] is the contiguous (innermost) dimension, so a weight matrix used
// as y = W x with W of n_out rows and n_in columns has shape {n_in, n_out}.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "quantbench/core/mapped_file.h"
#include "quantbench/formats/ggml_types.h"

namespace qb::formats {

enum class GgufValueType : uint32_t {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};
std::string_view gguf_value_type_name(GgufValueType t);

struct GgufValue;
struct GgufArray {
  GgufValueType elem_type;
  std::vector<GgufValue> items;
};

// One metadata value. Integers keep their declared type so a writer can round-trip them exactly.
struct GgufValue {
  GgufValueType type = GgufValueType::UINT8;
  std::variant<uint64_t, int64_t, double, bool, std::string, std::shared_ptr<GgufArray>> v;

  static GgufValue u8(uint8_t x) { return {GgufValueType::UINT8, uint64_t(x)}; }
  static GgufValue u16(uint16_t x) { return {GgufValueType::UINT16, uint64_t(x)}; }
  static GgufValue i8(int8_t x) { return {GgufValueType::INT8, int64_t(x)}; }
  static GgufValue i16(int16_t x) { return {GgufValueType::INT16, int64_t(x)}; }
  static GgufValue u32(uint32_t x) { return {GgufValueType::UINT32, uint64_t(x)}; }
  static GgufValue u64(uint64_t x) { return {GgufValueType::UINT64, x}; }
  static GgufValue i32(int32_t x) { return {GgufValueType::INT32, int64_t(x)}; }
  static GgufValue i64(int64_t x) { return {GgufValueType::INT64, x}; }
  static GgufValue f32(float x) { return {GgufValueType::FLOAT32, double(x)}; }
  static GgufValue f64(double x) { return {GgufValueType::FLOAT64, x}; }
  static GgufValue boolean(bool x) { return {GgufValueType::BOOL, x}; }
  static GgufValue str(std::string x) { return {GgufValueType::STRING, std::move(x)}; }
  static GgufValue array(GgufValueType elem, std::vector<GgufValue> items) {
    return {GgufValueType::ARRAY, std::make_shared<GgufArray>(GgufArray{elem, std::move(items)})};
  }
  static GgufValue string_array(const std::vector<std::string>& xs);
  static GgufValue f32_array(const std::vector<float>& xs);
  static GgufValue i32_array(const std::vector<int32_t>& xs);

  bool is_integer() const;
  bool is_float() const { return type == GgufValueType::FLOAT32 || type == GgufValueType::FLOAT64; }
  const GgufArray* as_array() const;
  std::string to_display(size_t max_items = 8) const;  // short human form for inspect
};

struct GgufTensorInfo {
  std::string name;
  GgmlType type;
  std::vector<int64_t> shape;  // ggml order, 1 to 4 dims
  uint64_t offset = 0;         // relative to the data section, as stored
  size_t nbytes = 0;
  const uint8_t* data = nullptr;  // inside the mapping, checked in range

  int64_t n_elements() const;
};

class GgufFile {
 public:
  // Maps and parses a file. Throws qb::Error("PATH: ...") on any problem.
  static std::unique_ptr<GgufFile> open(const std::string& path);

  const std::string& path() const { return file_.path(); }
  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  uint64_t file_size() const { return file_.size(); }

  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return kv_; }
  const GgufValue* find(std::string_view key) const;
  bool has(std::string_view key) const { return find(key) != nullptr; }

  // Typed access. The get_* forms throw "PATH: metadata KEY: ..." if missing or of the wrong type;
  // integers of any width convert when the value fits the result type.
  std::string get_string(std::string_view key) const;
  int64_t get_int(std::string_view key) const;
  uint64_t get_uint(std::string_view key) const;
  double get_float(std::string_view key) const;  // accepts float or integer values
  bool get_bool(std::string_view key) const;
  std::vector<std::string> get_string_array(std::string_view key) const;
  std::vector<float> get_float_array(std::string_view key) const;
  std::vector<int64_t> get_int_array(std::string_view key) const;
  std::optional<std::string> find_string(std::string_view key) const;
  std::optional<int64_t> find_int(std::string_view key) const;
  std::optional<uint64_t> find_uint(std::string_view key) const;
  std::optional<double> find_float(std::string_view key) const;
  std::optional<bool> find_bool(std::string_view key) const;

  // "general.architecture", required by every model file (vocab-only files have it too).
  std::string architecture() const { return get_string("general.architecture"); }

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find_tensor(std::string_view name) const;
  const GgufTensorInfo& tensor(std::string_view name) const;  // throws naming the tensor

 private:
  explicit GgufFile(MappedFile file) : file_(std::move(file)) {}
  void parse();
  [[noreturn]] void fail_key(std::string_view key, std::string_view what) const;

  MappedFile file_;
  uint32_t version_ = 0;
  uint32_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::map<std::string, size_t, std::less<>> kv_index_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> tensor_index_;
};

}  // namespace qb::formats
