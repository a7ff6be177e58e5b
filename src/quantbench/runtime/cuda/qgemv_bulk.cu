// The decode product for symmetric w4g128 with its weights streamed into shared memory by the copy
// engine (cp.async.bulk, completion counted on an mbarrier) instead of into registers.
//
// Why: in-place Nsight Compute samples of the register kernel (qgemv.cu, half step) at one token show
// its warps stalled on their weight loads about half the time (docs/perf.md, session 11): each warp has
// one step (1-2 KB) in flight, and registers cap the warps per SM. Here one thread asks for a whole
// stage of the block's weights and scales (R row blocks x 2 * warps chunks, 16-17 KB) with R + R bulk
// copies, and a block keeps up to kMaxStages stages in flight, before and while it computes: bytes in
// flight are bounded by shared memory, not registers, and the copies cost no per-thread instructions.
//
// Layout and arithmetic are those of qgemv.h's half step: warp w of a block takes, in step i, chunks
// 2 (i * warps + w) and + 1 (one group of 128) of each of its R row blocks; a lane reads its 16 bytes of
// each chunk from shared memory (512 contiguous bytes per chunk: conflict-free), forms the exact
// integers (q - 8) (int4_decode.cuh), multiplies them on the tensor cores into a per-group f32 tile and
// adds the tile times the two rows' scales. The warps' partial sums are reduced through shared memory in
// a fixed order, so results are deterministic and each output is written once.
#include <cuda_fp16.h>

#include <algorithm>
#include <stdexcept>

#include "quantbench/runtime/cuda/cuda_check.h"
#include "quantbench/runtime/cuda/int4_decode.cuh"
#include "quantbench/runtime/cuda/launch.cuh"
#include "quantbench/runtime/cuda/qgemv_bulk.h"

