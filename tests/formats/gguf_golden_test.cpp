// Cross-checks against the `gguf` Python package: golden files written by gguf-py
// (tests/golden/formats/make_gguf_golden.py) must read as gguf.GGUFReader reads them
// (gguf_golden.json), and our writer, fed what our reader read, must reproduce them byte for byte.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <fstream>

#include "quantbench/core/sha256.h"
#include "quantbench/formats/gguf_reader.h"
#include "quantbench/formats/gguf_writer.h"
#include "../test_paths.h"
#include "temp_dir.h"

namespace qb::formats {
namespace {

std::string golden(const std::string& name) { return test::source_path("tests/golden/formats/" + name); }

nlohmann::json load_summary() {
  std::ifstream f(golden("gguf_golden.json"));
  return nlohmann::json::parse(f);
}

std::string upper_type_name(GgufValueType t) {
  static const char* names[] = {"UINT8", "INT8", "UINT16", "INT16", "UINT32", "INT32", "FLOAT32",
                                "BOOL", "STRING", "ARRAY", "UINT64", "INT64", "FLOAT64"};
  return names[uint32_t(t)];
}

// gguf-py describes a value by its chain of types (ARRAY, ARRAY, INT32) and flattened contents.
void type_chain(const GgufValue& v, std::vector<std::string>& out) {
  out.push_back(upper_type_name(v.type));
  if (const auto* a = v.as_array()) {
    if (!a->items.empty()) type_chain(a->items[0], out);
    else out.push_back(upper_type_name(a->elem_type));
  }
}
void flatten(const GgufValue& v, nlohmann::json& out) {
  if (const auto* a = v.as_array()) {
    for (const auto& it : a->items) flatten(it, out);
    return;
  }
  if (std::holds_alternative<uint64_t>(v.v)) out.push_back(std::get<uint64_t>(v.v));
  else if (std::holds_alternative<int64_t>(v.v)) out.push_back(std::get<int64_t>(v.v));
  else if (std::holds_alternative<double>(v.v)) out.push_back(std::get<double>(v.v));
  else if (std::holds_alternative<bool>(v.v)) out.push_back(std::get<bool>(v.v));
  else out.push_back(std::get<std::string>(v.v));
}

void expect_matches_summary(const GgufFile& f, const nlohmann::json& s) {
  EXPECT_EQ(f.version(), s["version"].get<uint32_t>());
  EXPECT_EQ(f.file_size(), s["file_size"].get<uint64_t>());
  const auto& md = s["metadata"];
  ASSERT_EQ(f.metadata().size(), md.size());
  for (size_t i = 0; i < md.size(); ++i) {
    const auto& [key, value] = f.metadata()[i];
    SCOPED_TRACE(key);
    EXPECT_EQ(key, md[i]["key"].get<std::string>());
    std::vector<std::string> chain;
    type_chain(value, chain);
    EXPECT_EQ(chain, md[i]["types"].get<std::vector<std::string>>());
    nlohmann::json flat = nlohmann::json::array();
    flatten(value, flat);
    const auto& want = md[i]["value"];
    if (value.as_array()) EXPECT_EQ(flat, want);
    else EXPECT_EQ(flat[0], want);  // exact: f32 values widen to the same double in both
  }
  const auto& ts = s["tensors"];
  ASSERT_EQ(f.tensors().size(), ts.size());
  for (size_t i = 0; i < ts.size(); ++i) {
    const auto& t = f.tensors()[i];
    SCOPED_TRACE(t.name);
    EXPECT_EQ(t.name, ts[i]["name"].get<std::string>());
    EXPECT_EQ(uint32_t(t.type), ts[i]["type"].get<uint32_t>());
    EXPECT_EQ(t.shape, ts[i]["shape"].get<std::vector<int64_t>>());
    EXPECT_EQ(f.data_offset() + t.offset, ts[i]["data_offset"].get<uint64_t>());
    EXPECT_EQ(t.nbytes, ts[i]["n_bytes"].get<size_t>());
    EXPECT_EQ(sha256_hex({t.data, t.nbytes}), ts[i]["sha256"].get<std::string>());
  }
}

TEST(GgufGolden, ReaderMatchesGgufPyOnAllValueTypes) {
  auto f = GgufFile::open(golden("gguf_all_types_v3.gguf"));
  EXPECT_EQ(f->alignment(), 64u);
  expect_matches_summary(*f, load_summary()["gguf_all_types_v3.gguf"]);
  // Nested array structure (gguf-py flattens it, so check the shape here against the script).
  const auto* nested = f->find("t.arr_nested")->as_array();
  ASSERT_NE(nested, nullptr);
  ASSERT_EQ(nested->items.size(), 3u);
  EXPECT_EQ(nested->items[0].as_array()->items.size(), 2u);
  EXPECT_EQ(nested->items[1].as_array()->items.size(), 1u);
  EXPECT_EQ(nested->items[2].as_array()->items.size(), 3u);
}

TEST(GgufGolden, ReadsVersion2) {
  auto f = GgufFile::open(golden("gguf_small_v2.gguf"));
  EXPECT_EQ(f->version(), 2u);
  EXPECT_EQ(f->alignment(), 32u);
  expect_matches_summary(*f, load_summary()["gguf_small_v2.gguf"]);
}

// Our writer, given what our reader read, writes the same bytes gguf-py wrote.
void expect_rewrite_identical(const std::string& name) {
  auto f = GgufFile::open(golden(name));
  GgufWriter w(f->version());
  w.copy_metadata_from(*f);
  for (const auto& t : f->tensors()) w.add_tensor(t.name, t.type, t.shape, {t.data, t.nbytes});
  test::TempDir dir;
  const auto out = dir.file("rewritten.gguf");
  w.write(out);
  const auto want = test::read_bytes(golden(name));
  const auto got = test::read_bytes(out);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) ASSERT_EQ(got[i], want[i]) << "first difference at byte " << i;
}

TEST(GgufGolden, WriterReproducesGgufPyBytesV3) { expect_rewrite_identical("gguf_all_types_v3.gguf"); }
TEST(GgufGolden, WriterReproducesGgufPyBytesV2) { expect_rewrite_identical("gguf_small_v2.gguf"); }

TEST(GgufGolden, WriterReproducesStories260K) {
  auto f = GgufFile::open(test::stories260k_path());
  GgufWriter w;
  w.copy_metadata_from(*f);
  for (const auto& t : f->tensors()) w.add_tensor(t.name, t.type, t.shape, {t.data, t.nbytes});
  test::TempDir dir;
  w.write(dir.file("s.gguf"));
  EXPECT_EQ(sha256_file(dir.file("s.gguf")), sha256_file(test::stories260k_path()));
}

}  // namespace
}  // namespace qb::formats
