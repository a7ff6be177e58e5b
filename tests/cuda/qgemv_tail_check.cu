// Correctness of the decode products' epilogues (qgemv.h, QgemvTail), on fresh random inputs with every
// output poisoned (NaN / 0xff) before each launch, at several shapes, token counts and launch shapes:
//   - GatedAct: y bit-identical to the same product without the tail, and act(gate) * up in every target
//     (f32 rows, 16-bit rows, fragments) bit-identical to gated_act_out on that y (which the forward
//     kernel checks hold to float64); the pair counters back at zero; a second launch identical;
//   - AddRmsNorm: y bit-identical to the product without the tail; the residual x + y bit-exact (one f32
//     add) on the gathered rows and the other rows untouched; the normalized rows within 2e-5 relative
//     (+1e-6) of float64 on the kernel's own x; the 16-bit rows and fragments bit-identical to casting /
//     packing its own f32 rows; the counter back at zero; a second launch identical;
//   - qgemv refuses tails that do not fit the shape (std::invalid_argument).
// The products themselves are checked against float64 in qgemv_check.cu. Called from its main.
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

using namespace qb::runtime::cuda;

namespace {

int g_fail = 0, g_n = 0;

#define TCHECK(cond, ...)                                         \
  do {                                                            \
    if (!(cond)) {                                                \
      std::printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
      std::printf(__VA_ARGS__);                                   \
      std::printf("\n");                                          \
      ++g_fail;                                                   \
    }                                                             \
  } while (0)

template <class T>
struct Dev {
  T* p = nullptr;
  size_t n = 0;
  explicit Dev(size_t count, int fill = 0) : n(count) {
    QB_CUDA_OK(cudaMalloc(&p, std::max<size_t>(n, 1) * sizeof(T)));
    QB_CUDA_OK(cudaMemset(p, fill, std::max<size_t>(n, 1) * sizeof(T)));
  }
  Dev(const std::vector<T>& v) : Dev(v.size()) { put(v); }
  ~Dev() { cudaFree(p); }
  Dev(const Dev&) = delete;
  Dev& operator=(const Dev&) = delete;
  void put(const std::vector<T>& v) {
    if (n) QB_CUDA_OK(cudaMemcpy(p, v.data(), n * sizeof(T), cudaMemcpyHostToDevice));
  }
  void poison(int fill) { QB_CUDA_OK(cudaMemset(p, fill, std::max<size_t>(n, 1) * sizeof(T))); }
  std::vector<T> get() const {
    std::vector<T> v(n);
    if (n) QB_CUDA_OK(cudaMemcpy(v.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost));
    return v;
  }
};

uint16_t h16(float f, bool bf) {
  return bf ? __nv_bfloat16_raw(__float2bfloat16_rn(f)).x : __half_raw(__float2half_rn(f)).x;
}

HostMatrix random_matrix(const QuantSpec& spec, int64_t n_out, int64_t n_in, std::mt19937_64& rng) {
  HostMatrix m;
  m.spec = spec;
  m.n_out = n_out;
  m.n_in = n_in;
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  const size_t n = size_t(n_out * n_in);
  std::uniform_int_distribution<int> q4(0, 15), q8(-128, 127);
  if (spec.format == WeightFormat::BF16) {
    m.bf16.resize(n);
    for (auto& v : m.bf16) v = h16(0.1f * u(rng), true);
  } else if (spec.format == WeightFormat::W8A16) {
    m.q8.resize(n);
    for (auto& v : m.q8) v = int8_t(q8(rng));
    m.scales.resize(size_t(spec.group ? n_out * (n_in / spec.group) : n_out));
    for (auto& s : m.scales) s = h16(2e-3f * (1.5f + u(rng)), false);
  } else {
    m.q4.resize(n);
    for (auto& v : m.q4) v = uint8_t(q4(rng));
    m.scales.resize(size_t(n_out * (n_in / spec.group)));
    for (auto& s : m.scales) s = h16(2e-2f * (1.5f + u(rng)), false);
    if (spec.asym) {
      m.zeros.resize(m.scales.size());
      for (auto& z : m.zeros) z = uint8_t(q4(rng));
    }
  }
  return m;
}

// Random activations for n tokens, packed as the product's input fragments.
void random_input(const QuantSpec& spec, int64_t n_in, int T, Dev<uint8_t>& xf, std::mt19937_64& rng) {
  const bool bf = spec.format == WeightFormat::BF16;
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<uint16_t> x(size_t(T) * n_in);
  for (auto& v : x) v = h16(u(rng), bf);
  Dev<uint16_t> dx(x);
  xf.poison(0xff);
  pack_activations(dx.p, bf, T, n_in, xf.p, nullptr);
}

// The targets of one tail: f32 rows, 16-bit rows, fragments (T <= 16), poisoned.
struct Targets {
  Dev<float> f32;
  Dev<uint16_t> half;
  Dev<uint8_t> frag;
  bool bf;
  Targets(int n, int T, bool bf16)
      : f32(size_t(T) * n, 0xff), half(size_t(T) * n, 0xff), frag(activation_frag_bytes(n, T), 0xff), bf(bf16) {}
  ActOut act() const {
    ActOut o;
    o.f32 = f32.p;
    o.half_rows = half.p;
    o.frag = frag.p;
    o.bf16 = bf;
    return o;
  }
  void poison() { f32.poison(0xff); half.poison(0xff); frag.poison(0xff); }
};

// Fragment words of tokens < T (the others are never read by qgemv) that differ.
size_t frag_diff(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b, int T) {
  const int nt = (T + 7) / 8;
  size_t bad = 0;
  for (size_t w = 0; w < a.size() / 4; ++w) {
    const int lane = int((w >> 3) & 31), j = int((w >> 8) % size_t(nt)), tok = 8 * j + (lane >> 2);
    if (tok < T) bad += std::memcmp(&a[4 * w], &b[4 * w], 4) != 0;
  }
  return bad;
}

bool all_zero(const Dev<unsigned>& c) {
  for (unsigned v : c.get())
    if (v) return false;
  return true;
}

std::string cfg_name(const QgemvConfig& c) {
  return "R=" + std::to_string(c.row_blocks_per_warp) + " warps=" + std::to_string(c.warps_per_block);
}

void check_gated_tail(const QuantSpec& spec, int n, int64_t n_in, int T, int act, QgemvConfig cfg, std::mt19937_64& rng) {
  ++g_n;
  const int64_t n_out = 2 * int64_t(n);
  const DeviceMatrix dw = upload(pack(random_matrix(spec, n_out, n_in, rng)));
  int sms = 0;
  QB_CUDA_OK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  if (!cfg.row_blocks_per_warp) cfg = choose_config(dw.shape, T, sms);
  std::string name = "gated tail " + spec_name(spec) + " n=" + std::to_string(n) + " K=" + std::to_string(n_in) +
                     " T=" + std::to_string(T) + (act ? " gelu " : " silu ") + cfg_name(cfg);
  if (!gated_tail_fits(dw.shape, cfg)) {
    std::printf("FAIL %s: does not fit (test setup)\n", name.c_str());
    ++g_fail;
    return;
  }
  const bool bf = spec.format == WeightFormat::BF16;
  Dev<uint8_t> xf(activation_frag_bytes(n_in, T));
  random_input(spec, n_in, T, xf, rng);
  Dev<float> y(size_t(T) * n_out, 0xff), y_ref(size_t(T) * n_out, 0xff);
  Dev<unsigned> counters(size_t(gated_tail_counters(dw.shape, cfg)), 0);
  Targets got(n, T, bf), ref(n, T, bf);
  QgemvTail tail;
  tail.kind = QgemvTail::Kind::GatedAct;
  tail.counters = counters.p;
  tail.act = act;
  tail.out = got.act();
  // Reference: the plain product, then the separate kernel.
  qgemv(dw, xf.p, T, y_ref.p, nullptr, cfg);
  gated_act_out(y_ref.p, n, T, act, ref.act(), nullptr);
  std::vector<float> f1;
  std::vector<uint16_t> h1;
  std::vector<uint8_t> fr1;
  for (int run = 0; run < 2; ++run) {
    got.poison();
    y.poison(0xff);
    qgemv(dw, xf.p, T, y.p, nullptr, cfg, tail);
    QB_CUDA_OK(cudaDeviceSynchronize());
    const auto f = got.f32.get();
    const auto h = got.half.get();
    const auto fr = got.frag.get();
    if (run == 0) {
      TCHECK(std::memcmp(y.get().data(), y_ref.get().data(), y.n * 4) == 0, "%s: y differs from the plain product",
             name.c_str());
      TCHECK(std::memcmp(f.data(), ref.f32.get().data(), f.size() * 4) == 0, "%s: f32 rows differ from gated_act_out",
             name.c_str());
      TCHECK(h == ref.half.get(), "%s: 16-bit rows differ from gated_act_out", name.c_str());
      TCHECK(frag_diff(fr, ref.frag.get(), T) == 0, "%s: fragments differ from gated_act_out", name.c_str());
      f1 = f;
      h1 = h;
      fr1 = fr;
    } else {
      TCHECK(std::memcmp(f.data(), f1.data(), f.size() * 4) == 0 && h == h1 && frag_diff(fr, fr1, T) == 0,
             "%s: second launch differs", name.c_str());
    }
    TCHECK(all_zero(counters), "%s: counters not back at zero", name.c_str());
  }
  std::printf("%-6s %s\n", g_fail ? "?" : "ok", name.c_str());
}

// Product over X tokens; the tail adds y to x and normalizes the rows gathered by `rows` (or all X).
void check_norm_tail(const QuantSpec& spec, int n, int64_t n_in, int X, bool gather, QgemvConfig cfg,
                     std::mt19937_64& rng) {
  ++g_n;
  const DeviceMatrix dw = upload(pack(random_matrix(spec, n, n_in, rng)));
  int sms = 0;
  QB_CUDA_OK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  if (!cfg.row_blocks_per_warp) cfg = choose_config(dw.shape, X, sms);
  const int T = gather ? std::max(1, X - 2) : X;  // output rows
  const bool bf = spec.format == WeightFormat::BF16;
  std::string name = "norm tail " + spec_name(spec) + " n=" + std::to_string(n) + " K=" + std::to_string(n_in) +
                     " X=" + std::to_string(X) + (gather ? " gather T=" + std::to_string(T) : "") + " " + cfg_name(cfg);
  Dev<uint8_t> xf(activation_frag_bytes(n_in, X));
  random_input(spec, n_in, X, xf, rng);
  std::uniform_real_distribution<float> u(-2.f, 2.f);
  std::vector<float> x0(size_t(X) * n), w(static_cast<size_t>(n));
  for (auto& v : x0) v = u(rng);
  for (auto& v : w) v = 0.5f + 0.25f * u(rng);
  std::vector<int32_t> rows(static_cast<size_t>(X));
  for (int i = 0; i < X; ++i) rows[size_t(i)] = i;
  if (gather) std::shuffle(rows.begin(), rows.end(), rng);
  rows.resize(size_t(T));
  Dev<float> dx(x0), dw_norm(w), y(size_t(X) * n, 0xff), y_ref(size_t(X) * n, 0xff);
  Dev<int32_t> drows(rows);
  Dev<unsigned> counters(1, 0);
  Targets got(n, T, bf);
  qgemv(dw, xf.p, X, y_ref.p, nullptr, cfg);
  QgemvTail tail;
  tail.kind = QgemvTail::Kind::AddRmsNorm;
  tail.counters = counters.p;
  tail.x = dx.p;
  tail.w = dw_norm.p;
  tail.eps = 1e-5f;
  tail.rows = gather ? drows.p : nullptr;
  tail.out_tokens = gather ? T : 0;
  tail.out = got.act();
  std::vector<float> f1, x1;
  for (int run = 0; run < 2; ++run) {
    got.poison();
    y.poison(0xff);
    dx.put(x0);
    qgemv(dw, xf.p, X, y.p, nullptr, cfg, tail);
    QB_CUDA_OK(cudaDeviceSynchronize());
    const auto gx = dx.get(), gy = got.f32.get();
    TCHECK(all_zero(counters), "%s: counter not back at zero", name.c_str());
    if (run == 1) {
      TCHECK(gx == x1 && std::memcmp(gy.data(), f1.data(), gy.size() * 4) == 0, "%s: second launch differs",
             name.c_str());
      break;
    }
    f1 = gy;
    x1 = gx;
    const auto yr = y_ref.get();
    TCHECK(std::memcmp(y.get().data(), yr.data(), y.n * 4) == 0, "%s: y differs from the plain product", name.c_str());
    std::vector<bool> used(size_t(X), false);
    size_t bad_x = 0, bad_y = 0;
    double worst = 0;
    for (int t = 0; t < T; ++t) {
      const int r = rows[size_t(t)];
      used[size_t(r)] = true;
      double ss = 0;
      for (int i = 0; i < n; ++i) {
        const float xi = x0[size_t(r) * n + i] + yr[size_t(r) * n + i];
        bad_x += gx[size_t(r) * n + i] != xi;
        ss += double(gx[size_t(r) * n + i]) * gx[size_t(r) * n + i];
      }
      const double sc = 1.0 / std::sqrt(ss / n + 1e-5);
      for (int i = 0; i < n; ++i) {
        const double ref = double(gx[size_t(r) * n + i]) * sc * w[size_t(i)];
        const double err = std::fabs(double(gy[size_t(t) * n + i]) - ref);
        worst = std::max(worst, err / (std::fabs(ref) + 1e-3));
        bad_y += !(err <= 2e-5 * std::fabs(ref) + 1e-6);
      }
    }
    for (int r = 0; r < X; ++r)
      if (!used[size_t(r)])
        for (int i = 0; i < n; ++i) bad_x += gx[size_t(r) * n + i] != x0[size_t(r) * n + i];
    TCHECK(bad_x == 0, "%s: %zu residual values wrong (or rows not gathered changed)", name.c_str(), bad_x);
    TCHECK(bad_y == 0, "%s: %zu normalized values off (worst rel %.3g)", name.c_str(), bad_y, worst);
    // The 16-bit rows and the fragments hold the kernel's own f32 rows, rounded.
    const auto h = got.half.get();
    size_t bad_h = 0;
    for (size_t i = 0; i < gy.size(); ++i) bad_h += h[i] != h16(gy[i], bf);
    TCHECK(bad_h == 0, "%s: %zu 16-bit values differ from the cast f32 rows", name.c_str(), bad_h);
    Dev<float> dr(gy);
    Dev<uint8_t> fr_ref(got.frag.n, 0xff);
    pack_activations_f32(dr.p, bf, T, n, fr_ref.p, nullptr);
    TCHECK(frag_diff(got.frag.get(), fr_ref.get(), T) == 0, "%s: fragments differ from packing the f32 rows",
           name.c_str());
    std::printf("%-6s %s (worst rel %.2g)\n", g_fail ? "?" : "ok", name.c_str(), worst);
  }
}

void check_refusals(std::mt19937_64& rng) {
  ++g_n;
  const QuantSpec s{WeightFormat::W4A16, 128, false};
  Dev<unsigned> c(64, 0);
  Dev<float> y(16 * 1024, 0), x(16 * 1024, 0);
  Dev<uint8_t> xf(activation_frag_bytes(128, 1), 0);
  int refused = 0;
  {  // gate|up halves of 48 rows: not a multiple of 64
    const DeviceMatrix dw = upload(pack(random_matrix(s, 96, 128, rng)));
    QgemvTail t;
    t.kind = QgemvTail::Kind::GatedAct;
    t.counters = c.p;
    try { qgemv(dw, xf.p, 1, y.p, nullptr, {1, 1}, t); } catch (const std::invalid_argument&) { ++refused; }
  }
  {  // a fitting gate|up matrix without counters; gated_tail_fits on odd / ragged halves
    const DeviceMatrix dw = upload(pack(random_matrix(s, 384, 128, rng)));
    QgemvTail t;
    t.kind = QgemvTail::Kind::GatedAct;
    TCHECK(gated_tail_fits(dw.shape, {4, 1}) && !gated_tail_fits(packed_shape(s, 130, 128), {1, 1}) &&
               !gated_tail_fits(packed_shape(s, 160, 128), {1, 1}),
           "gated_tail_fits");
    try { qgemv(dw, xf.p, 1, y.p, nullptr, {4, 1}, t); } catch (const std::invalid_argument&) { ++refused; }
  }
  {  // norm over 100 rows: not a multiple of 64
    const DeviceMatrix dw = upload(pack(random_matrix(s, 100, 128, rng)));
    QgemvTail t;
    t.kind = QgemvTail::Kind::AddRmsNorm;
    t.counters = c.p;
    t.x = x.p;
    try { qgemv(dw, xf.p, 1, y.p, nullptr, {1, 1}, t); } catch (const std::invalid_argument&) { ++refused; }
  }
  QB_CUDA_OK(cudaDeviceSynchronize());
  TCHECK(refused == 3, "%d of 3 misfit tails refused", refused);
  std::printf("%-6s tail refusals (%d of 3)\n", refused == 3 ? "ok" : "FAIL", refused);
}

}  // namespace

