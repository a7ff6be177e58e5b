// forward_kernels_check's norm and activation checks: add_rmsnorm (residual add, row gather, every output
// target) and gated_act_out (SiLU, GELU) against float64.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "quantbench/runtime/cuda/cuda_check.h"
#include "quantbench/runtime/cuda/forward_kernels.h"
#include "quantbench/runtime/cuda/qgemv.h"
#include "forward_check.h"

using namespace qb::runtime::cuda;

namespace forward_check {

void check_add_rmsnorm(int n, int T, bool with_add, bool gather, bool bf, std::mt19937_64& rng, bool loop,
                       bool prewait) {
  ++g_n;
  const std::string name = "add_rmsnorm n=" + std::to_string(n) + " T=" + std::to_string(T) +
                           (with_add ? " +add" : "") + (gather ? " gather" : "") + (bf ? " bf16" : " f16") +
                           (loop ? " loop kernel" : "") + (prewait ? " prewait" : "");
  const int X = gather ? T + 3 : T;  // rows of x; the gathered T rows are a permutation subset
  std::uniform_real_distribution<float> u(-2.f, 2.f);
  std::vector<float> x(size_t(X) * n), ad(x.size()), w(static_cast<size_t>(n));
  for (auto& v : x) v = u(rng);
  for (auto& v : ad) v = u(rng);
  for (auto& v : w) v = 0.5f + 0.25f * u(rng);
  std::vector<int32_t> rows(static_cast<size_t>(T));
  for (int t = 0; t < T; ++t) rows[size_t(t)] = t;
  if (gather) {  // T distinct rows of X, in random order
    std::vector<int32_t> perm(static_cast<size_t>(X));
    for (int i = 0; i < X; ++i) perm[size_t(i)] = i;
    std::shuffle(perm.begin(), perm.end(), rng);
    for (int t = 0; t < T; ++t) rows[size_t(t)] = perm[size_t(t)];
  }
  Dev<float> dx(x), da(ad), dw(w), out(size_t(T) * n, 0xff);
  Dev<int32_t> drows(rows);
  Dev<uint16_t> half(size_t(T) * n, 0xff);
  Dev<uint8_t> frag(T <= 16 ? activation_frag_bytes(n, T) : 1, 0xff);
  ActOut o;
  o.f32 = out.p;
  o.half_rows = half.p;
  o.frag = T <= 16 ? frag.p : nullptr;
  o.bf16 = bf;
  add_rmsnorm(dx.p, with_add ? da.p : nullptr, dw.p, n, T, 1e-5f, gather ? drows.p : nullptr, o, nullptr, loop, false,
              prewait);
  QB_CUDA_OK(cudaDeviceSynchronize());
  const auto gx = dx.get(), gy = out.get();
  std::vector<bool> used(size_t(X), false);
  size_t bad_x = 0, bad_y = 0;
  double worst = 0;
  for (int t = 0; t < T; ++t) {
    const int r = rows[size_t(t)];
    used[size_t(r)] = true;
    double ss = 0;
    for (int i = 0; i < n; ++i) {
      const float xi = with_add ? x[size_t(r) * n + i] + ad[size_t(r) * n + i] : x[size_t(r) * n + i];
      bad_x += gx[size_t(r) * n + i] != xi;
      ss += double(xi) * xi;
    }
    const double sc = 1.0 / std::sqrt(ss / n + 1e-5);
    for (int i = 0; i < n; ++i) {
      const double xi = double(gx[size_t(r) * n + i]);
      const double ref = xi * sc * w[size_t(i)];
      const double err = std::fabs(double(gy[size_t(t) * n + i]) - ref);
      worst = std::max(worst, err / (std::fabs(ref) + 1e-3));
      bad_y += !(err <= 2e-5 * std::fabs(ref) + 1e-6);
    }
  }
  for (int r = 0; r < X; ++r)
    if (!used[size_t(r)])
      for (int i = 0; i < n; ++i) bad_x += gx[size_t(r) * n + i] != x[size_t(r) * n + i];
  FCHECK(bad_x == 0, "%s: %zu residual values wrong (or untouched rows changed)", name.c_str(), bad_x);
  FCHECK(bad_y == 0, "%s: %zu normalized values off (worst rel %.3g)", name.c_str(), bad_y, worst);
  check_targets(gy, n, T, bf, &half, T <= 16 ? &frag : nullptr, name);
  std::printf("%-6s %s (worst rel %.2g)\n", g_fail ? "?" : "ok", name.c_str(), worst);
}

void check_gated(int n, int T, int act, bool bf, std::mt19937_64& rng) {
  ++g_n;
  const std::string name = "gated_act_out n=" + std::to_string(n) + " T=" + std::to_string(T) + (act ? " gelu" : " silu");
  std::uniform_real_distribution<float> u(-4.f, 4.f);
  std::vector<float> gu(size_t(T) * 2 * n);
  for (auto& v : gu) v = u(rng);
  Dev<float> dgu(gu), out(size_t(T) * n, 0xff);
  Dev<uint16_t> half(size_t(T) * n, 0xff);
  Dev<uint8_t> frag(T <= 16 ? activation_frag_bytes(n, T) : 1, 0xff);
  ActOut o;
  o.f32 = out.p;
  o.half_rows = half.p;
  o.frag = T <= 16 ? frag.p : nullptr;
  o.bf16 = bf;
  gated_act_out(dgu.p, n, T, act, o, nullptr);
  QB_CUDA_OK(cudaDeviceSynchronize());
  const auto gy = out.get();
  size_t bad = 0;
  for (int t = 0; t < T; ++t)
    for (int i = 0; i < n; ++i) {
      const double g = gu[size_t(t) * 2 * n + i], up = gu[size_t(t) * 2 * n + n + i];
      const double a = act == 0 ? g / (1.0 + std::exp(-g))
                                : 0.5 * g * (1.0 + std::tanh(0.7978845608028654 * (g + 0.044715 * g * g * g)));
      const double ref = a * up;
      bad += !(std::fabs(double(gy[size_t(t) * n + i]) - ref) <= 2e-5 * std::fabs(ref) + 1e-6);
    }
  FCHECK(bad == 0, "%s: %zu values off", name.c_str(), bad);
  check_targets(gy, n, T, bf, &half, T <= 16 ? &frag : nullptr, name);
  std::printf("%-6s %s\n", g_fail ? "?" : "ok", name.c_str());
}

}  // namespace forward_check
