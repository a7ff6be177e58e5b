// The non-matmul kernels of the CUDA forward pass (RMSNorm, bias, RoPE + KV-cache write, attention,
// gated activation, residual add, soft-capping, f32->bf16). Plain pointer-and-size interface with no
// model types, so this header compiles under nvcc without the library's C++20/fmt dependencies; the
// backend (cuda_backend.cpp) owns the shapes. Activations are f32 in [token][feature] rows (the
// residual stream's precision); the KV cache is f16. Every kernel handles ragged sizes (head_dim 8,
// widths not a multiple of 32): correctness first, these are a small share of decode time.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace qb::runtime::cuda {

// y[r] = x[r] * rsqrt(mean(x[r]^2) + eps) * w (w may be null), for rows r = 0..rows-1. Row r of x is at
// x + (r / inner) * outer_stride + (r % inner) * n (so per-head norms of a strided q|k|v buffer work),
// likewise y with y_outer_stride. x_rows (optional): the outer index of row r is x_rows[r / inner]
// instead of r / inner (gathers the logits rows).
void rmsnorm_rows(const float* x, float* y, const float* w, int n, int rows, int inner, int64_t outer_stride,
                  int64_t y_outer_stride, float eps, const int32_t* x_rows, cudaStream_t s);

// x[t][i] += b[i] for t < rows, i < n.
void add_bias(float* x, const float* b, int n, int rows, cudaStream_t s);

// x[i] += y[i].
void add_inplace(float* x, const float* y, int64_t n, cudaStream_t s);

// out[t][i] = act(gate[t][i]) * up[t][i]; gate and up are the two halves of a [t][2n] row (gate first).
// act: 0 SiLU, 1 GELU (tanh approximation).
void gated_act(const float* gate_up, float* out, int n, int rows, int act, cudaStream_t s);

// z = c * tanh(z / c) over n elements.
void softcap_inplace(float* z, int64_t n, float c, cudaStream_t s);

void f32_to_bf16(const float* x, uint16_t* y, int64_t n, cudaStream_t s);
void f32_to_f16(const float* x, uint16_t* y, int64_t n, cudaStream_t s);

// x[t][i] = table[tokens[t]][i] * scale: embedding rows gathered on the device from a bf16 table
// (synthetic models, whose embeddings never exist on the host). tokens are checked by the caller.
void embed_rows_bf16(const uint16_t* table, const int32_t* tokens, int T, int d, float scale, float* x,
                     cudaStream_t s);

struct RopeKvArgs {
  float* qkv = nullptr;         // [T][qkv_stride]: q (n_head x hd_k) | k (n_head_kv x hd_k) | v
  int64_t qkv_stride = 0;
  int T = 0, n_head = 0, n_head_kv = 0, hd_k = 0, hd_v = 0, n_rot = 0;
  bool neox = false;
  const float* cos = nullptr;  // [T][n_rot/2]
  const float* sin = nullptr;
  const int64_t* pos = nullptr;  // [T]
  uint16_t* const* k_cache = nullptr;  // [T]: f16 cache of the token's sequence, this layer: [pos][kv_dim_k]
  uint16_t* const* v_cache = nullptr;  // [T]: [pos][kv_dim_v]
};
// Rotates q and k in place and writes k, v (as f16) at the token's position in its cache.
void rope_and_store_kv(const RopeKvArgs& a, cudaStream_t s);

struct AttentionArgs {
  const float* q = nullptr;  // token t, head h: q + t * q_stride + h * hd_k
  int64_t q_stride = 0;
  float* out = nullptr;      // [T][n_head * hd_v]
  int T = 0, n_head = 0, n_head_kv = 0, hd_k = 0, hd_v = 0;
  const int64_t* pos = nullptr;               // [T]: keys 0..pos (or the window) are attended
  const uint16_t* const* k_cache = nullptr;   // [T]
  const uint16_t* const* v_cache = nullptr;   // [T]
  float scale = 1.0f, softcap = 0.0f;
  int64_t window = 0;
};
// Causal GQA attention over the f16 cache, f32 online softmax; head dims up to kMaxHeadDim.
constexpr int kMaxHeadDim = 256;
void attention(const AttentionArgs& a, cudaStream_t s);

}  // namespace qb::runtime::cuda
