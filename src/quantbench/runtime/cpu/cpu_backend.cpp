// See cpu_backend.h. The forward pass reads like the model's definition: embed, then per layer
// norm → QKV → (qk-norm) → rope → cache → attention → out-proj → (post-norm) → residual, norm → gated
// MLP → (post-norm) → residual; final norm and logits only for the rows that asked for them.
#include "quantbench/runtime/cpu/cpu_backend.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "quantbench/core/error.h"
#include "quantbench/runtime/cpu/attention.h"
#include "quantbench/runtime/cpu/gated_mlp.h"
#include "quantbench/runtime/cpu/matmul.h"
#include "quantbench/runtime/cpu/matmul_intk_driver.h"
#include "quantbench/runtime/cpu/matmul_w8a8.h"
#include "quantbench/runtime/cpu/rmsnorm.h"
#include "quantbench/runtime/cpu/rope.h"

namespace qb::runtime::cpu {

using model::ModelSpec;

CpuBackend::CpuBackend(std::shared_ptr<const model::Model> model, CpuBackendOptions options)
    : model_(std::move(model)), options_(options), pool_(options.n_threads) {
  QB_CHECK(model_ != nullptr, "CpuBackend: no model");
}

std::string CpuBackend::name() const { return options_.mode == CpuMode::Reference ? "cpu-reference" : "cpu-fast"; }

static std::string cpu_isa() {
  std::string s = "x86-64";
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2")) s += " avx2";
  if (__builtin_cpu_supports("fma")) s += " fma";
  if (__builtin_cpu_supports("avx512f")) s += " avx512f";
#else
  s = "unknown";
#endif
  return s;
}

std::string CpuBackend::describe() const {
  std::set<formats::GgmlType> types;
  std::set<std::string> own_paths;  // quantbench formats: what runs each distinct layout
  const auto& m = *model_;
  types.insert(m.output.type);
  for (const auto& l : m.layers)
    for (const auto* w : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down})
      if (w->quantized)
        own_paths.insert(options_.mode == CpuMode::Reference ? "reference decoder (quant::matvec)"
                                                             : describe_intk_path(*w->quantized));
      else types.insert(w->type);
  std::string paths;
  for (const auto& p : own_paths) paths += (paths.empty() ? "quantbench formats: " : "; ") + p;
  for (auto t : types) {
    const std::string p = options_.mode == CpuMode::Reference
                              ? "reference (dequantize row to f32, double accumulation)"
                              : describe_fast_path(t);
    paths += fmt::format("{}{}: {}", paths.empty() ? "" : "; ", formats::ggml_type_name(t), p);
  }
  if (options_.mode == CpuMode::Fast && options_.dequant_gemm_prefill)
    paths += "; prefill: " + describe_dequant_gemm_path();
  const char* attention = options_.mode == CpuMode::Reference
                              ? "norms/rope/attention in f32 with double accumulation"
                              : "norms/rope in f32 with double accumulation; attention in f32";
  return fmt::format("{} on {} ({} threads); matmul: {}; activations: {}; kv cache {}; {}; weights: {}", name(),
                     cpu_isa(), pool_.size(), paths, describe_activations(), kv_type_name(options_.kv), attention,
                     m.describe_weight_types());
}

