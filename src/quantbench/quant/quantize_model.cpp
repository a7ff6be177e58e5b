// See quantize_model.h. The order inside a layer is fixed by AWQ's folds: ffn_down first (its scales
// fold into ffn_up's rows), then gate/up (fold into ffn_norm), then q/k/v (fold into attn_norm),
// then attn_output.
#include "quantbench/quant/quantize_model.h"

#include <fmt/format.h>

#include <cstring>
#include <functional>
#include <map>

#include "quantbench/core/dtype.h"
#include "quantbench/core/error.h"
#include "quantbench/core/progress.h"
#include "quantbench/quant/qformat/ggml_blocks.h"
#include "quantbench/quant/qformat/ggml_quantize.h"
#include "quantbench/runtime/cpu/cpu_backend.h"
#include "quantbench/runtime/cpu/matmul_w8a8.h"

namespace qb::quant {

namespace {

using formats::GgmlType;
using runtime::cpu::WeightMatrix;

std::vector<float> to_float(const WeightMatrix& w) {
  std::vector<float> out(size_t(w.n_in * w.n_out));
  if (w.quantized) {
    dequantize(*w.quantized, out.data());
    return out;
  }
  for (int64_t r = 0; r < w.n_out; ++r)
    qformat::dequantize_row(w.type, w.data + size_t(r) * w.row_bytes, out.data() + r * w.n_in, w.n_in);
  return out;
}

size_t matrix_bytes(const WeightMatrix& w) {
  return w.quantized ? w.quantized->storage_bytes() : w.row_bytes * size_t(w.n_out);
}

// Rows [r0, r0+n) of q as a tensor of their own (scales and zeros follow their rows).
QuantizedTensor slice_rows(const QuantizedTensor& q, int64_t r0, int64_t n) {
  QuantizedTensor out = QuantizedTensor::allocate(q.layout, n, q.cols);
  const size_t rb = q.row_bytes(), sb = scale_type_bytes(q.layout.scale_type);
  std::copy(q.codes.begin() + std::ptrdiff_t(size_t(r0) * rb), q.codes.begin() + std::ptrdiff_t(size_t(r0 + n) * rb),
            out.codes.begin());
  for (int64_t r = 0; r < n; ++r)
    for (int64_t g = 0; g < q.groups_per_row(); ++g) {
      const size_t src = q.scale_index(r0 + r, g), dst = out.scale_index(r, g);
      std::copy_n(q.scales.begin() + std::ptrdiff_t(src * sb), sb, out.scales.begin() + std::ptrdiff_t(dst * sb));
      if (!q.zeros.empty()) out.zeros[dst] = q.zeros[src];
    }
  return out;
}

struct Member {
  std::string name;
  WeightMatrix* w;  // in the output model's layer
  std::vector<float> f;  // float weights (after any fold into them)
};

// scheme.group_size / symmetric / scale_dtype from the base scheme (per-tensor overrides are listed
// under scheme.tensor.*; the three fields say so when there are any).
void record_grid(const Scheme& scheme, Manifest& mf) {
  const TensorScheme& b = scheme.base;
  const std::string per_tensor = scheme.overrides.empty() ? "" : " (base scheme; overrides per tensor in scheme.tensor.*)";
  if (b.action == TensorAction::Quantize) {
    const QuantLayout& l = b.weights;
    std::string group = "per tensor";
    if (l.granularity == Granularity::Group) group = std::to_string(l.group_size);
    if (l.granularity == Granularity::Channel) group = "per output channel";
    std::string scale = "f32";
    if (l.scale_type == ScaleType::F16) scale = "f16";
    if (l.scale_type == ScaleType::BF16) scale = "bf16";
    mf.set("scheme.group_size", group + per_tensor);
    mf.set("scheme.symmetric", (l.asymmetric ? "asymmetric (uint8 zero point per scale)" : "symmetric") + per_tensor);
    mf.set("scheme.scale_dtype", scale + per_tensor);
  } else if (b.action == TensorAction::Ggml) {
    const auto& t = formats::ggml_traits(b.ggml);
    const std::string what = fmt::format("as ggml's {} block ({} values)", t.name, t.block_size) + per_tensor;
    for (const char* k : {"scheme.group_size", "scheme.symmetric", "scheme.scale_dtype"}) mf.set(k, what);
  } else {
    for (const char* k : {"scheme.group_size", "scheme.symmetric", "scheme.scale_dtype"})
      mf.set_unknown(k, "weights kept in float: no quantization grid" + per_tensor);
  }
}

}  // namespace

QuantizedModel quantize_model(std::shared_ptr<const model::Model> source, const Scheme& scheme,
                              const MethodRegistry& methods, const QuantizeOptions& opts) {
  QB_CHECK(source != nullptr, "quantize_model: no model");
  const model::ModelSpec& sp = source->spec();
  QuantizedModel res;
  res.source = source;
  auto out = std::make_shared<model::Model>(*source);

  // Which block matrices need calibration, and does anyone need it at all?
  const char* kNames[] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};
  bool need_cal = false, uses_gptq = false;
  for (int64_t il = 0; il < sp.n_layer; ++il)
    for (const char* n : kNames) {
      const std::string name = fmt::format("blk.{}.{}.weight", il, n);
      const TensorScheme& ts = scheme.for_tensor(name);
      validate_tensor_scheme(ts, methods);
      if (ts.action == TensorAction::Ggml && ts.method != "rtn")
        fail("tensor '{}': scheme '{}': ggml types are quantized with rtn only here (method '{}' is not implemented "
             "for ggml types)",
             name, ts.spec(), ts.method);
      if (ts.action == TensorAction::Quantize && methods.create(ts.method, ts.method_options)->needs_calibration()) {
        if (!opts.calibration || opts.calibration->empty())
          fail("tensor '{}': method '{}' needs calibration data (give --calib FILE)", name, ts.method);
        need_cal = true;
        uses_gptq = uses_gptq || ts.method == "gptq";
      }
    }
  // An override that matches none of the matrices quantize quantizes would do nothing, silently: most
  // often one for token_embd or output, which are kept as stored.
  for (size_t i = 0; i < scheme.overrides.size(); ++i) {
    bool used = false;
    for (int64_t il = 0; il < sp.n_layer && !used; ++il)
      for (const char* n : kNames)
        used = used || glob_match(scheme.overrides[i].pattern, fmt::format("blk.{}.{}.weight", il, n));
    if (!used)
      fail("scheme '{}': override {} (pattern '{}') matches none of the matrices quantize quantizes (blk.N.{{attn_q, "
           "attn_k, attn_v, attn_output, ffn_gate, ffn_up, ffn_down}}.weight, N < {}); token_embd and output are kept "
           "as stored",
           scheme.source, i + 1, scheme.overrides[i].pattern, sp.n_layer);
  }
  const bool sequential = opts.calib_order == CalibOrder::Sequential || (opts.calib_order == CalibOrder::Auto && uses_gptq);

