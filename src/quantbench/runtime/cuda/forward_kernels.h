// The non-matmul kernels of the CUDA forward pass (residual add + RMSNorm, bias, RoPE + KV-cache
// write, attention: split-key for decode, query-tiled, fused (flash) or on cuBLAS for prefill; gated activation,
// soft-capping, casts, argmax). Producers write the next product's input layout directly (ActOut), so
// no cast or pack kernel sits between them at decode. Plain pointer-and-size interface with no
// model types, so this header compiles under nvcc without the library's C++20/fmt dependencies; the
// backend (cuda_backend*.cpp) owns the shapes. Activations are f32 in [token][feature] rows (the
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

// Where a kernel's f32 result rows [T][n] go: any non-null target gets them. `f32`: as they are;
// `half_rows`: rounded to bf16 (bf16) or f16, row-major (the input of a cuBLAS GEMM); `frag`: rounded
// the same way into the qgemv activation fragments (qgemv.h layout; T <= 16). Writing the consumer's
// layout from the producing kernel saves a cast or pack kernel per matrix product at decode.
// `codes` (the register norm kernel only: add_rmsnorm_writes_codes): the per-token codes of a W8A8
// product's input, codes[t][i] (int8, or e4m3 where codes_fp8) and code_scale[t], the bits its quantizer
// (w8a8.h) would write from the f32 rows, so the product needs no quantizer kernel; a non-finite row sets
// *nonfinite where given, as the quantizers do. gated_act_out writes them too (gated_act_writes_codes),
// store_rows refuses a target with codes; the attention's targets never hold them.
struct ActOut {
  float* f32 = nullptr;
  uint16_t* half_rows = nullptr;
  void* frag = nullptr;
  bool bf16 = false;
  uint8_t* codes = nullptr;
  float* code_scale = nullptr;
  unsigned* nonfinite = nullptr;
  bool codes_fp8 = false;
};

// x[r] += add[r] (add may be null; post-norms are applied to `add` beforehand), then
// out[t] = x[r] * rsqrt(mean(x[r]^2) + eps) * w, with r = rows ? rows[t] : t, for t < T. One kernel
// for the residual add and the next norm; the sum of squares is an f32 tree reduction (per thread,
// then warp shuffles, then across warps), the row read from global memory twice (the second read hits
// L1). Rows not gathered are left unchanged (the last layer's residual add matters only for the rows
// whose logits are wanted).
// `loop_kernel`: the version that re-reads the row instead of keeping it in registers (for A/B runs).
// `early` (here, in gated_act_out and in AttentionArgs): launched with programmatic dependent launch,
// so its blocks are resident when the kernel before it (a decode product) ends; it waits for that
// kernel before reading. Only after a kernel (not a copy) in the same stream.
// `prewait` (register kernel, no row gather): x's row and w are loaded before that wait, which is
// right only where x was not written by the kernel just before (the decode step: only `add` was).
void add_rmsnorm(float* x, const float* add, const float* w, int n, int T, float eps, const int32_t* rows,
                 const ActOut& out, cudaStream_t s, bool loop_kernel = false, bool early = false,
                 bool prewait = false);
// Whether add_rmsnorm, so called, takes a target with W8A8 codes (its register kernel: rows of whole
// 16-bit code pairs, up to 8192 wide).
bool add_rmsnorm_writes_codes(int n, bool loop_kernel);

// out[t] = act(gate[t]) * up[t] written to `out`: gate|up rows as in gated_act, or (interleave16) in
// blocks of 16 gate values followed by the same 16 columns' up values (n % 16 == 0; the packed gate|up
// matrix's row order where the decode product may fuse this activation: qgemv's QgemvGatedOut).
// A target with W8A8 codes (and nothing else): one kernel writes the codes of the activation's rows, so the
// down product needs no quantizer kernel (where gated_act_writes_codes(n): n % 4 == 0, n <= 65536).
void gated_act_out(const float* gate_up, int n, int T, int act, const ActOut& out, cudaStream_t s,
                   bool early = false, bool interleave16 = false);
bool gated_act_writes_codes(int n);

// Copies `bytes` (a multiple of 16) from mapped pinned host memory, given by its device address, into
// device memory with a kernel: a graphed decode step pulls its small per-step table this way instead of
// through a copy-engine transfer submitted before the graph.
void copy_from_mapped(const void* src_mapped, void* dst, size_t bytes, cudaStream_t s);

// f32 rows [T][n] to the targets of `out` (out.f32 must be null or x itself).
void store_rows(const float* x, int n, int T, const ActOut& out, cudaStream_t s);

// ids[r] = the index of the largest of logits[r][0..n) (the first one on ties, as std::max_element).
void argmax_rows(const float* logits, int n, int rows, int32_t* ids, cudaStream_t s);

