// qgemm (the fused prefill product on packed 4- and 8-bit weights, runtime/cuda/qgemm.h) against a
// float64 product of the weights it must use: each (q - z) * s rounded once to f16, as dequantize_packed
// writes them (that rounding is itself checked bit for bit in qgemv_check.cu), or with mins q * s + m
// rounded to f16, times f16 activations; and with an output row stride.
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
#include "check_util.h"

using namespace qb::runtime::cuda;
using namespace qb::cuda_checks;

namespace {

int g_fail = 0;

#define QCHECK(cond, ...) QB_COUNT_CHECK(g_fail, cond, __VA_ARGS__)

// Fresh random weights in `spec` (on the device) and f16 activations x[T][n_in] (on the host and the device).
struct Inputs {
  HostMatrix m;
  std::vector<uint16_t> x;
  DeviceMatrix dw;
  uint16_t* dx = nullptr;
  Inputs(const QuantSpec& spec, int64_t n_out, int64_t n_in, int T, std::mt19937_64& rng)
      : m(random_matrix(spec, n_out, n_in, rng)), x(size_t(T) * n_in) {
    std::uniform_real_distribution<float> u(-1.f, 1.f);
    for (auto& v : x) v = to_f16(u(rng));
    dw = upload(pack(m));
    QB_CUDA_OK(cudaMalloc(&dx, x.size() * 2));
    QB_CUDA_OK(cudaMemcpy(dx, x.data(), x.size() * 2, cudaMemcpyHostToDevice));
  }
  ~Inputs() { cudaFree(dx); }
  Inputs(const Inputs&) = delete;
  Inputs& operator=(const Inputs&) = delete;
};

void check_qgemm(const QuantSpec& spec, int64_t n_out, int64_t n_in, int T, QgemmConfig cfg, std::mt19937_64& rng) {
  std::string name = "qgemm " + spec_name(spec) + " " + std::to_string(n_out) + "x" + std::to_string(n_in) +
                     " T=" + std::to_string(T);
  const Inputs in(spec, n_out, n_in, T, rng);
  const HostMatrix& m = in.m;
  const std::vector<uint16_t>& x = in.x;
  float* dy = nullptr;
  const size_t ny = size_t(T) * n_out;
  QB_CUDA_OK(cudaMalloc(&dy, (ny + kGuard) * sizeof(float)));
  std::vector<float> y, y2;
  run_poisoned_twice(dy, ny, [&](int run) {
    const QgemmConfig ran = qgemm(in.dw, in.dx, T, dy, nullptr, cfg);
    if (run == 0) name += " tile 128x" + std::to_string(ran.tokens) + (cfg.tokens ? "" : " (auto)");
  }, y, y2);
  QB_CUDA_OK(cudaFree(dy));

  std::vector<double> xd(x.size());
  for (size_t i = 0; i < x.size(); ++i) xd[i] = from_f16(x[i]);
  // The weights qgemm must use: each exact value rounded once to f16 (exact in f32 before that).
  const ProductErrors e = product_errors([&](int64_t o, int64_t i) { return from_f16(to_f16(float(m.weight(o, i)))); },
                                         xd, y, n_out, n_in, T, 2e-4);
  const bool same = std::memcmp(y.data(), y2.data(), ny * sizeof(float)) == 0;
  const int before = g_fail;
  QCHECK(e.not_finite == 0, "%s: %d outputs not finite (unwritten)", name.c_str(), e.not_finite);
  QCHECK(e.guard_hit == 0, "%s: %d writes past the output", name.c_str(), e.guard_hit);
  QCHECK(e.bad_elem == 0, "%s: %d elements beyond 2e-4 * sum|wx| (worst %.2e)", name.c_str(), e.bad_elem, e.worst);
  QCHECK(e.rel_l2 <= 3e-5, "%s: relative L2 error %.3e > 3e-5", name.c_str(), e.rel_l2);
  QCHECK(same, "%s: second launch differs bitwise", name.c_str());
  std::printf("%-6s %-58s rel_l2 %.2e  worst_elem %.2e\n", g_fail == before ? "ok" : "FAIL", name.c_str(), e.rel_l2,
              e.worst);
}

// The same product with an output row stride ldy = n_out + 37 (a split q|k|v stack's parts write their
// rows of one output): bit-identical to the unstrided launch, nothing written between or past the rows,
// and an ldy below n_out refused.
void check_qgemm_strided(const QuantSpec& spec, int64_t n_out, int64_t n_in, int T, std::mt19937_64& rng) {
  const std::string name = "qgemm " + spec_name(spec) + " " + std::to_string(n_out) + "x" + std::to_string(n_in) +
                           " T=" + std::to_string(T) + " ldy=n_out+37";
  const int64_t ldy = n_out + 37;
  const Inputs in(spec, n_out, n_in, T, rng);
  float *dy = nullptr, *ds = nullptr;
  const size_t ny = size_t(T) * n_out, ns = size_t(T) * ldy;
  QB_CUDA_OK(cudaMalloc(&dy, (ny + kGuard) * sizeof(float)));
  QB_CUDA_OK(cudaMalloc(&ds, (ns + kGuard) * sizeof(float)));
  std::vector<float> y, y2, st(ns + kGuard, kSentinel);
  QgemmConfig ran;
  run_poisoned_twice(dy, ny, [&](int) { ran = qgemm(in.dw, in.dx, T, dy, nullptr); }, y, y2);
  QB_CUDA_OK(cudaMemcpy(ds, st.data(), st.size() * sizeof(float), cudaMemcpyHostToDevice));
  qgemm(in.dw, in.dx, T, ds, nullptr, ran, ldy);
  QB_CUDA_OK(cudaDeviceSynchronize());
  QB_CUDA_OK(cudaMemcpy(st.data(), ds, st.size() * sizeof(float), cudaMemcpyDeviceToHost));
  bool threw = false;
  try { qgemm(in.dw, in.dx, T, ds, nullptr, ran, n_out - 1); } catch (const std::invalid_argument&) { threw = true; }
  QB_CUDA_OK(cudaFree(dy));
  QB_CUDA_OK(cudaFree(ds));
  int differ = 0, stray = 0;
  for (size_t k = 0; k < ns + kGuard; ++k) {
    const size_t t = k / size_t(ldy), o = k % size_t(ldy);
    if (k < ns && o < size_t(n_out)) differ += std::memcmp(&st[k], &y[t * size_t(n_out) + o], 4) != 0;
    else stray += st[k] != kSentinel;
  }
  const int before = g_fail;
  QCHECK(differ == 0, "%s: %d outputs differ from the unstrided launch", name.c_str(), differ);
  QCHECK(stray == 0, "%s: %d writes between or past the strided rows", name.c_str(), stray);
  QCHECK(threw, "%s: an ldy below n_out was accepted", name.c_str());
  std::printf("%-6s %s\n", g_fail == before ? "ok" : "FAIL", name.c_str());
}

}  // namespace

