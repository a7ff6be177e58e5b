// A fixed pool of worker threads for data-parallel loops. parallel_for splits [0, n) into contiguous
// chunks, one per thread, so a given thread count always gives the same partition (determinism: the
// result of a reduction never depends on scheduling).
//
// Decode calls parallel_for a few hundred times per token on small matrices, so the hand-off must
// cost well under a microsecond: workers and the caller spin briefly on atomics before falling back
// to a condition variable (the fallback keeps an idle pool from burning a core).
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace qb {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);  // n_threads <= 0: hardware concurrency
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Calls fn(begin, end, thread_index) for each non-empty chunk of [0, n); returns when all are done.
  // Exceptions thrown by fn are rethrown here (the first one). Not re-entrant: fn must not call
  // parallel_for on the same pool.
  void parallel_for(size_t n, const std::function<void(size_t, size_t, int)>& fn);

 private:
  void worker(int index);

  int n_threads_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable cv_start_, cv_done_;
  const std::function<void(size_t, size_t, int)>* job_ = nullptr;
  size_t job_n_ = 0;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  bool stop_ = false;  // guarded by mu_
  std::exception_ptr error_;  // guarded by mu_
};

}  // namespace qb
