// The 16-byte load for data read once (weights): L1 no-allocate, so L1 stays for what is re-read (the
// activation fragments). One copy, so qgemv and the probe that times its load pattern
// (bench/gpu/kv_read_probe.cu) issue the same instruction.
#pragma once
#include <cuda_runtime.h>

namespace qb::runtime::cuda {

__device__ __forceinline__ uint4 load_stream(const uint4* p) {
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
  return v;
}

// A 32-bit load with an L2 eviction policy from l2_policy(): evict-first for data read once that
// streams past what later kernels re-read from L2 (the decode attention's K and V rows).
__device__ __forceinline__ uint64_t l2_policy(bool evict_first) {
  uint64_t policy;
  if (evict_first) asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(policy));
  else asm volatile("createpolicy.fractional.L2::evict_normal.b64 %0, 1.0;" : "=l"(policy));
  return policy;
}
__device__ __forceinline__ uint32_t load_u32_policy(const void* p, uint64_t policy) {
  uint32_t v;
  asm volatile("ld.global.L2::cache_hint.b32 %0, [%1], %2;" : "=r"(v) : "l"(p), "l"(policy));
  return v;
}

}  // namespace qb::runtime::cuda
