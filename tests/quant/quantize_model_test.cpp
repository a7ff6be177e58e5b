// quantize end to end on stories260K: calibration sampling (deterministic, recorded, too-little-data
// error, overlap warning), quantize_model for our formats and ggml types, and the round trip through
// OUT.gguf: reloading the file must give bit-identical logits to the in-memory quantized model (the
// same decoder runs both), while the quantized logits must stay close to the float model's (an
// independent check that quantization did what it says). Failures leave no file behind.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "../test_paths.h"
#include "quantbench/core/error.h"
#include "quantbench/core/sha256.h"
#include "quantbench/formats/gguf_writer.h"
#include "quantbench/quant/calibration_data.h"
#include "quantbench/quant/quantize_model.h"
#include "quantbench/quant/scheme.h"
#include "quantbench/quant/writers/gguf_output.h"
#include "quantbench/runtime/cpu/cpu_backend.h"
#include "quantbench/tokenizer/tokenizer.h"

namespace qb {
namespace {

namespace fs = std::filesystem;
using runtime::cpu::CpuBackend;
using runtime::cpu::CpuMode;

std::shared_ptr<const model::Model> stories() {
  static auto m = model::Model::load(test::stories260k_path());
  return m;
}
const tokenizer::Tokenizer& tok() {
  static auto t = tokenizer::Tokenizer::from_gguf(stories()->file());
  return t;
}
std::string calib_text() {
  std::ifstream in(test::source_path("data/calib/tiny_stories_16k.txt"), std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
// Second half: calibration; first half: stands in for evaluation text.
std::string second_half() { const auto t = calib_text(); return t.substr(t.find('\n', t.size() / 2) + 1); }
std::string first_half() { const auto t = calib_text(); return t.substr(0, t.find('\n', t.size() / 2) + 1); }

std::vector<float> logits(std::shared_ptr<const model::Model> m) {
  CpuBackend be(m, {CpuMode::Reference, 2});
  const auto ids = tok().encode("Once upon a time, there was a little dog named Max.", true, false);
  const auto seq = be.create_sequence(64);
  runtime::Batch b;
  for (size_t i = 0; i < ids.size(); ++i) b.add(ids[i], seq, int64_t(i), true);
  return be.forward(b).data;
}

double rel_err(const std::vector<float>& a, const std::vector<float>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (double(a[i]) - ref[i]) * (double(a[i]) - ref[i]);
    den += double(ref[i]) * ref[i];
  }
  return std::sqrt(num / den);
}

quant::CalibrationData calib(int64_t n = 8, int64_t len = 64, uint64_t seed = 1) {
  return quant::make_calibration(second_half(), "tiny_stories_16k.txt (second half)", {"", n, len, seed}, tok());
}

TEST(CalibrationData, DeterministicNonOverlappingAndRecorded) {
  const auto a = calib(), b = calib(), c = calib(8, 64, 2);
  ASSERT_EQ(a.samples.size(), 8u);
  EXPECT_EQ(a.samples, b.samples);
  EXPECT_NE(a.samples, c.samples);
  for (const auto& s : a.samples) {
    ASSERT_EQ(s.size(), 64u);
    EXPECT_EQ(s[0], tok().bos());
  }
  const std::string text = second_half();
  std::map<std::string, std::string> f(a.facts.begin(), a.facts.end());
  EXPECT_EQ(f["calibration.dataset_sha256"], sha256_hex({reinterpret_cast<const uint8_t*>(text.data()), text.size()}));
  EXPECT_EQ(f["calibration.samples"], "8 x 64");
  EXPECT_EQ(f["calibration.seed"], "1");
  // Each sample is a verbatim window of the tokenized text.
  for (const auto& s : a.samples) {
    auto it = std::search(a.all_tokens.begin(), a.all_tokens.end(), s.begin() + 1, s.end());
    EXPECT_NE(it, a.all_tokens.end());
  }
}

TEST(CalibrationData, TooLittleTextIsAnError) {
  try {
    quant::make_calibration("Once upon a time.", "short.txt", {"", 4, 64, 0}, tok());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("too little calibration text"), std::string::npos) << e.what();
  }
}

TEST(CalibrationData, JsonlTextField) {
  const std::string jl = "{\"text\": \"" + std::string(200, 'a') + " b c d e f\"}\n{\"text\": \"Lily went home.\"}\n";
  const auto d = quant::make_calibration(jl, "x.jsonl", {"", 1, 8, 0}, tok());
  EXPECT_EQ(d.samples.size(), 1u);
  EXPECT_THROW(quant::make_calibration("{\"txt\": 1}\n", "y.jsonl", {"", 1, 8, 0}, tok()), Error);
}

TEST(CalibrationData, OverlapWarning) {
  const auto cal = tok().encode(second_half(), false, false);
  EXPECT_FALSE(quant::overlap_warning(cal, tok().encode(first_half(), false, false)).has_value());
  // Evaluation text that is a slice of the calibration text is flagged.
  const std::vector<int32_t> eval(cal.begin() + 100, cal.begin() + 400);
  EXPECT_NEAR(quant::ngram_overlap(cal, eval), 1.0, 1e-12);
  EXPECT_TRUE(quant::overlap_warning(cal, eval).has_value());
}

struct RoundTrip {
  quant::QuantizedModel qm;
  std::vector<float> mem, file;
  std::string path;
};

RoundTrip round_trip(const std::string& spec, const std::vector<std::vector<int32_t>>* cal) {
  const auto methods = quant::builtin_methods();
  RoundTrip r;
  quant::QuantizeOptions o;
  o.calibration = cal;
  o.n_threads = 2;
  o.progress = false;
  r.qm = quant::quantize_model(stories(), quant::parse_scheme(spec, methods), methods, o);
  r.path = ::testing::TempDir() + "qb_quant_" + std::to_string(std::hash<std::string>{}(spec)) + ".gguf";
  quant::write_quantized_gguf(r.qm, r.qm.manifest, r.path);
  r.mem = logits(r.qm.model);
  r.file = logits(model::Model::load(r.path));
  return r;
}

TEST(QuantizeModel, OwnFormatsRoundTripThroughGguf) {
  const auto ref = logits(stories());
  const auto cd = calib();
  struct Case { const char* spec; bool calib; double max_err; };
  for (const Case& c : {Case{"w8g32", false, 0.02}, Case{"w4g32", false, 0.35}, Case{"w4g32:gptq", true, 0.35},
                        Case{"w4g32:awq", true, 0.35}}) {
    SCOPED_TRACE(c.spec);
    const auto r = round_trip(c.spec, c.calib ? &cd.samples : nullptr);
    ASSERT_EQ(r.mem.size(), ref.size());
    EXPECT_EQ(r.mem, r.file);                 // reloading gives exactly the in-memory model
    EXPECT_LT(rel_err(r.mem, ref), c.max_err);  // and it is still the same model
    EXPECT_GT(rel_err(r.mem, ref), 0.0);        // ...but quantized
    // stories260K's FFN is 172 wide: ffn_down's rows end in a ragged group of 12.
    bool ragged = false;
    for (const auto& m : r.qm.matrices)
      if (m.name == "blk.0.ffn_down.weight")
        for (const auto& n : m.notes) ragged |= n.find("ragged last group of 12") != std::string::npos;
    EXPECT_TRUE(ragged);
    EXPECT_GT(r.qm.bpw_no_embd, c.spec[1] == '8' ? 8.0 : 4.0);
    EXPECT_GT(r.qm.bpw_all, r.qm.bpw_no_embd);  // f32 embeddings kept
    std::remove(r.path.c_str());
  }
}

TEST(QuantizeModel, AwqFoldsIntoNorms) {
  const auto cd = calib();
  const auto r = round_trip("w4g32:awq", &cd.samples);
  EXPECT_FALSE(r.qm.changed_vectors.empty());
  const auto f = formats::GgufFile::open(r.path);
  EXPECT_NE(f->tensor("blk.0.attn_norm.weight").data, nullptr);
  // The rewritten gain differs from the source's.
  const auto& a = f->tensor("blk.0.attn_norm.weight");
  const auto& b = stories()->file().tensor("blk.0.attn_norm.weight");
  EXPECT_NE(std::memcmp(a.data, b.data, a.nbytes), 0);
  std::remove(r.path.c_str());
}

// Sequential calibration: block 0 sees the same inputs either way (nothing before it is quantized), so
// its codes must be identical to one-pass calibration's; later blocks see the quantized blocks' outputs,
// so their codes must differ somewhere; the manifest says which mode ran; and the sequentially
// calibrated model is still the model (AWQ included: its folds change the norms the later passes read).
TEST(QuantizeModel, SequentialCalibrationMatchesOnePassOnTheFirstBlockOnly) {
  const auto methods = quant::builtin_methods();
  const auto cd = calib();
  const auto ref = logits(stories());
  for (const char* spec : {"w3g32:gptq", "w4g32:awq"}) {
    SCOPED_TRACE(spec);
    quant::QuantizeOptions o;
    o.calibration = &cd.samples;
    o.n_threads = 2;
    o.progress = false;
    o.calib_order = quant::CalibOrder::OnePass;
    const auto one = quant::quantize_model(stories(), quant::parse_scheme(spec, methods), methods, o);
    o.calib_order = quant::CalibOrder::Sequential;
    const auto seq = quant::quantize_model(stories(), quant::parse_scheme(spec, methods), methods, o);
    EXPECT_EQ(seq.manifest.facts().at("calibration.method").value.rfind("sequential: ", 0), 0u);
    EXPECT_EQ(one.manifest.facts().at("calibration.method").value.rfind("layer inputs collected", 0), 0u);
    auto codes = [](const quant::QuantizedModel& m, int64_t layer) {
      std::vector<uint8_t> c;
      const auto& L = m.model->layers[size_t(layer)];
      for (const auto* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down})
        c.insert(c.end(), w->quantized->codes.begin(), w->quantized->codes.end());
      return c;
    };
    EXPECT_EQ(codes(one, 0), codes(seq, 0));
    const int64_t last = stories()->spec().n_layer - 1;
    EXPECT_NE(codes(one, last), codes(seq, last));
    EXPECT_LT(rel_err(logits(seq.model), ref), 0.5);
    // The default: sequential for gptq, one pass otherwise.
    o.calib_order = quant::CalibOrder::Auto;
    const auto dflt = quant::quantize_model(stories(), quant::parse_scheme(spec, methods), methods, o);
    const std::string how = dflt.manifest.facts().at("calibration.method").value;
    if (std::string(spec).find(":gptq") != std::string::npos) {
      EXPECT_EQ(how.rfind("sequential (the default for gptq): ", 0), 0u) << how;
      EXPECT_EQ(codes(dflt, last), codes(seq, last));
    } else {
      EXPECT_EQ(how.rfind("layer inputs collected", 0), 0u) << how;
      EXPECT_EQ(codes(dflt, last), codes(one, last));
    }
  }
}

TEST(QuantizeModel, GgmlTypeSchemeWritesGgmlTypes) {
  const auto ref = logits(stories());
  const auto r = round_trip("q4_0", nullptr);
  EXPECT_EQ(r.mem, r.file);
  EXPECT_LT(rel_err(r.mem, ref), 0.35);
  const auto f = formats::GgufFile::open(r.path);
  EXPECT_EQ(f->tensor("blk.0.attn_q.weight").type, formats::GgmlType::Q4_0);
  // 172 is not a multiple of q4_0's 32: ffn_down stays f16 and says so.
  EXPECT_EQ(f->tensor("blk.0.ffn_down.weight").type, formats::GgmlType::F16);
  EXPECT_EQ(f->get_string("quantbench.scheme.name"), "q4_0");
  EXPECT_NE(f->get_string("quantbench.scheme.tensor.blk.0.ffn_down.weight").find("kept f16"), std::string::npos);
  std::remove(r.path.c_str());
}

TEST(QuantizeModel, MissingCalibrationFailsBeforeWriting) {
  const auto methods = quant::builtin_methods();
  quant::QuantizeOptions o;
  o.progress = false;
  try {
    quant::quantize_model(stories(), quant::parse_scheme("w4g32:gptq", methods), methods, o);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("needs calibration data"), std::string::npos) << e.what();
  }
}