namespace qb::runtime::cuda {
namespace {

constexpr int kChunkBytes = 512;   // one 16 x 64 int4 chunk of a row block
constexpr int kGroupBytes = 32;    // one group's scales for the 16 rows of a row block (f16)
constexpr int kMaxStages = 6;
constexpr size_t kStageBudget = 100 * 1024;  // shared memory for stages per block

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return uint32_t(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void mbar_init(uint64_t* bar, unsigned count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(smem_addr(bar)), "r"(count) : "memory");
}
__device__ __forceinline__ void mbar_expect_tx(uint64_t* bar, unsigned bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(smem_addr(bar)), "r"(bytes)
               : "memory");
}
__device__ __forceinline__ void mbar_wait(uint64_t* bar, unsigned parity) {
  asm volatile(
      "{\n"
      ".reg .pred p;\n"
      "WAIT_%=:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 p, [%0], %1;\n"
      "@!p bra WAIT_%=;\n"
      "}\n" ::"r"(smem_addr(bar)),
      "r"(parity)
      : "memory");
}
__device__ __forceinline__ void bulk_copy(void* dst, const void* src, unsigned bytes, uint64_t* bar) {
  asm volatile(
      "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];" ::"r"(
          smem_addr(dst)),
      "l"(src), "r"(bytes), "r"(smem_addr(bar))
      : "memory");
}

__device__ __forceinline__ void mma16816_f16(float (&d)[4], const __half2 (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(h2_bits(a[0])), "r"(h2_bits(a[1])), "r"(h2_bits(a[2])), "r"(h2_bits(a[3])), "r"(b0), "r"(b1));
}

// Shared memory: [stages][R][2 * warps chunks x 512 B] weights, then [stages][R][warps groups x 32 B]
// scales, then the mbarriers, then the reduction buffer [warps][R][NT][4][32] floats.
template <int R, int NT>
__global__ void qgemv_bulk_kernel(const uint8_t* __restrict__ W, const uint8_t* __restrict__ scales,
                                  const uint4* __restrict__ xfrag, float* __restrict__ y, int n_out, int row_blocks,
                                  int chunks, int groups, int n_tokens, int stages) {
  extern __shared__ __align__(128) uint8_t smem[];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = blockDim.x >> 5;
  const int g = lane >> 2;
  const int rb0 = blockIdx.x * R;
  const int step_chunks = 2 * n_warps, step_groups = n_warps;
  const int steps = (chunks + step_chunks - 1) / step_chunks;
  const size_t w_stage = size_t(R) * step_chunks * kChunkBytes, s_stage = size_t(R) * step_groups * kGroupBytes;
  uint8_t* wbuf = smem;
  uint8_t* sbuf = wbuf + stages * w_stage;
  auto* bars = reinterpret_cast<uint64_t*>(sbuf + stages * s_stage);
  float* red = reinterpret_cast<float*>(bars + kMaxStages);

  // Asks for step `i` into its stage: per row block, its chunks of the step and their groups' scales.
  auto issue = [&](int i) {
    const int st = i % stages;
    const int c0 = i * step_chunks, nc = min(step_chunks, chunks - c0);
    const int g0 = i * step_groups, ng = min(step_groups, groups - g0);
    const int nr = min(R, row_blocks - rb0);
    mbar_expect_tx(&bars[st], unsigned(nr * (nc * kChunkBytes + ng * kGroupBytes)));
    for (int r = 0; r < nr; ++r) {
      const size_t rb = size_t(rb0 + r);
      bulk_copy(wbuf + st * w_stage + size_t(r) * step_chunks * kChunkBytes, W + (rb * chunks + c0) * kChunkBytes,
                unsigned(nc * kChunkBytes), &bars[st]);
      bulk_copy(sbuf + st * s_stage + size_t(r) * step_groups * kGroupBytes, scales + (rb * groups + g0) * kGroupBytes,
                unsigned(ng * kGroupBytes), &bars[st]);
    }
  };
  if (threadIdx.x == 0) {
    for (int s = 0; s < stages; ++s) mbar_init(&bars[s], 1);
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    for (int i = 0; i < min(stages, steps); ++i) issue(i);  // weights never depend on earlier kernels
  }
  asm volatile("griddepcontrol.launch_dependents;");
  __syncthreads();  // the barriers are initialized before anyone waits on them
  asm volatile("griddepcontrol.wait;" ::: "memory");

  float acc[R][NT][4];
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int j = 0; j < NT; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[r][j][e] = 0.f;
  const Int4Zero z = int4_zero(0x0808u);

  for (int i = 0; i < steps; ++i) {
    const int st = i % stages;
    const int c = i * step_chunks + 2 * warp;  // this warp's two chunks: one group of 128
    // The activations first: their loads overlap the wait for the stage.
    uint4 xv[2][NT][2];
#pragma unroll
    for (int u = 0; u < 2; ++u)
#pragma unroll
      for (int j = 0; j < NT; ++j) {
        const bool ok = c + u < chunks && 8 * j + g < n_tokens;
        const uint4* p = xfrag + ((size_t(c + u) * NT + j) * 32 + lane) * 2;
        xv[u][j][0] = ok ? __ldg(p) : make_uint4(0, 0, 0, 0);
        xv[u][j][1] = ok ? __ldg(p + 1) : make_uint4(0, 0, 0, 0);
      }
    mbar_wait(&bars[st], unsigned((i / stages) & 1));
    if (c < chunks) {
#pragma unroll
      for (int r = 0; r < R; ++r) {
        if (rb0 + r >= row_blocks) break;
        const uint8_t* wr = wbuf + st * w_stage + size_t(r) * step_chunks * kChunkBytes;
        const uint4 q0 = *reinterpret_cast<const uint4*>(wr + size_t(2 * warp) * kChunkBytes + lane * 16);
        const uint4 q1 = c + 1 < chunks ? *reinterpret_cast<const uint4*>(wr + size_t(2 * warp + 1) * kChunkBytes + lane * 16)
                                        : make_uint4(0, 0, 0, 0);
        const uint32_t sc = *reinterpret_cast<const uint32_t*>(sbuf + st * s_stage +
                                                               size_t(r) * step_groups * kGroupBytes + warp * kGroupBytes + g * 4);
        float tmp[NT][4];
#pragma unroll
        for (int j = 0; j < NT; ++j)
#pragma unroll
          for (int e = 0; e < 4; ++e) tmp[j][e] = 0.f;
#pragma unroll
        for (int t = 0; t < 8; ++t) {  // the group's 8 k16 sub-tiles: 4 of each chunk
          const uint4& q = t < 4 ? q0 : q1;
          const int s = t % 4, u = t / 4;
          __half2 a[4];
          int4_qz(s == 0 ? q.x : s == 1 ? q.y : s == 2 ? q.z : q.w, z, a);
#pragma unroll
          for (int j = 0; j < NT; ++j) {
            const uint4& b = xv[u][j][s >> 1];
            mma16816_f16(tmp[j], a, (s & 1) ? b.z : b.x, (s & 1) ? b.w : b.y);
          }
        }
        const float2 s2 = __half22float2(bits_h2(sc));  // (row g, row g + 8)
#pragma unroll
        for (int j = 0; j < NT; ++j) {
          acc[r][j][0] += s2.x * tmp[j][0];
          acc[r][j][1] += s2.x * tmp[j][1];
          acc[r][j][2] += s2.y * tmp[j][2];
          acc[r][j][3] += s2.y * tmp[j][3];
        }
      }
    }
    if (i + stages < steps) {  // refill this stage once every warp has read it
      __syncthreads();
      if (threadIdx.x == 0) {
        asm volatile("fence.proxy.async.shared::cta;" ::: "memory");  // generic reads before the async write
        issue(i + stages);
      }
    }
  }

  // Reduce the warps' partial sums in a fixed order (lane-fastest layout: no bank conflicts).
  constexpr int kPer = R * NT * 4 * 32;
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int j = 0; j < NT; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) red[warp * kPer + ((r * NT + j) * 4 + e) * 32 + lane] = acc[r][j][e];
  __syncthreads();
  for (int e = threadIdx.x; e < kPer; e += blockDim.x) {
    float sum = 0.f;
    for (int w = 0; w < n_warps; ++w) sum += red[w * kPer + e];
    const int l = e & 31, k = (e >> 5) & 3, rj = e >> 7, j = rj % NT, r = rj / NT;
    const int row = (rb0 + r) * 16 + (l >> 2) + 8 * (k >> 1);
    const int tok = 8 * j + 2 * (l & 3) + (k & 1);
    if (row < n_out && tok < n_tokens) y[size_t(tok) * n_out + row] = sum;
  }
}

