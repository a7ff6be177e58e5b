// Correctness of the CUDA decode kernels (runtime/cuda) against a float64 CPU product.
// A separate executable built only with QB_CUDA=ON (and by bench/gpu/run.sh with plain nvcc), with
// plain checks in main(): the GPU machine has no gtest. Every case draws fresh random inputs, poisons
// the output with NaN and a guard region past it with a sentinel before the launch, and checks:
//   - every output finite (all written), the guard untouched (nothing written past the end);
//   - per element |y - ref| <= tol_elem * sum_i |w_i x_i| (a bound that rounding cannot exceed);
//   - ||y - ref|| / ||ref|| <= tol_l2 (from 64 outputs on: a statistical criterion);
//   - a second launch gives bit-identical output (no race, no read of unwritten memory).
// Tolerances, from the arithmetic: all products are exact in f32 (bf16 x bf16; int8 or (q - z) x f16,
// scales applied in f32 to the row's or group's partial sum), so only f32 accumulation errs:
// tol_elem 2e-4 of sum |w x| (K up to 11008), tol_l2 1e-5. With mins the kernels multiply q * s + m
// rounded once to f16, and so does the reference (kernel_weight).
// A wrong layout, scale, zero point or token mapping gives errors of order 1, far above these.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "quantbench/runtime/cuda/cuda_check.h"
#include "quantbench/runtime/cuda/forward_kernels.h"
#include "quantbench/runtime/cuda/qgemv.h"
#include "check_util.h"
#include "packed_formats.h"

using namespace qb::runtime::cuda;
using namespace qb::cuda_checks;

int run_forward_kernel_checks(uint64_t seed, int* cases);  // forward_kernels_check.cu
int run_qgemm_checks(std::mt19937_64& rng, int* cases);    // qgemm_check.cu

