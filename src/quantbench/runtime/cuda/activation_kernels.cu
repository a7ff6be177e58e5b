// The gated activation act(gate) * up (forward_kernels.h: gated_act, gated_act_out, the latter writing its
// consumer's layout (ActOut), W8A8 codes included) and store_rows, which writes f32 rows to an ActOut's
// targets. Shared helpers: forward_common.cuh.
#include <cooperative_groups.h>

#include <cfloat>
#include <cmath>
#include <stdexcept>
#include <string>

#include "quantbench/runtime/cuda/cuda_check.h"
#include "quantbench/runtime/cuda/act_store.cuh"
#include "quantbench/runtime/cuda/w8a8_codes.cuh"
#include "quantbench/runtime/cuda/forward_kernels.h"
#include "quantbench/runtime/cuda/gated.cuh"
#include "quantbench/runtime/cuda/launch.cuh"
#include "quantbench/runtime/cuda/forward_common.cuh"

namespace qb::runtime::cuda {
namespace cg = cooperative_groups;
namespace {

// act(gate) * up for token t, column j of gate|up rows [t][2 n] (gated.cuh: the formula, and where
// gate and up sit: halves, or interleaved blocks of 16 where the packed decode product fuses it).
__device__ inline float gated_value(const float* gu, int n, int t, int j, int act, bool interleave16 = false) {
  const float* row = gu + size_t(t) * 2 * n + gate_index(j, interleave16);
  return gated_act_value(row[0], row[up_offset(n, interleave16)], act);
}

__global__ void gated_kernel(const float* gu, float* out, int n, int64_t total, int act) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x)
    out[i] = gated_value(gu, n, int(i / n), int(i % n), act);
}

// grid (pair blocks, T): a thread per column pair of one token.
__global__ void gated_out_kernel(const float* gu, int n, int nt, int act, bool interleave16, ActOut o) {
  pdl_enter();
  const int t = blockIdx.y, p = blockIdx.x * blockDim.x + threadIdx.x;
  if (p >= pair_count(o, n)) return;
  const int k = 2 * p;
  const float a = k < n ? gated_value(gu, n, t, k, act, interleave16) : 0.0f;
  const float b = k + 1 < n ? gated_value(gu, n, t, k + 1, act, interleave16) : 0.0f;
  store_pair(o, n, nt, t, k, a, b);
}

// gated_out_kernel writing a W8A8 product's codes (ActOut::codes): a cluster of kGatedCodeBlocks blocks per
// token, each holding a slice of the token's row of act(gate) * up in registers (4 consecutive columns per
// thread per step, float4 loads of gate and up, every load issued before any is used); the slices' absmaxes
// meet through distributed shared memory, then each block writes its slice's codes (and block 0 the scale):
// the bits gated_out_kernel's f32 rows then quant_act_vec_kernel (w8a8.cu) give, by the same formula
// (gated.cuh), the same max (order-free) and the same codes (w8a8_codes.cuh). One block per token was 4%
// slower per one-stream INT8 step than the two kernels it replaces (docs/perf.md, session 30): the
// activation's arithmetic on one SM. Rows of n % 4 == 0 up to kGatedCodeBlocks * kGatedCodeRegs * 4096
// values (gated_act_writes_codes).
constexpr int kGatedCodeBlocks = 8, kGatedCodeRegs = 2;
__global__ void __cluster_dims__(kGatedCodeBlocks, 1, 1) __launch_bounds__(1024)
    gated_codes_kernel(const float* gu, int n, int slice, int act, bool interleave16, ActOut o) {
  __shared__ float red[32];
  __shared__ float slice_max;
  pdl_enter();
  const int t = blockIdx.y, c0 = int(blockIdx.x) * slice, c1 = min(n, c0 + slice);  // (slice % 4 == 0)
  const float* row = gu + size_t(t) * 2 * n;
  const int up = up_offset(n, interleave16);
  // step r's first column (4 columns in one block of 16 when interleaved)
  auto col = [&](int r) { return c0 + 4 * (r * int(blockDim.x) + int(threadIdx.x)); };
  float4 g[kGatedCodeRegs], u[kGatedCodeRegs];
#pragma unroll
  for (int r = 0; r < kGatedCodeRegs; ++r) {
    g[r] = u[r] = make_float4(0.f, 0.f, 0.f, 0.f);
    if (col(r) < c1) {
      g[r] = *reinterpret_cast<const float4*>(row + gate_index(col(r), interleave16));
      u[r] = *reinterpret_cast<const float4*>(row + gate_index(col(r), interleave16) + up);
    }
  }
  float4 v[kGatedCodeRegs];
  float am = 0.0f;
  bool nf = false;  // a value that is not finite (fmaxf drops NaNs, so the max alone cannot tell)
#pragma unroll
  for (int r = 0; r < kGatedCodeRegs; ++r) {
    v[r] = make_float4(0.f, 0.f, 0.f, 0.f);
    if (col(r) >= c1) continue;
    v[r] = make_float4(gated_act_value(g[r].x, u[r].x, act), gated_act_value(g[r].y, u[r].y, act),
                       gated_act_value(g[r].z, u[r].z, act), gated_act_value(g[r].w, u[r].w, act));
    am = fmaxf(am, absmax4(v[r]));
    nf = nf || !finite4(v[r]);
  }
  am = block_reduce(nf ? INFINITY : am, red, true);  // (see row_scale: infinity marks a bad value)
  if (threadIdx.x == 0) slice_max = am;
  cg::cluster_group cluster = cg::this_cluster();
  cluster.sync();  // every block's slice_max written
  float row_max = 0.0f;
#pragma unroll
  for (int b = 0; b < kGatedCodeBlocks; ++b) row_max = fmaxf(row_max, *cluster.map_shared_rank(&slice_max, b));
  cluster.sync();  // every block done reading the others' shared memory before any exits
  const float qs = row_scale(row_max, o.codes_fp8 ? 448.0f : 127.0f, !(row_max <= FLT_MAX),
                             blockIdx.x == 0 ? o.nonfinite : nullptr);
  uint32_t* qr = reinterpret_cast<uint32_t*>(o.codes + size_t(t) * n);
#pragma unroll
  for (int r = 0; r < kGatedCodeRegs; ++r) {
    if (col(r) >= c1) break;
    qr[col(r) / 4] = act_codes4(v[r], qs, o.codes_fp8);
  }
  if (blockIdx.x == 0 && threadIdx.x == 0) o.code_scale[t] = qs;
}

