// Pieces the CUDA kernel checks share (qgemv_check.cu, qgemm_check.cu, forward_kernels_check.cu; one
// executable, no gtest on the GPU machine): a check macro that counts failures in the caller's counter,
// 16-bit conversions, random packed matrices, the poisoned double launch, and the error of a product
// against its float64 reference.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
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

// Fresh random weights in any packed format: bf16 values in +-0.05; int8 codes with f16 scales around
// 1.5e-3; 4-bit codes with f16 scales around 6e-3 and (asymmetric) 4-bit zero points, or (with mins)
// f16 mins between -9 and -6 times the group's scale.
inline HostMatrix random_matrix(const QuantSpec& spec, int64_t n_out, int64_t n_in, std::mt19937_64& rng) {
  HostMatrix m;
  m.spec = spec;
  m.n_out = n_out;
  m.n_in = n_in;
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  const size_t n = size_t(n_out * n_in);
  if (spec.format == WeightFormat::BF16) {
    m.bf16.resize(n);
    for (auto& v : m.bf16) v = to_bf16(0.05f * u(rng));
  } else if (spec.format == WeightFormat::W8A16) {
    m.q8.resize(n);
    std::uniform_int_distribution<int> q(-128, 127);
    for (auto& v : m.q8) v = int8_t(q(rng));
    m.scales.resize(size_t(spec.group ? n_out * (n_in / spec.group) : n_out));
    for (auto& s : m.scales) s = to_f16(1e-3f * (1.5f + u(rng)));
    if (spec.mins) {  // (w8g32m: q is centred already, -128..127; m within 1.5 s of 0)
      m.mins.resize(m.scales.size());
      for (size_t g = 0; g < m.mins.size(); ++g) m.mins[g] = to_f16(float(1.5 * u(rng) * from_f16(m.scales[g])));
    }
  } else {
    m.q4.resize(n);
    std::uniform_int_distribution<int> q(0, 15);
    for (auto& v : m.q4) v = uint8_t(q(rng));
    const size_t ng = size_t(n_out * (n_in / spec.group));
    m.scales.resize(ng);
    for (auto& s : m.scales) s = to_f16(4e-3f * (1.5f + u(rng)));
    if (spec.asym) {
      m.zeros.resize(ng);
      for (auto& z : m.zeros) z = uint8_t(q(rng));
    }
    if (spec.mins) {
      m.mins.resize(ng);
      for (size_t g = 0; g < ng; ++g) m.mins[g] = to_f16(float(-(7.5 + 1.5 * u(rng)) * from_f16(m.scales[g])));
    }
  }
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
  ProductErrors r;
  std::vector<double> w(static_cast<size_t>(n_in));
  double err2 = 0, ref2 = 0;
  for (int64_t o = 0; o < n_out; ++o) {
    for (int64_t i = 0; i < n_in; ++i) w[size_t(i)] = weight(o, i);
    for (int t = 0; t < n_tokens; ++t) {
      const double* xt = &xd[size_t(t) * n_in];
      double ref = 0, mag = 0;
      for (int64_t i = 0; i < n_in; ++i) {
        ref += w[size_t(i)] * xt[i];
        mag += std::fabs(w[size_t(i)] * xt[i]);
      }
      const double got = y[size_t(t) * n_out + o];
      if (!std::isfinite(got)) { ++r.not_finite; continue; }
      const double e = std::fabs(got - ref);
      err2 += e * e;
      ref2 += ref * ref;
      if (mag > 0) r.worst = std::max(r.worst, e / mag);
      if (e > tol_elem * mag + 1e-30) ++r.bad_elem;
    }
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