std::string CpuBackend::describe_activations() const {
  // What reaches each matrix product: W8A8 matrices quantize their input per token in either mode; the
  // fast kernels for quantized weights multiply integers, so they quantize the f32 activations to 8-bit
  // blocks first, as llama.cpp does (describe_fast_path, describe_intk_path); the reference path and
  // f32 / f16 weights take the f32 values.
  const auto input_of = [&](const WeightMatrix& w) -> std::string {
    if (w.act != ActQuant::None) return describe_act_quant(w.act);
    const bool q8 = options_.mode == CpuMode::Fast &&
                    (w.quantized ? has_intk_kernel(*w.quantized) : fast_kernel_quantizes_activations(w.type));
    if (!q8) return "f32";
    return fmt::format("{} (as llama.cpp quantizes them for integer dot products{})", kQuantizedActivationsLabel,
                       options_.dequant_gemm_prefill
                           ? fmt::format("; f32 in batches of >= {} tokens, which dequantize the weights",
                                         kDequantGemmMinTokens)
                           : std::string());
  };
  std::map<std::string, int64_t> count;
  ++count[input_of(model_->output)];
  for (const auto& l : model_->layers)
    for (const auto* w : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) ++count[input_of(*w)];
  if (count.size() == 1 && count.begin()->first == "f32") return "f32 into every matmul";
  std::string s;
  for (const auto& [what, n] : count)
    s += fmt::format("{}{} at the input of {} matri{}", s.empty() ? "" : "; ", what, n, n == 1 ? "x" : "ces");
  return s + "; norms, rope and attention in f32";
}

std::string CpuBackend::describe_kv_cache() const {
  const ModelSpec& sp = spec();
  const KvLayout k = KvLayout::make(options_.kv, sp.n_head_kv, sp.head_dim_k);
  const KvLayout v = KvLayout::make(options_.kv, sp.n_head_kv, sp.head_dim_v);
  if (sp.head_dim_k == sp.head_dim_v) return "K and V: " + k.describe();
  return "K: " + k.describe() + "; V: " + v.describe();
}

SeqId CpuBackend::create_sequence(int64_t max_len) {
  const int64_t ctx = spec().n_ctx_train;
  if (max_len <= 0) max_len = ctx;
  QB_CHECK(max_len <= ctx, "create_sequence: max_len {} exceeds the model's context length {}", max_len, ctx);
  Sequence s;
  s.max_len = max_len;
  const KvLayout kl = KvLayout::make(options_.kv, spec().n_head_kv, spec().head_dim_k);
  const KvLayout vl = KvLayout::make(options_.kv, spec().n_head_kv, spec().head_dim_v);
  s.k.assign(size_t(spec().n_layer), KvStore(kl));
  s.v.assign(size_t(spec().n_layer), KvStore(vl));
  const SeqId id = next_id_++;
  seqs_.emplace(id, std::move(s));
  return id;
}

CpuBackend::Sequence& CpuBackend::seq_ref(SeqId seq) {
  auto it = seqs_.find(seq);
  QB_CHECK(it != seqs_.end(), "unknown sequence id {}", seq);
  return it->second;
}
const CpuBackend::Sequence& CpuBackend::seq_ref(SeqId seq) const {
  auto it = seqs_.find(seq);
  QB_CHECK(it != seqs_.end(), "unknown sequence id {}", seq);
  return it->second;
}

void CpuBackend::free_sequence(SeqId seq) {
  seq_ref(seq);
  seqs_.erase(seq);
}

int64_t CpuBackend::sequence_length(SeqId seq) const { return seq_ref(seq).length; }

void CpuBackend::truncate_sequence(SeqId seq, int64_t new_length) {
  Sequence& s = seq_ref(seq);
  QB_CHECK(new_length >= 0 && new_length <= s.length, "truncate_sequence: length {} is outside 0..{}", new_length,
           s.length);
  s.length = new_length;
}

MatmulPath CpuBackend::matmul_path() const {
  if (options_.mode == CpuMode::Reference) return MatmulPath::Reference;
  return options_.dequant_gemm_prefill ? MatmulPath::DequantGemm : MatmulPath::Fast;
}

