// Bandwidth probe: the memory bandwidth this CPU reaches in the same run as the benchmark, the
// denominator of every roofline share. A read-only streaming sum over a buffer much larger than the
// last-level cache (decode reads weights once per step, so a read figure is the one that matters),
// plus a copy figure counting both read and written bytes. Every thread streams its own contiguous
// slice, as the matmul kernels do; the buffer is touched once before timing so page faults are not
// measured.
#pragma once
#include <cstddef>
#include <vector>

namespace qb::bench {

struct BandwidthOptions {
  size_t buffer_bytes = size_t(512) << 20;  // 512 MiB
  int reps = 5;
  int threads = 0;  // <= 0: hardware concurrency
};

struct Spread {
  double min = 0, median = 0, max = 0;
};
Spread spread_of(std::vector<double> values);  // throws qb::Error if empty

struct BandwidthResult {
  size_t buffer_bytes = 0;
  int reps = 0, threads = 0;
  std::vector<double> read_gbps;  // per rep, 1e9 bytes/s
  std::vector<double> copy_gbps;  // per rep, (bytes read + bytes written) / s
  Spread read, copy;
  double checksum = 0;  // the sum, kept so the compiler cannot drop the reads
};

BandwidthResult measure_bandwidth(const BandwidthOptions& options);

}  // namespace qb::bench
