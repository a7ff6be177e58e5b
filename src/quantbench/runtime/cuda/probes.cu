// Bandwidth and matrix-rate probes (see probes.h). The copy and read kernels use 16-byte accesses and
// a grid-stride loop over buffers far larger than the L2, the way the decode kernels stream weights,
// so their rate is the roofline those kernels are judged against.
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <memory>
#include <stdexcept>
#include <string>

#include "quantbench/runtime/cuda/cuda_check.h"
#include "quantbench/runtime/cuda/probes.h"

#define QB_CUBLAS_OK(call)                                                                       \
  do {                                                                                           \
    cublasStatus_t qb_st_ = (call);                                                              \
    if (qb_st_ != CUBLAS_STATUS_SUCCESS)                                                         \
      ::qb::runtime::cuda::throw_cuda(#call, cublasGetStatusString(qb_st_), __FILE__, __LINE__); \
  } while (0)

namespace qb::runtime::cuda {
namespace {

__device__ __forceinline__ uint64_t mix(uint64_t z) {  // splitmix64 finalizer
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
__device__ __forceinline__ float unit(uint64_t seed, size_t i) {
  return float(mix(seed * 0x9e3779b97f4a7c15ull + i) >> 40) * (1.0f / 16777216.0f);
}

__global__ void fill_bf16_kernel(__nv_bfloat16* p, size_t n, uint64_t seed, float lo, float hi) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    p[i] = __float2bfloat16(lo + (hi - lo) * unit(seed, i));
}
__global__ void fill_f16_kernel(__half* p, size_t n, uint64_t seed, float lo, float hi) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    p[i] = __float2half(lo + (hi - lo) * unit(seed, i));
}
__global__ void fill_bytes_kernel(uint8_t* p, size_t n, uint64_t seed, uint8_t mask) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    p[i] = uint8_t(mix(seed * 0x9e3779b97f4a7c15ull + i)) & mask;
}

__global__ void fill_zero_pairs_kernel(uint2* p, size_t n, uint64_t seed) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    p[i].y = uint32_t(mix(seed * 0x9e3779b97f4a7c15ull + i)) & 0x0f0fu;
}

__global__ void copy_kernel(const uint4* __restrict__ src, uint4* __restrict__ dst, size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    dst[i] = src[i];
}
__global__ void read_kernel(const uint4* __restrict__ src, size_t n, uint32_t* __restrict__ sink) {
  uint32_t acc = 0;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    const uint4 v = src[i];
    acc ^= v.x ^ v.y ^ v.z ^ v.w;
  }
  if (acc == 0x9e3779b9u) sink[0] = acc;  // keeps the loads alive; almost never taken
}

int grid_for(size_t n_items, int threads) {
  int dev = 0, sms = 0;
  QB_CUDA_OK(cudaGetDevice(&dev));
  QB_CUDA_OK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  return int(std::min<size_t>((n_items + threads - 1) / threads, size_t(sms) * 8));
}

Timing summarize(std::vector<float> ms_per_call) {
  std::sort(ms_per_call.begin(), ms_per_call.end());
  Timing t;
  t.reps = int(ms_per_call.size());
  t.min_ms = ms_per_call.front();
  t.max_ms = ms_per_call.back();
  const size_t n = ms_per_call.size();
  t.median_ms = n % 2 ? ms_per_call[n / 2] : 0.5 * (ms_per_call[n / 2 - 1] + ms_per_call[n / 2]);
  return t;
}

struct DevBuf {
  void* p = nullptr;
  explicit DevBuf(size_t n) { QB_CUDA_OK(cudaMalloc(&p, n)); }
  ~DevBuf() { cudaFree(p); }
  DevBuf(const DevBuf&) = delete;
  DevBuf& operator=(const DevBuf&) = delete;
};

}  // namespace

void fill_uniform_bf16(void* p, size_t n, uint64_t seed, float lo, float hi, cudaStream_t s) {
  fill_bf16_kernel<<<grid_for(n, 256), 256, 0, s>>>(static_cast<__nv_bfloat16*>(p), n, seed, lo, hi);
  QB_CUDA_LAUNCHED();
}
void fill_uniform_f16(void* p, size_t n, uint64_t seed, float lo, float hi, cudaStream_t s) {
  fill_f16_kernel<<<grid_for(n, 256), 256, 0, s>>>(static_cast<__half*>(p), n, seed, lo, hi);
  QB_CUDA_LAUNCHED();
}
void fill_zero_pairs(void* entries, size_t n, uint64_t seed, cudaStream_t s) {
  fill_zero_pairs_kernel<<<grid_for(n, 256), 256, 0, s>>>(static_cast<uint2*>(entries), n, seed);
  QB_CUDA_LAUNCHED();
}
void fill_bytes(void* p, size_t n, uint64_t seed, uint8_t mask, cudaStream_t s) {
  fill_bytes_kernel<<<grid_for(n, 256), 256, 0, s>>>(static_cast<uint8_t*>(p), n, seed, mask);
  QB_CUDA_LAUNCHED();
}

