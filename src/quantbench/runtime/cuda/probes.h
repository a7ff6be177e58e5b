// Ceilings measured on the card itself, in the same run as the kernels they judge (METHOD.md: a
// datasheet rate is a lead, a same-run probe is the roofline): device memory bandwidth by a plain
// 16-byte copy and by a read-only reduction, and the bf16 matrix-unit rate through cuBLAS.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

namespace qb::runtime::cuda {

struct Timing {
  double median_ms = 0, min_ms = 0, max_ms = 0;  // per operation
  int reps = 0;
};

// Times op(i) for i = 0.. (the caller rotates buffers by i): warm-up, then `reps` samples of `inner`
// back-to-back calls captured once in a CUDA graph (so launch gaps are those of a graph replay, as in
// a decode step), each sample timed with events; reports per-call median, min and max.
Timing time_graph(const std::function<void(int, cudaStream_t)>& op, int inner, int reps, cudaStream_t stream);

// Synthetic data generated on the device (nothing large travels): a counter-based hash, so any seed
// gives fresh, reproducible, non-zero data. bf16/f16 uniform in [lo, hi); bytes masked with `mask`.
void fill_uniform_bf16(void* p, size_t n, uint64_t seed, float lo, float hi, cudaStream_t stream);
void fill_uniform_f16(void* p, size_t n, uint64_t seed, float lo, float hi, cudaStream_t stream);
void fill_bytes(void* p, size_t n, uint64_t seed, uint8_t mask, cudaStream_t stream);
// Asymmetric int4's 8-byte scale entries (qgemv.h): bytes 4-5 of each of the n entries become two zero
// points 0..15 and bytes 6-7 zero; the scale pair in bytes 0-3 is left as it is.
void fill_zero_pairs(void* entries, size_t n, uint64_t seed, cudaStream_t stream);

struct BandwidthResult {
  size_t bytes = 0;               // buffer size
  Timing copy_kernel, read_kernel, copy_memcpy;
  double copy_gbs = 0;            // our copy kernel, (read + written) bytes / median time
  double read_gbs = 0;            // read-only kernel, bytes read / median time
  double memcpy_gbs = 0;          // cudaMemcpyAsync device-to-device, (read + written) / median
};
BandwidthResult probe_bandwidth(size_t bytes, int reps);

struct GemmResult {
  int m = 0, n = 0, k = 0;  // C[m][n] = A[m][k] B[k][n]^T... in token terms: m tokens, n outputs, k inputs
  Timing t;
  double tflops = 0;
  double weight_gbs = 0;  // n*k*2 bytes of weights over the median time (for matrix-vector shapes)
};
// bf16 inputs, f32 accumulation, bf16 output through cublasGemmEx. Rotates among enough weight
// copies that the set exceeds the L2 several times. tokens x n_out x n_in.
GemmResult probe_gemm_bf16(int tokens, int n_out, int n_in, int reps);

}  // namespace qb::runtime::cuda
