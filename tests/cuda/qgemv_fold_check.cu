// A norm folded into the decode products around it (qgemv.h: QgemvFoldOut, QgemvFoldIn): a producer
// (o or down) adds its outputs to the residual rows x and writes the consumer's fragments as
// x * gamma * p, with p a power of two from the previous norm's 1/rms; the consumer (q|k|v, or gate|up
// with the gated epilogue) scales its sums by r / p, r = 1 / sqrt(mean(x^2) + eps) from the producer's
// partial sums of squares. Fresh random inputs per case, residual rows of very different sizes per
// token (rms 1e-3 to 1e3, so p moves), and checks:
//   - x after the producer: bit for bit the plain product's f32 outputs added to x on the host (one f32
//     add, as the norm kernel does it);
//   - p per token a power of two in (r_prev / 32, r_prev / 16]; r written by the consumer within 1e-5
//     of the float64 1/rms of the new x;
//   - the consumer's outputs against float64: W (x r gamma) for the plain epilogue, within 1e-3 of
//     sum |w x| (the product bound 2e-4 plus the f16 rounding of each fragment value, 2^-11 relative);
//     act(r g) * (r u) for the gated one, within check_gated_case's bound with that product bound;
//   - no overflow flagged, and the same bits on a second run of both products;
//   - a gamma that takes x * gamma * p past f16's range sets the overflow flag.
// A wrong scale, token mapping, partial or prescale gives errors of order 1 or more.
#include <cuda_fp16.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "quantbench/runtime/cuda/cuda_check.h"
#include "quantbench/runtime/cuda/qgemv.h"
#include "check_util.h"

using namespace qb::runtime::cuda;
using namespace qb::cuda_checks;

