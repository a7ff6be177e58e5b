// Decode attention benchmark on Llama-2-7B shapes (32 heads, MHA, head dim 128, f16 KV cache): the
// time of one split-key attention launch (rope + KV write fused, counters on: as the CUDA backend runs
// it at decode) for 1 and 16 tokens (one per sequence) at several context lengths, for the step-4
// kernel (variant old) and variant 1's shapes (keys per warp, one or two register buffers, L2
// prefetch, minimum keys per split) and split counts. Each layer has its own caches (32 layers, > 2x the 50 MB L2 at 16 streams and
// context 160), so most K/V bytes come from HBM as in a decode step, where the products between two
// attention launches sweep the L2. Each figure is the median of 15 graph replays of the 32 layers'
// launches, divided by 32 (launch gaps inside a graph included, as in the backend's graph).
// Output: a table on stdout (us per launch, the K/V bytes read over that time in GB/s).
// Usage: qb_attn_bench
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "quantbench/runtime/cuda/cuda_check.h"
#include "quantbench/runtime/cuda/forward_kernels.h"

using namespace qb::runtime::cuda;

namespace {

constexpr int kLayers = 32, kHeads = 32, kHd = 128;

// f16 values in about [0.06, 0.5) from a hash of the index.
__global__ void fill_kernel(uint16_t* p, size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    p[i] = uint16_t(0x2c00 + ((i * 2654435761u) >> 22) % 0x800);
}

struct Config {
  std::string name;
  int variant, kpw;
  bool dbl;
  int prefetch, min_keys, blocks_per_sm;
};

}  // namespace

