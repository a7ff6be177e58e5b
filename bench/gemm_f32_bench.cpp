// Check-then-time benchmark of gemm_f32 at the shapes GPTQ's calibration of SmolLM2-135M runs
// (4096-token batches): the Gram matrix X^T X of the 576- and 1536-wide layer inputs (double output,
// upper triangle) and the dequantize-then-multiply forward's x W^T for q|k|v, gate|up and down (f32
// output). Before timing, a few output elements are compared with a double-precision dot product
// (relative error must be < 1e-4; f32 sums over 256 products sit near 1e-6). Reports GFLOP/s
// (2 k m n, halved for the triangle) per second of wall time, and per second of the process's CPU time
// (all threads; on a shared machine that figure is the one to compare between builds, since time
// slices lost to other processes do not count). Threads: QB_BENCH_THREADS (default 2).
// Run: build-bench/bench/qb_bench --benchmark_filter=Gemm
#include <benchmark/benchmark.h>

#include <cmath>
#include <ctime>
#include <cstdlib>
#include <random>
#include <vector>

#include "quantbench/runtime/cpu/gemm_f32.h"

namespace {

using namespace qb::runtime::cpu;

int threads() {
  const char* e = std::getenv("QB_BENCH_THREADS");
  return e ? std::atoi(e) : 2;
}

double process_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

// Runs fn for every iteration and sets both rate counters for `flop` per call.
template <class F>
void timed(benchmark::State& st, double flop, F&& fn) {
  const double c0 = process_cpu_seconds();
  for (auto _ : st) fn();
  const double cpu = process_cpu_seconds() - c0;
  st.counters["GFLOP/s"] = benchmark::Counter(flop * double(st.iterations()) * 1e-9, benchmark::Counter::kIsRate);
  st.counters["GFLOP/cpu-s"] = flop * double(st.iterations()) * 1e-9 / cpu;
  st.SetLabel(describe_gemm_f32());
}

std::vector<float> gaussian(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.f, 1.f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// x: tokens x in (row-major); w: out x in. C = x W^T (tokens x out) as gemm_f32_tn's A^T B.
template <class T>
bool check(int64_t k, int64_t m, int64_t n, const GemmOperand& a, const GemmOperand& b, const std::vector<T>& c,
           benchmark::State& st) {
  std::mt19937 rng(7);
  for (int t = 0; t < 64; ++t) {
    const int64_t i = int64_t(rng() % uint64_t(m)), j = std::max<int64_t>(i, int64_t(rng() % uint64_t(n)));
    if (j >= n) continue;
    double ref = 0, mag = 0;
    for (int64_t r = 0; r < k; ++r) {
      const double p = double(a.p[r * a.row_stride + i * a.col_stride]) * b.p[r * b.row_stride + j * b.col_stride];
      ref += p;
      mag += std::fabs(p);
    }
    if (std::fabs(double(c[size_t(i * n + j)]) - ref) > 1e-4 * mag) {
      st.SkipWithError("gemm_f32 disagrees with the double-precision reference");
      return false;
    }
  }
  return true;
}

void BM_GemmGram(benchmark::State& st) {
  const int64_t tokens = st.range(0), width = st.range(1);
  const auto x = gaussian(size_t(tokens * width), 1);
  const GemmOperand op{x.data(), width, 1};
  qb::ThreadPool pool(threads());
  std::vector<double> c(size_t(width * width));
  gemm_f32_tn(tokens, width, width, op, op, c.data(), width, true, pool);
  if (!check(tokens, width, width, op, op, c, st)) return;
  timed(st, double(tokens) * double(width) * double(width + 1),
        [&] { gemm_f32_tn(tokens, width, width, op, op, c.data(), width, true, pool); });
}

void BM_GemmForward(benchmark::State& st) {
  const int64_t tokens = st.range(0), in = st.range(1), out = st.range(2);
  const auto x = gaussian(size_t(tokens * in), 2), w = gaussian(size_t(out * in), 3);
  const GemmOperand a{x.data(), 1, in}, b{w.data(), 1, in};
  qb::ThreadPool pool(threads());
  std::vector<float> c(size_t(tokens * out));
  gemm_f32_tn(in, tokens, out, a, b, c.data(), out, false, pool);
  if (!check(in, tokens, out, a, b, c, st)) return;
  timed(st, 2.0 * double(tokens) * double(in) * double(out),
        [&] { gemm_f32_tn(in, tokens, out, a, b, c.data(), out, false, pool); });
}

}  // namespace

BENCHMARK(BM_GemmGram)
    ->ArgNames({"tokens", "width"})
    ->Args({4096, 576})
    ->Args({4096, 1536})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_GemmForward)
    ->ArgNames({"tokens", "in", "out"})
    ->Args({4096, 576, 960})
    ->Args({4096, 576, 3072})
    ->Args({4096, 1536, 576})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
