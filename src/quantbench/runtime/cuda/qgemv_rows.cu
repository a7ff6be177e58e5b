// The row-split decode kernel for symmetric w4g128 (qgemv_rows.h). qgemv's kernels split a block's
// input dimension among its warps: every warp reads its own activation chunks through L1 (at 16 tokens
// twice as many bytes as its weights) and the block reduces the warps' sums at the end. Here the warps
// of a block own different rows and walk the same input range, so the block copies that range's
// activation fragments into shared memory once (cp.async, in two groups: the first two steps' chunks,
// then the rest) and every warp reads them from there; a warp needs no partner to finish its rows. So
// that small grids (o, down) still give every SM warps, the input range is cut among the S blocks of a
// thread-block cluster (S = 1, 2, 4, 8), which add their partial sums through distributed shared memory
// in rank order (deterministic, no atomics, no workspace). The weights stream as in qgemv's half step:
// one group of 128 (two chunks) per step, the next step's loads issued before this step's arithmetic
// (a ping-pong of two register buffers), the first step's before the programmatic-dependent-launch
// wait; exact integer products (q - 8) on the tensor cores, each group's f32 sum scaled in f32.
#include <cooperative_groups.h>
#include <cuda_fp16.h>

#include <stdexcept>
#include <string>

#include "quantbench/runtime/cuda/cuda_check.h"
#include "quantbench/runtime/cuda/int4_decode.cuh"
#include "quantbench/runtime/cuda/load_stream.cuh"
#include "quantbench/runtime/cuda/mma_sync.cuh"
#include "quantbench/runtime/cuda/qgemv_rows.h"

namespace qb::runtime::cuda {
namespace {

namespace cg = cooperative_groups;

__device__ __forceinline__ void cp_async16(void* dst, const void* src) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(static_cast<uint32_t>(__cvta_generic_to_shared(dst))),
               "l"(src)
               : "memory");
}

