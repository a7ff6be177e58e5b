// Quantized KV cache on the GPU (int8, fp8 e4m3, int4), the same codes as the CPU's runtime/kv_cache.h:
// symmetric, one f32 scale per group (int8/fp8: a token's KV head; int4: 32 values of a head, or the whole
// head when head_dim is not a multiple of 32), s = absmax / qmax, codes round-half-even (fp8: saturating
// at 448), zero groups stored as s = 0 with zero codes. The design choice: a cached position is ONE
// row of bytes, codes first, then that row's f32 scales, padded to 16 bytes, so the backend keeps one
// pointer per (layer, token) as for its f16 cache, cache growth stays one memcpy, and a decode kernel
// reads a key's codes and scale from the same place. Codes are written by the rope + store kernel (the
// token's K is rotated, then quantized); decode attention reads codes directly (the bytes a step reads
// shrink by 2x / 4x); prefill attention over one run turns the run's keys to f16 once per layer for the
// tensor-core kernels: for W8A8 models (whose prefill attention keeps Q and P as f16 pairs) int8 and fp8,
// where the fused kernel takes the head dims, as their codes' exact values with the scales apart
// (kv_codes_f16; the kernel multiplies the scores and the softmax weights by them); otherwise, and for
// int4 (32 values a scale: it does not factor out of a key's dot product), dequantized, each value
// rounded to f16. Plain pointer interface (compiles under nvcc, no model types).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "quantbench/runtime/cuda/forward_kernels.h"

namespace qb::runtime::cuda {

enum KvCode : int { kKvF16 = 0, kKvInt8 = 1, kKvFp8 = 2, kKvInt4 = 3 };

// Bytes of one cached position of n_head heads of hd values.
struct KvRowLayout {
  int code = kKvF16;
  int n_head = 0, hd = 0;
  int group = 0;            // values per scale; 0 for f16
  int64_t code_bytes = 0;   // codes of the row (f16: 2 bytes a value)
  int64_t scale_off = 0;    // where the row's f32 scales start (4-byte aligned)
  int64_t row_bytes = 0;    // stride between positions: f16 exactly 2 * n_head * hd; quantized padded to 16
  int scales() const { return group > 0 ? n_head * hd / group : 0; }
};
// Throws std::runtime_error for an impossible shape (int4 needs an even head dim).
KvRowLayout kv_row_layout(int code, int n_head, int hd);

// rope_and_store_kv for a quantized cache: rotates q and k in place (same arithmetic as
// rope_and_store_kv), then quantizes the token's k and v rows into its cache row at a.pos[t]
// (a.k_cache / a.v_cache are the rows' base pointers as bytes, laid out by kl / vl).
void rope_and_store_kv_quant(const RopeKvArgs& a, const KvRowLayout& kl, const KvRowLayout& vl, cudaStream_t s);

// Decode (and non-run prefill) attention over quantized caches: the split-key kernel's partial sums,
// merged by attention_merge (a.splits >= 1, a.part set; a.counters unused; no fused rope: the store
// kernel above runs first). With one split each block normalizes and stores its own output, the bits
// the merge of one split would store, and no merge kernel runs.
void attention_kvq(const AttentionArgs& a, const KvRowLayout& kl, const KvRowLayout& vl, cudaStream_t s);

// Rows [0, n) of one quantized cache to f16 [n][n_head * hd] (code * scale in f32, then rounded).
void kv_dequantize_f16(const uint8_t* cache, const KvRowLayout& l, int64_t n, uint16_t* out, cudaStream_t s);

// Rows [0, n) of an int8 or fp8 cache (one scale per head) as the fused prefill attention reads them with
// GemmAttentionArgs::k_scale / v_scale: the codes' values as f16 [n][n_head * hd] (exact, so no value is
// rounded), and the scales as f32 rows [n_head][stride], 0 past n (stride: a multiple of 64, at least n;
// the kernel reads whole 64-key tiles). Throws for any other cache or stride.
void kv_codes_f16(const uint8_t* cache, const KvRowLayout& l, int64_t n, uint16_t* codes, float* scales,
                  int64_t stride, cudaStream_t s);
inline int64_t kv_scale_stride(int64_t n) { return (n + 63) / 64 * 64; }

// Kernel check: quantizes `rows` f32 rows (x + r * x_stride, n_head * hd values each) into rows of
// l.row_bytes at dst, with the same device code the store kernel runs.
void kv_quantize_rows(const float* x, int64_t x_stride, int rows, const KvRowLayout& l, uint8_t* dst,
                      cudaStream_t s);

}  // namespace qb::runtime::cuda
