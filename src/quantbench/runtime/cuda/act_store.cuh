// The stores of a kernel's output rows to their consumer's layouts (ActOut: f32 rows, 16-bit rows, the
// qgemv activation fragments), shared by the forward kernels (norm_kernels.cu, activation_kernels.cu,
// attention_decode.cu, attention_prefill.cu) and kv_quant.cu so that every kernel writes the same bits.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "quantbench/runtime/cuda/forward_kernels.h"

namespace qb::runtime::cuda {

__device__ inline uint32_t pack2(float a, float b, bool bf) {
  if (bf) return uint32_t(__bfloat16_as_ushort(__float2bfloat16_rn(a))) |
                 (uint32_t(__bfloat16_as_ushort(__float2bfloat16_rn(b))) << 16);
  return uint32_t(__half_as_ushort(__float2half_rn(a))) | (uint32_t(__half_as_ushort(__float2half_rn(b))) << 16);
}

// Columns k, k + 1 (k even) of token `tok` into the qgemv fragments (the index rule of qgemv.h's layout
// comment, inverted: column k = 64 c + 16 s + 2 t + 8 h, token = 8 j + g, lane = 4 g + t).
__device__ inline void put_frag(void* frag, int nt, int tok, int k, uint32_t v) {
  const int c = k >> 6, r = k & 63, s = r >> 4, w = r & 15, h = w >> 3, t = (w & 7) >> 1;
  const int lane = 4 * (tok & 7) + t, j = tok >> 3;
  static_cast<uint32_t*>(frag)[((size_t(c) * nt + j) * 32 + lane) * 8 + 2 * s + h] = v;
}

// Values a (column k) and b (column k + 1, ignored where k + 1 >= n) of row `tok` to every target.
// k may lie in the zero padding of the last 64-column chunk (n <= k): the fragment gets zeros there.
__device__ inline void store_pair(const ActOut& o, int n, int nt, int tok, int k, float a, float b) {
  if (k >= n) a = 0.0f;
  if (k + 1 >= n) b = 0.0f;
  if (k < n) {
    const size_t i = size_t(tok) * n + k;
    if (o.f32) {
      o.f32[i] = a;
      if (k + 1 < n) o.f32[i + 1] = b;
    }
    if (o.half_rows) {
      const uint32_t v = pack2(a, b, o.bf16);
      o.half_rows[i] = uint16_t(v & 0xffffu);
      if (k + 1 < n) o.half_rows[i + 1] = uint16_t(v >> 16);
    }
  }
  if (o.frag) put_frag(o.frag, nt, tok, k, pack2(a, b, o.bf16));
}

}  // namespace qb::runtime::cuda
