// The int4 nibble decode that qgemv (decode) and qgemm (prefill) share, so the two paths form the same
// f16 values: one 32-bit word of the packed layout (qgemv.h) holds 8 nibbles of rows g and g + 8, and
// becomes the four f16x2 mma A registers holding the exact integers (q - z). One shift and four masks
// (one LOP3 each with kOneLop3, two without: see nibbles_as_f16): the low nibble of each byte as
// 1024 + q, the high nibble as 1024 + 16 q, rescaled by 1/16 inside the HFMA2 that removes the zero
// point. A registers 0, 2 hold row g (nibbles 0|4, 2|6); 1, 3 row g + 8
// (nibbles 1|5, 3|7).
#pragma once
#include <cuda_fp16.h>

#include <cstdint>

namespace qb::runtime::cuda {

__device__ __forceinline__ uint32_t h2_bits(__half2 h) { return *reinterpret_cast<uint32_t*>(&h); }
__device__ __forceinline__ __half2 bits_h2(uint32_t u) { return *reinterpret_cast<__half2*>(&u); }

// A group's zero points for rows g (byte 0 of zpair) and g + 8 (byte 1); symmetric int4 is 0x0808.
struct Int4Zero {
  __half2 lo;      // 1024 + z_g
  __half2 neg_hi;  // -(64 + z_{g+8})
};
__device__ __forceinline__ Int4Zero int4_zero(uint32_t zpair) {
  const __half2 k960 = bits_h2(0x63806380u);  // 960, 960
  return {bits_h2(__byte_perm(zpair, 0x64646464u, 0x4040)),
          __hneg2(__hsub2(bits_h2(__byte_perm(zpair, 0x64646464u, 0x4141)), k960))};
}

// (a & mask) | 0x64006400 as ONE instruction. Written in C++, the compiler emits an AND and an OR (a
// LOP3 takes one 32-bit immediate, and it does not move the other constant into a register itself),
// which doubles the decode's logic instructions. On an H100 the one-token int4 products issue about as
// many instructions as they can hide under their loads, so the count matters (docs/perf.md, session 12).
template <uint32_t kMask>
__device__ __forceinline__ uint32_t nibbles_as_f16(uint32_t a) {
  uint32_t r;
  asm("lop3.b32 %0, %1, %2, %3, 0xea;" : "=r"(r) : "r"(a), "n"(kMask), "r"(0x64006400u));  // (a & b) | c
  return r;
}

// int4_zero(0x0808) as constants (symmetric int4, z = 8): 1024 + 8 = 1032 is f16 0x6408, -(64 + 8) = -72
// is f16 0xd480. Left to int4_zero, the compiler rebuilds them inside the decode loop.
__device__ __forceinline__ Int4Zero int4_zero_symmetric() { return {bits_h2(0x64086408u), bits_h2(0xd480d480u)}; }

// The same for int4 with mins (no zero point: the kernel multiplies q itself): 1024 is f16 0x6400, -64
// is 0xd400.
__device__ __forceinline__ Int4Zero int4_zero_none() { return {bits_h2(0x64006400u), bits_h2(0xd400d400u)}; }

// The word's four A registers as f16x2 values q - z (exact in f16). kOneLop3: each nibble mask as one
// LOP3 (nibbles_as_f16): the decode kernels that were measured faster with it use it; elsewhere it
// changed the compiler's register choices for the worse, so the plain form stays (the same values).
template <bool kOneLop3 = false>
__device__ __forceinline__ void int4_qz(uint32_t word, Int4Zero z, __half2 (&a)[4]) {
  const __half2 sixteenth = bits_h2(0x2c002c00u);  // 1/16, 1/16
  const uint32_t w8 = word >> 8;
  if constexpr (kOneLop3) {
    a[0] = __hsub2(bits_h2(nibbles_as_f16<0x000f000fu>(word)), z.lo);
    a[1] = __hfma2(bits_h2(nibbles_as_f16<0x00f000f0u>(word)), sixteenth, z.neg_hi);
    a[2] = __hsub2(bits_h2(nibbles_as_f16<0x000f000fu>(w8)), z.lo);
    a[3] = __hfma2(bits_h2(nibbles_as_f16<0x00f000f0u>(w8)), sixteenth, z.neg_hi);
  } else {
    a[0] = __hsub2(bits_h2((word & 0x000f000fu) | 0x64006400u), z.lo);
    a[1] = __hfma2(bits_h2((word & 0x00f000f0u) | 0x64006400u), sixteenth, z.neg_hi);
    a[2] = __hsub2(bits_h2((w8 & 0x000f000fu) | 0x64006400u), z.lo);
    a[3] = __hfma2(bits_h2((w8 & 0x00f000f0u) | 0x64006400u), sixteenth, z.neg_hi);
  }
}

}  // namespace qb::runtime::cuda
