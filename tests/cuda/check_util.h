// Pieces the CUDA kernel checks share (qgemv_check.cu, qgemm_check.cu, forward_kernels_check.cu; one
// executable, no gtest on the GPU machine): a check macro that counts failures in the caller's counter,
// 16-bit conversions, random packed matrices, the poisoned double launch, and the error of a product
// against its float64 reference.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <thread>
#include <vector>

#include "quantbench/runtime/cuda/cuda_check.h"
#include "quantbench/runtime/cuda/qgemv.h"

// Prints a FAIL line (file, line, condition, message) and increments `counter` when cond is false.
#define QB_COUNT_CHECK(counter, cond, ...)                        \
  do {                                                            \
    if (!(cond)) {                                                \
      std::printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
      std::printf(__VA_ARGS__);                                   \
      std::printf("\n");                                          \
      ++(counter);                                                \
    }                                                             \
  } while (0)

namespace qb::cuda_checks {

using runtime::cuda::HostMatrix;
using runtime::cuda::QuantSpec;
using runtime::cuda::WeightFormat;

inline uint16_t to_f16(float f) { return __half_raw(__float2half_rn(f)).x; }
inline uint16_t to_bf16(float f) { return __nv_bfloat16_raw(__float2bfloat16_rn(f)).x; }
inline double from_f16(uint16_t u) {
  __half_raw r;
  r.x = u;
  return double(__half2float(__half(r)));
}
inline double from_bf16(uint16_t u) {
  __nv_bfloat16_raw r;
  r.x = u;
  return double(__bfloat162float(__nv_bfloat16(r)));
}

// Runs body(first_row, end_row) over [0, n_rows) in fixed chunks of kRowChunk rows on the host's cores.
// The float64 references and the random matrices at Llama sizes (up to 90M weights x 16 tokens) are
// most of a run's time on one core; the GPU machine has 16. The chunks do not depend on the thread count,
// so a seed gives the same matrices on any machine.
constexpr int64_t kRowChunk = 256;
template <class Body>
void for_row_chunks(int64_t n_rows, Body body) {
  const int64_t chunks = (n_rows + kRowChunk - 1) / kRowChunk;
  const int64_t threads = std::min<int64_t>(chunks, std::clamp<int64_t>(std::thread::hardware_concurrency(), 1, 32));
  std::atomic<int64_t> next{0};
  auto worker = [&] {
    for (int64_t c; (c = next.fetch_add(1)) < chunks;) body(c * kRowChunk, std::min(n_rows, (c + 1) * kRowChunk));
  };
  std::vector<std::thread> pool;
  for (int64_t t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
}

// Fresh random weights in any packed format: bf16 values in +-0.05; int8 codes with f16 scales around
// 1.5e-3; 4-bit codes with f16 scales around 6e-3 and (asymmetric) 4-bit zero points, or (with mins)
// f16 mins between -9 and -6 times the group's scale. One draw from rng seeds each chunk of rows.
inline HostMatrix random_matrix(const QuantSpec& spec, int64_t n_out, int64_t n_in, std::mt19937_64& rng) {
  HostMatrix m;
  m.spec = spec;
  m.n_out = n_out;
  m.n_in = n_in;
  const size_t n = size_t(n_out * n_in);
  const int64_t per_row = spec.format == WeightFormat::W8A16 && !spec.group ? 1
                          : spec.format == WeightFormat::BF16            ? 0
                                                                         : n_in / spec.group;  // groups per row
  if (spec.format == WeightFormat::BF16) m.bf16.resize(n);
  if (spec.format == WeightFormat::W8A16) m.q8.resize(n);
  if (spec.format == WeightFormat::W4A16) m.q4.resize(n);
  m.scales.resize(size_t(n_out * per_row));
  if (spec.asym) m.zeros.resize(m.scales.size());
  if (spec.mins) m.mins.resize(m.scales.size());
  const uint64_t base = rng();
  for_row_chunks(n_out, [&](int64_t r0, int64_t r1) {
    std::mt19937_64 g(base + uint64_t(r0 / kRowChunk) * 0x9E3779B97F4A7C15ull);
    std::uniform_real_distribution<float> u(-1.f, 1.f);
    std::uniform_int_distribution<int> q8(-128, 127), q4(0, 15);
    const size_t w0 = size_t(r0 * n_in), w1 = size_t(r1 * n_in), s0 = size_t(r0 * per_row), s1 = size_t(r1 * per_row);
    if (spec.format == WeightFormat::BF16) {
      for (size_t k = w0; k < w1; ++k) m.bf16[k] = to_bf16(0.05f * u(g));
    } else if (spec.format == WeightFormat::W8A16) {
      for (size_t k = w0; k < w1; ++k) m.q8[k] = int8_t(q8(g));
      for (size_t k = s0; k < s1; ++k) m.scales[k] = to_f16(1e-3f * (1.5f + u(g)));
      for (size_t k = s0; k < s1 && spec.mins; ++k)  // (w8g32m: q is centred already, -128..127; m within 1.5 s of 0)
        m.mins[k] = to_f16(float(1.5 * u(g) * from_f16(m.scales[k])));
    } else {
      for (size_t k = w0; k < w1; ++k) m.q4[k] = uint8_t(q4(g));
      for (size_t k = s0; k < s1; ++k) m.scales[k] = to_f16(4e-3f * (1.5f + u(g)));
      for (size_t k = s0; k < s1 && spec.asym; ++k) m.zeros[k] = uint8_t(q4(g));
      for (size_t k = s0; k < s1 && spec.mins; ++k)
        m.mins[k] = to_f16(float(-(7.5 + 1.5 * u(g)) * from_f16(m.scales[k])));
    }
  });
  return m;
}

// Output guard: kGuard floats past the ny outputs hold kSentinel before each launch.
constexpr size_t kGuard = 1024;
constexpr float kSentinel = 12345.5f;

// Runs launch() twice, each time on dy (ny outputs + kGuard) first filled with NaN (the outputs) and
// kSentinel (the guard); returns both results, guard included, for the checks below.
template <class Launch>
void run_poisoned_twice(float* dy, size_t ny, Launch launch, std::vector<float>& y, std::vector<float>& y2) {
  std::vector<float> poison(ny + kGuard, std::nanf(""));
  for (size_t i = ny; i < ny + kGuard; ++i) poison[i] = kSentinel;
  y.assign(ny + kGuard, 0.f);
  y2.assign(ny + kGuard, 0.f);
  for (int run = 0; run < 2; ++run) {
    QB_CUDA_OK(cudaMemcpy(dy, poison.data(), poison.size() * sizeof(float), cudaMemcpyHostToDevice));
    launch(run);
    QB_CUDA_OK(cudaDeviceSynchronize());
    QB_CUDA_OK(cudaMemcpy(run ? y2.data() : y.data(), dy, y.size() * sizeof(float), cudaMemcpyDeviceToHost));
  }
}

// y[t * n_out + o] (n_tokens x n_out, then the guard) against ref = sum_i weight(o, i) * xd[t][i] in
// float64, with mag = sum_i |weight(o, i) * xd[t][i]|.
struct ProductErrors {
  int not_finite = 0;  // outputs not written (still NaN) or not finite
  int bad_elem = 0;    // |y - ref| > tol_elem * mag
  int guard_hit = 0;   // guard values changed (writes past the output)
  double worst = 0;    // largest |y - ref| / mag
  double rel_l2 = 0;   // ||y - ref|| / ||ref|| over the finite outputs
};
template <class Weight>
ProductErrors product_errors(Weight weight, const std::vector<double>& xd, const std::vector<float>& y,
                             int64_t n_out, int64_t n_in, int n_tokens, double tol_elem) {
  struct Part { ProductErrors e; double err2 = 0, ref2 = 0; };
  std::vector<Part> parts(size_t((n_out + kRowChunk - 1) / kRowChunk));
  for_row_chunks(n_out, [&](int64_t o0, int64_t o1) {  // weight(o, i) must be safe to call from several threads
    Part& p = parts[size_t(o0 / kRowChunk)];
    std::vector<double> w(static_cast<size_t>(n_in));
    for (int64_t o = o0; o < o1; ++o) {
      for (int64_t i = 0; i < n_in; ++i) w[size_t(i)] = weight(o, i);
      for (int t = 0; t < n_tokens; ++t) {
        const double* xt = &xd[size_t(t) * n_in];
        double ref = 0, mag = 0;
        for (int64_t i = 0; i < n_in; ++i) {
          ref += w[size_t(i)] * xt[i];
          mag += std::fabs(w[size_t(i)] * xt[i]);
        }
        const double got = y[size_t(t) * n_out + o];
        if (!std::isfinite(got)) { ++p.e.not_finite; continue; }
        const double e = std::fabs(got - ref);
        p.err2 += e * e;
        p.ref2 += ref * ref;
        if (mag > 0) p.e.worst = std::max(p.e.worst, e / mag);
        if (e > tol_elem * mag + 1e-30) ++p.e.bad_elem;
      }
    }
  });
  ProductErrors r;
  double err2 = 0, ref2 = 0;
  for (const Part& p : parts) {  // (in chunk order: the same sums whatever the thread count)
    r.not_finite += p.e.not_finite;
    r.bad_elem += p.e.bad_elem;
    r.worst = std::max(r.worst, p.e.worst);
    err2 += p.err2;
    ref2 += p.ref2;
  }
  const size_t ny = size_t(n_tokens) * n_out;
  for (size_t i = ny; i < ny + kGuard; ++i) r.guard_hit += y[i] != kSentinel;
  r.rel_l2 = std::sqrt(err2 / std::max(ref2, 1e-300));
  return r;
}
// The weight the decode kernels multiply: exact, but with mins q * s + m rounded once to f16 (the
// exact value, which double holds, to nearest even), as their HFMA2 forms it.
inline double kernel_weight(const HostMatrix& m, int64_t o, int64_t i) {
  const double w = m.weight(o, i);
  return m.spec.mins ? double(__half2float(__double2half(w))) : w;
}

}  // namespace qb::cuda_checks