// Asks L2 to fetch [p, p + bytes) from device memory (cp.async.bulk.prefetch.L2, 16 KB per thread over
// enough blocks that several SMs' copy engines issue the requests); no result, nothing waits for it.
// The decode step issues it on a side stream for the next product's first weights while the small
// kernel before that product runs (CudaBackend, QB_CUDA_L2_PREFETCH_MB). p and bytes: multiples of 16.
void prefetch_l2(const void* p, size_t bytes, cudaStream_t s);

// Busy-waits about `ns` nanoseconds on the device (the profiling mode queues a step's launches behind it
// so the GPU never waits for the host while kernels are timed).
void gpu_spin(int64_t ns, cudaStream_t s);

// What every attention entry point takes alike: the queries, the output rows, the head geometry and the
// score scaling. An aggregate, so a caller fills it in one line for whichever argument struct it needs.
struct AttentionShape {
  const float* q = nullptr;  // token t, head h: q + t * q_stride + h * hd_k
  int64_t q_stride = 0;
  float* out = nullptr;      // [T][n_head * hd_v] f32
  int T = 0, n_head = 0, n_head_kv = 0, hd_k = 0, hd_v = 0;
  float scale = 1.0f, softcap = 0.0f;
};

struct AttentionArgs : AttentionShape {
  const int64_t* pos = nullptr;               // [T]: keys 0..pos (or the window) are attended
  const uint16_t* const* k_cache = nullptr;   // [T]
  const uint16_t* const* v_cache = nullptr;   // [T]
  int64_t window = 0;
  // Split-key (flash-decoding) path, used when splits >= 1: each (head, token) is cut into `splits`
  // ranges of keys, one block each (a warp per key, 8 keys in flight per warp; or, half_warp_keys below,
  // a half-warp per key); a second kernel merges the ranges' partial softmax sums. `part` holds
  // T * n_head * splits * (hd_v + 2) floats.
  // The split count is fixed per launch (CUDA graphs replay it at every context length); the range a
  // block covers is computed on the device from the token's position. `act` (optional) receives the
  // output rows too (frag needs hd_v even and n_head * hd_v a multiple of 64).
  int splits = 0;
  float* part = nullptr;
  // Optional: T * n_head counters, zero before the first launch. With them there is no merge kernel:
  // the last block of each (head, token) to finish merges, and leaves its counter at zero again. With
  // one split as well (16 streams), each block normalizes its own output and `part` and the counters
  // are not touched (the f16-cache kernel). attention_kvq ignores the counters: with more than one
  // split it merges in a second kernel, with one each block normalizes its own output.
  unsigned* counters = nullptr;
  // Optional rope + KV write fused into the split path (decode with one token per sequence; head dims
  // <= 128, even, fully rotated, neox only at 128): q is still raw in the q|k|v row (q_stride apart,
  // k and v after the q heads as in RopeKvArgs); the kernel rotates q and the token's own k in
  // registers, uses them for the key at its position, and the block whose key range holds that
  // position writes k and v (f16) to the cache. Bit-identical to rope_and_store_kv, then attention.
  const float* rope_cos = nullptr;  // [T][hd_k / 2]; null: not fused
  const float* rope_sin = nullptr;
  bool rope_neox = false;
  bool early_launch = false;  // split path: launched early, as add_rmsnorm's `early`
  // Fused rope only: each warp loads its first keys' K and V rows before waiting for the kernel before
  // (they were written by earlier steps), so their latency overlaps that kernel's tail when launched early.
  bool prewait_loads = true;
  // Head dims 128 (k = v), split path: a half-warp per key with 16-byte row loads (attention_hw_kernel)
  // instead of a warp per key with 4-byte loads. Other head dims ignore it. The backend sets it (its
  // default); false here keeps the older kernel reachable for A/B runs and checks.
  bool half_warp_keys = false;
  ActOut act;
};
// Whether attention()'s split path runs the half-warp-per-key kernel (AttentionArgs::half_warp_keys).
inline bool attention_half_warp_takes(bool half_warp_keys, int hd_k, int hd_v) {
  return half_warp_keys && hd_k == 128 && hd_v == 128;
}
// Whether attention() can fuse rope + KV write for these head dims (see AttentionArgs::rope_cos).
inline bool attention_can_fuse_rope(int hd_k, int hd_v, int n_rot, bool neox) {
  return hd_k == hd_v && n_rot == hd_k && hd_k % 2 == 0 && hd_k <= 128 && (!neox || hd_k == 128);
}
// Prefill attention of one run of tokens of one sequence (token t at position p0 + t, keys 0..p0 + t,
// no sliding window) on the tensor cores, through cuBLAS: S = scale * Q K^T per head (f16 inputs, f32
// scores; a strided-batched GEMM over the kv heads per member of a GQA group), a causal softmax kernel
// (soft-capping included) writing normalized probabilities in f16, then O = P V (f32 out). `out` gets
// [T][n_head * hd_v] f32. The one-block-per-(head, token) kernels are latency-bound on CUDA cores at
// prefill lengths; these are two GEMMs, or (head dims 64 / 128, `flash`) one fused kernel.
struct GemmAttentionArgs : AttentionShape {  // q with rope applied; out may be null (see act below)
  int64_t p0 = 0;
  const uint16_t* k_cache = nullptr;  // the sequence's layer cache: [pos][n_head_kv * hd_k] f16
  const uint16_t* v_cache = nullptr;  // [pos][n_head_kv * hd_v]
  void* scratch = nullptr;  // attention_gemm_scratch_bytes()
  // Head dims 64 or 128 (k = v): one fused flash-attention kernel on the tensor cores instead of the
  // two GEMMs and the softmax (no score matrix in memory; same f16 rounding of Q and P). false: the
  // two-GEMM path (A/B runs: QB_CUDA_FLASH_ATTN=0).
  bool flash = true;
  // Fused kernel only: Q and P each as a pair of f16 values, hi = f16(x) and lo = f16(x - hi), and twice
  // the MMAs: about 22 significant bits instead of 11 (f32 sums, K and V f16 as stored). W8A8 models'
  // prefills run it: their activation codes flip where an input moves across a code boundary, so the
  // single f16 rounding put FP8 W8A8 1000x further from the CPU than its products do (docs/perf.md,
  // session 32). attention_gemm refuses (returns false) where the fused kernel does not take the shape.
  bool split16 = false;
  // Optional, fused kernel only (attention_gemm refuses them elsewhere): the caches hold int8 or e4m3 codes
  // as f16 values (exact) and each key's value is its code times its head's scale, k_scale / v_scale
  // [n_head_kv][scale_stride] f32 (kv_codes_f16; scale_stride a multiple of 64, finite values up to the
  // last 64-key tile). The kernel multiplies each score by its key's scale, and each softmax weight by its
  // value's scale over the largest value scale so far (the output is rescaled as that grows), so no cached
  // value is rounded to f16.
  const float* k_scale = nullptr;
  const float* v_scale = nullptr;
  int64_t scale_stride = 0;
  // Optional, flash kernel only (attention_flash_takes): it also writes its output rows as 16-bit rows
  // (act.half_rows, bf16 if act.bf16; no fragments), the o product's input, so no cast kernel follows.
  // `out` may then be null.
  ActOut act;
};
// Whether attention_gemm runs the fused kernel for these arguments (flash: GemmAttentionArgs::flash), and
// the same from the dims alone.
inline bool attention_flash_fits(bool flash, int n_head, int n_head_kv, int hd_k, int hd_v) {
  return flash && hd_k == hd_v && (hd_k == 64 || hd_k == 128) && n_head % n_head_kv == 0;
}
inline bool attention_flash_takes(const GemmAttentionArgs& a) {
  return attention_flash_fits(a.flash, a.n_head, a.n_head_kv, a.hd_k, a.hd_v);
}
size_t attention_gemm_scratch_bytes(int T, int n_head, int hd_k, int64_t n_keys);
// Returns false (nothing launched) for shapes it does not take: head dims not multiples of 8, or split16 or
// scales where attention_flash_takes is false.
bool attention_gemm(void* cublas_handle, const GemmAttentionArgs& a, cudaStream_t s);

// Splits for the split-key attention: in a decode batch (T <= 16), one where the (head, token) pairs
// alone give at least `one_split_blocks_per_sm` blocks per SM (0: never; negative: always, so that small
// test models reach the one-split kernels); else about `blocks_per_sm`
// blocks per SM, at most 16. Llama2-7b on an H100: 16 at 1 stream, 1 at 16 streams (3 under the
// blocks-per-SM rule alone, measured 2-4% slower per step: docs/perf.md, session 9), 1 for prefill.
int attention_splits(int n_head, int T, int sm_count, int blocks_per_sm = 8, int one_split_blocks_per_sm = 2);
// Causal GQA attention over the f16 cache, f32 online softmax; head dims up to kMaxHeadDim.
constexpr int kMaxHeadDim = 256;
void attention(const AttentionArgs& a, cudaStream_t s);
// The merge of the split path alone (a.counters ignored): for split kernels outside this file that
// leave the same partial sums in a.part (kv_quant.cu's quantized-cache attention).
void attention_merge(const AttentionArgs& a, cudaStream_t s);

}  // namespace qb::runtime::cuda
