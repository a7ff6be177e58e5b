// Error checking for CUDA runtime and cuBLAS calls. The CUDA code depends only on the CUDA toolkit
// (it must build on the GPU machine, which lacks fmt), so failures throw std::runtime_error with the
// call, file and line rather than qb::Error; callers in the library may rethrow with context.
#pragma once
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace qb::runtime::cuda {

[[noreturn]] inline void throw_cuda(const char* what, const char* msg, const char* file, int line) {
  throw std::runtime_error(std::string(file) + ":" + std::to_string(line) + ": " + what + ": " + msg);
}

}  // namespace qb::runtime::cuda

#define QB_CUDA_OK(call)                                                                     \
  do {                                                                                       \
    cudaError_t qb_err_ = (call);                                                            \
    if (qb_err_ != cudaSuccess)                                                              \
      ::qb::runtime::cuda::throw_cuda(#call, cudaGetErrorString(qb_err_), __FILE__, __LINE__); \
  } while (0)

// After a kernel launch: catches bad launch configurations at once (not asynchronous faults).
#define QB_CUDA_LAUNCHED() QB_CUDA_OK(cudaGetLastError())
