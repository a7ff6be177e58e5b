// qgemm (the fused prefill product on packed 4- and 8-bit weights, runtime/cuda/qgemm.h) against a
// float64 product of the weights it must use: each (q - z) * s rounded once to f16, as dequantize_packed
// writes them (that rounding is itself checked bit for bit in qgemv_check.cu), times f16 activations.
// Fresh random inputs per case; the output poisoned with NaN and a guard past it with a sentinel; a
// second launch must be bit-identical. Products of f16 values are exact in f32, only the f32 sums
// round: per element within 2e-4 of sum |w x| (qgemv_check.cu's bound), relative L2 within 3e-5. That
// is looser than qgemv's 1e-5 (mma.sync) because the wgmma accumulation errs more, and linearly in K,
// i.e. with a bias (every H100 run: about 4.9e-6 at K = 4096, 1.3e-5 at K = 11008; worst element under
// 1e-6 of sum |w x|). A wrong fragment, swizzle, scale, zero point or token mapping gives errors of
// order 1.
#include <cuda_fp16.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "quantbench/runtime/cuda/cuda_check.h"
#include "quantbench/runtime/cuda/qgemm.h"
#include "quantbench/runtime/cuda/qgemv.h"

using namespace qb::runtime::cuda;

namespace {

int g_fail = 0;

#define QCHECK(cond, ...)                                          \
  do {                                                             \
    if (!(cond)) {                                                 \
      std::printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
      std::printf(__VA_ARGS__);                                    \
      std::printf("\n");                                           \
      ++g_fail;                                                    \
    }                                                              \
  } while (0)

uint16_t f16_bits(float f) { return __half_raw(__float2half_rn(f)).x; }
double f16_value(uint16_t u) { __half_raw r; r.x = u; return double(__half2float(__half(r))); }

HostMatrix random_packed(const QuantSpec& spec, int64_t n_out, int64_t n_in, std::mt19937_64& rng) {
  HostMatrix m;
  m.spec = spec;
  m.n_out = n_out;
  m.n_in = n_in;
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  const size_t n = size_t(n_out * n_in);
  if (spec.format == WeightFormat::W8A16) {
    std::uniform_int_distribution<int> q(-128, 127);
    m.q8.resize(n);
    for (auto& v : m.q8) v = int8_t(q(rng));
    m.scales.resize(size_t(spec.group ? n_out * (n_in / spec.group) : n_out));
    for (auto& s : m.scales) s = f16_bits(1e-3f * (1.5f + u(rng)));
    return m;
  }
  std::uniform_int_distribution<int> q(0, 15);
  m.q4.resize(n);
  for (auto& v : m.q4) v = uint8_t(q(rng));
  const size_t ng = size_t(n_out * (n_in / spec.group));
  m.scales.resize(ng);
  for (auto& s : m.scales) s = f16_bits(4e-3f * (1.5f + u(rng)));
  if (spec.asym) {
    m.zeros.resize(ng);
    for (auto& z : m.zeros) z = uint8_t(q(rng));
  }
  return m;
}

void check_qgemm(const QuantSpec& spec, int64_t n_out, int64_t n_in, int T, QgemmConfig cfg, std::mt19937_64& rng) {
  std::string name = "qgemm " + spec_name(spec) + " " + std::to_string(n_out) + "x" + std::to_string(n_in) +
                     " T=" + std::to_string(T);
  const HostMatrix m = random_packed(spec, n_out, n_in, rng);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<uint16_t> x(size_t(T) * n_in);
  for (auto& v : x) v = f16_bits(u(rng));

  const DeviceMatrix dw = upload(pack(m));
  uint16_t* dx = nullptr;
  float* dy = nullptr;
  const size_t ny = size_t(T) * n_out, guard = 1024;
  QB_CUDA_OK(cudaMalloc(&dx, x.size() * 2));
  QB_CUDA_OK(cudaMalloc(&dy, (ny + guard) * sizeof(float)));
  QB_CUDA_OK(cudaMemcpy(dx, x.data(), x.size() * 2, cudaMemcpyHostToDevice));
  std::vector<float> poison(ny + guard, std::nanf("")), y(ny + guard), y2(ny + guard);
  const float sentinel = 12345.5f;
  for (size_t i = ny; i < ny + guard; ++i) poison[i] = sentinel;
  for (int run = 0; run < 2; ++run) {
    QB_CUDA_OK(cudaMemcpy(dy, poison.data(), poison.size() * sizeof(float), cudaMemcpyHostToDevice));
    const QgemmConfig ran = qgemm(dw, dx, T, dy, nullptr, cfg);
    QB_CUDA_OK(cudaDeviceSynchronize());
    if (run == 0)
      name += " tile 128x" + std::to_string(ran.tokens) + (cfg.tokens ? "" : " (auto)");
    QB_CUDA_OK(cudaMemcpy(run ? y2.data() : y.data(), dy, y.size() * sizeof(float), cudaMemcpyDeviceToHost));
  }
  QB_CUDA_OK(cudaFree(dx));
  QB_CUDA_OK(cudaFree(dy));

  std::vector<double> xd(x.size()), w(static_cast<size_t>(n_in));
  for (size_t i = 0; i < x.size(); ++i) xd[i] = f16_value(x[i]);
  double err2 = 0, ref2 = 0, worst = 0;
  int bad = 0, not_finite = 0;
  for (int64_t o = 0; o < n_out; ++o) {
    for (int64_t i = 0; i < n_in; ++i) w[size_t(i)] = f16_value(f16_bits(float(m.weight(o, i))));  // exact in f32
    for (int t = 0; t < T; ++t) {
      const double* xt = &xd[size_t(t) * n_in];
      double ref = 0, mag = 0;
      for (int64_t i = 0; i < n_in; ++i) {
        ref += w[size_t(i)] * xt[i];
        mag += std::fabs(w[size_t(i)] * xt[i]);
      }
      const double got = y[size_t(t) * n_out + o];
      if (!std::isfinite(got)) { ++not_finite; continue; }
      const double e = std::fabs(got - ref);
      err2 += e * e;
      ref2 += ref * ref;
      if (mag > 0) worst = std::max(worst, e / mag);
      if (e > 2e-4 * mag + 1e-30) ++bad;
    }
  }
  int guard_hit = 0;
  for (size_t i = ny; i < ny + guard; ++i) guard_hit += y[i] != sentinel;
  const double rel = std::sqrt(err2 / std::max(ref2, 1e-300));
  const bool same = std::memcmp(y.data(), y2.data(), ny * sizeof(float)) == 0;
  const int before = g_fail;
  QCHECK(not_finite == 0, "%s: %d outputs not finite (unwritten)", name.c_str(), not_finite);
  QCHECK(guard_hit == 0, "%s: %d writes past the output", name.c_str(), guard_hit);
  QCHECK(bad == 0, "%s: %d elements beyond 2e-4 * sum|wx| (worst %.2e)", name.c_str(), bad, worst);
  QCHECK(rel <= 3e-5, "%s: relative L2 error %.3e > 3e-5", name.c_str(), rel);
  QCHECK(same, "%s: second launch differs bitwise", name.c_str());
  std::printf("%-6s %-58s rel_l2 %.2e  worst_elem %.2e\n", g_fail == before ? "ok" : "FAIL", name.c_str(), rel, worst);
}

}  // namespace

