// Probe (GPU machine): how fast can a decode step's KV-cache read go, by access pattern? 16 sequences x
// 32 heads x 128 dims of f16, 192 keys each (the 16-stream benchmark's mean context), K and V, read
// the ways an attention kernel could: (a) the cache as now ([pos][head][dim]: 256-byte pieces 8 KB
// apart), one block per (head, sequence, split) as attention_split_kernel; (b) the same layout, one
// block per (sequence, split) reading whole 8 KB rows; (c) a head-major layout ([head][pos][dim]: each
// (sequence, head)'s keys contiguous), one block per (head, sequence, split). Caches rotate among
// copies over 4x the L2, so every read is from HBM. Prints GB/s per pattern: single launches (median of
// 21) and 24 back to back in a graph. Then the decode attention itself (attention(), both kernels) in a
// graph at that shape and 64-384 keys, against the read of the same bytes (attention_alone).
// Then the floor of "one streaming kernel per product": a plain read kernel (16-byte loads, 4 in
// flight per thread, 8 blocks of 256 threads per SM) timed alone at each size a Llama-2-7B w4g128
// decode product reads, and the 129 reads of one decode step replayed as a CUDA graph; and per shape,
// 24 back to back in a graph, that read against qgemv's own load pattern with no arithmetic. Last, the
// step's 129 reads in one persistent kernel with a grid barrier between them (what a persistent decode
// kernel would pay at its product boundaries), with and without the next read's first loads issued
// before each barrier. docs/perf.md (sessions 8 and 10) has what it showed.
// Built as qb_kv_read_probe (CMake with -DQB_CUDA=ON; bench/gpu/stage.sh stages it).
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <vector>

#include "quantbench/runtime/cuda/forward_kernels.h"
#include "quantbench/runtime/cuda/load_stream.cuh"
#include "quantbench/runtime/cuda/probes.h"

namespace cu = qb::runtime::cuda;
using qb::runtime::cuda::load_stream;
using qb::runtime::cuda::time_graph;

constexpr int kSeq = 16, kHead = 32, kHd = 128, kCtx = 192, kCap = 256, kCopies = 8;
constexpr size_t kRow = size_t(kHead) * kHd * 2;         // bytes of one position's K (or V) row
constexpr size_t kCache = size_t(kSeq) * kCap * kRow;    // K or V of every sequence, one copy

__device__ __forceinline__ uint4 ld(const uint4* p) { return load_stream(p); }  // qgemv's weight load

// Median, in ms, of `samples` single launches on `st`, each bracketed by events (one more first, dropped).
template <class Launch>
double median_launch_ms(cudaStream_t st, int samples, Launch&& launch) {
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  std::vector<float> ms;
  for (int i = 0; i <= samples; ++i) {
    cudaEventRecord(e0, st);
    launch(i);
    cudaEventRecord(e1, st);
    cudaEventSynchronize(e1);
    float t = 0;
    cudaEventElapsedTime(&t, e0, e1);
    if (i) ms.push_back(t);
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

// (a) / (c): grid (head, seq, split), 4 warps, a half-warp per key, 4 keys per half-warp step.
// ctx keys per sequence, sequences cap positions apart.
template <bool kHeadMajor>
__global__ void per_head(const char* K, const char* V, int splits, unsigned* sink, int ctx = kCtx, int cap = kCap) {
  const int h = blockIdx.x, s = blockIdx.y, sp = blockIdx.z, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int per = (ctx + splits - 1) / splits, j0 = sp * per, j1 = min(ctx, j0 + per);
  unsigned x = 0;
  for (int jb = j0 + warp * 8; jb < j1; jb += 32) {
    uint4 k[4], v[4];
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      const int j = min(jb + 2 * u + (lane >> 4), j1 - 1);
      const size_t off = kHeadMajor ? (size_t(s * kHead + h) * cap + j) * kHd * 2
                                    : size_t(s) * cap * kRow + j * kRow + h * kHd * 2;
      k[u] = ld(reinterpret_cast<const uint4*>(K + off) + (lane & 15));
      v[u] = ld(reinterpret_cast<const uint4*>(V + off) + (lane & 15));
    }
#pragma unroll
    for (int u = 0; u < 4; ++u) x ^= k[u].x ^ k[u].w ^ v[u].y ^ v[u].z;
  }
  if (x == 0x12345678u) sink[0] = x;
}

// (b): grid (seq, split), 8 warps; each warp 1 KB of a row (4 heads), 2 keys per step in flight x 2 loads.
__global__ void per_seq(const char* K, const char* V, int splits, unsigned* sink) {
  const int s = blockIdx.x, sp = blockIdx.y, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int per = (kCtx + splits - 1) / splits, j0 = sp * per, j1 = min(kCtx, j0 + per);
  unsigned x = 0;
  for (int jb = j0; jb < j1; jb += 4) {
    uint4 k[4][2], v[4][2];
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      const int j = min(jb + u, j1 - 1);
      const uint4* kr = reinterpret_cast<const uint4*>(K + size_t(s) * kCap * kRow + j * kRow + warp * 1024);
      const uint4* vr = reinterpret_cast<const uint4*>(V + size_t(s) * kCap * kRow + j * kRow + warp * 1024);
      k[u][0] = ld(kr + lane); k[u][1] = ld(kr + 32 + lane);
      v[u][0] = ld(vr + lane); v[u][1] = ld(vr + 32 + lane);
    }
#pragma unroll
    for (int u = 0; u < 4; ++u) x ^= k[u][0].x ^ k[u][1].w ^ v[u][0].y ^ v[u][1].z;
  }
  if (x == 0x12345678u) sink[0] = x;
}

