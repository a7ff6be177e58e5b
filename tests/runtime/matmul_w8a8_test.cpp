// W8A8 matrix products (runtime/cpu/matmul_w8a8.h) against an in-test float64 reference of the same
// quantization: per-token activation scales in f32 as specified, codes by round-half-even in double
// (int8) or by core's exhaustive E4M3 converter (fp8, itself checked against torch), the integer /
// e4m3 sum in long double, and the same f32 rescale. Plus the end-to-end path on stories260K:
// quantize_model with w8a8, w8a8-fp8 and w8a8:smoothquant, a GGUF round trip that keeps the
// activation quantization, the Manifest saying what ran, and KL from the f32 model that is small.
#include "quantbench/runtime/cpu/matmul_w8a8.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <random>

#include "../test_paths.h"
#include "quantbench/core/dtype.h"
#include "quantbench/core/error.h"
#include "quantbench/quant/calibration_data.h"
#include "quantbench/quant/qformat/quantized_tensor.h"
#include "quantbench/quant/quantize_model.h"
#include "quantbench/quant/writers/gguf_output.h"
#include "quantbench/runtime/cpu/cpu_backend.h"

namespace qb::runtime::cpu {
namespace {

std::vector<float> random_matrix(std::mt19937& rng, int64_t rows, int64_t cols, float outlier) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> m(size_t(rows * cols));
  for (auto& v : m) v = nd(rng);
  for (int64_t r = 0; r < rows; ++r) m[size_t(r * cols + 5)] *= outlier;  // an outlier channel
  return m;
}

// y[t][o] by the documented rule, in float64/long double.
std::vector<float> reference_w8a8(const quant::QuantizedTensor& w, ActQuant act, const std::vector<float>& x,
                                  int64_t n_tokens) {
  const int64_t n = w.cols;
  std::vector<float> y(size_t(n_tokens * w.rows));
  for (int64_t t = 0; t < n_tokens; ++t) {
    const float* xt = x.data() + t * n;
    float a = 0;
    for (int64_t i = 0; i < n; ++i) a = std::max(a, std::fabs(xt[i]));
    const float sx = a / (act == ActQuant::Int8PerToken ? 127.0f : 448.0f);
    std::vector<double> qx(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      const double v = double(xt[i]) / double(sx);
      qx[size_t(i)] = act == ActQuant::Int8PerToken ? std::clamp(std::nearbyint(v), -127.0, 127.0)
                                                    : double(f8e4m3_to_f32(f32_to_f8e4m3(float(v))));
    }
    for (int64_t r = 0; r < w.rows; ++r) {
      long double acc = 0;
      for (int64_t i = 0; i < n; ++i) {
        const uint8_t c = w.code(r, i);
        const double wv = act == ActQuant::Int8PerToken ? double(int(c) - 128) : double(f8e4m3_to_f32(c));
        acc += (long double)wv * qx[size_t(i)];
      }
      y[size_t(t * w.rows + r)] = float(double(acc)) * sx * w.params(r, 0).scale;
    }
  }
  return y;
}

// The claim both FP8 paths rest on (this CPU one and the GPU's, whose FP64 tensor cores add in another
// order): an e4m3 x e4m3 product is exact in f32 and a multiple of 2^-18 below 2^18, so up to 2^17 of
// them sum exactly in double whatever the order. At the bound and in the worst case (every product at
// the largest magnitude, 448 x 448, with the smallest, 2^-18, interleaved so that any rounding would
// drop them), forward, backward and pairwise double sums all equal the exact sum, counted in int64
// units of 2^-18.
TEST(MatmulW8A8, Fp8ProductSumsAreExactInDoubleInAnyOrder) {
  const int64_t n = int64_t(1) << 17;
  const float big = f8e4m3_to_f32(0x7e), tiny = f8e4m3_to_f32(0x01);  // 448 and 2^-9, the extremes
  ASSERT_EQ(big, 448.0f);
  ASSERT_EQ(tiny, std::ldexp(1.0f, -9));
  std::vector<double> prod(static_cast<size_t>(n));
  int64_t exact_units = 0;  // the sum in units of 2^-18
  for (int64_t i = 0; i < n; ++i) {
    const bool small = i % 64 == 7;
    const float p = small ? tiny * tiny : big * big;  // exact in f32
    prod[size_t(i)] = double(p);
    exact_units += small ? 1 : int64_t(448 * 448) << 18;
  }
  const double exact = std::ldexp(double(exact_units), -18);
  ASSERT_EQ(std::ldexp(exact, 18), double(exact_units));  // the exact sum itself fits in a double
  double fwd = 0, bwd = 0;
  for (int64_t i = 0; i < n; ++i) fwd += prod[size_t(i)];
  for (int64_t i = n - 1; i >= 0; --i) bwd += prod[size_t(i)];
  std::vector<double> tree = prod;
  for (size_t w = tree.size(); w > 1; w /= 2)
    for (size_t i = 0; i < w / 2; ++i) tree[i] = tree[2 * i] + tree[2 * i + 1];
  EXPECT_EQ(fwd, exact);
  EXPECT_EQ(bwd, exact);
  EXPECT_EQ(tree[0], exact);
  // And the float32 sum, for contrast, is not exact: the bound is what makes double necessary.
  float f = 0;
  for (int64_t i = 0; i < n; ++i) f += float(prod[size_t(i)]);
  EXPECT_NE(double(f), exact);
}

TEST(MatmulW8A8, MatchesFloat64ReferenceOfTheSameQuantization) {
  std::mt19937 rng(3);
  ThreadPool pool(2);
  const int64_t rows = 48, cols = 160, T = 5;
  const auto wf = random_matrix(rng, rows, cols, 1.0f);
  auto x = random_matrix(rng, T, cols, 30.0f);
  std::fill(x.begin() + 2 * cols, x.begin() + 3 * cols, 0.0f);  // an all-zero token row
  for (ActQuant act : {ActQuant::Int8PerToken, ActQuant::Fp8PerToken}) {
    quant::QuantLayout l;
    l.format = act == ActQuant::Int8PerToken ? quant::QFormat::Int8 : quant::QFormat::FP8E4M3;
    l.granularity = quant::Granularity::Channel;
    l.scale_type = act == ActQuant::Int8PerToken ? quant::ScaleType::F16 : quant::ScaleType::F32;
    const auto q = quant::quantize_rtn(wf.data(), rows, cols, l);
    WeightMatrix w;
    w.n_in = cols;
    w.n_out = rows;
    w.quantized = &q;
    w.act = act;
    std::vector<float> y(size_t(T * rows)), yref = reference_w8a8(q, act, x, T);
    for (MatmulPath path : {MatmulPath::Reference, MatmulPath::Fast}) {
      matmul(w, x.data(), T, y.data(), pool, path);
      double max_rel = 0, worst_vs_float = 0, norm = 0;
      for (int64_t t = 0; t < T; ++t)
        for (int64_t r = 0; r < rows; ++r) {
          const size_t k = size_t(t * rows + r);
          max_rel = std::max(max_rel, std::fabs(double(y[k]) - yref[k]) / (std::fabs(double(yref[k])) + 1e-3));
          // Against the unquantized product: W8A8 error stays at the few-percent level of the row.
          double exact = 0;
          for (int64_t i = 0; i < cols; ++i) exact += double(wf[size_t(r * cols + i)]) * x[size_t(t * cols + i)];
          worst_vs_float = std::max(worst_vs_float, std::fabs(exact - y[k]));
          norm = std::max(norm, std::fabs(exact));
          if (t == 2) EXPECT_EQ(y[k], 0.0f);
        }
      EXPECT_LT(max_rel, 1e-6) << act_quant_name(act);
      EXPECT_LT(worst_vs_float, (act == ActQuant::Int8PerToken ? 0.03 : 0.1) * norm) << act_quant_name(act);
    }
  }
}

TEST(MatmulW8A8, ActivationRowQuantizersRoundHalfEvenAndSaturate) {
  // 127 * (x / absmax) lands exactly on .5 for these inputs: ties go to the even code.
  const std::vector<float> x = {127.0f, 0.5f, 1.5f, -2.5f, 3.5f};
  std::vector<int8_t> q(x.size());
  EXPECT_EQ(quantize_row_int8(x.data(), 5, q.data()), 1.0f);
  EXPECT_EQ(std::vector<int>(q.begin(), q.end()), (std::vector<int>{127, 0, 2, -2, 4}));
  std::vector<uint8_t> f(x.size());
  EXPECT_EQ(quantize_row_fp8(x.data(), 5, f.data()), 127.0f / 448.0f);
  EXPECT_EQ(f[0], 0x7e);  // the absmax element maps to the largest finite code
  const std::vector<float> bad = {1.0f, NAN};
  EXPECT_THROW(quantize_row_int8(bad.data(), 2, q.data()), Error);
}

TEST(MatmulW8A8, RejectsWeightsItCannotRun) {
  std::mt19937 rng(5);
  const auto wf = random_matrix(rng, 8, 64, 1.0f);
  quant::QuantLayout l4;  // int4 per channel
  const auto q4 = quant::quantize_rtn(wf.data(), 8, 64, l4);
  WeightMatrix w;
  w.n_in = 64;
  w.n_out = 8;
  w.quantized = &q4;
  w.act = ActQuant::Int8PerToken;
  EXPECT_THROW(check_w8a8(w), Error);
  w.act = ActQuant::Fp8PerToken;
  EXPECT_THROW(check_w8a8(w), Error);
  w.quantized = nullptr;
  EXPECT_THROW(check_w8a8(w), Error);
  EXPECT_THROW(parse_act_quant("int4", "x"), Error);
}

std::shared_ptr<const model::Model> stories() {
  static auto m = model::Model::load(test::stories260k_path());
  return m;
}

std::vector<int32_t> story_tokens() {
  std::vector<int32_t> ids;
  for (int i = 0; i < 48; ++i) ids.push_back(int32_t(1 + (i * 37 + 11) % 500));
  return ids;
}

std::vector<float> logits_of(const std::shared_ptr<const model::Model>& m, const std::vector<int32_t>& ids) {
  CpuBackend be(m, {CpuMode::Reference, 2});
  const SeqId s = be.create_sequence();
  Batch b;
  b.add_sequence(ids, s, 0, true);
  return be.forward(b).data;
}

double mean_kl(const std::vector<float>& p, const std::vector<float>& q, int64_t nv) {
  double total = 0;
  const size_t rows = p.size() / size_t(nv);
  for (size_t r = 0; r < rows; ++r) {
    const float* a = p.data() + r * size_t(nv);
    const float* b = q.data() + r * size_t(nv);
    double ma = -INFINITY, mb = -INFINITY, za = 0, zb = 0, kl = 0;
    for (int64_t i = 0; i < nv; ++i) ma = std::max(ma, double(a[i])), mb = std::max(mb, double(b[i]));
    for (int64_t i = 0; i < nv; ++i) za += std::exp(a[i] - ma), zb += std::exp(b[i] - mb);
    for (int64_t i = 0; i < nv; ++i) {
      const double la = a[i] - ma - std::log(za), lb = b[i] - mb - std::log(zb);
      kl += std::exp(la) * (la - lb);
    }
    total += kl;
  }
  return total / double(rows);
}

TEST(MatmulW8A8, Stories260KEndToEndWithGgufRoundTrip) {
  const auto reg = quant::builtin_methods();
  const auto ids = story_tokens();
  const auto base = logits_of(stories(), ids);
  const int64_t nv = stories()->spec().n_vocab;
  std::vector<std::vector<int32_t>> calib;
  for (int s = 0; s < 4; ++s) {
    std::vector<int32_t> c;
    for (int i = 0; i < 64; ++i) c.push_back(int32_t(1 + (i * 53 + s * 101 + 7) % 500));
    calib.push_back(c);
  }
  const auto dir = std::filesystem::temp_directory_path() / ("qb_w8a8_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::map<std::string, double> kl;
  for (const char* spec : {"w8", "w8a8", "w8a8-fp8", "w8a8:smoothquant"}) {
    quant::QuantizeOptions qo;
    qo.calibration = &calib;
    qo.n_threads = 2;
    qo.progress = false;
    const auto qm = quant::quantize_model(stories(), quant::parse_scheme(spec, reg), reg, qo);
    const std::string acts = qm.manifest.value_or("scheme.activations", "");
    const bool a8 = std::string(spec) != "w8";
    EXPECT_EQ(acts.find("per-token dynamic") != std::string::npos, a8) << spec << ": " << acts;
    const auto& wq = qm.model->layers[0].wq;
    EXPECT_EQ(wq.act != ActQuant::None, a8) << spec;
    const auto mem = logits_of(qm.model, ids);
    kl[spec] = mean_kl(base, mem, nv);
    // Reloading the GGUF keeps the activation quantization (the logits are bit-identical).
    const std::string path = (dir / (std::string("m") + std::to_string(kl.size()) + ".gguf")).string();
    quant::write_quantized_gguf(qm, qm.manifest, path);
    const auto back = model::Model::load(path);
    EXPECT_EQ(back->layers[1].w_down.act, qm.model->layers[1].w_down.act) << spec;
    EXPECT_EQ(logits_of(back, ids), mem) << spec;
    // W8A8 declares its per-token quantization; plain w8 on the fast kernels their 8-bit activation
    // blocks (llama.cpp's integer dot products), and on the reference path f32.
    CpuBackend be(back, {CpuMode::Fast, 2});
    EXPECT_NE(be.describe_activations().find(a8 ? "per-token" : "8-bit blocks"), std::string::npos)
        << be.describe_activations();
    CpuBackend ref(back, {CpuMode::Reference, 2});
    EXPECT_NE(ref.describe_activations().find(a8 ? "per-token" : "f32 into every matmul"), std::string::npos)
        << ref.describe_activations();
    RecordProperty(std::string("kl_") + spec, fmt::format("{:.3e}", kl[spec]));
  }
  std::filesystem::remove_all(dir);
  for (const auto& [k, v] : kl) EXPECT_LT(v, 0.02) << k;
  EXPECT_LT(kl["w8"], kl["w8a8"]);  // quantizing activations too costs something
}

TEST(MatmulW8A8, SchemeRejectsGroupedOrAsymmetricW8A8) {
  const auto reg = quant::builtin_methods();
  EXPECT_THROW(quant::parse_scheme("w8a8g128", reg), Error);
  EXPECT_THROW(quant::parse_scheme("w8a8-asym", reg), Error);
  EXPECT_NO_THROW(quant::parse_scheme("w8a8-fp8-tensor", reg));
}

}  // namespace
}  // namespace qb::runtime::cpu
