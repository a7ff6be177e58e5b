// HfConfig: typed access to a config.json in the shape HF writes (values below follow the public
// Llama/Qwen configs), nested rope_scaling, null as absent, and errors naming file and field.
#include "quantbench/formats/hf_config.h"

#include <gtest/gtest.h>

#include <cstring>
#include <functional>

#include "quantbench/core/error.h"
#include "temp_dir.h"

namespace qb::formats {
namespace {

const char* kConfig = R"({
  "architectures": ["LlamaForCausalLM"],
  "hidden_size": 2048,
  "intermediate_size": 8192,
  "num_attention_heads": 32,
  "num_key_value_heads": 8,
  "rms_norm_eps": 1e-05,
  "rope_theta": 500000.0,
  "max_position_embeddings": 131072.0,
  "tie_word_embeddings": true,
  "eos_token_id": [128001, 128008, 128009],
  "torch_dtype": "bfloat16",
  "sliding_window": null,
  "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                   "original_max_position_embeddings": 8192, "rope_type": "llama3"},
  "name": "caf\u00e9"
})";

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(HfConfig, ReadsTypedFields) {
  auto c = HfConfig::parse(kConfig, "m/config.json");
  EXPECT_EQ(c.get_int("hidden_size"), 2048);
  EXPECT_EQ(c.get_int("max_position_embeddings"), 131072);  // integral float accepted
  EXPECT_DOUBLE_EQ(c.get_float("rms_norm_eps"), 1e-5);
  EXPECT_DOUBLE_EQ(c.get_float("hidden_size"), 2048.0);
  EXPECT_EQ(c.get_string("torch_dtype"), "bfloat16");
  EXPECT_EQ(c.get_string("name"), "caf\xC3\xA9");
  EXPECT_TRUE(c.get_bool("tie_word_embeddings"));
  EXPECT_EQ(c.get_int_array("eos_token_id"), (std::vector<int64_t>{128001, 128008, 128009}));
  EXPECT_EQ(c.get_string_array("architectures"), (std::vector<std::string>{"LlamaForCausalLM"}));
  EXPECT_FALSE(c.has("sliding_window"));  // null is absent
  EXPECT_FALSE(c.find_int("sliding_window").has_value());
  EXPECT_EQ(c.get_int_or("head_dim", 64), 64);
  EXPECT_EQ(c.get_int_or("num_key_value_heads", 64), 8);
  auto rs = c.get_object("rope_scaling");
  EXPECT_DOUBLE_EQ(rs.get_float("factor"), 32.0);
  EXPECT_EQ(rs.get_int("original_max_position_embeddings"), 8192);
  EXPECT_EQ(rs.get_string("rope_type"), "llama3");
  EXPECT_FALSE(c.find_object("quantization_config").has_value());
  EXPECT_EQ(c.keys().front(), "architectures");
}

TEST(HfConfig, ErrorsNameFileAndField) {
  auto c = HfConfig::parse(kConfig, "m/config.json");
  EXPECT_EQ(error_of([&] { c.get_int("vocab_size"); }), "m/config.json: field 'vocab_size': missing");
  EXPECT_EQ(error_of([&] { c.get_int("torch_dtype"); }), "m/config.json: field 'torch_dtype': expected integer, found string");
  EXPECT_EQ(error_of([&] { c.get_int("rms_norm_eps"); }), "m/config.json: field 'rms_norm_eps': expected integer, found 1e-05");
  EXPECT_EQ(error_of([&] { c.get_string("hidden_size"); }), "m/config.json: field 'hidden_size': expected string, found integer");
  EXPECT_EQ(error_of([&] { c.get_object("rope_scaling").get_int("rope_type"); }),
            "m/config.json: field 'rope_scaling.rope_type': expected integer, found string");
  EXPECT_EQ(error_of([&] { c.get_object("hidden_size"); }), "m/config.json: field 'hidden_size': expected object, found integer");
  EXPECT_EQ(error_of([&] { c.get_int_array("architectures"); }),
            "m/config.json: field 'architectures': item 0: expected integer, found string");
  EXPECT_EQ(error_of([&] { c.get_bool("sliding_window"); }), "m/config.json: field 'sliding_window': missing");
}

TEST(HfConfig, RejectsBadDocuments) {
  EXPECT_NE(error_of([] { HfConfig::parse("{\"a\": ", "x.json"); }).find("x.json: not valid JSON"), std::string::npos);
  EXPECT_EQ(error_of([] { HfConfig::parse("[1]", "x.json"); }), "x.json: top level is array, expected an object");
  EXPECT_EQ(error_of([] { HfConfig::load("/nonexistent/config.json"); }), "/nonexistent/config.json: cannot open");
  const auto big = HfConfig::parse(R"({"n": 1e300, "u": 18446744073709551615})", "x.json");
  EXPECT_NE(error_of([&] { big.get_int("n"); }), "");
  EXPECT_NE(error_of([&] { big.get_int("u"); }), "");
}

TEST(HfConfig, LoadsFromFileAndViewsOutliveTheConfig) {
  test::TempDir dir;
  const auto path = dir.file("config.json");
  test::write_bytes(path, std::vector<uint8_t>(kConfig, kConfig + std::strlen(kConfig)));
  std::optional<HfConfig> rs;
  {
    auto c = HfConfig::load(path);
    EXPECT_EQ(c.source(), path);
    rs = c.get_object("rope_scaling");
  }
  EXPECT_DOUBLE_EQ(rs->get_float("low_freq_factor"), 1.0);
  EXPECT_EQ(error_of([&] { rs->get_int("nope"); }), path + ": field 'rope_scaling.nope': missing");
}

}  // namespace
}  // namespace qb::formats
