// The device side of the packed matrices (qgemv.h): upload, allocation, random group parameters.
#include <cuda_runtime.h>

#include "quantbench/runtime/cuda/cuda_check.h"
#include "quantbench/runtime/cuda/probes.h"
#include "quantbench/runtime/cuda/qgemv.h"

namespace qb::runtime::cuda {

DeviceMatrix upload(const PackedHost& p) {
  DeviceMatrix d;
  d.shape = p.shape;
  auto put = [](const std::vector<uint8_t>& v) -> std::shared_ptr<void> {
    if (v.empty()) return nullptr;
    void* ptr = nullptr;
    QB_CUDA_OK(cudaMalloc(&ptr, v.size()));
    std::shared_ptr<void> owned(ptr, [](void* q) { cudaFree(q); });
    QB_CUDA_OK(cudaMemcpy(ptr, v.data(), v.size(), cudaMemcpyHostToDevice));
    return owned;
  };
  d.weights = put(p.weights);
  d.scales = put(p.scales);
  d.zeros = put(p.zeros);
  d.weight_bytes = p.weights.size();
  d.scale_bytes = p.scales.size();
  d.zero_bytes = p.zeros.size();
  return d;
}

DeviceMatrix allocate(const PackedShape& p) {
  DeviceMatrix d;
  d.shape = p;
  const PackedSizes s = packed_sizes(p);
  auto get = [](size_t n) -> std::shared_ptr<void> {
    if (n == 0) return nullptr;
    void* ptr = nullptr;
    QB_CUDA_OK(cudaMalloc(&ptr, n));
    return std::shared_ptr<void>(ptr, [](void* q) { cudaFree(q); });
  };
  d.weights = get(s.weights);
  d.scales = get(s.scales);
  d.zeros = get(s.zeros);
  d.weight_bytes = s.weights;
  d.scale_bytes = s.scales;
  d.zero_bytes = s.zeros;
  return d;
}

void fill_random_group_params(const DeviceMatrix& d, uint64_t seed, float scale_lo, float scale_hi, float min_lo,
                              float min_hi, cudaStream_t stream) {
  const QuantSpec& spec = d.shape.spec;
  if (d.scale_bytes) fill_uniform_f16(d.scales.get(), d.scale_bytes / 2, seed ^ 0x5ca1e, scale_lo, scale_hi, stream);
  // Asymmetric int4: the scale array's 8-byte entries carry the zero points (qgemv.h).
  if (spec.format == WeightFormat::W4A16 && spec.asym) fill_zero_pairs(d.scales.get(), d.scale_bytes / 8, seed ^ 0x2e70, stream);
  if (spec.mins) fill_uniform_f16(d.zeros.get(), d.zero_bytes / 2, seed ^ 0x2e70, min_lo, min_hi, stream);
}

}  // namespace qb::runtime::cuda