// R: row blocks (16 rows) per warp; NT: 8-token tiles. Grid (S, row tiles), cluster (S, 1, 1): block
// (sp, t) covers row blocks (t * warps + w) * R + r of its warps w and chunks [sp * per_split, + per_split).
template <int R, int NT>
__global__ void __launch_bounds__(512) qgemv_rows_kernel(const uint4* __restrict__ W,
                                                         const uint16_t* __restrict__ scales,
                                                         const uint4* __restrict__ xfrag, float* __restrict__ y,
                                                         int n_out, int row_blocks, int chunks, int groups,
                                                         int n_tokens, int ldy, int per_split) {
  extern __shared__ uint4 smem[];  // activations [per_split chunks][NT][plane][lane], then red
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = blockDim.x >> 5, g = lane >> 2;
  cg::cluster_group cluster = cg::this_cluster();
  const int S = int(cluster.num_blocks()), sp = int(cluster.block_rank());
  const int c_begin = sp * per_split, n_local = max(0, min(chunks, c_begin + per_split) - c_begin);
  const int n_steps = n_local / 2;  // (chunks is even: n_in % 128 == 0)
  const int rb_first = (blockIdx.y * n_warps + warp) * R;

  // Where this warp's loads start: its row blocks' first chunk of the range, and their group scales. A
  // row block past the matrix reads the last real one (its outputs are never stored).
  const uint32_t* sc32 = reinterpret_cast<const uint32_t*>(scales);
  const uint4* wp[R];
  const uint32_t* scp[R];
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const int rb = min(rb_first + r, row_blocks - 1);
    wp[r] = W + (size_t(rb) * chunks + c_begin) * 32 + lane;
    scp[r] = sc32 + (size_t(rb) * groups + c_begin / 2) * 8 + g;
  }
  struct Step {
    uint4 w[2][R];    // the group's two chunks, per row block
    uint32_t sc[R];   // the group's scale pair (rows g, g + 8)
  };
  auto load_step = [&](int i, Step& st) {
    const bool ok = i < n_steps;
#pragma unroll
    for (int r = 0; r < R; ++r) {
#pragma unroll
      for (int u = 0; u < 2; ++u) st.w[u][r] = ok ? load_stream(wp[r] + (2 * i + u) * 32) : make_uint4(0, 0, 0, 0);
      st.sc[r] = ok ? __ldg(scp[r] + i * 8) : 0u;
    }
  };

  Step cur, nxt;
  load_step(0, cur);  // weights never depend on the previous kernel
  asm volatile("griddepcontrol.launch_dependents;");
  asm volatile("griddepcontrol.wait;" ::: "memory");
  // The range's activation fragments, 16-byte piece q in the order of smem (plane p of lane l of tile j
  // of chunk cl at ((cl * NT + j) * 2 + p) * 32 + l, so a warp's 16-byte reads of one plane are
  // contiguous): xfrag's piece ((c * NT + j) * 32 + l) * 2 + p.
  auto copy_x = [&](int q0, int q1) {
    for (int q = q0 + int(threadIdx.x); q < q1; q += blockDim.x) {
      const int l = q & 31, p = (q >> 5) & 1, rest = q >> 6, j = rest % NT, cl = rest / NT;
      cp_async16(smem + q, xfrag + ((size_t(c_begin + cl) * NT + j) * 32 + l) * 2 + p);
    }
    asm volatile("cp.async.commit_group;" ::: "memory");
  };
  const int first = min(n_local, 4) * NT * 64, all = n_local * NT * 64;
  copy_x(0, first);
  copy_x(first, all);
  asm volatile("cp.async.wait_group 1;" ::: "memory");
  __syncthreads();

  float acc[R][NT][4];
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int j = 0; j < NT; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[r][j][e] = 0.f;

  auto step_math = [&](int i, const Step& st) {
    float tmp[R][NT][4];
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
      for (int j = 0; j < NT; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) tmp[r][j][e] = 0.f;
#pragma unroll
    for (int u = 0; u < 2; ++u)
#pragma unroll
      for (int p = 0; p < 2; ++p) {
        uint4 xv[NT];
#pragma unroll
        for (int j = 0; j < NT; ++j) xv[j] = smem[(((2 * i + u) * NT + j) * 2 + p) * 32 + lane];
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int s = 2 * p + h;
#pragma unroll
          for (int r = 0; r < R; ++r) {
            const uint4& q = st.w[u][r];
            __half2 a[4];
            int4_qz<true>(s == 0 ? q.x : s == 1 ? q.y : s == 2 ? q.z : q.w, int4_zero_symmetric(), a);
#pragma unroll
            for (int j = 0; j < NT; ++j)
              mma16816<false>(tmp[r][j], h2_bits(a[0]), h2_bits(a[1]), h2_bits(a[2]), h2_bits(a[3]),
                              h ? xv[j].z : xv[j].x, h ? xv[j].w : xv[j].y);
          }
        }
      }
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const float2 s2 = __half22float2(bits_h2(st.sc[r]));  // (row g, row g + 8)
#pragma unroll
      for (int j = 0; j < NT; ++j) {
        acc[r][j][0] += s2.x * tmp[r][j][0];
        acc[r][j][1] += s2.x * tmp[r][j][1];
        acc[r][j][2] += s2.y * tmp[r][j][2];
        acc[r][j][3] += s2.y * tmp[r][j][3];
      }
    }
  };

  // Two steps per iteration, the buffers' roles swapped in code (qgemv's ping-pong). Every warp of the
  // block runs the same steps, so the barrier for the second copy group is reached by all.
  for (int i = 0; i < n_steps; i += 2) {
    if (i == 2) {
      asm volatile("cp.async.wait_group 0;" ::: "memory");
      __syncthreads();
    }
    load_step(i + 1, nxt);
    step_math(i, cur);
    if (i + 1 >= n_steps) break;
    load_step(i + 2, cur);
    step_math(i + 1, nxt);
  }
  asm volatile("cp.async.wait_group 0;" ::: "memory");  // (a range of one step never waited for group 2)

  // The cluster's partial sums: each block's in its own shared memory (lane-fastest), then block sp sums
  // its share of the outputs over the ranks 0 .. S - 1 in order and stores it.
  constexpr int kPer = R * NT * 4 * 32;
  float* red = reinterpret_cast<float*>(smem + size_t(per_split) * NT * 64);
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int j = 0; j < NT; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) red[warp * kPer + ((r * NT + j) * 4 + e) * 32 + lane] = acc[r][j][e];
  cluster.sync();
  const int total = n_warps * kPer, share = (total + S - 1) / S;
  const int e0 = sp * share, e1 = min(total, e0 + share);
  for (int e = e0 + int(threadIdx.x); e < e1; e += blockDim.x) {
    float sum = 0.f;
    for (int q = 0; q < S; ++q) sum += cluster.map_shared_rank(red, q)[e];
    const int l = e & 31, i = (e >> 5) & 3, rest = e >> 7, j = rest % NT, r = (rest / NT) % R, w = rest / (NT * R);
    const int row = ((blockIdx.y * n_warps + w) * R + r) * 16 + (l >> 2) + 8 * (i >> 1);
    const int tok = 8 * j + 2 * (l & 3) + (i & 1);
    if (row < n_out && tok < n_tokens) y[size_t(tok) * ldy + row] = sum;
  }
  cluster.sync();  // a block's partial sums stay in place until every peer has read them
}