  // Calibration statistics, keyed by weight name (q/k/v and gate/up share one). Either one pass of the
  // CPU backend over the unquantized model, or (sequential) block by block over the model whose
  // earlier blocks are already quantized, as GPTQ's reference does.
  std::map<std::string, std::shared_ptr<LayerCalibration>, std::less<>> cal;
  auto add_layer_calibrations = [&](int64_t il) {
    auto n = [&](const char* w) { return fmt::format("blk.{}.{}.weight", il, w); };
    auto attn_in = std::make_shared<LayerCalibration>(sp.n_embd);
    auto ffn_in = std::make_shared<LayerCalibration>(sp.n_embd);
    for (const char* w : {"attn_q", "attn_k", "attn_v"}) cal[n(w)] = attn_in;
    for (const char* w : {"ffn_gate", "ffn_up"}) cal[n(w)] = ffn_in;
    cal[n("attn_output")] = std::make_shared<LayerCalibration>(sp.n_head * sp.head_dim_v);
    cal[n("ffn_down")] = std::make_shared<LayerCalibration>(sp.n_ff);
  };
  ThreadPool gram_pool(opts.n_threads);  // X^T X between the backend's matmuls (its pool is idle then)
  bool collecting = true;                // sequential mode also runs blocks only to propagate
  std::unique_ptr<runtime::cpu::CpuBackend> backend;
  // Calibration samples grouped into batches of about kCalibBatchTokens tokens, each sample its own
  // sequence: one forward per group multiplies each (dequantized) matrix once for all of them, with
  // larger GEMMs (every element's sum is the same as with one sample per batch).
  constexpr int64_t kCalibBatchTokens = 4096;
  struct CalibBatch {
    runtime::Batch batch;
    std::vector<int64_t> lens;  // tokens per sample, in order
  };
  std::vector<CalibBatch> batches;
  int64_t n_tokens = 0;
  if (need_cal) {
    runtime::cpu::CpuBackendOptions bo;
    bo.mode = opts.calibrate_on_reference ? runtime::cpu::CpuMode::Reference : runtime::cpu::CpuMode::Fast;
    bo.n_threads = opts.n_threads;
    bo.dequant_gemm_prefill = true;  // whole samples per forward: the f32 GEMM path (cpu_backend.h)
    bo.observer = [&](int64_t, std::string_view tensor, const float* x, int64_t n_tok, int64_t n_in) {
      // q/k/v and gate/up report the same input; count it once per group.
      if (!collecting || tensor.find("attn_k.") != std::string_view::npos ||
          tensor.find("attn_v.") != std::string_view::npos || tensor.find("ffn_up.") != std::string_view::npos)
        return;
      auto it = cal.find(tensor);
      QB_CHECK(it != cal.end() && it->second->in_features() == n_in, "calibration: unexpected layer input '{}'",
               tensor);
      it->second->add(x, n_tok, &gram_pool);
    };
    // Sequential calibration runs on `out`, whose blocks are replaced in place as they are quantized.
    backend = std::make_unique<runtime::cpu::CpuBackend>(sequential ? out : source, bo);
    for (const auto& sample : *opts.calibration) {
      QB_CHECK(int64_t(sample.size()) <= sp.n_ctx_train, "calibration sample of {} tokens exceeds the context {}",
               sample.size(), sp.n_ctx_train);
      if (batches.empty() || int64_t(batches.back().batch.size() + sample.size()) > kCalibBatchTokens)
        batches.emplace_back();
      CalibBatch& cb = batches.back();
      for (size_t i = 0; i < sample.size(); ++i) cb.batch.add(sample[i], 0, int64_t(i), false);
      cb.lens.push_back(int64_t(sample.size()));
      n_tokens += int64_t(sample.size());
    }
  }
  // Gives each sample of a group a fresh sequence, runs fn, frees them.
  auto with_sequences = [&](CalibBatch& cb, const std::function<void()>& fn) {
    std::vector<runtime::SeqId> seqs;
    size_t t = 0;
    for (int64_t len : cb.lens) {
      seqs.push_back(backend->create_sequence(len));
      for (int64_t i = 0; i < len; ++i) cb.batch.tokens[t++].seq = seqs.back();
    }
    fn();
    for (auto id : seqs) backend->free_sequence(id);
  };
  // Runs every group through layers [l0, l1) (hidden: their inputs, replaced by their outputs).
  auto run_samples = [&](std::vector<std::vector<float>>& hidden, int64_t l0, int64_t l1, bool inputs_only) {
    for (size_t i = 0; i < batches.size(); ++i)
      with_sequences(batches[i], [&] { backend->forward_layers(batches[i].batch, hidden[i], l0, l1, inputs_only); });
  };
  std::vector<std::vector<float>> hidden;  // sequential mode: each sample's input to the next block
  std::vector<std::vector<float>> observed_copy(batches.size());
  if (need_cal && !sequential) {
    for (int64_t il = 0; il < sp.n_layer; ++il) add_layer_calibrations(il);
    Progress prog("calibrate", int64_t(opts.calibration->size()), opts.progress);
    for (auto& cb : batches) {
      with_sequences(cb, [&] { backend->forward(cb.batch); });
      prog.advance(int64_t(cb.lens.size()));
    }
    prog.finish();
    res.manifest.set("calibration.method",
                     fmt::format("layer inputs collected by the CPU backend from the unquantized model in one pass{} "
                                 "({} samples, {} tokens); q/k/v and gate/up share their input statistics; {}",
                                 opts.calib_order == CalibOrder::OnePass && uses_gptq ? " (asked for; gptq's default is sequential)" : "",
                                 opts.calibration->size(), n_tokens, backend->describe()));
  } else if (need_cal) {
    for (auto& cb : batches) hidden.push_back(backend->embed(cb.batch));
    res.manifest.set("calibration.method",
                     fmt::format("sequential{}: each block's layer inputs collected by the CPU backend from the model "
                                 "whose earlier blocks are already quantized (the block itself unquantized), then the "
                                 "samples carried through the quantized block ({} samples, {} tokens); q/k/v and "
                                 "gate/up share their input statistics; {}",
                                 opts.calib_order == CalibOrder::Auto ? " (the default for gptq)" : "",
                                 opts.calibration->size(), n_tokens, backend->describe()));
  } else {
    res.manifest.set("calibration.method", "none (no method of this scheme uses calibration data)");
    for (const char* k : {"calibration.dataset", "calibration.dataset_sha256", "calibration.samples", "calibration.seed"})
      res.manifest.set_unknown(k, "no calibration: no method of this scheme uses calibration data");
  }