// Called from qgemv_check.cu's main (one test executable); returns the number of failures.
int run_qgemm_checks(std::mt19937_64& rng, int* cases) {
  g_fail = 0;
  const QuantSpec specs[] = {{WeightFormat::W4A16, 128, false}, {WeightFormat::W4A16, 128, true},
                             {WeightFormat::W4A16, 32, false},  {WeightFormat::W4A16, 32, true},
                             {WeightFormat::W8A16, 0, false},   {WeightFormat::W8A16, 32, false},
                             {WeightFormat::W4A16, 32, false, true}, {WeightFormat::W8A16, 32, false, true},
                             {WeightFormat::W8A16, 16, false},  {WeightFormat::W8A16, 16, false, true}};
  struct Case { int64_t n_out, n_in; int T; };
  for (const QuantSpec& s : specs) {
    // Ragged rows (not a multiple of the 128-row tile or of 16), ragged token tiles (17, 130, 300),
    // several token tiles, a long input (Llama-2-7B's down projection) and, for groups of 32, inputs
    // that end in a half-filled 64-wide chunk (1120 = 17.5 chunks).
    std::vector<Case> cases_for = {{128, 128, 17}, {333, 640, 130}, {1000, 1152, 300}, {160, 256, 1000},
                                   {512, 4096, 128}, {136, 11008, 129}};
    if (s.group == 32 || s.group == 16) cases_for.push_back({129, 1120, 40});
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
    ++*cases;
    check_qgemm_strided(s, 300, s.group == 128 ? 1152 : 1120, 130, rng);
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
