// One kernel launch that may carry the programmatic-dependent-launch attribute ("early"): the decode
// products (qgemv) and the small decode kernels (forward_kernels.cu) launch through it. With `early`
// the kernel's blocks may start before the previous kernel in the stream has finished; the kernel
// itself must wait (griddepcontrol.wait) before reading that kernel's output. Without it, a plain launch.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <utility>

#include "quantbench/runtime/cuda/cuda_check.h"

namespace qb::runtime::cuda {

// cluster_z > 0: the grid's blocks in thread-block clusters of (1, 1, cluster_z) (grid.z a multiple of it).
template <typename... Params, typename... Args>
void launch_kernel_in_clusters(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t s,
                               bool early, unsigned cluster_z, Args&&... args) {
  cudaLaunchConfig_t c = {};
  c.gridDim = grid;
  c.blockDim = block;
  c.dynamicSmemBytes = smem;
  c.stream = s;
  cudaLaunchAttribute at[2];
  unsigned n = 0;
  if (early) {
    at[n].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    at[n++].val.programmaticStreamSerializationAllowed = 1;
  }
  if (cluster_z > 0) {
    at[n].id = cudaLaunchAttributeClusterDimension;
    at[n++].val.clusterDim = {1, 1, cluster_z};
  }
  c.attrs = at;
  c.numAttrs = n;
  QB_CUDA_OK(cudaLaunchKernelEx(&c, kernel, std::forward<Args>(args)...));
}

template <typename... Params, typename... Args>
void launch_kernel(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t s, bool early,
                   Args&&... args) {
  launch_kernel_in_clusters(kernel, grid, block, smem, s, early, 0u, std::forward<Args>(args)...);
}

}  // namespace qb::runtime::cuda
