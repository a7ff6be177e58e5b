// The int4 nibble decode that qgemv (decode) and qgemm (prefill) share, so the two paths form the same
// f16 values: one 32-bit word of the packed layout (qgemv.h) holds 8 nibbles of rows g and g + 8, and
// becomes the four f16x2 mma A registers holding the exact integers (q - z). One shift and four LOP3s:
// the low nibble of each byte as 1024 + q, the high nibble as 1024 + 16 q, rescaled by 1/16 inside
// the HFMA2 that removes the zero point. A registers 0, 2 hold row g (nibbles 0|4, 2|6); 1, 3 row g + 8
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

// The word's four A registers as f16x2 values q - z (exact in f16).
__device__ __forceinline__ void int4_qz(uint32_t word, Int4Zero z, __half2 (&a)[4]) {
  const __half2 sixteenth = bits_h2(0x2c002c00u);  // 1/16, 1/16
  const uint32_t w8 = word >> 8;
  a[0] = __hsub2(bits_h2((word & 0x000f000fu) | 0x64006400u), z.lo);
  a[1] = __hfma2(bits_h2((word & 0x00f000f0u) | 0x64006400u), sixteenth, z.neg_hi);
  a[2] = __hsub2(bits_h2((w8 & 0x000f000fu) | 0x64006400u), z.lo);
  a[3] = __hfma2(bits_h2((w8 & 0x00f000f0u) | 0x64006400u), sixteenth, z.neg_hi);
}

}  // namespace qb::runtime::cuda
