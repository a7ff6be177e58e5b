// Hand assembly of raw GGUF bytes for reader tests, independent of GgufWriter so that hostile
// layouts (bad UTF-8, overflowing sizes, wrong counts) can be built that the writer would refuse.
#pragma once
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

namespace qb::test {

class GgufBytes {
 public:
  std::vector<uint8_t> b;
  template <typename T>
  GgufBytes& put(T x) {
    const size_t at = b.size();
    b.resize(at + sizeof(T));
    std::memcpy(b.data() + at, &x, sizeof(T));
    return *this;
  }
  GgufBytes& str(std::string_view s) {
    put<uint64_t>(s.size());
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  GgufBytes& header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    return put<uint32_t>(0x46554747u).put<uint32_t>(version).put<uint64_t>(n_tensors).put<uint64_t>(n_kv);
  }
  GgufBytes& kv_u32(std::string_view key, uint32_t v) { return str(key).put<uint32_t>(4).put<uint32_t>(v); }
  GgufBytes& kv_str(std::string_view key, std::string_view v) { return str(key).put<uint32_t>(8).str(v); }
  GgufBytes& tensor_info(std::string_view name, const std::vector<uint64_t>& dims, uint32_t type, uint64_t offset) {
    str(name).put<uint32_t>(uint32_t(dims.size()));
    for (uint64_t d : dims) put<uint64_t>(d);
    return put<uint32_t>(type).put<uint64_t>(offset);
  }
  GgufBytes& pad(size_t alignment) {
    while (b.size() % alignment) b.push_back(0);
    return *this;
  }
  GgufBytes& zeros(size_t n) {
    b.resize(b.size() + n, 0);
    return *this;
  }
};

}  // namespace qb::test