// Grid-stride read of n16 16-byte vectors, 4 loads in flight per thread.
__global__ void stream_read(const uint4* p, size_t n16, unsigned* sink) {
  unsigned x = 0;
  const size_t stride = size_t(gridDim.x) * blockDim.x;
  size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x;
  for (; i + 3 * stride < n16; i += 4 * stride) {
    const uint4 a = ld(p + i), b = ld(p + i + stride), c = ld(p + i + 2 * stride), d = ld(p + i + 3 * stride);
    x ^= a.x ^ b.y ^ c.z ^ d.w;
  }
  for (; i < n16; i += stride) x ^= ld(p + i).x;
  if (x == 0x12345678u) sink[0] = x;
}

// qgemv's int4 load pattern with no arithmetic (one token, R = 1): block b owns row block b (16 rows),
// its warps take the input's 64-wide chunks U at a time, strided by warps x U, each chunk one 16-byte
// vector per lane, the next step's loads issued before the current step is used (as qgemv_kernel).
// Tells whether a product's time goes to how qgemv spreads its loads or to what it does with them.
template <int U>
__global__ void rows_read(const uint4* W, int chunks, unsigned* sink) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5, rb = blockIdx.x;
  auto load = [&](int c0, uint4 (&v)[U]) {
#pragma unroll
    for (int u = 0; u < U; ++u)
      v[u] = c0 + u < chunks ? ld(W + (size_t(rb) * chunks + c0 + u) * 32 + lane) : make_uint4(0, 0, 0, 0);
  };
  unsigned x = 0;
  uint4 cur[U];
  load(warp * U, cur);
  for (int c0 = warp * U; c0 < chunks; c0 += nw * U) {
    uint4 nxt[U];
    load(c0 + nw * U, nxt);
#pragma unroll
    for (int u = 0; u < U; ++u) x ^= cur[u].x ^ cur[u].w;
#pragma unroll
    for (int u = 0; u < U; ++u) cur[u] = nxt[u];
  }
  if (x == 0x12345678u) sink[0] = x;
}

