// SHA-256 (FIPS 180-4), for the Manifest: every model, calibration and evaluation file is named by its
// digest. Tested against the NIST example vectors.
#pragma once
#include <array>
#include <cstdint>
#include <span>
#include <string>

namespace qb {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t n);
  std::array<uint8_t, 32> digest();  // finalises; the object must not be updated afterwards
  std::string hex_digest();

 private:
  void block(const uint8_t* p);
  uint32_t h_[8];
  uint8_t buf_[64];
  size_t buf_len_ = 0;
  uint64_t total_ = 0;
};

std::string sha256_hex(std::span<const uint8_t> bytes);
std::string sha256_file(const std::string& path);  // streams the file; throws qb::Error naming it

}  // namespace qb
