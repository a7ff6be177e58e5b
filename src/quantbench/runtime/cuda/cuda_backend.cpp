// See cuda_backend.h. Host side of the CUDA forward pass: weight upload, sequence caches, batch
// validation (the same rules and messages as the CPU backend, checked before any cache changes),
// rope angles (computed on the host with the reference's cpu::rope_angles, so both backends rotate
// by identical f32 angles) and the launch sequence. One stream; forward() returns after the logits
// (forward_greedy: the argmax ids) are back in pinned memory (a graphed step's argmax writes its ids
// there directly, and its first kernel reads the step's table from there). A profiling mode brackets
// kernel classes with events. This file: construction, the device, sequences and forward(); the device
// state and where its other parts live: cuda_backend_impl.h.
#include "quantbench/runtime/cuda/cuda_backend.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>

#include "quantbench/runtime/cuda/cuda_backend_impl.h"
#include "quantbench/runtime/cuda/probes.h"

namespace qb::runtime::cuda {

using model::ModelSpec;

namespace {

DevBuf upload_vec(const std::vector<float>& v) {
  DevBuf b(v.size() * sizeof(float));
  if (!v.empty()) cuda_ok(cudaMemcpy(b.p, v.data(), b.bytes, cudaMemcpyHostToDevice), "upload");
  return b;
}

}  // namespace

DevBuf CudaBackend::Impl::take_kv(int64_t cap) {
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

void CudaBackend::Impl::give_kv(DevBuf&& b) {
  if (!b.p) return;
  kv_pool.push_back(std::move(b));
  size_t total = 0;
  for (const auto& k : kv_pool) total += k.bytes;
  while (!kv_pool.empty() && (kv_pool.size() > 16 || total > (size_t(4) << 30))) {
    total -= kv_pool.front().bytes;
    kv_pool.erase(kv_pool.begin());
  }
}

CudaBackend::Impl::~Impl() {
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
  // Prefill in shorter chunks: the same arithmetic in another order (short chunks run the decode kernels and the
  // split attention), the one sample eval's perplexity has of what such a change moves (bench/gpu/ab/checks.sh).
  if (const char* e = std::getenv("QB_CUDA_PREFILL_CHUNK")) {
    char* end = nullptr;
    const long chunk = std::strtol(e, &end, 10);
    QB_CHECK(end != e && *end == '\0' && chunk >= 1 && chunk <= (1 << 20),
             "QB_CUDA_PREFILL_CHUNK={}: expected a token count from 1 to 1048576", e);
    options_.prefill_chunk = int(chunk);
  }
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

}  // namespace qb::runtime::cuda