// --- The decode attention itself, alone in a graph ------------------------------------------------------
// attention() (attention_decode.cu) at the probe's shape: 16 tokens, one per sequence, 32 heads, hd 128,
// f16 caches [pos][head][dim], one split with counters (what the 16-stream decode step launches; its
// kernel is the half-warp one, AttentionArgs::half_warp_keys, the warp-per-key one beside it), 24 back
// to back in a graph, against per_head's read of the same bytes with the same grid, at several context
// lengths. A line through time against keys separates the per-key cost (the loads and the arithmetic
// between key batches) from the fixed one (q, rope, the token's own row; the warps' merge and the
// output's store). The step's kernel fuses rope, launches early and also writes the o product's input
// fragments (not here: the output goes to f32 rows only). Each variant also with half-warp keys
// (AttentionArgs::half_warp_keys).
void attention_alone(unsigned* sink) {
  constexpr int kCapA = 512, kCopiesA = 6, kQ = kHead * kHd;
  const size_t cache = size_t(kSeq) * kCapA * kRow;
  cudaStream_t st;
  cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking);
  char *K, *V;
  cudaMalloc(&K, cache * kCopiesA);
  cudaMalloc(&V, cache * kCopiesA);
  cu::fill_uniform_f16(K, cache * kCopiesA / 2, 11, -1.0f, 1.0f, st);
  cu::fill_uniform_f16(V, cache * kCopiesA / 2, 12, -1.0f, 1.0f, st);
  // f32 inputs from f16 pairs in [-1, 1): each float's high half is such an f16, so every float is finite
  // and below 2^-7 in magnitude (small q: softmax weights near uniform, as the kernel's cost does not care).
  float *qkv, *cs, *out, *part;
  const int64_t q_stride = 3 * kQ;
  cudaMalloc(&qkv, sizeof(float) * kSeq * q_stride);
  cudaMalloc(&cs, sizeof(float) * kSeq * kHd);  // cos [16][64] then sin [16][64]
  cudaMalloc(&out, sizeof(float) * kSeq * kQ);
  cudaMalloc(&part, sizeof(float) * kSeq * kHead * 4 * (kHd + 2));
  cu::fill_uniform_f16(qkv, size_t(kSeq) * q_stride * 2, 13, -1.0f, 1.0f, st);
  cu::fill_uniform_f16(cs, size_t(kSeq) * kHd * 2, 14, -1.0f, 1.0f, st);
  unsigned* counters;
  cudaMalloc(&counters, sizeof(unsigned) * kSeq * kHead);
  cudaMemsetAsync(counters, 0, sizeof(unsigned) * kSeq * kHead, st);
  int64_t* pos;
  cudaMalloc(&pos, sizeof(int64_t) * kSeq);
  const uint16_t** ptrs;  // per copy: k_cache[16], then v_cache[16]
  cudaMalloc(&ptrs, sizeof(void*) * 2 * kSeq * kCopiesA);
  std::vector<const uint16_t*> hp(2 * kSeq * kCopiesA);
  for (int c = 0; c < kCopiesA; ++c)
    for (int t = 0; t < kSeq; ++t) {
      const size_t off = size_t(c) * cache + size_t(t) * kCapA * kRow;
      hp[size_t(c) * 2 * kSeq + t] = reinterpret_cast<const uint16_t*>(K + off);
      hp[size_t(c) * 2 * kSeq + kSeq + t] = reinterpret_cast<const uint16_t*>(V + off);
    }
  cudaMemcpy(ptrs, hp.data(), sizeof(void*) * hp.size(), cudaMemcpyHostToDevice);
  cudaStreamSynchronize(st);

  struct Variant { const char* name; bool rope, early; int splits; bool half_warp; };
  const Variant variants[] = {{"warp per key, rope fused, early launch", true, true, 1, false},
                              {"  the same, half-warp keys (the step's kernel)", true, true, 1, true},
                              {"rope fused, plain launch", true, false, 1, false},
                              {"  the same, half-warp keys", true, false, 1, true},
                              {"no rope, plain launch", false, false, 1, false},
                              {"  the same, half-warp keys", false, false, 1, true},
                              {"rope fused, early, 2 splits (last block merges)", true, true, 2, false},
                              {"  the same, half-warp keys", true, true, 2, true}};
  auto graph_us = [&](auto one) {
    return cu::time_graph([&](int i, cudaStream_t s) { one(i % kCopiesA, s); }, 24, 7, st).median_ms * 1e3;
  };
  const int ctxs[] = {64, 128, 192, 256, 384};
  std::printf("\nthe decode attention alone, 24 in a graph: %d tokens x %d heads x hd %d, us (GB/s of K+V)\n", kSeq,
              kHead, kHd);
  std::printf("  %-50s", "keys per token");
  for (int c : ctxs) std::printf(" %13d", c);
  std::printf("   fixed us + ns per key (fit)\n");
  auto row = [&](const char* name, auto one) {
    std::vector<double> us;
    std::printf("  %-50s", name);
    for (int ctx : ctxs) {
      std::vector<int64_t> hpos(kSeq, ctx - 1);
      cudaMemcpy(pos, hpos.data(), sizeof(int64_t) * kSeq, cudaMemcpyHostToDevice);
      const double t = graph_us([&](int c, cudaStream_t s) { one(c, s, ctx); });
      us.push_back(t);
      std::printf(" %6.2f (%4.0f)", t, 2.0 * kSeq * kHead * ctx * kHd * 2 / t / 1e3);
    }
    double sx = 0, sy = 0, sxx = 0, sxy = 0;  // least squares over the context lengths
    const int n = int(us.size());
    for (int i = 0; i < n; ++i) {
      sx += ctxs[i];
      sy += us[i];
      sxx += double(ctxs[i]) * ctxs[i];
      sxy += ctxs[i] * us[i];
    }
    const double b = (n * sxy - sx * sy) / (n * sxx - sx * sx), a = (sy - b * sx) / n;
    std::printf("   %6.2f + %6.2f\n", a, b * 1e3);
  };
  row("per_head read (same grid, same bytes)", [&](int c, cudaStream_t s, int ctx) {
    per_head<false><<<dim3(kHead, kSeq, 1), 128, 0, s>>>(K + size_t(c) * cache, V + size_t(c) * cache, 1, sink, ctx, kCapA);
  });
  for (const Variant& v : variants) {
    row(v.name, [&](int c, cudaStream_t s, int) {
      cu::AttentionArgs a;
      static_cast<cu::AttentionShape&>(a) = {qkv, q_stride, out, kSeq, kHead, kHead, kHd, kHd, 0.0884f, 0.0f};
      a.pos = pos;
      a.k_cache = ptrs + size_t(c) * 2 * kSeq;
      a.v_cache = ptrs + size_t(c) * 2 * kSeq + kSeq;
      a.splits = v.splits;
      a.part = part;
      a.counters = counters;
      if (v.rope) {
        a.rope_cos = cs;
        a.rope_sin = cs + kSeq * kHd / 2;
        a.rope_neox = false;
      }
      a.early_launch = v.early;
      a.half_warp_keys = v.half_warp;
      cu::attention(a, s);
    });
  }
  const cudaError_t err = cudaStreamSynchronize(st);
  if (err != cudaSuccess) std::printf("  CUDA error in the attention timing: %s\n", cudaGetErrorString(err));
  cudaFree(K);
  cudaFree(V);
  cudaFree(qkv);
  cudaFree(cs);
  cudaFree(out);
  cudaFree(part);
  cudaFree(counters);
  cudaFree(pos);
  cudaFree(ptrs);
  cudaStreamDestroy(st);
}

