// One kernel launch that may carry the programmatic-dependent-launch attribute ("early"): the decode
// products (qgemv, the W8A8 gemv kernels) and the small decode kernels (forward_kernels.h) launch
// through it; the device side's two instructions are below. With `early`
// the kernel's blocks may start before the previous kernel in the stream has finished; the kernel
// itself must wait (griddepcontrol.wait) before reading that kernel's output. Without it, a plain launch.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <utility>

#include "quantbench/runtime/cuda/cuda_check.h"

namespace qb::runtime::cuda {

template <typename... Params, typename... Args>
void launch_kernel(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t s, bool early,
                   Args&&... args) {
  cudaLaunchConfig_t c = {};
  c.gridDim = grid;
  c.blockDim = block;
  c.dynamicSmemBytes = smem;
  c.stream = s;
  cudaLaunchAttribute at[1];
  at[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  at[0].val.programmaticStreamSerializationAllowed = 1;
  c.attrs = at;
  c.numAttrs = early ? 1 : 0;
  QB_CUDA_OK(cudaLaunchKernelEx(&c, kernel, std::forward<Args>(args)...));
}

#ifdef __CUDACC__
// Inside an early-launched kernel's dependency chain: pdl_launch_dependents lets the next kernel in the
// stream (if launched early) start now; pdl_wait waits until the kernel before this one has completed
// and its writes are visible. Both are no-ops where the launches did not ask for the overlap.
__device__ __forceinline__ void pdl_launch_dependents() { asm volatile("griddepcontrol.launch_dependents;"); }
__device__ __forceinline__ void pdl_wait() { asm volatile("griddepcontrol.wait;" ::: "memory"); }
// pdl_wait that also hands back `p`, the kernel before's output, as if the wait had produced it. A load
// marked read-only (__ldg, or through const __restrict__) counts as invariant to the compiler, which may
// then move it above the wait's memory clobber (it did in w8a8_fp8_mma.cu: docs/perf.md, session 28); a
// load through the returned pointer cannot be issued before the instruction that defines its address.
// The same PTX as pdl_wait (the pointer stays in its register); it keeps the read-only load path, which
// plain loads left 1-2% slower in qgemv (session 29).
template <typename T>
__device__ __forceinline__ const T* pdl_wait_for(const T* p) {
  asm volatile("griddepcontrol.wait;" : "+l"(p) : : "memory");
  return p;
}
#endif

}  // namespace qb::runtime::cuda
