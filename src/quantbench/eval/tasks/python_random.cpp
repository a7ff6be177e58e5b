// MT19937 as in CPython's _randommodule.c (init_genrand, init_by_array, genrand_uint32) and the
// sampling of Lib/random.py (3.11). Written from the published algorithm (Matsumoto & Nishimura's
// mt19937ar.c) and the Python source's documented behaviour; tested against Python's own draws.
#include "quantbench/eval/tasks/python_random.h"

#include <cmath>
#include <set>

#include "quantbench/core/error.h"

namespace qb::eval {

PyRandom::PyRandom(uint32_t seed) {
  constexpr size_t N = 624;
  mt_[0] = 19650218u;
  for (size_t i = 1; i < N; ++i) mt_[i] = 1812433253u * (mt_[i - 1] ^ (mt_[i - 1] >> 30)) + uint32_t(i);
  // init_by_array with the single key word `seed` (Python splits an int seed into 32-bit words).
  size_t i = 1;
  for (size_t k = N; k; --k) {
    mt_[i] = (mt_[i] ^ ((mt_[i - 1] ^ (mt_[i - 1] >> 30)) * 1664525u)) + seed;  // + key[j] + j, j = 0
    if (++i >= N) mt_[0] = mt_[N - 1], i = 1;
  }
  for (size_t k = N - 1; k; --k) {
    mt_[i] = (mt_[i] ^ ((mt_[i - 1] ^ (mt_[i - 1] >> 30)) * 1566083941u)) - uint32_t(i);
    if (++i >= N) mt_[0] = mt_[N - 1], i = 1;
  }
  mt_[0] = 0x80000000u;
  mti_ = N;
}

uint32_t PyRandom::next_u32() {
  constexpr size_t N = 624, M = 397;
  constexpr uint32_t kUpper = 0x80000000u, kLower = 0x7fffffffu, kMatrix = 0x9908b0dfu;
  if (mti_ >= N) {
    for (size_t k = 0; k < N; ++k) {
      const uint32_t y = (mt_[k] & kUpper) | (mt_[(k + 1) % N] & kLower);
      mt_[k] = mt_[(k + M) % N] ^ (y >> 1) ^ ((y & 1u) ? kMatrix : 0u);
    }
    mti_ = 0;
  }
  uint32_t y = mt_[mti_++];
  y ^= y >> 11;
  y ^= (y << 7) & 0x9d2c5680u;
  y ^= (y << 15) & 0xefc60000u;
  y ^= y >> 18;
  return y;
}

uint32_t PyRandom::getrandbits(int k) {
  QB_CHECK(k >= 1 && k <= 32, "getrandbits: k = {} outside 1..32", k);
  return next_u32() >> (32 - k);
}

size_t PyRandom::randbelow(size_t n) {
  QB_CHECK(n >= 1 && n <= 0xffffffffu, "randbelow: n = {} outside 1..2^32-1", n);
  int k = 0;
  while (k < 64 && (size_t(1) << k) <= n) ++k;  // n.bit_length()
  size_t r = getrandbits(k);
  while (r >= n) r = getrandbits(k);
  return r;
}

std::vector<size_t> PyRandom::sample(size_t n, size_t k) {
  QB_CHECK(k <= n, "sample: k = {} larger than the population {}", k, n);
  std::vector<size_t> result(k);
  size_t setsize = 21;
  if (k > 5) setsize += size_t(std::pow(4.0, std::ceil(std::log(double(k) * 3) / std::log(4.0))));
  if (n <= setsize) {
    std::vector<size_t> pool(n);
    for (size_t i = 0; i < n; ++i) pool[i] = i;
    for (size_t i = 0; i < k; ++i) {
      const size_t j = randbelow(n - i);
      result[i] = pool[j];
      pool[j] = pool[n - i - 1];
    }
  } else {
    std::set<size_t> selected;
    for (size_t i = 0; i < k; ++i) {
      size_t j = randbelow(n);
      while (selected.count(j)) j = randbelow(n);
      selected.insert(j);
      result[i] = j;
    }
  }
  return result;
}

}  // namespace qb::eval