// --- The same 129 reads in one persistent kernel -------------------------------------------------------
// What a persistent decode kernel could gain at its product boundaries: the step's 129 reads as one
// cooperative launch whose blocks meet at a grid barrier between reads (a product's input depends on the
// whole previous product), with `pre` 16-byte loads per thread of the next read issued before the barrier
// (weights never depend on it). pre = 0: the barrier alone. no barrier: the bandwidth floor of one kernel.

struct StepReads {
  const uint4* p[129];
  unsigned n16[129];
};

// Grid barrier on a counter that only grows (across launches too: `base` is its value at launch):
// arrival k of every block waits until the counter reaches base + k * gridDim.x. Thread 0 arrives (release) and spins (acquire); the block waits for it.
__device__ __forceinline__ void grid_barrier(unsigned* counter, unsigned target) {
  __syncthreads();
  if (threadIdx.x == 0) {
    asm volatile("red.release.gpu.global.add.u32 [%0], 1;" ::"l"(counter) : "memory");
    unsigned v = 0;
    do {
      asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(counter) : "memory");
    } while (v < target);
  }
  __syncthreads();
}

template <int kPre, bool kBarrier>
__global__ void persistent_reads(StepReads r, int n_reads, unsigned* counter, unsigned base, unsigned* sink) {
  const size_t stride = size_t(gridDim.x) * blockDim.x, tid = blockIdx.x * size_t(blockDim.x) + threadIdx.x;
  unsigned x = 0;
  uint4 pre[kPre > 0 ? kPre : 1];
  auto issue_pre = [&](int i) {  // the first kPre vectors of read i that this thread will read
#pragma unroll
    for (int k = 0; k < kPre; ++k) {
      const size_t at = tid + k * stride;
      pre[k] = at < r.n16[i] ? ld(r.p[i] + at) : make_uint4(0, 0, 0, 0);
    }
  };
  if (kPre > 0) issue_pre(0);
  for (int i = 0; i < n_reads; ++i) {
    const uint4* p = r.p[i];
    const size_t n16 = r.n16[i];
#pragma unroll
    for (int k = 0; k < kPre; ++k) x ^= pre[k].x ^ pre[k].w;
    size_t j = tid + size_t(kPre) * stride;
    for (; j + 3 * stride < n16; j += 4 * stride) {
      const uint4 a = ld(p + j), b = ld(p + j + stride), c = ld(p + j + 2 * stride), d = ld(p + j + 3 * stride);
      x ^= a.x ^ b.y ^ c.z ^ d.w;
    }
    for (; j < n16; j += stride) x ^= ld(p + j).x;
    if (i + 1 < n_reads) {
      if (kPre > 0) issue_pre(i + 1);
      if (kBarrier) grid_barrier(counter, base + unsigned(i + 1) * gridDim.x);
    }
  }
  if (x == 0x12345678u) sink[0] = x;
}


