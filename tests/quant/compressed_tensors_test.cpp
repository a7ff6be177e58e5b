// The compressed-tensors writer: the word layout against compressed-tensors' documented packing
// (element i of a row at bit i*bits of its little-endian int32 stream; stored value = signed code +
// 2^(bits-1)), pack/unpack round trips with ragged groups, the artifact loaded by the
// `compressed-tensors` package itself (scripts/checks/compressed_tensors_check.py) and compared
// bitwise with the in-memory model, the reload giving identical logits, and errors leaving nothing.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "../cli_run.h"
#include "../test_paths.h"
#include "quantbench/core/error.h"
#include "quantbench/formats/safetensors.h"
#include "quantbench/quant/quantize_model.h"
#include "quantbench/quant/writers/compressed_tensors.h"
#include "quantbench/quant/writers/compressed_tensors_layout.h"
#include "quantbench/runtime/cpu/cpu_backend.h"

namespace qb {
namespace {

namespace fs = std::filesystem;
using quant::QuantizedTensor;

std::shared_ptr<const model::Model> stories() {
  static auto m = model::Model::load(test::stories260k_path());
  return m;
}

quant::QuantizedModel quantize(const std::string& spec) {
  const auto methods = quant::builtin_methods();
  quant::QuantizeOptions o;
  o.n_threads = 2;
  o.progress = false;
  return quant::quantize_model(stories(), quant::parse_scheme(spec, methods), methods, o);
}

std::string temp_dir(const std::string& name) {
  const std::string p = ::testing::TempDir() + "qb_ct_" + name;
  fs::remove_all(p);
  return p;
}

// Greedy ids from BOS on the CPU reference backend (what transformers must reproduce).
std::vector<int32_t> greedy(std::shared_ptr<const model::Model> m, int n) {
  runtime::cpu::CpuBackend be(m, {runtime::cpu::CpuMode::Reference, 2});
  const auto seq = be.create_sequence(n + 1);
  std::vector<int32_t> ids = {m->spec().bos_id};
  for (int i = 0; i < n; ++i) {
    runtime::Batch b;
    b.add(ids.back(), seq, i, true);
    const auto lg = be.forward(b);
    const auto row = lg.row(0);
    ids.push_back(int32_t(std::max_element(row.begin(), row.end()) - row.begin()));
  }
  return {ids.begin() + 1, ids.end()};
}

std::vector<float> logits(std::shared_ptr<const model::Model> m) {
  runtime::cpu::CpuBackend be(m, {runtime::cpu::CpuMode::Fast, 2});
  const auto seq = be.create_sequence(16);
  runtime::Batch b;
  const int32_t ids[] = {1, 403, 261, 378, 302, 267, 260, 90};
  for (int i = 0; i < 8; ++i) b.add(ids[i], seq, i, true);
  return be.forward(b).data;
}

QuantizedTensor random_tensor(const quant::QuantLayout& l, int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> w(size_t(rows * cols));
  for (auto& x : w) x = nd(rng);
  return quant::quantize_rtn(w.data(), rows, cols, l);
}

TEST(CompressedTensors, WordLayoutMatchesPackToInt32) {
  // int4: one row of codes 0..15, 16 columns -> 2 words; code c at bits 4c of the stream.
  quant::QuantLayout l{quant::QFormat::Int4, quant::Granularity::Channel, 0, false, quant::ScaleType::F16};
  QuantizedTensor q = QuantizedTensor::allocate(l, 1, 16);
  q.set_params(0, 0, {1.0f, 8});
  for (int c = 0; c < 16; ++c) q.set_code(0, c, uint8_t(c));
  auto p = quant::ct::pack(q, {0});
  ASSERT_EQ(p.words_per_row, 2);
  EXPECT_EQ(uint32_t(p.weight_packed[0]), 0x76543210u);
  EXPECT_EQ(uint32_t(p.weight_packed[1]), 0xfedcba98u);
  // int8 asymmetric, 5 rows: zero points packed along rows (4 per word), 2 words per group column.
  l = {quant::QFormat::Int8, quant::Granularity::Channel, 0, true, quant::ScaleType::BF16};
  q = QuantizedTensor::allocate(l, 5, 4);
  for (int r = 0; r < 5; ++r) {
    q.set_params(r, 0, {0.5f, 10 * (r + 1)});
    for (int c = 0; c < 4; ++c) q.set_code(r, c, uint8_t(r * 16 + c));
  }
  p = quant::ct::pack(q, {0, 1, 2, 3, 4});
  EXPECT_EQ(uint32_t(p.weight_packed[1]), 0x13121110u);
  ASSERT_EQ(p.zp_words, 2);
  EXPECT_EQ(uint32_t(p.weight_zero_point[0]), 0x281e140au);  // rows 0..3: 10, 20, 30, 40
  EXPECT_EQ(uint32_t(p.weight_zero_point[1]), 50u);
  EXPECT_EQ(p.weight_scale[0], 0x00);  // bf16 0.5 = 0x3f00, little-endian
  EXPECT_EQ(p.weight_scale[1], 0x3f);
}

TEST(CompressedTensors, PackUnpackRoundTripsRaggedGroups) {
  for (auto f : {quant::QFormat::Int2, quant::QFormat::Int3, quant::QFormat::Int4, quant::QFormat::Int8})
    for (bool asym : {false, true})
      for (int64_t cols : {int64_t(100), int64_t(576), int64_t(64), int64_t(9)}) {
        SCOPED_TRACE(fmt::format("{} asym={} cols={}", int(f), asym, cols));
        const quant::QuantLayout l{f, quant::Granularity::Group, 32, asym, quant::ScaleType::F16};
        const int64_t rows = 7;
        const QuantizedTensor q = random_tensor(l, rows, cols, uint32_t(cols));
        const std::vector<int64_t> order = {3, 0, 6, 1, 5, 2, 4};
        const auto p = quant::ct::pack(q, order);
        EXPECT_EQ(cols % std::max<int64_t>(1, quant::ct::artifact_group_size(q)), 0);
        const QuantizedTensor back = quant::ct::unpack(l, rows, cols, order, p.weight_packed.data(),
                                                       p.weight_packed.size(), p.weight_scale.data(),
                                                       p.weight_scale.size(), p.weight_zero_point.data(),
                                                       p.weight_zero_point.size(), "test");
        EXPECT_EQ(back.codes, q.codes);
        EXPECT_EQ(back.scales, q.scales);
        EXPECT_EQ(back.zeros, q.zeros);
      }
}

TEST(CompressedTensors, UnpackRejectsInconsistentArrays) {
  const quant::QuantLayout l{quant::QFormat::Int4, quant::Granularity::Group, 128, true, quant::ScaleType::F16};
  const QuantizedTensor q = random_tensor(l, 4, 576, 1);  // ragged: written as groups of 64
  const std::vector<int64_t> id = {0, 1, 2, 3};
  auto p = quant::ct::pack(q, id);
  auto unpack = [&](const quant::ct::PackedTensors& t, size_t n_packed) {
    return quant::ct::unpack(l, 4, 576, id, t.weight_packed.data(), n_packed, t.weight_scale.data(),
                             t.weight_scale.size(), t.weight_zero_point.data(), t.weight_zero_point.size(), "T");
  };
  EXPECT_THROW(unpack(p, p.weight_packed.size() - 1), Error);
  auto bad = p;
  bad.weight_scale[2] ^= 1;  // second sub-group of our first group of 128 gets another scale
  EXPECT_THROW(unpack(bad, bad.weight_packed.size()), Error);
  bad = p;
  bad.weight_zero_point[1] ^= 1;
  EXPECT_THROW(unpack(bad, bad.weight_packed.size()), Error);
  EXPECT_NO_THROW(unpack(p, p.weight_packed.size()));
}

TEST(CompressedTensors, NamesAndLlamaRowOrder) {
  EXPECT_EQ(quant::ct::hf_module_name("blk.12.ffn_down.weight"), "model.layers.12.mlp.down_proj");
  EXPECT_EQ(quant::ct::hf_tensor_name("blk.0.ffn_norm.weight"), "model.layers.0.post_attention_layernorm.weight");
  EXPECT_EQ(quant::ct::hf_tensor_name("blk.0.attn_q.bias"), "model.layers.0.self_attn.q_proj.bias");
  EXPECT_THROW(quant::ct::hf_module_name("blk.0.attn_norm.weight"), Error);
  EXPECT_THROW(quant::ct::hf_tensor_name("rope_freqs.weight"), Error);
  // stories260K: 8 heads of 8; HF row h*8 + j*4 + i is GGUF row h*8 + 2i + j.
  const auto o = quant::ct::hf_row_order(stories()->spec(), "blk.0.attn_q.weight", 64);
  EXPECT_EQ((std::vector<int64_t>(o.begin(), o.begin() + 10)), (std::vector<int64_t>{0, 2, 4, 6, 1, 3, 5, 7, 8, 10}));
  const auto v = quant::ct::hf_row_order(stories()->spec(), "blk.0.attn_v.weight", 32);
  EXPECT_EQ(v[1], 1);
}

// The reference the Python check compares against: for every quantized matrix (GGUF row order), its
// dequantized weights and each column's scale and zero point, straight from the in-memory tensors.
void write_reference(const quant::QuantizedModel& qm, const std::string& path) {
  formats::SafetensorsWriter w;
  const char* names[] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};
  for (size_t il = 0; il < qm.model->layers.size(); ++il) {
    const auto& L = qm.model->layers[il];
    const runtime::cpu::WeightMatrix* ws[] = {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down};
    for (int i = 0; i < 7; ++i) {
      const QuantizedTensor& q = *ws[i]->quantized;
      const std::string mod = quant::ct::hf_module_name(fmt::format("blk.{}.{}.weight", il, names[i]));
      std::vector<float> deq(size_t(q.rows * q.cols)), scale(deq.size());
      std::vector<int32_t> zero(deq.size());
      quant::dequantize(q, deq.data());
      for (int64_t r = 0; r < q.rows; ++r)
        for (int64_t c = 0; c < q.cols; ++c) {
          const auto p = q.params(r, c / q.group_cols());
          scale[size_t(r * q.cols + c)] = p.scale;
          zero[size_t(r * q.cols + c)] = p.zero;
        }
      auto bytes = [](const auto& v) {
        std::vector<uint8_t> b(v.size() * 4);
        std::memcpy(b.data(), v.data(), b.size());
        return b;
      };
      w.add_tensor_owned(mod + ".weight", DType::F32, {q.rows, q.cols}, bytes(deq));
      w.add_tensor_owned(mod + ".scale", DType::F32, {q.rows, q.cols}, bytes(scale));
      if (q.layout.asymmetric) w.add_tensor_owned(mod + ".zero_point", DType::I32, {q.rows, q.cols}, bytes(zero));
    }
  }
  w.write(path);
}

struct Cmd {
  int status;
  std::string out;
};
Cmd run(const std::string& cmd) {
  Cmd r{-1, ""};
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return r;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p)) r.out.append(buf, n);
  r.status = pclose(p);
  return r;
}