// An [[override]] that matches no quantized matrix (here the output, which quantize keeps as stored) is
// an error naming it, not silently ignored.
TEST(QuantizeModel, OverrideMatchingNoQuantizedMatrixIsAnError) {
  const auto methods = quant::builtin_methods();
  quant::QuantizeOptions o;
  o.progress = false;
  const auto scheme = quant::parse_scheme_toml(
      "scheme = \"q8_0\"\n[[override]]\npattern = \"blk.*.attn_v.weight\"\nscheme = \"q4_0\"\n"
      "[[override]]\npattern = \"output.weight\"\nscheme = \"q6_k\"\n",
      "t.toml", methods);
  try {
    quant::quantize_model(stories(), scheme, methods, o);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("override 2 (pattern 'output.weight') matches none"), std::string::npos)
        << e.what();
  }
}

TEST(QuantizeModel, FailedWriteLeavesNothing) {
  const auto methods = quant::builtin_methods();
  quant::QuantizeOptions o;
  o.progress = false;
  const auto qm = quant::quantize_model(stories(), quant::parse_scheme("w8g32", methods), methods, o);
  const std::string dir = ::testing::TempDir() + "qb_quant_no_such_dir";
  fs::remove_all(dir);
  EXPECT_THROW(quant::write_quantized_gguf(qm, qm.manifest, dir + "/out.gguf"), Error);
  EXPECT_FALSE(fs::exists(dir));
}