// The step's 129 reads in one cooperative launch (persistent_reads), against the graph of 129 kernels.
template <class Next>
void persistent_floor(cudaStream_t st, int sms, Next& next, const double (&sizes)[4], double lm, double step_bytes,
                      double t_graph, unsigned* sink) {
  StepReads r{}, none{};
  for (int i = 0; i < 129; ++i) {
    const double b = i == 128 ? lm : sizes[i % 4];
    r.p[i] = next(b);
    r.n16[i] = unsigned(size_t(b) / 16);
    none.p[i] = r.p[i];
  }
  unsigned* counter;
  cudaMalloc(&counter, 4);
  std::printf("the same 129 reads in one persistent kernel (cooperative launch; median of 11):\n");
  auto run = [&](const char* name, const void* kernel, const StepReads& reads, int threads, int per_sm_max, bool bytes) {
    int per_sm = 0;
    cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, threads, 0);
    const int blocks = sms * std::min(per_sm, per_sm_max);
    cudaMemsetAsync(counter, 0, 4, st);
    unsigned launches = 0;
    const double ms = median_launch_ms(st, 11, [&](int) {
      StepReads a = reads;
      int n = 129;
      unsigned* c = counter;
      unsigned base = launches++ * 128u * unsigned(blocks);
      void* args[] = {&a, &n, &c, &base, &sink};
      cudaLaunchCooperativeKernel(kernel, blocks, threads, args, 0, st);
    });
    char label[96];
    std::snprintf(label, sizeof label, "%s [%d x %d]", name, blocks, threads);
    if (bytes)
      std::printf("  %-58s %7.3f ms (%4.0f GB/s, %+.1f%% against the graph)\n", label, ms,
                  step_bytes / (ms * 1e-3) / 1e9, 100.0 * (ms * 1e-3 / t_graph - 1.0));
    else
      std::printf("  %-58s %7.3f ms (%.2f us per barrier)\n", label, ms, ms * 1e3 / 128);
  };
  // Fewer, larger blocks: one arrival per block at the barrier's counter.
  const struct { int threads, per_sm; } shapes[] = {{256, 8}, {1024, 2}, {1024, 1}};
  for (const auto& z : shapes) {
    const int th = z.threads, ps = z.per_sm;
    run("no barrier (one kernel's bandwidth floor)", reinterpret_cast<const void*>(persistent_reads<0, false>), r, th, ps, true);
    run("grid barrier between reads", reinterpret_cast<const void*>(persistent_reads<0, true>), r, th, ps, true);
    run("barrier, 1 load per thread issued before it", reinterpret_cast<const void*>(persistent_reads<1, true>), r, th, ps, true);
    run("barrier, 4 loads per thread issued before it", reinterpret_cast<const void*>(persistent_reads<4, true>), r, th, ps, true);
    run("128 barriers alone (no bytes)", reinterpret_cast<const void*>(persistent_reads<0, true>), none, th, ps, false);
  }
  cudaFree(counter);
}

