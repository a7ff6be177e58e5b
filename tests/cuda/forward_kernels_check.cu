// Correctness of the fused forward-pass kernels (runtime/cuda/forward_kernels.h) against float64 CPU
// references, on fresh random inputs, outputs poisoned (NaN / 0xff) before each launch:
//   - add_rmsnorm: the residual add bit-exact (one f32 add), untouched rows untouched (row gather),
//     the normalized rows within 2e-5 relative of float64, and the f16/bf16 rows and qgemv fragments
//     bit-identical to casting / pack_activations_f32 of the kernel's own f32 rows (so every target
//     holds the same values, fragment padding zero);
//   - gated_act_out: SiLU / GELU x up within 2e-5 relative (+1e-6) of float64, fragments likewise;
//   - attention, split over keys (1, 3, 17 splits) and the one-block path: GQA, sliding window,
//     soft-capping, even and odd head dims, against float64 softmax attention over the same f16 cache,
//     |error| <= 5e-5 (values are O(1); f32 accumulation over <= 300 keys);
//   - rope_and_store_kv against float64 rotation; split attention with rope + KV write fused against
//     the two-kernel path, the tokens' cache rows poisoned; attention_gemm (prefill on cuBLAS) against
//     float64 within 3e-3 (Q and P rounded to f16);
//   - argmax_rows: equal to std::max_element (first index on ties) on rows with planted ties, row
//     lengths with and without the float4 path, the ids written to device or mapped host memory;
//   - copy_from_mapped: mapped pinned host bytes copied exactly, lengths not a multiple of 16 refused.
// Called from qgemv_check.cu's main (one executable: the GPU machine has no gtest).
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
#include "quantbench/runtime/cuda/qgemv.h"
#include "check_util.h"

using namespace qb::runtime::cuda;

