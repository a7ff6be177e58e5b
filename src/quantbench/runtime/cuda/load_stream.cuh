// The 16-byte load for data read once (weights): L1 no-allocate, so L1 stays for what is re-read (the
// activation fragments). One copy, so qgemv and the probe that times its load pattern
// (bench/gpu/kv_read_probe.cu) issue the same instruction.
#pragma once
#include <cuda_runtime.h>

namespace qb::runtime::cuda {

// QB_WEIGHTS_EVICT_FIRST (experiment, session 14): ld.global.cs.nc, evict-first in L1 and L2, instead.
#ifndef QB_WEIGHTS_EVICT_FIRST
#define QB_WEIGHTS_EVICT_FIRST 1
#endif
__device__ __forceinline__ uint4 load_stream(const uint4* p) {
  uint4 v;
#if QB_WEIGHTS_EVICT_FIRST
  asm volatile("ld.global.cs.nc.v4.u32 {%0,%1,%2,%3}, [%4];" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
#else
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
#endif
  return v;
}

}  // namespace qb::runtime::cuda