void product_floor(unsigned* sink) {
  int sms = 0;
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
  // Bytes a w4g128 product reads (weights + f16 scales per 128), Llama-2-7B shapes.
  auto w4 = [](double rows, double cols) { return rows * cols / 2 + rows * cols / 128 * 2; };
  const double qkv = w4(12288, 4096), o = w4(4096, 4096), gu = w4(22016, 4096), down = w4(4096, 11008),
               lm = w4(32000, 4096);
  const size_t pool = size_t(1) << 30;  // 1 GiB, read in turn: no read finds its bytes in L2
  char* buf;
  cudaMalloc(&buf, pool);
  cudaMemset(buf, 3, pool);
  size_t at = 0;
  auto next = [&](double bytes) {
    const size_t b = (size_t(bytes) + 15) / 16 * 16;
    if (at + b > pool) at = 0;
    const uint4* p = reinterpret_cast<const uint4*>(buf + at);
    at += (b + 4095) / 4096 * 4096;
    return p;
  };
  cudaStream_t st;
  cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking);
  auto launch = [&](double bytes) { stream_read<<<sms * 8, 256, 0, st>>>(next(bytes), size_t(bytes) / 16, sink); };
  const double t_pool = median_launch_ms(st, 5, [&](int) {
    stream_read<<<sms * 8, 256, 0, st>>>(reinterpret_cast<const uint4*>(buf), pool / 16, sink);
  });
  std::printf("\nthe same kernel over 1 GiB: %.0f GB/s (the bandwidth a long read reaches)\n",
              double(pool) / (t_pool * 1e-3) / 1e9);
  std::printf("one read kernel per size (8 blocks x 256 threads per SM; median of 21):\n");
  double sum_alone = 0;
  const struct { const char* name; double bytes; int per_step; } sizes[] = {
      {"o 4096x4096", o, 32}, {"qkv 12288x4096", qkv, 32}, {"gate|up 22016x4096", gu, 32}, {"down 4096x11008", down, 32},
      {"lm_head 32000x4096", lm, 1}};
  for (const auto& z : sizes) {
    const double t = median_launch_ms(st, 21, [&](int) { launch(z.bytes); }) * 1e-3;
    sum_alone += t * z.per_step;
    std::printf("  %-22s %6.2f MB  %7.2f us  %6.0f GB/s  (x %d per step)\n", z.name, z.bytes / 1e6, t * 1e6,
                z.bytes / t / 1e9, z.per_step);
  }
  // Per shape, 24 reads of that size back to back in a graph (as qb_gpu_bench times qgemv): the grid-
  // stride read, and qgemv's own load pattern (its launch shapes at one token, rule 5).
  std::printf("per shape, 24 back to back in a graph (as qb_gpu_bench times qgemv), us per read:\n");
  const struct { const char* name; int rows, cols, warps; } shapes[] = {
      {"o 4096x4096", 4096, 4096, 8}, {"qkv 12288x4096", 12288, 4096, 4}, {"gate|up 22016x4096", 22016, 4096, 8},
      {"down 4096x11008", 4096, 11008, 16}, {"lm_head 32000x4096", 32000, 4096, 8}};
  for (const auto& z : shapes) {
    const double bytes = w4(z.rows, z.cols);
    const int chunks = (z.cols + 63) / 64, rbs = z.rows / 16;
    // Per read: the median of 7 replays of a graph of 24 (time_graph, as qb_gpu_bench times qgemv).
    auto graph_us = [&](auto one) { return time_graph([&](int, cudaStream_t) { one(); }, 24, 7, st).median_ms * 1e3; };
    const double t_stride = graph_us([&] { launch(bytes); });
    const double t_rows = graph_us([&] {
      rows_read<4><<<rbs, z.warps * 32, 0, st>>>(next(double(rbs) * chunks * 512), chunks, sink);
    });
    std::printf("  %-22s grid-stride %6.2f us (%4.0f GB/s)   qgemv's pattern (w%d) %6.2f us (%4.0f GB/s)\n", z.name,
                t_stride, bytes / t_stride / 1e3, z.warps, t_rows, double(rbs) * chunks * 512 / t_rows / 1e3);
  }
  double step_bytes = 32 * (qkv + o + gu + down) + lm;
  std::printf("  sum over a decode step: %.3f ms for %.3f GB (%.0f GB/s)\n", sum_alone * 1e3, step_bytes / 1e9,
              step_bytes / sum_alone / 1e9);
  // The step's 129 reads back to back in one graph: time_graph reports per read, so x 129 per step.
  const double sizes_in_step[] = {qkv, o, gu, down};
  const double t = 129 * 1e-3 *
                   time_graph([&](int i, cudaStream_t) { launch(i == 128 ? lm : sizes_in_step[i % 4]); }, 129, 11, st)
                       .median_ms;
  std::printf("  the 129 reads as one graph: %.3f ms (%.0f GB/s)\n", t * 1e3, step_bytes / t / 1e9);
  persistent_floor(st, sms, next, sizes_in_step, lm, step_bytes, t, sink);
  cudaFree(buf);
}

