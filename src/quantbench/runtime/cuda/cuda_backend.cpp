// See cuda_backend.h. Host side of the CUDA forward pass: weight upload, sequence caches, batch
// validation (the same rules and messages as the CPU backend, checked before any cache changes),
// rope angles (computed on the host with the reference's cpu::rope_angles, so both backends rotate
// by identical f32 angles) and the launch sequence. One stream; forward() returns after the logits
// (forward_greedy: the argmax ids) are back in pinned memory (a graphed step's argmax writes its ids
// there directly, and its first kernel reads the step's table from there). A profiling mode brackets
// kernel classes with events.
#include "quantbench/runtime/cuda/cuda_backend.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <set>

#include "quantbench/core/dtype.h"
#include "quantbench/core/error.h"
#include "quantbench/quant/qformat/bit_pack.h"
#include "quantbench/quant/qformat/ggml_blocks.h"
#include "quantbench/quant/qformat/quantized_tensor.h"
#include "quantbench/runtime/cpu/rope.h"
#include "quantbench/runtime/cuda/forward_kernels.h"
#include "quantbench/runtime/cuda/kv_quant.h"
#include "quantbench/runtime/cuda/w8a8.h"
#include "quantbench/runtime/cuda/w8a8_fp8_tc.h"
#include "quantbench/runtime/cpu/matmul_w8a8.h"
#include "quantbench/runtime/cuda/probes.h"
#include "quantbench/runtime/cuda/qgemm.h"
#include "quantbench/runtime/cuda/qgemv.h"
#include "quantbench/runtime/cuda/host/weight_repack.h"

namespace qb::runtime::cuda {

using model::ModelSpec;

namespace {

void cuda_ok(cudaError_t e, const char* what) {
  if (e != cudaSuccess) fail("cuda: {}: {}", what, cudaGetErrorString(e));
}
void blas_ok(cublasStatus_t e, const char* what) {
  if (e != CUBLAS_STATUS_SUCCESS) fail("cublas: {}: status {}", what, int(e));
}

// Owning device allocation.
struct DevBuf {
  void* p = nullptr;
  size_t bytes = 0;
  DevBuf() = default;
  explicit DevBuf(size_t n) : bytes(n) {
    if (n) cuda_ok(cudaMalloc(&p, n), "cudaMalloc");
  }
  DevBuf(DevBuf&& o) noexcept : p(o.p), bytes(o.bytes) { o.p = nullptr; o.bytes = 0; }
  DevBuf& operator=(DevBuf&& o) noexcept {
    if (this != &o) { reset(); p = o.p; bytes = o.bytes; o.p = nullptr; o.bytes = 0; }
    return *this;
  }
  ~DevBuf() { reset(); }
  void reset() { if (p) cudaFree(p); p = nullptr; bytes = 0; }
  template <class T> T* as() const { return static_cast<T*>(p); }
  // Grows (contents discarded) to at least n bytes.
  void ensure(size_t n) { if (bytes < n) *this = DevBuf(std::max(n, bytes * 3 / 2)); }
};

DevBuf upload_vec(const std::vector<float>& v) {
  DevBuf b(v.size() * sizeof(float));
  if (!v.empty()) cuda_ok(cudaMemcpy(b.p, v.data(), b.bytes, cudaMemcpyHostToDevice), "upload");
  return b;
}

using formats::GgmlType;

void dequantize_any_row(const model::WeightMatrix& w, int64_t r, float* out) {
  if (w.quantized) quant::dequantize_row(*w.quantized, r, out);
  else qformat::dequantize_row(w.type, w.data + size_t(r) * w.row_bytes, out, w.n_in);
}

}  // namespace

// A dense row-major [n_out][n_in] matrix on the device: f32 (DenseType::F32), else f16 or bf16.
struct DenseMatrix {
  DevBuf data;
  int64_t n_out = 0, n_in = 0;
  bool f16 = false;  // 16-bit: f16 (else bf16)
};

// One fused product's weights: packed (qgemv layout), INT8 W8A8 (w8a8.h) or dense.
struct Mat {
  bool packed = false;
  DenseMatrix dense;
  DeviceMatrix pk;
  bool w8a8 = false, w8a8_fp8 = false;
  // FP8 W8A8 that runs on the FP8 tensor cores from fp8_tc_min tokens: CudaBackendOptions::fp8_tensor_cores
  // is on and the shape is one cuBLASLt takes (Fp8TensorCoreGemm::supports)
  bool fp8_tc = false;
  DevBuf w8q, w8s;  // W8A8: int8 codes (signed) or e4m3 codes (fp8) [n_out][n_in], f32 scale per row
  int64_t n_out = 0, n_in = 0;
  // gate|up, packed: rows in interleaved blocks of 16 gate then 16 up rows (CudaBackendOptions::
  // fuse_gated_act), so its output rows are too (gated_act_out's interleave16).
  bool gate_up16 = false;
  // A stack whose parts are packed in different formats (GGUF Q4_K_M: q|k in Q4_K with v in Q6_K in
  // some layers): one packed product per run of parts in one format, each writing its rows of the
  // stack's output (qgemv's and qgemm's ldy; prefill without qgemm: cuBLAS's ldc). Packed is set, pk is
  // unused.
  struct Segment {
    int64_t row0 = 0;
    DeviceMatrix pk;
  };
  std::vector<Segment> segments;
  std::string path;  // for describe()
  // Bytes of these weights as the model stores them (GGUF blocks, or our codes with their scales and
  // zero points; a synthetic model's as packed, a synthetic K-quant mix's at GGUF's block sizes:
  // gguf_k_bytes), against bytes() as streamed: a packed form wider than the stored one (GGUF Q6_K as
  // int8) shows as the difference.
  size_t stored = 0;
  // The packed matrix whose weights the product reads first (the L2 prefetch's target).
  const DeviceMatrix& first_packed() const { return segments.empty() ? pk : segments[0].pk; }
  size_t bytes() const {
    size_t seg = 0;
    for (const auto& sg : segments) seg += sg.pk.bytes();
    return packed ? (segments.empty() ? pk.bytes() : seg) : w8a8 ? w8q.bytes + w8s.bytes : dense.data.bytes;
  }
};

struct CudaBackend::Impl {
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
  DenseType dense = DenseType::Bits16;
  std::string device_name;

