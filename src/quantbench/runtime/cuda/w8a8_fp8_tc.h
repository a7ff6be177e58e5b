// FP8 W8A8 products of 9 or more tokens (the backend's fp8_tc_min) on the Hopper FP8 tensor cores, through
// cuBLASLt, where CudaBackendOptions::fp8_tensor_cores asks for them (off by default since session 31):
// e4m3 weight codes [n_out][n_in] times e4m3 activation codes [T][n_in], f32 accumulation with cuBLASLt's
// own promotion of the tensor cores' partial sums (its fast-accumulation mode off), written as f32, scaled
// by s_w and s_x in cuBLASLt's epilogue (outer-vector scales) or by w8a8_scale_rows after it. This is the
// arithmetic an FP8 deployment runs (vLLM's FP8 linear layers are cuBLASLt / CUTLASS scaled GEMMs), so its
// speed is worth measuring. It is not the CPU's: the CPU sums the exact products exactly (in double), while
// the tensor cores add each short run of products keeping about 14 significant bits (as DeepSeek-V3's
// report measured on Hopper) before cuBLASLt promotes the partial sum to f32. Measured on an H200 with
// cuBLASLt 13.1 at n_in 4096 and 11024: errors up to 8e-5 of the sum of |products| (the f32 CUDA-core
// kernel: 4.5e-8); a random Llama's next-token distributions moved by a mean KL of 3.9e-4 against the
// exact form's 6.3e-5 (docs/perf.md, session 27), past issue #6's 1e-4. So the backend's default sums the
// exact products in f32 on the f16 tensor cores instead (w8a8.h).
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <tuple>

namespace qb::runtime::cuda {

class Fp8TensorCoreGemm {
 public:
  Fp8TensorCoreGemm();  // creates its cuBLASLt handle
  ~Fp8TensorCoreGemm();
  Fp8TensorCoreGemm(const Fp8TensorCoreGemm&) = delete;
  Fp8TensorCoreGemm& operator=(const Fp8TensorCoreGemm&) = delete;

  // What cuBLASLt's FP8 kernels need of the operands: rows of whole 16-byte pieces on both sides and
  // 16 output rows at a time (n_in % 16 == 0, n_out % 16 == 0); any T.
  static bool supports(int64_t n_out, int64_t n_in);

  // y[t][o] (row stride n_out) as above. The workspace is cuBLASLt's scratch (the backend's cuBLAS
  // workspace: one stream, so never in use twice). Returns false, having launched nothing, where the
  // shape is not supported, W, xq, y or the workspace is not 16-byte aligned, or cuBLASLt offers no
  // algorithm; the caller then runs the CUDA-core kernels and says so.
  // The plan of each (n_out, n_in, T) is made once and kept, so a call inside a CUDA graph capture
  // makes no allocation.
  bool run(const uint8_t* W, const float* sw, int n_out, int n_in, const uint8_t* xq, const float* sx, int T,
           float* y, void* workspace, size_t workspace_bytes, cudaStream_t stream);

  // The scales: from `min_tokens` tokens on, cuBLASLt's outer-vector scale mode (s_w per output row, s_x
  // per token, applied in its epilogue, in its own order) where it offers an algorithm; otherwise the
  // scaling kernel after the GEMM. On an H200 (docs/perf.md, session 27) the outer-vector algorithm made
  // 512-token prefill 20% faster and 16-token decode steps 33% slower, hence 17 by default; a huge value
  // never uses it (QB_CUDA_FP8_OUTER_SCALES=0). last_outer_scales(): how the last run() scaled.
  static constexpr int kOuterScalesFromTokens = 17;
  void outer_scales_from(int min_tokens) { outer_min_tokens_ = min_tokens; }
  bool last_outer_scales() const { return last_outer_scales_; }

 private:
  struct Plan;
  int outer_min_tokens_ = kOuterScalesFromTokens;
  bool last_outer_scales_ = false;
  void* handle_ = nullptr;  // cublasLtHandle_t
  std::map<std::tuple<int, int, int>, std::unique_ptr<Plan>> plans_;
};

}  // namespace qb::runtime::cuda