int main() {
  char *K, *V;
  unsigned* sink;
  cudaMalloc(&K, kCache * kCopies);
  cudaMalloc(&V, kCache * kCopies);
  cudaMalloc(&sink, 4);
  cudaMemset(K, 1, kCache * kCopies);
  cudaMemset(V, 2, kCache * kCopies);
  const double bytes = 2.0 * kSeq * kHead * kCtx * kHd * 2;
  cudaStream_t st;
  cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking);
  // Each pattern two ways: single launches bracketed by events (what sessions 8-17 quoted), whose time
  // includes the wait for the launch to arrive, and 24 back to back in a graph (time_graph, as the
  // product floors below and qb_gpu_bench are timed), which is how a decode step runs its attention.
  auto time = [&](const char* name, auto launch) {
    const double t = median_launch_ms(st, 21, [&](int i) {
                       const size_t c = size_t(i % kCopies) * kCache;
                       launch(K + c, V + c, st);
                     }) * 1e-3;
    const double tg = time_graph([&](int i, cudaStream_t s) {
                        const size_t c = size_t(i % kCopies) * kCache;
                        launch(K + c, V + c, s);
                      }, 24, 7, st).median_ms * 1e-3;
    std::printf("%-58s alone %7.2f us %5.0f GB/s   in a graph %7.2f us %5.0f GB/s\n", name, t * 1e6, bytes / t / 1e9,
                tg * 1e6, bytes / tg / 1e9);
  };
  std::printf("KV read probe: %d seqs x %d heads x %d keys x hd %d, K+V = %.1f MB\n", kSeq, kHead, kCtx, kHd, bytes / 1e6);
  for (int splits : {1, 3, 6}) {
    char n[96];
    std::snprintf(n, sizeof n, "(a) [pos][head] layout, block per head, splits %d", splits);
    time(n, [&](const char* k, const char* v, cudaStream_t s) {
      per_head<false><<<dim3(kHead, kSeq, splits), 128, 0, s>>>(k, v, splits, sink);
    });
    std::snprintf(n, sizeof n, "(c) [head][pos] layout, block per head, splits %d", splits);
    time(n, [&](const char* k, const char* v, cudaStream_t s) {
      per_head<true><<<dim3(kHead, kSeq, splits), 128, 0, s>>>(k, v, splits, sink);
    });
  }
  for (int splits : {8, 16, 32}) {
    char n[96];
    std::snprintf(n, sizeof n, "(b) [pos][head] layout, block per sequence, splits %d", splits);
    time(n, [&](const char* k, const char* v, cudaStream_t s) {
      per_seq<<<dim3(kSeq, splits), 256, 0, s>>>(k, v, splits, sink);
    });
  }
  {  // The same byte count as one contiguous grid-stride read (the first copy's K and V halves in turn).
    int sms = 0;
    cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
    const size_t half16 = size_t(bytes / 2) / 16;
    time("(d) the same bytes, contiguous, grid-stride (8 x 256 per SM)", [&](const char* k, const char* v, cudaStream_t s) {
      stream_read<<<sms * 8, 256, 0, s>>>(reinterpret_cast<const uint4*>(k), half16, sink);
      stream_read<<<sms * 8, 256, 0, s>>>(reinterpret_cast<const uint4*>(v), half16, sink);
    });
  }
  cudaStreamDestroy(st);
  cudaFree(K);
  cudaFree(V);
  attention_alone(sink);
  product_floor(sink);
  const cudaError_t err = cudaDeviceSynchronize();
  if (err != cudaSuccess) {
    std::printf("CUDA error: %s\n", cudaGetErrorString(err));
    return 1;
  }
  return 0;
}