int main() {
  cudaDeviceProp prop{};
  QB_CUDA_OK(cudaGetDeviceProperties(&prop, 0));
  const int sms = prop.multiProcessorCount;
  std::printf("%s, %d SMs\n", prop.name, sms);
  std::vector<Config> cfgs = {{"old", 0, 8, false, 0, 0, 8}};
  for (int k : {4, 8})
    for (bool dbl : {false, true})
      for (int pf : {0, 64, 256})
        cfgs.push_back({"v1 " + std::to_string(k) + "k" + (dbl ? " dbl" : "") + " pf" + std::to_string(pf), 1, k, dbl, pf, 0, 8});
  cfgs.push_back({"v1 4k dbl min128", 1, 4, true, 0, 128, 8});
  cfgs.push_back({"v1 8k pf64 min64", 1, 8, false, 64, 64, 8});
  cfgs.push_back({"v1 8k pf64 bps4", 1, 8, false, 64, 0, 4});
  cfgs.push_back({"v1 8k pf256 bps4", 1, 8, false, 256, 0, 4});
  cfgs.push_back({"v1 8k dbl bps4", 1, 8, true, 0, 0, 4});
  const int64_t ctxs[] = {160, 1024, 4096};
  const int Ts[] = {1, 16};
  const int64_t cap = 4096, row = int64_t(kHeads) * kHd;  // cache row: [pos][n_head_kv * hd]
  std::printf("%-22s %3s %5s %6s %9s %9s\n", "config", "T", "ctx", "splits", "us/launch", "GB/s");
  for (int T : Ts) {
    // Caches: T sequences x kLayers layers, each [cap][row] f16 (K and V), random small values.
    const size_t per = size_t(cap) * size_t(row);
    const size_t total = per * size_t(T) * kLayers * 2;
    uint16_t* kv = nullptr;
    QB_CUDA_OK(cudaMalloc(&kv, total * 2));
    fill_kernel<<<4096, 256>>>(kv, total);
    QB_CUDA_LAUNCHED();
    const int64_t qkv_stride = 3 * row;
    std::vector<float> hq(size_t(T) * qkv_stride);
    for (size_t i = 0; i < hq.size(); ++i) hq[i] = float(int(i * 7919 % 200) - 100) / 100.0f;
    float *q = nullptr, *cs = nullptr, *sn = nullptr, *out = nullptr, *part = nullptr;
    QB_CUDA_OK(cudaMalloc(&q, hq.size() * 4));
    QB_CUDA_OK(cudaMemcpy(q, hq.data(), hq.size() * 4, cudaMemcpyHostToDevice));
    std::vector<float> hc(size_t(T) * kHd / 2, 0.8f), hs(hc.size(), 0.6f);
    QB_CUDA_OK(cudaMalloc(&cs, hc.size() * 4));
    QB_CUDA_OK(cudaMalloc(&sn, hs.size() * 4));
    QB_CUDA_OK(cudaMemcpy(cs, hc.data(), hc.size() * 4, cudaMemcpyHostToDevice));
    QB_CUDA_OK(cudaMemcpy(sn, hs.data(), hs.size() * 4, cudaMemcpyHostToDevice));
    QB_CUDA_OK(cudaMalloc(&out, size_t(T) * row * 4));
    QB_CUDA_OK(cudaMalloc(&part, size_t(T) * kHeads * 32 * (kHd + 2) * 4));
    unsigned* counters = nullptr;
    QB_CUDA_OK(cudaMalloc(&counters, size_t(T) * kHeads * 4));
    QB_CUDA_OK(cudaMemset(counters, 0, size_t(T) * kHeads * 4));
    int64_t* pos = nullptr;
    QB_CUDA_OK(cudaMalloc(&pos, size_t(T) * 8));
    // Per layer: the T sequences' K and V cache pointers.
    std::vector<uint16_t**> kp(kLayers), vp(kLayers);
    for (int l = 0; l < kLayers; ++l) {
      std::vector<uint16_t*> hk(static_cast<size_t>(T)), hv(static_cast<size_t>(T));
      for (int t = 0; t < T; ++t) {
        hk[size_t(t)] = kv + (size_t(l) * T + size_t(t)) * 2 * per;
        hv[size_t(t)] = hk[size_t(t)] + per;
      }
      QB_CUDA_OK(cudaMalloc(&kp[size_t(l)], size_t(T) * 8));
      QB_CUDA_OK(cudaMalloc(&vp[size_t(l)], size_t(T) * 8));
      QB_CUDA_OK(cudaMemcpy(kp[size_t(l)], hk.data(), size_t(T) * 8, cudaMemcpyHostToDevice));
      QB_CUDA_OK(cudaMemcpy(vp[size_t(l)], hv.data(), size_t(T) * 8, cudaMemcpyHostToDevice));
    }
    cudaStream_t st;
    QB_CUDA_OK(cudaStreamCreate(&st));
    cudaEvent_t e0, e1;
    QB_CUDA_OK(cudaEventCreate(&e0));
    QB_CUDA_OK(cudaEventCreate(&e1));
    for (int64_t ctx : ctxs) {
      std::vector<int64_t> hp(static_cast<size_t>(T), ctx - 1);  // the new token at ctx - 1: ctx keys
      QB_CUDA_OK(cudaMemcpy(pos, hp.data(), size_t(T) * 8, cudaMemcpyHostToDevice));
      const double bytes = double(T) * kLayers * double(ctx) * double(row) * 2 * 2;
      for (const Config& c : cfgs) {
        AttentionArgs a;
        a.q = q;
        a.q_stride = qkv_stride;
        a.out = out;
        a.T = T;
        a.n_head = a.n_head_kv = kHeads;
        a.hd_k = a.hd_v = kHd;
        a.pos = pos;
        a.scale = 0.088f;
        a.splits = attention_splits(kHeads, T, sms, c.blocks_per_sm);
        a.part = part;
        a.counters = counters;
        a.rope_cos = cs;
        a.rope_sin = sn;
        a.rope_neox = false;
        a.variant = c.variant;
        a.kpw = c.kpw;
        a.double_buffer = c.dbl;
        a.prefetch_keys = c.prefetch;
        a.min_split_keys = c.min_keys;
        cudaGraph_t g;
        QB_CUDA_OK(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal));
        for (int l = 0; l < kLayers; ++l) {
          a.k_cache = kp[size_t(l)];
          a.v_cache = vp[size_t(l)];
          attention(a, st);
        }
        QB_CUDA_OK(cudaStreamEndCapture(st, &g));
        cudaGraphExec_t ge;
        QB_CUDA_OK(cudaGraphInstantiate(&ge, g, 0));
        std::vector<float> ms;
        for (int r = 0; r < 18; ++r) {
          QB_CUDA_OK(cudaEventRecord(e0, st));
          QB_CUDA_OK(cudaGraphLaunch(ge, st));
          QB_CUDA_OK(cudaEventRecord(e1, st));
          QB_CUDA_OK(cudaEventSynchronize(e1));
          float x = 0;
          QB_CUDA_OK(cudaEventElapsedTime(&x, e0, e1));
          if (r >= 3) ms.push_back(x);
        }
        std::sort(ms.begin(), ms.end());
        const double us = double(ms[ms.size() / 2]) * 1e3 / kLayers;
        std::printf("%-22s %3d %5lld %6d %9.2f %9.0f\n", c.name.c_str(), T, static_cast<long long>(ctx), a.splits, us,
                    bytes / kLayers / (us * 1e-6) / 1e9);
        QB_CUDA_OK(cudaGraphExecDestroy(ge));
        QB_CUDA_OK(cudaGraphDestroy(g));
      }
    }
    QB_CUDA_OK(cudaStreamDestroy(st));
    for (int l = 0; l < kLayers; ++l) {
      QB_CUDA_OK(cudaFree(kp[size_t(l)]));
      QB_CUDA_OK(cudaFree(vp[size_t(l)]));
    }
    for (void* p : {static_cast<void*>(kv), static_cast<void*>(q), static_cast<void*>(cs), static_cast<void*>(sn),
                    static_cast<void*>(out), static_cast<void*>(part), static_cast<void*>(counters), static_cast<void*>(pos)})
      QB_CUDA_OK(cudaFree(p));
  }
  return 0;
}
