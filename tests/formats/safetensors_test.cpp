// safetensors: our reader against what the reference `safetensors` package reads from a file it wrote
// (tests/golden/formats/make_safetensors_golden.py), our writer against that file's bytes, round
// trips, and rejection of malformed headers.
#include "quantbench/formats/safetensors.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "quantbench/core/error.h"
#include "quantbench/core/sha256.h"
#include "../test_paths.h"
#include "temp_dir.h"

namespace qb::formats {
namespace {

const std::string kGolden = "tests/golden/formats/safetensors_all_dtypes.safetensors";

TEST(Safetensors, ReadsReferenceFileAsTheReferenceDoes) {
  auto f = SafetensorsFile::open(test::source_path(kGolden));
  std::ifstream js(test::source_path("tests/golden/formats/safetensors_golden.json"));
  const auto want = nlohmann::json::parse(js);
  using StringMap = std::map<std::string, std::string>;
  EXPECT_EQ(f->metadata(), want["metadata"].get<StringMap>());
  ASSERT_EQ(f->tensors().size(), want["tensors"].size());
  for (const auto& [name, w] : want["tensors"].items()) {
    SCOPED_TRACE(name);
    const auto& t = f->tensor(name);
    EXPECT_EQ(safetensors_dtype_name(t.dtype), w["dtype"].get<std::string>());
    EXPECT_EQ(t.shape, w["shape"].get<std::vector<int64_t>>());
    EXPECT_EQ(sha256_hex({t.data, t.nbytes()}), w["sha256"].get<std::string>());
  }
  EXPECT_EQ(f->data_offset() % 8, 0u);  // the reference pads the header to 8 bytes
  const auto& w = f->tensor("model.embed.weight");
  EXPECT_EQ(w.shape, (std::vector<int64_t>{4, 3}));
  EXPECT_EQ(w.ggml_shape(), (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(f->tensor("a.scalar").n_elements(), 1);
  EXPECT_EQ(f->tensor("b.empty").n_elements(), 0);
  EXPECT_THROW(f->tensor("nope"), Error);
}

TEST(Safetensors, WriterReproducesReferenceBytes) {
  const auto golden = test::source_path(kGolden);
  auto f = SafetensorsFile::open(golden);
  SafetensorsWriter w;
  for (const auto& [k, v] : f->metadata()) w.set_metadata(k, v);
  // Added in reverse header order: the writer must apply the reference ordering itself.
  for (auto it = f->tensors().rbegin(); it != f->tensors().rend(); ++it)
    w.add_tensor(it->name, it->dtype, it->shape, {it->data, it->nbytes()});
  test::TempDir dir;
  w.write(dir.file("out.safetensors"));
  EXPECT_EQ(test::read_bytes(dir.file("out.safetensors")), test::read_bytes(golden));
}

TEST(Safetensors, RoundTrip) {
  test::TempDir dir;
  SafetensorsWriter w;
  w.set_metadata("format", "pt");
  w.set_metadata("note", "caf\xC3\xA9 \"quoted\"\n");
  std::vector<uint8_t> a(2 * 3 * 2), b(5), c(4 * 4);
  for (size_t i = 0; i < a.size(); ++i) a[i] = uint8_t(i + 1);
  for (size_t i = 0; i < b.size(); ++i) b[i] = uint8_t(250 - i);
  for (size_t i = 0; i < c.size(); ++i) c[i] = uint8_t(i * 13);
  w.add_tensor("w.bf16", DType::BF16, {2, 3}, a);
  w.add_tensor("w.u8", DType::U8, {5}, b);
  w.add_tensor_owned("w.i32", DType::I32, {2, 1, 2}, std::vector<uint8_t>(c));
  w.add_tensor("s", DType::F32, {}, std::span<const uint8_t>(c).first(4));
  const auto path = dir.file("rt.safetensors");
  w.write(path);
  auto f = SafetensorsFile::open(path);
  EXPECT_EQ(f->metadata().at("note"), "caf\xC3\xA9 \"quoted\"\n");
  EXPECT_EQ(f->data_offset() % 8, 0u);
  ASSERT_EQ(f->tensors().size(), 4u);
  const auto check = [&](const char* name, DType dt, std::vector<int64_t> shape, std::span<const uint8_t> bytes) {
    const auto& t = f->tensor(name);
    EXPECT_EQ(t.dtype, dt) << name;
    EXPECT_EQ(t.shape, shape) << name;
    ASSERT_EQ(t.nbytes(), bytes.size()) << name;
    EXPECT_TRUE(std::equal(bytes.begin(), bytes.end(), t.data)) << name;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data) % dtype_size(dt), 0u) << name << " misaligned";
  };
  check("w.bf16", DType::BF16, {2, 3}, a);
  check("w.u8", DType::U8, {5}, b);
  check("w.i32", DType::I32, {2, 1, 2}, c);
  check("s", DType::F32, {}, std::span<const uint8_t>(c).first(4));
  EXPECT_EQ(f->tensor("w.i32").ggml_shape(), (std::vector<int64_t>{2, 1, 2}));
  EXPECT_EQ(f->tensor("w.bf16").ggml_shape(), (std::vector<int64_t>{3, 2}));
}

TEST(Safetensors, WriterRejectsMalformedTensors) {
  SafetensorsWriter w;
  std::vector<uint8_t> bytes(8);
  w.add_tensor("ok", DType::F32, {2}, bytes);
  EXPECT_THROW(w.add_tensor("ok", DType::F32, {2}, bytes), Error);
  EXPECT_THROW(w.add_tensor("__metadata__", DType::F32, {2}, bytes), Error);
  EXPECT_THROW(w.add_tensor("", DType::F32, {2}, bytes), Error);
  EXPECT_THROW(w.add_tensor("x", DType::F32, {3}, bytes), Error);
  EXPECT_THROW(w.add_tensor("x", DType::F32, {-2, -1}, bytes), Error);
  EXPECT_THROW(w.add_tensor("x", DType::F64, {1}, bytes), Error);
  try {
    w.add_tensor("x", DType::I64, {1}, bytes);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("F32, F16, BF16, I8, U8, I32, F8_E4M3"), std::string::npos) << e.what();
  }
  test::TempDir dir;
  std::filesystem::create_directory(dir.file("d"));
  EXPECT_THROW(w.write(dir.file("d")), Error);  // rename onto a directory fails; nothing is left
  size_t entries = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path())) ++entries;
  EXPECT_EQ(entries, 1u);
}

