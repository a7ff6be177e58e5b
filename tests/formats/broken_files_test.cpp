// Broken-file corpus: hostile variants of a valid GGUF (stories260K) and of a valid safetensors file
// must each throw qb::Error with a one-line message naming the file, never crash (run this under
// ASan+UBSan) and never parse. Each targeted variant also names the reason we expect, so a variant
// rejected for an accidental reason shows up.
#include <gtest/gtest.h>

#include <map>

#include "quantbench/core/error.h"
#include "quantbench/formats/gguf_reader.h"
#include "quantbench/formats/safetensors.h"
#include "../test_paths.h"
#include "broken_gguf_corpus.h"
#include "gguf_bytes.h"
#include "temp_dir.h"

namespace qb::formats {
namespace {

// Opens `bytes` written to `path` with `open`; returns the qb::Error message, or "" if it parsed.
// Any other exception type fails the test.
template <typename Open>
std::string error_of(const std::string& path, const std::vector<uint8_t>& bytes, Open open) {
  test::write_bytes(path, bytes);
  try {
    open(path);
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not a qb::Error: " << e.what();
    return "?";
  }
  return "";
}

void expect_one_line_error(const std::string& msg, const std::string& path, const std::string& what) {
  ASSERT_FALSE(msg.empty()) << what << ": parsed without error";
  EXPECT_EQ(msg.find('\n'), std::string::npos) << what << ": " << msg;
  EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << what << ": message does not start with the path: " << msg;
}

const auto open_gguf = [](const std::string& p) { GgufFile::open(p); };
const auto open_st = [](const std::string& p) { SafetensorsFile::open(p); };

TEST(BrokenFiles, ValidGgufParses) {
  test::TempDir dir;
  const auto valid = test::read_bytes(test::stories260k_path());
  EXPECT_EQ(error_of(dir.file("ok.gguf"), valid, open_gguf), "");
}

TEST(BrokenFiles, GgufTargetedVariants) {
  const std::map<std::string, std::string> reason = {
      {"empty_file", "truncated"}, {"magic_wrong", "not a GGUF file"}, {"magic_ggml", "not a GGUF file"},
      {"version_0", "version 0"}, {"version_1", "version 1"}, {"version_99", "version 99"},
      {"version_big_endian_3", "not supported"}, {"tensor_count_absurd", "tensor count"},
      {"tensor_count_max", "tensor count"}, {"tensor_count_beyond_file", "tensor infos"},
      {"kv_count_absurd", "metadata count"}, {"kv_count_max", "metadata count"},
      {"key_length_absurd", "absurd"}, {"key_length_max", "absurd"}, {"key_length_past_end", "absurd"},
      {"string_length_absurd", "general.architecture: string value: string length"},
      {"string_length_past_end", "truncated"}, {"token_string_length_absurd", "item 0"},
      {"array_length_absurd", "array length"}, {"array_length_max", "array length"},
      {"array_length_past_end", "array items"}, {"array_elem_type_unknown", "element type 13"},
      {"value_type_unknown", "value type 13"}, {"value_type_max", "value type 4294967295"},
      {"n_dims_zero", "0 dimensions"}, {"n_dims_five", "5 dimensions"}, {"n_dims_max", "4294967295 dimensions"},
      {"dimension_zero", "dimension 0 is 0"}, {"dimension_absurd", "dimension 0 is"},
      {"dimension_max", "dimension 1 is"}, {"dimensions_overflow_bytes", "overflows"},
      {"dimension_too_big_for_data", "outside the data section"}, {"ggml_type_unknown_99", "unknown ggml type id 99"},
      {"ggml_type_removed_4", "unknown ggml type id 4"}, {"ggml_type_max", "unknown ggml type id"},
      {"ggml_type_q8_0_not_whole_blocks", "block size"}, {"tensor_offset_past_end", "outside the data section"},
      {"tensor_offset_absurd", "outside the data section"}, {"tensor_offset_wraps", "outside the data section"},
      {"tensor_extent_past_end", "outside the data section"}, {"tensors_overlap", "overlap"},
      {"tensors_overlap_partly", "overlap"}, {"tensor_offset_misaligned", "not aligned"},
      {"key_bad_utf8", "UTF-8"}, {"key_overlong_utf8", "UTF-8"}, {"string_value_bad_utf8", "UTF-8"},
      {"string_value_surrogate", "UTF-8"}, {"token_bad_utf8", "tokenizer.ggml.tokens: item 0: string value is not valid UTF-8"},
      {"tensor_name_bad_utf8", "name"}, {"tensor_name_length_absurd", "absurd"},
      {"duplicate_key", "duplicate key"}, {"duplicate_tensor", "duplicate name"},
  };
  test::TempDir dir;
  const auto variants = test::broken_gguf_variants(test::read_bytes(test::stories260k_path()));
  EXPECT_EQ(variants.size(), reason.size());  // every variant has a reason, and the corpus is complete
  for (const auto& v : variants) {
    const auto path = dir.file(v.name + ".gguf");
    const auto msg = error_of(path, v.bytes, open_gguf);
    expect_one_line_error(msg, path, v.name);
    ASSERT_TRUE(reason.count(v.name)) << v.name;
    EXPECT_NE(msg.find(reason.at(v.name)), std::string::npos) << v.name << ": " << msg;
  }
}

TEST(BrokenFiles, GgufTruncatedAnywhere) {
  test::TempDir dir;
  const auto valid = test::read_bytes(test::stories260k_path());
  const uint64_t data_offset = GgufFile::open(test::stories260k_path())->data_offset();
  std::vector<size_t> cuts;
  for (size_t n = 0; n <= data_offset; ++n) cuts.push_back(n);  // every byte of header and metadata
  for (size_t k = 1; k <= 64; ++k) cuts.push_back(size_t(data_offset + (valid.size() - data_offset) * k / 65));
  cuts.push_back(valid.size() - 1);
  const auto path = dir.file("cut.gguf");
  for (size_t n : cuts) {
    const std::vector<uint8_t> cut(valid.begin(), valid.begin() + std::ptrdiff_t(n));
    const auto msg = error_of(path, cut, open_gguf);
    expect_one_line_error(msg, path, "truncated at " + std::to_string(n));
    if (msg.empty()) break;
  }
}

TEST(BrokenFiles, GgufAbsurdAlignment) {
  test::TempDir dir;
  for (uint32_t al : {0u, 3u, 48u, 1u << 30}) {
    test::GgufBytes g;
    g.header(0, 1).kv_u32("general.alignment", al);
    const auto path = dir.file("align.gguf");
    const auto msg = error_of(path, g.b, open_gguf);
    expect_one_line_error(msg, path, "alignment " + std::to_string(al));
    EXPECT_NE(msg.find("general.alignment"), std::string::npos) << msg;
  }
}

// Replaces `from` by `to` (same length) once in `b`.
std::vector<uint8_t> patched(std::vector<uint8_t> b, const std::string& from, const std::string& to) {
  EXPECT_EQ(from.size(), to.size());
  const std::string s(b.begin(), b.end());
  const auto at = s.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) std::memcpy(&b[at], to.data(), to.size());
  return b;
}

TEST(BrokenFiles, SafetensorsVariants) {
  const auto valid = test::read_bytes(test::source_path("tests/golden/formats/safetensors_all_dtypes.safetensors"));
  const auto with_len = [&](uint64_t n) {
    auto b = valid;
    std::memcpy(b.data(), &n, 8);
    return b;
  };
  const std::vector<std::tuple<std::string, std::vector<uint8_t>, std::string>> cases = {
      {"empty", {}, "truncated"},
      {"seven_bytes", std::vector<uint8_t>(valid.begin(), valid.begin() + 7), "truncated"},
      {"header_len_zero", with_len(0), "too short"},
      {"header_len_past_end", with_len(valid.size()), "exceeds"},
      {"header_len_absurd", with_len(uint64_t(1) << 40), "absurd"},
      {"header_len_max", with_len(~uint64_t(0)), "absurd"},
      {"header_len_short", with_len(100), "not valid JSON"},
      {"header_not_json", patched(valid, "{\"__metadata__\"", "x\"__metadata__\""), "not valid JSON"},
      {"header_bad_utf8", patched(valid, "q.u8", "q.\xff" "8"), "not valid JSON"},
      {"dtype_i64", patched(valid, "\"I32\"", "\"I64\""), "F32, F16, BF16, I8, U8, I32, F8_E4M3"},
      {"dtype_f64", patched(valid, "\"F16\"", "\"F64\""), "dtype 'F64' is not supported"},
      {"dtype_bool", patched(valid, "\"U8\"", "\"XX\""), "not supported"},
      {"offsets_out_of_range", patched(valid, "[102,105]", "[102,905]"), "outside the data section"},
      {"offsets_wrong_size", patched(valid, "[102,105]", "[102,104]"), "needs 3"},
      {"offsets_overlap", patched(valid, "[94,102]", "[93,101]"), "overlap"},
      {"shape_mismatch", patched(valid, "[2,2,2]", "[2,2,3]"), "needs 12"},
      {"metadata_not_string", patched(valid, "{\"format\":\"pt\"}", "{\"format\":1234}"), "not a string"},
      {"duplicate_tensor", patched(valid, "\"q.i8\"", "\"q.u8\""), "duplicate"},
      {"truncated_data", std::vector<uint8_t>(valid.begin(), valid.end() - 1), "outside the data section"},
      {"truncated_header", std::vector<uint8_t>(valid.begin(), valid.begin() + 300), "exceeds"},
  };
  test::TempDir dir;
  for (const auto& [name, bytes, expect] : cases) {
    const auto path = dir.file(name + ".safetensors");
    const auto msg = error_of(path, bytes, open_st);
    expect_one_line_error(msg, path, name);
    EXPECT_NE(msg.find(expect), std::string::npos) << name << ": " << msg;
  }
  // Truncated at every length inside the header, and a sample of the data section.
  const auto path = dir.file("cut.safetensors");
  for (size_t n = 0; n < valid.size(); n += (n < 640 ? 1 : 7)) {
    const auto msg = error_of(path, std::vector<uint8_t>(valid.begin(), valid.begin() + std::ptrdiff_t(n)), open_st);
    expect_one_line_error(msg, path, "truncated at " + std::to_string(n));
    if (msg.empty()) break;
  }
}

}  // namespace
}  // namespace qb::formats
