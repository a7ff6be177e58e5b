// Private to the CUDA backend's .cpp files (cuda_backend*.cpp), not part of its interface: the device
// state behind CudaBackend (CudaBackend::Impl) and the device buffers and matrices it holds. The public
// header is cuda_backend.h. Impl's longer methods are defined by job in cuda_backend_weights.cpp (weight
// upload, synthetic weights), cuda_backend_products.cpp (matrix products), cuda_backend_describe.cpp
// (Manifest notes, profiling totals), cuda_backend_step.cpp (rope angles, a step's checks) and
// cuda_backend.cpp (KV cache pool, teardown).
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "quantbench/core/error.h"
#include "quantbench/runtime/cpu/rope.h"
#include "quantbench/runtime/cuda/cuda_backend.h"
#include "quantbench/runtime/cuda/forward_kernels.h"
#include "quantbench/runtime/cuda/host/weight_repack.h"
#include "quantbench/runtime/cuda/kv_quant.h"
#include "quantbench/runtime/cuda/qgemm.h"
#include "quantbench/runtime/cuda/qgemv.h"
#include "quantbench/runtime/cuda/w8a8.h"
#include "quantbench/runtime/cuda/w8a8_fp8_tc.h"

namespace qb::runtime::cuda {

inline void cuda_ok(cudaError_t e, const char* what) {
  if (e != cudaSuccess) fail("cuda: {}: {}", what, cudaGetErrorString(e));
}
inline void blas_ok(cublasStatus_t e, const char* what) {
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
  std::string early_small_note(bool overlap) const;
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
  std::string fp8_path(const Mat& m) const;
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
  static std::string mma_loop_note();
  std::string int8_path(const Mat& m) const;
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
  void l2_prefetch(const Mat& next, int T);
  void l2_join();  // the side stream rejoins the main one (a captured graph must end on one stream)

  // Rope angles by position, per variant (0: global, 1: sliding-window layers): cos then sin, n_rot / 2
  // floats each, exactly as cpu::rope_angles gives them (double arithmetic: the CPU backend's floats).
  // Kept once computed, for positions below kRopeCacheMax: the trigonometry of a 512-token prefill
  // took about 1.7 ms on the host, with the GPU idle, before its first launch (docs/perf.md session 8).
  static constexpr int64_t kRopeCacheMax = int64_t(1) << 16;
  std::vector<float> rope_cache[2];  // positions 0, 1, ... in order, 2 * (n_rot / 2) floats each
  void rope_row(int variant, const cpu::RopeParams& rp, int64_t pos, float* cos_out, float* sin_out);

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
  DevBuf take_kv(int64_t cap);
  // The pool holds at most 16 caches and 4 GiB (oldest dropped first).
  void give_kv(DevBuf&& b);

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
  void refuse_nonfinite_activations();

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
  void prof_end(int T);

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

  ~Impl();

  size_t elem() const { return dense == DenseType::Bits16 ? 2 : 4; }

  // One stack's dense host rows in 16 bits: f16 unless a part is bf16 (kept exact) or a value is out
  // of f16's finite range, then bf16. Returns whether f16 was used.
  bool dense16_rows(std::initializer_list<const model::WeightMatrix*> parts, const std::vector<PartPlan>& plans,
                    int64_t n_in, std::vector<uint16_t>& out);

  // Uploads matrices stacked along n_out (q|k|v, gate|up) as one: packed when every part has the same
  // packed spec (and packing is on), else dense in the backend's DenseType (dequantized on the host).
  // W8A8 (per-token int8 or fp8 activations, CPU: runtime/cpu/matmul_w8a8.h): int8 codes (stored
  // q + 128) as signed int8, e4m3 codes as they are, scales as f32, exactly. Every part of a stack must
  // have the same activation type.
  Mat upload_w8a8(std::initializer_list<const model::WeightMatrix*> parts, const std::string& what);
  void note_w8a8(const Mat& m);
  // Synthetic W8A8: random codes (fp8: exponent bit 0 cleared, so no NaN code) and scales.
  Mat synthetic_w8a8(int64_t n_out, int64_t n_in, uint64_t seed, bool fp8);

  bool w8a8_enabled = true;  // CudaBackendOptions::w8a8 (QB_CUDA_W8A8=0 turns it off)
  bool fuse_gated_act = true;  // CudaBackendOptions::fuse_gated_act
  int fuse_act_min_t = 1;       // QB_CUDA_FUSE_ACT_MIN_T: the fewest tokens a fused step takes (A/B runs)
  // gate|up in interleaved row blocks of 16 where that is possible: packed, and n_ff a multiple of 16.
  bool interleave_gate_up(int64_t n_ff) const { return fuse_gated_act && n_ff % 16 == 0; }
  // `gate_up`: parts are (gate, up); packed, their rows are interleaved in blocks of 16 where
  // interleave_gate_up allows (Mat::gate_up16).
  Mat upload_stacked(std::initializer_list<const model::WeightMatrix*> parts, const std::string& what,
                     bool gate_up = false);
  Mat upload_parts(std::initializer_list<const model::WeightMatrix*> parts, const std::string& what, bool gate_up);

  // Random weights made on the device (synthetic models): packed in `spec`, or dense bf16 for BF16.
  // Scales put the weights' spread near 1/sqrt(n_in) so activations stay in range through the layers.
  Mat synthetic(const QuantSpec& spec, int64_t n_out, int64_t n_in, uint64_t seed, const std::string& what);
  // A synthetic stack of parts in different packed formats (Mat::segments), as upload_stacked makes
  // of a file's; dense bf16 as a whole where split stacks are off (as upload_stacked does then).
  Mat synthetic_stack(const std::vector<std::pair<QuantSpec, int64_t>>& parts, int64_t n_in,
                      const std::function<uint64_t()>& seed, const std::string& what);

  // The input a product with `m` over T tokens reads, i.e. where the kernel producing it writes:
  // packed, decode: the qgemv fragments (f16, or bf16 for bf16 weights); packed, prefill: f16 rows
  // (for the dequantized scratch matrix); dense 16-bit: f16 or bf16 rows, as the weights; dense f32:
  // the f32 rows themselves.
  ActOut target(const Mat& m, int T, float* f32_rows) const;

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
  ActOut norm_target(const Mat& m, int T, float* f32_rows) const;
  ActOut act_target(const Mat& m, int T, float* f32_rows) const;
  ActOut codes_target(const Mat& m, int T) const;

  // y[T][n_out] (f32) = x[T][n_in] W^T, the input already written to target(m, T, x) by its producer
  // (packed decode: into `frag_in` where given, else xfrag).
  // `early`: false keeps a packed decode product from launching early (programmatic dependent launch)
  // where the kernel before it is a product too (the down product after gemm_gated).
  // `codes_ready`: a W8A8 product's input was written as codes by its producer (norm_target, act_target).
  void gemm_ready(const Mat& m, const float* x, int T, float* y, const void* frag_in = nullptr, bool early = true,
                  bool codes_ready = false);

  // One packed product: decode, prefill without qgemm, or a split stack's part (prefill on qgemm where
  // it takes the part); y's rows at stride ldy (the whole stack's n_out).
  void packed_product(const DeviceMatrix& pk, int T, float* y, int64_t ldy, const void* frag_in, bool early);

  // The gate|up product of a decode step with the gated activation in its epilogue, writing the down
  // product's input into xfrag2 (QgemvGatedOut): where the matrix is interleaved (Mat::gate_up16), the
  // step has 1..16 tokens and the launch shape chosen for it pairs its row blocks. False: nothing ran
  // (the caller runs the product and the activation kernel).
  // On an H100 (docs/perf.md, session 15): one stream, w4g128 within noise of the activation kernel
  // once the one-token loop was rewritten (before, the fused kernel compiled 18% slower and the step
  // lost 4%); 16 streams, w4g128 equal (its fused 16-token kernel is 1.4 us slower, about what the
  // activation kernel costs) and w8 1.1-1.4% faster.
  bool gemm_gated(const Mat& m, int T, int n_ff, int act, const ActOut& to_down);

  // f32 rows already in x -> the product's input, then the product (for producers that cannot write
  // the target themselves).
  void gemm_f32(const Mat& m, float* x, int T, float* y);
};

}  // namespace qb::runtime::cuda
