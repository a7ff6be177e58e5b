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

}  // namespace qb::runtime::cuda