namespace {

int g_fail = 0;

#define FCHECK(cond, ...) QB_COUNT_CHECK(g_fail, cond, __VA_ARGS__)

template <class T>
T* dev_alloc(size_t n) {
  T* p = nullptr;
  QB_CUDA_OK(cudaMalloc(&p, n * sizeof(T)));
  return p;
}

// The value of fragment element (token tok, input k) of a buffer laid out as qgemv.h describes.
double frag_value(const std::vector<uint8_t>& b, int nt, bool bf, int tok, int64_t k) {
  const int64_t c = k >> 6, r = k & 63, sub = r >> 4, w = r & 15, h = w >> 3, t = (w & 7) >> 1;
  const int64_t lane = 4 * (tok & 7) + t, j = tok >> 3;
  const size_t word = size_t(((c * nt + j) * 32 + lane) * 8 + 2 * sub + h);
  uint32_t v;
  std::memcpy(&v, b.data() + 4 * word, 4);
  const uint16_t half = uint16_t((k & 1) ? v >> 16 : v & 0xffffu);
  return bf ? from_bf16(half) : from_f16(half);
}

// Producer `prod` (n_out = d) on random f16 activations, consumer `cons` (n_in = d; gated: n_out = 2 n_ff
// interleaved in blocks of 16) with the fold between them. gamma_scale: the norm weights' size (a huge
// one checks the overflow flag instead of the values).
void check_fold_case(const QuantSpec& ps, const QuantSpec& cs, int64_t d, int64_t k_in, int64_t m_out, bool gated,
                     int T, std::mt19937_64& rng, double gamma_scale = 1.0) {
  const bool overflow_case = gamma_scale > 1e3;
  std::string name = "fold " + spec_name(ps) + " " + std::to_string(d) + "x" + std::to_string(k_in) + " -> " +
                     spec_name(cs) + (gated ? " gated " : " ") + std::to_string(m_out) + "x" + std::to_string(d) +
                     " T=" + std::to_string(T) + (overflow_case ? " (overflow)" : "");
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  const HostMatrix P = random_matrix(ps, d, k_in, rng);
  const HostMatrix C = random_matrix(cs, m_out, d, rng);
  const bool bf = cs.format == WeightFormat::BF16;
  const int64_t n_ff = m_out / 2;

  // Producer input (f16), residual rows of very different sizes per token, norm weights, and the
  // previous norm's 1/rms (off from this x's by up to 4x either way, as a layer can move it).
  const bool bf_in = ps.format == WeightFormat::BF16;  // (bf16 weights take bf16 activations)
  std::vector<uint16_t> a(size_t(T) * k_in);
  for (auto& v : a) v = bf_in ? to_bf16(float(u(rng))) : to_f16(float(u(rng)));
  std::vector<float> x0(size_t(T) * d), gam(static_cast<size_t>(d)), r_prev(static_cast<size_t>(T));
  for (int t = 0; t < T; ++t) {
    const double size = std::pow(10.0, 3.0 * u(rng));
    double ss = 0;
    for (int64_t i = 0; i < d; ++i) {
      x0[size_t(t * d + i)] = float(size * u(rng));
      ss += double(x0[size_t(t * d + i)]) * x0[size_t(t * d + i)];
    }
    r_prev[size_t(t)] = float(std::pow(4.0, u(rng)) / std::sqrt(ss / double(d)));
  }
  for (auto& g : gam) g = float(gamma_scale * (0.5 + 0.5 * (u(rng) + 1.0)));

  const DeviceMatrix dp = upload(pack(P));
  const DeviceMatrix dc = upload(pack(gated ? interleave_row_blocks16(C) : C));
  const size_t fb_in = activation_frag_bytes(k_in, T), fb_mid = activation_frag_bytes(d, T);
  const size_t fb_out = gated ? activation_frag_bytes(n_ff, T) : 0;
  uint16_t* da = dev_alloc<uint16_t>(a.size());
  void* dafrag = dev_alloc<uint8_t>(fb_in);
  void* dmid = dev_alloc<uint8_t>(fb_mid);
  void* dout_frag = gated ? dev_alloc<uint8_t>(fb_out) : nullptr;
  float* dx = dev_alloc<float>(x0.size());
  float* dyp = dev_alloc<float>(size_t(T) * d);
  float* dyc = dev_alloc<float>(size_t(T) * m_out);
  float* dgamma = dev_alloc<float>(gam.size());
  float* dfold = dev_alloc<float>(kFoldMaxParts * 16 + 64);  // partials, prescale, rscale, sumsq, counter
  QB_CUDA_OK(cudaMemset(dfold, 0, (kFoldMaxParts * 16 + 64) * sizeof(float)));
  unsigned* dflag = dev_alloc<unsigned>(1);
  QB_CUDA_OK(cudaMemcpy(da, a.data(), a.size() * 2, cudaMemcpyHostToDevice));
  pack_activations(da, bf_in, T, k_in, dafrag, nullptr);
  QB_CUDA_OK(cudaMemcpy(dgamma, gam.data(), gam.size() * 4, cudaMemcpyHostToDevice));

  // The plain producer's outputs: x + y on the host is what the folded producer must leave in x.
  const QgemvConfig pc = qgemv(dp, dafrag, T, dyp, nullptr);
  std::vector<float> yp(size_t(T) * d);
  QB_CUDA_OK(cudaMemcpy(yp.data(), dyp, yp.size() * 4, cudaMemcpyDeviceToHost));
  std::vector<float> x_want(x0.size());
  for (size_t i = 0; i < x0.size(); ++i) x_want[i] = x0[i] + yp[i];

  QgemvFoldOut fo;
  fo.x = dx;
  fo.gamma = dgamma;
  float* const drscale = dfold + kFoldMaxParts * 16 + 16;
  fo.rscale = drscale;
  fo.frag = dmid;
  fo.bf16 = bf;
  fo.partials = dfold;
  fo.prescale = dfold + kFoldMaxParts * 16;
  fo.overflow = dflag;
  fo.sumsq = dfold + kFoldMaxParts * 16 + 32;
  fo.counter = reinterpret_cast<unsigned*>(dfold + kFoldMaxParts * 16 + 48);
  QgemvFoldIn fi;
  fi.sumsq = fo.sumsq;
  fi.prescale = fo.prescale;
  fi.n = int(d);
  fi.eps = 1e-5f;
  fi.rscale = drscale;  // the consumer overwrites r_prev with this norm's r, as in a step
  QgemvGatedOut go;
  go.frag = dout_frag;
  go.n = int(n_ff);
  go.bf16 = bf;
  QgemvConfig cc = choose_config(dc.shape, T, 132);
  if (gated && !gated_epilogue_fits(dc.shape, cc)) cc = QgemvConfig{2, 4};

  std::vector<float> x1, x2, yc1, yc2, pre(16), rs(16);
  std::vector<uint8_t> mid, fr1, fr2;
  unsigned flag = 0;
  for (int run = 0; run < 2; ++run) {
    QB_CUDA_OK(cudaMemcpy(dx, x0.data(), x0.size() * 4, cudaMemcpyHostToDevice));
    QB_CUDA_OK(cudaMemcpy(drscale, r_prev.data(), size_t(T) * 4, cudaMemcpyHostToDevice));
    QB_CUDA_OK(cudaMemset(dmid, 0xff, fb_mid));
    QB_CUDA_OK(cudaMemset(dyc, 0xff, size_t(T) * m_out * 4));
    if (gated) QB_CUDA_OK(cudaMemset(dout_frag, 0xff, fb_out));
    QB_CUDA_OK(cudaMemset(dflag, 0, 4));
    const QgemvConfig ran = qgemv(dp, dafrag, T, nullptr, nullptr, pc, nullptr, &fo);
    FCHECK(qgemv_grid_blocks(dp.shape, ran) == qgemv_grid_blocks(dp.shape, pc), "%s: the producer ran another grid",
           name.c_str());
    QB_CUDA_OK(cudaDeviceSynchronize());
    if (run == 0) {  // the consumer overwrites rscale: read the prescales and the middle fragments first
      QB_CUDA_OK(cudaMemcpy(pre.data(), fo.prescale, 16 * 4, cudaMemcpyDeviceToHost));
      mid.resize(fb_mid);
      QB_CUDA_OK(cudaMemcpy(mid.data(), dmid, fb_mid, cudaMemcpyDeviceToHost));
    }
    qgemv(dc, dmid, T, gated ? nullptr : dyc, nullptr, cc, gated ? &go : nullptr, nullptr, &fi);
    QB_CUDA_OK(cudaDeviceSynchronize());
    auto& xr = run ? x2 : x1;
    xr.resize(x0.size());
    QB_CUDA_OK(cudaMemcpy(xr.data(), dx, xr.size() * 4, cudaMemcpyDeviceToHost));
    QB_CUDA_OK(cudaMemcpy(&flag, dflag, 4, cudaMemcpyDeviceToHost));
    if (run == 0) QB_CUDA_OK(cudaMemcpy(rs.data(), drscale, 16 * 4, cudaMemcpyDeviceToHost));
    if (gated) {
      auto& fr = run ? fr2 : fr1;
      fr.resize(fb_out);
      QB_CUDA_OK(cudaMemcpy(fr.data(), dout_frag, fb_out, cudaMemcpyDeviceToHost));
    } else {
      auto& yc = run ? yc2 : yc1;
      yc.resize(size_t(T) * m_out);
      QB_CUDA_OK(cudaMemcpy(yc.data(), dyc, yc.size() * 4, cudaMemcpyDeviceToHost));
    }
  }
  for (void* q : {static_cast<void*>(da), dafrag, dmid, dout_frag, static_cast<void*>(dx), static_cast<void*>(dyp),
                  static_cast<void*>(dyc), static_cast<void*>(dgamma), static_cast<void*>(dfold),
                  static_cast<void*>(dflag)})
    if (q) QB_CUDA_OK(cudaFree(q));

  if (overflow_case) {
    FCHECK(flag == 1u, "%s: x * gamma * p past f16's range, but no overflow flagged", name.c_str());
    std::printf("%-6s %s\n", flag == 1u ? "ok" : "FAIL", name.c_str());
    return;
  }
  const int fails_before = g_fail;
  FCHECK(flag == 0u, "%s: overflow flagged", name.c_str());
  FCHECK(std::memcmp(x1.data(), x_want.data(), x1.size() * 4) == 0, "%s: x differs from x + the plain product",
         name.c_str());
  FCHECK(x1 == x2 && (gated ? fr1 == fr2 : std::memcmp(yc1.data(), yc2.data(), yc1.size() * 4) == 0),
         "%s: a second run differs bitwise", name.c_str());
  std::vector<double> r(static_cast<size_t>(T));
  for (int t = 0; t < T; ++t) {
    double ss = 0;
    for (int64_t i = 0; i < d; ++i) ss += double(x1[size_t(t * d + i)]) * x1[size_t(t * d + i)];
    r[size_t(t)] = 1.0 / std::sqrt(ss / double(d) + 1e-5);
    const double p = pre[size_t(t)];
    int e = 0;
    FCHECK(std::frexp(p, &e) == 0.5 && p > r_prev[size_t(t)] / 32.0 && p <= r_prev[size_t(t)] / 16.0,
           "%s: token %d prescale %g for r_prev %g", name.c_str(), t, p, double(r_prev[size_t(t)]));
    FCHECK(std::fabs(rs[size_t(t)] - r[size_t(t)]) <= 1e-5 * r[size_t(t)], "%s: token %d r %.9g, float64 %.9g",
           name.c_str(), t, double(rs[size_t(t)]), r[size_t(t)]);
    // The middle fragments hold f16(x gamma p): within half an f16 ulp (relative 2^-11; below f16's
    // normal range, half the subnormal step 2^-24).
    for (int64_t i = 0; i < d; i += 7) {
      const double want = double(x1[size_t(t * d + i)]) * gam[size_t(i)] * p;
      const double got = frag_value(mid, (T + 7) / 8, bf, t, i);
      FCHECK(std::fabs(got - want) <= std::ldexp(std::fabs(want), bf ? -8 : -11) + std::ldexp(1.0, -25),
             "%s: fragment (%d, %lld) %g, want %g", name.c_str(), t, (long long)i, got, want);
    }
  }
  // The consumer against float64 on the normalized rows.
  std::vector<double> xn(size_t(T) * d);
  for (int t = 0; t < T; ++t)
    for (int64_t i = 0; i < d; ++i) xn[size_t(t * d + i)] = double(x1[size_t(t * d + i)]) * r[size_t(t)] * gam[size_t(i)];
  const double tol = bf ? 6e-3 : 1e-3;  // bf16 fragments round to 2^-9 relative
  double worst = 0;
  if (!gated) {
    yc1.resize(yc1.size() + kGuard, kSentinel);
    const ProductErrors e =
        product_errors([&](int64_t o, int64_t i) { return C.weight(o, i); }, xn, yc1, m_out, d, T, tol);
    FCHECK(e.not_finite == 0 && e.bad_elem == 0, "%s: %d outputs not finite, %d beyond %.0e of sum |w x| (worst %.2e)",
           name.c_str(), e.not_finite, e.bad_elem, tol, e.worst);
    worst = e.worst / tol;
  } else {
    size_t bad = 0;
    for (int t = 0; t < T; ++t)
      for (int64_t k = 0; k < n_ff; ++k) {
        double g = 0, gm = 0, up = 0, um = 0;
        for (int64_t i = 0; i < d; ++i) {
          const double xv = xn[size_t(t * d + i)], wg = C.weight(k, i), wu = C.weight(n_ff + k, i);
          g += wg * xv;
          gm += std::fabs(wg * xv);
          up += wu * xv;
          um += std::fabs(wu * xv);
        }
        const double act = g / (1.0 + std::exp(-g)), h = act * up;
        const double err = std::fabs(frag_value(fr1, (T + 7) / 8, bf, t, k) - h);
        const double bound = 1.1 * std::fabs(up) * tol * gm + std::fabs(act) * tol * um +
                             std::ldexp(std::fabs(h), bf ? -7 : -10) + 1e-6;
        bad += !(err <= bound);
        worst = std::max(worst, err / bound);
      }
    FCHECK(bad == 0, "%s: %zu gated outputs outside the float64 bound", name.c_str(), bad);
  }
  std::printf("%-6s %-70s worst err/bound %.2f\n", g_fail == fails_before ? "ok" : "FAIL", name.c_str(), worst);
}

}  // namespace