TEST(CompressedTensors, LoadedByCompressedTensorsAndReloadGivesSameLogits) {
  // w4g128 on stories260K: every 64-wide row is one ragged group (written per channel), ffn_down's
  // 172 = 128 + 44 columns become groups of 4; w4g32-asym: zero points; w8: int8 per channel, bf16 scales.
  // One Python run checks all three (importing torch dominates its time); transformers also loads the
  // w4g128 one and must decode the same greedy tokens as quantbench.
  std::string args, greedy_args;
  std::vector<std::string> dirs;
  for (const char* spec : {"w4g128", "w4g32-asym", "w8-bf16"}) {
    SCOPED_TRACE(spec);
    const auto qm = quantize(spec);
    const std::string dir = temp_dir(std::string("art_") + spec);
    quant::write_compressed_tensors(qm, qm.manifest, dir);
    ASSERT_TRUE(fs::is_regular_file(dir + "/config.json"));
    ASSERT_TRUE(fs::is_regular_file(dir + "/model.safetensors"));
    for (const auto& e : fs::directory_iterator(::testing::TempDir()))
      EXPECT_EQ(e.path().filename().string().find("qb_ct_art_" + std::string(spec) + ".tmp"), std::string::npos);
    const std::string ref = dir + "_reference.safetensors";
    write_reference(qm, ref);
    args += " " + dir + ":" + ref;
    if (std::string(spec) == "w4g128") {
      std::string ids;
      for (int32_t id : greedy(qm.model, 24)) ids += (ids.empty() ? "" : ",") + std::to_string(id);
      greedy_args += " --expect-greedy " + dir + "=" + ids;
    }
    dirs.push_back(dir);

    const auto back = quant::load_compressed_tensors_over(stories(), dir);
    const auto a = logits(qm.model), b = logits(back);
    ASSERT_EQ(a.size(), b.size());
    EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * 4), 0);
    EXPECT_NE(logits(stories()), a);  // the reload did replace the matrices
  }
  const auto r = run("python3 " + test::source_path("scripts/checks/compressed_tensors_check.py") + args + greedy_args);
  EXPECT_EQ(r.status, 0) << r.out;
  for (const auto& dir : dirs) {  // stories260K: 5 layers x 7 matrices
    EXPECT_NE(r.out.find(dir + ": 35 modules decompressed by compressed-tensors; compared bitwise"), std::string::npos)
        << r.out;
    fs::remove_all(dir);
    fs::remove(dir + "_reference.safetensors");
  }
  EXPECT_NE(r.out.find(dirs[0] + ": transformers decodes the same 24 greedy tokens"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("FAIL"), std::string::npos) << r.out;
}