using RowsKernel = void (*)(const uint4*, const uint16_t*, const uint4*, float*, int, int, int, int, int, int, int);
RowsKernel rows_kernel(int r, int nt) {
  if (r == 1) return nt == 1 ? qgemv_rows_kernel<1, 1> : qgemv_rows_kernel<1, 2>;
  return nt == 1 ? qgemv_rows_kernel<2, 1> : qgemv_rows_kernel<2, 2>;
}

}  // namespace

bool qgemv_rows_supports(const PackedShape& p) {
  return p.spec.format == WeightFormat::W4A16 && p.spec.group == 128 && !p.spec.asym && !p.spec.mins &&
         p.chunks % 2 == 0;
}

int qgemv_rows_per_split(const PackedShape& p, int splits) {
  const int64_t steps = p.chunks / 2;
  return int((steps + splits - 1) / splits) * 2;
}

size_t qgemv_rows_smem(const PackedShape& p, const QgemvConfig& c, int n_tokens) {
  const int nt = (n_tokens + 7) / 8;
  return size_t(qgemv_rows_per_split(p, c.split_k)) * nt * 64 * 16 +
         size_t(c.warps_per_block) * c.row_blocks_per_warp * nt * 4 * 32 * sizeof(float);
}

QgemvConfig choose_rows_config(const PackedShape& p, int n_tokens, int sm_count, int blocks_per_sm) {
  QgemvConfig c;
  if (!qgemv_rows_supports(p) || blocks_per_sm < 1) return c;
  c.row_blocks_per_warp = n_tokens > 8 ? 2 : 1;
  c.warps_per_block = 4;
  c.overlap_launch = true;
  const int64_t tiles = (p.row_blocks + 4 * c.row_blocks_per_warp - 1) / (4 * c.row_blocks_per_warp);
  for (int s : {1, 2, 4, 8}) {
    c.split_k = s;
    if (qgemv_rows_smem(p, c, n_tokens) <= 227 * 1024 && (tiles * s >= int64_t(blocks_per_sm) * sm_count || s == 8))
      return c;
  }
  if (qgemv_rows_smem(p, c, n_tokens) > 227 * 1024) c.split_k = 0;  // does not fit even at 8 splits
  return c;
}

void qgemv_rows(const DeviceMatrix& w, const void* xfrag, int n_tokens, float* y, int64_t ldy, cudaStream_t stream,
                const QgemvConfig& c) {
  const PackedShape& p = w.shape;
  if (!qgemv_rows_supports(p))
    throw std::invalid_argument("qgemv: the row-split kernel runs symmetric w4g128 only, got " + spec_name(p.spec));
  const int r = c.row_blocks_per_warp, nw = c.warps_per_block, s = c.split_k, nt = (n_tokens + 7) / 8;
  if ((r != 1 && r != 2) || nw < 1 || nw > 16 || (s != 1 && s != 2 && s != 4 && s != 8))
    throw std::invalid_argument("qgemv: the row-split kernel takes R = 1 or 2, 1..16 warps and 1, 2, 4 or 8 splits");
  const size_t smem = qgemv_rows_smem(p, c, n_tokens);
  if (smem > 227 * 1024)
    throw std::invalid_argument("qgemv: the row-split kernel's input range needs " + std::to_string(smem) +
                                " bytes of shared memory (at most 232448): more splits");
  const RowsKernel fn = rows_kernel(r, nt);
  QB_CUDA_OK(cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  const int64_t tiles = (p.row_blocks + int64_t(nw) * r - 1) / (int64_t(nw) * r);
  cudaLaunchConfig_t lc = {};
  lc.gridDim = dim3(unsigned(s), unsigned(tiles));
  lc.blockDim = dim3(unsigned(nw * 32));
  lc.dynamicSmemBytes = smem;
  lc.stream = stream;
  cudaLaunchAttribute at[2];
  at[0].id = cudaLaunchAttributeClusterDimension;
  at[0].val.clusterDim.x = unsigned(s);
  at[0].val.clusterDim.y = 1;
  at[0].val.clusterDim.z = 1;
  at[1].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  at[1].val.programmaticStreamSerializationAllowed = 1;
  lc.attrs = at;
  lc.numAttrs = c.overlap_launch ? 2 : 1;
  QB_CUDA_OK(cudaLaunchKernelEx(&lc, fn, static_cast<const uint4*>(w.weights.get()),
                                static_cast<const uint16_t*>(w.scales.get()), static_cast<const uint4*>(xfrag), y,
                                int(p.n_out), int(p.row_blocks), int(p.chunks), int(p.groups), n_tokens, int(ldy),
                                qgemv_rows_per_split(p, s)));
  QB_CUDA_LAUNCHED();
}

}  // namespace qb::runtime::cuda
