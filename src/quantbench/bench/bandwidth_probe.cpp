// Bandwidth probe (see bandwidth_probe.h). The sum uses several independent accumulators so the
// loop is bound by loads, not by the latency of one floating-point add chain.
#include "quantbench/bench/bandwidth_probe.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>

#include "quantbench/core/error.h"
#include "quantbench/core/thread_pool.h"

namespace qb::bench {

Spread spread_of(std::vector<double> v) {
  QB_CHECK(!v.empty(), "spread of an empty sample");
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  const double med = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
  return {v.front(), med, v.back()};
}

namespace {

double sum_slice(const float* p, size_t n) {
  float a[16] = {};
  size_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int k = 0; k < 16; ++k) a[k] += p[i + k];
  double s = 0;
  for (float x : a) s += x;
  for (; i < n; ++i) s += p[i];
  return s;
}

}  // namespace

BandwidthResult measure_bandwidth(const BandwidthOptions& o) {
  QB_CHECK(o.buffer_bytes >= (size_t(1) << 20), "bandwidth probe buffer must be at least 1 MiB, got {} bytes",
           o.buffer_bytes);
  QB_CHECK(o.reps >= 1, "bandwidth probe reps must be >= 1, got {}", o.reps);
  ThreadPool pool(o.threads);
  const size_t n = o.buffer_bytes / sizeof(float);
  std::unique_ptr<float[]> src(new float[n]), dst(new float[n]);
  // First touch from the pool's threads, so pages land near the threads that read them.
  pool.parallel_for(n, [&](size_t b, size_t e, int) {
    for (size_t i = b; i < e; ++i) src[i] = float(i & 1023) * 1e-3f;
    std::memset(dst.get() + b, 0, (e - b) * sizeof(float));
  });

  BandwidthResult r;
  r.buffer_bytes = n * sizeof(float);
  r.reps = o.reps;
  r.threads = pool.size();
  std::vector<double> partial(size_t(pool.size()), 0.0);
  using clock = std::chrono::steady_clock;
  for (int rep = 0; rep < o.reps; ++rep) {
    std::fill(partial.begin(), partial.end(), 0.0);
    auto t0 = clock::now();
    pool.parallel_for(n, [&](size_t b, size_t e, int t) { partial[size_t(t)] += sum_slice(src.get() + b, e - b); });
    auto t1 = clock::now();
    for (double s : partial) r.checksum += s;
    r.read_gbps.push_back(double(r.buffer_bytes) / std::chrono::duration<double>(t1 - t0).count() / 1e9);

    t0 = clock::now();
    pool.parallel_for(n, [&](size_t b, size_t e, int) {
      std::memcpy(dst.get() + b, src.get() + b, (e - b) * sizeof(float));
    });
    t1 = clock::now();
    r.checksum += dst[size_t(rep) % n];
    r.copy_gbps.push_back(2.0 * double(r.buffer_bytes) / std::chrono::duration<double>(t1 - t0).count() / 1e9);
  }
  r.read = spread_of(r.read_gbps);
  r.copy = spread_of(r.copy_gbps);
  return r;
}

}  // namespace qb::bench
