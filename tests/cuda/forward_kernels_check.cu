// Correctness of the fused forward-pass kernels (runtime/cuda/forward_kernels.h) against float64 CPU
// references, on fresh random inputs, outputs poisoned (NaN / 0xff) before each launch:
//   - add_rmsnorm: the residual add bit-exact (one f32 add), untouched rows untouched (row gather),
//     the normalized rows within 2e-5 relative of float64, and the f16/bf16 rows and qgemv fragments
//     bit-identical to casting / pack_activations_f32 of the kernel's own f32 rows (so every target
//     holds the same values, fragment padding zero);
//   - gated_act_out: SiLU / GELU x up within 2e-5 relative (+1e-6) of float64, fragments likewise;
//   - attention, split over keys (1, 3, 17 splits) and the one-block path: GQA, sliding window,
//     soft-capping, even and odd head dims, against float64 softmax attention over the same f16 cache,
//     |error| <= 5e-5 (values are O(1); f32 accumulation over <= 300 keys);
//   - rope_and_store_kv against float64 rotation; split attention with rope + KV write fused against
//     the two-kernel path, the tokens' cache rows poisoned; attention_gemm (prefill on cuBLAS) against
//     float64 within 3e-3 (Q and P rounded to f16);
//   - argmax_rows: equal to std::max_element (first index on ties) on rows with planted ties, row
//     lengths with and without the float4 path, the ids written to device or mapped host memory;
//   - copy_from_mapped: mapped pinned host bytes copied exactly, lengths not a multiple of 16 refused.
// Called from qgemv_check.cu's main (one executable: the GPU machine has no gtest).
// The checks are in forward_check/, one file per kind of kernel (forward_check.h lists them).
#include <cublas_v2.h>

#include <cstdint>
#include <stdexcept>

#include "quantbench/runtime/cuda/kv_quant.h"
#include "forward_check/forward_check.h"

using namespace qb::runtime::cuda;
using namespace forward_check;

