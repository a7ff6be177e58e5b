// The Hopper prefill pipeline that qgemm (packed W4A16 / W8A16 weights) and FP8 W8A8's f16 tensor-core
// prefill (w8a8_fp8_prefill.cu) share: x (f16 activation rows) arrives by TMA as wgmma's B operand, NT tokens
// x 128 bytes per chunk in the 128-byte swizzle the descriptor's mode 1 reads (16-byte piece j of token row
// n in slot j ^ (n % 8)), the weights by the kernel's own cp.async copies, and each warp forms its
// 16 x 16 A fragments in registers (f16) from them. One block = 2 warpgroups (8 warps) x 128 output rows
// x NT tokens (the wgmma N: 128 or 64). Per 64-wide input chunk the block fills one of kStages pipeline
// stages; each warp forms chunk c + 1's A registers while chunk c's 4 wgmma (one per k16 sub-tile, the
// descriptor's start advanced 32 bytes each) run; one barrier per chunk frees the stage of chunk c - 1
// for chunk c + 3.
#pragma once
#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "quantbench/runtime/cuda/cuda_check.h"

namespace qb::runtime::cuda {

constexpr int kWgStages = 4;
constexpr int kWgRowWarps = 8;  // row blocks (warps) per block: 128 rows, two warpgroups

__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
// 16 bytes global -> shared, zero-filled where !valid (src is then not read).
__device__ __forceinline__ void cp_async16(uint32_t dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(dst), "l"(src), "r"(valid ? 16 : 0)
               : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory"); }

// Shared-memory matrix descriptor for a K-major operand in 128-byte swizzle mode: rows of 128 bytes,
// 8-row atoms 1024 bytes apart (stride byte offset), leading byte offset unused in this mode (16).
__device__ __forceinline__ uint64_t smem_desc_sw128(uint32_t addr) {
  return uint64_t((addr & 0x3FFFF) >> 4) | (uint64_t(16 >> 4) << 16) | (uint64_t(1024 >> 4) << 32) |
         (uint64_t(1) << 62);
}

#define QB_D8(i) "+f"(d[i]), "+f"(d[i + 1]), "+f"(d[i + 2]), "+f"(d[i + 3]), "+f"(d[i + 4]), "+f"(d[i + 5]), \
                 "+f"(d[i + 6]), "+f"(d[i + 7])
// d (64 f32 per thread: D[16 (warp % 4) + g + 8 (r / 2 % 2)][8 (r / 4) + 2 t + r % 2]) += A (registers) B.
__device__ __forceinline__ void wgmma_m64n128k16(float (&d)[64], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                                 uint64_t desc_b) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, "
      "%22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, "
      "%43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, "
      "{%64, %65, %66, %67}, %68, p, 1, 1, 0;\n}\n"
      : QB_D8(0), QB_D8(8), QB_D8(16), QB_D8(24), QB_D8(32), QB_D8(40), QB_D8(48), QB_D8(56)
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "l"(desc_b), "r"(1));
}
__device__ __forceinline__ void wgmma_m64n64k16(float (&d)[32], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                                uint64_t desc_b) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, "
      "%22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, "
      "{%32, %33, %34, %35}, %36, p, 1, 1, 0;\n}\n"
      : QB_D8(0), QB_D8(8), QB_D8(16), QB_D8(24)
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "l"(desc_b), "r"(1));
}
template <int NT>
__device__ __forceinline__ void wgmma_tile(float (&d)[NT / 2], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                           uint64_t desc_b) {
  if constexpr (NT == 128) wgmma_m64n128k16(d, a0, a1, a2, a3, desc_b);
  else wgmma_m64n64k16(d, a0, a1, a2, a3, desc_b);
}
#undef QB_D8

// mbarrier (one per stage, arrival count 1): thread 0 arms it with the x tile's byte count and
// issues the TMA copy, which completes the phase; every thread waits for the phase's parity.
__device__ __forceinline__ void mbar_init(uint32_t bar) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;" ::"r"(bar) : "memory");
}
__device__ __forceinline__ void mbar_expect(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
  uint32_t done = 0;
  while (!done)
    asm volatile(
        "{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(bar), "r"(parity)
        : "memory");
}
// The box (64 columns x NT rows) at (col, row) of the tensor map into shared memory, zeros outside.
__device__ __forceinline__ void tma_load_2d(uint32_t dst, const CUtensorMap* map, int col, int row, uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];"
      ::"r"(dst), "l"(reinterpret_cast<uint64_t>(map)), "r"(col), "r"(row), "r"(bar)
      : "memory");
}

// Stage st's x tile (NT tokens x 64 inputs of chunk c, from token tok0) by TMA, thread 0 only.
template <int NT>
__device__ __forceinline__ void wgmma_load_x(const CUtensorMap* x_map, uint8_t* xs, uint32_t bars, int st, int c,
                                             int tok0) {
  if (threadIdx.x == 0) {
    mbar_expect(bars + 8 * st, NT * 128);  // out-of-range rows and columns arrive as zeros, counted
    tma_load_2d(smem_u32(xs + st * NT * 128), x_map, 64 * c, tok0, bars + 8 * st);
  }
}

