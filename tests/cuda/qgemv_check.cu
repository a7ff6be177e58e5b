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
// tol_elem 2e-4 of sum |w x| (K up to 11008), tol_l2 1e-5.
// A wrong layout, scale, zero point or token mapping gives errors of order 1, far above these.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "quantbench/runtime/cuda/cuda_check.h"
#include "quantbench/runtime/cuda/qgemv.h"
#include "check_util.h"

using namespace qb::runtime::cuda;
using namespace qb::cuda_checks;

int run_forward_kernel_checks(uint64_t seed, int* cases);  // forward_kernels_check.cu
int run_qgemm_checks(std::mt19937_64& rng, int* cases);    // qgemm_check.cu

namespace {

int g_failures = 0, g_cases = 0;

#define CHECK(cond, ...) QB_COUNT_CHECK(g_failures, cond, __VA_ARGS__)

struct Tol { double elem, l2; };
Tol tolerance(const QuantSpec& s) {
  (void)s;
  return Tol{2e-4, 1e-5};
}

void check_case(const QuantSpec& spec, int64_t n_out, int64_t n_in, int n_tokens, QgemvConfig cfg,
                std::mt19937_64& rng) {
  ++g_cases;
  std::string name = spec_name(spec) + " " + std::to_string(n_out) + "x" + std::to_string(n_in) +
                     " n=" + std::to_string(n_tokens);
  const HostMatrix m = random_matrix(spec, n_out, n_in, rng);
  const bool bf16_act = spec.format == WeightFormat::BF16;
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<uint16_t> x(size_t(n_tokens) * n_in);
  std::vector<double> xd(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    x[i] = bf16_act ? to_bf16(u(rng)) : to_f16(u(rng));
    xd[i] = bf16_act ? from_bf16(x[i]) : from_f16(x[i]);
  }

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
          (ran.half_step ? " half-step" : "");
  CHECK(ran.half_step == (cfg.half_step && spec.format == WeightFormat::W4A16 && spec.group == 128 && !spec.asym &&
                          ran.row_blocks_per_warp <= 2) || cfg.row_blocks_per_warp == 0,
        "%s: the half step %s asked for and %s", name.c_str(), cfg.half_step ? "was" : "was not",
        ran.half_step ? "ran" : "did not run");
  const Tol tol = tolerance(spec);
  const ProductErrors e =
      product_errors([&](int64_t o, int64_t i) { return m.weight(o, i); }, xd, y, n_out, n_in, n_tokens, tol.elem);
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

void check_pack_roundtrip(std::mt19937_64& rng) {
  const QuantSpec specs[] = {{WeightFormat::BF16, 0, false}, {WeightFormat::W8A16, 0, false},
                             {WeightFormat::W8A16, 32, false}, {WeightFormat::W4A16, 32, false}, {WeightFormat::W4A16, 32, true},
                             {WeightFormat::W4A16, 128, true}};
  for (const auto& s : specs) {
    const int64_t n_in = s.group == 128 ? 256 : 96;
    const HostMatrix m = random_matrix(s, 37, n_in, rng);
    const HostMatrix r = unpack(pack(m));
    ++g_cases;
    CHECK(r.bf16 == m.bf16 && r.q8 == m.q8 && r.q4 == m.q4 && r.scales == m.scales && r.zeros == m.zeros,
          "%s: unpack(pack(m)) != m", spec_name(s).c_str());
  }
  // Impossible shapes are refused, not packed wrongly.
  bool threw = false;
  try { packed_shape({WeightFormat::W4A16, 128, false}, 16, 4160); } catch (const std::invalid_argument&) { threw = true; }
  ++g_cases;
  CHECK(threw, "w4g128 with n_in %% 128 != 0 accepted");
  threw = false;
  try { packed_shape({WeightFormat::W4A16, 64, false}, 16, 128); } catch (const std::invalid_argument&) { threw = true; }
  ++g_cases;
  CHECK(threw, "w4 group 64 accepted");
}

}  // namespace

int main() {
  try {
    std::random_device rd;
    const uint64_t seed = (uint64_t(rd()) << 32) ^ rd();  // fresh inputs every run; printed to replay
    std::printf("seed %llu\n", (unsigned long long)seed);
    std::mt19937_64 rng(seed);

    check_pack_roundtrip(rng);  // host only: runs (and can fail) without a GPU, e.g. under ASan here
    int dev_count = 0;
    if (cudaGetDeviceCount(&dev_count) != cudaSuccess || dev_count == 0) {
      std::printf("%s: host checks %d cases, %d failures; GPU checks SKIPPED: no CUDA device\n",
                  g_failures ? "FAILED" : "PASSED", g_cases, g_failures);
      return g_failures ? 1 : 2;
    }
    cudaDeviceProp prop{};
    QB_CUDA_OK(cudaGetDeviceProperties(&prop, 0));
    std::printf("device: %s, %d SMs\n", prop.name, prop.multiProcessorCount);

    const QuantSpec specs[] = {{WeightFormat::BF16, 0, false},   {WeightFormat::W8A16, 0, false},
                               {WeightFormat::W8A16, 32, false},
                               {WeightFormat::W4A16, 32, false}, {WeightFormat::W4A16, 32, true},
                               {WeightFormat::W4A16, 128, false}, {WeightFormat::W4A16, 128, true}};
    struct Shape { int64_t n_out, n_in; };
    for (const auto& s : specs) {
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
      // The half step (symmetric w4g128's kernel under launch rule 6; ignored by the other formats).
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
    for (const auto& s : specs)
      for (const auto& sh : std::vector<Shape>{{17, 384}, {333, 640}, {1000, 1152}})
        check_dequant_and_pack_f32(s, sh.n_out, sh.n_in, rng);
    check_dequant_and_pack_f32({WeightFormat::W8A16, 0, false}, 50, 96, rng);
    check_dequant_and_pack_f32({WeightFormat::W4A16, 32, true}, 129, 1120, rng);
    // A Llama-2-7B down projection at n = 4 (long input, K = 11008 = 86 groups of 128).
    check_case({WeightFormat::W4A16, 128, true}, 4096, 11008, 4, {}, rng);
    check_case({WeightFormat::W4A16, 128, false}, 4096, 11008, 16, {}, rng);  // R = 2 with as many warps as fit
    check_case({WeightFormat::W8A16, 0, false}, 4096, 11008, 4, {}, rng);
    check_case({WeightFormat::W8A16, 32, false}, 4096, 11008, 4, {}, rng);
    // Launch rule 6's shapes for symmetric w4g128 at Llama sizes (the half step, 16 warps, R = 2).
    for (int n : {1, 16}) {
      check_case({WeightFormat::W4A16, 128, false}, 4096, 11008, n, {1, 16, false, true}, rng);
      check_case({WeightFormat::W4A16, 128, false}, 12288, 4096, n, {2, n > 8 ? 4 : 8, false, true}, rng);
    }

    g_failures += run_forward_kernel_checks(seed, &g_cases);
    g_failures += run_qgemm_checks(rng, &g_cases);

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
