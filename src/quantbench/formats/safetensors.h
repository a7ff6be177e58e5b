// safetensors reader and writer (the Hugging Face format: 8-byte little-endian header length, a JSON
// header, then the raw tensor bytes). The reader maps the file and checks every tensor's dtype,
// shape and data_offsets (in range, size = elements x dtype size, no two overlapping) before any
// pointer is formed; the writer follows the reference implementation's layout (tensors ordered by
// dtype then name, compact JSON, header padded with spaces to a multiple of 8) and writes atomically.
//
// Shapes here are row-major as safetensors stores them: shape[0] is the OUTERMOST dimension, the
// reverse of GGUF/ggml order. A Linear weight of n_out x n_in is {n_out, n_in} here and {n_in, n_out}
// in ggml order; ggml_shape() converts.
//
// Supported dtypes: F32, F16, BF16, I8, U8, I32, F8_E4M3. Any other dtype is an error that lists these.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "quantbench/core/dtype.h"
#include "quantbench/core/mapped_file.h"

namespace qb::formats {

// safetensors' dtype names ("F32", "BF16", "F8_E4M3", ...) for the supported subset.
std::optional<DType> safetensors_dtype_from_name(std::string_view name);
std::string_view safetensors_dtype_name(DType t);  // throws qb::Error for a dtype safetensors support lacks here
std::string_view safetensors_supported_dtypes();   // "F32, F16, BF16, I8, U8, I32, F8_E4M3"

struct SafetensorsTensorInfo {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;  // row-major: outermost first; {} is a scalar
  uint64_t begin = 0, end = 0; // data_offsets, relative to the start of the data section
  const uint8_t* data = nullptr;  // inside the mapping, checked in range
  size_t nbytes() const { return size_t(end - begin); }
  int64_t n_elements() const;
  // Reversed: innermost first, as GGUF stores shapes. A scalar gives {} (GGUF wants at least {1}).
  std::vector<int64_t> ggml_shape() const;
};

class SafetensorsFile {
 public:
  // Maps and parses a file. Throws qb::Error("PATH: ...") on any problem.
  static std::unique_ptr<SafetensorsFile> open(const std::string& path);

  const std::string& path() const { return file_.path(); }
  uint64_t header_size() const { return header_size_; }    // JSON bytes, padding included
  uint64_t data_offset() const { return 8 + header_size_; }  // where the data section starts

  const std::map<std::string, std::string>& metadata() const { return metadata_; }  // "__metadata__"
  const std::vector<SafetensorsTensorInfo>& tensors() const { return tensors_; }    // header order
  const SafetensorsTensorInfo* find_tensor(std::string_view name) const;
  const SafetensorsTensorInfo& tensor(std::string_view name) const;  // throws naming file and tensor

 private:
  explicit SafetensorsFile(MappedFile file) : file_(std::move(file)) {}
  void parse();

  MappedFile file_;
  uint64_t header_size_ = 0;
  std::map<std::string, std::string> metadata_;
  std::vector<SafetensorsTensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> index_;
};

class SafetensorsWriter {
 public:
  void set_metadata(std::string key, std::string value);  // "__metadata__" entries (string to string)

  // Adds a tensor (row-major shape) whose bytes the caller keeps alive until write() returns. Throws
  // qb::Error naming the tensor if the name is empty, "__metadata__" or taken, the dtype is not
  // supported, or data.size() is not elements x dtype size.
  void add_tensor(std::string name, DType dtype, std::vector<int64_t> shape, std::span<const uint8_t> data);
  void add_tensor_owned(std::string name, DType dtype, std::vector<int64_t> shape, std::vector<uint8_t>&& data);

  // Writes atomically; throws qb::Error("PATH: ...") and leaves nothing at PATH on failure.
  void write(const std::string& path) const;

 private:
  struct Tensor {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    std::span<const uint8_t> data;
    std::shared_ptr<std::vector<uint8_t>> owned;
  };
  void check_tensor(const std::string& name, DType dtype, const std::vector<int64_t>& shape, size_t nbytes) const;

  std::map<std::string, std::string> metadata_;
  std::vector<Tensor> tensors_;
  std::map<std::string, size_t, std::less<>> index_;
};

}  // namespace qb::formats
