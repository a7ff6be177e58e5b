// The parts of forward_kernels_check (the fused forward-pass kernels against float64; ../forward_kernels_check.cu
// says what each holds them to and runs them), one file per kind of kernel, and what they share: the tallies, a
// device buffer, 16-bit conversions, the comparison of a kernel's output targets.
#pragma once
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "quantbench/runtime/cuda/cuda_check.h"
#include "../check_util.h"

namespace forward_check {

// Failures and cases so far (run_forward_kernel_checks reports them).
extern int g_fail, g_n;

#define FCHECK(cond, ...) QB_COUNT_CHECK(::forward_check::g_fail, cond, __VA_ARGS__)

template <class T>
struct Dev {
  T* p = nullptr;
  size_t n = 0;
  explicit Dev(size_t count, int fill = 0) : n(count) {
    QB_CUDA_OK(cudaMalloc(&p, std::max<size_t>(n, 1) * sizeof(T)));
    QB_CUDA_OK(cudaMemset(p, fill, std::max<size_t>(n, 1) * sizeof(T)));
  }
  Dev(const std::vector<T>& v) : Dev(v.size()) {
    if (n) QB_CUDA_OK(cudaMemcpy(p, v.data(), n * sizeof(T), cudaMemcpyHostToDevice));
  }
  ~Dev() { cudaFree(p); }
  std::vector<T> get() const {
    std::vector<T> v(n);
    if (n) QB_CUDA_OK(cudaMemcpy(v.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost));
    return v;
  }
};

inline uint16_t h16(float f, bool bf) {
  return bf ? __nv_bfloat16_raw(__float2bfloat16_rn(f)).x : __half_raw(__float2half_rn(f)).x;
}
inline float f16_to_float(uint16_t u) { __half_raw r; r.x = u; return __half2float(__half(r)); }

// The targets (f32 rows, 16-bit rows, fragments) hold the same values: compares the 16-bit rows and
// fragments with casting / packing `rows` (the kernel's own f32 output) on the device.
void check_targets(const std::vector<float>& rows, int n, int T, bool bf, const Dev<uint16_t>* half,
                   const Dev<uint8_t>* frag, const std::string& name);

struct AttnCase {
  int T, n_head, n_head_kv, hd_k, hd_v;
  int64_t window;
  float softcap;
  bool prefill = false;  // tokens in runs of one sequence at consecutive positions (the tiled path's fast case)
};

// norm_act_check.cu
void check_add_rmsnorm(int n, int T, bool with_add, bool gather, bool bf, std::mt19937_64& rng, bool loop = false,
                       bool prewait = false);
void check_gated(int n, int T, int act, bool bf, std::mt19937_64& rng);

// attention_decode_check.cu
void check_attention(const AttnCase& c, int splits, std::mt19937_64& rng, bool half_warp = false);
void check_attention_kvq_one_split(int code, int T, int n_head, int n_head_kv, int hd, int splits,
                                   std::mt19937_64& rng);
void check_rope(bool neox, int T, int n_head, int n_head_kv, int hd, int n_rot, std::mt19937_64& rng);
void check_fused_rope(int T, int n_head, int n_head_kv, int hd, bool neox, int splits, std::mt19937_64& rng,
                      bool prewait = true, bool half_warp = false);

// attention_prefill_check.cu
void check_attention_gemm(cublasHandle_t blas, int T, int n_head, int n_head_kv, int hd, int64_t p0, float softcap,
                          std::mt19937_64& rng, bool flash = false, bool split16 = false, bool scaled = false);

// small_kernels_check.cu
void check_copy_from_mapped(size_t bytes, std::mt19937_64& rng);
void check_argmax(int n, int rows, std::mt19937_64& rng, bool to_mapped = false);

}  // namespace forward_check
