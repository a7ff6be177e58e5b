// Quantization methods: the registry's contract, option validation, and properties that can fail:
// GPTQ and AWQ beat RTN's output error on correlated calibration data (and on held-out data from
// the same distribution), the clipping searches never lose to RTN on the error they minimise,
// SmoothQuant's scales follow their definition, leave X W^T unchanged, and help W8A8.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "method_test_data.h"
#include "quantbench/core/error.h"
#include "quantbench/quant/method/method.h"

namespace qb::quant {
namespace {

using testing::Problem;

// sum over samples and rows of ((W - V diag(1/s)) x)^2, in double; s empty = no input scaling.
double output_error(const std::vector<float>& w, const QuantizedTensor& q, const std::vector<float>& s,
                    const std::vector<float>& x, int64_t rows, int64_t cols) {
  std::vector<float> v(static_cast<size_t>(rows * cols));
  dequantize(q, v.data());
  const int64_t n = int64_t(x.size()) / cols;
  double e = 0;
  for (int64_t t = 0; t < n; ++t)
    for (int64_t r = 0; r < rows; ++r) {
      double y = 0;
      for (int64_t j = 0; j < cols; ++j) {
        const double vj = s.empty() ? v[size_t(r * cols + j)] : double(v[size_t(r * cols + j)]) / s[size_t(j)];
        y += (double(w[size_t(r * cols + j)]) - vj) * x[size_t(t * cols + j)];
      }
      e += y * y;
    }
  return e;
}

LayerResult run(std::string_view method, const Problem& p, const LayerCalibration* cal, const QuantLayout& l,
                MethodOptions o = {}) {
  const auto m = builtin_methods().create(method, std::move(o));
  return quantize_layer(*m, LayerInput{"blk.0.ffn_up.weight", p.w.data(), p.rows, p.cols, cal}, l);
}

TEST(MethodRegistry, ListsBuiltinsAndRejectsDuplicates) {
  auto reg = builtin_methods();
  EXPECT_EQ(reg.names(), (std::vector<std::string>{"awq", "gptq", "imatrix", "rtn", "rtn_clip", "smoothquant"}));
  try {
    reg.add("gptq", [](MethodOptions&) -> std::unique_ptr<Method> { return nullptr; });
    FAIL() << "duplicate accepted";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "quantization method 'gptq' is registered twice");
  }
  try {
    reg.create("gtpq");
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "unknown quantization method 'gtpq' (known: awq, gptq, imatrix, rtn, rtn_clip, smoothquant)");
  }
}

TEST(MethodRegistry, ParsersValidateTheirOwnFields) {
  const auto reg = builtin_methods();
  auto expect_msg = [&](std::string_view method, MethodOptions o, const std::string& msg) {
    try {
      reg.create(method, std::move(o));
      ADD_FAILURE() << "accepted: " << msg;
    } catch (const Error& e) {
      EXPECT_EQ(e.what(), msg);
    }
  };
  MethodOptions typo;
  typo.set("dampp", 0.1);
  expect_msg("gptq", typo, "method gptq: unknown option 'dampp'");
  MethodOptions range;
  range.set("damp", 2.0);
  expect_msg("gptq", range, "option 'damp' = 2 is outside [0, 1]");
  MethodOptions type;
  type.set("act_order", int64_t(1));
  expect_msg("gptq", type, "option 'act_order' must be true or false, got 1");
  MethodOptions rtn_opt;
  rtn_opt.set("grid", int64_t(10));
  expect_msg("rtn", rtn_opt, "method rtn: unknown option 'grid'");
  MethodOptions ok;
  ok.set("alpha", int64_t(1));  // integers are accepted where a number is expected
  EXPECT_NO_THROW(reg.create("smoothquant", ok));
  const auto g = reg.create("gptq");
  EXPECT_EQ(std::get<double>(g->config().at("damp")), 0.01);
  EXPECT_EQ(std::get<int64_t>(g->config().at("block_size")), 128);
}

