// CPython's random.Random, the part lm-evaluation-harness's default few-shot sampler uses:
// Random(seed) for a non-negative seed below 2^32 (init_by_array with one 32-bit key), getrandbits,
// _randbelow (rejection on bit_length(n) bits) and sample(range(n), k) (CPython 3.11's two branches:
// a pool for small populations, a rejection set otherwise). GSM8K's 5-shot contexts are
// rnd.sample(train_docs, 5) per test document, in document order, from one Random(1234); drawing
// the same indices here gives the same examples without Python.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace qb::eval {

class PyRandom {
 public:
  explicit PyRandom(uint32_t seed);
  uint32_t next_u32();                 // genrand_uint32
  uint32_t getrandbits(int k);         // 1 <= k <= 32
  size_t randbelow(size_t n);          // n >= 1, n < 2^32
  std::vector<size_t> sample(size_t n, size_t k);  // random.sample(range(n), k)

 private:
  std::array<uint32_t, 624> mt_{};
  size_t mti_ = 624;
};

}  // namespace qb::eval
