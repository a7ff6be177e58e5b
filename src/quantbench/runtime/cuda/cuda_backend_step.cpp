// See cuda_backend_impl.h. One chunk of a forward pass (CudaBackend::run_chunk): the step's host tables
// (rope angles, positions, cache pointers), the launch sequence, the decode graph and the results.
#include <algorithm>
#include <cstring>
#include <set>
#include <vector>

#include "quantbench/runtime/cuda/cuda_backend_impl.h"

namespace qb::runtime::cuda {

using model::ModelSpec;

void CudaBackend::Impl::rope_row(int variant, const cpu::RopeParams& rp, int64_t pos, float* cos_out,
                                 float* sin_out) {
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

void CudaBackend::Impl::refuse_nonfinite_activations() {
  if (!nonfinite_host.p) return;
  auto* word = static_cast<volatile unsigned*>(nonfinite_host.p);
  if (*word == 0u) return;
  *word = 0u;
  fail("w8a8: an input row of a W8A8 product is not finite (NaN or infinity): the CPU backend refuses it too "
       "(its quantizer), so this step's logits are not returned");
}

using Impl = CudaBackend::Impl;

namespace {

// One chunk's step once its tables are built: its sizes, the choices made for it, and where its device
// tables and activations live. The launch sequence below reads only this and Impl, so a decode-sized step
// is a pure function of them (run_chunk captures it as a graph).
struct StepPlan {
  const ModelSpec* sp = nullptr;
  bool has_model = false;  // embeddings from the model file (in the table); else a synthetic model's bf16 rows
  int T = 0, R = 0;        // tokens, rows that want logits
  int64_t d = 0, qd = 0, ad = 0, ff = 0, nqkv = 0, kvk = 0, half = 0;
  bool any_swa = false;  // some layers use sliding-window rope angles (the table's second set)
  int splits = 0;        // attention's key splits (0: not split)
  bool graphable = false, greedy = false, fuse_rope = false;
  bool gemm_attn = false, split16 = false;  // prefill attention on the tensor cores; Q and P as f16 pairs
  int64_t p0 = 0;                            // gemm_attn: the chunk's sequence and first position
  SeqId seq0 = 0;
  int act = 0;  // gated activation: 0 SiLU, 1 GELU
  size_t total = 0, o_emb = 0, o_tok = 0;  // the table's size and the offsets the step reads on the device
  uint8_t* dt = nullptr;
  void* const* d_ptrs = nullptr;
  const int64_t* d_pos = nullptr;
  const int32_t* d_rows = nullptr;
  const float* d_rope = nullptr;
  float *x = nullptr, *h = nullptr, *qkv = nullptr, *att = nullptr, *o = nullptr;
  cudaStream_t st = nullptr;
};

// A layer's rope + KV write, attention and o product (after q|k|v): split-key attention at decode, the
// fused or cuBLAS prefill attention where gemm_attn, each writing o's input layout itself where it can.
void enqueue_attention(Impl& I, const StepPlan& P, const Impl::Layer& L, int64_t il, bool swa) {
  const ModelSpec& sp = *P.sp;
  const int T = P.T, splits = P.splits;
  const int64_t nqkv = P.nqkv, half = P.half, kvk = P.kvk, ad = P.ad, p0 = P.p0;
  const bool any_swa = P.any_swa, fuse_rope = P.fuse_rope, gemm_attn = P.gemm_attn, split16 = P.split16;
  const float* d_rope = P.d_rope;
  const int64_t* d_pos = P.d_pos;
  void* const* d_ptrs = P.d_ptrs;
  float *qkv = P.qkv, *att = P.att, *o = P.o;
  cudaStream_t st = P.st;
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
    const Impl::Sequence& s0 = I.seqs.at(P.seq0);
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
}

// One layer (decode, packed): add+norm -> qgemv q|k|v -> rope+kv -> attention (split, merge) -> qgemv o
// -> add+norm -> qgemv gate|up -> act -> qgemv down; each producer writes its consumer's input layout
// (ActOut), and the residual add of a layer's output is fused into the next norm.
void enqueue_layer(Impl& I, const StepPlan& P, int64_t il) {
  const ModelSpec& sp = *P.sp;
  const int T = P.T, act = P.act;
  const int64_t d = P.d, qd = P.qd, nqkv = P.nqkv, ff = P.ff;
  float *x = P.x, *h = P.h, *qkv = P.qkv, *o = P.o;
  cudaStream_t st = P.st;
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
  enqueue_attention(I, P, L, il, swa);
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

// The whole step's launch sequence: the table and embeddings, every layer, the output norm and product
// for the wanted rows, and (graphed greedy steps) the argmax into the mapped host buffer.
void enqueue_step(Impl& I, const StepPlan& P) {
  const ModelSpec& sp = *P.sp;
  const int T = P.T, R = P.R;
  const int64_t d = P.d;
  const bool graphable = P.graphable, greedy = P.greedy;
  const size_t total = P.total, o_emb = P.o_emb, o_tok = P.o_tok;
  uint8_t* dt = P.dt;
  const int32_t* d_rows = P.d_rows;
  float *x = P.x, *h = P.h, *o = P.o;
  cudaStream_t st = P.st;
  I.mark(Impl::kEmbed);
  if (graphable) copy_from_mapped(I.tab_host.dev, I.tabs.p, total, st);
  if (P.has_model)
    cuda_ok(cudaMemcpyAsync(x, dt + o_emb, size_t(T * d) * 4, cudaMemcpyDeviceToDevice, I.stream), "embed");
  else
    embed_rows_bf16(I.embd.as<uint16_t>(), reinterpret_cast<const int32_t*>(dt + o_tok), T, int(d), sp.embd_scale, x,
                    st);

  for (int64_t il = 0; il < sp.n_layer; ++il) enqueue_layer(I, P, il);

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
  if (graphable && greedy && R > 0)
    argmax_rows(I.logits.as<float>(), int(sp.n_vocab), R, static_cast<int32_t*>(I.out_host.dev), st);
}

// run_chunk's graphed step: the graph for this step's shape (tokens, logits rows, greedy, fused rope),
// captured from `enqueue` (run_chunk's launch sequence) where it is new or was captured with other buffer
// addresses or table size, then launched.
template <class Enqueue>
void run_graphed(Impl& I, cudaStream_t st, int T, int R, bool greedy, bool fuse_rope, size_t total, bool span,
                 const Enqueue& enqueue) {
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
}

// run_chunk's results once the step is queued: the greedy ids (argmax here unless the graph ran it) into
// ids_out, else the wanted rows' logits into logits_out; waits for the stream (and with QB_CUDA_STEP_SPAN,
// adds the step's span).
void finish_chunk(Impl& I, const ModelSpec& sp, cudaStream_t st, int T, int R, bool greedy, bool graphable,
                  bool span, float* logits_out, int32_t* ids_out) {
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
}

}  // namespace

bool CudaBackend::prefill_attention_on_tensor_cores() const {
  return options_.gemm_attention && impl_->dense == DenseType::Bits16;
}

// One chunk of a validated batch (tokens c0 .. c0 + T - 1, caches already large enough): the whole
// forward pass, logits of its wanting tokens copied to `logits_out`. Returns the number of rows.
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
  // With Q and P as f16 pairs only the fused kernel runs (else the f32 attention kernels: enqueue_attention).
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
  const StepPlan P{.sp = &sp, .has_model = model_ != nullptr, .T = T, .R = R,
                   .d = d, .qd = qd, .ad = ad, .ff = ff, .nqkv = nqkv, .kvk = kvk, .half = half,
                   .any_swa = any_swa, .splits = splits, .graphable = graphable, .greedy = greedy,
                   .fuse_rope = fuse_rope, .gemm_attn = gemm_attn, .split16 = split16, .p0 = p0, .seq0 = tok(0).seq,
                   .act = act, .total = total, .o_emb = o_emb, .o_tok = o_tok, .dt = dt, .d_ptrs = d_ptrs,
                   .d_pos = d_pos, .d_rows = d_rows, .d_rope = d_rope, .x = x, .h = h, .qkv = qkv, .att = att,
                   .o = o, .st = st};
  auto enqueue = [&] { enqueue_step(I, P); };
  I.prof_begin();
  if (graphable) {
    run_graphed(I, st, T, R, greedy, fuse_rope, total, span, enqueue);
  } else {
    enqueue();
  }
  finish_chunk(I, sp, st, T, R, greedy, graphable, span, logits_out, ids_out);
  I.refuse_nonfinite_activations();
  return size_t(R);
}

}  // namespace qb::runtime::cuda
