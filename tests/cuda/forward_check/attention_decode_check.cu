// forward_kernels_check's decode attention checks: the split-key and one-block kernels (f16 and quantized
// caches) against float64 softmax attention, rope_and_store_kv against float64 rotation, and the split kernel
// with rope and the KV write fused against the two-kernel path.
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

// half_warp: AttentionArgs::half_warp_keys (the split path's half-warp-per-key kernel at head dims 128).
void check_attention(const AttnCase& c, int splits, std::mt19937_64& rng, bool half_warp) {
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

namespace {

// The random inputs of a rope check: T rows of `stride` q|k|v values in [-1, 1), then `half` rotation angles per
// token in [-3.2, 3.2), as their cos and sin (drawn in that order from rng).
struct RopeInputs {
  std::vector<float> qkv, cs, sn;
};
RopeInputs random_rope_inputs(int T, int stride, int half, std::mt19937_64& rng) {
  std::uniform_real_distribution<float> u(-1.f, 1.f), ang(-3.2f, 3.2f);
  RopeInputs in{std::vector<float>(size_t(T) * stride), std::vector<float>(size_t(T) * half),
                std::vector<float>(size_t(T) * half)};
  for (auto& v : in.qkv) v = u(rng);
  for (size_t i = 0; i < in.cs.size(); ++i) {
    const float a = ang(rng);
    in.cs[i] = std::cos(a);
    in.sn[i] = std::sin(a);
  }
  return in;
}

}  // namespace

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
  const RopeInputs in = random_rope_inputs(T, stride, half, rng);
  const std::vector<float>& qkv = in.qkv;
  const std::vector<float>& cs = in.cs;
  const std::vector<float>& sn = in.sn;
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
                      bool prewait, bool half_warp) {
  ++g_n;
  const std::string name = "attention+rope fused T=" + std::to_string(T) + " heads " + std::to_string(n_head) + "/" +
                           std::to_string(n_head_kv) + " hd " + std::to_string(hd) + (neox ? " neox" : " normal") +
                           " splits " + std::to_string(splits) + (prewait ? "" : " loads after the wait") +
                           (half_warp ? " half-warp keys" : "");
  const int cap = 50, kd = n_head_kv * hd, stride = (n_head + 2 * n_head_kv) * hd + 6, half = hd / 2;
  const RopeInputs in = random_rope_inputs(T, stride, half, rng);
  const std::vector<float>& qkv = in.qkv;
  const std::vector<float>& cs = in.cs;
  const std::vector<float>& sn = in.sn;
  std::uniform_real_distribution<float> u(-1.f, 1.f);
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

}  // namespace forward_check