std::map<SeqId, int64_t> CpuBackend::reserve(const Batch& batch) {
  const ModelSpec& sp = spec();
  // Validate everything before touching a cache.
  std::map<SeqId, int64_t> next_pos;
  for (const auto& bt : batch.tokens) {
    Sequence& s = seq_ref(bt.seq);
    auto [it, fresh] = next_pos.try_emplace(bt.seq, s.length);
    QB_CHECK(bt.token >= 0 && bt.token < sp.n_vocab, "forward: token id {} is outside the vocabulary (0..{})",
             bt.token, sp.n_vocab - 1);
    QB_CHECK(bt.pos == it->second, "forward: sequence {} expects position {}, got {}", bt.seq, it->second, bt.pos);
    QB_CHECK(bt.pos < s.max_len, "forward: sequence {} position {} exceeds its maximum length {}", bt.seq, bt.pos,
             s.max_len);
    ++it->second;
  }
  for (const auto& [id, end] : next_pos) {
    Sequence& s = seqs_.at(id);
    for (int64_t il = 0; il < sp.n_layer; ++il) {
      s.k[size_t(il)].ensure(end);
      s.v[size_t(il)].ensure(end);
    }
  }
  return next_pos;
}

std::vector<float> CpuBackend::embed(const Batch& batch) {
  const ModelSpec& sp = spec();
  const int64_t T = int64_t(batch.size()), d = sp.n_embd;
  std::vector<float> x(size_t(T * d));
  for (const auto& bt : batch.tokens)
    QB_CHECK(bt.token >= 0 && bt.token < sp.n_vocab, "forward: token id {} is outside the vocabulary (0..{})",
             bt.token, sp.n_vocab - 1);
  pool_.parallel_for(size_t(T), [&](size_t b, size_t e, int) {
    for (size_t t = b; t < e; ++t) {
      float* xt = x.data() + int64_t(t) * d;
      model_->embedding_row(batch.tokens[t].token, xt);
      if (sp.embd_scale != 1.0f)
        for (int64_t i = 0; i < d; ++i) xt[i] *= sp.embd_scale;
    }
  });
  return x;
}

void CpuBackend::forward_layers(const Batch& batch, std::vector<float>& x, int64_t layer_begin, int64_t layer_end,
                                bool inputs_only) {
  const ModelSpec& sp = spec();
  QB_CHECK(0 <= layer_begin && layer_begin <= layer_end && layer_end <= sp.n_layer,
           "forward_layers: layers [{}, {}) outside the model's {}", layer_begin, layer_end, sp.n_layer);
  QB_CHECK(int64_t(x.size()) == int64_t(batch.size()) * sp.n_embd,
           "forward_layers: {} hidden values for {} tokens of width {}", x.size(), batch.size(), sp.n_embd);
  if (batch.size() == 0) return;
  const auto next_pos = reserve(batch);
  run_layers(batch, x, layer_begin, layer_end, inputs_only);
  for (const auto& [id, end] : next_pos) seqs_.at(id).length = end;
}

Logits CpuBackend::forward(const Batch& batch) {
  const ModelSpec& sp = spec();
  const model::Model& m = *model_;
  const int64_t T = int64_t(batch.size());
  Logits result;
  result.n_vocab = sp.n_vocab;
  if (T == 0) return result;
  const auto next_pos = reserve(batch);
  std::vector<float> x = embed(batch);
  run_layers(batch, x, 0, sp.n_layer);
  const MatmulPath path = matmul_path();
  const int64_t d = sp.n_embd;
  auto rows = [&](int64_t n, auto&& fn) {
    pool_.parallel_for(size_t(n), [&](size_t b, size_t e, int) {
      for (size_t i = b; i < e; ++i) fn(int64_t(i));
    });
  };
  for (size_t t = 0; t < batch.size(); ++t)
    if (batch.tokens[t].want_logits) result.batch_index.push_back(t);
  const int64_t R = int64_t(result.rows());
  if (R > 0) {
    std::vector<float> hn(size_t(R * d));
    rows(R, [&](int64_t r) {
      rmsnorm(x.data() + int64_t(result.batch_index[size_t(r)]) * d, m.output_norm.data(), hn.data() + r * d, d,
              sp.rms_eps);
    });
    result.data.resize(size_t(R * sp.n_vocab));
    matmul(m.output, hn.data(), R, result.data.data(), pool_, path);
    if (sp.final_softcap > 0) {
      const double c = sp.final_softcap;
      for (float& z : result.data) z = float(c * std::tanh(double(z) / c));
    }
  }
  for (const auto& [id, end] : next_pos) seqs_.at(id).length = end;
  return result;
}