// The K loop: d += A B over `chunks` 64-wide input chunks. xs: the kWgStages x tiles (NT x 128 bytes
// each, 1024-byte aligned); bars: their mbarriers (8 bytes apart), initialized. load_stage(st, c) issues
// chunk c's copies into stage st (wgmma_load_x and the weights' cp.async; the loop commits one cp.async
// group per chunk, empty past the end, so the wait counts hold); dequant(c, a) forms chunk c's A
// registers from its stage (a[s][0..3]: sub-tile s's fragment, mma.m16n8k16's A order).
template <int NT, typename LoadStage, typename Dequant>
__device__ __forceinline__ void wgmma_k_loop(float (&d)[NT / 2], int chunks, const uint8_t* xs, uint32_t bars,
                                             LoadStage&& load_stage, Dequant&& dequant) {
  constexpr int kXBytes = NT * 128;
  auto issue = [&](int c, const uint32_t (&a)[4][4]) {
    asm volatile("wgmma.fence.sync.aligned;" ::: "memory");
    const uint32_t xb = smem_u32(xs + (c % kWgStages) * kXBytes);
#pragma unroll
    for (int s = 0; s < 4; ++s) wgmma_tile<NT>(d, a[s][0], a[s][1], a[s][2], a[s][3], smem_desc_sw128(xb + 32 * s));
    asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory");
  };
  // Chunk c's copies are visible to every thread: each waits for its own cp.async groups (wait_own)
  // and for the x tile's mbarrier phase (the stage's (c / kWgStages)-th use), then the barrier.
  auto arrived = [&](int c, auto wait_own) {
    wait_own();
    mbar_wait(bars + 8 * (c % kWgStages), uint32_t(c / kWgStages) & 1u);
    __syncthreads();
  };
  // Chunks 0..2 now, chunk c + 3 at step c, into the stage of chunk c - 1.
#pragma unroll
  for (int s = 0; s < kWgStages - 1; ++s) {
    if (s < chunks) load_stage(s, s);
    cp_async_commit();
  }
  uint32_t a0[4][4], a1[4][4];  // A registers, two sets used in turn
  arrived(0, [] { cp_async_wait<kWgStages - 2>(); });
  dequant(0, a0);
  auto step = [&](int c, const uint32_t (&cur)[4][4], uint32_t (&nxt)[4][4]) {
    issue(c, cur);
    asm volatile("wgmma.wait_group.sync.aligned 1;" ::: "memory");  // chunk c - 1's MMAs are done
    if (c + 1 < chunks) {
      arrived(c + 1, [] { cp_async_wait<kWgStages - 3>(); });  // also: every warpgroup is past chunk c - 1
      if (c + kWgStages - 1 < chunks) load_stage((c + kWgStages - 1) % kWgStages, c + kWgStages - 1);
      cp_async_commit();
      dequant(c + 1, nxt);  // while chunk c's MMAs run
    }
  };
  for (int c = 0; c < chunks; c += 2) {
    step(c, a0, a1);
    if (c + 1 < chunks) step(c + 1, a1, a0);
  }
  asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory");
#pragma unroll
  for (int i = 0; i < NT / 2; ++i) asm volatile("" : "+f"(d[i])::"memory");  // no use of d above the last wait
}

// The mbarriers of the kWgStages stages, initialized by thread 0 and visible to the block.
__device__ __forceinline__ void wgmma_init_bars(uint32_t bars) {
  if (threadIdx.x == 0) {
    for (int st = 0; st < kWgStages; ++st) mbar_init(bars + 8 * st);
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
  }
  __syncthreads();
}

// x [T][row_elems] f16 (row stride row_elems) as a 2-D TMA tensor with boxes of 64 columns x NT rows,
// 128-byte swizzle. `who` names the caller in an error.
inline CUtensorMap wgmma_x_tensor_map(const uint16_t* x, int T, int row_elems, int NT, const char* who) {
  static const PFN_cuTensorMapEncodeTiled_v12000 encode = [] {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult found{};
    QB_CUDA_OK(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault, &found));
    if (!fn || found != cudaDriverEntryPointSuccess)
      throw std::runtime_error("wgmma prefill: the driver has no cuTensorMapEncodeTiled");
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(fn);
  }();
  CUtensorMap map{};
  const cuuint64_t dims[2] = {cuuint64_t(row_elems), cuuint64_t(T)}, strides[1] = {cuuint64_t(row_elems) * 2};
  const cuuint32_t box[2] = {64, cuuint32_t(NT)}, elem[2] = {1, 1};
  const CUresult r = encode(&map, CU_TENSOR_MAP_DATA_TYPE_FLOAT16, 2, const_cast<uint16_t*>(x), dims, strides, box,
                            elem, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                            CU_TENSOR_MAP_L2_PROMOTION_L2_128B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS)
    throw std::runtime_error(std::string(who) + ": cuTensorMapEncodeTiled failed (" + std::to_string(int(r)) + ")");
  return map;
}

// Tokens per block tile for a product of T tokens and n_out rows: 128 where 128 x 128 tiles give at least
// half the SMs a block, else 64 (twice the blocks). From qgemm's H100 sweeps (bench/gpu/qgemm_bench.cu);
// FP8's prefill kernel takes the same rule.
inline int wgmma_tile_tokens(int64_t T, int64_t n_out, int sm_count) {
  const int64_t blocks = ((T + 127) / 128) * ((n_out + 16 * kWgRowWarps - 1) / (16 * kWgRowWarps));
  return 2 * blocks >= sm_count ? 128 : 64;
}

inline int wgmma_sm_count() {
  static const int n = [] {
    int dev = 0, v = 0;
    QB_CUDA_OK(cudaGetDevice(&dev));
    QB_CUDA_OK(cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, dev));
    return v;
  }();
  return n;
}

}  // namespace qb::runtime::cuda
