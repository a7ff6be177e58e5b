// Hugging Face checkpoint directories (data/models/tiny-hf, made by tests/golden/hf/make_tiny_hf.py)
// loaded through model::Model::load and run on the CPU backend against golden logits from
// transformers, which ran the same saved checkpoint in float32. Also: the directory digest against
// coreutils' sha256sum, the tokenizer.json tokenizer against transformers' ids, and broken
// checkpoints (missing field, wrong shape, missing tensor, truncated shard) failing with one line.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "../formats/temp_dir.h"
#include "../runtime/golden_logits.h"
#include "../test_paths.h"
#include "quantbench/core/error.h"
#include "quantbench/formats/safetensors.h"
#include "quantbench/model/model.h"
#include "quantbench/runtime/cpu/cpu_backend.h"

namespace qb::model {
namespace {

namespace fs = std::filesystem;

std::string tiny_dir(const std::string& name) { return test::source_path("data/models/tiny-hf/" + name); }

void check_golden(const std::shared_ptr<const Model>& m, const std::string& name) {
  const auto golden = test::load_golden(test::source_path("tests/golden/hf/" + name + ".json"));
  for (auto mode : {runtime::cpu::CpuMode::Reference, runtime::cpu::CpuMode::Fast}) {
    runtime::cpu::CpuBackend be(m, {mode, 2});
    test::expect_matches_golden(be, golden);
  }
  // The tokenizer that came in the directory gives transformers' ids.
  const auto tok = m->load_tokenizer();
  EXPECT_EQ(tok.n_vocab(), 320u);
  EXPECT_EQ(tok.encode(golden["text"].get<std::string>(), true, true), golden["text_ids"].get<std::vector<int32_t>>());
}

TEST(HfModel, LlamaGqaBf16MatchesTransformers) {
  const auto m = Model::load(tiny_dir("llama-gqa"));
  const auto& s = m->spec();
  EXPECT_EQ(s.arch, Arch::Llama);
  EXPECT_EQ(s.rope_style, RopeStyle::Normal);  // Q/K permuted at load, as in llama.cpp's GGUF
  EXPECT_EQ(s.n_head_kv, 2);
  EXPECT_FALSE(s.tied_embeddings);
  EXPECT_EQ(m->token_embd.type, formats::GgmlType::BF16);
  ASSERT_TRUE(s.has_rope_freqs);
  ASSERT_EQ(m->rope_freqs.size(), 4u);
  EXPECT_FLOAT_EQ(m->rope_freqs[0], 1.0f);
  EXPECT_FLOAT_EQ(m->rope_freqs[3], 8.0f);
  EXPECT_EQ(m->gguf(), nullptr);
  EXPECT_THROW(m->file(), Error);
  check_golden(m, "llama-gqa");
}

TEST(HfModel, Qwen2ShardedMatchesTransformers) {
  const auto m = Model::load(tiny_dir("qwen2"));
  EXPECT_EQ(m->spec().arch, Arch::Qwen2);
  EXPECT_TRUE(m->spec().qkv_bias);
  EXPECT_TRUE(m->spec().tied_embeddings);
  ASSERT_NE(m->hf(), nullptr);
  EXPECT_EQ(m->hf()->shards().size(), 3u);
  EXPECT_EQ(m->format(), "Hugging Face safetensors (3 files)");
  check_golden(m, "qwen2");
}

TEST(HfModel, Qwen3F16MatchesTransformers) {
  const auto m = Model::load(tiny_dir("qwen3"));
  EXPECT_EQ(m->spec().arch, Arch::Qwen3);
  EXPECT_TRUE(m->spec().qk_norm);
  EXPECT_EQ(m->spec().head_dim_k, 16);  // not 32 / 4
  EXPECT_EQ(m->layers[0].wq.type, formats::GgmlType::F16);
  check_golden(m, "qwen3");
}

TEST(HfModel, GemmaMatchesTransformers) {
  const auto m = Model::load(tiny_dir("gemma"));
  EXPECT_EQ(m->spec().arch, Arch::Gemma);
  EXPECT_EQ(m->spec().activation, Activation::GeluTanh);
  EXPECT_TRUE(m->spec().tied_embeddings);
  check_golden(m, "gemma");
}

TEST(HfModel, Gemma3MatchesTransformers) {
  const auto m = Model::load(tiny_dir("gemma3"));
  const auto& s = m->spec();
  EXPECT_EQ(s.arch, Arch::Gemma3);
  EXPECT_TRUE(s.post_norms);
  EXPECT_EQ(s.sliding_window, 4);
  EXPECT_EQ(s.layer_swa, (std::vector<bool>{true, false}));
  EXPECT_FLOAT_EQ(s.rope_theta, 50000.0f);
  EXPECT_FLOAT_EQ(s.rope_theta_swa, 10000.0f);
  EXPECT_FLOAT_EQ(s.attn_scale, float(1.0 / std::sqrt(24.0)));  // query_pre_attn_scalar, not head_dim
  check_golden(m, "gemma3");
}

TEST(HfModel, DirectoryDigestEqualsSha256sumOfTheFileList) {
  const std::string dir = tiny_dir("qwen2");
  const std::string cmd = "cd '" + dir + "' && (LC_ALL=C ls -p | grep -v / | xargs -d '\\n' sha256sum) | sha256sum";
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  char buf[128] = {};
  const size_t n = std::fread(buf, 1, 64, p);
  ::pclose(p);
  ASSERT_EQ(n, 64u) << "sha256sum did not run";
  EXPECT_EQ(Model::load(dir)->sha256(), std::string(buf, 64));
}

// A copy of a tiny checkpoint that a test may break.
struct BrokenCopy {
  test::TempDir tmp;
  std::string dir;
  explicit BrokenCopy(const std::string& name) : dir(tmp.file(name)) {
    fs::copy(tiny_dir(name), dir, fs::copy_options::recursive);
  }
  void replace_in(const std::string& file, const std::string& from, const std::string& to) {
    auto bytes = test::read_bytes(dir + "/" + file);
    std::string s(bytes.begin(), bytes.end());
    const auto at = s.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    s.replace(at, from.size(), to);
    std::ofstream(dir + "/" + file, std::ios::binary | std::ios::trunc) << s;
  }
};

std::string load_error(const std::string& dir) {
  try {
    Model::load(dir);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

void expect_one_line_containing(const std::string& err, std::initializer_list<const char*> parts) {
  EXPECT_FALSE(err.empty()) << "no error";
  EXPECT_EQ(err.find('\n'), std::string::npos) << err;
  for (const char* p : parts) EXPECT_NE(err.find(p), std::string::npos) << "'" << p << "' not in: " << err;
}

TEST(HfModel, MissingConfigFieldNamesFieldAndFile) {
  BrokenCopy b("qwen3");
  b.replace_in("config.json", "\"hidden_size\"", "\"hidden_size_renamed\"");
  expect_one_line_containing(load_error(b.dir), {"config.json", "field 'hidden_size'"});
}

TEST(HfModel, ShapeMismatchWithConfigNamesTensor) {
  BrokenCopy b("qwen3");
  b.replace_in("config.json", "\"intermediate_size\": 48", "\"intermediate_size\": 64");
  expect_one_line_containing(load_error(b.dir), {"model.safetensors", "mlp.gate_proj.weight", "shape [48, 32]",
                                                 "[64, 32]"});
}

TEST(HfModel, MissingTensorIsNamed) {
  BrokenCopy b("gemma3");
  const std::string st = b.dir + "/model.safetensors";
  {
    const auto src = formats::SafetensorsFile::open(st);
    formats::SafetensorsWriter w;
    for (const auto& t : src->tensors())
      if (t.name != "model.layers.1.self_attn.k_norm.weight")
        w.add_tensor(t.name, t.dtype, t.shape, {t.data, t.nbytes()});
    w.write(st);
  }
  expect_one_line_containing(load_error(b.dir), {"model.layers.1.self_attn.k_norm.weight", "missing"});
}

TEST(HfModel, TruncatedShardNamesTheShard) {
  BrokenCopy b("qwen2");
  const std::string shard = b.dir + "/model-00002-of-00003.safetensors";
  fs::resize_file(shard, fs::file_size(shard) - 100);
  expect_one_line_containing(load_error(b.dir), {"model-00002-of-00003.safetensors"});
}

TEST(HfModel, UnsupportedFeaturesAreRefusedNotIgnored) {
  BrokenCopy b("llama-gqa");
  b.replace_in("config.json", "\"attention_bias\": false", "\"attention_bias\": true");
  expect_one_line_containing(load_error(b.dir), {"config.json", "field 'attention_bias'"});
  BrokenCopy c("llama-gqa");
  c.replace_in("config.json", "\"rope_type\": \"llama3\"", "\"rope_type\": \"yarn\"");
  expect_one_line_containing(load_error(c.dir), {"rope_parameters.rope_type", "yarn"});
}

}  // namespace
}  // namespace qb::model
