// Fuzz-style robustness: a few hundred mutations (fixed seed) of the header region of a valid GGUF
// and of a valid safetensors file. Each must either throw qb::Error or parse into something whose
// every tensor lies inside the file; nothing may crash or read out of bounds (run under ASan+UBSan).
#include <gtest/gtest.h>

#include <random>

#include "quantbench/core/error.h"
#include "quantbench/formats/gguf_reader.h"
#include "quantbench/formats/safetensors.h"
#include "../test_paths.h"
#include "temp_dir.h"

namespace qb::formats {
namespace {

// Mutates 1 to 4 bytes of b[0, region): random bytes, single bit flips, or boundary values. Uses the
// raw mt19937 output (fully specified by the standard) so the corpus is the same everywhere.
void mutate(std::vector<uint8_t>& b, size_t region, std::mt19937& rng) {
  static const uint8_t boundary[] = {0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF, 0xC0, 0xED};
  const int n = 1 + int(rng() % 4);
  for (int i = 0; i < n; ++i) {
    // Half the edits land in the first 64 bytes (counts, first lengths), the rest anywhere.
    const size_t at = (rng() % 2) ? rng() % std::min<size_t>(64, region) : rng() % region;
    switch (rng() % 3) {
      case 0: b[at] = uint8_t(rng()); break;
      case 1: b[at] ^= uint8_t(1u << (rng() % 8)); break;
      default: b[at] = boundary[rng() % std::size(boundary)]; break;
    }
  }
}

TEST(FuzzHeaders, GgufMutationsThrowOrParseSafely) {
  const auto valid = test::read_bytes(test::stories260k_path());
  const size_t header = GgufFile::open(test::stories260k_path())->data_offset();
  test::TempDir dir;
  const auto path = dir.file("fuzz.gguf");
  std::mt19937 rng(20261126);
  int parsed = 0, rejected = 0;
  for (int iter = 0; iter < 300; ++iter) {
    auto b = valid;
    mutate(b, header, rng);
    test::write_bytes(path, b);
    try {
      auto f = GgufFile::open(path);
      ++parsed;
      for (const auto& [k, v] : f->metadata()) (void)v.to_display();
      for (const auto& t : f->tensors()) {
        ASSERT_NE(t.data, nullptr);
        ASSERT_LE(f->data_offset() + t.offset + t.nbytes, f->file_size()) << t.name;
        volatile uint8_t first = t.data[0], last = t.data[t.nbytes - 1];  // ASan checks these reads
        (void)first;
        (void)last;
      }
    } catch (const Error& e) {
      ++rejected;
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
    }
  }
  // Both outcomes occur: mutations of values leave a valid file, mutations of structure do not.
  EXPECT_GT(parsed, 0);
  EXPECT_GT(rejected, 0);
}

TEST(FuzzHeaders, SafetensorsMutationsThrowOrParseSafely) {
  const auto golden = test::source_path("tests/golden/formats/safetensors_all_dtypes.safetensors");
  const auto valid = test::read_bytes(golden);
  const size_t header = SafetensorsFile::open(golden)->data_offset();
  test::TempDir dir;
  const auto path = dir.file("fuzz.safetensors");
  std::mt19937 rng(7);
  int parsed = 0, rejected = 0;
  for (int iter = 0; iter < 300; ++iter) {
    auto b = valid;
    mutate(b, header, rng);
    test::write_bytes(path, b);
    try {
      auto f = SafetensorsFile::open(path);
      ++parsed;
      for (const auto& t : f->tensors()) {
        ASSERT_LE(f->data_offset() + t.end, valid.size()) << t.name;
        if (t.nbytes()) {
          volatile uint8_t first = t.data[0], last = t.data[t.nbytes() - 1];
          (void)first;
          (void)last;
        }
      }
    } catch (const Error& e) {
      ++rejected;
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
    }
  }
  EXPECT_GT(parsed, 0);
  EXPECT_GT(rejected, 0);
}

}  // namespace
}  // namespace qb::formats