TEST(CompressedTensors, ConfigSaysWhatWasWritten) {
  const auto qm = quantize("w4g32-asym");
  const std::string dir = temp_dir("config");
  quant::write_compressed_tensors(qm, qm.manifest, dir);
  std::ifstream in(dir + "/config.json");
  const std::string cfg((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (const char* want : {"\"quant_method\": \"compressed-tensors\"", "\"format\": \"pack-quantized\"",
                           "\"num_bits\": 4", "\"symmetric\": false", "\"strategy\": \"group\"", "\"group_size\": 32",
                           "\"group_size\": 4", "\"lm_head\"", "\"LlamaForCausalLM\"", "\"torch_dtype\": \"float16\""})
    EXPECT_NE(cfg.find(want), std::string::npos) << want << "\n" << cfg;
  const auto st = formats::SafetensorsFile::open(dir + "/model.safetensors");
  const auto& t = st->tensor("model.layers.0.self_attn.q_proj.weight_packed");
  EXPECT_EQ(t.dtype, DType::I32);
  EXPECT_EQ(t.shape, (std::vector<int64_t>{64, 8}));
  EXPECT_EQ(st->tensor("model.layers.0.mlp.down_proj.weight_scale").shape, (std::vector<int64_t>{64, 43}));
  EXPECT_EQ(st->tensor("model.layers.0.self_attn.k_proj.weight_zero_point").shape, (std::vector<int64_t>{4, 2}));
  EXPECT_NE(st->find_tensor("model.embed_tokens.weight"), nullptr);
  EXPECT_EQ(st->metadata().at("format"), "pt");
  fs::remove_all(dir);
}

TEST(CompressedTensors, ErrorsLeaveNothingAndBadArtifactsAreRefused) {
  const std::string dir = temp_dir("bad");
  const auto nf4 = quantize("w4g32-nf4");
  try {
    quant::write_compressed_tensors(nf4, nf4.manifest, dir);
    ADD_FAILURE() << "nf4 was written";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("integer formats only"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(dir));
  for (const auto& e : fs::directory_iterator(::testing::TempDir()))
    EXPECT_EQ(e.path().filename().string().find("qb_ct_bad.tmp"), std::string::npos) << e.path();

  // Not replacing a directory that is not a model directory.
  fs::create_directories(dir);
  std::ofstream(dir + "/precious.txt") << "x";
  const auto qm = quantize("w4g32");
  EXPECT_THROW(quant::write_compressed_tensors(qm, qm.manifest, dir), Error);
  EXPECT_TRUE(fs::exists(dir + "/precious.txt"));
  fs::remove_all(dir);

  // An existing artifact is replaced; a tampered one is refused on reload.
  quant::write_compressed_tensors(qm, qm.manifest, dir);
  quant::write_compressed_tensors(qm, qm.manifest, dir);
  const std::string st = dir + "/model.safetensors";
  {
    const auto f = formats::SafetensorsFile::open(st);
    const auto& t = f->tensor("model.layers.1.mlp.up_proj.weight_shape");
    const uint64_t off = f->data_offset() + t.begin;
    std::fstream io(st, std::ios::in | std::ios::out | std::ios::binary);
    io.seekp(std::streamoff(off));
    const int32_t wrong = 171;
    io.write(reinterpret_cast<const char*>(&wrong), 4);
  }
  try {
    quant::load_compressed_tensors_over(stories(), dir);
    ADD_FAILURE() << "tampered artifact loaded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("mlp.up_proj"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("weight_shape is [171, 64]"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

TEST(CompressedTensors, CliWritesADirectoryForPathsWithoutGguf) {
  const std::string dir = temp_dir("cli");
  const auto r = test::run_cli("quantize " + test::stories260k_path() + " -q -t 2 --scheme w4g32 -o " + dir);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::is_regular_file(dir + "/model.safetensors"));
  EXPECT_FALSE(fs::exists(dir + ".gguf"));
  const auto bad = test::run_cli("quantize " + test::stories260k_path() + " -q -t 2 --scheme w4g32-nf4 -o " + dir + "2");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("integer formats only"), std::string::npos) << bad.err;
  EXPECT_FALSE(fs::exists(dir + "2"));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace qb
