// The CUDA backend's repack of stored weights into its packed decode layout (runtime/cuda/host/), checked
// on the CPU without a GPU: every weight against the CPU reference's dequantization (repack_compare.h),
// for random blocks of every GGUF type the backend packs, and for the real GGUF files the suite fetches
// (Gemma 3 270M Q4_K_M: Q4_K, Q6_K, and Q5_0 / Q8_0 where a row is not a multiple of 256; SmolLM2-135M
// Q4_1). The GPU machine's backend check runs
// the same comparison, then the kernels themselves.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "../cuda/repack_compare.h"
#include "../test_paths.h"
#include "quantbench/core/dtype.h"
#include "quantbench/core/error.h"
#include "quantbench/formats/ggml_types.h"
#include "quantbench/model/model.h"
#include "quantbench/quant/qformat/quantized_tensor.h"
#include "quantbench/quant/qformat/ggml_block_structs.h"

namespace qb {
namespace {

using formats::GgmlType;
namespace rc = runtime::cuda;

// Where a block's f16 scale fields sit (d, and the min or dmin where the type has one: -1 if not).
struct ScaleOffsets { int d, m; };
ScaleOffsets scale_offsets(GgmlType t) {
  using namespace qformat;
  switch (t) {
    case GgmlType::Q4_0: return {int(offsetof(BlockQ4_0, d)), -1};
    case GgmlType::Q4_1: return {int(offsetof(BlockQ4_1, d)), int(offsetof(BlockQ4_1, m))};
    case GgmlType::Q5_0: return {int(offsetof(BlockQ5_0, d)), -1};
    case GgmlType::Q5_1: return {int(offsetof(BlockQ5_1, d)), int(offsetof(BlockQ5_1, m))};
    case GgmlType::Q8_0: return {int(offsetof(BlockQ8_0, d)), -1};
    case GgmlType::Q2_K: return {int(offsetof(BlockQ2_K, d)), int(offsetof(BlockQ2_K, dmin))};
    case GgmlType::Q3_K: return {int(offsetof(BlockQ3_K, d)), -1};
    case GgmlType::Q4_K: return {int(offsetof(BlockQ4_K, d)), int(offsetof(BlockQ4_K, dmin))};
    case GgmlType::Q5_K: return {int(offsetof(BlockQ5_K, d)), int(offsetof(BlockQ5_K, dmin))};
    case GgmlType::Q6_K: return {int(offsetof(BlockQ6_K, d)), -1};
    default: throw std::logic_error("scale_offsets: not a packed GGUF type");
  }
}

// n_out rows of random blocks: every byte random (values, packed sub-block scales, high bits), then each
// block's f16 d (and min) set to a random finite value of a real model's size, so the weights are finite.
struct RandomBlocks {
  std::vector<uint8_t> bytes;
  runtime::cpu::WeightMatrix w;
  RandomBlocks(GgmlType t, int64_t n_out, int64_t n_in, uint64_t seed) {
    const formats::GgmlTypeTraits& tr = formats::ggml_traits(t);
    std::mt19937_64 rng(seed);
    const size_t row_bytes = formats::ggml_row_bytes(t, n_in);
    bytes.resize(row_bytes * size_t(n_out));
    for (auto& b : bytes) b = uint8_t(rng());
    std::uniform_real_distribution<float> mag(1e-4f, 4e-3f);
    const ScaleOffsets so = scale_offsets(t);
    for (size_t at = 0; at < bytes.size(); at += tr.block_bytes) {
      const uint16_t d = f32_to_f16(mag(rng)), m = f32_to_f16((rng() & 1 ? -1.f : 1.f) * mag(rng));
      std::memcpy(&bytes[at + size_t(so.d)], &d, 2);
      if (so.m >= 0) std::memcpy(&bytes[at + size_t(so.m)], &m, 2);
    }
    w.type = t;
    w.n_in = n_in;
    w.n_out = n_out;
    w.data = bytes.data();
    w.row_bytes = row_bytes;
  }
};

struct TypeCase {
  GgmlType type;
  const char* spec;  // the packed form the backend uses for it
};
const TypeCase kTypes[] = {{GgmlType::Q4_0, "w4g32"}, {GgmlType::Q4_1, "w4g32m"}, {GgmlType::Q5_0, "w8g32"},
                           {GgmlType::Q5_1, "w8g32m"}, {GgmlType::Q8_0, "w8g32"}, {GgmlType::Q2_K, "w8g16m"},
                           {GgmlType::Q3_K, "w8g16"},  {GgmlType::Q4_K, "w4g32m"}, {GgmlType::Q5_K, "w8g32m"},
                           {GgmlType::Q6_K, "w8g16"}};

TEST(CudaRepack, EveryPackedGgufTypeMatchesTheCpuDequantization) {
  uint64_t seed = 1;
  for (const TypeCase& c : kTypes) {
    SCOPED_TRACE(std::string(formats::ggml_type_name(c.type)));
    const RandomBlocks rb(c.type, 19, 512, seed++);  // 19 rows: not a multiple of the 16-row blocks
    const cuda_checks::RepackCheck r = cuda_checks::check_repack_of(rb.w);
    ASSERT_TRUE(r.packed);
    EXPECT_EQ(rc::spec_name(r.hm.spec), c.spec);
    EXPECT_EQ(r.checked, size_t(19 * 512));
    EXPECT_EQ(r.mismatched, 0u);
  }
}

// quantbench's own int8 / int4 tensors (RTN here): codes, f16 scales and zero points copied as they are.
TEST(CudaRepack, OwnIntFormatsMatchTheCpuDequantizationExactly) {
  using quant::Granularity;
  using quant::QFormat;
  using quant::ScaleType;
  struct Case { quant::QuantLayout layout; const char* spec; };
  const Case cases[] = {{{QFormat::Int8, Granularity::Channel, 0, false, ScaleType::F16}, "w8"},
                        {{QFormat::Int4, Granularity::Group, 32, false, ScaleType::F16}, "w4g32"},
                        {{QFormat::Int4, Granularity::Group, 32, true, ScaleType::F16}, "w4g32a"},
                        {{QFormat::Int4, Granularity::Group, 128, false, ScaleType::F16}, "w4g128"},
                        {{QFormat::Int4, Granularity::Group, 128, true, ScaleType::F16}, "w4g128a"}};
  std::mt19937 rng(11);
  std::normal_distribution<float> nd(0.0f, 0.05f);
  for (const Case& c : cases) {
    SCOPED_TRACE(c.spec);
    std::vector<float> x(size_t(21 * 384));
    for (auto& v : x) v = nd(rng) + 0.01f;  // (a mean offset: zero points other than 8)
    const quant::QuantizedTensor q = quant::quantize_rtn(x.data(), 21, 384, c.layout);
    runtime::cpu::WeightMatrix w;
    w.type = GgmlType::F32;  // (unused with `quantized`)
    w.n_in = 384;
    w.n_out = 21;
    w.quantized = &q;
    const cuda_checks::RepackCheck r = cuda_checks::check_repack_of(w);
    ASSERT_TRUE(r.packed);
    EXPECT_EQ(rc::spec_name(r.hm.spec), c.spec);
    EXPECT_EQ(r.mismatched, 0u);
  }
}

// The group of row 0 whose |f16 value| in v is largest (a value, scale or min changed there moves the
// weights most, so the change cannot hide in the rounding slack).
size_t largest_group(const std::vector<uint16_t>& v, size_t groups) {
  size_t best = 0;
  for (size_t g = 1; g < groups; ++g)
    if (std::fabs(f16_to_f32(v[g])) > std::fabs(f16_to_f32(v[best]))) best = g;
  return best;
}

// The comparison is not blind: one value, scale or min changed in the repacked matrix is found.
TEST(CudaRepack, TheComparisonFindsOneWrongValueScaleOrMin) {
  for (const GgmlType t : {GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_1, GgmlType::Q6_K}) {
    SCOPED_TRACE(std::string(formats::ggml_type_name(t)));
    const RandomBlocks rb(t, 16, 256, 7);
    const cuda_checks::RepackCheck r = cuda_checks::check_repack_of(rb.w);
    ASSERT_EQ(r.mismatched, 0u);
    const size_t groups = size_t(256 / r.hm.spec.group), g = largest_group(r.hm.scales, groups);
    const size_t at = g * size_t(r.hm.spec.group);  // row 0, the group's first value
    rc::HostMatrix value = r.hm, scale = r.hm;
    if (value.spec.format == rc::WeightFormat::W4A16) value.q4[at] = uint8_t((value.q4[at] + 1) & 15);
    else value.q8[at] = int8_t(value.q8[at] == 3 ? 2 : 3);  // (a value of every type's range)
    EXPECT_GE(cuda_checks::repack_mismatches(rb.w, value), 1u);
    scale.scales[g] = f32_to_f16(1.01f * f16_to_f32(scale.scales[g]));  // 1% off (one rounding: <= 0.05%)
    EXPECT_GE(cuda_checks::repack_mismatches(rb.w, scale), 1u);
    if (r.hm.spec.mins) {
      rc::HostMatrix mn = r.hm;
      const size_t gm = largest_group(mn.mins, groups);
      mn.mins[gm] = uint16_t(mn.mins[gm] ^ 0x8000);  // the min's sign
      EXPECT_GE(cuda_checks::repack_mismatches(rb.w, mn), 1u);
    }
  }
}

TEST(CudaRepack, TypesWithoutAGpuPathAreRefusedWithTheSupportedList) {
  const RandomBlocks rb(GgmlType::Q4_0, 16, 64, 3);
  runtime::cpu::WeightMatrix w = rb.w;
  w.type = GgmlType::IQ4_NL;  // no CPU dequantization, no GPU path
  try {
    (void)rc::plan_for(w, "blk.0.attn_q.weight");
    FAIL() << "plan_for accepted iq4_nl";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("blk.0.attn_q.weight"), std::string::npos) << msg;
    EXPECT_NE(msg.find("q2_k, q3_k, q4_0"), std::string::npos) << msg;
  }
}

// The real files the suite fetches: every matrix of their first two blocks (which hold each of their
// stored types; Gemma 3 270M's Q4_K_M keeps Q6_K for the first layers' attn_v and ffn_down).
void check_file(const std::string& rel, const std::vector<std::string>& want_specs) {
  const std::string path = test::source_path(rel);
  if (!std::filesystem::exists(path)) {
    if (test::models_required()) FAIL() << path << " is missing (scripts/fetch-models)";
    GTEST_SKIP() << path << " not fetched";
  }
  const auto model = model::Model::load(path);
  std::string specs;
  size_t checked = 0;
  for (size_t il = 0; il < 2; ++il) {
    const auto& l = model->layers.at(il);
    for (const auto* w : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) {
      const cuda_checks::RepackCheck r = cuda_checks::check_repack_of(*w);
      ASSERT_TRUE(r.packed) << formats::ggml_type_name(w->type);
      EXPECT_EQ(r.mismatched, 0u) << formats::ggml_type_name(w->type);
      checked += r.checked;
      const std::string s = rc::spec_name(r.hm.spec);
      if (specs.find(s + " ") == std::string::npos) specs += s + " ";
    }
  }
  EXPECT_GT(checked, size_t(1) << 20);
  for (const auto& s : want_specs) EXPECT_NE(specs.find(s + " "), std::string::npos) << s << " not in " << specs;
}

TEST(CudaRepack, Gemma3Q4KMFirstBlocks) {
  check_file(".models/gemma3-270m-q4_k_m/gemma3-270m-Q4_K_M.gguf", {"w4g32m", "w8g16", "w8g32"});
}

TEST(CudaRepack, SmolLM2Q41FirstBlocks) {
  check_file(".models/smollm2-135m-instruct-q4_1/SmolLM2-135M-Instruct.Q4_1.gguf", {"w4g32m"});
}

}  // namespace
}  // namespace qb