int run_qgemv_tail_checks(uint64_t seed, int* cases) {
  std::mt19937_64 rng(seed ^ 0x7a11u);
  const QuantSpec specs[] = {{WeightFormat::W4A16, 128, false}, {WeightFormat::W4A16, 128, true},
                             {WeightFormat::W4A16, 32, false},  {WeightFormat::W8A16, 0, false},
                             {WeightFormat::BF16, 0, false}};
  for (const auto& s : specs) {
    const int64_t k = 256;
    for (int T : {1, 3, 9, 16}) {
      check_gated_tail(s, 192, k, T, T % 2, {}, rng);
      check_norm_tail(s, 320, k, T, false, {}, rng);
    }
    check_gated_tail(s, 64, k, 16, 0, {4, 8}, rng);
    check_gated_tail(s, 1024, k, 5, 1, {2, 16}, rng);
    check_gated_tail(s, 192, k, 1, 0, {1, 1}, rng);
    check_norm_tail(s, 4096, k, 1, false, {}, rng);
    check_norm_tail(s, 4096, k, 16, false, {1, 1}, rng);  // 32 threads: the loop path
    check_norm_tail(s, 4096, k, 16, true, {}, rng);
    check_norm_tail(s, 640, k, 9, true, {2, 8}, rng);
    check_norm_tail(s, 64, k, 2, false, {4, 16}, rng);
  }
  // Llama-2-7B-like: gate|up 2 x 11008 over 4096 at 1 and 16 tokens (the auto launch shapes), down 4096.
  const QuantSpec w4{WeightFormat::W4A16, 128, false};
  check_gated_tail(w4, 11008, 4096, 1, 0, {}, rng);
  check_gated_tail(w4, 11008, 4096, 16, 0, {}, rng);
  check_norm_tail(w4, 4096, 1024, 1, false, {}, rng);
  check_refusals(rng);
  *cases += g_n;
  return g_fail;
}