// A safetensors file from a header text and a data section.
std::vector<uint8_t> make_file(const std::string& header, size_t data_bytes, int64_t header_len = -1) {
  // One allocation, then copies: GCC 12 warned falsely (-Wstringop-overread) on vector::insert from a string.
  std::vector<uint8_t> b(8 + header.size() + data_bytes, 0);
  const uint64_t n = header_len < 0 ? header.size() : uint64_t(header_len);
  std::memcpy(b.data(), &n, 8);
  std::copy(header.begin(), header.end(), b.begin() + 8);
  return b;
}

std::string open_error(const std::vector<uint8_t>& bytes) {
  test::TempDir dir;
  const auto path = dir.file("f.safetensors");
  test::write_bytes(path, bytes);
  try {
    SafetensorsFile::open(path);
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    EXPECT_EQ(msg.rfind(path, 0), 0u) << msg;
    return msg;
  }
  return "";
}

TEST(Safetensors, RejectsMalformedFiles) {
  const auto t = [](const std::string& body) { return "{" + body + "}"; };
  struct Case { std::vector<uint8_t> bytes; std::string expect; };
  const std::vector<Case> cases = {
      {{1, 2, 3}, "truncated"},
      {make_file("{}", 0, 1000), "exceeds"},
      {make_file("{}", 0, int64_t(1) << 40), "absurd"},
      {make_file("not json", 0), "not valid JSON"},
      {make_file("[1,2]", 0), "not a JSON object"},
      {make_file(t(R"("a":{"dtype":"F64","shape":[1],"data_offsets":[0,8]})"), 8), "F32, F16, BF16, I8, U8, I32, F8_E4M3"},
      {make_file(t(R"("a":{"dtype":"F32","shape":[1],"data_offsets":[0,8]})"), 8), "needs 4"},
      {make_file(t(R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})"), 4), "outside the data section"},
      {make_file(t(R"("a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]})"), 8), "backwards"},
      {make_file(t(R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]})"), 12), "overlap"},
      {make_file(t(R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]})"), 16), "duplicate"},
      {make_file(t(R"("a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]})"), 8), "non-negative"},
      {make_file(t(R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0.0,8]})"), 8), "data_offsets[0]"},
      {make_file(t(R"("a":{"dtype":"F32","shape":[2]})"), 8), "missing 'data_offsets'"},
      {make_file(t(R"("a":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,8]})"), 8), "overflows"},
      {make_file(t(R"("__metadata__":{"k":1})"), 0), "not a string"},
      {make_file(t(R"("a":{"dtype":"F32","shape":[[[[1]]]],"data_offsets":[0,4]})"), 4), "nests deeper"},
      {make_file(t("\"a\xff\":{}"), 0), "not valid JSON"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto msg = open_error(cases[i].bytes);
    EXPECT_NE(msg.find(cases[i].expect), std::string::npos) << "case " << i << ": " << msg;
  }
}

}  // namespace
}  // namespace qb::formats