TEST(Methods, CapabilityAndInputErrorsNameTheTensor) {
  const auto p = testing::make_problem(8, 64, 32, 4, 1);
  LayerCalibration cal(64);
  cal.add(p.x.data(), p.samples);
  const QuantLayout int4{QFormat::Int4, Granularity::Group, 32, false, ScaleType::F16};
  auto msg = [&](std::string_view m, const LayerCalibration* c, const QuantLayout& l, MethodOptions o = {}) {
    try {
      run(m, p, c, l, std::move(o));
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(msg("gptq", nullptr, int4), "tensor 'blk.0.ffn_up.weight': method gptq needs calibration activations");
  EXPECT_EQ(msg("smoothquant", &cal, int4),
            "tensor 'blk.0.ffn_up.weight': smoothquant is for W8A8: weights must be int8 or fp8_e4m3, not int4");
  EXPECT_EQ(msg("gptq", &cal, QuantLayout{QFormat::NF4, Granularity::Group, 32, false, ScaleType::F16}),
            "tensor 'blk.0.ffn_up.weight': gptq supports int2/int3/int4/int8, not nf4");
  MethodOptions ao;
  ao.set("act_order", true);
  EXPECT_NE(msg("gptq", &cal, int4, ao).find("needs static_groups = true"), std::string::npos);
  LayerCalibration wrong(32);
  EXPECT_EQ(msg("rtn", &wrong, int4), "tensor 'blk.0.ffn_up.weight': calibration has 32 input features, weight has 64 columns");
}

// The headline property: on correlated activations with salient channels, calibration-aware methods
// reduce the layer's output error against RTN -- on the calibration set and on fresh samples.
TEST(Methods, GptqAndAwqBeatRtnOnCorrelatedActivations) {
  const int64_t rows = 32, cols = 128, n = 256, latent = 8;
  const uint64_t seed = 77;
  const auto p = testing::make_problem(rows, cols, n, latent, seed, 6.0);
  const auto fresh = testing::held_out_x(rows, cols, n, 256, latent, seed, 6.0);
  LayerCalibration cal(cols);
  cal.add(p.x.data(), n);
  for (const QuantLayout l : {QuantLayout{QFormat::Int3, Granularity::Group, 32, true, ScaleType::F16},
                              QuantLayout{QFormat::Int4, Granularity::Group, 128, false, ScaleType::F16},
                              QuantLayout{QFormat::Int4, Granularity::Channel, 0, false, ScaleType::BF16}}) {
    SCOPED_TRACE(layout_name(l));
    const auto rtn = run("rtn", p, &cal, l);
    const auto gptq = run("gptq", p, &cal, l);
    const auto awq = run("awq", p, &cal, l);
    const auto clip = run("rtn_clip", p, &cal, l);
    ASSERT_EQ(awq.input_scales.size(), size_t(cols));
    const double e_rtn = output_error(p.w, rtn.weight, {}, p.x, rows, cols);
    const double e_gptq = output_error(p.w, gptq.weight, {}, p.x, rows, cols);
    const double e_awq = output_error(p.w, awq.weight, awq.input_scales, p.x, rows, cols);
    const double e_clip = output_error(p.w, clip.weight, {}, p.x, rows, cols);
    const double f_rtn = output_error(p.w, rtn.weight, {}, fresh, rows, cols);
    const double f_gptq = output_error(p.w, gptq.weight, {}, fresh, rows, cols);
    const double f_awq = output_error(p.w, awq.weight, awq.input_scales, fresh, rows, cols);
    std::printf("[ errors ] %s: rtn %.2f gptq %.2f awq %.2f rtn_clip %.2f | held-out rtn %.2f gptq %.2f awq %.2f (%s)\n",
                layout_name(l).c_str(), e_rtn, e_gptq, e_awq, e_clip, f_rtn, f_gptq, f_awq, awq.notes[0].c_str());
    EXPECT_LT(e_gptq, 0.7 * e_rtn);
    EXPECT_LT(e_awq, 0.95 * e_rtn);
    EXPECT_LT(e_clip, e_rtn);
    EXPECT_LT(f_gptq, 0.8 * f_rtn);
    EXPECT_LT(f_awq, f_rtn);
  }
}

TEST(Methods, ClipSearchesNeverLoseOnTheirOwnObjective) {
  const auto p = testing::make_problem(16, 96, 64, 4, 5);
  LayerCalibration cal(96);
  cal.add(p.x.data(), p.samples);
  const QuantLayout l{QFormat::Int3, Granularity::Group, 32, false, ScaleType::F16};
  const auto rtn = run("rtn", p, nullptr, l);
  std::vector<float> a(p.w.size()), b(p.w.size());
  dequantize(rtn.weight, a.data());
  // Without calibration, rtn_clip minimises plain weight error per group; ratio 1 (RTN) is on the grid.
  const auto clip = run("rtn_clip", p, nullptr, l);
  dequantize(clip.weight, b.data());
  double ea = 0, eb = 0;
  for (size_t i = 0; i < p.w.size(); ++i) {
    ea += std::pow(double(p.w[i]) - a[i], 2);
    eb += std::pow(double(p.w[i]) - b[i], 2);
  }
  EXPECT_LT(eb, ea);
  // imatrix minimises sum_j mean(x_j^2) d_j^2 per group.
  const auto imx = run("imatrix", p, &cal, l);
  dequantize(imx.weight, b.data());
  const auto imp = cal.mean_sq();
  ea = eb = 0;
  for (size_t i = 0; i < p.w.size(); ++i) {
    const double wt = imp[i % 96];
    ea += wt * std::pow(double(p.w[i]) - a[i], 2);
    eb += wt * std::pow(double(p.w[i]) - b[i], 2);
  }
  EXPECT_LT(eb, ea);
  EXPECT_NE(imx.notes.at(0).find("imatrix"), std::string::npos);
}

// Per-token symmetric int8 fake quantization of activations (what W8A8 kernels do at run time).
std::vector<float> fake_quant_tokens(const std::vector<float>& x, int64_t cols) {
  std::vector<float> out(x.size());
  for (size_t t = 0; t < x.size() / size_t(cols); ++t) {
    float a = 0;
    for (int64_t j = 0; j < cols; ++j) a = std::max(a, std::fabs(x[t * size_t(cols) + size_t(j)]));
    const float s = a > 0 ? a / 127.0f : 1.0f;
    for (int64_t j = 0; j < cols; ++j) {
      const size_t i = t * size_t(cols) + size_t(j);
      out[i] = std::nearbyint(x[i] / s) * s;
    }
  }
  return out;
}

TEST(SmoothQuant, ScalesFollowDefinitionPreserveProductAndHelpW8A8) {
  const int64_t rows = 24, cols = 64, n = 128;
  auto p = testing::make_problem(rows, cols, n, 6, 9, 30.0);  // strong activation outlier channels
  LayerCalibration cal(cols);
  cal.add(p.x.data(), n);
  const QuantLayout l{QFormat::Int8, Granularity::Channel, 0, false, ScaleType::F16};
  MethodOptions o;
  o.set("alpha", 0.5);
  const auto sq = run("smoothquant", p, &cal, l, o);
  ASSERT_EQ(sq.input_scales.size(), size_t(cols));
  for (int64_t j = 0; j < cols; ++j) {
    double xm = 0, wm = 0;
    for (int64_t t = 0; t < n; ++t) xm = std::max(xm, double(std::fabs(p.x[size_t(t * cols + j)])));
    for (int64_t r = 0; r < rows; ++r) wm = std::max(wm, double(std::fabs(p.w[size_t(r * cols + j)])));
    EXPECT_NEAR(sq.input_scales[size_t(j)], std::sqrt(xm) / std::sqrt(wm), 1e-6 * std::sqrt(xm / wm)) << j;
  }
  // Identity: (X diag(s)^-1)(W diag(s))^T == X W^T, up to the float rounding of the two scalings.
  const auto& s = sq.input_scales;
  for (int64_t t = 0; t < n; ++t)
    for (int64_t r = 0; r < rows; ++r) {
      double y = 0, ys = 0, mag = 0;
      for (int64_t j = 0; j < cols; ++j) {
        const float xj = p.x[size_t(t * cols + j)], wj = p.w[size_t(r * cols + j)];
        y += double(xj) * wj;
        ys += double(xj / s[size_t(j)]) * double(wj * s[size_t(j)]);
        mag += std::fabs(double(xj) * wj);
      }
      ASSERT_NEAR(ys, y, 1.2e-7 * mag) << t << " " << r;
    }
  // W8A8 error of Y = X W^T with per-token int8 activations: smoothing should cut it.
  auto w8a8_error = [&](const LayerResult& res) {
    std::vector<float> v(static_cast<size_t>(rows * cols)), xs(p.x);
    dequantize(res.weight, v.data());
    if (!res.input_scales.empty())
      for (size_t i = 0; i < xs.size(); ++i) xs[i] /= res.input_scales[i % size_t(cols)];
    const auto xq = fake_quant_tokens(xs, cols);
    double e = 0;
    for (int64_t t = 0; t < n; ++t)
      for (int64_t r = 0; r < rows; ++r) {
        double y = 0, yq = 0;
        for (int64_t j = 0; j < cols; ++j) {
          y += double(p.x[size_t(t * cols + j)]) * p.w[size_t(r * cols + j)];
          yq += double(xq[size_t(t * cols + j)]) * v[size_t(r * cols + j)];
        }
        e += (y - yq) * (y - yq);
      }
    return e;
  };
  const double plain = w8a8_error(run("rtn", p, &cal, l)), smooth = w8a8_error(sq);
  std::printf("[ w8a8   ] per-token int8 activations: rtn %.4f smoothquant %.4f\n", plain, smooth);
  EXPECT_LT(smooth, 0.7 * plain);
}

}  // namespace
}  // namespace qb::quant
