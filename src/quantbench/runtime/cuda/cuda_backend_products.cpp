// See cuda_backend_impl.h. CudaBackend::Impl's matrix products: where a product's input is written
// (target and its variants), the product itself by weight form and token count (qgemv, qgemm, cuBLAS,
// the W8A8 kernels), the fused gate|up product, the decode L2 prefetch, and the W8A8 paths' Manifest
// text (which follows the product dispatch's ranges).
#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <string>

#include "quantbench/runtime/cuda/cuda_backend_impl.h"

namespace qb::runtime::cuda {

std::string CudaBackend::Impl::fp8_path(const Mat& m) const {
  if (fp8_exact)
    return fmt::format("w8a8 fp8 (per-token e4m3 activations, products summed exactly in double: CUDA cores below "
                       "{} tokens, FP64 tensor cores (DMMA) from {}; the CPU's arithmetic exactly)",
                       w8a8_fp8_dmma_min_tokens(), w8a8_fp8_dmma_min_tokens());
  // gemm_ready's ranges: the decode kernel up to 16 tokens below the FP8 tensor cores' threshold (where
  // they run), the f16 tensor-core prefill kernel (else exact double sums) from 17 to that threshold
  const int tc_from = m.fp8_tc ? fp8_tc_min : std::numeric_limits<int>::max();
  const int decode_to = std::min(16, tc_from - 1);
  const std::string few = mma_decodes(m) ? "the exact products summed by the f16 tensor cores (mma.sync, f32 "
                                            "accumulation; " + mma_loop_note() + ")"
                                          : "the exact products summed in f32 on the CUDA cores (the input width "
                                            "is not a multiple of 16 for the tensor cores)";
  std::string s = fmt::format("w8a8 fp8 (per-token e4m3 activations; 1-{} tokens: {}", decode_to, few);
  if (tc_from > 17) {
    const std::string many = prefill_wgmma(m) ? "the exact products summed by the f16 tensor cores (wgmma, f32 "
                                                "accumulation)"
                                              : "exact double sums (the input width is not a multiple of 16 for "
                                                "the f16 tensor-core prefill kernel)";
    s += m.fp8_tc ? fmt::format("; 17-{} tokens: {}", tc_from - 1, many) : fmt::format("; from 17 tokens: {}", many);
  }
  if (m.fp8_tc) {
    const int outer_from = Fp8TensorCoreGemm::kOuterScalesFromTokens;
    const std::string scaling = fp8_outer_scales ? fmt::format("scaled by a kernel up to {} tokens, in cuBLASLt's "
                                                               "epilogue (outer-vector scales) from {} where it "
                                                               "offers that", outer_from - 1, outer_from)
                                                 : "scaled by a kernel";
    s += fmt::format("; from {} tokens: FP8 tensor cores through cuBLASLt, fast accumulation off (their partial "
                     "sums keep about 14 bits: up to 8e-5 of the sum of |products| measured at real widths), {}",
                     tc_from, scaling);
  }
  return s + "; not the CPU's exact sums)";
}

std::string CudaBackend::Impl::mma_loop_note() {
  const int from = w8a8_mma_pipe_min_tokens();
  return from > 16 ? std::string("its plain loop at every token count")
                   : "its loop a ping-pong from " + std::to_string(from) + (from == 1 ? " token" : " tokens");
}

std::string CudaBackend::Impl::int8_path(const Mat& m) const {
  const std::string how =
      mma_decodes(m) ? fmt::format("{} at one token, int8 tensor cores (mma.sync; {}) at 2-16, cuBLAS int8 GEMM "
                                   "from 17",
                                   w8a8_gemm_min > 1 ? "dp4a kernel" : "cuBLAS int8 GEMM", mma_loop_note())
                       : fmt::format("dp4a kernel below {} tokens, cuBLAS int8 GEMM from {}", w8a8_gemm_min,
                                     w8a8_gemm_min);
  return fmt::format("w8a8 int8 (per-token int8 activations, int32 sums: {}; the CPU's arithmetic exactly)", how);
}

void CudaBackend::Impl::l2_prefetch(const Mat& next, int T) {
  if (!l2_pf_bytes || T > l2_pf_max_tokens || next.w8a8) return;
  const DeviceMatrix& pk = next.first_packed();
  const void* w = next.packed ? pk.weights.get() : next.dense.data.p;  // dense: row-major, rows first
  const size_t bytes = next.packed ? pk.weight_bytes : next.dense.data.bytes;
  const bool wide = T <= 1 && !(next.packed && pk.shape.spec.format == WeightFormat::W4A16);
  const size_t want = wide ? l2_pf_wide_bytes : l2_pf_bytes;
  if (!w) return;
  cuda_ok(cudaEventRecord(pf_fork, stream), "l2 prefetch fork");
  cuda_ok(cudaStreamWaitEvent(pf_stream, pf_fork, 0), "l2 prefetch fork");
  prefetch_l2(w, std::min(want, bytes) & ~size_t(15), pf_stream);
  pf_pending = true;
}

void CudaBackend::Impl::l2_join() {
  if (!pf_pending) return;
  cuda_ok(cudaEventRecord(pf_join, pf_stream), "l2 prefetch join");
  cuda_ok(cudaStreamWaitEvent(stream, pf_join, 0), "l2 prefetch join");
  pf_pending = false;
}

ActOut CudaBackend::Impl::target(const Mat& m, int T, float* f32_rows) const {
  ActOut a;
  if (m.w8a8) {  // quantized per token from the f32 rows by gemm_ready
    a.f32 = f32_rows;
  } else if (m.packed && T <= 16) {
    a.frag = xfrag.p;
    a.bf16 = m.first_packed().shape.spec.format == WeightFormat::BF16;  // (a split stack: never bf16)
  } else if (m.packed) {
    a.half_rows = xb.as<uint16_t>();
  } else if (dense == DenseType::Bits16) {
    a.half_rows = xb.as<uint16_t>();
    a.bf16 = !m.dense.f16;
  } else {
    a.f32 = f32_rows;
  }
  return a;
}

ActOut CudaBackend::Impl::norm_target(const Mat& m, int T, float* f32_rows) const {
  if (!norm_codes(m, T)) return target(m, T, f32_rows);
  return codes_target(m, T);
}

ActOut CudaBackend::Impl::act_target(const Mat& m, int T, float* f32_rows) const {
  if (!act_codes(m, T)) return target(m, T, f32_rows);
  return codes_target(m, T);
}

ActOut CudaBackend::Impl::codes_target(const Mat& m, int T) const {
  ActOut a;
  a.codes = w8_codes(T);
  a.code_scale = w8_scales(T);
  a.codes_fp8 = m.w8a8_fp8;
  a.nonfinite = nonfinite_flag();
  return a;
}

void CudaBackend::Impl::gemm_ready(const Mat& m, const float* x, int T, float* y, const void* frag_in, bool early,
                                   bool codes_ready) {
  if (skips(kSkipProd, T)) return;
  const float one = 1.0f, zero = 0.0f;
  if (m.w8a8) {
    const bool dec = T <= 16;
    // (prefill: codes, scales, then INT8's int32 sums or FP8's permuted f16 codes, w8a8_fp8_prefill's scratch)
    if (!dec)
      w8_pre.ensure(al256(size_t(T) * size_t(w8_in)) + al256(size_t(T) * 4) +
                    std::max(size_t(T) * size_t(w8_out) * 4, w8a8_fp8_prefill_scratch_bytes(int(w8_in), T)));
    auto* xq = reinterpret_cast<int8_t*>(w8_codes(T));
    float* sx = w8_scales(T);
    const bool quantize = !(codes_ready && dec);  // (else its producer wrote xq and sx)
    if (quantize) mark(kCast);
    if (m.w8a8_fp8) {
      auto* xq8 = reinterpret_cast<uint8_t*>(xq);
      const bool tc = !fp8_exact && T >= fp8_tc_min && m.fp8_tc;
      // A prefill on the f16 tensor-core kernel: its input quantized straight into that kernel's f16 layout
      // where the quantizer takes the rows (one pass over the codes fewer), else codes then a permutation
      auto* x16 = dec ? nullptr : reinterpret_cast<uint16_t*>(reinterpret_cast<uint8_t*>(sx) + al256(size_t(T) * 4));
      const bool permuted = quantize && !dec && !tc && prefill_wgmma(m) &&
                            quantize_act_fp8_permuted(x, m.n_in, int(m.n_in), T, x16, sx, stream, nonfinite_flag());
      if (quantize && !permuted) quantize_act_fp8(x, m.n_in, int(m.n_in), T, xq8, sx, stream, nonfinite_flag());
      const uint8_t* W = m.w8q.as<uint8_t>();
      const float* sw = m.w8s.as<float>();
      if (tc) {
        mark(kCublas);
        if (fp8_tc->run(W, sw, int(m.n_out), int(m.n_in), xq8, sx, T, y, blas_ws.p, blas_ws.bytes, stream)) return;
        if (fp8_tc_refused.insert(fmt::format("{}x{} at {} tokens", m.n_out, m.n_in, T)).second)
          fmt::print(stderr,
                     "quantbench: cuda: the FP8 tensor cores (cuBLASLt) refused a {}x{} product at {} tokens; it "
                     "runs on the CUDA cores instead (f32 sums up to 16 tokens, exact sums above; the manifest "
                     "says so)\n",
                     m.n_out, m.n_in, T);
      }
      mark(kQgemv);
      if (!fp8_exact && T <= 16) {
        const bool ear = overlap_launch && early;
        if (mma_decodes(m))
          QB_CHECK(w8a8_fp8_mma(W, sw, int(m.n_out), int(m.n_in), xq8, sx, T, y, stream, ear),
                   "cuda: the FP8 tensor-core decode kernel refused a {}x{} product its test took", m.n_out, m.n_in);
        else
          w8a8_fp8_gemv_f32(W, sw, int(m.n_out), int(m.n_in), xq8, sx, T, y, stream, ear);
      } else if (prefill_wgmma(m)) {
        mark(kQgemm);
        QB_CHECK(permuted ? w8a8_fp8_prefill_f16(W, sw, int(m.n_out), int(m.n_in), x16, sx, T, y, stream)
                          : w8a8_fp8_prefill(W, sw, int(m.n_out), int(m.n_in), xq8, sx, T, x16, y, stream),
                 "cuda: the FP8 f16 tensor-core prefill kernel refused a {}x{} product its test took", m.n_out,
                 m.n_in);
      } else {
        w8a8_fp8_gemm(W, sw, int(m.n_out), int(m.n_in), xq8, sx, T, y, stream);
      }
      return;
    }
    if (quantize) quantize_act_int8(x, m.n_in, int(m.n_in), T, xq, sx, stream, nonfinite_flag());
    const int8_t* W = m.w8q.as<int8_t>();
    const float* sw = m.w8s.as<float>();
    const bool ear = overlap_launch && early;
    if (dec && T >= 2 && mma_decodes(m)) {
      mark(kQgemv);
      QB_CHECK(w8a8_int8_mma(W, sw, int(m.n_out), int(m.n_in), xq, sx, T, y, stream, ear),
               "cuda: the INT8 tensor-core decode kernel refused a {}x{} product its test took", m.n_out, m.n_in);
    } else if (T < w8a8_gemm_min) {
      mark(kQgemv);
      w8a8_gemv(W, sw, int(m.n_out), int(m.n_in), xq, sx, T, y, stream, ear);
    } else {
      mark(kCublas);
      auto* acc = reinterpret_cast<int32_t*>(reinterpret_cast<uint8_t*>(sx) + al256(size_t(T) * 4));
      w8a8_gemm(blas, W, sw, int(m.n_out), int(m.n_in), xq, sx, T, acc, y, stream);
    }
    return;
  }
  if (!m.segments.empty()) {  // a stack in several formats: its products one after another
    for (size_t i = 0; i < m.segments.size(); ++i)
      packed_product(m.segments[i].pk, T, y + m.segments[i].row0, m.n_out, frag_in, early && i == 0);
    return;
  }
  if (m.packed) {
    packed_product(m.pk, T, y, m.n_out, frag_in, early);
    return;
  }
  const DenseMatrix& w = m.dense;
  const void* b = x;
  cudaDataType_t ab = CUDA_R_32F;
  if (dense == DenseType::Bits16) {
    b = xb.p;
    ab = w.f16 ? CUDA_R_16F : CUDA_R_16BF;
  }
  mark(kCublas);
  // Column-major view: W is n_in x n_out (ld n_in); Y^T (n_out x T) = W^T X^T.
  blas_ok(cublasGemmEx(blas, CUBLAS_OP_T, CUBLAS_OP_N, int(w.n_out), T, int(w.n_in), &one, w.data.p, ab,
                       int(w.n_in), b, ab, int(w.n_in), &zero, y, CUDA_R_32F, int(w.n_out),
                       dense == DenseType::F32 ? CUBLAS_COMPUTE_32F_PEDANTIC : CUBLAS_COMPUTE_32F,
                       CUBLAS_GEMM_DEFAULT),
          "gemm");
}

void CudaBackend::Impl::packed_product(const DeviceMatrix& pk, int T, float* y, int64_t ldy, const void* frag_in,
                                       bool early) {
  if (T <= 16) {  // decode: stream the packed weights once for all T tokens
    mark(kQgemv);
    QgemvConfig cfg = choose_config(pk.shape, T, sm_count, launch_rule);
    cfg.overlap_launch = overlap_launch && early;
    qgemv(pk, frag_in ? frag_in : xfrag.p, T, y, stream, cfg, nullptr, ldy);
    return;
  }
  if (qgemm_takes(pk)) {  // prefill: qgemm reads the packed 4- or 8-bit weights itself
    mark(kQgemm);
    qgemm(pk, xb.as<uint16_t>(), T, y, stream, {}, ldy);
    return;
  }
  // Prefill: dequantize into the scratch matrix (f16), then a tensor-core GEMM.
  const float one = 1.0f, zero = 0.0f;
  mark(kDequant);
  dequantize_packed(pk, false, wscratch.p, stream);
  mark(kCublas);
  blas_ok(cublasGemmEx(blas, CUBLAS_OP_T, CUBLAS_OP_N, int(pk.shape.n_out), T, int(pk.shape.n_in), &one, wscratch.p,
                       CUDA_R_16F, int(pk.shape.n_in), xb.p, CUDA_R_16F, int(pk.shape.n_in), &zero, y, CUDA_R_32F,
                       int(ldy), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
          "gemm f16");
}

bool CudaBackend::Impl::gemm_gated(const Mat& m, int T, int n_ff, int act, const ActOut& to_down) {
  // (Timing experiments that leave out the activation or the products take the unfused path, so each
  // class still leaves out only itself.)
  if (!m.gate_up16 || !m.packed || T < fuse_act_min_t || T > 16 || !to_down.frag || skips(kSkipAct | kSkipProd, T))
    return false;
  QgemvConfig cfg = choose_config(m.pk.shape, T, sm_count, launch_rule);
  if (!gated_epilogue_fits(m.pk.shape, cfg)) return false;
  cfg.overlap_launch = overlap_launch;
  QgemvGatedOut go;
  go.frag = xfrag2.p;
  go.n = n_ff;
  go.act = act;
  go.bf16 = to_down.bf16;
  mark(kQgemv);
  qgemv(m.pk, xfrag.p, T, nullptr, stream, cfg, &go);
  return true;
}

void CudaBackend::Impl::gemm_f32(const Mat& m, float* x, int T, float* y) {
  const ActOut a = target(m, T, x);
  if (!a.f32) {
    mark(kCast);
    store_rows(x, int(m.n_in), T, a, stream);
  }
  gemm_ready(m, x, T, y);
}

}  // namespace qb::runtime::cuda
