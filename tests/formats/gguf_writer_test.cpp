// GGUF writer: round trip of every value type (nested and empty arrays included) through our reader,
// alignment, validation of what is added, and atomic writes. Agreement with gguf-py's bytes is in
// gguf_golden_test.cpp.
#include "quantbench/formats/gguf_writer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <limits>

#include "quantbench/core/error.h"
#include "temp_dir.h"

namespace qb::formats {
namespace {

// Deep equality; floats compare by the bits the file holds (f32 values as f32).
bool same(const GgufValue& a, const GgufValue& b) {
  if (a.type != b.type || a.v.index() != b.v.index()) return false;
  if (const auto* x = a.as_array()) {
    const auto* y = b.as_array();
    if (x->elem_type != y->elem_type || x->items.size() != y->items.size()) return false;
    for (size_t i = 0; i < x->items.size(); ++i)
      if (!same(x->items[i], y->items[i])) return false;
    return true;
  }
  if (a.type == GgufValueType::FLOAT32) {
    const float fa = float(std::get<double>(a.v)), fb = float(std::get<double>(b.v));
    return std::memcmp(&fa, &fb, 4) == 0;
  }
  if (a.type == GgufValueType::FLOAT64) {
    const double da = std::get<double>(a.v), db = std::get<double>(b.v);
    return std::memcmp(&da, &db, 8) == 0;
  }
  return a.v == b.v;
}

std::vector<std::pair<std::string, GgufValue>> every_value_type() {
  using V = GgufValue;
  using T = GgufValueType;
  return {
      {"u8", V::u8(255)},
      {"i8", V::i8(-128)},
      {"u16", V::u16(65535)},
      {"i16", V::i16(-32768)},
      {"u32", V::u32(4294967295u)},
      {"i32", V::i32(std::numeric_limits<int32_t>::min())},
      {"u64", V::u64(std::numeric_limits<uint64_t>::max())},
      {"i64", V::i64(std::numeric_limits<int64_t>::min())},
      {"f32", V::f32(-3.25e-38f)},
      {"f32_nan", V::f32(std::numeric_limits<float>::quiet_NaN())},
      {"f64", V::f64(1.0 / 3.0)},
      {"f64_inf", V::f64(-std::numeric_limits<double>::infinity())},
      {"bool_t", V::boolean(true)},
      {"bool_f", V::boolean(false)},
      {"str", V::str("snowman \xE2\x98\x83, newline\n, nul-free")},
      {"str_empty", V::str("")},
      {"arr_empty_u32", V::array(T::UINT32, {})},
      {"arr_empty_str", V::array(T::STRING, {})},
      {"arr_empty_arr", V::array(T::ARRAY, {})},
      {"arr_u8", V::array(T::UINT8, {V::u8(1), V::u8(2)})},
      {"arr_i8", V::array(T::INT8, {V::i8(-1)})},
      {"arr_u16", V::array(T::UINT16, {V::u16(7)})},
      {"arr_i16", V::array(T::INT16, {V::i16(-7)})},
      {"arr_u64", V::array(T::UINT64, {V::u64(1ull << 63)})},
      {"arr_i64", V::array(T::INT64, {V::i64(-5), V::i64(5)})},
      {"arr_f64", V::array(T::FLOAT64, {V::f64(2.5)})},
      {"arr_bool", V::array(T::BOOL, {V::boolean(true), V::boolean(false)})},
      {"arr_str", V::string_array({"a", "", "\xC3\xBC" "ber"})},
      {"arr_f32", V::f32_array({1.5f, -0.0f})},
      {"arr_i32", V::i32_array({1, -2, 3})},
      {"arr_nested", V::array(T::ARRAY, {V::i32_array({1, 2}), V::array(T::INT32, {}), V::string_array({"x"})})},
      {"arr_depth4", V::array(T::ARRAY, {V::array(T::ARRAY, {V::array(T::ARRAY, {V::i32_array({42})})})})},
  };
}

TEST(GgufWriter, RoundTripsEveryValueType) {
  test::TempDir dir;
  for (uint32_t version : {2u, 3u}) {
    GgufWriter w(version);
    const auto kvs = every_value_type();
    for (const auto& [k, v] : kvs) w.set(k, v);
    const auto path = dir.file("kv" + std::to_string(version) + ".gguf");
    w.write(path);
    auto f = GgufFile::open(path);
    EXPECT_EQ(f->version(), version);
    ASSERT_EQ(f->metadata().size(), kvs.size());
    for (size_t i = 0; i < kvs.size(); ++i) {
      EXPECT_EQ(f->metadata()[i].first, kvs[i].first);
      EXPECT_TRUE(same(f->metadata()[i].second, kvs[i].second)) << kvs[i].first;
    }
    EXPECT_TRUE(f->tensors().empty());
  }
}

TEST(GgufWriter, SetReplacesInPlaceAndRemoves) {
  GgufWriter w;
  w.set("a", GgufValue::u32(1));
  w.set("b", GgufValue::u32(2));
  w.set("a", GgufValue::str("x"));
  ASSERT_EQ(w.metadata().size(), 2u);
  EXPECT_EQ(w.metadata()[0].first, "a");
  EXPECT_EQ(w.metadata()[0].second.type, GgufValueType::STRING);
  EXPECT_TRUE(w.remove("a"));
  EXPECT_FALSE(w.remove("a"));
  EXPECT_EQ(w.find("a"), nullptr);
  ASSERT_NE(w.find("b"), nullptr);
}

TEST(GgufWriter, TensorsRoundTripWithAlignment) {
  test::TempDir dir;
  for (uint32_t align : {1u, 8u, 32u, 256u}) {
    GgufWriter w;
    w.set("general.architecture", GgufValue::str("test"));
    if (align != 32) w.set_alignment(align);
    EXPECT_EQ(w.alignment(), align);
    std::vector<uint8_t> a(4 * 6), b(2 * 3), q(34 * 2);  // f32 {3,2}, f16 {3}, q8_0 {32,2}
    for (size_t i = 0; i < a.size(); ++i) a[i] = uint8_t(i * 7 + 1);
    for (size_t i = 0; i < b.size(); ++i) b[i] = uint8_t(200 - i);
    for (size_t i = 0; i < q.size(); ++i) q[i] = uint8_t(i ^ 0x5a);
    w.add_tensor("a", GgmlType::F32, {3, 2}, a);
    w.add_tensor_owned("b", GgmlType::F16, {3}, std::vector<uint8_t>(b));
    w.add_tensor("q", GgmlType::Q8_0, {32, 2}, q);
    const auto path = dir.file("t" + std::to_string(align) + ".gguf");
    w.write(path);
    auto f = GgufFile::open(path);
    EXPECT_EQ(f->alignment(), align);
    EXPECT_EQ(f->data_offset() % align, 0u);
    ASSERT_EQ(f->tensors().size(), 3u);
    const std::vector<std::vector<uint8_t>*> want = {&a, &b, &q};
    const std::vector<std::vector<int64_t>> shapes = {{3, 2}, {3}, {32, 2}};
    for (size_t i = 0; i < 3; ++i) {
      const auto& t = f->tensors()[i];
      EXPECT_EQ(t.offset % align, 0u);
      EXPECT_EQ(t.shape, shapes[i]);
      ASSERT_EQ(t.nbytes, want[i]->size());
      EXPECT_TRUE(std::equal(want[i]->begin(), want[i]->end(), t.data)) << t.name;
    }
    EXPECT_EQ(f->tensors()[2].type, GgmlType::Q8_0);
    // The file ends at the padded end of the last tensor, as gguf-py writes it.
    EXPECT_EQ(f->file_size(), f->data_offset() + f->tensors()[2].offset + (q.size() + align - 1) / align * align);
  }
}

TEST(GgufWriter, RejectsMalformedMetadata) {
  GgufWriter w;
  const auto bad = [&](const std::string& k, GgufValue v) {
    try {
      w.set(k, std::move(v));
      ADD_FAILURE() << "accepted " << k;
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
    }
  };
  bad("", GgufValue::u8(1));
  bad("k\xff", GgufValue::u8(1));
  bad("k", GgufValue::str("bad \xC0\xAF utf8"));
  bad("k", GgufValue{GgufValueType::UINT8, uint64_t(256)});
  bad("k", GgufValue{GgufValueType::INT8, int64_t(128)});
  bad("k", GgufValue{GgufValueType::UINT32, int64_t(1)});   // variant does not match the type
  bad("k", GgufValue{GgufValueType::STRING, 1.0});
  bad("k", GgufValue{GgufValueType(13), uint64_t(0)});
  bad("k", GgufValue::array(GgufValueType::INT32, {GgufValue::i32(1), GgufValue::u32(2)}));  // mixed
  bad("k", GgufValue::array(GgufValueType::STRING, {GgufValue::str("\xED\xA0\x80")}));      // surrogate
  bad("k", GgufValue::array(GgufValueType::ARRAY, {GgufValue::array(GgufValueType::ARRAY,
      {GgufValue::array(GgufValueType::ARRAY, {GgufValue::array(GgufValueType::ARRAY, {GgufValue::i32_array({1})})})})}));
  bad("general.alignment", GgufValue::u32(24));
  bad("general.alignment", GgufValue::u32(0));
  bad("general.alignment", GgufValue::str("32"));
  bad(std::string(65536, 'k'), GgufValue::u8(1));
  EXPECT_TRUE(w.metadata().empty());
}

TEST(GgufWriter, RejectsMalformedTensors) {
  GgufWriter w;
  std::vector<uint8_t> bytes(4 * 8);
  w.add_tensor("ok", GgmlType::F32, {8}, bytes);
  EXPECT_THROW(w.add_tensor("ok", GgmlType::F32, {8}, bytes), Error);             // duplicate
  EXPECT_THROW(w.add_tensor("", GgmlType::F32, {8}, bytes), Error);               // empty name
  EXPECT_THROW(w.add_tensor("n\xC3", GgmlType::F32, {8}, bytes), Error);          // bad UTF-8
  EXPECT_THROW(w.add_tensor("x", GgmlType::F32, {7}, bytes), Error);              // size mismatch
  EXPECT_THROW(w.add_tensor("x", GgmlType::F32, {}, bytes), Error);               // no dims
  EXPECT_THROW(w.add_tensor("x", GgmlType::F32, {1, 1, 1, 1, 8}, bytes), Error);  // 5 dims
  EXPECT_THROW(w.add_tensor("x", GgmlType::F32, {8, 0}, bytes), Error);           // zero dim
  EXPECT_THROW(w.add_tensor("x", GgmlType::F32, {-8, -1}, bytes), Error);         // negative
  EXPECT_THROW(w.add_tensor("x", GgmlType::Q8_0, {16}, bytes), Error);            // not a whole block
  EXPECT_THROW(w.add_tensor("x", GgmlType(99), {8}, bytes), Error);               // unknown type
  EXPECT_THROW(w.add_tensor("x", GgmlType::F32, {int64_t(1) << 40, int64_t(1) << 40}, bytes), Error);
  EXPECT_EQ(w.tensor_count(), 1u);
  EXPECT_THROW(GgufWriter(1), Error);
  EXPECT_THROW(GgufWriter(4), Error);
}

TEST(GgufWriter, FailedWriteLeavesNothing) {
  test::TempDir dir;
  GgufWriter w;
  w.set("k", GgufValue::u32(1));
  // Target is a directory: the final rename fails after the data went to the temporary file.
  const auto target = dir.file("is_a_dir");
  std::filesystem::create_directory(target);
  EXPECT_THROW(w.write(target), Error);
  EXPECT_TRUE(std::filesystem::is_directory(target));
  size_t entries = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path())) ++entries;
  EXPECT_EQ(entries, 1u);  // only the directory; no temporary left behind
  // A missing parent directory fails at once, naming the path.
  try {
    w.write(dir.file("missing/x.gguf"));
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing/x.gguf"), std::string::npos);
  }
}

}  // namespace
}  // namespace qb::formats