__global__ void store_rows_kernel(const float* x, int n, int nt, ActOut o) {
  pdl_enter();
  const int t = blockIdx.y, p = blockIdx.x * blockDim.x + threadIdx.x;
  if (p >= pair_count(o, n)) return;
  const int k = 2 * p;
  const float* xr = x + size_t(t) * n;
  store_pair(o, n, nt, t, k, k < n ? xr[k] : 0.0f, k + 1 < n ? xr[k + 1] : 0.0f);
}

int pair_threads(int pairs) { return pairs >= 256 ? 256 : ((pairs + 31) / 32) * 32; }

}  // namespace

// gated_codes_kernel's slice of a row (a multiple of 4 columns) and its threads: as many as the slice has
// float4 steps, up to 1024 (fewer steps per thread, more loads in flight), whole warps, at least 64.
static int gated_codes_slice(int n) { return (n / 4 + kGatedCodeBlocks - 1) / kGatedCodeBlocks * 4; }
static int gated_codes_threads(int n) {
  const int th = (gated_codes_slice(n) / 4 + 31) / 32 * 32;
  return th < 64 ? 64 : (th > 1024 ? 1024 : th);
}

bool gated_act_writes_codes(int n) {
  return n > 0 && n % 4 == 0 && n <= kGatedCodeBlocks * kGatedCodeRegs * 4 * 1024;
}

void gated_act_out(const float* gate_up, int n, int T, int act, const ActOut& out, cudaStream_t s, bool early,
                   bool interleave16) {
  if (T <= 0) return;
  if (interleave16 && n % 16 != 0) throw std::invalid_argument("gated_act_out: interleaved blocks of 16 need n % 16 == 0");
  if (out.codes) {
    if (out.f32 || out.half_rows || out.frag || !gated_act_writes_codes(n))
      throw std::invalid_argument("gated_act_out: W8A8 codes alone, rows of a multiple of 4 up to " +
                                  std::to_string(kGatedCodeBlocks * kGatedCodeRegs * 4096) + " wide");
    launch_kernel(gated_codes_kernel, dim3(unsigned(kGatedCodeBlocks), unsigned(T)),
                  dim3(unsigned(gated_codes_threads(n))), 0, s, early, gate_up, n, gated_codes_slice(n), act,
                  interleave16, out);
    QB_CUDA_LAUNCHED();
    return;
  }
  const int pairs = pair_count(out, n), th = pair_threads(pairs);
  launch_kernel(gated_out_kernel, dim3(unsigned((pairs + th - 1) / th), unsigned(T)), dim3(unsigned(th)), 0, s, early,
                gate_up, n, (T + 7) / 8, act, interleave16, out);
  QB_CUDA_LAUNCHED();
}

void store_rows(const float* x, int n, int T, const ActOut& out, cudaStream_t s) {
  if (T <= 0) return;
  if (out.f32 && out.f32 != x) throw std::runtime_error("store_rows: out.f32 must be null or the input");
  if (out.codes) throw std::invalid_argument("store_rows: W8A8 codes are written by the norm kernel only");
  ActOut o = out;
  o.f32 = nullptr;
  if (!o.half_rows && !o.frag) return;
  const int pairs = pair_count(o, n), th = pair_threads(pairs);
  store_rows_kernel<<<dim3(unsigned((pairs + th - 1) / th), unsigned(T)), th, 0, s>>>(x, n, (T + 7) / 8, o);
  QB_CUDA_LAUNCHED();
}

void gated_act(const float* gate_up, float* out, int n, int rows, int act, cudaStream_t s) {
  const int64_t total = int64_t(n) * rows;
  gated_kernel<<<grid_for(total), 256, 0, s>>>(gate_up, out, n, total, act);
  QB_CUDA_LAUNCHED();
}

}  // namespace qb::runtime::cuda
