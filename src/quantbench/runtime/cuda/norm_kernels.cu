// RMSNorm kernels (forward_kernels.h): rmsnorm_rows, and the residual add + RMSNorm of add_rmsnorm
// that writes its consumer's layout (ActOut), W8A8 codes included. Shared helpers: forward_common.cuh.
#include <cfloat>
#include <cmath>
#include <stdexcept>

#include "quantbench/runtime/cuda/cuda_check.h"
#include "quantbench/runtime/cuda/act_store.cuh"
#include "quantbench/runtime/cuda/w8a8_codes.cuh"
#include "quantbench/runtime/cuda/forward_kernels.h"
#include "quantbench/runtime/cuda/launch.cuh"
#include "quantbench/runtime/cuda/forward_common.cuh"

namespace qb::runtime::cuda {
namespace {

__device__ inline double block_sum(double v, double* sh) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, nw = blockDim.x / 32;
  if (lane == 0) sh[warp] = v;
  __syncthreads();
  double t = 0;
  for (int w = 0; w < nw; ++w) t += sh[w];
  __syncthreads();
  return t;
}

__global__ void rmsnorm_kernel(const float* x, float* y, const float* w, int n, int inner, int64_t outer_stride,
                               int64_t y_outer_stride, float eps, const int32_t* x_rows) {
  __shared__ double sh[32];
  const int r = blockIdx.x;
  const int64_t xo = x_rows ? x_rows[r / inner] : r / inner;
  const float* xr = x + xo * outer_stride + int64_t(r % inner) * n;
  float* yr = y + int64_t(r / inner) * y_outer_stride + int64_t(r % inner) * n;
  double ss = 0;
  for (int i = threadIdx.x; i < n; i += blockDim.x) ss += double(xr[i]) * xr[i];
  ss = block_sum(ss, sh);
  const float sc = float(1.0 / sqrt(ss / double(n) + double(eps)));
  for (int i = threadIdx.x; i < n; i += blockDim.x) yr[i] = w ? (xr[i] * sc) * w[i] : xr[i] * sc;
}

__global__ void add_rmsnorm_kernel(float* x, const float* add, const float* w, int n, int nt, float eps,
                                   const int32_t* rows, ActOut o) {
  pdl_enter();
  __shared__ float red[32];
  const int t = blockIdx.x;
  const int r = rows ? rows[t] : t;
  float* xr = x + size_t(r) * n;
  const float* ar = add ? add + size_t(r) * n : nullptr;
  float ss = 0.0f;
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    float v = xr[i];
    if (ar) {
      v += ar[i];
      xr[i] = v;
    }
    ss += v * v;
  }
  ss = block_reduce(ss, red, false);
  const float sc = 1.0f / sqrtf(ss / float(n) + eps);
  const int np = pair_count(o, n);
  for (int p = threadIdx.x; p < np; p += blockDim.x) {
    const int k = 2 * p;
    float a = 0.0f, b = 0.0f;  // xr[k] was written by thread k % blockDim: read after the barrier above
    if (k < n) a = w ? (xr[k] * sc) * w[k] : xr[k] * sc;
    if (k + 1 < n) b = w ? (xr[k + 1] * sc) * w[k + 1] : xr[k + 1] * sc;
    store_pair(o, n, nt, t, k, a, b);
  }
}