TEST(QuantizeModel, BadOwnFormatTensorIsRejectedAtLoad) {
  // A file whose qb_scales part is one byte short, and one whose layout key is malformed.
  const auto methods = quant::builtin_methods();
  quant::QuantizeOptions o;
  o.progress = false;
  const auto qm = quant::quantize_model(stories(), quant::parse_scheme("w4g32", methods), methods, o);
  const std::string path = ::testing::TempDir() + "qb_quant_bad.gguf";
  quant::write_quantized_gguf(qm, qm.manifest, path);
  const auto good = formats::GgufFile::open(path);
  for (int variant = 0; variant < 2; ++variant) {
    formats::GgufWriter w;
    w.copy_metadata_from(*good);
    if (variant == 1) w.set("quantbench.tensor.blk.1.ffn_up.weight.layout", formats::GgufValue::str("format=int4;rows=x"));
    for (const auto& t : good->tensors()) {
      std::vector<uint8_t> bytes(t.data, t.data + t.nbytes);
      std::vector<int64_t> shape = t.shape;
      if (variant == 0 && t.name == "blk.1.ffn_up.weight.qb_scales") {
        bytes.pop_back();
        shape[0] -= 1;
      }
      w.add_tensor_owned(t.name, t.type, shape, std::move(bytes));
    }
    const std::string bad = ::testing::TempDir() + "qb_quant_bad2.gguf";
    w.write(bad);
    try {
      model::Model::load(bad);
      ADD_FAILURE() << "variant " << variant << " loaded";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("blk.1.ffn_up.weight"), std::string::npos) << e.what();
    }
    std::remove(bad.c_str());
  }
  std::remove(path.c_str());
}

