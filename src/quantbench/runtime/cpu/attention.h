// Attention of one query head at one position against a sequence's f32 KV cache: causal (keys at
// positions <= pos), optionally within a sliding window, optional tanh soft-capping of the scores.
// Grouped-query attention is the caller's choice of which KV head to pass. attention_head keeps scores,
// softmax and the weighted sum in double: it is the reference, and every backend is compared with it.
// attention_head_f32 is the fast path's: f32 throughout, dot products split over 16 independent lanes
// so the compiler vectorizes them (a double scalar loop was 40% of a 512-token prefill of SmolLM2).
#pragma once
#include <cstdint>
#include <vector>

#include "quantbench/core/thread_pool.h"

namespace qb::runtime::cpu {

struct AttentionParams {
  int64_t head_dim_k = 0;
  int64_t head_dim_v = 0;
  int64_t k_stride = 0;   // floats between consecutive positions in the K cache
  int64_t v_stride = 0;
  float scale = 1.0f;     // multiplies q·k
  float softcap = 0.0f;   // 0: none; else s = softcap * tanh(s / softcap)
  int64_t window = 0;     // 0: none; else keys with pos - key_pos >= window are masked
};

// q: head_dim_k floats. k, v: the cache rows of the KV head, position 0 first (k + j*k_stride).
// out: head_dim_v floats. scratch is resized as needed.
void attention_head(const AttentionParams& p, const float* q, const float* k, const float* v, int64_t pos,
                    float* out, std::vector<double>& scratch);
void attention_head_f32(const AttentionParams& p, const float* q, const float* k, const float* v, int64_t pos,
                        float* out, std::vector<float>& scratch);

// One query head over a run of nt consecutive tokens of one sequence at positions pos0 .. pos0+nt-1
// (a prefill chunk), as two gemm_f32 products around a masked softmax: S = scale q K^T over keys
// 0 .. pos0+nt-1, P = softmax(S) with the causal/window mask, out = P V. Same scores, mask and
// soft-capping as attention_head_f32, in f32; masked scores are computed and discarded (the GEMM is
// faster than skipping them). q row t at q + t * q_stride, out row t at out + t * out_stride (out is
// overwritten). scratch holds the nt x (pos0 + nt) scores.
void attention_run_gemm(const AttentionParams& p, const float* q, int64_t q_stride, int64_t nt, int64_t pos0,
                        const float* k, const float* v, float* out, int64_t out_stride, ThreadPool& pool,
                        std::vector<float>& scratch);

}  // namespace qb::runtime::cpu