void CpuBackend::run_layers(const Batch& batch, std::vector<float>& x, int64_t layer_begin, int64_t layer_end,
                            bool inputs_only) {
  const ModelSpec& sp = spec();
  const model::Model& m = *model_;
  const int64_t T = int64_t(batch.size());
  const int64_t kvk = sp.kv_dim_k(), kvv = sp.kv_dim_v();
  const MatmulPath path = matmul_path();
  const int64_t d = sp.n_embd, qd = sp.q_dim(), ad = sp.n_head * sp.head_dim_v, ff = sp.n_ff;
  const int64_t half = sp.n_rot / 2;
  auto buffer = [](std::vector<float>& b, int64_t n) -> std::vector<float>& {
    if (b.size() < size_t(n)) b.resize(size_t(n));
    return b;
  };
  std::vector<float>& h = buffer(ws_.h, T * d);
  std::vector<float>& q = buffer(ws_.q, T * qd);
  std::vector<float>& k = buffer(ws_.k, T * kvk);
  std::vector<float>& v = buffer(ws_.v, T * kvv);
  std::vector<float>& att = buffer(ws_.att, T * ad);
  std::vector<float>& o = buffer(ws_.o, T * d);
  std::vector<float>& g = buffer(ws_.g, T * ff);
  std::vector<float>& u = buffer(ws_.u, T * ff);
  std::vector<float>& rcos = buffer(ws_.rcos, T * half);
  std::vector<float>& rsin = buffer(ws_.rsin, T * half);
  std::vector<float>& gemm_scores = ws_.gemm_scores;
  // The dequantize-then-GEMM mode also runs attention as GEMMs when the batch is made of runs
  // (consecutive positions of one sequence, each sequence in one run) long enough to pay, over an
  // f32 cache: several calibration samples in one batch, for instance.
  struct Run {
    int64_t t0, n;
  };
  std::vector<Run> runs;
  for (int64_t t = 0; t < T; ++t) {
    const BatchToken& bt = batch.tokens[size_t(t)];
    if (!runs.empty()) {
      const BatchToken& prev = batch.tokens[size_t(t - 1)];
      if (bt.seq == prev.seq && bt.pos == prev.pos + 1) {
        ++runs.back().n;
        continue;
      }
    }
    runs.push_back({t, 1});
  }
  bool gemm_attention = path == MatmulPath::DequantGemm && options_.kv == KvType::F32;
  std::set<SeqId> run_seqs;
  for (const Run& r : runs)
    gemm_attention = gemm_attention && r.n >= kDequantGemmMinTokens && run_seqs.insert(batch.tokens[size_t(r.t0)].seq).second;

  auto observe = [&](int64_t il, const char* what, const float* in, int64_t n_in) {
    if (options_.observer) options_.observer(il, fmt::format("blk.{}.{}.weight", il, what), in, T, n_in);
  };
  auto rows = [&](int64_t n, auto&& fn) {
    pool_.parallel_for(size_t(n), [&](size_t b, size_t e, int) {
      for (size_t i = b; i < e; ++i) fn(int64_t(i));
    });
  };

  for (int64_t il = layer_begin; il < layer_end; ++il) {
    const model::LayerWeights& w = m.layers[size_t(il)];
    const bool swa = sp.layer_swa[size_t(il)];

    rows(T, [&](int64_t t) { rmsnorm(x.data() + t * d, w.attn_norm.data(), h.data() + t * d, d, sp.rms_eps); });
    for (const char* what : {"attn_q", "attn_k", "attn_v"}) observe(il, what, h.data(), d);
    matmul(w.wq, h.data(), T, q.data(), pool_, path);
    matmul(w.wk, h.data(), T, k.data(), pool_, path);
    matmul(w.wv, h.data(), T, v.data(), pool_, path);

    RopeParams rp;
    rp.style = sp.rope_style;
    rp.n_rot = sp.n_rot;
    rp.theta = swa ? sp.rope_theta_swa : sp.rope_theta;
    rp.position_scale = swa ? 1.0 : sp.rope_position_scale;
    rp.freq_factors = m.rope_freqs.empty() ? nullptr : m.rope_freqs.data();
    rows(T, [&](int64_t t) {
      float* qt = q.data() + t * qd;
      float* kt = k.data() + t * kvk;
      float* vt = v.data() + t * kvv;
      if (sp.qkv_bias) {
        for (int64_t i = 0; i < qd; ++i) qt[i] += w.bq[size_t(i)];
        for (int64_t i = 0; i < kvk; ++i) kt[i] += w.bk[size_t(i)];
        for (int64_t i = 0; i < kvv; ++i) vt[i] += w.bv[size_t(i)];
      }
      if (sp.qk_norm) {
        for (int64_t hh = 0; hh < sp.n_head; ++hh)
          rmsnorm(qt + hh * sp.head_dim_k, w.q_norm.data(), qt + hh * sp.head_dim_k, sp.head_dim_k, sp.rms_eps);
        for (int64_t hh = 0; hh < sp.n_head_kv; ++hh)
          rmsnorm(kt + hh * sp.head_dim_k, w.k_norm.data(), kt + hh * sp.head_dim_k, sp.head_dim_k, sp.rms_eps);
      }
      const BatchToken& bt = batch.tokens[size_t(t)];
      float* c = rcos.data() + t * half;
      float* s = rsin.data() + t * half;
      rope_angles(rp, bt.pos, c, s);
      for (int64_t hh = 0; hh < sp.n_head; ++hh) rope_rotate(sp.rope_style, sp.n_rot, c, s, qt + hh * sp.head_dim_k);
      for (int64_t hh = 0; hh < sp.n_head_kv; ++hh)
        rope_rotate(sp.rope_style, sp.n_rot, c, s, kt + hh * sp.head_dim_k);
      Sequence& sq = seqs_.at(bt.seq);
      sq.k[size_t(il)].write(bt.pos, kt);
      sq.v[size_t(il)].write(bt.pos, vt);
    });

    AttentionParams ap;
    ap.head_dim_k = sp.head_dim_k;
    ap.head_dim_v = sp.head_dim_v;
    ap.k_stride = kvk;
    ap.v_stride = kvv;
    ap.scale = sp.attn_scale;
    ap.softcap = sp.attn_softcap;
    ap.window = swa ? sp.sliding_window : 0;
    // One work item per (token, KV head): a quantized cache is dequantized once for all the query
    // heads that share it (GQA), into f32 rows that attention_head reads like the f32 cache.
    const int64_t group = sp.n_head / sp.n_head_kv;
    const bool f32_cache = options_.kv == KvType::F32;
    if (gemm_attention) {  // per run (a prefill chunk of one sequence) and head, two GEMMs
      for (const Run& r : runs) {
        const BatchToken& first = batch.tokens[size_t(r.t0)];
        const Sequence& sq = seqs_.at(first.seq);
        for (int64_t hh = 0; hh < sp.n_head; ++hh) {
          const int64_t kvh = hh / group;
          attention_run_gemm(ap, q.data() + r.t0 * qd + hh * sp.head_dim_k, qd, r.n, first.pos,
                             sq.k[size_t(il)].f32_rows() + kvh * sp.head_dim_k,
                             sq.v[size_t(il)].f32_rows() + kvh * sp.head_dim_v,
                             att.data() + r.t0 * ad + hh * sp.head_dim_v, ad, pool_, gemm_scores);
        }
      }
    } else {
    pool_.parallel_for(size_t(T * sp.n_head_kv), [&](size_t b, size_t e, int) {
      std::vector<double> scratch;
      std::vector<float> scratch_f32, kbuf, vbuf;
      // The reference keeps attention in double; the fast path's f32 kernel differs from it by f32
      // rounding (AttentionF32.MatchesDoubleReference bounds it).
      const auto attend = [&](const AttentionParams& a, const float* qh, const float* kr, const float* vr,
                              int64_t pos, float* out) {
        if (path == MatmulPath::Reference)
          attention_head(a, qh, kr, vr, pos, out, scratch);
        else
          attention_head_f32(a, qh, kr, vr, pos, out, scratch_f32);
      };
      for (size_t i = b; i < e; ++i) {
        const int64_t t = int64_t(i) / sp.n_head_kv, kvh = int64_t(i) % sp.n_head_kv;
        const BatchToken& bt = batch.tokens[size_t(t)];
        const Sequence& sq = seqs_.at(bt.seq);
        const KvStore& ks = sq.k[size_t(il)];
        const KvStore& vs = sq.v[size_t(il)];
        for (int64_t hh = kvh * group; hh < (kvh + 1) * group; ++hh) {
          const float* qh = q.data() + t * qd + hh * sp.head_dim_k;
          float* out = att.data() + t * ad + hh * sp.head_dim_v;
          if (f32_cache) {
            attend(ap, qh, ks.f32_rows() + kvh * sp.head_dim_k, vs.f32_rows() + kvh * sp.head_dim_v, bt.pos, out);
            continue;
          }
          // Only the positions attention can see: [first, pos]; relative to `first` the window
          // test in attention_head gives the same set.
          const int64_t first = ap.window > 0 ? std::max<int64_t>(0, bt.pos - ap.window + 1) : 0;
          const int64_t n = bt.pos - first + 1;
          if (hh == kvh * group) {
            kbuf.resize(size_t(n * sp.head_dim_k));
            vbuf.resize(size_t(n * sp.head_dim_v));
            ks.read_head(first, n, kvh, kbuf.data());
            vs.read_head(first, n, kvh, vbuf.data());
          }
          AttentionParams apq = ap;
          apq.k_stride = sp.head_dim_k;
          apq.v_stride = sp.head_dim_v;
          attend(apq, qh, kbuf.data(), vbuf.data(), n - 1, out);
        }
      }
    });
    }
    observe(il, "attn_output", att.data(), ad);
    matmul(w.wo, att.data(), T, o.data(), pool_, path);
    rows(T, [&](int64_t t) {
      float* ot = o.data() + t * d;
      if (sp.post_norms) rmsnorm(ot, w.post_attn_norm.data(), ot, d, sp.rms_eps);
      float* xt = x.data() + t * d;
      for (int64_t i = 0; i < d; ++i) xt[i] += ot[i];
      rmsnorm(xt, w.ffn_norm.data(), h.data() + t * d, d, sp.rms_eps);
    });

    for (const char* what : {"ffn_gate", "ffn_up"}) observe(il, what, h.data(), d);
    matmul(w.w_gate, h.data(), T, g.data(), pool_, path);
    matmul(w.w_up, h.data(), T, u.data(), pool_, path);
    rows(T, [&](int64_t t) { gated_activation(sp.activation, g.data() + t * ff, u.data() + t * ff, g.data() + t * ff, ff); });
    observe(il, "ffn_down", g.data(), ff);
    if (inputs_only && il == layer_end - 1) return;
    matmul(w.w_down, g.data(), T, o.data(), pool_, path);
    rows(T, [&](int64_t t) {
      float* ot = o.data() + t * d;
      if (sp.post_norms) rmsnorm(ot, w.post_ffn_norm.data(), ot, d, sp.rms_eps);
      float* xt = x.data() + t * d;
      for (int64_t i = 0; i < d; ++i) xt[i] += ot[i];
    });
  }
}

}  // namespace qb::runtime::cpu
