// Dequantization checked bit-for-bit against golden outputs of the `gguf` Python package
// (tests/golden/ggml_blocks/make_golden.py), plus block-size and NaN-scale checks per type.
#include "quantbench/quant/qformat/ggml_blocks.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <vector>

#include "quantbench/core/dtype.h"
#include "quantbench/core/error.h"
#include "quantbench/quant/qformat/ggml_block_structs.h"
#include "../test_paths.h"

namespace qb::qformat {
namespace {

using formats::GgmlType;

const GgmlType kAllTypes[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q4_0, GgmlType::Q4_1,
                              GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0, GgmlType::Q2_K, GgmlType::Q3_K,
                              GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K};

struct Golden {
  uint32_t type_id = 0;
  std::vector<uint8_t> raw;
  std::vector<float> values;
};

Golden load_golden(GgmlType type) {
  std::string name(formats::ggml_type_name(type));
  for (auto& c : name) c = char(std::tolower(static_cast<unsigned char>(c)));
  const std::string path = test::source_path("tests/golden/ggml_blocks/" + name + ".bin");
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error("cannot open " + path);
  std::vector<uint8_t> all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (all.size() < 16 || std::memcmp(all.data(), "QBGB", 4) != 0) throw Error(path + ": bad header");
  uint32_t hdr[3];
  std::memcpy(hdr, all.data() + 4, 12);
  Golden g;
  g.type_id = hdr[0];
  if (all.size() != 16 + size_t(hdr[2]) + size_t(hdr[1]) * 4) throw Error(path + ": bad size");
  g.raw.assign(all.begin() + 16, all.begin() + 16 + hdr[2]);
  g.values.resize(hdr[1]);
  std::memcpy(g.values.data(), all.data() + 16 + hdr[2], size_t(hdr[1]) * 4);
  return g;
}

TEST(GgmlBlocks, StructSizesMatchTypeTable) {
  EXPECT_EQ(formats::ggml_traits(GgmlType::Q4_0).block_bytes, sizeof(BlockQ4_0));
  EXPECT_EQ(formats::ggml_traits(GgmlType::Q4_1).block_bytes, sizeof(BlockQ4_1));
  EXPECT_EQ(formats::ggml_traits(GgmlType::Q5_0).block_bytes, sizeof(BlockQ5_0));
  EXPECT_EQ(formats::ggml_traits(GgmlType::Q5_1).block_bytes, sizeof(BlockQ5_1));
  EXPECT_EQ(formats::ggml_traits(GgmlType::Q8_0).block_bytes, sizeof(BlockQ8_0));
  EXPECT_EQ(formats::ggml_traits(GgmlType::Q2_K).block_bytes, sizeof(BlockQ2_K));
  EXPECT_EQ(formats::ggml_traits(GgmlType::Q3_K).block_bytes, sizeof(BlockQ3_K));
  EXPECT_EQ(formats::ggml_traits(GgmlType::Q4_K).block_bytes, sizeof(BlockQ4_K));
  EXPECT_EQ(formats::ggml_traits(GgmlType::Q5_K).block_bytes, sizeof(BlockQ5_K));
  EXPECT_EQ(formats::ggml_traits(GgmlType::Q6_K).block_bytes, sizeof(BlockQ6_K));
}

// Bit-exact equality with the gguf package (its numpy code performs the same float operations in the
// same order as llama.cpp's C reference, and neither side fuses multiply-adds).
TEST(GgmlBlocks, DequantizeMatchesGgufPackageBitExact) {
  for (GgmlType type : kAllTypes) {
    SCOPED_TRACE(std::string(formats::ggml_type_name(type)));
    ASSERT_TRUE(can_dequantize(type));
    const Golden g = load_golden(type);
    ASSERT_EQ(g.type_id, uint32_t(type));
    const int64_t n = int64_t(g.values.size());
    ASSERT_EQ(formats::ggml_row_bytes(type, n), g.raw.size());
    std::vector<float> out(g.values.size(), -12345.0f);
    dequantize_row(type, g.raw.data(), out.data(), n);
    for (size_t i = 0; i < out.size(); ++i)
      ASSERT_EQ(f32_bits(out[i]), f32_bits(g.values[i])) << "element " << i << ": " << out[i] << " vs " << g.values[i];
    EXPECT_EQ(find_non_finite(type, g.raw.data(), n), std::nullopt);
  }
}

TEST(GgmlBlocks, RejectsUnsupportedTypesAndRaggedRows) {
  EXPECT_FALSE(can_dequantize(GgmlType::IQ2_XXS));
  std::vector<uint8_t> buf(1024);
  std::vector<float> out(512);
  EXPECT_THROW(dequantize_row(GgmlType::IQ2_XXS, buf.data(), out.data(), 256), Error);
  EXPECT_THROW(dequantize_row(GgmlType::Q4_0, buf.data(), out.data(), 33), Error);
  EXPECT_THROW(find_non_finite(GgmlType::Q4_K, buf.data(), 100), Error);
}

// A NaN or Inf in any f16 super-scale (or any float element) is found and named, per type.
TEST(GgmlBlocks, FindNonFiniteCatchesBadScales) {
  for (GgmlType type : kAllTypes) {
    SCOPED_TRACE(std::string(formats::ggml_type_name(type)));
    Golden g = load_golden(type);
    const int64_t n = int64_t(g.values.size());
    const auto& tr = formats::ggml_traits(type);
    const int64_t bad_block = n / tr.block_size - 1;  // the last block (or element)
    std::vector<std::pair<size_t, std::string>> fields;  // byte offset within block, expected name
    switch (type) {
      case GgmlType::F32: fields = {{0, "element"}}; break;
      case GgmlType::F16: case GgmlType::BF16: fields = {{0, "element"}}; break;
      case GgmlType::Q4_1: case GgmlType::Q5_1: fields = {{0, "scale d"}, {2, "scale m"}}; break;
      case GgmlType::Q2_K: fields = {{80, "scale d"}, {82, "scale dmin"}}; break;
      case GgmlType::Q3_K: fields = {{108, "scale d"}}; break;
      case GgmlType::Q4_K: case GgmlType::Q5_K: fields = {{0, "scale d"}, {2, "scale dmin"}}; break;
      case GgmlType::Q6_K: fields = {{208, "scale d"}}; break;
      default: fields = {{0, "scale d"}}; break;
    }
    for (const auto& [off, what] : fields) {
      for (bool inf : {false, true}) {
        std::vector<uint8_t> raw = g.raw;
        uint8_t* p = raw.data() + size_t(bad_block) * tr.block_bytes + off;
        if (type == GgmlType::F32) {
          const float v = inf ? INFINITY : NAN;
          std::memcpy(p, &v, 4);
        } else {
          const uint16_t v = type == GgmlType::BF16 ? (inf ? 0x7f80 : 0x7fc0) : (inf ? 0xfc00 : 0x7e00);
          std::memcpy(p, &v, 2);
        }
        const auto found = find_non_finite(type, raw.data(), n);
        ASSERT_TRUE(found.has_value()) << what;
        EXPECT_NE(found->find(what), std::string::npos) << *found;
        EXPECT_NE(found->find(std::to_string(bad_block)), std::string::npos) << *found;
        EXPECT_NE(found->find(inf ? "Inf" : "NaN"), std::string::npos) << *found;
      }
    }
  }
}

}  // namespace
}  // namespace qb::qformat