using BulkFn = void (*)(const uint8_t*, const uint8_t*, const uint4*, float*, int, int, int, int, int, int);
BulkFn pick(int r, int nt) {
  if (r == 1) return nt == 1 ? qgemv_bulk_kernel<1, 1> : qgemv_bulk_kernel<1, 2>;
  return nt == 1 ? qgemv_bulk_kernel<2, 1> : qgemv_bulk_kernel<2, 2>;
}

}  // namespace

bool qgemv_bulk_supported(const QuantSpec& s, int row_blocks_per_warp) {
  return s.format == WeightFormat::W4A16 && s.group == 128 && !s.asym &&
         (row_blocks_per_warp == 1 || row_blocks_per_warp == 2);
}

size_t qgemv_bulk_smem(int r, int warps, int n_tokens, int chunks, int* stages_out) {
  const int step_chunks = 2 * warps;
  const int steps = (chunks + step_chunks - 1) / step_chunks;
  const size_t stage = size_t(r) * (size_t(step_chunks) * kChunkBytes + size_t(warps) * kGroupBytes);
  const int stages = std::max(1, std::min({steps, kMaxStages, int(kStageBudget / stage)}));
  if (stages_out) *stages_out = stages;
  return stages * stage + kMaxStages * sizeof(uint64_t) + size_t(warps) * r * ((n_tokens + 7) / 8) * 4 * 32 * sizeof(float);
}

void qgemv_bulk(const DeviceMatrix& w, const void* xfrag, int n_tokens, float* y, cudaStream_t stream, int r,
                int warps, bool early) {
  const PackedShape& p = w.shape;
  if (!qgemv_bulk_supported(p.spec, r)) throw std::invalid_argument("qgemv_bulk: symmetric w4g128 at R = 1 or 2 only");
  if (warps < 1 || warps > 16) throw std::invalid_argument("qgemv_bulk: warps must be 1..16");
  const int nt = (n_tokens + 7) / 8;
  int stages = 0;
  const size_t smem = qgemv_bulk_smem(r, warps, n_tokens, int(p.chunks), &stages);
  const BulkFn fn = pick(r, nt);
  QB_CUDA_OK(cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  const int blocks = int((p.row_blocks + r - 1) / r);
  launch_kernel(fn, dim3(unsigned(blocks)), dim3(unsigned(warps * 32)), smem, stream, early,
                static_cast<const uint8_t*>(w.weights.get()), static_cast<const uint8_t*>(w.scales.get()),
                static_cast<const uint4*>(xfrag), y, int(p.n_out), int(p.row_blocks), int(p.chunks), int(p.groups),
                n_tokens, stages);
  QB_CUDA_LAUNCHED();
}

}  // namespace qb::runtime::cuda