namespace {

int g_fail = 0, g_n = 0;

#define FCHECK(cond, ...) QB_COUNT_CHECK(g_fail, cond, __VA_ARGS__)

template <class T>
struct Dev {
  T* p = nullptr;
  size_t n = 0;
  explicit Dev(size_t count, int fill = 0) : n(count) {
    QB_CUDA_OK(cudaMalloc(&p, std::max<size_t>(n, 1) * sizeof(T)));
    QB_CUDA_OK(cudaMemset(p, fill, std::max<size_t>(n, 1) * sizeof(T)));
  }
  Dev(const std::vector<T>& v) : Dev(v.size()) {
    if (n) QB_CUDA_OK(cudaMemcpy(p, v.data(), n * sizeof(T), cudaMemcpyHostToDevice));
  }
  ~Dev() { cudaFree(p); }
  std::vector<T> get() const {
    std::vector<T> v(n);
    if (n) QB_CUDA_OK(cudaMemcpy(v.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost));
    return v;
  }
};

uint16_t h16(float f, bool bf) {
  return bf ? __nv_bfloat16_raw(__float2bfloat16_rn(f)).x : __half_raw(__float2half_rn(f)).x;
}
float f16_to_float(uint16_t u) { __half_raw r; r.x = u; return __half2float(__half(r)); }

// The targets (f32 rows, 16-bit rows, fragments) hold the same values: compares the 16-bit rows and
// fragments with casting / packing `rows` (the kernel's own f32 output) on the device.
void check_targets(const std::vector<float>& rows, int n, int T, bool bf, const Dev<uint16_t>* half,
                   const Dev<uint8_t>* frag, const std::string& name) {
  if (half) {
    const auto got = half->get();
    size_t bad = 0;
    for (size_t i = 0; i < rows.size(); ++i) bad += got[i] != h16(rows[i], bf);
    FCHECK(bad == 0, "%s: %zu 16-bit rows values differ from the cast f32 rows", name.c_str(), bad);
  }
  if (frag) {
    Dev<float> dr(rows);
    Dev<uint8_t> ref(frag->n, 0xff);
    pack_activations_f32(dr.p, bf, T, n, ref.p, nullptr);
    // Slots of tokens T..8*ceil(T/8)-1 are never read by qgemv (its lanes past n skip the load), so
    // producers leave them alone; every other word, padding columns included, must match.
    const auto g = frag->get(), r = ref.get();
    const int nt = (T + 7) / 8;
    size_t bad = 0;
    for (size_t w = 0; w < g.size() / 4; ++w) {
      const int lane = int((w >> 3) & 31), j = int((w >> 8) % size_t(nt)), tok = 8 * j + (lane >> 2);
      if (tok < T) bad += std::memcmp(&g[4 * w], &r[4 * w], 4) != 0;
    }
    FCHECK(bad == 0, "%s: %zu fragment words differ from pack_activations_f32 of the f32 rows", name.c_str(), bad);
  }
}

void check_add_rmsnorm(int n, int T, bool with_add, bool gather, bool bf, std::mt19937_64& rng, bool loop = false,
                       bool prewait = false) {
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

struct AttnCase {
  int T, n_head, n_head_kv, hd_k, hd_v;
  int64_t window;
  float softcap;
  bool prefill = false;  // tokens in runs of one sequence at consecutive positions (the tiled path's fast case)
};

// half_warp: AttentionArgs::half_warp_keys (the split path's half-warp-per-key kernel at head dims 128).
void check_attention(const AttnCase& c, int splits, std::mt19937_64& rng, bool half_warp = false) {
  ++g_n;
  const std::string name = "attention T=" + std::to_string(c.T) + " heads " + std::to_string(c.n_head) + "/" +
                           std::to_string(c.n_head_kv) + " hd " + std::to_string(c.hd_k) + "/" + std::to_string(c.hd_v) +
                           " window " + std::to_string(c.window) + " softcap " + std::to_string(int(c.softcap)) +
                           " splits " + std::to_string(splits) + (c.prefill ? " prefill" : "") +
                           (half_warp ? " half-warp keys" : "");
  const int n_seq = 3;
  const int64_t cap = 300, kd = int64_t(c.n_head_kv) * c.hd_k, vd = int64_t(c.n_head_kv) * c.hd_v;
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<std::vector<uint16_t>> kh(n_seq), vh(n_seq);
  std::vector<Dev<uint16_t>*> kdv, vdv;
  for (int s = 0; s < n_seq; ++s) {
    kh[size_t(s)].resize(size_t(cap * kd));
    vh[size_t(s)].resize(size_t(cap * vd));
    for (auto& v : kh[size_t(s)]) v = h16(2.0f * u(rng), false);
    for (auto& v : vh[size_t(s)]) v = h16(u(rng), false);
    kdv.push_back(new Dev<uint16_t>(kh[size_t(s)]));
    vdv.push_back(new Dev<uint16_t>(vh[size_t(s)]));
  }
  const int64_t q_stride = int64_t(c.n_head) * c.hd_k + 7;  // a strided q, as in the q|k|v buffer
  std::vector<float> q(size_t(c.T * q_stride));
  for (auto& v : q) v = u(rng);
  std::vector<int64_t> pos(static_cast<size_t>(c.T));
  std::vector<uint16_t*> kp(static_cast<size_t>(c.T)), vp(static_cast<size_t>(c.T));
  std::vector<int> seq_of(static_cast<size_t>(c.T));
  std::uniform_int_distribution<int64_t> pd(0, cap - 1);
  for (int t = 0; t < c.T; ++t) {
    // prefill: sequence 0 gets tokens 0..T/2+2 at positions 0.., sequence 1 the rest from position 37
    // (a tile straddles the two); else round-robin sequences at random positions.
    const int s = c.prefill ? (t < c.T / 2 + 3 ? 0 : 1) : t % n_seq;
    seq_of[size_t(t)] = s;
    if (c.prefill) pos[size_t(t)] = s == 0 ? t : 37 + (t - (c.T / 2 + 3));
    else pos[size_t(t)] = t == 0 ? 0 : (t == 1 ? cap - 1 : pd(rng));  // the shortest and the longest context
    kp[size_t(t)] = kdv[size_t(s)]->p;
    vp[size_t(t)] = vdv[size_t(s)]->p;
  }
  const int n_out = c.n_head * c.hd_v;
  Dev<float> dq(q), out(size_t(c.T) * n_out, 0xff);
  Dev<int64_t> dpos(pos);
  Dev<uint16_t*> dkp(kp), dvp(vp);
  Dev<float> part(size_t(c.T) * c.n_head * std::max(splits, 1) * (c.hd_v + 2), 0xff);
  const bool frag_ok = splits > 0 && c.hd_v % 2 == 0 && n_out % 64 == 0 && c.T <= 16;
  Dev<uint8_t> frag(frag_ok ? activation_frag_bytes(n_out, c.T) : 1, 0xff);
  AttentionArgs a;
  static_cast<AttentionShape&>(a) = {dq.p, q_stride, out.p, c.T, c.n_head, c.n_head_kv, c.hd_k, c.hd_v,
                                     1.0f / std::sqrt(float(c.hd_k)), c.softcap};
  a.pos = dpos.p;
  a.k_cache = dkp.p;
  a.v_cache = dvp.p;
  a.window = c.window;
  a.splits = splits;
  a.part = part.p;
  a.half_warp_keys = half_warp;
  if (frag_ok) {
    a.act.frag = frag.p;
    a.act.bf16 = false;
  }
  attention(a, nullptr);
  QB_CUDA_OK(cudaDeviceSynchronize());
  const auto got = out.get();
  size_t bad = 0;
  double worst = 0;
  const int group = c.n_head / c.n_head_kv;
  for (int t = 0; t < c.T; ++t)
    for (int h = 0; h < c.n_head; ++h) {
      const int kvh = h / group;
      const auto& K = kh[size_t(seq_of[size_t(t)])];
      const auto& V = vh[size_t(seq_of[size_t(t)])];
      const int64_t p = pos[size_t(t)], first = c.window > 0 ? std::max<int64_t>(0, p - c.window + 1) : 0;
      std::vector<double> sc;
      double mx = -INFINITY;
      for (int64_t j = first; j <= p; ++j) {
        double d = 0;
        for (int i = 0; i < c.hd_k; ++i)
          d += double(q[size_t(t * q_stride + h * c.hd_k + i)]) * f16_to_float(K[size_t(j * kd + kvh * c.hd_k + i)]);
        d *= double(a.scale);
        if (c.softcap > 0) d = c.softcap * std::tanh(d / c.softcap);
        sc.push_back(d);
        mx = std::max(mx, d);
      }
      double l = 0;
      for (auto& v : sc) l += (v = std::exp(v - mx));
      for (int i = 0; i < c.hd_v; ++i) {
        double o = 0;
        for (int64_t j = first; j <= p; ++j)
          o += sc[size_t(j - first)] * f16_to_float(V[size_t(j * vd + kvh * c.hd_v + i)]);
        o /= l;
        const double err = std::fabs(double(got[size_t(t * n_out + h * c.hd_v + i)]) - o);
        worst = std::max(worst, err);
        bad += !(err <= 5e-5);
      }
    }
  FCHECK(bad == 0, "%s: %zu outputs off (worst %.3g)", name.c_str(), bad, worst);
  if (frag_ok) check_targets(got, n_out, c.T, false, nullptr, &frag, name);
  if (splits > 0) {
    // In-kernel merge (counters; with one split the block normalizes its own output): bit-identical
    // to the merge kernel, twice in a row (the counters must be back at zero after the first launch),
    // fragments included (poisoned again before each launch).
    Dev<unsigned> counters(size_t(c.T) * c.n_head, 0);
    a.counters = counters.p;
    for (int rep = 0; rep < 2; ++rep) {
      Dev<float> out2(size_t(c.T) * n_out, 0xff);
      a.out = out2.p;
      if (frag_ok) QB_CUDA_OK(cudaMemset(frag.p, 0xff, frag.n));
      attention(a, nullptr);
      QB_CUDA_OK(cudaDeviceSynchronize());
      FCHECK(out2.get() == got, "%s: in-kernel merge (launch %d) differs from the merge kernel", name.c_str(), rep + 1);
      if (frag_ok) check_targets(got, n_out, c.T, false, nullptr, &frag, name + " in-kernel merge");
    }
    const auto cz = counters.get();
    FCHECK(std::all_of(cz.begin(), cz.end(), [](unsigned v) { return v == 0; }), "%s: counters not reset", name.c_str());
  }
  for (auto* d : kdv) delete d;
  for (auto* d : vdv) delete d;
  std::printf("%-6s %s (worst %.2g)\n", g_fail ? "?" : "ok", name.c_str(), worst);
}

// attention_kvq with one split, where each block normalizes and stores its own output and no merge kernel
// runs, against the same caches through `splits` splits and the merge kernel (the path the backend check
// compares with the CPU): within 1e-5 (the splits only regroup the f32 sums; a wrong head, dim or scale
// errs by O(0.1)), the same bits on a second launch, and fragments that are the packing of the block's
// own f32 rows (both outputs poisoned before their launch). The caches are random f32 rows quantized by
// kv_quantize_rows (the store kernel's device code), one cache of 300 positions per token, the tokens at
// positions 0, 299 and random ones.
void check_attention_kvq_one_split(int code, int T, int n_head, int n_head_kv, int hd, int splits,
                                   std::mt19937_64& rng) {
  ++g_n;
  const char* code_name = code == kKvInt8 ? "int8" : code == kKvFp8 ? "fp8" : "int4";
  const std::string name = std::string("attention_kvq ") + code_name + " T=" + std::to_string(T) + " heads " +
                           std::to_string(n_head) + "/" + std::to_string(n_head_kv) + " hd " + std::to_string(hd) +
                           ": one split against the merge of " + std::to_string(splits);
  const int cap = 300, kd = n_head_kv * hd, n_out = n_head * hd;
  const KvRowLayout l = kv_row_layout(code, n_head_kv, hd);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> xk(size_t(T) * cap * kd), xv(xk.size());
  for (auto& v : xk) v = 2.0f * u(rng);
  for (auto& v : xv) v = u(rng);
  Dev<float> dxk(xk), dxv(xv);
  Dev<uint8_t> kc(size_t(T) * cap * size_t(l.row_bytes)), vc(kc.n);
  kv_quantize_rows(dxk.p, kd, T * cap, l, kc.p, nullptr);
  kv_quantize_rows(dxv.p, kd, T * cap, l, vc.p, nullptr);
  std::vector<uint16_t*> kp, vp;
  std::vector<int64_t> pos(static_cast<size_t>(T));
  std::uniform_int_distribution<int64_t> pd(0, cap - 1);
  for (int t = 0; t < T; ++t) {
    kp.push_back(reinterpret_cast<uint16_t*>(kc.p + size_t(t) * cap * size_t(l.row_bytes)));
    vp.push_back(reinterpret_cast<uint16_t*>(vc.p + size_t(t) * cap * size_t(l.row_bytes)));
    pos[size_t(t)] = t == 0 ? 0 : (t == 1 ? cap - 1 : pd(rng));
  }
  const int64_t q_stride = int64_t(n_out) + 5;
  std::vector<float> q(size_t(T * q_stride));
  for (auto& v : q) v = u(rng);
  Dev<float> dq(q), part(size_t(T) * n_head * splits * (hd + 2), 0xff);
  Dev<int64_t> dpos(pos);
  Dev<uint16_t*> dkp(kp), dvp(vp);
  const bool frag_ok = hd % 2 == 0 && n_out % 64 == 0 && T <= 16;
  AttentionArgs a;  // out: set per run below
  static_cast<AttentionShape&>(a) = {dq.p, q_stride, nullptr, T, n_head, n_head_kv, hd, hd, 1.0f / std::sqrt(float(hd))};
  a.pos = dpos.p;
  a.k_cache = dkp.p;
  a.v_cache = dvp.p;
  a.part = part.p;
  auto run = [&](int sp, Dev<float>& out, Dev<uint8_t>& frag) {
    a.splits = sp;
    a.out = out.p;
    a.act.frag = frag_ok ? frag.p : nullptr;
    attention_kvq(a, l, l, nullptr);
    QB_CUDA_OK(cudaDeviceSynchronize());
  };
  const size_t fb = frag_ok ? activation_frag_bytes(n_out, T) : 1;
  Dev<float> o_merge(size_t(T) * n_out, 0xff), o_one(size_t(T) * n_out, 0xff), o_again(size_t(T) * n_out, 0xff);
  Dev<uint8_t> f_merge(fb, 0xff), f_one(fb, 0xff), f_again(fb, 0xff);
  run(splits, o_merge, f_merge);
  run(1, o_one, f_one);
  run(1, o_again, f_again);
  const auto gm = o_merge.get(), g1 = o_one.get();
  size_t bad = 0, finite = 0;
  double worst = 0;
  for (size_t i = 0; i < gm.size(); ++i) {
    const double err = std::fabs(double(g1[i]) - double(gm[i]));
    worst = std::max(worst, err);
    bad += !(err <= 1e-5);
    finite += std::isfinite(gm[i]);
  }
  FCHECK(finite == gm.size(), "%s: %zu of %zu merged outputs not finite", name.c_str(), gm.size() - finite, gm.size());
  FCHECK(bad == 0, "%s: %zu of %zu outputs off the merge's (worst %.3g)", name.c_str(), bad, gm.size(), worst);
  FCHECK(o_again.get() == g1, "%s: a second one-split launch differs", name.c_str());
  if (frag_ok) {
    check_targets(g1, n_out, T, false, nullptr, &f_one, name + " (one split)");
    check_targets(gm, n_out, T, false, nullptr, &f_merge, name + " (merge)");
  }
  std::printf("%-6s %s (worst %.2g)%s\n", g_fail ? "?" : "ok", name.c_str(), worst, frag_ok ? ", fragments" : "");
}

// rope_and_store_kv: q and k heads rotated in place (normal or neox pairs, partial rotary n_rot <
// hd_k), k and v stored as f16 at the token's position; against float64 rotation (|err| <= 1e-6 on
// O(1) values; the cache within one f16 rounding of it); cache rows of other positions untouched.
void check_rope(bool neox, int T, int n_head, int n_head_kv, int hd, int n_rot, std::mt19937_64& rng) {
  ++g_n;
  const std::string name = std::string("rope_and_store_kv ") + (neox ? "neox" : "normal") + " T=" + std::to_string(T) +
                           " heads " + std::to_string(n_head) + "/" + std::to_string(n_head_kv) + " hd " +
                           std::to_string(hd) + " n_rot " + std::to_string(n_rot);
  const int half = n_rot / 2, kd = n_head_kv * hd, stride = (n_head + 2 * n_head_kv) * hd + 3;
  const int cap = 20;
  std::uniform_real_distribution<float> u(-1.f, 1.f), ang(-3.2f, 3.2f);
  std::vector<float> qkv(size_t(T) * stride), cs(size_t(T) * half), sn(cs.size());
  for (auto& v : qkv) v = u(rng);
  for (size_t i = 0; i < cs.size(); ++i) {
    const float a = ang(rng);
    cs[i] = std::cos(a);
    sn[i] = std::sin(a);
  }
  std::vector<int64_t> pos(static_cast<size_t>(T));
  for (int t = 0; t < T; ++t) pos[size_t(t)] = (t * 7 + 3) % cap;  // distinct for T <= cap
  Dev<float> dqkv(qkv), dc(cs), ds(sn);
  Dev<int64_t> dpos(pos);
  Dev<uint16_t> kcache(size_t(cap) * kd, 0xff), vcache(size_t(cap) * kd, 0xff);
  std::vector<uint16_t*> kp(static_cast<size_t>(T), kcache.p), vp(static_cast<size_t>(T), vcache.p);
  Dev<uint16_t*> dkp(kp), dvp(vp);
  RopeKvArgs a;
  a.qkv = dqkv.p;
  a.qkv_stride = stride;
  a.T = T;
  a.n_head = n_head;
  a.n_head_kv = n_head_kv;
  a.hd_k = hd;
  a.hd_v = hd;
  a.n_rot = n_rot;
  a.neox = neox;
  a.cos = dc.p;
  a.sin = ds.p;
  a.pos = dpos.p;
  a.k_cache = dkp.p;
  a.v_cache = dvp.p;
  rope_and_store_kv(a, nullptr);
  QB_CUDA_OK(cudaDeviceSynchronize());
  const auto gq = dqkv.get();
  const auto gk = kcache.get(), gv = vcache.get();
  std::vector<double> ref(qkv.begin(), qkv.end());
  for (int t = 0; t < T; ++t)
    for (int h = 0; h < n_head + n_head_kv; ++h)
      for (int i = 0; i < half; ++i) {
        const int ia = neox ? i : 2 * i, ib = neox ? i + half : 2 * i + 1;
        const size_t o = size_t(t) * stride + size_t(h) * hd;
        const double x0 = qkv[o + ia], x1 = qkv[o + ib], c = cs[size_t(t * half + i)], s = sn[size_t(t * half + i)];
        ref[o + ia] = x0 * c - x1 * s;
        ref[o + ib] = x0 * s + x1 * c;
      }
  size_t bad = 0, bad_cache = 0;
  std::vector<bool> row_used(static_cast<size_t>(cap), false);
  for (int t = 0; t < T; ++t) {
    for (int i = 0; i < stride; ++i) bad += !(std::fabs(double(gq[size_t(t) * stride + i]) - ref[size_t(t) * stride + i]) <= 1e-6);
    const int64_t p = pos[size_t(t)];
    row_used[size_t(p)] = true;
    for (int i = 0; i < kd; ++i) {
      const double rk = ref[size_t(t) * stride + size_t(n_head) * hd + i], rv = ref[size_t(t) * stride + size_t(n_head + n_head_kv) * hd + i];
      const double ek = std::fabs(double(f16_to_float(gk[size_t(p * kd + i)])) - rk);
      const double ev = std::fabs(double(f16_to_float(gv[size_t(p * kd + i)])) - rv);
      bad_cache += !(ek <= 1e-3 * std::fabs(rk) + 1e-7) || !(ev <= 1e-3 * std::fabs(rv) + 1e-7);
    }
  }
  for (int p = 0; p < cap; ++p)
    if (!row_used[size_t(p)])
      for (int i = 0; i < kd; ++i) bad_cache += gk[size_t(p * kd + i)] != 0xffff || gv[size_t(p * kd + i)] != 0xffff;
  FCHECK(bad == 0 && bad_cache == 0, "%s: %zu q|k|v values and %zu cache values wrong", name.c_str(), bad, bad_cache);
  std::printf("%-6s %s\n", g_fail ? "?" : "ok", name.c_str());
}

// Split attention with rope + KV write fused (decode, one token per sequence) against the two-kernel
// path (rope_and_store_kv, then split attention) on the same raw q|k|v rows: outputs within 1e-6,
// caches equal (k within one f16 rounding: the rotation may contract differently), and the token's
// cache row, poisoned with NaN before the fused launch, never used before it is written (with
// `prewait`, the default, the kernel loads it before its wait and must replace it by the token's own).
void check_fused_rope(int T, int n_head, int n_head_kv, int hd, bool neox, int splits, std::mt19937_64& rng,
                      bool prewait = true, bool half_warp = false) {
  ++g_n;
  const std::string name = "attention+rope fused T=" + std::to_string(T) + " heads " + std::to_string(n_head) + "/" +
                           std::to_string(n_head_kv) + " hd " + std::to_string(hd) + (neox ? " neox" : " normal") +
                           " splits " + std::to_string(splits) + (prewait ? "" : " loads after the wait") +
                           (half_warp ? " half-warp keys" : "");
  const int cap = 50, kd = n_head_kv * hd, stride = (n_head + 2 * n_head_kv) * hd + 6, half = hd / 2;
  std::uniform_real_distribution<float> u(-1.f, 1.f), ang(-3.2f, 3.2f);
  std::vector<float> qkv(size_t(T) * stride), cs(size_t(T) * half), sn(cs.size());
  for (auto& v : qkv) v = u(rng);
  for (size_t i = 0; i < cs.size(); ++i) {
    const float a = ang(rng);
    cs[i] = std::cos(a);
    sn[i] = std::sin(a);
  }
  std::vector<int64_t> pos(static_cast<size_t>(T));
  std::uniform_int_distribution<int64_t> pd(0, cap - 1);
  for (int t = 0; t < T; ++t) pos[size_t(t)] = t == 0 ? 0 : (t == 1 ? cap - 1 : pd(rng));
  std::vector<uint16_t> cache(size_t(T) * cap * kd);  // one cache per token (distinct sequences)
  for (auto& v : cache) v = h16(u(rng), false);
  Dev<uint16_t> k1(cache), v1(cache), k2(cache), v2(cache);
  for (int t = 0; t < T; ++t) {  // poison the fused run's rows at the tokens' positions
    QB_CUDA_OK(cudaMemset(k2.p + (size_t(t) * cap + size_t(pos[size_t(t)])) * kd, 0xff, size_t(kd) * 2));
    QB_CUDA_OK(cudaMemset(v2.p + (size_t(t) * cap + size_t(pos[size_t(t)])) * kd, 0xff, size_t(kd) * 2));
  }
  std::vector<uint16_t*> kp1, vp1, kp2, vp2;
  for (int t = 0; t < T; ++t) {
    kp1.push_back(k1.p + size_t(t) * cap * kd);
    vp1.push_back(v1.p + size_t(t) * cap * kd);
    kp2.push_back(k2.p + size_t(t) * cap * kd);
    vp2.push_back(v2.p + size_t(t) * cap * kd);
  }
  Dev<uint16_t*> dk1(kp1), dv1(vp1), dk2(kp2), dv2(vp2);
  Dev<float> q1(qkv), q2(qkv), dc(cs), ds(sn), o1(size_t(T) * n_head * hd, 0xff), o2(size_t(T) * n_head * hd, 0xff);
  Dev<int64_t> dpos(pos);
  Dev<float> part(size_t(T) * n_head * splits * (hd + 2), 0xff);
  Dev<unsigned> counters(size_t(T) * n_head, 0);
  RopeKvArgs r;
  r.qkv = q1.p;
  r.qkv_stride = stride;
  r.T = T;
  r.n_head = n_head;
  r.n_head_kv = n_head_kv;
  r.hd_k = r.hd_v = r.n_rot = hd;
  r.neox = neox;
  r.cos = dc.p;
  r.sin = ds.p;
  r.pos = dpos.p;
  r.k_cache = dk1.p;
  r.v_cache = dv1.p;
  rope_and_store_kv(r, nullptr);
  AttentionArgs a;
  static_cast<AttentionShape&>(a) = {q1.p, stride, o1.p, T, n_head, n_head_kv, hd, hd, 0.1f};
  a.pos = dpos.p;
  a.k_cache = dk1.p;
  a.v_cache = dv1.p;
  a.splits = splits;
  a.part = part.p;
  a.half_warp_keys = half_warp;  // both runs: the fused rope is checked against the same kernel unfused
  attention(a, nullptr);
  a.q = q2.p;
  a.out = o2.p;
  a.k_cache = dk2.p;
  a.v_cache = dv2.p;
  a.counters = counters.p;
  a.rope_cos = dc.p;
  a.rope_sin = ds.p;
  a.rope_neox = neox;
  a.prewait_loads = prewait;
  attention(a, nullptr);
  QB_CUDA_OK(cudaDeviceSynchronize());
  const auto g1 = o1.get(), g2 = o2.get();
  size_t bad = 0, bad_k = 0, bad_v = 0;
  for (size_t i = 0; i < g1.size(); ++i) bad += !(std::fabs(g1[i] - g2[i]) <= 1e-6f);
  const auto c1 = k1.get(), c2 = k2.get(), w1 = v1.get(), w2 = v2.get();
  for (size_t i = 0; i < c1.size(); ++i) {
    bad_k += !(std::fabs(f16_to_float(c1[i]) - f16_to_float(c2[i])) <= 1e-3f * std::fabs(f16_to_float(c1[i])));
    bad_v += w1[i] != w2[i];
  }
  FCHECK(bad == 0 && bad_k == 0 && bad_v == 0, "%s: %zu outputs, %zu k and %zu v cache values differ", name.c_str(), bad,
         bad_k, bad_v);
  std::printf("%-6s %s\n", g_fail ? "?" : "ok", name.c_str());
}

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
                          std::mt19937_64& rng, bool flash = false, bool split16 = false, bool scaled = false) {
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

void check_copy_from_mapped(size_t bytes, std::mt19937_64& rng) {
  ++g_n;
  void* host = nullptr;
  void* mapped = nullptr;
  QB_CUDA_OK(cudaHostAlloc(&host, bytes, cudaHostAllocMapped));
  QB_CUDA_OK(cudaHostGetDevicePointer(&mapped, host, 0));
  std::vector<uint8_t> want(bytes);
  for (auto& b : want) b = uint8_t(rng());
  std::memcpy(host, want.data(), bytes);
  Dev<uint8_t> dst(bytes + 16, 0xa5);  // 16 bytes past the end must stay poisoned
  copy_from_mapped(mapped, dst.p, bytes, nullptr);
  QB_CUDA_OK(cudaDeviceSynchronize());
  const auto got = dst.get();
  size_t bad = 0;
  for (size_t i = 0; i < bytes; ++i) bad += got[i] != want[i];
  for (size_t i = bytes; i < bytes + 16; ++i) bad += got[i] != 0xa5;
  bool refused = false;
  try {
    copy_from_mapped(mapped, dst.p, bytes - 8, nullptr);
  } catch (const std::invalid_argument&) {
    refused = true;
  }
  QB_CUDA_OK(cudaFreeHost(host));
  FCHECK(bad == 0 && refused, "copy_from_mapped %zu bytes: %zu bytes wrong, %zu - 8 bytes %s", bytes, bad, bytes,
         refused ? "refused" : "NOT refused");
  std::printf("%-6s copy_from_mapped %zu bytes\n", g_fail ? "?" : "ok", bytes);
}

void check_argmax(int n, int rows, std::mt19937_64& rng, bool to_mapped = false) {
  ++g_n;
  std::uniform_int_distribution<int> small(-50, 50);
  std::vector<float> z(size_t(n) * rows);
  for (auto& v : z) v = float(small(rng)) * 0.25f;  // many ties
  for (int r = 0; r < rows; ++r) {  // a planted tie for the maximum in every row
    const int i = int(rng() % uint64_t(n)), j = int(rng() % uint64_t(n));
    z[size_t(r) * n + i] = z[size_t(r) * n + j] = 100.0f + float(r);
  }
  if (rows >= 2) {  // row 1: the maximum at the last index, and a row 0 of -inf only (index 0 wins)
    std::fill(z.begin(), z.begin() + n, -INFINITY);
    z[size_t(2) * n - 1] = 1000.0f;
  }
  Dev<float> dz(z);
  Dev<int32_t> ids(static_cast<size_t>(rows), 0xff);
  std::vector<int32_t> got(static_cast<size_t>(rows));
  if (to_mapped) {  // as a graphed greedy step does: the ids straight into mapped pinned host memory
    int32_t* host = nullptr;
    void* mapped = nullptr;
    QB_CUDA_OK(cudaHostAlloc(reinterpret_cast<void**>(&host), size_t(rows) * 4, cudaHostAllocMapped));
    QB_CUDA_OK(cudaHostGetDevicePointer(&mapped, host, 0));
    std::fill(host, host + rows, -1);
    argmax_rows(dz.p, n, rows, static_cast<int32_t*>(mapped), nullptr);
    QB_CUDA_OK(cudaDeviceSynchronize());
    std::copy(host, host + rows, got.begin());
    QB_CUDA_OK(cudaFreeHost(host));
  } else {
    argmax_rows(dz.p, n, rows, ids.p, nullptr);
    QB_CUDA_OK(cudaDeviceSynchronize());
    got = ids.get();
  }
  size_t bad = 0;
  for (int r = 0; r < rows; ++r) {
    const float* row = z.data() + size_t(r) * n;
    bad += got[size_t(r)] != int32_t(std::max_element(row, row + n) - row);
  }
  FCHECK(bad == 0, "argmax_rows n=%d rows=%d%s: %zu rows differ from std::max_element", n, rows,
         to_mapped ? " (mapped host ids)" : "", bad);
  std::printf("%-6s argmax_rows n=%d rows=%d%s\n", g_fail ? "?" : "ok", n, rows, to_mapped ? " (mapped host ids)" : "");
}

}  // namespace

// Returns the number of failures; adds the cases run to *cases.
int run_forward_kernel_checks(uint64_t seed, int* cases) {
  std::mt19937_64 rng(seed ^ 0xf0f0f0f0ull);
  for (int n : {64, 172, 4096, 9000})  // 9000: wider than the register kernel takes (the loop kernel)
    for (int T : {1, 5, 16, 40})
      for (bool add : {false, true}) check_add_rmsnorm(n, T, add, false, T % 2 == 1, rng, false, n < 9000 && T < 16);
  check_add_rmsnorm(4096, 3, true, true, false, rng);
  check_add_rmsnorm(4096, 3, true, true, false, rng, false, true);  // a gather loads after the wait anyway
  check_add_rmsnorm(4096, 1, true, false, false, rng, true);
  check_add_rmsnorm(172, 16, true, true, true, rng, true);
  check_add_rmsnorm(172, 16, true, true, true, rng);
  for (int n : {172, 11008})
    for (int T : {1, 9, 16, 33}) check_gated(n, T, T % 2, T == 9, rng);
  const AttnCase cases_[] = {
      {1, 32, 32, 128, 128, 0, 0.f}, {16, 32, 8, 128, 128, 0, 0.f}, {5, 8, 2, 64, 64, 40, 0.f},
      {7, 4, 1, 8, 8, 0, 30.f},      {3, 4, 2, 5, 7, 0, 0.f},       {40, 8, 8, 64, 64, 0, 0.f},
      {2, 2, 1, 256, 256, 0, 0.f},   {4, 6, 3, 72, 72, 17, 20.f},
      {61, 4, 2, 128, 128, 0, 0.f, true}, {45, 4, 4, 64, 64, 9, 25.f, true}, {100, 2, 1, 72, 72, 0, 0.f, true}};
  for (const auto& c : cases_) {
    for (int splits : {0, 1, 3, 17}) check_attention(c, splits, rng);
    // The half-warp kernel (the prefill case takes it at 3 and 17 splits; at one split, the tiled kernel).
    if (c.hd_k == 128 && c.hd_v == 128)
      for (int splits : {1, 3, 17}) check_attention(c, splits, rng, true);
  }
  // Half-warp keys at lengths that leave the second half-warp of a warp with no key in a step (odd counts
  // per split), GQA, a window and soft-capping.
  check_attention({9, 8, 2, 128, 128, 23, 30.f}, 5, rng, true);
  check_attention({2, 4, 4, 128, 128, 0, 0.f}, 32, rng, true);
  check_rope(false, 1, 32, 32, 128, 128, rng);
  check_rope(true, 16, 8, 2, 64, 64, rng);
  check_rope(false, 5, 4, 2, 64, 32, rng);
  check_rope(true, 3, 6, 3, 8, 4, rng);
  check_fused_rope(1, 32, 32, 128, false, 16, rng);
  check_fused_rope(16, 32, 8, 128, true, 3, rng);
  check_fused_rope(5, 8, 2, 64, false, 7, rng);
  check_fused_rope(3, 4, 4, 8, false, 1, rng);
  check_fused_rope(1, 32, 32, 128, false, 16, rng, false);
  check_fused_rope(16, 32, 8, 128, true, 1, rng, false);
  for (bool neox : {false, true}) {
    check_fused_rope(1, 32, 32, 128, neox, 16, rng, true, true);
    check_fused_rope(16, 32, 8, 128, neox, 1, rng, true, true);
    check_fused_rope(5, 8, 2, 128, neox, 3, rng, false, true);
  }
  check_attention_kvq_one_split(kKvInt8, 3, 32, 32, 128, 3, rng);
  check_attention_kvq_one_split(kKvFp8, 2, 32, 8, 128, 5, rng);
  check_attention_kvq_one_split(kKvInt4, 3, 8, 2, 64, 2, rng);
  check_attention_kvq_one_split(kKvInt8, 2, 4, 4, 10, 2, rng);  // head dim 10: the one-code-at-a-time path
  check_attention_kvq_one_split(kKvInt4, 2, 2, 1, 256, 4, rng);  // head dim 256: two code words per lane
  {
    cublasHandle_t blas = nullptr;
    if (cublasCreate(&blas) != CUBLAS_STATUS_SUCCESS) throw std::runtime_error("cublasCreate failed");
    check_attention_gemm(blas, 40, 8, 8, 64, 0, 0.f, rng);
    check_attention_gemm(blas, 33, 8, 2, 128, 17, 0.f, rng);
    check_attention_gemm(blas, 64, 4, 1, 64, 5, 30.f, rng);
    check_attention_gemm(blas, 17, 6, 3, 8, 100, 0.f, rng);
    // The fused kernel: ragged query tiles, GQA, p0 > 0 (later chunks), soft-capping, one token.
    check_attention_gemm(blas, 40, 8, 8, 64, 0, 0.f, rng, true);
    check_attention_gemm(blas, 33, 8, 2, 128, 17, 0.f, rng, true);
    check_attention_gemm(blas, 64, 4, 1, 64, 5, 30.f, rng, true);
    check_attention_gemm(blas, 130, 4, 2, 128, 70, 0.f, rng, true);
    check_attention_gemm(blas, 200, 2, 2, 64, 0, 25.f, rng, true);
    check_attention_gemm(blas, 1, 4, 2, 128, 9, 0.f, rng, true);
    check_attention_gemm(blas, 17, 6, 3, 8, 100, 0.f, rng, true);  // head dim 8: the two GEMMs
    check_attention_gemm(blas, 40, 8, 8, 64, 0, 0.f, rng, true, true);
    check_attention_gemm(blas, 130, 4, 2, 128, 70, 0.f, rng, true, true);
    check_attention_gemm(blas, 64, 4, 1, 64, 5, 30.f, rng, true, true);
    check_attention_gemm(blas, 200, 2, 2, 128, 0, 25.f, rng, true, true);
    check_attention_gemm(blas, 17, 6, 3, 8, 100, 0.f, rng, true, true);  // head dim 8: refused
    // int8 / fp8 caches' prefill: codes with their scales, alone and with the pairs.
    check_attention_gemm(blas, 40, 8, 8, 64, 0, 0.f, rng, true, false, true);
    check_attention_gemm(blas, 130, 4, 2, 128, 70, 0.f, rng, true, false, true);
    check_attention_gemm(blas, 130, 4, 2, 128, 70, 0.f, rng, true, true, true);
    check_attention_gemm(blas, 200, 2, 2, 64, 0, 25.f, rng, true, true, true);
    check_attention_gemm(blas, 33, 8, 2, 128, 17, 0.f, rng, true, true, true);
    check_attention_gemm(blas, 17, 6, 3, 8, 100, 0.f, rng, true, false, true);  // head dim 8: refused
    cublasDestroy(blas);
  }
  check_argmax(32000, 16, rng);
  check_argmax(152064, 2, rng);  // more than one batch of float4 loads per thread
  check_argmax(1000, 3, rng);
  check_argmax(1001, 3, rng);  // rows not a multiple of 4: the scalar loop
  check_argmax(7, 2, rng);
  check_argmax(32000, 3, rng, true);
  check_copy_from_mapped(16, rng);
  check_copy_from_mapped(4096 + 48, rng);
  check_copy_from_mapped(size_t(5) << 20, rng);  // more than one grid stride (1024 blocks x 256 x 16 bytes)
  *cases += g_n;
  return g_fail;
}