int run_fold_checks(std::mt19937_64& rng, int* cases) {
  g_fail = 0;
  const QuantSpec w4{WeightFormat::W4A16, 128, false}, w4a{WeightFormat::W4A16, 128, true},
      w4g32{WeightFormat::W4A16, 32, true}, w8{WeightFormat::W8A16, 0, false}, w8g32{WeightFormat::W8A16, 32, false},
      bf16{WeightFormat::BF16, 0, false};
  int n = 0;
  // Every format as producer and as consumer, ragged token counts; gated consumers at an even R.
  for (const QuantSpec& s : {w4, w4a, w4g32, w8, w8g32, bf16})
    for (int T : {1, 5, 16}) {
      check_fold_case(s, w4, 384, 256, 640, false, T, rng), ++n;
      check_fold_case(w4, s, 384, 256, 640, false, T, rng), ++n;
      check_fold_case(w4, s, 384, 256, 256, true, T, rng), ++n;
    }
  // Llama-2-7B's shapes under the launch rules: o (4096 x 4096) into q|k|v, down (4096 x 11008) into
  // gate|up (gated, n_ff 11008).
  for (int T : {1, 16}) {
    check_fold_case(w4, w4, 4096, 4096, 12288, false, T, rng), ++n;
    check_fold_case(w4, w4, 4096, 11008, 22016, true, T, rng), ++n;
    check_fold_case(w8, w8, 4096, 4096, 12288, false, T, rng), ++n;
  }
  check_fold_case(w4, w4, 384, 256, 640, false, 3, rng, 1e7), ++n;  // the overflow flag
  {  // refused: a producer whose rows are not a multiple of 64, or a gated producer
    const DeviceMatrix dw = upload(pack(random_matrix(w4, 96, 128, rng)));
    QgemvFoldOut fo;
    alignas(16) float dummy[16] = {};
    unsigned counter = 0;
    fo.x = fo.partials = fo.prescale = fo.sumsq = dummy;
    fo.gamma = fo.rscale = dummy;
    fo.frag = dummy;
    fo.counter = &counter;
    bool threw = false;
    try { qgemv(dw, nullptr, 1, nullptr, nullptr, {}, nullptr, &fo); } catch (const std::invalid_argument&) { threw = true; }
    FCHECK(threw, "fold producer accepted n_out = 96");
    QgemvFoldIn fi;
    fi.sumsq = fi.prescale = dummy + 1;  // not 16-byte aligned
    fi.rscale = dummy;
    fi.n = 96;
    threw = false;
    try { qgemv(dw, nullptr, 1, nullptr, nullptr, {}, nullptr, nullptr, &fi); } catch (const std::invalid_argument&) { threw = true; }
    FCHECK(threw, "fold consumer accepted sums that are not 16-byte aligned");
    n += 2;
  }
  *cases += n;
  return g_fail;
}