  struct Layer {
    DevBuf attn_norm, ffn_norm, post_attn_norm, post_ffn_norm, q_norm, k_norm, bias_qkv;
    Mat wqkv, wo, wgu, wdown;
  };
  std::vector<Layer> layers;
  DevBuf output_norm;
  Mat output;
  bool use_packed = true, overlap_launch = false;
  // A stack whose parts are packed in different formats runs as one product per format (Mat::segments);
  // QB_CUDA_SPLIT_STACKS=0: dense f16 as a whole, as before session 23 (A/B runs).
  bool split_stacks = true;
  // QB_CUDA_PACK_Q6K=0: GGUF Q6_K matrices dense f16, and so every stack with one, as before session 23
  // (A/B runs; synthetic q4_k_m: its w8g16 matrices and stacks dense bf16).
  bool pack_q6k = true;
  bool norm_loop = false;  // QB_CUDA_NORM_LOOP=1: add_rmsnorm's loop kernel (A/B runs)
  int launch_rule = 9;     // QB_CUDA_LAUNCH_RULE=4..8: earlier qgemv launch rules (A/B runs); 9 the default
  // QB_CUDA_TIMING_SKIP=norm,attn,act,prod (timing experiments only: the outputs are wrong): decode
  // steps leave out those kernel classes, so a bench run measures what each class costs in the graph,
  // launch overlap included, which the profiled mode (events between kernels) cannot.
  enum : unsigned { kSkipNorm = 1, kSkipAttn = 2, kSkipAct = 4, kSkipProd = 8 };
  unsigned timing_skip = 0;
  bool skips(unsigned what, int T) const { return (timing_skip & what) && T <= 16; }
  int attn_blocks_per_sm = 8;  // QB_CUDA_ATTN_BLOCKS_PER_SM: the split-attention grid's target (A/B runs)
  // QB_CUDA_ATTN_ONE_SPLIT: attention_splits' one-split threshold (0: off, A/B runs; -1: one split at every
  // decode step, which the backend check uses to reach the one-split kernels on its small models).
  int attn_one_split = 2;
  // AttentionArgs::half_warp_keys (head dims 128): on an H200, the 16-stream step -5%, one stream
  // unchanged (docs/perf.md, session 19). QB_CUDA_ATTN_HW=0: the warp-per-key kernel (A/B runs).
  bool attn_half_warp = true;
  // With the early launch on, these small kernels are launched early too (forward_kernels.h,
  // add_rmsnorm's `early`) in steps of at most early_small_max_t tokens: 1 the norms, 2 attention, 4
  // the gated activation. Measured on H100s (docs/perf.md, sessions 9 and 10): at one stream all three
  // gain 4-5% with the loads before the wait (prewait below), norms and activation alone 2% without
  // them; at 16 streams no early set beat none, with or without.
  // QB_CUDA_PDL_SMALL=mask and QB_CUDA_PDL_SMALL_T=n override both (A/B runs).
  enum SmallKernel { kEarlyNorm = 1, kEarlyAttn = 2, kEarlyAct = 4 };
  int early_small = kEarlyNorm | kEarlyAttn | kEarlyAct, early_small_max_t = 1;
  bool small_early(int T, SmallKernel k) const { return (early_small & k) && overlap_launch && T <= early_small_max_t; }
  // The attention after a qgemv q|k|v product is launched early at every decode step size (with the
  // half-warp kernel on an H200: w4g128 at 16 streams -1.5%; after a cuBLAS product, bf16 at 16, +0.5%;
  // docs/perf.md, session 19). QB_CUDA_ATTN_EARLY16=0: only at early_small_max_t (A/B runs). Where the
  // attention is not launched early even at one token (the switches above), it is not here either.
  bool attn_early_after_qgemv = true;
  bool attn_early(int T, const Mat& qkv) const {
    return small_early(T, kEarlyAttn) ||
           (attn_early_after_qgemv && small_early(1, kEarlyAttn) && T <= 16 && qkv.packed && !qkv.w8a8);
  }
  // For the Manifest: " (also the norms and ..., at ...)", and whether those load before their wait.
  std::string early_small_note(bool overlap) const {
    if (!overlap || !early_small || early_small_max_t < 1) return "";
    std::vector<std::string> k;
    if (early_small & kEarlyNorm) k.push_back("the norms");
    if (early_small & kEarlyAttn) k.push_back("attention");
    if (early_small & kEarlyAct) k.push_back("the gated activation");
    std::string list = k[0];
    for (size_t i = 1; i < k.size(); ++i) list += (i + 1 == k.size() ? " and " : ", ") + k[i];
    return fmt::format(" (also {}, at steps of {}{}){}", list,
                       early_small_max_t == 1 ? std::string("one token") : fmt::format("up to {} tokens", early_small_max_t),
                       attn_early_after_qgemv && (early_small & kEarlyAttn) && early_small_max_t < 16
                           ? "; attention after a qgemv q|k|v product at steps up to 16 tokens"
                           : "",
                       prewait ? "; those load what the kernel before them did not write (x, norm weights, earlier "
                                 "cache rows) before waiting for it"
                               : "");
  }
  bool flash_attention = true;  // QB_CUDA_FLASH_ATTN=0: prefill attention as two GEMMs + softmax (A/B runs)
  // Where launched early, the layer norms and the fused-rope attention load the inputs that the kernel
  // just before them did not write (x's row and the norm weights; earlier cache rows) before their wait
  // (add_rmsnorm's `prewait`, AttentionArgs::prewait_loads). Only there: in a plain launch the loads
  // gain nothing to overlap, and at 16 streams they cost 1% (docs/perf.md, session 10).
  // QB_CUDA_PREWAIT=0: after the wait always (A/B runs).
  bool prewait = true;
  bool qgemm_on = true;  // CudaBackendOptions::fused_prefill (QB_CUDA_QGEMM=0: off)
  // Prefill (T > 16) of this packed matrix runs qgemm, not dequantize + cuBLAS (and needs no scratch).
  bool qgemm_takes(const DeviceMatrix& pk) const { return qgemm_on && qgemm_supports(pk.shape); }
  int sm_count = 0;
  DevBuf embd;  // synthetic models: bf16 [n_vocab][n_embd] on the device
  // xfrag: the decode products' input fragments; xfrag2: the down product's where the gate|up product
  // writes them (QgemvGatedOut) while its own blocks still read xfrag.
  DevBuf xfrag, xfrag2, wscratch;
  size_t wscratch_bytes = 0;
  // W8A8: quantized activations of a decode batch (fixed at load, so captured graphs stay valid) and
  // of a prefill chunk (grown on use), with their scales and (prefill) the int32 GEMM result.
  bool any_w8a8 = false;
  // Prefill attention on the tensor cores with Q and P as f16 pairs (CudaBackendOptions::split16_attention)
  int split16_option = -1;
  bool split16_attention() const { return split16_option < 0 ? any_w8a8 : split16_option == 1; }
  int64_t w8_in = 0, w8_out = 0;  // widest input / output of a W8A8 product
  DevBuf w8_dec, w8_pre;
  // INT8 W8A8 products of 2-16 tokens run on the int8 tensor-core decode kernel (w8a8_int8_mma) where it
  // takes the shape; otherwise those of at least w8a8_gemm_min tokens run as a cuBLAS int8 GEMM, fewer on
  // the dp4a decode kernel (exact integer sums everywhere: the same bits). One token stays on dp4a: its
  // one-stream steps ran 4% faster than with the tensor-core kernel, which is 13-42% faster at 8-16
  // tokens than cuBLAS (docs/perf.md, session 29). QB_CUDA_W8A8_GEMM_MIN=n overrides the threshold,
  // QB_CUDA_INT8_MMA=0 turns the tensor-core decode kernel off (A/B runs).
  int w8a8_gemm_min = 2;
  bool int8_mma = true;
  // FP8 W8A8 (CudaBackendOptions::fp8_exact, fp8_tensor_cores): the exact kernels; or the decode kernels
  // (the f16 tensor-core one, else the f32 CUDA-core one) up to 16 tokens and the f16 tensor-core prefill
  // kernel (w8a8_fp8_prefill) from 17; with fp8_tensor_cores, the FP8 tensor cores (cuBLASLt) from
  // fp8_tc_min tokens (QB_CUDA_FP8_TC_MIN=n overrides). 9: at 2-8 tokens the decode kernel made steps 9-12%
  // faster than cuBLASLt on an H200 (docs/perf.md, session 29); at 16 cuBLASLt was faster (session 28).
  bool fp8_exact = false, fp8_tensor_cores = false;
  int fp8_tc_min = 9;
  bool fp8_outer_scales = true;  // QB_CUDA_FP8_OUTER_SCALES=0: the scaling kernel after cuBLASLt (A/B runs)
  bool fp8_mma = true;  // QB_CUDA_FP8_MMA=0: decode on the f32 CUDA-core kernel, session 27's (A/B runs)
  bool w8a8_norm_codes = true;  // QB_CUDA_W8A8_NORM_CODES=0: a quantizer before every W8A8 product (norm_codes)
  bool w8a8_act_codes = true;  // QB_CUDA_W8A8_ACT_CODES=0: a quantizer before the down product (act_codes)
  std::unique_ptr<Fp8TensorCoreGemm> fp8_tc;
  // Products the tensor-core path refused at run time (no cuBLASLt algorithm, misaligned operands):
  // they ran on the CUDA cores instead (f32 sums up to 16 tokens, exact above), and describe() says so.
  std::set<std::string> fp8_tc_refused;
  std::string fp8_path(const Mat& m) const {
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
  static size_t al256(size_t n) { return (n + 255) / 256 * 256; }
  // Whether an FP8 W8A8 product of this shape runs on the FP8 tensor cores from fp8_tc_min tokens (Mat::fp8_tc)
  bool fp8_tc_takes(int64_t n_out, int64_t n_in) const {
    return fp8_tensor_cores && !fp8_exact && Fp8TensorCoreGemm::supports(n_out, n_in);
  }
  // Whether FP8 W8A8's fast form runs this product's prefill (17 tokens or more, below the FP8 tensor
  // cores' threshold where they run) on the f16 tensor-core kernel; else on the exact kernels.
  bool prefill_wgmma(const Mat& m) const { return !fp8_exact && w8a8_fp8_prefill_fits(int(m.n_in), m.w8q.p); }
  // Whether a W8A8 product's decode steps take the tensor-core decode kernel (FP8's fast form at 1-16
  // tokens, below fp8_tc_min where the FP8 tensor cores run; INT8 at 2-16): its switch, and w8a8_mma_fits on the weights and the decode codes the
  // kernel would be given. The manifest and gemm_ready both ask this.
  bool mma_decodes(const Mat& m) const {
    return (m.w8a8_fp8 ? fp8_mma : int8_mma) && w8a8_mma_fits(int(m.n_in), m.w8q.p, w8_codes(1));
  }
  // The W8A8 tensor-core decode kernel's loop (w8a8_mma_pipe_min_tokens), which changes the order of FP8's f32 sums.
  static std::string mma_loop_note() {
    const int from = w8a8_mma_pipe_min_tokens();
    return from > 16 ? std::string("its plain loop at every token count")
                     : "its loop a ping-pong from " + std::to_string(from) + (from == 1 ? " token" : " tokens");
  }
  std::string int8_path(const Mat& m) const {
    const std::string how =
        mma_decodes(m) ? fmt::format("{} at one token, int8 tensor cores (mma.sync; {}) at 2-16, cuBLAS int8 GEMM "
                                     "from 17",
                                     w8a8_gemm_min > 1 ? "dp4a kernel" : "cuBLAS int8 GEMM", mma_loop_note())
                         : fmt::format("dp4a kernel below {} tokens, cuBLAS int8 GEMM from {}", w8a8_gemm_min,
                                       w8a8_gemm_min);
    return fmt::format("w8a8 int8 (per-token int8 activations, int32 sums: {}; the CPU's arithmetic exactly)", how);
  }
  // Where a W8A8 product's activation codes and per-token scales live: the decode scratch (T <= 16,
  // sized at load) or the prefill one (gemm_ready sizes it); a norm writing codes writes the decode ones.
  uint8_t* w8_codes(int T) const { return (T <= 16 ? w8_dec : w8_pre).as<uint8_t>(); }
  float* w8_scales(int T) const {
    return reinterpret_cast<float*>(w8_codes(T) + al256(size_t(T <= 16 ? 16 : T) * size_t(w8_in)));
  }

  // Decode (T <= 16): CudaBackendOptions::l2_prefetch_mb, in bytes; the prefetch kernels run on
  // pf_stream, forked after the product before and joined at the end of the step.
  size_t l2_pf_bytes = 0, l2_pf_wide_bytes = 0;  // CudaBackendOptions::l2_prefetch_mb, l2_prefetch_wide_mb
  int l2_pf_max_tokens = 1;                        // CudaBackendOptions::l2_prefetch_max_tokens (at most 16)
  cudaStream_t pf_stream = nullptr;
  cudaEvent_t pf_fork = nullptr, pf_join = nullptr;
  bool pf_pending = false;
  void l2_prefetch(const Mat& next, int T) {
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
  void l2_join() {  // the side stream rejoins the main one (a captured graph must end on one stream)
    if (!pf_pending) return;
    cuda_ok(cudaEventRecord(pf_join, pf_stream), "l2 prefetch join");
    cuda_ok(cudaStreamWaitEvent(stream, pf_join, 0), "l2 prefetch join");
    pf_pending = false;
  }

  // Rope angles by position, per variant (0: global, 1: sliding-window layers): cos then sin, n_rot / 2
  // floats each, exactly as cpu::rope_angles gives them (double arithmetic: the CPU backend's floats).
  // Kept once computed, for positions below kRopeCacheMax: the trigonometry of a 512-token prefill
  // took about 1.7 ms on the host, with the GPU idle, before its first launch (docs/perf.md session 8).
  static constexpr int64_t kRopeCacheMax = int64_t(1) << 16;
  std::vector<float> rope_cache[2];  // positions 0, 1, ... in order, 2 * (n_rot / 2) floats each
  void rope_row(int variant, const cpu::RopeParams& rp, int64_t pos, float* cos_out, float* sin_out) {
    const int64_t half = rp.n_rot / 2;
    if (half == 0) return;  // no rotated dimensions: nothing to write
    if (pos < 0 || pos >= kRopeCacheMax) {
      cpu::rope_angles(rp, pos, cos_out, sin_out);
      return;
    }
    std::vector<float>& c = rope_cache[variant];
    const int64_t have = int64_t(c.size()) / (2 * half);
    if (pos >= have) {  // the rows up to pos, each computed once
      c.resize(size_t((pos + 1) * 2 * half));
      for (int64_t p = have; p <= pos; ++p) cpu::rope_angles(rp, p, c.data() + p * 2 * half, c.data() + p * 2 * half + half);
    }
    std::memcpy(cos_out, c.data() + pos * 2 * half, size_t(half) * 4);
    std::memcpy(sin_out, c.data() + pos * 2 * half + half, size_t(half) * 4);
  }

  // A sequence's KV cache is one allocation: per layer, K [capacity] rows then V [capacity] rows, a
  // row being one position (f16: kv_dim values; quantized: codes then scales, kv_quant.h). Allocated at create_sequence when its max_len is given and modest (no
  // cudaMalloc inside a forward), else grown by doubling; freed caches are kept in a small pool for
  // the next sequence of the same size (cudaMalloc/cudaFree synchronize the device).
  struct Sequence {
    int64_t max_len = 0, length = 0, capacity = 0;
    DevBuf kv;
  };
  std::map<SeqId, Sequence> seqs;
  SeqId next_id = 0;
  int64_t kvk = 0, kvv = 0, n_layer = 0;
  KvRowLayout klay, vlay;  // bytes of one cached position of K / V
  bool kv_quant = false;
  DevBuf kv16;             // quantized caches, prefill runs: the run's keys and values as f16 (kv_codes_prefill)
  // int8 / fp8 caches of models whose prefill attention runs with f16 pairs (split16_attention: W8A8), where
  // the fused kernel takes the head dims: the keys and values as their codes' f16 values with the scales
  // apart (kv_codes_f16, GemmAttentionArgs::k_scale), so no cached value is rounded either. Elsewhere
  // dequantized to f16: with Q and P rounded to f16 once, the values' rounding did not show (rand-llama's
  // weight-only formats read the same KL against the CPU), and the scales cost 1-3% of a prefill
  // (docs/perf.md, session 33). QB_CUDA_KV_PREFILL_CODES=0: dequantized (A/B runs).
  bool kv_codes_on = true;
  bool kv_codes_prefill(const model::ModelSpec& sp) const {
    return kv_quant && kv_codes_on && split16_attention() && (klay.code == kKvInt8 || klay.code == kKvFp8) &&
           attention_flash_fits(flash_attention, int(sp.n_head), int(sp.n_head_kv), int(sp.head_dim_k),
                                int(sp.head_dim_v));
  }
  // kv16's layout for a run over n positions: the f16 keys, the f16 values, then (kv_codes_prefill) the key
  // and value scale rows from a 256-byte boundary.
  size_t kv16_scales_offset(int64_t n) const { return (size_t(n) * size_t(kvk + kvv) * 2 + 255) / 256 * 256; }
  size_t kv16_bytes(int64_t n, const model::ModelSpec& sp) const {
    return kv16_scales_offset(n) +
           (kv_codes_prefill(sp) ? size_t(2) * size_t(sp.n_head_kv) * size_t(kv_scale_stride(n)) * 4 : 0);
  }
  std::vector<DevBuf> kv_pool;
  size_t kv_bytes(int64_t cap) const { return size_t(n_layer * cap * (klay.row_bytes + vlay.row_bytes)); }
  uint16_t* k_ptr(const Sequence& s, int64_t il) const {
    return reinterpret_cast<uint16_t*>(s.kv.as<uint8_t>() + size_t(il * s.capacity * (klay.row_bytes + vlay.row_bytes)));
  }
  uint16_t* v_ptr(const Sequence& s, int64_t il) const {
    return reinterpret_cast<uint16_t*>(reinterpret_cast<uint8_t*>(k_ptr(s, il)) + size_t(s.capacity * klay.row_bytes));
  }
  DevBuf take_kv(int64_t cap) {
    const size_t b = kv_bytes(cap);
    for (size_t i = 0; i < kv_pool.size(); ++i)
      if (kv_pool[i].bytes == b) {
        DevBuf r = std::move(kv_pool[i]);
        kv_pool.erase(kv_pool.begin() + std::ptrdiff_t(i));
        return r;
      }
    try {
      return DevBuf(b);
    } catch (const Error&) {  // out of memory: the pooled caches go back first
      (void)cudaGetLastError();  // clear the failed allocation's error (launch checks read it)
      kv_pool.clear();
      return DevBuf(b);
    }
  }
  // The pool holds at most 16 caches and 4 GiB (oldest dropped first).
  void give_kv(DevBuf&& b) {
    if (!b.p) return;
    kv_pool.push_back(std::move(b));
    size_t total = 0;
    for (const auto& k : kv_pool) total += k.bytes;
    while (!kv_pool.empty() && (kv_pool.size() > 16 || total > (size_t(4) << 30))) {
      total -= kv_pool.front().bytes;
      kv_pool.erase(kv_pool.begin());
    }
  }

  // Pinned host staging (tables up, logits / ids down): asynchronous copies without a pageable bounce.
  // Mapped too: a graphed decode step's first kernel reads its table from here, and its argmax writes the
  // ids here (`dev`: the device's address of the buffer), so the step needs no copy-engine transfers.
  struct Pinned {
    void* p = nullptr;
    void* dev = nullptr;
    size_t bytes = 0;
    ~Pinned() { if (p) cudaFreeHost(p); }
    void ensure(size_t n) {
      if (bytes >= n) return;
      if (p) cudaFreeHost(p);
      p = dev = nullptr;
      bytes = 0;
      cuda_ok(cudaHostAlloc(&p, std::max(n, size_t(4096)), cudaHostAllocMapped), "cudaHostAlloc");
      cuda_ok(cudaHostGetDevicePointer(&dev, p, 0), "cudaHostGetDevicePointer");
      bytes = std::max(n, size_t(4096));
    }
  };
  Pinned tab_host, out_host;
  // W8A8: the activation quantizers set this mapped word when a product's input row is not finite (which
  // the CPU's quantizer refuses); run_chunk reads it after each step's sync and refuses the step too.
  Pinned nonfinite_host;
  unsigned* nonfinite_flag() const { return static_cast<unsigned*>(nonfinite_host.dev); }
  void refuse_nonfinite_activations() {
    if (!nonfinite_host.p) return;
    auto* word = static_cast<volatile unsigned*>(nonfinite_host.p);
    if (*word == 0u) return;
    *word = 0u;
    fail("w8a8: an input row of a W8A8 product is not finite (NaN or infinity): the CPU backend refuses it too "
         "(its quantizer), so this step's logits are not returned");
  }

  // Profiling mode (CudaBackendOptions::profile).
  enum Cls {
    kEmbed, kNorm, kPack, kQgemv, kCublas, kDequant, kCast, kRope, kAttn, kAct, kOther, kArgmax, kQgemm, kNumCls
  };
  static constexpr const char* kClsName[kNumCls] = {"embed",   "add+norm",  "pack", "qgemv", "cublas", "dequant",
                                                    "cast",    "rope+kv",   "attention", "act", "other", "argmax",
                                                    "qgemm"};
  bool profile = false;
  std::vector<cudaEvent_t> evs;
  std::vector<int> seg;  // seg[i]: class of the span from evs[i] to evs[i + 1]
  struct ProfTotals {
    int64_t forwards = 0;
    double ms[kNumCls] = {};
    int64_t launches[kNumCls] = {};
    double total_ms = 0;
  };
  std::map<int, ProfTotals> prof;
  void mark(int cls) {
    if (!profile) return;
    if (seg.size() == evs.size()) {
      cudaEvent_t e = nullptr;
      cuda_ok(cudaEventCreate(&e), "cudaEventCreate");
      evs.push_back(e);
    }
    cuda_ok(cudaEventRecord(evs[seg.size()], stream), "cudaEventRecord");
    seg.push_back(cls);
  }
  void prof_begin() {
    if (!profile) return;
    seg.clear();
    gpu_spin(50'000'000, stream);  // 50 ms: the host queues the whole forward before the GPU starts it
  }
  void prof_end(int T) {
    if (!profile) return;
    mark(-1);
    cuda_ok(cudaStreamSynchronize(stream), "profile sync");
    ProfTotals& p = prof[T];
    ++p.forwards;
    for (size_t i = 0; i + 1 < seg.size(); ++i) {
      float ms = 0;
      cuda_ok(cudaEventElapsedTime(&ms, evs[i], evs[i + 1]), "cudaEventElapsedTime");
      p.ms[seg[i]] += ms;
      p.launches[seg[i]] += 1;
      p.total_ms += ms;
    }
    seg.clear();
  }

  // Captured forward passes for small batches, keyed by (tokens, 2 * logits rows + fused rope); valid while the
  // buffers they were captured with stay where they are.
  struct Graph {
    cudaGraphExec_t exec = nullptr;
    std::vector<const void*> addr;
    size_t table_bytes = 0;  // what its first kernel copies from tab_host
  };
  std::map<std::pair<int, int>, Graph> graphs;

  // Scratch, grown to the largest batch seen.
  DevBuf x, h, qkv, att, o, gu, g, xb, logits, tabs, blas_ws, part, ids, counters, attn_scratch;

  std::vector<const Mat*> mats() const {
    std::vector<const Mat*> v{&output};
    for (const auto& L : layers)
      for (const Mat* m : {&L.wqkv, &L.wo, &L.wgu, &L.wdown}) v.push_back(m);
    return v;
  }

  // QB_CUDA_STEP_SPAN=1 (diagnostic): device time of each greedy step from before its first submission (the
  // table upload, or the graph that pulls it) to after its last (the ids download, or that graph), per
  // step size, printed at exit: set against the wall-clock step, the rest is host time between steps.
  // QB_CUDA_STEP_SPAN=2 (timing experiment, each graphed step runs twice): its graph is launched a second
  // time right after the first, already queued when the first ends, and that run's time is printed too.
  // The step's writes are the same both times (its cache rows, its ids), so the outputs are unchanged;
  // the span minus the queued run is what a step spends waiting on the host's submission.
  int step_span = 0;
  cudaEvent_t span_ev[3] = {};  // before the step's first submission, after its last, between the two runs
  struct Span { double ms = 0, queued_ms = 0; int n = 0, queued_n = 0; };
  std::map<int, Span> spans;

  ~Impl() {
    for (const auto& [t, v] : spans) {
      std::fprintf(stderr, "step span T=%d: %.2f us mean over %d steps (device events before the step's first submission "
                   "and after its last)\n", t, 1e3 * v.ms / v.n, v.n);
      if (v.queued_n)
        std::fprintf(stderr, "step span T=%d queued: %.2f us mean over %d graph runs launched while the one before ran\n",
                     t, 1e3 * v.queued_ms / v.queued_n, v.queued_n);
    }
    for (cudaEvent_t e : span_ev)
      if (e) cudaEventDestroy(e);
    for (auto& [k, g] : graphs)
      if (g.exec) cudaGraphExecDestroy(g.exec);
    seqs.clear();
    for (cudaEvent_t e : evs) cudaEventDestroy(e);
    for (cudaEvent_t e : {pf_fork, pf_join})
      if (e) cudaEventDestroy(e);
    if (pf_stream) {
      cudaStreamSynchronize(pf_stream);
      cudaStreamDestroy(pf_stream);
    }
    if (blas) cublasDestroy(blas);
    if (stream) cudaStreamDestroy(stream);
  }

  size_t elem() const { return dense == DenseType::Bits16 ? 2 : 4; }

  // One stack's dense host rows in 16 bits: f16 unless a part is bf16 (kept exact) or a value is out
  // of f16's finite range, then bf16. Returns whether f16 was used.
  bool dense16_rows(std::initializer_list<const model::WeightMatrix*> parts, const std::vector<PartPlan>& plans,
                    int64_t n_in, std::vector<uint16_t>& out) {
    bool f16 = true;
    for (const auto& pl : plans) f16 = f16 && !pl.path.starts_with("bf16 ");
    size_t total = 0;
    for (const auto* w : parts) total += size_t(w->n_out) * size_t(n_in);
    for (int pass = 0; pass < 2; ++pass) {
      out.clear();
      out.reserve(total);
      std::vector<float> row(static_cast<size_t>(n_in));
      bool fits = true;
      for (const auto* w : parts)
        for (int64_t r = 0; r < w->n_out && fits; ++r) {
          dequantize_any_row(*w, r, row.data());
          for (float v : row) {
            if (f16 && !(std::fabs(v) <= 65504.0f)) {
              fits = false;
              break;
            }
            out.push_back(f16 ? ::qb::f32_to_f16(v) : ::qb::f32_to_bf16(v));
          }
        }
      if (fits || !f16) return f16;
      f16 = false;  // a value f16 cannot hold (or NaN): redo in bf16
    }
    return f16;
  }

  // Uploads matrices stacked along n_out (q|k|v, gate|up) as one: packed when every part has the same
  // packed spec (and packing is on), else dense in the backend's DenseType (dequantized on the host).
  // W8A8 (per-token int8 or fp8 activations, CPU: runtime/cpu/matmul_w8a8.h): int8 codes (stored
  // q + 128) as signed int8, e4m3 codes as they are, scales as f32, exactly. Every part of a stack must
  // have the same activation type.
  Mat upload_w8a8(std::initializer_list<const model::WeightMatrix*> parts, const std::string& what) {
    Mat m;
    m.n_in = (*parts.begin())->n_in;
    const runtime::cpu::ActQuant act = (*parts.begin())->act;
    std::string layout;
    for (const auto* w : parts) {
      QB_CHECK(w->act == act, "cuda backend: {}: W8A8 and other matrices in one fused product have no GPU path",
               what);
      QB_CHECK(w->n_in == m.n_in, "cuda upload {}: inner dimensions differ", what);
      runtime::cpu::check_w8a8(*w);
      layout = quant::layout_name(w->quantized->layout);
      m.n_out += w->n_out;
    }
    const bool fp8 = act == runtime::cpu::ActQuant::Fp8PerToken;
    std::vector<uint8_t> codes(size_t(m.n_out * m.n_in));
    std::vector<float> sc(size_t(m.n_out));
    int64_t r0 = 0;
    for (const auto* w : parts) {
      const quant::QuantizedTensor& q = *w->quantized;
      for (int64_t r = 0; r < w->n_out; ++r) {
        const uint8_t* c = q.codes.data() + size_t(r) * q.row_bytes();
        uint8_t* d = codes.data() + size_t((r0 + r) * m.n_in);
        for (int64_t i = 0; i < m.n_in; ++i) d[i] = fp8 ? c[i] : uint8_t(int8_t(int(c[i]) - 128));
        sc[size_t(r0 + r)] = q.params(r, 0).scale;
      }
      r0 += w->n_out;
    }
    m.w8a8 = true;
    m.w8a8_fp8 = fp8;
    m.w8q = DevBuf(codes.size());
    m.w8s = DevBuf(sc.size() * 4);
    cuda_ok(cudaMemcpy(m.w8q.p, codes.data(), codes.size(), cudaMemcpyHostToDevice), "weight upload");
    cuda_ok(cudaMemcpy(m.w8s.p, sc.data(), sc.size() * 4, cudaMemcpyHostToDevice), "weight upload");
    m.fp8_tc = fp8 && fp8_tc_takes(m.n_out, m.n_in);
    m.path = layout + " a8 -> " + (fp8 ? fp8_path(m) : int8_path(m));
    note_w8a8(m);
    return m;
  }
  void note_w8a8(const Mat& m) {
    any_w8a8 = true;
    if (m.w8a8_fp8 && fp8_tensor_cores && !fp8_exact && !fp8_tc) {
      fp8_tc = std::make_unique<Fp8TensorCoreGemm>();
      if (!fp8_outer_scales) fp8_tc->outer_scales_from(std::numeric_limits<int>::max());
    }
    w8_in = std::max(w8_in, m.n_in);
    w8_out = std::max(w8_out, m.n_out);
  }
  // Synthetic W8A8: random codes (fp8: exponent bit 0 cleared, so no NaN code) and scales.
  Mat synthetic_w8a8(int64_t n_out, int64_t n_in, uint64_t seed, bool fp8) {
    Mat m;
    m.n_out = n_out;
    m.n_in = n_in;
    m.w8a8 = true;
    m.w8a8_fp8 = fp8;
    m.w8q = DevBuf(size_t(n_out * n_in));
    fill_bytes(m.w8q.p, m.w8q.bytes, seed, fp8 ? 0xf7 : 0xff, stream);
    std::vector<float> sc(static_cast<size_t>(n_out));
    std::mt19937_64 rng(seed ^ 0x5ca1e);
    std::uniform_real_distribution<float> ud(0.8f, 1.2f);
    for (float& v : sc) v = ud(rng) * float(1.0 / std::sqrt(double(n_in))) / (fp8 ? 100.0f : 74.0f);
    m.w8s = DevBuf(sc.size() * 4);
    cuda_ok(cudaMemcpy(m.w8s.p, sc.data(), sc.size() * 4, cudaMemcpyHostToDevice), "weight upload");
    m.fp8_tc = fp8 && fp8_tc_takes(m.n_out, m.n_in);
    m.path = "synthetic " + (fp8 ? fp8_path(m) : int8_path(m));
    note_w8a8(m);
    m.stored = m.bytes();
    return m;
  }

  bool w8a8_enabled = true;  // CudaBackendOptions::w8a8 (QB_CUDA_W8A8=0 turns it off)
  bool fuse_gated_act = true;  // CudaBackendOptions::fuse_gated_act
  int fuse_act_min_t = 1;       // QB_CUDA_FUSE_ACT_MIN_T: the fewest tokens a fused step takes (A/B runs)
  // gate|up in interleaved row blocks of 16 where that is possible: packed, and n_ff a multiple of 16.
  bool interleave_gate_up(int64_t n_ff) const { return fuse_gated_act && n_ff % 16 == 0; }
  // `gate_up`: parts are (gate, up); packed, their rows are interleaved in blocks of 16 where
  // interleave_gate_up allows (Mat::gate_up16).
  Mat upload_stacked(std::initializer_list<const model::WeightMatrix*> parts, const std::string& what,
                     bool gate_up = false) {
    Mat m = upload_parts(parts, what, gate_up);
    for (const auto* w : parts) m.stored += w->quantized ? w->quantized->storage_bytes() : w->row_bytes * size_t(w->n_out);
    return m;
  }
  Mat upload_parts(std::initializer_list<const model::WeightMatrix*> parts, const std::string& what, bool gate_up) {
    for (const auto* w : parts)
      if (w->act != runtime::cpu::ActQuant::None) {
        QB_CHECK(w8a8_enabled,
                 "cuda backend: weight {} runs W8A8 ({} activations) and the GPU's W8A8 path is off (QB_CUDA_W8A8=0; "
                 "unset it to run W8A8)",
                 what, runtime::cpu::act_quant_name(w->act));
        return upload_w8a8(parts, what);
      }
    Mat m;
    m.n_in = (*parts.begin())->n_in;
    std::vector<PartPlan> plans;
    for (const auto* w : parts) {
      QB_CHECK(w->n_in == m.n_in, "cuda upload {}: inner dimensions differ", what);
      plans.push_back(plan_for(*w, what));
      if (!pack_q6k && w->type == formats::GgmlType::Q6_K && !w->quantized) plans.back() = {false, {}, "q6_K -> dense"};
      m.n_out += w->n_out;
    }
    bool all_packed = use_packed && dense == DenseType::Bits16, one_spec = true;
    for (const auto& pl : plans) {
      all_packed = all_packed && pl.packed && pl.spec.format != WeightFormat::BF16;  // (f16 fragments for all)
      one_spec = one_spec && same_spec(pl.spec, plans[0].spec);
    }
    const bool packed = all_packed && one_spec;
    std::string path;
    for (const auto& pl : plans)
      if (path.find(pl.path) == std::string::npos) path += (path.empty() ? "" : ", ") + pl.path;
    if (all_packed && !one_spec && split_stacks) {
      // One product per run of parts with one spec, all reading the same f16 activation fragments.
      m.packed = true;
      size_t i = 0;
      int64_t row0 = 0;
      auto part = parts.begin();
      while (i < plans.size()) {
        HostMatrix hm;
        hm.spec = plans[i].spec;
        hm.n_in = m.n_in;
        Mat::Segment sg;
        sg.row0 = row0;
        for (; i < plans.size() && same_spec(plans[i].spec, hm.spec); ++i, ++part) append_packed_rows(**part, hm);
        row0 += hm.n_out;
        sg.pk = upload(pack(hm));
        if (!qgemm_takes(sg.pk))
          wscratch_bytes = std::max(wscratch_bytes, size_t(hm.n_out * hm.n_in) * 2);
        m.segments.push_back(std::move(sg));
      }
      m.path = path + " (one product per format, " + std::to_string(m.segments.size()) + " for this stack)";
      return m;
    }
    if (packed) {
      HostMatrix hm;
      hm.spec = plans[0].spec;
      hm.n_in = m.n_in;
      for (const auto* w : parts) append_packed_rows(*w, hm);
      if (gate_up && interleave_gate_up(m.n_out / 2)) {
        hm = interleave_row_blocks16(hm);
        m.gate_up16 = true;
      }
      m.packed = true;
      m.pk = upload(pack(hm));
      m.path = path;
      if (!qgemm_takes(m.pk)) wscratch_bytes = std::max(wscratch_bytes, size_t(m.n_out * m.n_in) * 2);
      return m;
    }
    std::string types;
    for (const auto& pl : plans) {
      const std::string t = pl.path.substr(0, pl.path.find(" -> "));
      if (types.find(t) == std::string::npos) types += (types.empty() ? "" : "+") + t;
    }
    DenseMatrix& dm = m.dense;
    dm.n_in = m.n_in;
    dm.n_out = m.n_out;
    dm.data = DevBuf(size_t(m.n_out * m.n_in) * elem());
    if (dense == DenseType::Bits16) {
      std::vector<uint16_t> host16;
      dm.f16 = dense16_rows(parts, plans, m.n_in, host16);
      m.path = types + " -> dense " + (dm.f16 ? "f16" : "bf16") + " (cuBLAS)";
      cuda_ok(cudaMemcpy(dm.data.p, host16.data(), host16.size() * 2, cudaMemcpyHostToDevice), "weight upload");
      return m;
    }
    m.path = types + " -> dense f32 (cuBLAS)";
    std::vector<float> row(size_t(m.n_in));
    std::vector<uint8_t> host(size_t(m.n_in) * elem() * 256);
    int64_t out_row = 0;
    for (const auto* w : parts) {
      for (int64_t r0 = 0; r0 < w->n_out; r0 += 256) {
        const int64_t nr = std::min<int64_t>(256, w->n_out - r0);
        for (int64_t r = 0; r < nr; ++r) {
          dequantize_any_row(*w, r0 + r, row.data());
          std::copy(row.begin(), row.end(), reinterpret_cast<float*>(host.data()) + r * m.n_in);
        }
        cuda_ok(cudaMemcpy(dm.data.as<uint8_t>() + size_t((out_row + r0) * m.n_in) * elem(), host.data(),
                           size_t(nr * m.n_in) * elem(), cudaMemcpyHostToDevice),
                "weight upload");
      }
      out_row += w->n_out;
    }
    return m;
  }

  // Random weights made on the device (synthetic models): packed in `spec`, or dense bf16 for BF16.
  // Scales put the weights' spread near 1/sqrt(n_in) so activations stay in range through the layers.
  Mat synthetic(const QuantSpec& spec, int64_t n_out, int64_t n_in, uint64_t seed, const std::string& what) {
    Mat m;
    m.n_out = n_out;
    m.n_in = n_in;
    const float sd = float(1.0 / std::sqrt(double(n_in)));
    if (spec.format == WeightFormat::BF16) {
      m.dense.n_out = n_out;
      m.dense.n_in = n_in;
      m.dense.data = DevBuf(size_t(n_out * n_in) * 2);
      const float a = sd * 1.7320508f;
      fill_uniform_bf16(m.dense.data.p, size_t(n_out * n_in), seed, -a, a, stream);
      m.path = "synthetic bf16 (cuBLAS)";
      m.stored = m.bytes();
      return m;
    }
    PackedShape ps;
    try {
      ps = packed_shape(spec, n_out, n_in);
    } catch (const std::exception& e) {
      fail("synthetic {}: {}", what, e.what());
    }
    m.packed = true;
    m.pk = allocate(ps);
    fill_bytes(m.pk.weights.get(), m.pk.weight_bytes, seed, 0xff, stream);
    const float s = sd / (spec.format == WeightFormat::W8A16 ? 74.0f : 4.6f);  // std of q - z: 74 (int8), 4.6 (int4)
    // (mins near -7.5 s: q * s + m centred as the other formats' weights)
    fill_random_group_params(m.pk, seed, 0.8f * s, 1.2f * s, -8.5f * s, -6.5f * s, stream);
    m.path = "synthetic " + spec_name(spec) + " packed (qgemv)";
    if (!qgemm_takes(m.pk)) wscratch_bytes = std::max(wscratch_bytes, size_t(n_out * n_in) * 2);
    m.stored = m.bytes();
    return m;
  }
  // A synthetic stack of parts in different packed formats (Mat::segments), as upload_stacked makes
  // of a file's; dense bf16 as a whole where split stacks are off (as upload_stacked does then).
  Mat synthetic_stack(const std::vector<std::pair<QuantSpec, int64_t>>& parts, int64_t n_in,
                      const std::function<uint64_t()>& seed, const std::string& what) {
    Mat m;
    m.n_in = n_in;
    for (const auto& pr : parts) m.n_out += pr.second;
    if (!split_stacks || !pack_q6k) {
      m = synthetic({WeightFormat::BF16, 0, false}, m.n_out, n_in, seed(), what);
      m.path = "synthetic stack of several formats -> dense bf16 (cuBLAS; split stacks or q6_k packing off)";
      return m;
    }
    m.packed = true;
    for (const auto& [spec, rows] : parts) {
      const int64_t row0 = m.segments.empty() ? 0 : m.segments.back().row0 + m.segments.back().pk.shape.n_out;
      m.segments.push_back({row0, synthetic(spec, rows, n_in, seed(), what).pk});
      m.path += (m.path.empty() ? "synthetic " : "|") + spec_name(spec);
    }
    m.path += " packed (qgemv, one product per format)";
    m.stored = m.bytes();
    return m;
  }

  // The input a product with `m` over T tokens reads, i.e. where the kernel producing it writes:
  // packed, decode: the qgemv fragments (f16, or bf16 for bf16 weights); packed, prefill: f16 rows
  // (for the dequantized scratch matrix); dense 16-bit: f16 or bf16 rows, as the weights; dense f32:
  // the f32 rows themselves.
  ActOut target(const Mat& m, int T, float* f32_rows) const {
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

  // A W8A8 decode product whose input a norm produces: the norm kernel writes the codes and scales itself
  // (ActOut::codes, the bits the quantizer would write), so the product runs without a quantizer kernel
  // before it. QB_CUDA_W8A8_NORM_CODES=0: the quantizer always (A/B runs).
  bool norm_codes(const Mat& m, int T) const {
    return m.w8a8 && T <= 16 && w8a8_norm_codes && add_rmsnorm_writes_codes(int(m.n_in), norm_loop);
  }
  // The same for the down product, whose input the gated activation produces (gated_act_out).
  bool act_codes(const Mat& m, int T) const {
    return m.w8a8 && T <= 16 && w8a8_norm_codes && w8a8_act_codes && gated_act_writes_codes(int(m.n_in));
  }
  ActOut norm_target(const Mat& m, int T, float* f32_rows) const {
    if (!norm_codes(m, T)) return target(m, T, f32_rows);
    return codes_target(m, T);
  }
  ActOut act_target(const Mat& m, int T, float* f32_rows) const {
    if (!act_codes(m, T)) return target(m, T, f32_rows);
    return codes_target(m, T);
  }
  ActOut codes_target(const Mat& m, int T) const {
    ActOut a;
    a.codes = w8_codes(T);
    a.code_scale = w8_scales(T);
    a.codes_fp8 = m.w8a8_fp8;
    a.nonfinite = nonfinite_flag();
    return a;
  }

  // y[T][n_out] (f32) = x[T][n_in] W^T, the input already written to target(m, T, x) by its producer
  // (packed decode: into `frag_in` where given, else xfrag).
  // `early`: false keeps a packed decode product from launching early (programmatic dependent launch)
  // where the kernel before it is a product too (the down product after gemm_gated).
  // `codes_ready`: a W8A8 product's input was written as codes by its producer (norm_target, act_target).
  void gemm_ready(const Mat& m, const float* x, int T, float* y, const void* frag_in = nullptr, bool early = true,
                  bool codes_ready = false) {
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

  // One packed product: decode, prefill without qgemm, or a split stack's part (prefill on qgemm where
  // it takes the part); y's rows at stride ldy (the whole stack's n_out).
  void packed_product(const DeviceMatrix& pk, int T, float* y, int64_t ldy, const void* frag_in, bool early) {
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

  // The gate|up product of a decode step with the gated activation in its epilogue, writing the down
  // product's input into xfrag2 (QgemvGatedOut): where the matrix is interleaved (Mat::gate_up16), the
  // step has 1..16 tokens and the launch shape chosen for it pairs its row blocks. False: nothing ran
  // (the caller runs the product and the activation kernel).
  // On an H100 (docs/perf.md, session 15): one stream, w4g128 within noise of the activation kernel
  // once the one-token loop was rewritten (before, the fused kernel compiled 18% slower and the step
  // lost 4%); 16 streams, w4g128 equal (its fused 16-token kernel is 1.4 us slower, about what the
  // activation kernel costs) and w8 1.1-1.4% faster.
  bool gemm_gated(const Mat& m, int T, int n_ff, int act, const ActOut& to_down) {
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

  // f32 rows already in x -> the product's input, then the product (for producers that cannot write
  // the target themselves).
  void gemm_f32(const Mat& m, float* x, int T, float* y) {
    const ActOut a = target(m, T, x);
    if (!a.f32) {
      mark(kCast);
      store_rows(x, int(m.n_in), T, a, stream);
    }
    gemm_ready(m, x, T, y);
  }
};

bool cuda_device_available() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

void CudaBackend::init_device() {
  const ModelSpec& sp = spec_;
  QB_CHECK(cuda_device_available(), "cuda backend: no CUDA device is available");
  QB_CHECK(sp.head_dim_k <= kMaxHeadDim && sp.head_dim_v <= kMaxHeadDim,
           "cuda backend: head dimension {} / {} exceeds the attention kernel's {}", sp.head_dim_k, sp.head_dim_v,
           kMaxHeadDim);
  QB_CHECK(sp.n_head_kv > 0 && sp.n_head % sp.n_head_kv == 0, "cuda backend: n_head {} is not a multiple of n_head_kv {}",
           sp.n_head, sp.n_head_kv);
  Impl& I = *impl_;
  I.dense = options_.dense;
  I.use_packed = options_.packed;
  if (const char* e = std::getenv("QB_CUDA_PROFILE"); e && std::string(e) == "1") options_.profile = true;
  I.profile = options_.profile;
  if (const char* e = std::getenv("QB_CUDA_PDL"); e) options_.overlap_launch = std::string(e) != "0";
  I.overlap_launch = options_.overlap_launch;
  if (const char* e = std::getenv("QB_CUDA_NORM_LOOP"); e && std::string(e) == "1") I.norm_loop = true;
  if (const char* e = std::getenv("QB_CUDA_STEP_SPAN"); e && (std::string(e) == "1" || std::string(e) == "2")) {
    I.step_span = std::atoi(e);
    for (cudaEvent_t& ev : I.span_ev) cuda_ok(cudaEventCreate(&ev), "cudaEventCreate");
  }
  if (const char* e = std::getenv("QB_CUDA_LAUNCH_RULE")) {  // an A/B switch: a value it does not know is an error
    const std::string v = e;
    QB_CHECK(v.size() == 1 && v[0] >= '4' && v[0] <= '9',
             "cuda backend: QB_CUDA_LAUNCH_RULE={}: the qgemv launch rules are 4-9 (9, the default, is this build's)",
             v);
    I.launch_rule = v[0] - '0';
  }
  if (const char* e = std::getenv("QB_CUDA_ATTN_BLOCKS_PER_SM")) I.attn_blocks_per_sm = std::max(1, std::atoi(e));
  if (const char* e = std::getenv("QB_CUDA_PDL_SMALL")) I.early_small = std::clamp(std::atoi(e), 0, 7);
  if (const char* e = std::getenv("QB_CUDA_PDL_SMALL_T")) I.early_small_max_t = std::clamp(std::atoi(e), 0, 16);
  if (const char* e = std::getenv("QB_CUDA_ATTN_ONE_SPLIT")) I.attn_one_split = std::max(-1, std::atoi(e));
  if (const char* e = std::getenv("QB_CUDA_ATTN_HW")) I.attn_half_warp = std::string(e) != "0";
  if (const char* e = std::getenv("QB_CUDA_ATTN_EARLY16")) I.attn_early_after_qgemv = std::string(e) != "0";
  if (const char* e = std::getenv("QB_CUDA_FLASH_ATTN"); e && std::string(e) == "0") I.flash_attention = false;
  if (const char* e = std::getenv("QB_CUDA_KV_PREFILL_CODES"); e && std::string(e) == "0") I.kv_codes_on = false;
  if (const char* e = std::getenv("QB_CUDA_PREWAIT"); e && std::string(e) == "0") I.prewait = false;
  if (const char* e = std::getenv("QB_CUDA_FUSE_ROPE"); e && std::string(e) == "0") options_.fuse_rope = false;
  if (const char* e = std::getenv("QB_CUDA_FUSE_ACT"); e && std::string(e) == "0") options_.fuse_gated_act = false;
  if (const char* e = std::getenv("QB_CUDA_FUSE_ACT_MIN_T")) I.fuse_act_min_t = std::clamp(std::atoi(e), 1, 17);
  if (const char* e = std::getenv("QB_CUDA_GEMM_ATTN"); e && std::string(e) == "0") options_.gemm_attention = false;
  if (const char* e = std::getenv("QB_CUDA_ATTN_SPLIT16")) options_.split16_attention = std::string(e) == "1" ? 1 : 0;
  I.split16_option = options_.split16_attention;
  if (const char* e = std::getenv("QB_CUDA_QGEMM"); e && std::string(e) == "0") options_.fused_prefill = false;
  if (const char* e = std::getenv("QB_CUDA_SPLIT_STACKS"); e && std::string(e) == "0") I.split_stacks = false;
  if (const char* e = std::getenv("QB_CUDA_PACK_Q6K"); e && std::string(e) == "0") I.pack_q6k = false;
  if (const char* e = std::getenv("QB_CUDA_L2_PREFETCH_MB")) options_.l2_prefetch_mb = std::max(0, std::atoi(e));
  if (const char* e = std::getenv("QB_CUDA_L2_PREFETCH_WIDE_MB"))
    options_.l2_prefetch_wide_mb = std::max(0, std::atoi(e));
  if (const char* e = std::getenv("QB_CUDA_L2_PREFETCH_MAX_T"))
    options_.l2_prefetch_max_tokens = std::max(0, std::atoi(e));
  if (const char* e = std::getenv("QB_CUDA_TIMING_SKIP")) {
    const std::string v = e;
    for (const auto& [name, bit] : {std::pair{"norm", Impl::kSkipNorm}, std::pair{"attn", Impl::kSkipAttn},
                                    std::pair{"act", Impl::kSkipAct}, std::pair{"prod", Impl::kSkipProd}})
      if (v.find(name) != std::string::npos) I.timing_skip |= bit;
  }
  I.l2_pf_bytes = size_t(std::max(0, options_.l2_prefetch_mb)) << 20;
  I.l2_pf_wide_bytes = I.l2_pf_bytes ? size_t(std::max(0, options_.l2_prefetch_wide_mb)) << 20 : 0;
  I.l2_pf_max_tokens = std::min(16, std::max(0, options_.l2_prefetch_max_tokens));
  I.qgemm_on = options_.fused_prefill;
  if (const char* e = std::getenv("QB_CUDA_W8A8"); e && std::string(e) == "0") options_.w8a8 = false;
  // (at most 17: the dp4a kernel takes 16 tokens at most)
  if (const char* e = std::getenv("QB_CUDA_W8A8_GEMM_MIN")) I.w8a8_gemm_min = std::clamp(std::atoi(e), 1, 17);
  if (const char* e = std::getenv("QB_CUDA_FP8_EXACT")) options_.fp8_exact = std::string(e) == "1";
  if (const char* e = std::getenv("QB_CUDA_FP8_TC")) options_.fp8_tensor_cores = std::string(e) == "1";
  if (const char* e = std::getenv("QB_CUDA_FP8_TC_MIN")) I.fp8_tc_min = std::max(1, std::atoi(e));
  if (const char* e = std::getenv("QB_CUDA_FP8_OUTER_SCALES")) I.fp8_outer_scales = std::string(e) != "0";
  if (const char* e = std::getenv("QB_CUDA_FP8_MMA")) I.fp8_mma = std::string(e) != "0";
  if (const char* e = std::getenv("QB_CUDA_INT8_MMA")) I.int8_mma = std::string(e) != "0";
  if (const char* e = std::getenv("QB_CUDA_W8A8_NORM_CODES")) I.w8a8_norm_codes = std::string(e) != "0";
  if (const char* e = std::getenv("QB_CUDA_W8A8_ACT_CODES")) I.w8a8_act_codes = std::string(e) != "0";
  // The f32 mode is the backend's most exact one: FP8 W8A8 runs exactly there too.
  I.fp8_exact = options_.fp8_exact || options_.dense == DenseType::F32;
  I.fp8_tensor_cores = options_.fp8_tensor_cores;
  I.w8a8_enabled = options_.w8a8;
  I.fuse_gated_act = options_.fuse_gated_act;
  I.kvk = sp.kv_dim_k();
  I.kvv = sp.kv_dim_v();
  I.n_layer = sp.n_layer;
  {
    int code = kKvF16;
    switch (options_.kv) {
      case KvType::F16: code = kKvF16; break;
      case KvType::Int8: code = kKvInt8; break;
      case KvType::Fp8: code = kKvFp8; break;
      case KvType::Int4: code = kKvInt4; break;
      case KvType::F32: fail("cuda backend: --kv f32 has no GPU path (supported KV cache types: f16, int8, fp8, int4)");
    }
    try {
      I.klay = kv_row_layout(code, int(sp.n_head_kv), int(sp.head_dim_k));
      I.vlay = kv_row_layout(code, int(sp.n_head_kv), int(sp.head_dim_v));
    } catch (const std::exception& e) {
      fail("cuda backend: {}", e.what());
    }
    I.kv_quant = code != kKvF16;
    if (I.kv_quant) {  // the same groups and code bytes as the CPU's cache (runtime/kv_cache.h)
      const KvLayout ck = KvLayout::make(options_.kv, sp.n_head_kv, sp.head_dim_k);
      const KvLayout cv = KvLayout::make(options_.kv, sp.n_head_kv, sp.head_dim_v);
      QB_CHECK(ck.group == I.klay.group && cv.group == I.vlay.group &&
                   int64_t(ck.code_bytes_per_row()) == I.klay.code_bytes &&
                   int64_t(cv.code_bytes_per_row()) == I.vlay.code_bytes,
               "cuda backend: kv layout differs from the CPU's");
    }
  }
  cuda_ok(cudaSetDevice(options_.device), "cudaSetDevice");
  cudaDeviceProp prop{};
  cuda_ok(cudaGetDeviceProperties(&prop, options_.device), "cudaGetDeviceProperties");
  I.device_name = prop.name;
  I.sm_count = prop.multiProcessorCount;
  // The kernels are built for sm_90a only (wgmma, TMA; 'a' code runs on compute capability 9.0 alone),
  // so any other device would fail at its first launch with "no kernel image"; say so up front.
  QB_CHECK(prop.major == 9 && prop.minor == 0,
           "cuda backend: built for sm_90a (Hopper: H100, H200), but device {} ({}) has compute capability {}.{}",
           options_.device, prop.name, prop.major, prop.minor);
  cuda_ok(cudaStreamCreateWithFlags(&I.stream, cudaStreamNonBlocking), "cudaStreamCreate");
  if (I.l2_pf_bytes) {
    cuda_ok(cudaStreamCreateWithFlags(&I.pf_stream, cudaStreamNonBlocking), "cudaStreamCreate");
    cuda_ok(cudaEventCreateWithFlags(&I.pf_fork, cudaEventDisableTiming), "cudaEventCreate");
    cuda_ok(cudaEventCreateWithFlags(&I.pf_join, cudaEventDisableTiming), "cudaEventCreate");
  }
  blas_ok(cublasCreate(&I.blas), "cublasCreate");
  blas_ok(cublasSetStream(I.blas, I.stream), "cublasSetStream");
  // An explicit workspace (after SetStream, which resets it) so captured GEMMs never allocate.
  I.blas_ws = DevBuf(size_t(32) << 20);
  blas_ok(cublasSetWorkspace(I.blas, I.blas_ws.p, I.blas_ws.bytes), "cublasSetWorkspace");
  if (I.dense == DenseType::F32) blas_ok(cublasSetMathMode(I.blas, CUBLAS_PEDANTIC_MATH), "cublasSetMathMode");
}

// After the matrices exist: scratch for the packed paths (activation fragments for 16 tokens at the
// widest input; for prefill, one dense f16 copy of the largest packed matrix qgemm does not take).
static void finish_scratch(CudaBackend::Impl& I, const ModelSpec& sp) {
  const int64_t widest = std::max({sp.n_embd, sp.n_head * sp.head_dim_v, sp.n_ff});
  I.xfrag = DevBuf(activation_frag_bytes(widest, 16));
  for (const auto& L : I.layers)
    if (L.wgu.gate_up16) {
      I.xfrag2 = DevBuf(activation_frag_bytes(sp.n_ff, 16));
      break;
    }
  // Decode scratch: int8 / e4m3 codes, scales, and the int32 products of the cuBLAS path.
  if (I.any_w8a8) {
    I.w8_dec = DevBuf(I.al256(size_t(16) * size_t(I.w8_in)) + I.al256(16 * 4) + size_t(16) * size_t(I.w8_out) * 4);
    I.nonfinite_host.ensure(sizeof(unsigned));
    *static_cast<volatile unsigned*>(I.nonfinite_host.p) = 0u;
  }
  if (I.wscratch_bytes) I.wscratch = DevBuf(I.wscratch_bytes);
}

CudaBackend::CudaBackend(std::shared_ptr<const model::Model> model, CudaBackendOptions options)
    : model_(std::move(model)), options_(options), impl_(std::make_unique<Impl>()) {
  QB_CHECK(model_ != nullptr, "CudaBackend: no model");
  spec_ = model_->spec();
  init_device();
  const ModelSpec& sp = spec_;
  const model::Model& m = *model_;
  Impl& I = *impl_;
  for (int64_t il = 0; il < sp.n_layer; ++il) {
    const model::LayerWeights& w = m.layers[size_t(il)];
    Impl::Layer L;
    const std::string p = fmt::format("blk.{}.", il);
    L.attn_norm = upload_vec(w.attn_norm);
    L.ffn_norm = upload_vec(w.ffn_norm);
    if (sp.post_norms) {
      L.post_attn_norm = upload_vec(w.post_attn_norm);
      L.post_ffn_norm = upload_vec(w.post_ffn_norm);
    }
    if (sp.qk_norm) {
      L.q_norm = upload_vec(w.q_norm);
      L.k_norm = upload_vec(w.k_norm);
    }
    if (sp.qkv_bias) {
      std::vector<float> b(w.bq);
      b.insert(b.end(), w.bk.begin(), w.bk.end());
      b.insert(b.end(), w.bv.begin(), w.bv.end());
      L.bias_qkv = upload_vec(b);
    }
    L.wqkv = I.upload_stacked({&w.wq, &w.wk, &w.wv}, p + "attn_qkv");
    L.wo = I.upload_stacked({&w.wo}, p + "attn_output");
    L.wgu = I.upload_stacked({&w.w_gate, &w.w_up}, p + "ffn_gate_up", true);
    L.wdown = I.upload_stacked({&w.w_down}, p + "ffn_down");
    I.layers.push_back(std::move(L));
  }
  I.output_norm = upload_vec(m.output_norm);
  I.output = I.upload_stacked({&m.output}, "output");
  finish_scratch(I, sp);
}

namespace {
QuantSpec parse_synthetic_scheme(const std::string& s) {
  std::string t = s;
  bool asym = false;
  if (t.size() > 5 && t.compare(t.size() - 5, 5, "-asym") == 0) {
    asym = true;
    t.resize(t.size() - 5);
  }
  if (t == "bf16" && !asym) return {WeightFormat::BF16, 0, false};
  if (t == "w8" && !asym) return {WeightFormat::W8A16, 0, false};
  if (t == "w8g32" && !asym) return {WeightFormat::W8A16, 32, false};
  if (t == "w4g32" || t == "w4g128") return {WeightFormat::W4A16, t == "w4g32" ? 32 : 128, asym};
  if (t == "w4g32a" || t == "w4g128a") return {WeightFormat::W4A16, t == "w4g32a" ? 32 : 128, true};
  if (t == "w4g32m" && !asym) return {WeightFormat::W4A16, 32, false, true};  // GGUF Q4_1 / Q4_K's form
  if (t == "w8g16" && !asym) return {WeightFormat::W8A16, 16, false};         // GGUF Q6_K's and Q3_K's form
  if (t == "w8g32m" && !asym) return {WeightFormat::W8A16, 32, false, true};  // GGUF Q5_K's and Q5_1's form
  if (t == "w8g16m" && !asym) return {WeightFormat::W8A16, 16, false, true};  // GGUF Q2_K's form
  fail("synthetic model: scheme '{}' has no GPU path (supported: bf16, w8, w8g32, w8g16, w8g32m, w8g16m, w4g32, w4g128, "
       "w4g32-asym, w4g128-asym, w4g32m, q4_k_m, q5_k_m, w8a8, w8a8-fp8)", s);
}

// GGUF Q4_K_M's and Q5_K_M's choice of Q6_K over Q4_K / Q5_K (llama.cpp's use_more_bits): attn_v and
// ffn_down of the first and last eighth of the layers and of every third layer between; the output
// matrix always.
bool q4_k_m_more_bits(int64_t il, int64_t n_layer) {
  return il < n_layer / 8 || il >= 7 * n_layer / 8 || (il - n_layer / 8) % 3 == 2;
}
// Bytes of n weights in GGUF Q4_K (144 per 256), Q5_K (176) or, for the mixes' more-bits matrices, Q6_K
// (210): what a Q4_K_M / Q5_K_M file stores, for the synthetic mixes' stored bytes (Mat::stored).
size_t gguf_k_bytes(bool q4k, bool q6k, int64_t n) { return size_t(n) / 256 * (q6k ? 210 : q4k ? 144 : 176); }
}  // namespace

CudaBackend::CudaBackend(const model::ModelSpec& spec, const std::string& synthetic_name, const std::string& scheme,
                         uint64_t seed, CudaBackendOptions options)
    : spec_(spec), synthetic_name_(synthetic_name), options_(options), impl_(std::make_unique<Impl>()) {
  // W8A8 (w8a8.h): int8 or fp8 activations; the others are qgemv / bf16 schemes.
  const bool w8a8 = scheme == "w8a8" || scheme == "w8a8-fp8", w8a8_fp8 = scheme == "w8a8-fp8";
  // q4_k_m / q5_k_m: GGUF Q4_K_M's / Q5_K_M's mix, w4g32m (Q4_K) or w8g32m (Q5_K) with w8g16 (Q6_K) where
  // q4_k_m_more_bits says.
  const bool q4km = scheme == "q4_k_m", q5km = scheme == "q5_k_m", kmix = q4km || q5km;
  const QuantSpec qs = w8a8   ? QuantSpec{WeightFormat::W8A16, 0, false}
                       : q4km ? QuantSpec{WeightFormat::W4A16, 32, false, true}
                       : q5km ? QuantSpec{WeightFormat::W8A16, 32, false, true}
                              : parse_synthetic_scheme(scheme);
  options_.dense = DenseType::Bits16;
  init_device();
  const ModelSpec& sp = spec_;
  Impl& I = *impl_;
  const QuantSpec q6 = I.pack_q6k ? QuantSpec{WeightFormat::W8A16, 16, false} : QuantSpec{WeightFormat::BF16, 0, false};
  // (The matrices' paths in describe() say which part runs in which form. The w8g16 codes are random
  // bytes, spanning int8 rather than Q6_K's -32..31: no timing depends on the values.)
  synthetic_scheme_ = w8a8 ? scheme : kmix ? scheme + (I.pack_q6k ? "" : ", q6_k dense") : spec_name(qs);
  QB_CHECK(sp.n_embd % 64 == 0 && sp.n_ff % 64 == 0 && sp.q_dim() % 64 == 0,
           "synthetic {}: dimensions must be multiples of 64", synthetic_name);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.0f, 0.5f);
  const std::vector<float> ones(size_t(sp.n_embd), 1.0f);
  uint64_t k = seed * 0x9E3779B97F4A7C15ull;
  auto next_seed = [&] { return k += 0xD1B54A32D192ED03ull; };
  for (int64_t il = 0; il < sp.n_layer; ++il) {
    Impl::Layer L;
    const std::string p = fmt::format("{} blk.{}.", synthetic_name, il);
    L.attn_norm = upload_vec(ones);
    L.ffn_norm = upload_vec(ones);
    QB_CHECK(!sp.post_norms && !sp.qk_norm, "synthetic {}: post-norms / qk-norm shapes are not supported", synthetic_name);
    if (sp.qkv_bias) {
      std::vector<float> b(size_t(sp.q_dim() + sp.kv_dim_k() + sp.kv_dim_v()));
      for (auto& v : b) v = nd(rng);
      L.bias_qkv = upload_vec(b);
    }
    auto make = [&](int64_t n_out, int64_t n_in, const std::string& what) {
      return w8a8 ? I.synthetic_w8a8(n_out, n_in, next_seed(), w8a8_fp8) : I.synthetic(qs, n_out, n_in, next_seed(), what);
    };
    const bool more_bits = kmix && q4_k_m_more_bits(il, sp.n_layer);
    const int64_t qk_rows = sp.q_dim() + sp.kv_dim_k();
    L.wqkv = more_bits ? I.synthetic_stack({{qs, qk_rows}, {q6, sp.kv_dim_v()}}, sp.n_embd, next_seed, p + "attn_qkv")
                       : make(qk_rows + sp.kv_dim_v(), sp.n_embd, p + "attn_qkv");
    L.wo = make(sp.n_embd, sp.n_head * sp.head_dim_v, p + "attn_output");
    L.wgu = make(2 * sp.n_ff, sp.n_embd, p + "ffn_gate_up");
    L.wgu.gate_up16 = L.wgu.packed && I.interleave_gate_up(sp.n_ff);  // random rows: any order is this one
    L.wdown = more_bits ? I.synthetic(q6, sp.n_embd, sp.n_ff, next_seed(), p + "ffn_down")
                        : make(sp.n_embd, sp.n_ff, p + "ffn_down");
    if (kmix) {  // stored as the GGUF file this mix stands for would store them
      L.wqkv.stored = gguf_k_bytes(q4km, false, qk_rows * sp.n_embd) +
                      gguf_k_bytes(q4km, more_bits, sp.kv_dim_v() * sp.n_embd);
      L.wo.stored = gguf_k_bytes(q4km, false, L.wo.n_out * L.wo.n_in);
      L.wgu.stored = gguf_k_bytes(q4km, false, L.wgu.n_out * L.wgu.n_in);
      L.wdown.stored = gguf_k_bytes(q4km, more_bits, L.wdown.n_out * L.wdown.n_in);
    }
    I.layers.push_back(std::move(L));
  }
  I.output_norm = upload_vec(ones);
  I.output = w8a8 ? I.synthetic_w8a8(sp.n_vocab, sp.n_embd, next_seed(), w8a8_fp8)
                  : I.synthetic(kmix ? q6 : qs, sp.n_vocab, sp.n_embd, next_seed(), synthetic_name + " output");
  if (kmix) I.output.stored = gguf_k_bytes(q4km, true, sp.n_vocab * sp.n_embd);
  I.embd = DevBuf(size_t(sp.n_vocab * sp.n_embd) * 2);
  fill_uniform_bf16(I.embd.p, size_t(sp.n_vocab * sp.n_embd), next_seed(), -1.0f, 1.0f, I.stream);
  cuda_ok(cudaStreamSynchronize(I.stream), "synthetic weights");
  finish_scratch(I, sp);
}

CudaBackend::~CudaBackend() {
  if (impl_ && impl_->stream) cudaStreamSynchronize(impl_->stream);
}

size_t CudaBackend::kv_bytes_per_position() const {
  return size_t(spec_.n_layer) * size_t(impl_->klay.row_bytes + impl_->vlay.row_bytes);
}

size_t CudaBackend::weight_bytes() const {
  size_t n = 0;
  for (const Mat* m : impl_->mats()) n += m->bytes();
  return n;
}

size_t CudaBackend::stored_weight_bytes() const {
  size_t n = 0;
  for (const Mat* m : impl_->mats()) n += m->stored;
  return n;
}

int64_t CudaBackend::weight_count() const {
  int64_t n = 0;
  for (const Mat* m : impl_->mats()) n += m->n_out * m->n_in;
  return n;
}

std::string CudaBackend::device_facts() const {
  int drv = 0, rt = 0, blas = 0;
  cudaDriverGetVersion(&drv);
  cudaRuntimeGetVersion(&rt);
  cublasGetVersion(impl_->blas, &blas);
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, options_.device);
  return fmt::format("{} ({} SMs, {:.1f} GiB, cc {}.{}); CUDA driver API {}.{}, runtime {}.{}, cuBLAS {}", prop.name,
                     prop.multiProcessorCount, double(prop.totalGlobalMem) / double(1ull << 30), prop.major, prop.minor,
                     drv / 1000, (drv % 1000) / 10, rt / 1000, (rt % 1000) / 10, blas);
}

std::string CudaBackend::describe_kv_cache() const {
  if (!impl_->kv_quant) return "K and V: f16 (values rounded to f16 on write)";
  const std::string k = KvLayout::make(options_.kv, spec_.n_head_kv, spec_.head_dim_k).describe();
  if (spec_.head_dim_k == spec_.head_dim_v) return "K and V: " + k;
  return "K: " + k + "; V: " + KvLayout::make(options_.kv, spec_.n_head_kv, spec_.head_dim_v).describe();
}

std::string CudaBackend::describe_activations() const {
  std::map<std::string, int> inputs;  // what a product's input becomes -> products
  for (const Mat* m : impl_->mats()) {
    // (FP8's two forms sum differently, so the form is part of what the input becomes: runs in different
    // forms do not compare.)
    if (m->w8a8 && m->w8a8_fp8 && !impl_->fp8_exact)
      ++inputs[fmt::format("fp8 e4m3 per token (W8A8: {} sums below {} tokens, {} sums from there)",
                           impl_->mma_decodes(*m) ? "f16 tensor-core" : "f32 CUDA-core",
                           m->fp8_tc ? impl_->fp8_tc_min : 17,
                           m->fp8_tc                  ? "FP8 tensor-core"
                           : impl_->prefill_wgmma(*m) ? "f16 tensor-core (wgmma)"
                                                      : "exact")];
    else if (m->w8a8)
      ++inputs[m->w8a8_fp8 ? "fp8 e4m3 per token (W8A8, exact sums)" : "int8 per token (W8A8)"];
    else if (m->packed) ++inputs[m->first_packed().shape.spec.format == WeightFormat::BF16 ? "bf16" : "f16"];
    else ++inputs[impl_->dense == DenseType::F32 ? "f32" : m->dense.f16 ? "f16" : "bf16"];
  }
  std::string s;
  for (const auto& [what, n] : inputs)
    s += fmt::format("{}{} into {} matrix product{}", s.empty() ? "" : "; ", what, n, n == 1 ? "" : "s");
  return s + "; residual stream, norms and softmax in f32";
}

// The gate|up row order and where the gated activation runs, for the Manifest.
static std::string gate_up_note(const CudaBackend::Impl& I) {
  bool any = false;
  for (const auto& L : I.layers) any = any || L.wgu.gate_up16;
  if (!any) return "";
  return fmt::format(" (packed gate|up rows in interleaved blocks of 16; at decode steps of {}-16 tokens the gated "
                     "activation runs in the gate|up product's epilogue wherever its launch shape pairs gate and up "
                     "row blocks, the same bits as the activation kernel, and the down product after it is launched "
                     "plainly, not early)",
                     I.fuse_act_min_t);
}

std::string CudaBackend::describe() const {
  std::map<std::string, int> paths;
  for (const Mat* m : impl_->mats()) ++paths[m->path];
  std::string ps;
  for (const auto& [k, v] : paths) ps += fmt::format("{}{} x {}", ps.empty() ? "" : "; ", k, v);
  const std::string skip =
      impl_->timing_skip ? fmt::format("TIMING EXPERIMENT, OUTPUTS WRONG: decode steps leave out kernel classes "
                                       "(mask {}: 1 norm, 2 attention, 4 activation, 8 products); ",
                                       impl_->timing_skip)
                         : std::string();
  std::string refused;
  for (const auto& r : impl_->fp8_tc_refused) refused += (refused.empty() ? "" : ", ") + r;
  if (!refused.empty())
    refused = "FP8 W8A8 PRODUCTS REFUSED BY THE FP8 TENSOR CORES (cuBLASLt), RUN ON THE CUDA CORES INSTEAD: " +
              refused + "; ";
  const std::string twice = impl_->step_span == 2 ? "TIMING EXPERIMENT, STEP TIMES WRONG: each graphed greedy step runs "
                                                    "twice (QB_CUDA_STEP_SPAN=2); "
                                                  : "";
  return skip + twice + refused + fmt::format("cuda on {}; matrices: {}; decode (<= 16 tokens): packed -> qgemv (activations f16, exact "
                     "integer products, f32 accumulation), dense -> cuBLAS (activations in the weights' 16-bit "
                     "type); prefill: packed -> {}, dense -> cuBLAS; q|k|v and gate|up fused{}; kv cache {}; "
                     "residual add + RMSNorm fused (f32 sums) and writing the next product's input layout, "
                     "likewise the gated activation and attention; rope (angles computed on the host as the CPU backend computes them, once per position) + kv write{}; attention {} (f32 online "
                     "softmax; prefill runs of one sequence: {}); decode products launched early (programmatic "
                     "dependent launch): {}{}; qgemv launch rule {}{}; decode L2 prefetch of each product's first {} "
                     "MB of weights ({} MB for 8- and 16-bit weights at one-token steps) during the small kernel "
                     "before it (not W8A8), at steps of at most {} tokens: {}; activations f32; {}",
                     impl_->device_name, ps,
                     impl_->qgemm_on ? "4- and 8-bit: fused qgemm (wgmma on the packed weights, x by TMA, each "
                                       "(q - z) * s or q * s + m rounded to f16, f32 accumulation; a split stack "
                                       "one qgemm per part), bf16: cuBLAS"
                                     : "dequantized to f16 per matrix + cuBLAS f16 GEMM",
                     gate_up_note(*impl_),
                     impl_->kv_quant ? std::string(kv_type_name(options_.kv)) +
                                           std::string(" (rope + quantized k/v store kernel, split-key decode attention on the codes; prefill runs: ") +
                                           (!prefill_attention_on_tensor_cores()
                                                ? "the attention kernels on the codes; "
                                            : impl_->kv_codes_prefill(spec_)
                                                ? "the codes as f16 per layer, their scales multiplied into the fused "
                                                  "kernel's scores and softmax weights (no value rounded); "
                                                : "dequantized to f16 per layer; ") +
                                           KvLayout::make(options_.kv, spec_.n_head_kv, spec_.head_dim_k).describe() + ")"
                                     : std::string("f16"),
                     options_.fuse_rope && !impl_->kv_quant ? " (inside the attention kernel at decode, one token per sequence)" : "",
                     options_.split_attention
                         ? std::string("split over keys (flash-decoding; K/V rows read as streaming (evict-first) loads; ") +
                               (!impl_->kv_quant && attention_half_warp_takes(impl_->attn_half_warp, int(spec_.head_dim_k),
                                                                                int(spec_.head_dim_v))
                                    ? "a half-warp per key, 16-byte row loads; "
                                    : "a warp per key; ") +
                               "normalized in its own block where one split covers the keys, else merged by the last "
                               "block (f16 cache) or a merge kernel (quantized caches); prefill: query tiles of 8 tokens)"
                         : std::string("one block per (head, token)"),
                     !prefill_attention_on_tensor_cores() ? "the attention kernels above"
                     : impl_->split16_attention()
                         ? (impl_->flash_attention
                                ? "fused flash kernel for head dims 64/128 with Q and P each as an f16 pair (value "
                                  "and remainder, about 22 bits: a W8A8 model's activation codes follow upstream "
                                  "rounding), else the attention kernels above"
                                : "the attention kernels above (the f16-pair kernel is the fused one, off)")
                     : impl_->flash_attention ? "fused flash kernel for head dims 64/128, else cuBLAS S = QK^T, softmax, PV"
                                              : "cuBLAS S = QK^T, softmax, PV",
                     options_.overlap_launch ? "on" : "off",
                     impl_->early_small_note(options_.overlap_launch),
                     impl_->launch_rule,
                     impl_->launch_rule >= 9   ? " (every int4 format in half steps; at 9-16 tokens and two row blocks a "
                                                 "warp, their two step buffers used in turn; int8 with group scales in shapes of their own)"
                     : impl_->launch_rule == 8 ? " (every int4 format in half steps; at 9-16 tokens and two row blocks a "
                                                 "warp, their two step buffers used in turn)"
                     : impl_->launch_rule == 7 ? " (symmetric w4g128 in half steps; at 9-16 tokens its two step buffers "
                                                 "used in turn)"
                     : impl_->launch_rule == 6 ? " (symmetric w4g128 in half steps; at 9-16 tokens a copy between its "
                                                 "step buffers)"
                                               : "",
                     options_.l2_prefetch_mb, options_.l2_prefetch_wide_mb,
                     impl_->l2_pf_max_tokens, options_.l2_prefetch_mb > 0 && impl_->l2_pf_max_tokens > 0 ? "on" : "off",
                     model_ ? "embeddings dequantized on the host per token; weights: " + model_->describe_weight_types()
                            : "SYNTHETIC model " + synthetic_name_ + " (random weights made on the GPU, scheme " +
                                  synthetic_scheme_ + ")");
}

std::string CudaBackend::profile_report() {
  Impl& I = *impl_;
  if (!I.profile) return "";
  std::string r;
  for (const auto& [T, p] : I.prof) {
    if (p.forwards == 0) continue;
    const double f = double(p.forwards);
    r += fmt::format("profile T={}: {} forwards, GPU {:.3f} ms per forward (no graph; launches queued behind a "
                     "busy-wait, event per kernel class):",
                     T, p.forwards, p.total_ms / f);
    std::vector<int> order;
    for (int c = 0; c < Impl::kNumCls; ++c)
      if (p.launches[c]) order.push_back(c);
    std::sort(order.begin(), order.end(), [&](int a, int b) { return p.ms[a] > p.ms[b]; });
    for (int c : order)
      r += fmt::format(" {} {:.3f} ms ({:.1f}%, {:.0f} spans)", Impl::kClsName[c], p.ms[c] / f,
                       100.0 * p.ms[c] / p.total_ms, double(p.launches[c]) / f);
    r += "\n";
  }
  I.prof.clear();
  return r;
}

SeqId CudaBackend::create_sequence(int64_t max_len) {
  const int64_t ctx = spec().n_ctx_train;
  const bool bounded = max_len > 0;
  if (max_len <= 0) max_len = ctx;
  QB_CHECK(max_len <= ctx, "create_sequence: max_len {} exceeds the model's context length {}", max_len, ctx);
  Impl::Sequence s;
  s.max_len = max_len;
  // The whole cache now when the caller bounded the length and it is modest; else grown on use.
  constexpr size_t kUpfrontLimit = size_t(1) << 30;
  if (bounded && impl_->kv_bytes(max_len) <= kUpfrontLimit) {
    s.kv = impl_->take_kv(max_len);
    s.capacity = max_len;
  }
  const SeqId id = impl_->next_id++;
  impl_->seqs.emplace(id, std::move(s));
  return id;
}

void CudaBackend::free_sequence(SeqId seq) {
  QB_CHECK(impl_->seqs.count(seq), "unknown sequence id {}", seq);
  cuda_ok(cudaStreamSynchronize(impl_->stream), "sync");
  impl_->give_kv(std::move(impl_->seqs.at(seq).kv));
  impl_->seqs.erase(seq);
}

int64_t CudaBackend::sequence_length(SeqId seq) const {
  auto it = impl_->seqs.find(seq);
  QB_CHECK(it != impl_->seqs.end(), "unknown sequence id {}", seq);
  return it->second.length;
}

void CudaBackend::truncate_sequence(SeqId seq, int64_t new_length) {
  auto it = impl_->seqs.find(seq);
  QB_CHECK(it != impl_->seqs.end(), "unknown sequence id {}", seq);
  QB_CHECK(new_length >= 0 && new_length <= it->second.length, "truncate_sequence: length {} is outside 0..{}",
           new_length, it->second.length);
  it->second.length = new_length;
}

Logits CudaBackend::forward(const Batch& batch) {
  Logits result;
  forward_into(batch, result, nullptr);
  return result;
}

std::vector<int32_t> CudaBackend::forward_greedy(const Batch& batch) {
  Logits meta;
  std::vector<int32_t> ids;
  forward_into(batch, meta, &ids);
  return ids;
}

void CudaBackend::forward_into(const Batch& batch, Logits& result, std::vector<int32_t>* ids) {
  const ModelSpec& sp = spec();
  Impl& I = *impl_;
  const int T_all = int(batch.size());
  result.n_vocab = sp.n_vocab;
  if (T_all == 0) return;
  QB_CHECK(batch.size() < (1u << 30), "forward: batch of {} tokens is too large", batch.size());

  // Validate everything before touching a cache (same rules and messages as the CPU backend).
  std::map<SeqId, int64_t> next_pos;
  for (const auto& bt : batch.tokens) {
    auto sit = I.seqs.find(bt.seq);
    QB_CHECK(sit != I.seqs.end(), "unknown sequence id {}", bt.seq);
    auto [it, fresh] = next_pos.try_emplace(bt.seq, sit->second.length);
    QB_CHECK(bt.token >= 0 && bt.token < sp.n_vocab, "forward: token id {} is outside the vocabulary (0..{})",
             bt.token, sp.n_vocab - 1);
    QB_CHECK(bt.pos == it->second, "forward: sequence {} expects position {}, got {}", bt.seq, it->second, bt.pos);
    QB_CHECK(bt.pos < sit->second.max_len, "forward: sequence {} position {} exceeds its maximum length {}", bt.seq,
             bt.pos, sit->second.max_len);
    ++it->second;
  }
  // Grow caches that were not allocated whole (capacity doubles; existing positions are copied).
  for (const auto& [id, end] : next_pos) {
    Impl::Sequence& s = I.seqs.at(id);
    if (end <= s.capacity) continue;
    const int64_t cap = std::min(s.max_len, std::max<int64_t>({end, 2 * s.capacity, 64}));
    Impl::Sequence n;
    n.capacity = cap;
    n.kv = I.take_kv(cap);
    for (int64_t il = 0; il < sp.n_layer && s.length > 0; ++il) {
      cuda_ok(cudaMemcpyAsync(I.k_ptr(n, il), I.k_ptr(s, il), size_t(s.length * I.klay.row_bytes),
                              cudaMemcpyDeviceToDevice, I.stream), "cache copy");
      cuda_ok(cudaMemcpyAsync(I.v_ptr(n, il), I.v_ptr(s, il), size_t(s.length * I.vlay.row_bytes),
                              cudaMemcpyDeviceToDevice, I.stream), "cache copy");
    }
    cuda_ok(cudaStreamSynchronize(I.stream), "sync");
    I.give_kv(std::move(s.kv));
    s.kv = std::move(n.kv);
    s.capacity = cap;
  }

  for (size_t t = 0; t < batch.size(); ++t)
    if (batch.tokens[t].want_logits) result.batch_index.push_back(t);
  if (ids) ids->assign(result.rows(), 0);
  else result.data.resize(result.rows() * size_t(sp.n_vocab));
  const int chunk = std::max(1, options_.prefill_chunk);
  size_t rows_done = 0;
  for (int c0 = 0; c0 < T_all; c0 += chunk) {
    const int T = std::min(chunk, T_all - c0);
    rows_done += ids ? run_chunk(I, batch, c0, T, nullptr, ids->data() + rows_done)
                     : run_chunk(I, batch, c0, T, result.data.data() + rows_done * size_t(sp.n_vocab), nullptr);
  }
  for (const auto& [id, end] : next_pos) I.seqs.at(id).length = end;
}

// One chunk of a validated batch (tokens c0 .. c0 + T - 1, caches already large enough): the whole
// forward pass, logits of its wanting tokens copied to `logits_out`. Returns the number of rows.
bool CudaBackend::prefill_attention_on_tensor_cores() const {
  return options_.gemm_attention && impl_->dense == DenseType::Bits16;
}

size_t CudaBackend::run_chunk(Impl& I, const Batch& batch, int c0, int T, float* logits_out, int32_t* ids_out) {
  const ModelSpec& sp = spec();
  auto tok = [&](int t) -> const BatchToken& { return batch.tokens[size_t(c0 + t)]; };
  const int64_t kvk = sp.kv_dim_k(), kvv = sp.kv_dim_v();
  const int64_t d = sp.n_embd, qd = sp.q_dim(), ad = sp.n_head * sp.head_dim_v, ff = sp.n_ff;
  const int64_t nqkv = qd + kvk + kvv;
  const int64_t half = sp.n_rot / 2;

  // Host-side per-token tables: embeddings, rope angles (global and sliding-window), positions,
  // cache pointers per layer. One upload.
  std::vector<float> emb(model_ ? size_t(T * d) : 0);
  std::vector<int32_t> toks(static_cast<size_t>(T));
  for (int t = 0; t < T; ++t) {
    toks[size_t(t)] = tok(t).token;
    if (!model_) continue;
    float* e = emb.data() + t * d;
    model_->embedding_row(tok(t).token, e);
    if (sp.embd_scale != 1.0f)
      for (int64_t i = 0; i < d; ++i) e[i] *= sp.embd_scale;
  }
  const bool any_swa = std::find(sp.layer_swa.begin(), sp.layer_swa.end(), true) != sp.layer_swa.end();
  const int n_rope = any_swa ? 2 : 1;
  std::vector<float> rope(size_t(n_rope * 2 * T * half));
  for (int variant = 0; variant < n_rope; ++variant) {
    cpu::RopeParams rp;
    rp.style = sp.rope_style;
    rp.n_rot = sp.n_rot;
    rp.theta = variant ? sp.rope_theta_swa : sp.rope_theta;
    rp.position_scale = variant ? 1.0 : sp.rope_position_scale;
    rp.freq_factors = !model_ || model_->rope_freqs.empty() ? nullptr : model_->rope_freqs.data();
    float* c = rope.data() + size_t(variant * 2 * T * half);
    for (int t = 0; t < T; ++t) I.rope_row(variant, rp, tok(t).pos, c + t * half, c + (T + t) * half);
  }
  std::vector<int64_t> pos(static_cast<size_t>(T));
  for (int t = 0; t < T; ++t) pos[size_t(t)] = tok(t).pos;
  std::vector<void*> ptrs(size_t(2 * sp.n_layer * T));
  for (int t = 0; t < T; ++t) {  // one map lookup per token, not per token and layer
    const Impl::Sequence& s = I.seqs.at(tok(t).seq);
    for (int64_t il = 0; il < sp.n_layer; ++il) {
      ptrs[size_t((2 * il) * T + t)] = I.k_ptr(s, il);
      ptrs[size_t((2 * il + 1) * T + t)] = I.v_ptr(s, il);
    }
  }
  std::vector<int32_t> rows;
  for (int t = 0; t < T; ++t)
    if (tok(t).want_logits) rows.push_back(t);
  const int R = int(rows.size());

  // Table layout in one device buffer: ptrs | pos | rows | rope | emb (8-byte aligned pieces), padded to
  // 16 bytes (the graphed step's copy kernel moves 16-byte words).
  const size_t o_ptr = 0, o_pos = o_ptr + ptrs.size() * 8, o_rows = o_pos + pos.size() * 8,
               o_rope = o_rows + ((rows.size() * 4 + 7) / 8) * 8, o_emb = o_rope + ((rope.size() * 4 + 7) / 8) * 8,
               o_tok = o_emb + emb.size() * 4, total = (o_tok + toks.size() * 4 + 15) / 16 * 16;
  // Decode steps of up to 16 tokens run as a captured graph (not in the profiling mode). Its first kernel
  // reads the table from the mapped host buffer and, for greedy steps, its last kernel (argmax) writes
  // the ids there: one submission per step and no copy-engine transfer on the step's critical path. Those
  // took 8-14 us (table) and 16-17 us (argmax and ids) of a one-stream w4g128 step on an H100, and the
  // step got 2.4% faster (docs/perf.md, session 16). Otherwise the table goes up and the results come
  // down by cudaMemcpyAsync.
  const bool graphable = options_.use_graphs && !I.profile && T <= 16;
  I.tab_host.ensure(total);
  uint8_t* tab = static_cast<uint8_t*>(I.tab_host.p);
  std::memcpy(tab + o_ptr, ptrs.data(), ptrs.size() * 8);
  std::memcpy(tab + o_pos, pos.data(), pos.size() * 8);
  if (!rows.empty()) std::memcpy(tab + o_rows, rows.data(), rows.size() * 4);
  std::memcpy(tab + o_rope, rope.data(), rope.size() * 4);
  if (!emb.empty()) std::memcpy(tab + o_emb, emb.data(), emb.size() * 4);
  std::memcpy(tab + o_tok, toks.data(), toks.size() * 4);
  I.tabs.ensure(total);
  const bool span = I.step_span && ids_out && R > 0;
  if (span) cuda_ok(cudaEventRecord(I.span_ev[0], I.stream), "span event");
  if (!graphable) cuda_ok(cudaMemcpyAsync(I.tabs.p, tab, total, cudaMemcpyHostToDevice, I.stream), "table upload");
  uint8_t* dt = I.tabs.as<uint8_t>();
  void* const* d_ptrs = reinterpret_cast<void* const*>(dt + o_ptr);
  const int64_t* d_pos = reinterpret_cast<const int64_t*>(dt + o_pos);
  const int32_t* d_rows = reinterpret_cast<const int32_t*>(dt + o_rows);
  const float* d_rope = reinterpret_cast<const float*>(dt + o_rope);

  I.x.ensure(size_t(T * d) * 4);
  I.h.ensure(size_t(T * d) * 4);
  I.qkv.ensure(size_t(T * nqkv) * 4);
  I.att.ensure(size_t(T * ad) * 4);
  I.o.ensure(size_t(T * d) * 4);
  I.gu.ensure(size_t(T * 2 * ff) * 4);
  I.g.ensure(size_t(T * ff) * 4);
  float* x = I.x.as<float>();
  float* h = I.h.as<float>();
  float* qkv = I.qkv.as<float>();
  float* att = I.att.as<float>();
  float* o = I.o.as<float>();
  // Everything from here to the logits is a pure function of (T, R, buffer addresses): the per-step
  // data (tokens, positions, cache pointers, angles) lives in the table buffer. So a decode-sized batch
  // is captured once as a CUDA graph and replayed, which removes the ~15 launches per layer.
  cudaStream_t st = I.stream;
  I.xb.ensure(size_t(T) * size_t(std::max({d, ad, ff})) * 2);
  if (R > 0) I.logits.ensure(size_t(R) * size_t(sp.n_vocab) * 4);
  const int splits = options_.split_attention || I.kv_quant  // quantized caches: split kernel only
                         ? attention_splits(int(sp.n_head), T, I.sm_count, I.attn_blocks_per_sm, I.attn_one_split)
                         : 0;
  if (splits > 0) {
    I.part.ensure(size_t(T) * size_t(sp.n_head) * size_t(splits) * size_t(sp.head_dim_v + 2) * 4);
    const void* before = I.counters.p;
    I.counters.ensure(size_t(T) * size_t(sp.n_head) * 4);
    if (I.counters.p != before)  // fresh counters start at zero; the kernels leave them at zero
      cuda_ok(cudaMemsetAsync(I.counters.p, 0, I.counters.bytes, st), "counters");
  }
  const bool greedy = ids_out != nullptr;
  // Rope + KV write inside the attention kernel: only when no sequence has two tokens here (a later
  // token would read the earlier one's key from the cache while it is being written).
  bool one_per_seq = true;
  {
    std::set<SeqId> seen;
    for (int t = 0; t < T; ++t) one_per_seq = one_per_seq && seen.insert(tok(t).seq).second;
  }
  const bool fuse_rope = options_.fuse_rope && !I.kv_quant && splits > 0 && T <= 16 && one_per_seq &&
                         attention_can_fuse_rope(int(sp.head_dim_k), int(sp.head_dim_v), int(sp.n_rot),
                                                 sp.rope_style == model::RopeStyle::Neox);
  if (greedy && R > 0) {
    I.ids.ensure(size_t(R) * 4);
    I.out_host.ensure(size_t(R) * 4);  // before a capture: the graph's argmax writes here
  }
  const int act = sp.activation == model::Activation::SiLU ? 0 : 1;
  // Prefill attention on cuBLAS: the chunk is one sequence at consecutive positions (scratch bounded).
  bool gemm_attn = prefill_attention_on_tensor_cores() && T > 16 && sp.head_dim_k % 8 == 0 && sp.head_dim_v % 8 == 0;
  // With Q and P as f16 pairs only the fused kernel runs (else the f32 attention kernels below).
  const bool split16 = I.split16_attention();
  if (gemm_attn && split16)
    gemm_attn = attention_flash_fits(I.flash_attention, int(sp.n_head), int(sp.n_head_kv), int(sp.head_dim_k),
                                     int(sp.head_dim_v));
  for (int t = 1; t < T && gemm_attn; ++t)
    gemm_attn = tok(t).seq == tok(0).seq && tok(t).pos == tok(0).pos + t;
  const int64_t p0 = tok(0).pos;
  if (gemm_attn) {
    const size_t need = attention_gemm_scratch_bytes(T, int(sp.n_head), int(sp.head_dim_k), p0 + T);
    const size_t need16 = I.kv_quant ? I.kv16_bytes(p0 + T, sp) : 0;
    gemm_attn = need + need16 <= (size_t(512) << 20);
    if (gemm_attn) I.attn_scratch.ensure(need);
    if (gemm_attn && I.kv_quant) I.kv16.ensure(need16);
  }
  // Per layer (decode, packed): add+norm -> qgemv q|k|v -> rope+kv -> attention (split, merge) ->
  // qgemv o -> add+norm -> qgemv gate|up -> act -> qgemv down; each producer writes its consumer's
  // input layout (ActOut), and the residual add of a layer's output is fused into the next norm.
  auto enqueue = [&] {
    I.mark(Impl::kEmbed);
    if (graphable) copy_from_mapped(I.tab_host.dev, I.tabs.p, total, st);
    if (model_)
      cuda_ok(cudaMemcpyAsync(x, dt + o_emb, size_t(T * d) * 4, cudaMemcpyDeviceToDevice, I.stream), "embed");
    else
      embed_rows_bf16(I.embd.as<uint16_t>(), reinterpret_cast<const int32_t*>(dt + o_tok), T, int(d), sp.embd_scale, x,
                      st);

    for (int64_t il = 0; il < sp.n_layer; ++il) {
      const Impl::Layer& L = I.layers[size_t(il)];
      const bool swa = sp.layer_swa[size_t(il)];
      I.l2_prefetch(L.wqkv, T);
      I.mark(Impl::kNorm);
      // Layer 0's norm follows the embedding (which wrote x): never early, so it loads x after its wait.
      const bool early_norm1 = il > 0 && !sp.post_norms && I.small_early(T, Impl::kEarlyNorm);
      if (!I.skips(Impl::kSkipNorm, T))
        add_rmsnorm(x, il > 0 ? o : nullptr, L.attn_norm.as<float>(), int(d), T, sp.rms_eps, nullptr,
                    I.norm_target(L.wqkv, T, h), st, I.norm_loop, early_norm1, early_norm1 && I.prewait);
      I.gemm_ready(L.wqkv, h, T, qkv, nullptr, true, I.norm_codes(L.wqkv, T));
      I.l2_prefetch(L.wo, T);  // during rope and attention
      if (sp.qkv_bias || sp.qk_norm) I.mark(Impl::kOther);
      if (sp.qkv_bias) add_bias(qkv, L.bias_qkv.as<float>(), int(nqkv), T, st);
      if (sp.qk_norm) {
        rmsnorm_rows(qkv, qkv, L.q_norm.as<float>(), int(sp.head_dim_k), int(T * sp.n_head), int(sp.n_head), nqkv,
                     nqkv, sp.rms_eps, nullptr, st);
        rmsnorm_rows(qkv + qd, qkv + qd, L.k_norm.as<float>(), int(sp.head_dim_k), int(T * sp.n_head_kv),
                     int(sp.n_head_kv), nqkv, nqkv, sp.rms_eps, nullptr, st);
      }
      const float* rc = d_rope + size_t((swa && any_swa ? 1 : 0) * 2 * T * half);
      RopeKvArgs ra;
      ra.qkv = qkv;
      ra.qkv_stride = nqkv;
      ra.T = T;
      ra.n_head = int(sp.n_head);
      ra.n_head_kv = int(sp.n_head_kv);
      ra.hd_k = int(sp.head_dim_k);
      ra.hd_v = int(sp.head_dim_v);
      ra.n_rot = int(sp.n_rot);
      ra.neox = sp.rope_style == model::RopeStyle::Neox;
      ra.cos = rc;
      ra.sin = rc + T * half;
      ra.pos = d_pos;
      ra.k_cache = reinterpret_cast<uint16_t* const*>(d_ptrs + (2 * il) * T);
      ra.v_cache = reinterpret_cast<uint16_t* const*>(d_ptrs + (2 * il + 1) * T);
      if (!fuse_rope) {
        I.mark(Impl::kRope);
        if (I.kv_quant) rope_and_store_kv_quant(ra, I.klay, I.vlay, st);
        else rope_and_store_kv(ra, st);
      }

      const AttentionShape shape{qkv, nqkv, att, T, int(sp.n_head), int(sp.n_head_kv), int(sp.head_dim_k),
                                 int(sp.head_dim_v), sp.attn_scale, sp.attn_softcap};
      AttentionArgs aa;
      static_cast<AttentionShape&>(aa) = shape;
      aa.pos = d_pos;
      aa.k_cache = ra.k_cache;
      aa.v_cache = ra.v_cache;
      aa.window = swa ? sp.sliding_window : 0;
      aa.splits = splits;
      aa.part = I.part.as<float>();
      aa.counters = I.counters.as<unsigned>();
      aa.early_launch = !sp.qkv_bias && !sp.qk_norm && I.attn_early(T, L.wqkv);
      aa.prewait_loads = I.prewait && aa.early_launch;
      aa.half_warp_keys = I.attn_half_warp;
      if (fuse_rope) {
        aa.rope_cos = ra.cos;
        aa.rope_sin = ra.sin;
        aa.rope_neox = ra.neox;
      }
      if (gemm_attn && !swa) {
        const Impl::Sequence& s0 = I.seqs.at(tok(0).seq);
        GemmAttentionArgs ga;
        static_cast<AttentionShape&>(ga) = shape;
        ga.p0 = p0;
        ga.k_cache = I.k_ptr(s0, il);
        ga.v_cache = I.v_ptr(s0, il);
        if (I.kv_quant) {  // the run's keys and values (positions 0 .. p0 + T - 1) as f16, then as for f16
          I.mark(Impl::kDequant);
          uint16_t* k16 = I.kv16.as<uint16_t>();
          uint16_t* v16 = k16 + size_t((p0 + T) * kvk);
          const auto* kq = reinterpret_cast<const uint8_t*>(ga.k_cache);
          const auto* vq = reinterpret_cast<const uint8_t*>(ga.v_cache);
          if (I.kv_codes_prefill(sp)) {
            const int64_t stride = kv_scale_stride(p0 + T);
            float* ks = reinterpret_cast<float*>(I.kv16.as<uint8_t>() + I.kv16_scales_offset(p0 + T));
            float* vs = ks + size_t(sp.n_head_kv) * size_t(stride);
            kv_codes_f16(kq, I.klay, p0 + T, k16, ks, stride, st);
            kv_codes_f16(vq, I.vlay, p0 + T, v16, vs, stride, st);
            ga.k_scale = ks;
            ga.v_scale = vs;
            ga.scale_stride = stride;
          } else {
            kv_dequantize_f16(kq, I.klay, p0 + T, k16, st);
            kv_dequantize_f16(vq, I.vlay, p0 + T, v16, st);
          }
          ga.k_cache = k16;
          ga.v_cache = v16;
        }
        ga.scratch = I.attn_scratch.p;
        ga.flash = I.flash_attention;
        ga.split16 = split16;
        // The fused kernel writes wo's input rows itself where those are 16-bit rows (prefill).
        const ActOut to_wo = I.target(L.wo, T, att);
        const bool direct = attention_flash_takes(ga) && to_wo.half_rows && !to_wo.frag;
        if (direct) {
          ga.act = to_wo;
          ga.out = nullptr;  // no f32 copy: the product reads the 16-bit rows
        }
        I.mark(Impl::kAttn);
        QB_CHECK(attention_gemm(I.blas, ga, st), "cuda: attention_gemm refused its shapes");
        if (direct) I.gemm_ready(L.wo, att, T, o);
        else I.gemm_f32(L.wo, att, T, o);
      } else {
        const ActOut to_wo = I.target(L.wo, T, att);
        const bool direct = splits > 0 && (!to_wo.frag || (sp.head_dim_v % 2 == 0 && ad % 64 == 0));
        if (direct) {  // the merge kernel writes wo's input itself (att too, when that is the input)
          aa.out = nullptr;
          aa.act = to_wo;
        }
        I.mark(Impl::kAttn);
        if (!I.skips(Impl::kSkipAttn, T)) {
          if (I.kv_quant) attention_kvq(aa, I.klay, I.vlay, st);
          else attention(aa, st);
        }
        if (direct) I.gemm_ready(L.wo, att, T, o);
        else I.gemm_f32(L.wo, att, T, o);
      }
      if (sp.post_norms) {
        I.mark(Impl::kOther);
        rmsnorm_rows(o, o, L.post_attn_norm.as<float>(), int(d), T, 1, d, d, sp.rms_eps, nullptr, st);
      }
      I.l2_prefetch(L.wgu, T);
      I.mark(Impl::kNorm);
      const bool early_norm2 = !sp.post_norms && I.small_early(T, Impl::kEarlyNorm);
      if (!I.skips(Impl::kSkipNorm, T))
        add_rmsnorm(x, o, L.ffn_norm.as<float>(), int(d), T, sp.rms_eps, nullptr, I.norm_target(L.wgu, T, h), st,
                    I.norm_loop, early_norm2, early_norm2 && I.prewait);
      const ActOut to_down = I.act_target(L.wdown, T, I.g.as<float>());
      const bool act_fused = I.gemm_gated(L.wgu, T, int(ff), act, to_down);  // writes down's input itself
      if (!act_fused) {  // (fused: the products run back to back, with no small kernel to hide a prefetch)
        I.gemm_ready(L.wgu, h, T, I.gu.as<float>(), nullptr, true, I.norm_codes(L.wgu, T));
        I.l2_prefetch(L.wdown, T);
        I.mark(Impl::kAct);
        if (!I.skips(Impl::kSkipAct, T))
          gated_act_out(I.gu.as<float>(), int(ff), T, act, to_down, st, I.small_early(T, Impl::kEarlyAct),
                        L.wgu.gate_up16);
      }
      // After the fused gate|up, down is launched plainly: launched early right after a product it was no
      // faster (w4g128, w8 at 16 streams; docs/perf.md, session 15), as in session 8.
      I.gemm_ready(L.wdown, I.g.as<float>(), T, o, act_fused ? I.xfrag2.p : nullptr, !act_fused,
                   I.act_codes(L.wdown, T));
      if (sp.post_norms) {
        I.mark(Impl::kOther);
        rmsnorm_rows(o, o, L.post_ffn_norm.as<float>(), int(d), T, 1, d, d, sp.rms_eps, nullptr, st);
      }
    }

    if (R > 0) {
      // The last layer's residual add and the output norm, for the wanted rows only.
      I.l2_prefetch(I.output, T);
      I.mark(Impl::kNorm);
      add_rmsnorm(x, sp.n_layer > 0 ? o : nullptr, I.output_norm.as<float>(), int(d), R, sp.rms_eps, d_rows,
                  I.norm_target(I.output, R, h), st, I.norm_loop,
                  sp.n_layer > 0 && !sp.post_norms && I.small_early(T, Impl::kEarlyNorm));
      I.gemm_ready(I.output, h, R, I.logits.as<float>(), nullptr, true, I.norm_codes(I.output, R));
      if (sp.final_softcap > 0) {
        I.mark(Impl::kOther);
        softcap_inplace(I.logits.as<float>(), int64_t(R) * sp.n_vocab, sp.final_softcap, st);
      }
    }
    I.l2_join();
    if (graphable && greedy && R > 0) argmax_rows(I.logits.as<float>(), int(sp.n_vocab), R, static_cast<int32_t*>(I.out_host.dev), st);
  };
  I.prof_begin();
  if (graphable) {
    const std::vector<const void*> addr = {I.tabs.p, I.x.p,  I.h.p,      I.qkv.p,  I.att.p, I.o.p,
                                           I.gu.p,   I.g.p,  I.xb.p,     I.logits.p, I.part.p, I.xfrag.p, I.xfrag2.p, I.counters.p,
                                           I.tab_host.dev, greedy ? I.out_host.dev : nullptr};
    Impl::Graph& gr = I.graphs[{T, 4 * R + (greedy ? 2 : 0) + (fuse_rope ? 1 : 0)}];
    if (!gr.exec || gr.addr != addr || gr.table_bytes != total) {
      if (gr.exec) cudaGraphExecDestroy(gr.exec);
      gr.exec = nullptr;
      cuda_ok(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal), "begin capture");
      try {
        enqueue();
      } catch (...) {
        cudaGraph_t g = nullptr;
        cudaStreamEndCapture(st, &g);
        if (g) cudaGraphDestroy(g);
        throw;
      }
      cudaGraph_t g = nullptr;
      cuda_ok(cudaStreamEndCapture(st, &g), "end capture");
      const cudaError_t e = cudaGraphInstantiate(&gr.exec, g, 0);
      cudaGraphDestroy(g);
      cuda_ok(e, "graph instantiate");
      gr.addr = addr;
      gr.table_bytes = total;
    }
    cuda_ok(cudaGraphLaunch(gr.exec, st), "graph launch");
    if (span && I.step_span == 2) {  // the same step again, queued behind the first run (timing experiment)
      cuda_ok(cudaEventRecord(I.span_ev[2], st), "span event");
      cuda_ok(cudaGraphLaunch(gr.exec, st), "graph launch");
    }
  } else {
    enqueue();
  }
  if (R > 0 && greedy) {
    if (!graphable) {  // (graphed: the graph's argmax wrote the ids to out_host)
      I.mark(Impl::kArgmax);
      argmax_rows(I.logits.as<float>(), int(sp.n_vocab), R, I.ids.as<int32_t>(), st);
      I.prof_end(T);
      cuda_ok(cudaMemcpyAsync(I.out_host.p, I.ids.p, size_t(R) * 4, cudaMemcpyDeviceToHost, st), "ids download");
    } else {
      I.prof_end(T);
    }
    if (span) cuda_ok(cudaEventRecord(I.span_ev[1], st), "span event");
    cuda_ok(cudaStreamSynchronize(st), "forward");
    if (span) {
      Impl::Span& v = I.spans[T];
      float ms = 0;
      if (I.step_span == 2 && graphable) {
        cuda_ok(cudaEventElapsedTime(&ms, I.span_ev[2], I.span_ev[1]), "span elapsed");
        v.queued_ms += ms;
        ++v.queued_n;
        cuda_ok(cudaEventElapsedTime(&ms, I.span_ev[0], I.span_ev[2]), "span elapsed");
      } else {
        cuda_ok(cudaEventElapsedTime(&ms, I.span_ev[0], I.span_ev[1]), "span elapsed");
      }
      v.ms += ms;
      ++v.n;
    }
    std::memcpy(ids_out, I.out_host.p, size_t(R) * 4);
  } else if (R > 0) {
    I.prof_end(T);
    const size_t bytes = size_t(R) * size_t(sp.n_vocab) * 4;
    I.out_host.ensure(bytes);
    cuda_ok(cudaMemcpyAsync(I.out_host.p, I.logits.p, bytes, cudaMemcpyDeviceToHost, st), "logits download");
    cuda_ok(cudaStreamSynchronize(st), "forward");
    std::memcpy(logits_out, I.out_host.p, bytes);
  } else {
    I.prof_end(T);
    cuda_ok(cudaStreamSynchronize(st), "forward");
  }
  I.refuse_nonfinite_activations();
  return size_t(R);
}

}  // namespace qb::runtime::cuda