  // Quantization, layer by layer.
  ThreadPool method_pool(opts.n_threads);
  Progress prog("quantize", sp.n_layer, opts.progress);
  int64_t kept_hp = 0;
  std::map<runtime::cpu::ActQuant, int64_t> n_act_quant;  // block matrices whose inputs are quantized
  for (int64_t il = 0; il < sp.n_layer; ++il) {
    if (need_cal && sequential) {  // this block's statistics, from inputs through quantized blocks
      add_layer_calibrations(il);
      // The block's outputs are not needed before it is quantized: the observer's pass runs on a copy
      // (kept across blocks, so its memory is reused) and stops at the block's last input.
      for (size_t i = 0; i < hidden.size(); ++i) observed_copy[i].assign(hidden[i].begin(), hidden[i].end());
      collecting = true;
      run_samples(observed_copy, il, il + 1, /*inputs_only=*/true);
    }
    model::LayerWeights& L = out->layers[size_t(il)];
    auto nm = [&](const char* w) { return fmt::format("blk.{}.{}.weight", il, w); };
    std::map<std::string, Member> mem;
    auto add = [&](const char* w, WeightMatrix& m) { mem[nm(w)] = Member{nm(w), &m, to_float(m)}; };
    add("attn_q", L.wq); add("attn_k", L.wk); add("attn_v", L.wv); add("attn_output", L.wo);
    add("ffn_gate", L.w_gate); add("ffn_up", L.w_up); add("ffn_down", L.w_down);

    // Quantizes a group of matrices sharing one input; `fold` receives AWQ's input scales (or the
    // group falls back to rtn when fold is empty).
    auto run_group = [&](std::vector<std::string> names, std::function<void(const std::vector<float>&)> fold,
                         const std::string& fold_target) {
      const TensorScheme& ts = scheme.for_tensor(names[0]);
      // AWQ and SmoothQuant return input scales that fold into the shared input: the group runs as one.
      const bool awq = ts.action == TensorAction::Quantize && (ts.method == "awq" || ts.method == "smoothquant");
      bool same_scheme = true;
      for (const auto& n : names) same_scheme = same_scheme && scheme.for_tensor(n).spec() == ts.spec();
      if (awq && !same_scheme)
        for (const auto& n : names)
          if (scheme.for_tensor(n).spec() != ts.spec())
            fail("tensor '{}': {} scales fold into the shared input ({}); '{}' and '{}' must use the same scheme",
                 n, ts.method, fold_target, names[0], n);
      // GPTQ's rows are independent given the input's Hessian, so stacking the group gives the same codes
      // as running each matrix alone, with one factorization of the Hessian instead of one per matrix.
      const bool stack = awq || (same_scheme && ts.action == TensorAction::Quantize && ts.method == "gptq");
      auto do_one = [&](const std::vector<std::string>& ns) {
        // All of ns have one TensorScheme (checked above when stacked; singletons otherwise).
        const TensorScheme& t = scheme.for_tensor(ns[0]);
        Member& m0 = mem.at(ns[0]);
        const int64_t cols = m0.w->n_in;
        MatrixOutcome o0;
        if (t.action == TensorAction::Quantize) {
          int64_t rows = 0;
          std::vector<float> stacked;
          for (const auto& n : ns) {
            const Member& m = mem.at(n);
            stacked.insert(stacked.end(), m.f.begin(), m.f.end());
            rows += m.w->n_out;
          }
          std::string method_name = t.method;
          std::vector<std::string> extra;
          if ((method_name == "awq" || method_name == "smoothquant") && !fold) {
            extra.push_back(method_name + " not applied: no foldable predecessor for this input; rtn used");
            method_name = "rtn";
          }
          auto method = methods.create(method_name, method_name == t.method ? t.method_options : MethodOptions{});
          LayerInput in;
          in.name = ns.size() == 1 ? ns[0] : fmt::format("{} (+{} sharing its input)", ns[0], ns.size() - 1);
          in.weight = stacked.data();
          in.rows = rows;
          in.cols = cols;
          auto ci = cal.find(ns[0]);
          in.calibration = ci != cal.end() ? ci->second.get() : nullptr;
          in.pool = &method_pool;
          LayerResult r = quantize_layer(*method, in, t.weights);
          if (!r.input_scales.empty()) {
            QB_CHECK(fold, "tensor '{}': method '{}' returned input scales that cannot be folded", ns[0], t.method);
            fold(r.input_scales);
            extra.push_back(method_name + " input scales folded into " + fold_target);
          }
          int64_t r0 = 0;
          for (const auto& n : ns) {
            Member& m = mem.at(n);
            auto q = std::make_shared<const QuantizedTensor>(slice_rows(r.weight, r0, m.w->n_out));
            r0 += m.w->n_out;
            MatrixOutcome o{n, layout_name(q->layout) + " via " + method_name, q->rows, q->cols, q->storage_bytes(),
                            r.notes};
            o.notes.insert(o.notes.end(), extra.begin(), extra.end());
            if (q->ragged_last_group) o.notes.push_back(fmt::format("ragged last group of {} columns", q->last_group_cols));
            WeightMatrix nw;
            nw.type = GgmlType::F32;
            nw.n_in = cols;
            nw.n_out = q->rows;
            nw.quantized = q.get();
            if (t.activation_bits == 8)
              nw.act = t.activation_fp8 ? runtime::cpu::ActQuant::Fp8PerToken : runtime::cpu::ActQuant::Int8PerToken;
            runtime::cpu::check_w8a8(nw);
            if (nw.act != runtime::cpu::ActQuant::None) {
              o.stored_as += std::string(", activations ") + std::string(runtime::cpu::act_quant_name(nw.act)) +
                             " per token";
              ++n_act_quant[nw.act];
            }
            *m.w = nw;
            out->quantized_storage.push_back(std::move(q));
            res.matrices.push_back(std::move(o));
          }
          return;
        }
        for (const auto& n : ns) {
          Member& m = mem.at(n);
          const TensorScheme& tn = scheme.for_tensor(n);
          GgmlType type;
          std::vector<std::string> notes;
          if (tn.action == TensorAction::Ggml) {
            type = tn.ggml;
            if (cols % formats::ggml_traits(type).block_size != 0) {
              notes.push_back(fmt::format("kept f16: a row of {} is not a multiple of {}'s block of {}", cols,
                                          formats::ggml_type_name(type), formats::ggml_traits(type).block_size));
              type = GgmlType::F16;
              ++kept_hp;
            }
          } else {
            type = tn.keep_dtype == DType::F32 ? GgmlType::F32 : tn.keep_dtype == DType::BF16 ? GgmlType::BF16 : GgmlType::F16;
            ++kept_hp;
          }
          const size_t rb = formats::ggml_row_bytes(type, cols);
          auto buf = std::make_shared<std::vector<uint8_t>>(rb * size_t(m.w->n_out));
          for (int64_t r = 0; r < m.w->n_out; ++r) {
            const float* src = m.f.data() + r * cols;
            uint8_t* dst = buf->data() + size_t(r) * rb;
            if (type == GgmlType::F32) {
              std::memcpy(dst, src, size_t(cols) * 4);
            } else if (type == GgmlType::F16 || type == GgmlType::BF16) {
              for (int64_t c = 0; c < cols; ++c) {
                const uint16_t h = type == GgmlType::F16 ? f32_to_f16(src[c]) : f32_to_bf16(src[c]);
                std::memcpy(dst + 2 * c, &h, 2);
              }
            } else {
              qformat::quantize_row(type, src, dst, cols);
            }
          }
          WeightMatrix nw;
          nw.type = type;
          nw.n_in = cols;
          nw.n_out = m.w->n_out;
          nw.data = buf->data();
          nw.row_bytes = rb;
          *m.w = nw;
          res.buffers.push_back(std::move(buf));
          res.matrices.push_back({n, std::string(formats::ggml_type_name(type)), nw.n_out, cols, rb * size_t(nw.n_out), notes});
        }
      };
      if (stack) do_one(names);
      else
        for (const auto& n : names) do_one({n});
    };

    // ffn_down first: its AWQ scales divide ffn_up's rows (the input of down is act(gate) * up).
    run_group({nm("ffn_down")}, [&](const std::vector<float>& s) {
      auto& up = mem.at(nm("ffn_up"));
      for (int64_t r = 0; r < up.w->n_out; ++r)
        for (int64_t c = 0; c < up.w->n_in; ++c) up.f[size_t(r * up.w->n_in + c)] /= s[size_t(r)];
    }, nm("ffn_up") + " rows");
    auto fold_norm = [&](std::vector<float>& g, std::string what) {
      return [&g, what, &res](const std::vector<float>& s) {
        for (size_t j = 0; j < g.size(); ++j) g[j] /= s[j];
        res.changed_vectors.push_back(what);
      };
    };
    run_group({nm("ffn_gate"), nm("ffn_up")}, fold_norm(L.ffn_norm, fmt::format("blk.{}.ffn_norm.weight", il)),
              fmt::format("blk.{}.ffn_norm.weight", il));
    run_group({nm("attn_q"), nm("attn_k"), nm("attn_v")},
              fold_norm(L.attn_norm, fmt::format("blk.{}.attn_norm.weight", il)), fmt::format("blk.{}.attn_norm.weight", il));
    run_group({nm("attn_output")}, nullptr, "");
    if (need_cal && sequential) {  // carry the samples through the quantized block; drop its statistics
      collecting = false;
      run_samples(hidden, il, il + 1, /*inputs_only=*/false);
      for (auto it = cal.begin(); it != cal.end();)
        it = it->first.rfind(fmt::format("blk.{}.", il), 0) == 0 ? cal.erase(it) : std::next(it);
    }
    prog.advance(1, fmt::format("layer {}", il));
  }
  prog.finish();