TEST(QuantizeModel, ObserverSeesNormedInput) {
  // Layer 0's q/k/v input for one token is rmsnorm(embedding) * attn_norm, computed here independently.
  const auto m = stories();
  const auto& sp = m->spec();
  std::vector<float> seen;
  runtime::cpu::CpuBackendOptions bo{CpuMode::Reference, 1};
  bo.observer = [&](int64_t layer, std::string_view t, const float* x, int64_t n, int64_t n_in) {
    if (layer == 0 && t == "blk.0.attn_q.weight") seen.assign(x, x + n * n_in);
  };
  CpuBackend be(m, bo);
  runtime::Batch b;
  b.add(tok().bos(), be.create_sequence(8), 0, true);
  be.forward(b);
  ASSERT_EQ(int64_t(seen.size()), sp.n_embd);
  std::vector<float> e(size_t(sp.n_embd));
  m->embedding_row(tok().bos(), e.data());
  double ss = 0;
  for (float v : e) ss += double(v) * v;
  const double inv = 1.0 / std::sqrt(ss / double(sp.n_embd) + sp.rms_eps);
  for (int64_t i = 0; i < sp.n_embd; ++i)
    EXPECT_NEAR(seen[size_t(i)], e[size_t(i)] * inv * m->layers[0].attn_norm[size_t(i)], 1e-5);
}

}  // namespace
}  // namespace qb