// The same, for rows of up to kNormPairs column pairs per thread: each thread keeps its values and
// weights in registers, so the row is read once and every load is issued before the reduction (one
// memory round trip where the loop version had three).
constexpr int kNormPairs = 4;
// `prewait`: without a row gather, the row of x and the norm weights are loaded before waiting for the
// kernel before this one. That kernel writes only `add`: x was last written by the previous norm, which
// has completed before the kernel before this one can start (every decode kernel waits for its
// predecessor before its own dependents may launch), and the weights never change. Under an early
// launch their DRAM latency then overlaps that kernel's tail. x is read through L2 (__ldcg) there.
// kCodes: also the W8A8 codes of the output (ActOut::codes): an instantiation of its own, so the plain
// kernel's code and registers stay as they were.
template <bool kCodes>
__global__ void add_rmsnorm_reg_kernel(float* x, const float* add, const float* w, int n, int nt, float eps,
                                       const int32_t* rows, ActOut o, bool prewait) {
  __shared__ float red[32];
  const int t = blockIdx.x;
  float va[kNormPairs], vb[kNormPairs], wa[kNormPairs], wb[kNormPairs];
  auto load_row = [&](const float* xr, bool l2) {
#pragma unroll
    for (int k = 0; k < kNormPairs; ++k) {
      const int c = 2 * (threadIdx.x + k * blockDim.x);
      va[k] = vb[k] = 0.0f;
      wa[k] = wb[k] = 1.0f;
      if (c < n) {
        va[k] = l2 ? __ldcg(xr + c) : xr[c];
        if (w) wa[k] = w[c];
      }
      if (c + 1 < n) {
        vb[k] = l2 ? __ldcg(xr + c + 1) : xr[c + 1];
        if (w) wb[k] = w[c + 1];
      }
    }
  };
  const bool pre = prewait && !rows;
  if (pre) load_row(x + size_t(t) * n, true);
  pdl_enter();
  const int r = rows ? rows[t] : t;
  float* xr = x + size_t(r) * n;
  const float* ar = add ? add + size_t(r) * n : nullptr;
  if (!pre) load_row(xr, false);
  float ss = 0.0f;
#pragma unroll
  for (int k = 0; k < kNormPairs; ++k) {
    const int c = 2 * (threadIdx.x + k * blockDim.x);
    if (ar && c < n) va[k] += ar[c];
    if (ar && c + 1 < n) vb[k] += ar[c + 1];
    ss += va[k] * va[k] + vb[k] * vb[k];
  }
  if (ar) {
#pragma unroll
    for (int k = 0; k < kNormPairs; ++k) {
      const int c = 2 * (threadIdx.x + k * blockDim.x);
      if (c < n) xr[c] = va[k];
      if (c + 1 < n) xr[c + 1] = vb[k];
    }
  }
  ss = block_reduce(ss, red, false);
  const float sc = 1.0f / sqrtf(ss / float(n) + eps);
  auto normed = [&](float v, float wv) { return w ? (v * sc) * wv : v * sc; };
  const int np = pair_count(o, n);
  if constexpr (kCodes) {  // a W8A8 product's codes (n even, add_rmsnorm_writes_codes): the row's absmax first
    float out_a[kNormPairs], out_b[kNormPairs], am = 0.0f;
    bool nf = false;
#pragma unroll
    for (int k = 0; k < kNormPairs; ++k) {
      const int c = 2 * (threadIdx.x + k * blockDim.x);
      out_a[k] = c < n ? normed(va[k], wa[k]) : 0.0f;
      out_b[k] = c < n ? normed(vb[k], wb[k]) : 0.0f;
      am = fmaxf(am, fmaxf(fabsf(out_a[k]), fabsf(out_b[k])));
      nf = nf || !(finite_value(out_a[k]) && finite_value(out_b[k]));
    }
    am = block_reduce(nf ? INFINITY : am, red, true);  // (see row_scale)
    const float qs = row_scale(am, o.codes_fp8 ? 448.0f : 127.0f, !(am <= FLT_MAX), o.nonfinite);
    uint16_t* qr = reinterpret_cast<uint16_t*>(o.codes + size_t(t) * n);
#pragma unroll
    for (int k = 0; k < kNormPairs; ++k) {
      const int p = threadIdx.x + k * blockDim.x;
      if (2 * p >= n) break;
      const uint8_t qa = o.codes_fp8 ? act_code_fp8(out_a[k], qs) : act_code_int8(out_a[k], qs);
      const uint8_t qb = o.codes_fp8 ? act_code_fp8(out_b[k], qs) : act_code_int8(out_b[k], qs);
      qr[p] = uint16_t(qa | (qb << 8));
    }
    if (threadIdx.x == 0) o.code_scale[t] = qs;
  }
#pragma unroll
  for (int k = 0; k < kNormPairs; ++k) {
    const int p = threadIdx.x + k * blockDim.x;
    if (p >= np) break;
    const int c = 2 * p;
    store_pair(o, n, nt, t, c, c < n ? normed(va[k], wa[k]) : 0.0f, c + 1 < n ? normed(vb[k], wb[k]) : 0.0f);
  }
}

}  // namespace

static int norm_reg_threads(int pairs) {
  const int th = ((pairs + kNormPairs - 1) / kNormPairs + 31) / 32 * 32;
  return th < 64 ? 64 : th;
}

bool add_rmsnorm_writes_codes(int n, bool loop_kernel) {
  return !loop_kernel && n % 2 == 0 && norm_reg_threads((n + 1) / 2) <= 1024;
}

void add_rmsnorm(float* x, const float* add, const float* w, int n, int T, float eps, const int32_t* rows,
                 const ActOut& out, cudaStream_t s, bool loop_kernel, bool early, bool prewait) {
  if (T <= 0) return;
  if (out.codes && (out.frag || !add_rmsnorm_writes_codes(n, loop_kernel)))
    throw std::invalid_argument("add_rmsnorm: W8A8 codes need the register kernel, rows of even width up to "
                                "8192, and no fragments");
  const int pairs = pair_count(out, n);
  const int reg_threads = norm_reg_threads(pairs);
  if (reg_threads <= 1024 && !loop_kernel) {  // rows up to 8192 wide (16384 with fragments' padding counted)
    launch_kernel(out.codes ? add_rmsnorm_reg_kernel<true> : add_rmsnorm_reg_kernel<false>, dim3(unsigned(T)),
                  dim3(unsigned(reg_threads)), 0, s, early, x, add, w, n, (T + 7) / 8, eps, rows, out, prewait);
    QB_CUDA_LAUNCHED();
    return;
  }
  int threads = ((pairs / 2 + 31) / 32) * 32;  // about two pairs per thread
  threads = threads < 64 ? 64 : (threads > 1024 ? 1024 : threads);
  launch_kernel(add_rmsnorm_kernel, dim3(unsigned(T)), dim3(unsigned(threads)), 0, s, early, x, add, w, n,
                (T + 7) / 8, eps, rows, out);
  QB_CUDA_LAUNCHED();
}

void rmsnorm_rows(const float* x, float* y, const float* w, int n, int rows, int inner, int64_t outer_stride,
                  int64_t y_outer_stride, float eps, const int32_t* x_rows, cudaStream_t s) {
  if (rows <= 0) return;
  const int threads = n >= 1024 ? 256 : (n >= 256 ? 128 : 32);
  rmsnorm_kernel<<<rows, threads, 0, s>>>(x, y, w, n, inner, outer_stride, y_outer_stride, eps, x_rows);
  QB_CUDA_LAUNCHED();
}

}  // namespace qb::runtime::cuda
