// Scheme parsing: the documented examples parse to the expected layouts, invalid ones are rejected
// with messages that say what is wrong, canonical names round-trip, TOML overrides resolve by
// pattern, and effective bits per weight count scales, zero points, padding and ragged groups.
#include "quantbench/quant/scheme.h"

#include <gtest/gtest.h>

#include "quantbench/core/error.h"

namespace qb::quant {
namespace {

const MethodRegistry& reg() {
  static const MethodRegistry r = builtin_methods();
  return r;
}

std::string error_of(std::string_view text) {
  try {
    parse_scheme(text, reg());
  } catch (const Error& e) {
    return e.what();
  }
  return "accepted";
}

std::string toml_error_of(std::string_view text) {
  try {
    parse_scheme_toml(text, "plan.toml", reg());
  } catch (const Error& e) {
    return e.what();
  }
  return "accepted";
}

TEST(Scheme, ParsesTheDocumentedExamples) {
  auto s = parse_scheme("w4g128", reg()).base;
  EXPECT_EQ(s.action, TensorAction::Quantize);
  EXPECT_EQ(s.weights, (QuantLayout{QFormat::Int4, Granularity::Group, 128, false, ScaleType::F16}));
  EXPECT_EQ(s.activation_bits, 16);
  EXPECT_EQ(s.method, "rtn");

  s = parse_scheme("w4g128-asym:gptq", reg()).base;
  EXPECT_EQ(s.weights, (QuantLayout{QFormat::Int4, Granularity::Group, 128, true, ScaleType::F16}));
  EXPECT_EQ(s.method, "gptq");

  s = parse_scheme("w3g32:awq", reg()).base;
  EXPECT_EQ(s.weights, (QuantLayout{QFormat::Int3, Granularity::Group, 32, false, ScaleType::F16}));
  EXPECT_EQ(s.method, "awq");

  s = parse_scheme("w8a8:smoothquant", reg()).base;
  EXPECT_EQ(s.weights, (QuantLayout{QFormat::Int8, Granularity::Channel, 0, false, ScaleType::F16}));
  EXPECT_EQ(s.activation_bits, 8);
  EXPECT_FALSE(s.activation_fp8);

  s = parse_scheme("w4g64-nf4", reg()).base;
  EXPECT_EQ(s.weights, (QuantLayout{QFormat::NF4, Granularity::Group, 64, false, ScaleType::F16}));

  s = parse_scheme("w8a8-fp8", reg()).base;
  EXPECT_EQ(s.weights, (QuantLayout{QFormat::FP8E4M3, Granularity::Channel, 0, false, ScaleType::F32}));
  EXPECT_TRUE(s.activation_fp8);
  EXPECT_FALSE(parse_scheme("w8-fp8", reg()).base.activation_fp8);  // weight-only FP8

  for (auto [name, type] : {std::pair{"q8_0", formats::GgmlType::Q8_0}, {"q4_0", formats::GgmlType::Q4_0},
                            {"q4_1", formats::GgmlType::Q4_1}, {"q4_k", formats::GgmlType::Q4_K},
                            {"Q5_K", formats::GgmlType::Q5_K}, {"q6_k", formats::GgmlType::Q6_K}}) {
    s = parse_scheme(name, reg()).base;
    EXPECT_EQ(s.action, TensorAction::Ggml) << name;
    EXPECT_EQ(s.ggml, type) << name;
  }
  EXPECT_EQ(parse_scheme("q4_k:imatrix", reg()).base.method, "imatrix");
  s = parse_scheme("bf16", reg()).base;
  EXPECT_EQ(s.action, TensorAction::Keep);
  EXPECT_EQ(s.keep_dtype, DType::BF16);
}

TEST(Scheme, CanonicalSpecRoundTrips) {
  for (const char* t : {"w4g128", "w4g128-asym:gptq", "w3g32:awq", "w8a8:smoothquant", "w4g64-nf4", "w8a8-fp8",
                        "w2-asym:rtn_clip", "w4g32-bf16:imatrix", "w8-fp8-tensor", "q4_K", "q4_K:imatrix", "f16"}) {
    const auto s = parse_scheme(t, reg()).base;
    EXPECT_EQ(parse_scheme(s.spec(), reg()).base.spec(), s.spec()) << t;
  }
  EXPECT_EQ(parse_scheme("W4G128-ASYM:GPTQ", reg()).base.spec(), "w4g128-asym:gptq");
  EXPECT_EQ(parse_scheme("w4g128:rtn", reg()).base.spec(), "w4g128");
}

TEST(Scheme, RejectsInvalidSchemesWithClearMessages) {
  EXPECT_EQ(error_of("w5"), "scheme 'w5': 5-bit weights are not supported (use w2, w3, w4 or w8)");
  EXPECT_EQ(error_of("w4g48"), "scheme 'w4g48': group size 48 is not supported (use g32, g64 or g128)");
  EXPECT_EQ(error_of("w3a8"), "scheme 'w3a8': 8-bit activations need 8-bit weights (W8A8); w3a8 is not supported");
  EXPECT_EQ(error_of("w8-nf4"), "scheme 'w8-nf4': nf4 is a 4-bit format; use w4 with -nf4, not w8");
  EXPECT_EQ(error_of("w4g128:foo"),
            "scheme 'w4g128:foo': unknown quantization method 'foo' (known: awq, gptq, imatrix, rtn, rtn_clip, smoothquant)");
  EXPECT_EQ(error_of("w4-fp8"), "scheme 'w4-fp8': fp8 is an 8-bit format; use w8 with -fp8, not w4");
  EXPECT_EQ(error_of("w4-nf4-asym"), "scheme 'w4-nf4-asym': nf4 has no zero point; drop -asym");
  EXPECT_EQ(error_of("w8g32-fp8"), "scheme 'w8g32-fp8': fp8 uses per-channel or per-tensor scales, not groups; drop g32");
  EXPECT_EQ(error_of("w4a4"), "scheme 'w4a4': 4-bit activations are not supported (use a8 or a16)");
  EXPECT_EQ(error_of("w4g128-sym"), "scheme 'w4g128-sym': unknown suffix '-sym' (use -asym, -nf4, -fp8, -bf16 or -tensor)");
  EXPECT_EQ(error_of("w4g128x"), "scheme 'w4g128x': unexpected 'x' after 'w4g128'");
  EXPECT_EQ(error_of("int4"), "scheme 'int4': expected w<bits>, a GGUF type (q4_k, ...) or f16/bf16/f32");
  EXPECT_EQ(error_of("w"), "scheme 'w': expected the weight bit width after 'w' (e.g. w4)");
  EXPECT_EQ(error_of("w4g128:"), "scheme 'w4g128:': ':' must be followed by a method name");
  EXPECT_EQ(error_of(""), "scheme '': empty scheme");
  EXPECT_EQ(error_of("w4:smoothquant"),
            "scheme 'w4:smoothquant': smoothquant is for W8A8: weights must be int8 or fp8_e4m3, not int4");
  EXPECT_EQ(error_of("w8:smoothquant"),
            "scheme 'w8:smoothquant': smoothquant migrates activation outliers into the weights; it needs a8 (e.g. w8a8:smoothquant)");
  EXPECT_EQ(error_of("w4g64-nf4:gptq"), "scheme 'w4g64-nf4:gptq': gptq supports int2/int3/int4/int8, not nf4");
  EXPECT_EQ(error_of("q2_k"), "scheme 'q2_k': GGUF type q2_K is not supported here (use q8_0, q4_0, q4_1, q4_k, q5_k or q6_k)");
  EXPECT_EQ(error_of("q4_k:gptq"), "scheme 'q4_k:gptq': GGUF types are quantized by their own rule; only :rtn or :imatrix apply, not :gptq");
  EXPECT_EQ(error_of("f16:gptq"), "scheme 'f16:gptq': f16 keeps the tensor unquantized; it takes no :gptq");
  EXPECT_EQ(error_of("w4-tensor"), "scheme 'w4-tensor': -tensor (one scale per tensor) is only for -fp8");
  EXPECT_EQ(error_of("w4-asym-asym"), "scheme 'w4-asym-asym': suffix '-asym' given twice");
}

TEST(Scheme, TomlFormWithOverridesAndMethodOptions) {
  const auto s = parse_scheme_toml(R"(
scheme = "w4g128:gptq"
scale_dtype = "bf16"
[method]
damp = 0.05
act_order = true
static_groups = true

[[override]]
pattern = "token_embd.weight"
scheme = "f16"

[[override]]
pattern = "output.weight"
scheme = "w8"

[[override]]
pattern = "blk.*.ffn_down.weight"
scheme = "w4g32-asym:awq"
method = { grid = 10 }
)", "plan.toml", reg());
  EXPECT_EQ(s.source, "plan.toml");
  EXPECT_EQ(s.base.weights.scale_type, ScaleType::BF16);
  EXPECT_EQ(std::get<double>(s.base.method_options.values().at("damp")), 0.05);
  EXPECT_EQ(s.for_tensor("token_embd.weight").action, TensorAction::Keep);
  EXPECT_EQ(s.for_tensor("output.weight").spec(), "w8");
  EXPECT_EQ(s.for_tensor("blk.3.ffn_down.weight").spec(), "w4g32-asym:awq");
  EXPECT_EQ(std::get<int64_t>(s.for_tensor("blk.3.ffn_down.weight").method_options.values().at("grid")), 10);
  EXPECT_EQ(s.for_tensor("blk.3.attn_q.weight").spec(), "w4g128-bf16:gptq");

  const auto fp8 = parse_scheme_toml("scheme = \"w8a8-fp8\"\nfp8_scale = \"tensor\"\n", "p.toml", reg());
  EXPECT_EQ(fp8.base.weights.granularity, Granularity::Tensor);
}

TEST(Scheme, TomlErrorsNameFileTableAndKey) {
  EXPECT_EQ(toml_error_of("schem = \"w4\""), "plan.toml: unknown key 'schem'");
  EXPECT_EQ(toml_error_of("scale_dtype = \"bf16\""), "plan.toml: missing key 'scheme'");
  EXPECT_EQ(toml_error_of("scheme = \"w4:gptq\"\n[method]\ndampp = 0.1\n"), "plan.toml: method gptq: unknown option 'dampp'");
  EXPECT_EQ(toml_error_of("scheme = \"w4\"\n[[override]]\npatern = \"x\"\nscheme = \"f16\"\n"),
            "plan.toml: override 1: unknown key 'patern'");
  EXPECT_EQ(toml_error_of("scheme = \"w4\"\n[[override]]\npattern = \"x\"\nscheme = \"w5\"\n"),
            "plan.toml: override 1: scheme 'w5': 5-bit weights are not supported (use w2, w3, w4 or w8)");
  EXPECT_EQ(toml_error_of("scheme = \"w4\"\nscale_dtype = \"f8\"\n"), "plan.toml: scale_dtype must be \"f16\" or \"bf16\", not \"f8\"");
  EXPECT_EQ(toml_error_of("scheme = \"w4\"\nfp8_scale = \"tensor\"\n"), "plan.toml: fp8_scale applies to -fp8 schemes only");
  EXPECT_EQ(toml_error_of("scheme = 4\n"), "plan.toml: 'scheme' must be a string");
  const std::string syntax = toml_error_of("scheme = \"w4\nx");
  EXPECT_EQ(syntax.rfind("plan.toml:1:", 0), 0u) << syntax;
}

TEST(Scheme, GlobMatching) {
  EXPECT_TRUE(glob_match("blk.*.ffn_*.weight", "blk.12.ffn_down.weight"));
  EXPECT_TRUE(glob_match("*", ""));
  EXPECT_TRUE(glob_match("blk.?.attn_q.weight", "blk.3.attn_q.weight"));
  EXPECT_FALSE(glob_match("blk.?.attn_q.weight", "blk.13.attn_q.weight"));
  EXPECT_FALSE(glob_match("output.weight", "output_norm.weight"));
  EXPECT_TRUE(glob_match("*norm*", "output_norm.weight"));
  EXPECT_FALSE(glob_match("a*b*c", "aXbY"));
}

TEST(Scheme, EffectiveBitsPerWeight) {
  auto est = [&](std::string_view t, int64_t r, int64_t c) { return estimate_storage(parse_scheme(t, reg()).base, r, c); };
  EXPECT_DOUBLE_EQ(est("w4g128", 4096, 4096).bits_per_weight, 4.125);         // 4 + 16/128
  EXPECT_DOUBLE_EQ(est("w4g128-asym", 4096, 4096).bits_per_weight, 4.1875);   // + 8-bit zero point
  EXPECT_DOUBLE_EQ(est("w3g32", 64, 256).bits_per_weight, 3.5);               // 3 + 16/32
  EXPECT_DOUBLE_EQ(est("w8", 64, 256).bits_per_weight, 8.0 + 16.0 / 256);     // one f16 per row
  EXPECT_DOUBLE_EQ(est("w8a8-fp8", 64, 256).bits_per_weight, 8.0 + 32.0 / 256);
  EXPECT_DOUBLE_EQ(est("w4g64-nf4", 64, 256).bits_per_weight, 4.25);
  EXPECT_DOUBLE_EQ(est("f16", 3, 5).bits_per_weight, 16.0);
  EXPECT_DOUBLE_EQ(est("q4_0", 8, 256).bits_per_weight, 4.5);                 // 18 bytes / 32
  EXPECT_DOUBLE_EQ(est("q4_k", 8, 256).bits_per_weight, 4.5);                 // 144 bytes / 256
  EXPECT_DOUBLE_EQ(est("q6_k", 8, 256).bits_per_weight, 6.5625);              // 210 bytes / 256
  // stories260K's FFN: 172 columns. int3 g64: 66 bytes of codes (22 units) + 3 scales per row.
  const auto r = est("w3g64", 64, 172);
  EXPECT_TRUE(r.ragged_last_group);
  EXPECT_EQ(r.last_group_cols, 44);
  EXPECT_EQ(r.bytes, size_t(64 * (66 + 6)));
  EXPECT_NE(r.describe().find("ragged last group of 44 columns"), std::string::npos);
  try {
    est("q4_k", 64, 172);
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "q4_K needs rows whose length is a multiple of 256; this tensor's rows have 172");
  }
}

}  // namespace
}  // namespace qb::quant
