// forward_kernels_check's small kernels: argmax_rows against std::max_element, copy_from_mapped byte for byte.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "quantbench/runtime/cuda/cuda_check.h"
#include "quantbench/runtime/cuda/forward_kernels.h"
#include "forward_check.h"

using namespace qb::runtime::cuda;

namespace forward_check {

void check_copy_from_mapped(size_t bytes, std::mt19937_64& rng) {
  ++g_n;
  void* host = nullptr;
  void* mapped = nullptr;
  QB_CUDA_OK(cudaHostAlloc(&host, bytes, cudaHostAllocMapped));
  QB_CUDA_OK(cudaHostGetDevicePointer(&mapped, host, 0));
  std::vector<uint8_t> want(bytes);
  for (auto& b : want) b = uint8_t(rng());
  std::memcpy(host, want.data(), bytes);
  Dev<uint8_t> dst(bytes + 16, 0xa5);  // 16 bytes past the end must stay poisoned
  copy_from_mapped(mapped, dst.p, bytes, nullptr);
  QB_CUDA_OK(cudaDeviceSynchronize());
  const auto got = dst.get();
  size_t bad = 0;
  for (size_t i = 0; i < bytes; ++i) bad += got[i] != want[i];
  for (size_t i = bytes; i < bytes + 16; ++i) bad += got[i] != 0xa5;
  bool refused = false;
  try {
    copy_from_mapped(mapped, dst.p, bytes - 8, nullptr);
  } catch (const std::invalid_argument&) {
    refused = true;
  }
  QB_CUDA_OK(cudaFreeHost(host));
  FCHECK(bad == 0 && refused, "copy_from_mapped %zu bytes: %zu bytes wrong, %zu - 8 bytes %s", bytes, bad, bytes,
         refused ? "refused" : "NOT refused");
  std::printf("%-6s copy_from_mapped %zu bytes\n", g_fail ? "?" : "ok", bytes);
}

void check_argmax(int n, int rows, std::mt19937_64& rng, bool to_mapped) {
  ++g_n;
  std::uniform_int_distribution<int> small(-50, 50);
  std::vector<float> z(size_t(n) * rows);
  for (auto& v : z) v = float(small(rng)) * 0.25f;  // many ties
  for (int r = 0; r < rows; ++r) {  // a planted tie for the maximum in every row
    const int i = int(rng() % uint64_t(n)), j = int(rng() % uint64_t(n));
    z[size_t(r) * n + i] = z[size_t(r) * n + j] = 100.0f + float(r);
  }
  if (rows >= 2) {  // row 1: the maximum at the last index, and a row 0 of -inf only (index 0 wins)
    std::fill(z.begin(), z.begin() + n, -INFINITY);
    z[size_t(2) * n - 1] = 1000.0f;
  }
  Dev<float> dz(z);
  Dev<int32_t> ids(static_cast<size_t>(rows), 0xff);
  std::vector<int32_t> got(static_cast<size_t>(rows));
  if (to_mapped) {  // as a graphed greedy step does: the ids straight into mapped pinned host memory
    int32_t* host = nullptr;
    void* mapped = nullptr;
    QB_CUDA_OK(cudaHostAlloc(reinterpret_cast<void**>(&host), size_t(rows) * 4, cudaHostAllocMapped));
    QB_CUDA_OK(cudaHostGetDevicePointer(&mapped, host, 0));
    std::fill(host, host + rows, -1);
    argmax_rows(dz.p, n, rows, static_cast<int32_t*>(mapped), nullptr);
    QB_CUDA_OK(cudaDeviceSynchronize());
    std::copy(host, host + rows, got.begin());
    QB_CUDA_OK(cudaFreeHost(host));
  } else {
    argmax_rows(dz.p, n, rows, ids.p, nullptr);
    QB_CUDA_OK(cudaDeviceSynchronize());
    got = ids.get();
  }
  size_t bad = 0;
  for (int r = 0; r < rows; ++r) {
    const float* row = z.data() + size_t(r) * n;
    bad += got[size_t(r)] != int32_t(std::max_element(row, row + n) - row);
  }
  FCHECK(bad == 0, "argmax_rows n=%d rows=%d%s: %zu rows differ from std::max_element", n, rows,
         to_mapped ? " (mapped host ids)" : "", bad);
  std::printf("%-6s argmax_rows n=%d rows=%d%s\n", g_fail ? "?" : "ok", n, rows, to_mapped ? " (mapped host ids)" : "");
}

}  // namespace forward_check
