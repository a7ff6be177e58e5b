// GGUF writer (version 3 by default, 2 on request; the two share one little-endian layout). Metadata
// and tensors are checked when added, so a file we write is always one our reader accepts: values
// match their declared types, names are UTF-8, byte sizes match type x shape. The layout is the one
// the `gguf` Python package writes (key-values in insertion order, tensor infos, data section at the
// alignment, every tensor padded to the alignment, the last one too), so files can be compared byte
// for byte. Writing goes through AtomicFileWriter: a failure leaves nothing at the path.
//
// Shapes are in ggml order (shape[0] innermost), as in gguf_reader.h.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "quantbench/formats/ggml_types.h"
#include "quantbench/formats/gguf_reader.h"

namespace qb::formats {

class GgufWriter {
 public:
  explicit GgufWriter(uint32_t version = 3);  // 2 or 3

  // Sets a key: a new key goes last, an existing one keeps its place. Throws qb::Error naming the
  // key if the key or value is malformed (type/variant mismatch, mixed array, bad UTF-8, nesting
  // deeper than the reader allows, general.alignment not a power of two).
  void set(std::string key, GgufValue value);
  bool remove(std::string_view key);
  const GgufValue* find(std::string_view key) const;
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return kv_; }

  // Copies every key-value of `f` in file order (general.alignment included), replacing keys already set.
  void copy_metadata_from(const GgufFile& f);

  // Alignment of the data section and of every tensor: general.alignment if set, else 32.
  uint32_t alignment() const;
  void set_alignment(uint32_t alignment) { set("general.alignment", GgufValue::u32(alignment)); }

  // Adds a tensor whose bytes the caller keeps alive until write() returns (no copy: weights are big).
  // Throws qb::Error naming the tensor if the name is taken or malformed, the shape has not 1 to 4
  // positive dimensions, shape[0] is not a multiple of the type's block size, or data.size() differs
  // from the size type x shape implies.
  void add_tensor(std::string name, GgmlType type, std::vector<int64_t> shape, std::span<const uint8_t> data);
  // Same, taking ownership of the bytes.
  void add_tensor_owned(std::string name, GgmlType type, std::vector<int64_t> shape, std::vector<uint8_t>&& data);
  size_t tensor_count() const { return tensors_.size(); }

  // Writes the file atomically; throws qb::Error("PATH: ...") on failure, leaving nothing at PATH.
  void write(const std::string& path) const;

 private:
  struct Tensor {
    std::string name;
    GgmlType type;
    std::vector<int64_t> shape;
    std::span<const uint8_t> data;
    std::shared_ptr<std::vector<uint8_t>> owned;  // set when the writer holds the bytes
  };
  void check_tensor(const std::string& name, GgmlType type, const std::vector<int64_t>& shape, size_t nbytes) const;

  uint32_t version_;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::vector<Tensor> tensors_;
  std::map<std::string, size_t, std::less<>> tensor_index_;
};

}  // namespace qb::formats