// Returns the number of failures; adds the cases run to *cases.
int run_forward_kernel_checks(uint64_t seed, int* cases) {
  std::mt19937_64 rng(seed ^ 0xf0f0f0f0ull);
  for (int n : {64, 172, 4096, 9000})  // 9000: wider than the register kernel takes (the loop kernel)
    for (int T : {1, 5, 16, 40})
      for (bool add : {false, true}) check_add_rmsnorm(n, T, add, false, T % 2 == 1, rng, false, n < 9000 && T < 16);
  check_add_rmsnorm(4096, 3, true, true, false, rng);
  check_add_rmsnorm(4096, 3, true, true, false, rng, false, true);  // a gather loads after the wait anyway
  check_add_rmsnorm(4096, 1, true, false, false, rng, true);
  check_add_rmsnorm(172, 16, true, true, true, rng, true);
  check_add_rmsnorm(172, 16, true, true, true, rng);
  for (int n : {172, 11008})
    for (int T : {1, 9, 16, 33}) check_gated(n, T, T % 2, T == 9, rng);
  const AttnCase cases_[] = {
      {1, 32, 32, 128, 128, 0, 0.f}, {16, 32, 8, 128, 128, 0, 0.f}, {5, 8, 2, 64, 64, 40, 0.f},
      {7, 4, 1, 8, 8, 0, 30.f},      {3, 4, 2, 5, 7, 0, 0.f},       {40, 8, 8, 64, 64, 0, 0.f},
      {2, 2, 1, 256, 256, 0, 0.f},   {4, 6, 3, 72, 72, 17, 20.f},
      {61, 4, 2, 128, 128, 0, 0.f, true}, {45, 4, 4, 64, 64, 9, 25.f, true}, {100, 2, 1, 72, 72, 0, 0.f, true}};
  for (const auto& c : cases_) {
    for (int splits : {0, 1, 3, 17}) check_attention(c, splits, rng);
    // The half-warp kernel (the prefill case takes it at 3 and 17 splits; at one split, the tiled kernel).
    if (c.hd_k == 128 && c.hd_v == 128)
      for (int splits : {1, 3, 17}) check_attention(c, splits, rng, true);
  }
  // Half-warp keys at lengths that leave the second half-warp of a warp with no key in a step (odd counts
  // per split), GQA, a window and soft-capping.
  check_attention({9, 8, 2, 128, 128, 23, 30.f}, 5, rng, true);
  check_attention({2, 4, 4, 128, 128, 0, 0.f}, 32, rng, true);
  check_rope(false, 1, 32, 32, 128, 128, rng);
  check_rope(true, 16, 8, 2, 64, 64, rng);
  check_rope(false, 5, 4, 2, 64, 32, rng);
  check_rope(true, 3, 6, 3, 8, 4, rng);
  check_fused_rope(1, 32, 32, 128, false, 16, rng);
  check_fused_rope(16, 32, 8, 128, true, 3, rng);
  check_fused_rope(5, 8, 2, 64, false, 7, rng);
  check_fused_rope(3, 4, 4, 8, false, 1, rng);
  check_fused_rope(1, 32, 32, 128, false, 16, rng, false);
  check_fused_rope(16, 32, 8, 128, true, 1, rng, false);
  for (bool neox : {false, true}) {
    check_fused_rope(1, 32, 32, 128, neox, 16, rng, true, true);
    check_fused_rope(16, 32, 8, 128, neox, 1, rng, true, true);
    check_fused_rope(5, 8, 2, 128, neox, 3, rng, false, true);
  }
  check_attention_kvq_one_split(kKvInt8, 3, 32, 32, 128, 3, rng);
  check_attention_kvq_one_split(kKvFp8, 2, 32, 8, 128, 5, rng);
  check_attention_kvq_one_split(kKvInt4, 3, 8, 2, 64, 2, rng);
  check_attention_kvq_one_split(kKvInt8, 2, 4, 4, 10, 2, rng);  // head dim 10: the one-code-at-a-time path
  check_attention_kvq_one_split(kKvInt4, 2, 2, 1, 256, 4, rng);  // head dim 256: two code words per lane
  {
    cublasHandle_t blas = nullptr;
    if (cublasCreate(&blas) != CUBLAS_STATUS_SUCCESS) throw std::runtime_error("cublasCreate failed");
    check_attention_gemm(blas, 40, 8, 8, 64, 0, 0.f, rng);
    check_attention_gemm(blas, 33, 8, 2, 128, 17, 0.f, rng);
    check_attention_gemm(blas, 64, 4, 1, 64, 5, 30.f, rng);
    check_attention_gemm(blas, 17, 6, 3, 8, 100, 0.f, rng);
    // The fused kernel: ragged query tiles, GQA, p0 > 0 (later chunks), soft-capping, one token.
    check_attention_gemm(blas, 40, 8, 8, 64, 0, 0.f, rng, true);
    check_attention_gemm(blas, 33, 8, 2, 128, 17, 0.f, rng, true);
    check_attention_gemm(blas, 64, 4, 1, 64, 5, 30.f, rng, true);
    check_attention_gemm(blas, 130, 4, 2, 128, 70, 0.f, rng, true);
    check_attention_gemm(blas, 200, 2, 2, 64, 0, 25.f, rng, true);
    check_attention_gemm(blas, 1, 4, 2, 128, 9, 0.f, rng, true);
    check_attention_gemm(blas, 17, 6, 3, 8, 100, 0.f, rng, true);  // head dim 8: the two GEMMs
    check_attention_gemm(blas, 40, 8, 8, 64, 0, 0.f, rng, true, true);
    check_attention_gemm(blas, 130, 4, 2, 128, 70, 0.f, rng, true, true);
    check_attention_gemm(blas, 64, 4, 1, 64, 5, 30.f, rng, true, true);
    check_attention_gemm(blas, 200, 2, 2, 128, 0, 25.f, rng, true, true);
    check_attention_gemm(blas, 17, 6, 3, 8, 100, 0.f, rng, true, true);  // head dim 8: refused
    // int8 / fp8 caches' prefill: codes with their scales, alone and with the pairs.
    check_attention_gemm(blas, 40, 8, 8, 64, 0, 0.f, rng, true, false, true);
    check_attention_gemm(blas, 130, 4, 2, 128, 70, 0.f, rng, true, false, true);
    check_attention_gemm(blas, 130, 4, 2, 128, 70, 0.f, rng, true, true, true);
    check_attention_gemm(blas, 200, 2, 2, 64, 0, 25.f, rng, true, true, true);
    check_attention_gemm(blas, 33, 8, 2, 128, 17, 0.f, rng, true, true, true);
    check_attention_gemm(blas, 17, 6, 3, 8, 100, 0.f, rng, true, false, true);  // head dim 8: refused
    cublasDestroy(blas);
  }
  check_argmax(32000, 16, rng);
  check_argmax(152064, 2, rng);  // more than one batch of float4 loads per thread
  check_argmax(1000, 3, rng);
  check_argmax(1001, 3, rng);  // rows not a multiple of 4: the scalar loop
  check_argmax(7, 2, rng);
  check_argmax(32000, 3, rng, true);
  check_copy_from_mapped(16, rng);
  check_copy_from_mapped(4096 + 48, rng);
  check_copy_from_mapped(size_t(5) << 20, rng);  // more than one grid stride (1024 blocks x 256 x 16 bytes)
  *cases += g_n;
  return g_fail;
}
