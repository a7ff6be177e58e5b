// See w8a8_fp8_tc.h. cuBLAS is column-major: the weights [n_out][n_in] are an n_in x n_out matrix
// (ld n_in) taken transposed, the activation codes [T][n_in] an n_in x T matrix (ld n_in), and the
// output [T][n_out] an n_out x T matrix (ld n_out): D = A^T B, the "TN" form FP8 requires.
#include "quantbench/runtime/cuda/w8a8_fp8_tc.h"

#include <cublasLt.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "quantbench/runtime/cuda/w8a8.h"

namespace qb::runtime::cuda {
namespace {

void lt_ok(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS)
    throw std::runtime_error(std::string("cuBLASLt FP8 W8A8: ") + what + ": status " + std::to_string(int(s)));
}

}  // namespace

struct Fp8TensorCoreGemm::Plan {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  cublasLtMatmulAlgo_t algo{};
  size_t workspace = 0;
  bool usable = false;        // cuBLASLt offered an algorithm
  bool outer_scales = false;  // the scales applied in cuBLASLt's epilogue (else by w8a8_scale_rows)
  ~Plan() {
    if (d) cublasLtMatrixLayoutDestroy(d);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (op) cublasLtMatmulDescDestroy(op);
  }
};

Fp8TensorCoreGemm::Fp8TensorCoreGemm() {
  cublasLtHandle_t h = nullptr;
  lt_ok(cublasLtCreate(&h), "cublasLtCreate");
  handle_ = h;
}

Fp8TensorCoreGemm::~Fp8TensorCoreGemm() {
  plans_.clear();
  if (handle_) cublasLtDestroy(static_cast<cublasLtHandle_t>(handle_));
}

bool Fp8TensorCoreGemm::supports(int64_t n_out, int64_t n_in) {
  return n_out > 0 && n_in > 0 && n_out % 16 == 0 && n_in % 16 == 0 && n_out < (int64_t(1) << 31) &&
         n_in < (int64_t(1) << 31);
}

bool Fp8TensorCoreGemm::run(const uint8_t* W, const float* sw, int n_out, int n_in, const uint8_t* xq,
                            const float* sx, int T, float* y, void* workspace, size_t workspace_bytes,
                            cudaStream_t stream) {
  if (T <= 0) return true;
  auto aligned = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  if (!supports(n_out, n_in) || !aligned(W) || !aligned(xq) || !aligned(y) || !aligned(workspace)) return false;
  auto lt = static_cast<cublasLtHandle_t>(handle_);
  std::unique_ptr<Plan>& slot = plans_[{n_out, n_in, T}];
  if (!slot) {
    // With the per-row and per-token scales as cuBLASLt's outer-vector scales first (no scaling kernel
    // after the GEMM), where this many tokens take them and it offers an algorithm; else plain, once.
    for (int attempt = T >= outer_min_tokens_ ? 0 : 1; attempt < 2; ++attempt) {
      const bool outer = attempt == 0;
      auto p = std::make_unique<Plan>();
      lt_ok(cublasLtMatmulDescCreate(&p->op, CUBLAS_COMPUTE_32F, CUDA_R_32F), "matmul descriptor");
      const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
      lt_ok(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta), "transa");
      lt_ok(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb), "transb");
      const int8_t fast_accum = 0;  // promote partial sums out of the tensor cores (the accurate mode)
      lt_ok(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_FAST_ACCUM, &fast_accum, sizeof fast_accum),
            "fast accumulation off");
      if (outer) {
        const int32_t mode = CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F;
        if (cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &mode, sizeof mode) !=
                CUBLAS_STATUS_SUCCESS ||
            cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &mode, sizeof mode) !=
                CUBLAS_STATUS_SUCCESS)
          continue;
        const void* any = sw;  // the pointers are set per call; one is needed for the query
        cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &any, sizeof any);
        cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &any, sizeof any);
      }
      lt_ok(cublasLtMatrixLayoutCreate(&p->a, CUDA_R_8F_E4M3, uint64_t(n_in), uint64_t(n_out), int64_t(n_in)), "A");
      lt_ok(cublasLtMatrixLayoutCreate(&p->b, CUDA_R_8F_E4M3, uint64_t(n_in), uint64_t(T), int64_t(n_in)), "B");
      lt_ok(cublasLtMatrixLayoutCreate(&p->d, CUDA_R_32F, uint64_t(n_out), uint64_t(T), int64_t(n_out)), "D");
      cublasLtMatmulPreference_t pref = nullptr;
      lt_ok(cublasLtMatmulPreferenceCreate(&pref), "preference");
      const uint64_t ws = workspace_bytes;
      cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws);
      cublasLtMatmulHeuristicResult_t res{};
      int found = 0;
      const cublasStatus_t s =
          cublasLtMatmulAlgoGetHeuristic(lt, p->op, p->a, p->b, p->d, p->d, pref, 1, &res, &found);
      cublasLtMatmulPreferenceDestroy(pref);
      if (s == CUBLAS_STATUS_SUCCESS && found > 0 && res.state == CUBLAS_STATUS_SUCCESS) {
        p->algo = res.algo;
        p->workspace = res.workspaceSize;
        p->usable = true;
        p->outer_scales = outer;
      }
      slot = std::move(p);
      if (slot->usable) break;
    }
  }
  if (!slot->usable) return false;
  if (slot->outer_scales) {  // A's scale per row of op(A) (the weights' rows), B's per column (tokens)
    lt_ok(cublasLtMatmulDescSetAttribute(slot->op, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &sw, sizeof sw), "A scales");
    lt_ok(cublasLtMatmulDescSetAttribute(slot->op, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &sx, sizeof sx), "B scales");
  }
  const float one = 1.0f, zero = 0.0f;
  lt_ok(cublasLtMatmul(lt, slot->op, &one, W, slot->a, xq, slot->b, &zero, y, slot->d, y, slot->d, &slot->algo,
                       workspace, slot->workspace, stream),
        "cublasLtMatmul");
  last_outer_scales_ = slot->outer_scales;
  if (!slot->outer_scales) w8a8_scale_rows(y, sx, sw, n_out, T, stream);
  return true;
}

}  // namespace qb::runtime::cuda