namespace {

int g_failures = 0, g_cases = 0;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

#define CHECK(cond, ...) QB_COUNT_CHECK(g_failures, cond, __VA_ARGS__)

struct Tol { double elem, l2; };
Tol tolerance(const QuantSpec& s) {
  (void)s;
  return Tol{2e-4, 1e-5};
}

// Random activations in (-1, 1) rounded to the kernels' 16-bit type (bf16 for bf16 weights, else f16):
// x holds the bits, xd their exact values for the float64 reference.
void random_activations(bool bf16, size_t count, std::mt19937_64& rng, std::vector<uint16_t>& x,
                        std::vector<double>& xd) {
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  x.resize(count);
  xd.resize(count);
  for (size_t i = 0; i < count; ++i) {
    x[i] = bf16 ? to_bf16(u(rng)) : to_f16(u(rng));
    xd[i] = bf16 ? from_bf16(x[i]) : from_f16(x[i]);
  }
}

void check_case(const QuantSpec& spec, int64_t n_out, int64_t n_in, int n_tokens, QgemvConfig cfg,
                std::mt19937_64& rng) {
  ++g_cases;
  std::string name = spec_name(spec) + " " + std::to_string(n_out) + "x" + std::to_string(n_in) +
                     " n=" + std::to_string(n_tokens);
  const HostMatrix m = random_matrix(spec, n_out, n_in, rng);
  const bool bf16_act = spec.format == WeightFormat::BF16;
  std::vector<uint16_t> x;
  std::vector<double> xd;
  random_activations(bf16_act, size_t(n_tokens) * n_in, rng, x, xd);

  const DeviceMatrix dw = upload(pack(m));
  void *dx = nullptr, *dxf = nullptr;
  float* dy = nullptr;
  const size_t ny = size_t(n_tokens) * n_out;
  QB_CUDA_OK(cudaMalloc(&dx, x.size() * 2));
  QB_CUDA_OK(cudaMalloc(&dxf, activation_frag_bytes(n_in, n_tokens)));
  QB_CUDA_OK(cudaMalloc(&dy, (ny + kGuard) * sizeof(float)));
  QB_CUDA_OK(cudaMemcpy(dx, x.data(), x.size() * 2, cudaMemcpyHostToDevice));
  QB_CUDA_OK(cudaMemset(dxf, 0xff, activation_frag_bytes(n_in, n_tokens)));  // poison: every word rewritten
  pack_activations(dx, bf16_act, n_tokens, n_in, dxf, nullptr);

  std::vector<float> y, y2;
  QgemvConfig ran;
  run_poisoned_twice(dy, ny, [&](int) { ran = qgemv(dw, dxf, n_tokens, dy, nullptr, cfg); }, y, y2);
  QB_CUDA_OK(cudaFree(dx));
  QB_CUDA_OK(cudaFree(dxf));
  QB_CUDA_OK(cudaFree(dy));

  name += " R=" + std::to_string(ran.row_blocks_per_warp) + " warps=" + std::to_string(ran.warps_per_block) +
          (cfg.row_blocks_per_warp ? "" : " (auto)") + (cfg.overlap_launch ? " pdl" : "") +
          (ran.half_step ? " half-step" : "") + (ran.copy_loop16 ? " copy-loop" : "");
  // (w4 with mins runs the half step at R = 1 or 2 (R = 4 asked: 2), whatever was asked: checked as reported)
  CHECK(spec.mins && spec.format == WeightFormat::W4A16
            ? ran.half_step && (cfg.row_blocks_per_warp ? ran.row_blocks_per_warp == std::min(cfg.row_blocks_per_warp, 2)
                                                        : ran.row_blocks_per_warp <= 2)
                  : ran.half_step == (cfg.half_step && spec.format == WeightFormat::W4A16 &&
                                      ran.row_blocks_per_warp <= 2) ||
                        cfg.row_blocks_per_warp == 0,
        "%s: the half step %s asked for and %s", name.c_str(), cfg.half_step ? "was" : "was not",
        ran.half_step ? "ran" : "did not run");
  CHECK(ran.copy_loop16 == (cfg.copy_loop16 && ran.half_step && ran.row_blocks_per_warp == 2 && n_tokens > 8 &&
                            spec.group == 128 && !spec.asym),
        "%s: the 16-token copy loop %s asked for and %s", name.c_str(), cfg.copy_loop16 ? "was" : "was not",
        ran.copy_loop16 ? "ran" : "did not run");
  const Tol tol = tolerance(spec);
  const ProductErrors e =
      product_errors([&](int64_t o, int64_t i) { return kernel_weight(m, o, i); }, xd, y, n_out, n_in, n_tokens,
                     tol.elem);
  const bool same = std::memcmp(y.data(), y2.data(), ny * sizeof(float)) == 0;
  CHECK(e.not_finite == 0, "%s: %d outputs not finite (unwritten)", name.c_str(), e.not_finite);
  CHECK(e.guard_hit == 0, "%s: %d writes past the output", name.c_str(), e.guard_hit);
  CHECK(e.bad_elem == 0, "%s: %d elements beyond %.1e * sum|wx| (worst %.2e)", name.c_str(), e.bad_elem, tol.elem,
        e.worst);
  // The L2 criterion is statistical: with a handful of outputs one cancelling sum can dominate
  // ||ref||, so it applies from 64 outputs on (the per-element bound always applies).
  const bool l2_applies = ny >= 64;
  CHECK(!l2_applies || e.rel_l2 <= tol.l2, "%s: relative L2 error %.3e > %.1e", name.c_str(), e.rel_l2, tol.l2);
  CHECK(same, "%s: second launch differs bitwise", name.c_str());
  const bool failed = e.not_finite || e.guard_hit || e.bad_elem || (l2_applies && e.rel_l2 > tol.l2) || !same;
  std::printf("%-6s %-44s rel_l2 %.2e  worst_elem %.2e  %s\n", failed ? "FAIL" : "ok", name.c_str(), e.rel_l2,
              e.worst, same ? "" : "(nondeterministic)");
}

// The gate|up product with the gated activation in its epilogue (QgemvGatedOut). A gate|up matrix
// (gate rows, then up rows) is interleaved in row blocks of 16 on the host (interleave_row_blocks16),
// packed and run fused; its fragments must be
//   - bit for bit those of the plain product into y followed by gated_act_out(interleave16), every word
//     of the buffer (both poisoned alike first), and the same bits on a second launch;
//   - within rounding of act(g) * u from float64 products on the matrix as it was before the
//     interleave: |err| <= 1.1 |u| tg + |act(g)| tu + 2^-10 |h| + 1e-6, with tg, tu the product bound of
//     check_case (2e-4 of sum |w x|), 1.1 bounding |act'| for SiLU and GELU, and 2^-10 the f16 rounding
//     of h with margin.
void check_gated_case(const QuantSpec& spec, int64_t n_ff, int64_t n_in, int n_tokens, QgemvConfig cfg, int act,
                      std::mt19937_64& rng) {
  ++g_cases;
  std::string name = "gated " + spec_name(spec) + " " + std::to_string(2 * n_ff) + "x" + std::to_string(n_in) +
                     " n=" + std::to_string(n_tokens) + (act ? " gelu" : " silu");
  const HostMatrix m = random_matrix(spec, 2 * n_ff, n_in, rng);
  const bool bf = spec.format == WeightFormat::BF16;
  std::vector<uint16_t> x;
  std::vector<double> xd;
  random_activations(bf, size_t(n_tokens) * n_in, rng, x, xd);
  const DeviceMatrix dw = upload(pack(interleave_row_blocks16(m)));

  const size_t fb = activation_frag_bytes(n_in, n_tokens), hb = activation_frag_bytes(n_ff, n_tokens);
  void *dx = nullptr, *dxf = nullptr, *want = nullptr, *got = nullptr;
  float* dy = nullptr;
  QB_CUDA_OK(cudaMalloc(&dx, x.size() * 2));
  QB_CUDA_OK(cudaMalloc(&dxf, fb));
  QB_CUDA_OK(cudaMalloc(&want, hb));
  QB_CUDA_OK(cudaMalloc(&got, hb));
  QB_CUDA_OK(cudaMalloc(&dy, size_t(n_tokens) * 2 * n_ff * sizeof(float)));
  QB_CUDA_OK(cudaMemcpy(dx, x.data(), x.size() * 2, cudaMemcpyHostToDevice));
  pack_activations(dx, bf, n_tokens, n_in, dxf, nullptr);
  QB_CUDA_OK(cudaMemset(want, 0xff, hb));
  cfg = qgemv(dw, dxf, n_tokens, dy, nullptr, cfg);  // the launch shape that ran: the fused run takes the same
  name += " R=" + std::to_string(cfg.row_blocks_per_warp) + " warps=" + std::to_string(cfg.warps_per_block) +
          (cfg.half_step ? " half" : "") + (cfg.copy_loop16 ? " copy-loop" : "");
  ActOut to_down;
  to_down.frag = want;
  to_down.bf16 = bf;
  gated_act_out(dy, int(n_ff), n_tokens, act, to_down, nullptr, false, true);
  QgemvGatedOut go;
  go.frag = got;
  go.n = int(n_ff);
  go.act = act;
  go.bf16 = bf;
  std::vector<uint8_t> a(hb), b(hb), b2(hb);
  QB_CUDA_OK(cudaMemcpy(a.data(), want, hb, cudaMemcpyDeviceToHost));
  for (auto* out : {&b, &b2}) {
    QB_CUDA_OK(cudaMemset(got, 0xff, hb));
    qgemv(dw, dxf, n_tokens, nullptr, nullptr, cfg, &go);
    QB_CUDA_OK(cudaDeviceSynchronize());
    QB_CUDA_OK(cudaMemcpy(out->data(), got, hb, cudaMemcpyDeviceToHost));
  }
  for (void* q : {dx, dxf, want, got, static_cast<void*>(dy)}) QB_CUDA_OK(cudaFree(q));

  // Against float64, column by column, on the matrix before the interleave.
  const int nt = (n_tokens + 7) / 8;
  auto frag_value = [&](int tok, int64_t k) {  // the inverse of put_frag's index rule (act_store.cuh)
    const int64_t c = k >> 6, r = k & 63, sub = r >> 4, w = r & 15, h = w >> 3, t = (w & 7) >> 1;
    const int64_t lane = 4 * (tok & 7) + t, j = tok >> 3;
    const size_t word = size_t(((c * nt + j) * 32 + lane) * 8 + 2 * sub + h);
    uint32_t v;
    std::memcpy(&v, b.data() + 4 * word, 4);
    const uint16_t half = uint16_t((k & 1) ? v >> 16 : v & 0xffffu);
    return bf ? from_bf16(half) : from_f16(half);
  };
  auto act_of = [&](double g) {
    return act == 0 ? g / (1.0 + std::exp(-g))
                    : 0.5 * g * (1.0 + std::tanh(0.79788456080286535588 * (g + 0.044715 * g * g * g)));
  };
  struct Part { double worst = 0.0; size_t bad = 0; };
  std::vector<Part> parts(size_t((n_ff + kRowChunk - 1) / kRowChunk));
  for_row_chunks(n_ff, [&](int64_t k0, int64_t k1) {
    Part& p = parts[size_t(k0 / kRowChunk)];
    std::vector<double> wg(static_cast<size_t>(n_in)), wu(static_cast<size_t>(n_in));
    for (int64_t k = k0; k < k1; ++k) {
      for (int64_t i = 0; i < n_in; ++i) {
        wg[size_t(i)] = m.weight(k, i);
        wu[size_t(i)] = m.weight(n_ff + k, i);
      }
      for (int t = 0; t < n_tokens; ++t) {
        double g = 0, gu = 0, up = 0, uu = 0;
        for (int64_t i = 0; i < n_in; ++i) {
          const double xv = xd[size_t(t) * n_in + i];
          g += wg[size_t(i)] * xv;
          gu += std::fabs(wg[size_t(i)] * xv);
          up += wu[size_t(i)] * xv;
          uu += std::fabs(wu[size_t(i)] * xv);
        }
        const double h = act_of(g) * up, err = std::fabs(frag_value(t, k) - h);
        const double bound = 1.1 * std::fabs(up) * 2e-4 * gu + std::fabs(act_of(g)) * 2e-4 * uu +
                             std::ldexp(std::fabs(h), -10) + 1e-6;
        p.bad += !(err <= bound);
        p.worst = std::max(p.worst, err / bound);
      }
    }
  });
  double worst = 0.0;
  size_t bad = 0;
  for (const Part& p : parts) {
    bad += p.bad;
    worst = std::max(worst, p.worst);
  }
  const bool same = a == b, again = b == b2;
  const bool failed = !same || !again || bad;
  if (failed) ++g_failures;
  std::printf("%-6s %-52s worst err/bound %.2f  %s%s%s\n", failed ? "FAIL" : "ok", name.c_str(), worst,
              same ? "" : "(differs from qgemv + gated_act_out) ", again ? "" : "(nondeterministic) ",
              bad ? "(outside the float64 bound)" : "");
}

// A row stride for y (qgemv's ldy: how the parts of a stack packed in different formats fill one
// output): the outputs equal the plain launch's bit for bit (the same kernel and launch shape), token t's
// at y + t * ldy, and nothing between the rows (n_out .. ldy) or past the last is written. An ldy below
// n_out is refused.
void check_strided_case(const QuantSpec& spec, int64_t n_out, int64_t n_in, int n_tokens, std::mt19937_64& rng) {
  ++g_cases;
  const std::string name = spec_name(spec) + " " + std::to_string(n_out) + "x" + std::to_string(n_in) +
                           " n=" + std::to_string(n_tokens) + " ldy=n_out+37";
  const int64_t ldy = n_out + 37;
  const HostMatrix m = random_matrix(spec, n_out, n_in, rng);
  std::vector<uint16_t> x;
  std::vector<double> xd;
  random_activations(spec.format == WeightFormat::BF16, size_t(n_tokens) * n_in, rng, x, xd);
  const DeviceMatrix dw = upload(pack(m));
  void *dx = nullptr, *dxf = nullptr;
  float *dy = nullptr, *ds = nullptr;
  const size_t ny = size_t(n_tokens) * n_out, ns = size_t(n_tokens) * ldy;
  QB_CUDA_OK(cudaMalloc(&dx, x.size() * 2));
  QB_CUDA_OK(cudaMalloc(&dxf, activation_frag_bytes(n_in, n_tokens)));
  QB_CUDA_OK(cudaMalloc(&dy, (ny + kGuard) * sizeof(float)));
  QB_CUDA_OK(cudaMalloc(&ds, (ns + kGuard) * sizeof(float)));
  QB_CUDA_OK(cudaMemcpy(dx, x.data(), x.size() * 2, cudaMemcpyHostToDevice));
  pack_activations(dx, spec.format == WeightFormat::BF16, n_tokens, n_in, dxf, nullptr);
  std::vector<float> y, y2, st(ns + kGuard, kSentinel);
  QgemvConfig ran;
  run_poisoned_twice(dy, ny, [&](int) { ran = qgemv(dw, dxf, n_tokens, dy, nullptr); }, y, y2);
  QB_CUDA_OK(cudaMemcpy(ds, st.data(), st.size() * sizeof(float), cudaMemcpyHostToDevice));
  qgemv(dw, dxf, n_tokens, ds, nullptr, ran, nullptr, ldy);
  QB_CUDA_OK(cudaDeviceSynchronize());
  QB_CUDA_OK(cudaMemcpy(st.data(), ds, st.size() * sizeof(float), cudaMemcpyDeviceToHost));
  bool threw = false;
  try { qgemv(dw, dxf, n_tokens, ds, nullptr, ran, nullptr, n_out - 1); } catch (const std::invalid_argument&) { threw = true; }
  for (void* p : {dx, dxf, static_cast<void*>(dy), static_cast<void*>(ds)}) QB_CUDA_OK(cudaFree(p));
  int differ = 0, stray = 0;
  for (size_t k = 0; k < ns + kGuard; ++k) {
    const size_t t = k / size_t(ldy), o = k % size_t(ldy);
    if (k < ns && o < size_t(n_out)) differ += std::memcmp(&st[k], &y[t * size_t(n_out) + o], 4) != 0;
    else stray += st[k] != kSentinel;
  }
  CHECK(differ == 0, "%s: %d outputs differ from the unstrided launch", name.c_str(), differ);
  CHECK(stray == 0, "%s: %d writes between or past the strided rows", name.c_str(), stray);
  CHECK(threw, "%s: an ldy below n_out was accepted", name.c_str());
  std::printf("%-6s %s\n", differ || stray || !threw ? "FAIL" : "ok", name.c_str());
}

// dequantize_packed (the prefill path) must give, for every weight, the f16 (or bf16) rounding of its
// exact value (products q * s are exact in f32, so one rounding); a poisoned output plus a guard.
// pack_activations_f32 must give the same fragments, bit for bit, as pack_activations of the host-
// rounded activations.
void check_dequant_and_pack_f32(const QuantSpec& spec, int64_t n_out, int64_t n_in, std::mt19937_64& rng) {
  ++g_cases;
  const std::string name = "dequantize_packed " + spec_name(spec) + " " + std::to_string(n_out) + "x" + std::to_string(n_in);
  const HostMatrix m = random_matrix(spec, n_out, n_in, rng);
  const DeviceMatrix dw = upload(pack(m));
  const bool bf = spec.format == WeightFormat::BF16;
  const size_t n = size_t(n_out * n_in), guard = 512;
  uint16_t* d = nullptr;
  QB_CUDA_OK(cudaMalloc(&d, (n + guard) * 2));
  QB_CUDA_OK(cudaMemset(d, 0xff, (n + guard) * 2));
  dequantize_packed(dw, bf, d, nullptr);
  std::vector<uint16_t> got(n + guard);
  QB_CUDA_OK(cudaMemcpy(got.data(), d, got.size() * 2, cudaMemcpyDeviceToHost));
  QB_CUDA_OK(cudaFree(d));
  size_t bad = 0, guard_hit = 0;
  for (int64_t o = 0; o < n_out; ++o)
    for (int64_t i = 0; i < n_in; ++i) {
      const float w = float(m.weight(o, i));
      const uint16_t want = bf ? to_bf16(w) : to_f16(w);
      bad += got[size_t(o * n_in + i)] != want;
    }
  for (size_t i = n; i < n + guard; ++i) guard_hit += got[i] != 0xffff;
  CHECK(bad == 0 && guard_hit == 0, "%s: %zu weights differ, %zu guard writes", name.c_str(), bad, guard_hit);

  for (int nt : {1, 5, 16}) {
    ++g_cases;
    std::uniform_real_distribution<float> u(-3.f, 3.f);
    std::vector<float> x(size_t(nt * n_in));
    std::vector<uint16_t> xr(x.size());
    for (size_t i = 0; i < x.size(); ++i) {
      x[i] = u(rng);
      xr[i] = bf ? to_bf16(x[i]) : to_f16(x[i]);
    }
    const size_t fb = activation_frag_bytes(n_in, nt);
    void *dx = nullptr, *dxr = nullptr, *f1 = nullptr, *f2 = nullptr;
    QB_CUDA_OK(cudaMalloc(&dx, x.size() * 4));
    QB_CUDA_OK(cudaMalloc(&dxr, xr.size() * 2));
    QB_CUDA_OK(cudaMalloc(&f1, fb));
    QB_CUDA_OK(cudaMalloc(&f2, fb));
    QB_CUDA_OK(cudaMemcpy(dx, x.data(), x.size() * 4, cudaMemcpyHostToDevice));
    QB_CUDA_OK(cudaMemcpy(dxr, xr.data(), xr.size() * 2, cudaMemcpyHostToDevice));
    QB_CUDA_OK(cudaMemset(f1, 0xff, fb));
    QB_CUDA_OK(cudaMemset(f2, 0x00, fb));
    pack_activations_f32(static_cast<const float*>(dx), bf, nt, n_in, f1, nullptr);
    pack_activations(dxr, bf, nt, n_in, f2, nullptr);
    std::vector<uint8_t> a(fb), b(fb);
    QB_CUDA_OK(cudaMemcpy(a.data(), f1, fb, cudaMemcpyDeviceToHost));
    QB_CUDA_OK(cudaMemcpy(b.data(), f2, fb, cudaMemcpyDeviceToHost));
    for (void* q : {dx, dxr, f1, f2}) QB_CUDA_OK(cudaFree(q));
    CHECK(a == b, "pack_activations_f32 %s n_in %lld n=%d differs from pack_activations", bf ? "bf16" : "f16",
          (long long)n_in, nt);
  }
  std::printf("%-6s %s (+ pack_activations_f32 n = 1, 5, 16)\n", g_failures ? "?" : "ok", name.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  // "qgemm": the prefill product's checks only (a short GPU call for qgemm work);
  // "forward": the forward pass kernels' (forward_kernels_check.cu).
  const bool qgemm_only = argc > 1 && std::strcmp(argv[1], "qgemm") == 0;
  const bool forward_only = argc > 1 && std::strcmp(argv[1], "forward") == 0;
  // "spec NAME" (e.g. spec w4g32): the decode product's per-format checks of that one
  // format (a short GPU call after a change to one format's kernels).
  const char* only_spec = argc > 2 && std::strcmp(argv[1], "spec") == 0 ? argv[2] : nullptr;
  try {
    std::random_device rd;
    const uint64_t seed = (uint64_t(rd()) << 32) ^ rd();  // fresh inputs every run; printed to replay
    std::printf("seed %llu\n", (unsigned long long)seed);
    std::mt19937_64 rng(seed);
    const auto t_start = std::chrono::steady_clock::now();

    // (pack() and unpack() themselves, host code, are checked by the CPU suite: tests/runtime/packed_layout_test.cpp)
    int dev_count = 0;
    if (cudaGetDeviceCount(&dev_count) != cudaSuccess || dev_count == 0) {
      std::printf("GPU checks SKIPPED: no CUDA device\n");
      return 2;
    }
    cudaDeviceProp prop{};
    QB_CUDA_OK(cudaGetDeviceProperties(&prop, 0));
    std::printf("device: %s, %d SMs\n", prop.name, prop.multiProcessorCount);
    if (qgemm_only) {
      g_failures += run_qgemm_checks(rng, &g_cases);
      std::printf("%s: %d cases (qgemm only), %d failures\n", g_failures ? "FAILED" : "PASSED", g_cases, g_failures);
      return g_failures ? 1 : 0;
    }
    if (forward_only) {
      g_failures += run_forward_kernel_checks(seed, &g_cases);
      std::printf("%s: %d cases (forward kernels only), %d failures\n", g_failures ? "FAILED" : "PASSED", g_cases,
                  g_failures);
      return g_failures ? 1 : 0;
    }

    std::vector<QuantSpec> run_specs;
    for (const auto& s : qb::test_formats::kEveryPackedFormat)
      if (!only_spec || spec_name(s) == only_spec) run_specs.push_back(s);
    if (run_specs.empty()) {
      std::printf("FAILED: no format named %s\n", only_spec);
      return 1;
    }
    struct Shape { int64_t n_out, n_in; };
    for (const auto& s : run_specs) {
      // Ragged shapes: rows not a multiple of 16, inputs not a multiple of 64 (where the format allows).
      std::vector<Shape> shapes = {{1, 128}, {17, 384}, {333, 640}, {1000, 1152}, {4096, 4096}};
      if (s.group != 128) {
        shapes.push_back({50, 96});
        shapes.push_back({129, 1120});
      }
      if (s.format == WeightFormat::BF16) shapes.push_back({70, 40});
      for (const auto& sh : shapes)
        for (int n : {1, 3, 8, 9, 16}) {
          if (sh.n_out * sh.n_in >= 4096 * 4096 && n != 1 && n != 16) continue;
          check_case(s, sh.n_out, sh.n_in, n, {}, rng);
        }
      // Every launch shape the kernels offer, on a shape that exercises all their edges.
      for (int r : {1, 2, 4})
        for (int w : {1, 3, 8, 16})
          for (int n : {1, 16}) check_case(s, 333, s.group == 128 ? 1152 : 1120, n, {r, w}, rng);
      // The half step (int4's kernels; ignored by the other formats).
      for (int r : {1, 2, 4})
        for (int w : {1, 3, 16})
          for (int n : {1, 9, 16}) check_case(s, 333, s.group == 128 ? 1152 : 1120, n, {r, w, false, true}, rng);
      // With the programmatic-dependent-launch path. pack_activations never triggers an early
      // launch, so this checks that launch path and the wait instruction, not an actual overlap.
      check_case(s, 1000, 1152, 9, {0, 0, true}, rng);
      // The launch rules' q|k|v-like ("mid") and wider ("big") grids, and ragged rows there.
      if (s.format != WeightFormat::BF16)
        for (int n : {1, 16}) {
          check_case(s, 12288, 1024, n, {}, rng);
          check_case(s, 22000, 256, n, {}, rng);
        }
    }
    for (const auto& s : run_specs)
      for (const auto& sh : std::vector<Shape>{{17, 384}, {333, 640}, {1000, 1152}})
        check_dequant_and_pack_f32(s, sh.n_out, sh.n_in, rng);
    for (const auto& s : run_specs)
      for (int n : {1, 9, 16}) check_strided_case(s, 333, s.group == 128 ? 1152 : 1120, n, rng);
    if (only_spec) {
      std::printf("%s: %d cases (%s only), %d failures\n", g_failures ? "FAILED" : "PASSED", g_cases, only_spec,
                  g_failures);
      return g_failures ? 1 : 0;
    }
    check_dequant_and_pack_f32({WeightFormat::W8A16, 0, false}, 50, 96, rng);
    check_dequant_and_pack_f32({WeightFormat::W4A16, 32, true}, 129, 1120, rng);
    check_dequant_and_pack_f32({WeightFormat::W4A16, 32, false, true}, 129, 1120, rng);
    // A Llama-2-7B down projection at n = 4 (long input, K = 11008 = 86 groups of 128).
    check_case({WeightFormat::W4A16, 128, true}, 4096, 11008, 4, {}, rng);
    check_case({WeightFormat::W4A16, 128, false}, 4096, 11008, 16, {}, rng);  // R = 2 with as many warps as fit
    check_case({WeightFormat::W8A16, 0, false}, 4096, 11008, 4, {}, rng);
    check_case({WeightFormat::W8A16, 32, false}, 4096, 11008, 4, {}, rng);
    for (int n : {1, 16}) check_case({WeightFormat::W8A16, 16, false}, 4096, 11008, n, {}, rng);  // (Q6_K's down)
    for (int n : {1, 16}) check_case({WeightFormat::W8A16, 32, false, true}, 4096, 11008, n, {}, rng);  // (Q5_K's)
    for (int n : {1, 16}) check_case({WeightFormat::W8A16, 32, false, true}, 22016, 4096, n, {}, rng);  // (R = 4 x 4 at 16)
    for (int n : {1, 16}) check_case({WeightFormat::W8A16, 16, false, true}, 4096, 11008, n, {}, rng);  // (Q2_K's)
    for (int n : {1, 16}) check_case({WeightFormat::W8A16, 16, false, true}, 22016, 4096, n, {}, rng);
    // Launch rules 6 and 7's shapes for symmetric w4g128 at Llama sizes (the half step, 16 warps, R = 2;
    // rule 7 takes R = 2 with 16 warps for the down projection at 16 tokens: a ping-pong loop over 172
    // chunks that ends on a half iteration).
    for (int n : {1, 16}) {
      check_case({WeightFormat::W4A16, 128, false}, 4096, 11008, n, {1, 16, false, true}, rng);
      check_case({WeightFormat::W4A16, 128, false}, 12288, 4096, n, {2, n > 8 ? 4 : 8, false, true}, rng);
    }
    check_case({WeightFormat::W4A16, 128, false}, 4096, 11008, 16, {2, 16, false, true}, rng);
    // The asymmetric half step (launch rule 8) at the same Llama sizes: the rule's shapes (auto: R = 1 x 6
    // warps on the wider grids at one token, R = 2 at 16), R = 2 at one token, and the gated epilogue.
    for (int n : {1, 16}) {
      check_case({WeightFormat::W4A16, 128, true}, 4096, 11008, n, {n > 8 ? 2 : 1, 16, false, true}, rng);
      check_case({WeightFormat::W4A16, 128, true}, 12288, 4096, n, {}, rng);
      check_case({WeightFormat::W4A16, 128, true}, 22016, 4096, n, {}, rng);
      check_gated_case({WeightFormat::W4A16, 128, true}, 11008, 4096, n, {2, n > 8 ? 2 : 4, false, true}, 0, rng);
    }
    check_case({WeightFormat::W4A16, 128, true}, 12288, 4096, 1, {2, 8, false, true}, rng);
    // Rule 6's copy loop asked of the asymmetric and group-32 half steps: it exists for symmetric w4g128
    // only, so the ping-pong runs and the report says so.
    check_case({WeightFormat::W4A16, 128, true}, 333, 1152, 16, {2, 3, false, true, true}, rng);
    check_case({WeightFormat::W4A16, 32, false}, 333, 1152, 16, {2, 3, false, true, true}, rng);
    // The w4g32 half step where a warp's last step ends past the last chunk (an odd chunk count: 17
    // chunks, the last full at 1088 inputs, half padding at 1056), at both row-block counts, ragged
    // tokens; at Llama sizes with the rule's shapes; and the gated epilogue.
    // w4g32 with mins (GGUF Q4_1 / Q4_K) likewise (its half step at R = 1 and 2).
    for (int ofs : {0, 1, 2}) {
      const QuantSpec g32{WeightFormat::W4A16, 32, ofs == 1, ofs == 2};
      for (int n_in : {1088, 1056})
        for (int r : {1, 2})
          for (int n : {1, 9, 16}) check_case(g32, 333, n_in, n, {r, 3, false, true}, rng);
      for (int w : {6, 12})  // (the warp counts of the rules for mins that the loops above do not ask for)
        for (int n : {1, 16}) check_case(g32, 333, 1088, n, {1, w, false, true}, rng);
      for (int n : {1, 16}) check_case(g32, 12288, 4096, n, {}, rng);
      for (int n : {1, 16}) check_case(g32, 6144, 4096, n, {}, rng);  // a GQA q|k|v (Llama-3-8B's)
      check_case(g32, 4096, 11008, 16, {}, rng);
      if (ofs == 0) check_gated_case(g32, 11008, 4096, 16, {2, 2, false, true}, 0, rng);  // (the rule's R = 2)
      if (ofs != 2) check_gated_case(g32, 320, 1088, 9, {2, 3, false, true}, 1, rng);
    }
    for (int n : {1, 16}) check_case({WeightFormat::W4A16, 32, false, true}, 4096, 11008, n, {}, rng);
    // Rule 6's 16-token half step at R = 2 (the loop with a copy between its step buffers, kept for A/B
    // runs): an odd row-block count, ragged tokens, 172 chunks, and the gated epilogue.
    for (int n : {9, 16}) check_case({WeightFormat::W4A16, 128, false}, 333, 1152, n, {2, 3, false, true, true}, rng);
    check_case({WeightFormat::W4A16, 128, false}, 4096, 11008, 16, {2, 8, false, true, true}, rng);
    check_gated_case({WeightFormat::W4A16, 128, false}, 11008, 4096, 16, {2, 8, false, true, true}, 0, rng);

    // The fused gated epilogue: every format at an even row-block count, ragged token counts, both
    // activations; launch rule 6's shapes at a Llama-2-7B gate|up (n_ff 11008, the half step's R = 2).
    for (const auto& s : qb::test_formats::kEveryPackedFormat)
      for (int r : {2, 4})
        for (int n : {1, 9, 16})
          if (!s.mins) check_gated_case(s, 192, s.group == 128 ? 1152 : 1120, n, {r, 3}, n == 9, rng);
    for (int n : {1, 16}) check_gated_case({WeightFormat::W4A16, 128, false}, 11008, 4096, n, {}, 0, rng);
    check_gated_case({WeightFormat::W8A16, 0, false}, 1024, 4096, 16, {}, 0, rng);  // R = 4 (rule "big")
    check_gated_case({WeightFormat::W4A16, 128, false}, 320, 1152, 16, {2, 8, false, true}, 1, rng);
    {  // refused where it cannot run: R = 1, or n_out / 2 not a multiple of 64
      const DeviceMatrix dw = upload(pack(random_matrix({WeightFormat::W4A16, 128, false}, 192, 256, rng)));
      QgemvGatedOut go;
      go.frag = dw.weights.get();
      go.n = 96;
      for (QgemvConfig c : {QgemvConfig{1, 4}, QgemvConfig{2, 4}}) {
        bool threw = false;
        try { qgemv(dw, nullptr, 1, nullptr, nullptr, c, &go); } catch (const std::invalid_argument&) { threw = true; }
        ++g_cases;
        CHECK(threw, "gated epilogue accepted R = %d with n = 96", c.row_blocks_per_warp);
      }
    }
    {  // and for w4 with mins at any R (no gated kernel was built with mins)
      const QuantSpec g32m{WeightFormat::W4A16, 32, false, true};
      const DeviceMatrix dw = upload(pack(random_matrix(g32m, 256, 256, rng)));
      QgemvGatedOut go;
      go.frag = dw.weights.get();
      go.n = 128;
      bool threw = false;
      try { qgemv(dw, nullptr, 1, nullptr, nullptr, {2, 4}, &go); } catch (const std::invalid_argument&) { threw = true; }
      ++g_cases;
      CHECK(threw, "gated epilogue accepted for w4g32m");
      threw = false;  // w8 with mins: no gated kernel
      const DeviceMatrix dw8 = upload(pack(random_matrix({WeightFormat::W8A16, 32, false, true}, 256, 256, rng)));
      try { qgemv(dw8, nullptr, 1, nullptr, nullptr, {2, 4}, &go); } catch (const std::invalid_argument&) { threw = true; }
      ++g_cases;
      CHECK(threw, "gated epilogue accepted for w8g32m");
      threw = false;
      const DeviceMatrix dw16 = upload(pack(random_matrix({WeightFormat::W8A16, 16, false, true}, 256, 256, rng)));
      try { qgemv(dw16, nullptr, 1, nullptr, nullptr, {2, 4}, &go); } catch (const std::invalid_argument&) { threw = true; }
      ++g_cases;
      CHECK(threw, "gated epilogue accepted for w8g16m");
    }

    const double t_decode = seconds_since(t_start);
    g_failures += run_forward_kernel_checks(seed, &g_cases);
    const double t_forward = seconds_since(t_start);
    g_failures += run_qgemm_checks(rng, &g_cases);
    std::printf("time: decode products %.0f s, forward kernels %.0f s, qgemm %.0f s (%u host threads)\n", t_decode,
                t_forward - t_decode, seconds_since(t_start) - t_forward, std::thread::hardware_concurrency());

    bool threw = false;
    try { qgemv(upload(pack(random_matrix({}, 16, 64, rng))), nullptr, 17, nullptr, nullptr); }
    catch (const std::invalid_argument&) { threw = true; }
    ++g_cases;
    CHECK(threw, "n_tokens = 17 accepted");
  } catch (const std::exception& e) {
    std::printf("FAIL: exception: %s\n", e.what());
    return 1;
  }
  std::printf("%s: %d cases, %d failures\n", g_failures ? "FAILED" : "PASSED", g_cases, g_failures);
  return g_failures ? 1 : 0;
}
