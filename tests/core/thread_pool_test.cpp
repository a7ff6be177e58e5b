#include "quantbench/core/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <vector>

namespace qb {
namespace {

TEST(ThreadPool, CoversEveryIndexOnceWithAFixedPartition) {
  for (int threads : {1, 2, 3, 7}) {
    ThreadPool pool(threads);
    for (size_t n : {0u, 1u, 5u, 100u, 1001u}) {
      std::vector<std::atomic<int>> hits(n);
      std::vector<int> owner(n, -1);
      pool.parallel_for(n, [&](size_t b, size_t e, int t) {
        for (size_t i = b; i < e; ++i) { hits[i]++; owner[i] = t; }
      });
      for (size_t i = 0; i < n; ++i) ASSERT_EQ(hits[i], 1);
      // Contiguous chunks in thread order: owner is non-decreasing.
      for (size_t i = 1; i < n; ++i) ASSERT_LE(owner[i - 1], owner[i]);
    }
  }
}

TEST(ThreadPool, PropagatesExceptionsAndStaysUsable) {
  ThreadPool pool(3);
  EXPECT_THROW(pool.parallel_for(30, [](size_t b, size_t, int) { if (b > 0) throw std::runtime_error("x"); }),
               std::runtime_error);
  std::atomic<int> sum{0};
  pool.parallel_for(10, [&](size_t b, size_t e, int) { sum += int(e - b); });
  EXPECT_EQ(sum, 10);
}

}  // namespace
}  // namespace qb
