// forward_kernels_check's prefill attention checks: attention_gemm (the two cuBLAS GEMMs, and the fused
// flash kernel with f16 Q and P, as pairs, and on quantized caches' codes) against float64.
#include <cublas_v2.h>
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
#include "quantbench/runtime/cuda/kv_quant.h"
#include "forward_check.h"

using namespace qb::runtime::cuda;

namespace forward_check {

// attention_gemm (prefill on cuBLAS): one sequence's T tokens at positions p0.., GQA, soft-capping,
// against float64 attention over the same f16 cache. Q and P are rounded to f16 on the way, so the
// bound is 3e-3 (outputs are O(1) averages; a wrong mask, head or layout errs by O(0.1) or more).
// flash: the fused kernel where the head dim allows (64, 128), else the two GEMMs either way. split16: the
// fused kernel with Q and P as f16 pairs (about 22 bits each), held to 3e-5 (the plain kernel errs by 5e-5 to
// 2e-4 on these inputs, the pairs by under 3e-7 on an H200); refused where the fused kernel does not take the
// shape. scaled: the caches hold int8 codes (as f16) and the kernel takes each key's and value's scale
// (GemmAttentionArgs::k_scale, a quantized cache's prefill): scales spread over 2^5 (keys) and 2^5 (values),
// the first 64 positions' value scales zero where there are more (R starts at the floor, then grows; queries
// that see only those must read exactly 0), the reference on code * scale in double, the bound relative to
// sum p |v| / l (the same bounds).
void check_attention_gemm(cublasHandle_t blas, int T, int n_head, int n_head_kv, int hd, int64_t p0, float softcap,
                          std::mt19937_64& rng, bool flash, bool split16, bool scaled) {
  ++g_n;
  const bool fused = flash && (hd == 64 || hd == 128);
  const std::string form = std::string(split16 ? "f16 pairs" : "") + (split16 && scaled ? ", " : "") +
                           (scaled ? "int8 codes with scales" : "");
  const std::string name = "attention_gemm T=" + std::to_string(T) + " heads " + std::to_string(n_head) + "/" +
                           std::to_string(n_head_kv) + " hd " + std::to_string(hd) + " p0 " + std::to_string(p0) +
                           " softcap " + std::to_string(int(softcap)) +
                           (fused ? " (flash kernel" + (form.empty() ? "" : ", " + form) + ")"
                            : !form.empty() ? " (" + form + ", no fused kernel: refused)"
                                            : " (two GEMMs)");
  const double bound = split16 ? 3e-5 : 3e-3;
  const int64_t nk = p0 + T, kd = int64_t(n_head_kv) * hd;
  const int64_t q_stride = int64_t(n_head) * hd + 2 * kd;
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<uint16_t> K(size_t((nk + 5) * kd)), V(K.size());
  const int64_t stride = scaled ? kv_scale_stride(nk) : 0;
  std::vector<float> ks(size_t(n_head_kv * stride), 0.f), vs(ks.size(), 0.f);  // [kvh][pos], 0 past nk
  if (scaled) {
    std::uniform_int_distribution<int> code(-127, 127);
    for (auto& v : K) v = h16(float(code(rng)), false);
    for (auto& v : V) v = h16(float(code(rng)), false);
    for (int h = 0; h < n_head_kv; ++h)
      for (int64_t j = 0; j < nk; ++j) {
        ks[size_t(h * stride + j)] = std::exp2(2.5f * u(rng) - 1.0f) / 127.f;
        vs[size_t(h * stride + j)] = nk > 64 && j < 64 ? 0.f : std::exp2(2.5f * u(rng) - 0.5f) / 127.f;
      }
  } else {
    for (auto& v : K) v = h16(2.0f * u(rng), false);
    for (auto& v : V) v = h16(u(rng), false);
  }
  // The values the reference attends over: code * scale, or the f16 values themselves.
  auto kval = [&](int64_t j, int kvh, int i) {
    const double c = f16_to_float(K[size_t(j * kd + kvh * hd + i)]);
    return scaled ? c * ks[size_t(kvh * stride + j)] : c;
  };
  auto vval = [&](int64_t j, int kvh, int i) {
    const double c = f16_to_float(V[size_t(j * kd + kvh * hd + i)]);
    return scaled ? c * vs[size_t(kvh * stride + j)] : c;
  };
  std::vector<float> q(size_t(T * q_stride));
  for (auto& v : q) v = u(rng);
  Dev<uint16_t> dK(K), dV(V);
  Dev<float> dq(q), out(size_t(T) * n_head * hd, 0xff);
  Dev<uint8_t> scratch(attention_gemm_scratch_bytes(T, n_head, hd, nk), 0xff);
  GemmAttentionArgs a;
  static_cast<AttentionShape&>(a) = {dq.p, q_stride, out.p, T, n_head, n_head_kv, hd, hd, 1.0f / std::sqrt(float(hd)),
                                     softcap};
  a.p0 = p0;
  a.k_cache = dK.p;
  a.v_cache = dV.p;
  a.scratch = scratch.p;
  a.flash = flash;
  a.split16 = split16;
  Dev<float> dks(ks), dvs(vs);
  if (scaled) {
    a.k_scale = dks.p;
    a.v_scale = dvs.p;
    a.scale_stride = stride;
  }
  if ((split16 || scaled) && !attention_flash_takes(a)) {
    const bool ran = attention_gemm(blas, a, nullptr);
    QB_CUDA_OK(cudaDeviceSynchronize());
    const auto untouched = out.get();
    size_t written = 0;
    for (float v : untouched) written += !std::isnan(v);  // (poisoned with 0xff bytes: NaN)
    FCHECK(!ran && written == 0, "%s: ran %d, %zu outputs written", name.c_str(), int(ran), written);
    std::printf("%-6s %s\n", g_fail ? "?" : "ok", name.c_str());
    return;
  }
  // The fused kernel also writes 16-bit rows (alternately f16 and bf16): each must be the rounding of
  // its own f32 output.
  const bool rows16 = attention_flash_takes(a);
  const bool bf = (T & 1) != 0;
  Dev<uint16_t> half(size_t(T) * n_head * hd, 0xff);
  if (rows16) {
    a.act.half_rows = half.p;
    a.act.bf16 = bf;
  }
  const bool ran = attention_gemm(blas, a, nullptr);
  QB_CUDA_OK(cudaDeviceSynchronize());
  FCHECK(ran, "%s: refused", name.c_str());
  const auto got = out.get();
  if (rows16) {
    const auto g16 = half.get();
    size_t bad16 = 0;
    for (size_t i = 0; i < got.size(); ++i) bad16 += g16[i] != h16(got[i], bf);
    FCHECK(bad16 == 0, "%s: %zu 16-bit output values differ from the rounded f32 outputs", name.c_str(), bad16);
  }
  size_t bad = 0;
  double worst = 0;  // (scaled: relative to sum p |v| / l)
  const int group = n_head / n_head_kv;
  for (int t = 0; t < T; ++t)
    for (int h = 0; h < n_head; ++h) {
      const int kvh = h / group;
      const int64_t p = p0 + t;
      std::vector<double> sc;
      double mx = -INFINITY;
      for (int64_t j = 0; j <= p; ++j) {
        double d = 0;
        for (int i = 0; i < hd; ++i) d += double(q[size_t(t * q_stride + h * hd + i)]) * kval(j, kvh, i);
        d *= double(a.scale);
        if (softcap > 0) d = softcap * std::tanh(d / softcap);
        sc.push_back(d);
        mx = std::max(mx, d);
      }
      double l = 0;
      for (auto& v : sc) l += (v = std::exp(v - mx));
      for (int i = 0; i < hd; ++i) {
        double o = 0, mag = 0;
        for (int64_t j = 0; j <= p; ++j) {
          o += sc[size_t(j)] * vval(j, kvh, i);
          mag += sc[size_t(j)] * std::fabs(vval(j, kvh, i));
        }
        o /= l;
        mag /= l;
        const double err = std::fabs(double(got[size_t((t * n_head + h) * hd + i)]) - o) / (scaled && mag > 0 ? mag : 1.0);
        worst = std::max(worst, std::isfinite(err) ? err : 1e30);
        bad += !(err <= bound);
      }
    }
  FCHECK(bad == 0, "%s: %zu outputs off (worst %.3g)", name.c_str(), bad, worst);
  std::printf("%-6s %s (worst %.2g)\n", g_fail ? "?" : "ok", name.c_str(), worst);
}

}  // namespace forward_check