  // Sizes: block matrices, then embeddings / output as stored (kept).
  double bits = 0, elems = 0;
  for (const auto& m : res.matrices) {
    bits += 8.0 * double(m.bytes);
    elems += double(m.rows * m.cols);
  }
  res.bpw_no_embd = elems > 0 ? bits / elems : 0;
  auto add_kept = [&](const char* name, const WeightMatrix& w) {
    bits += 8.0 * double(matrix_bytes(w));
    elems += double(w.n_in * w.n_out);
    res.manifest.set(fmt::format("scheme.tensor.{}", name),
                     fmt::format("{} (kept as stored)", formats::ggml_type_name(w.type)));
  };
  add_kept("token_embd.weight", out->token_embd);
  if (!sp.tied_embeddings) add_kept("output.weight", out->output);
  res.bpw_all = elems > 0 ? bits / elems : 0;

  Manifest& mf = res.manifest;
  mf.set("scheme.name", scheme.source);
  mf.set("scheme.weight_format", scheme.base.spec());
  record_grid(scheme, mf);
  mf.set("scheme.tensors", "weights only (the 7 linear matrices of every block); token_embd/output kept as stored");
  mf.set("scheme.kept_high_precision",
         fmt::format("token_embd{}; {} block matrices kept/fell back to float; norms f32", sp.tied_embeddings ? "" : ", output",
                     kept_hp));
  mf.set("scheme.bits_per_weight", fmt::format("{:.4f}", res.bpw_all));
  mf.set("scheme.bits_per_weight_no_embeddings", fmt::format("{:.4f}", res.bpw_no_embd));
  if (n_act_quant.empty()) {
    mf.set("scheme.activations", "f32 (weight-only quantization)");
  } else {
    std::string a;
    for (const auto& [kind, count] : n_act_quant)
      a += fmt::format("{}{} at the input of {} block matrices", a.empty() ? "" : "; ",
                       runtime::cpu::describe_act_quant(kind), count);
    mf.set("scheme.activations", a + "; attention, norms, token_embd/output in f32");
    mf.set("scheme.tensors", "weights and activations of the 7 linear matrices of every block (W8A8); token_embd/output "
                             "kept as stored");
  }
  for (const auto& m : res.matrices)
    mf.set("scheme.tensor." + m.name, m.stored_as + (m.notes.empty() ? "" : "; " + fmt::format("{}", fmt::join(m.notes, "; "))));
  for (const auto& v : res.changed_vectors) mf.set("scheme.folded." + v, "divided by awq input scales");
  res.model = out;
  return res;
}

}  // namespace qb::quant