Timing time_graph(const std::function<void(int, cudaStream_t)>& op, int inner, int reps, cudaStream_t stream) {
  for (int i = 0; i < inner; ++i) op(i, stream);  // warm-up: module load, handles, clocks
  QB_CUDA_OK(cudaStreamSynchronize(stream));
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  QB_CUDA_OK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  for (int i = 0; i < inner; ++i) op(i, stream);
  QB_CUDA_OK(cudaStreamEndCapture(stream, &graph));
  QB_CUDA_OK(cudaGraphInstantiate(&exec, graph, 0));
  cudaEvent_t a, b;
  QB_CUDA_OK(cudaEventCreate(&a));
  QB_CUDA_OK(cudaEventCreate(&b));
  QB_CUDA_OK(cudaGraphLaunch(exec, stream));  // warm the graph itself
  std::vector<float> samples;
  for (int r = 0; r < reps; ++r) {
    QB_CUDA_OK(cudaEventRecord(a, stream));
    QB_CUDA_OK(cudaGraphLaunch(exec, stream));
    QB_CUDA_OK(cudaEventRecord(b, stream));
    QB_CUDA_OK(cudaEventSynchronize(b));
    float ms = 0;
    QB_CUDA_OK(cudaEventElapsedTime(&ms, a, b));
    samples.push_back(ms / inner);
  }
  QB_CUDA_OK(cudaEventDestroy(a));
  QB_CUDA_OK(cudaEventDestroy(b));
  QB_CUDA_OK(cudaGraphExecDestroy(exec));
  QB_CUDA_OK(cudaGraphDestroy(graph));
  return summarize(samples);
}

BandwidthResult probe_bandwidth(size_t bytes, int reps) {
  bytes = bytes / 16 * 16;
  BandwidthResult r;
  r.bytes = bytes;
  DevBuf a(bytes), b(bytes), sink(16);
  cudaStream_t s;
  QB_CUDA_OK(cudaStreamCreate(&s));
  fill_bytes(a.p, bytes, 1, 0xff, s);
  fill_bytes(b.p, bytes, 2, 0xff, s);
  const size_t n = bytes / 16;
  const int threads = 512, grid = grid_for(n, threads);
  // Alternate direction so consecutive calls never find their source in L2.
  r.copy_kernel = time_graph(
      [&](int i, cudaStream_t st) {
        const void* src = i % 2 ? b.p : a.p;
        void* dst = i % 2 ? a.p : b.p;
        copy_kernel<<<grid, threads, 0, st>>>(static_cast<const uint4*>(src), static_cast<uint4*>(dst), n);
      },
      4, reps, s);
  r.read_kernel = time_graph(
      [&](int i, cudaStream_t st) {
        read_kernel<<<grid, threads, 0, st>>>(static_cast<const uint4*>(i % 2 ? b.p : a.p), n,
                                              static_cast<uint32_t*>(sink.p));
      },
      4, reps, s);
  r.copy_memcpy = time_graph(
      [&](int i, cudaStream_t st) {
        QB_CUDA_OK(cudaMemcpyAsync(i % 2 ? a.p : b.p, i % 2 ? b.p : a.p, bytes, cudaMemcpyDeviceToDevice, st));
      },
      4, reps, s);
  QB_CUDA_LAUNCHED();
  QB_CUDA_OK(cudaStreamSynchronize(s));
  QB_CUDA_OK(cudaStreamDestroy(s));
  r.copy_gbs = 2.0 * bytes / (r.copy_kernel.median_ms * 1e6);
  r.read_gbs = 1.0 * bytes / (r.read_kernel.median_ms * 1e6);
  r.memcpy_gbs = 2.0 * bytes / (r.copy_memcpy.median_ms * 1e6);
  return r;
}

GemmResult probe_gemm_bf16(int tokens, int n_out, int n_in, int reps) {
  GemmResult g;
  g.m = tokens;
  g.n = n_out;
  g.k = n_in;
  const size_t wbytes = size_t(n_out) * n_in * 2;
  const int copies = int(std::max<size_t>(2, (200u << 20) / wbytes + 1));
  cudaStream_t s;
  QB_CUDA_OK(cudaStreamCreate(&s));
  std::vector<std::unique_ptr<DevBuf>> w;
  for (int c = 0; c < copies; ++c) {
    w.push_back(std::make_unique<DevBuf>(wbytes));
    fill_uniform_bf16(w.back()->p, size_t(n_out) * n_in, 100 + c, -1.f, 1.f, s);
  }
  DevBuf x(size_t(tokens) * n_in * 2), y(size_t(tokens) * n_out * 2);
  fill_uniform_bf16(x.p, size_t(tokens) * n_in, 7, -1.f, 1.f, s);
  cublasHandle_t h;
  QB_CUBLAS_OK(cublasCreate(&h));
  QB_CUBLAS_OK(cublasSetStream(h, s));
  // A 32 MiB workspace set explicitly keeps cuBLAS from allocating inside graph capture.
  DevBuf ws(32u << 20);
  QB_CUBLAS_OK(cublasSetWorkspace(h, ws.p, 32u << 20));
  const float alpha = 1.f, beta = 0.f;
  // Row-major W[n_out][n_in] is column-major W^T; y^T[n_out][tokens] = W x^T.
  g.t = time_graph(
      [&](int i, cudaStream_t) {
        QB_CUBLAS_OK(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, n_out, tokens, n_in, &alpha, w[i % copies]->p,
                                  CUDA_R_16BF, n_in, x.p, CUDA_R_16BF, n_in, &beta, y.p, CUDA_R_16BF, n_out,
                                  CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
      },
      copies * std::max(1, 20 / copies), reps, s);
  QB_CUDA_OK(cudaStreamSynchronize(s));
  QB_CUBLAS_OK(cublasDestroy(h));
  QB_CUDA_OK(cudaStreamDestroy(s));
  g.tflops = 2.0 * tokens * double(n_out) * n_in / (g.t.median_ms * 1e9);
  g.weight_gbs = double(wbytes) / (g.t.median_ms * 1e6);
  return g;
}

}  // namespace qb::runtime::cuda