// Called from qgemv_check.cu's main (one test executable); returns the number of failures.
int run_qgemm_checks(std::mt19937_64& rng, int* cases) {
  g_fail = 0;
  const QuantSpec specs[] = {{WeightFormat::W4A16, 128, false}, {WeightFormat::W4A16, 128, true},
                             {WeightFormat::W4A16, 32, false},  {WeightFormat::W4A16, 32, true},
                             {WeightFormat::W8A16, 0, false},   {WeightFormat::W8A16, 32, false}};
  struct Case { int64_t n_out, n_in; int T; };
  for (const QuantSpec& s : specs) {
    // Ragged rows (not a multiple of the 128-row tile or of 16), ragged token tiles (17, 130, 300),
    // several token tiles, a long input (Llama-2-7B's down projection) and, for groups of 32, inputs
    // that end in a half-filled 64-wide chunk (1120 = 17.5 chunks).
    std::vector<Case> cases_for = {{128, 128, 17}, {333, 640, 130}, {1000, 1152, 300}, {160, 256, 1000},
                                   {512, 4096, 128}, {136, 11008, 129}};
    if (s.group == 32) cases_for.push_back({129, 1120, 40});
    if (s.group == 0) cases_for.push_back({50, 1000, 33});  // per-row int8 scales: n_in only a multiple of 8
    for (const Case& c : cases_for) {
      ++*cases;
      check_qgemm(s, c.n_out, c.n_in, c.T, {}, rng);
    }
    // Every launch, on ragged rows and tokens (a partial last row tile and token tile for each).
    for (int nt : {64, 128}) {
      ++*cases;
      check_qgemm(s, 300, s.group == 128 ? 1152 : 1120, 200, {nt}, rng);
    }
  }
  // Formats qgemm does not take are refused with a message, not run.
  ++*cases;
  bool threw = false;
  try {
    HostMatrix m;
    m.spec = {WeightFormat::BF16, 0, false};
    m.n_out = 16;
    m.n_in = 64;
    m.bf16.assign(16 * 64, 0x3f80);
    qgemm(upload(pack(m)), nullptr, 32, nullptr, nullptr);
  } catch (const std::invalid_argument&) {
    threw = true;
  }
  QCHECK(threw, "qgemm accepted bf16 weights");
  return g_fail;
}
