// cuda_backend_check's whole-model checks (the top of cuda_backend_check.cpp says what they compare): a model's
// packed matrices as repacked against the CPU's dequantized weights; the CUDA backend's next-token
// distributions against the CPU reference backend's in every variant, with the flip floor where codes are
// rounded at run time; a W8A8 model whose activations stop being finite, refused by both.
#include <cuda_runtime.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backend_check.h"
#include "quantbench/core/dtype.h"
#include "quantbench/core/error.h"
#include "quantbench/model/model.h"
#include "quantbench/runtime/cpu/cpu_backend.h"
#include "quantbench/runtime/cuda/cuda_backend.h"
#include "quantbench/runtime/cuda/host/weight_repack.h"
#include "quantbench/runtime/kv_cache.h"
#include "../repack_compare.h"

using namespace qb;
using runtime::Backend;
using runtime::Batch;
using runtime::Logits;
using runtime::cuda::DenseType;

namespace backend_check {

namespace {

// Runs the same script on both backends and accumulates KL.
KlStats compare_script(Backend& ref, Backend& gpu, int32_t vocab) {
  KlStats st;
  const auto ta = tokens(48, vocab, 1), tb = tokens(33, vocab, 2);
  const auto sa_r = ref.create_sequence(), sb_r = ref.create_sequence();
  const auto sa_g = gpu.create_sequence(), sb_g = gpu.create_sequence();
  auto both = [&](auto&& make) {
    Batch br, bg;
    make(br, sa_r, sb_r);
    make(bg, sa_g, sb_g);
    add_kl(st, ref.forward(br), gpu.forward(bg));
  };
  // Prefill: two sequences in one batch, every logit.
  both([&](Batch& b, auto sa, auto sb) {
    b.add_sequence(ta, sa, 0, true);
    b.add_sequence(tb, sb, 0, true);
  });
  // Decode: one token per sequence per forward.
  const auto next = tokens(16, vocab, 3);
  for (int s = 0; s < 16; ++s)
    both([&](Batch& b, auto sa, auto sb) {
      b.add(next[size_t(s)], sb, 33 + s, true);
      b.add(next[size_t(15 - s)], sa, 48 + s, true);
    });
  // Truncate A to 10 and refeed a different continuation (a reused prefix).
  ref.truncate_sequence(sa_r, 10);
  gpu.truncate_sequence(sa_g, 10);
  const auto refeed = tokens(20, vocab, 4);
  both([&](Batch& b, auto sa, auto) { b.add_sequence(refeed, sa, 10, true); });
  for (auto s : {sa_r, sb_r}) ref.free_sequence(s);
  for (auto s : {sa_g, sb_g}) gpu.free_sequence(s);
  return st;
}

// Greedy decode of n tokens after a short prompt; returns the tokens.
std::vector<int> greedy(Backend& be, std::span<const int32_t> prompt, int n) {
  const auto s = be.create_sequence();
  Batch b;
  b.add_sequence(prompt, s, 0);
  std::vector<int> out;
  int tok = argmax(be.forward(b).row(0));
  for (int i = 0; i < n; ++i) {
    out.push_back(tok);
    Batch d;
    d.add(tok, s, int64_t(prompt.size()) + i, true);
    tok = argmax(be.forward(d).row(0));
  }
  be.free_sequence(s);
  return out;
}

// CudaBackend::forward_greedy returns argmax(forward()) row by row: two sequences fed identical
// tokens (one with a bounded max_len, its cache allocated at creation), one through each call; a
// prefill with every row wanted, then decode steps (graph path).
void check_greedy(runtime::cuda::CudaBackend& gpu, int32_t vocab, const std::string& what) {
  const auto p = tokens(20, vocab, 7);
  const auto s1 = gpu.create_sequence(40), s2 = gpu.create_sequence();
  size_t rows = 0, same = 0;
  Batch b1, b2;
  b1.add_sequence(p, s1, 0, true);
  b2.add_sequence(p, s2, 0, true);
  const Logits lg = gpu.forward(b1);
  std::vector<int32_t> ids = gpu.forward_greedy(b2);
  for (size_t r = 0; r < lg.rows() && r < ids.size(); ++r, ++rows) same += argmax(lg.row(r)) == ids[r];
  bool shape_ok = lg.rows() == ids.size();
  int32_t tok = ids.empty() ? 0 : ids.back();
  for (int i = 0; i < 8; ++i) {
    Batch d1, d2;
    d1.add(tok, s1, 20 + i, true);
    d2.add(tok, s2, 20 + i, true);
    const Logits l1 = gpu.forward(d1);
    ids = gpu.forward_greedy(d2);
    shape_ok = shape_ok && ids.size() == 1 && l1.rows() == 1;
    if (ids.empty() || l1.rows() == 0) break;
    same += argmax(l1.row(0)) == ids[0];
    ++rows;
    tok = ids[0];
  }
  gpu.free_sequence(s1);
  gpu.free_sequence(s2);
  char buf[256];
  std::snprintf(buf, sizeof buf, "%s: forward_greedy == argmax(forward) on %zu of %zu rows", what.c_str(), same, rows);
  check(shape_ok && rows == 28 && same == rows, buf);
}

// A CPU reference whose product inputs are rounded the way the GPU's default mode rounds them, and
// optionally jittered (the flip floor): every input moved by one ulp of the type the product reads
// (f16 or bf16 where rounded, else f32), up or down at random. Through CpuBackendOptions::observer, which
// passes each product's input rows just before the product: they are the backend's own workspace rows
// (not const objects), so rounding them in place here is defined; this is test-only use. q|k|v and
// gate|up share one input and are reported once per part: the rows are changed at the stack's first
// part only. The GPU's default mode: packed and dense f16 stacks read f16 inputs, stacks with a bf16
// part bf16 inputs, W8A8 stacks the f32 rows (quantized per token); the output head is not observed
// (its inputs stay f32 here: no code flips can follow it). Dense stacks with a value beyond f16's range
// also fall back to bf16 on the GPU; the check's models have none.
struct InputHook {
  bool round16 = false;      // round as the GPU's default mode does
  uint64_t jitter_seed = 0;  // nonzero: move every input by one ulp, up or down at random
  // W8A8 products' inputs (which the GPU reads in f32) rounded to f16 and, with jitter_seed, moved by one
  // f16 ulp: a relative change of about 2^-12 to 2^-10 per input, which moves a product by up to that share of
  // its sum of |products|, the size of the FP8 tensor cores' accumulation error (check_fp8_fast_wide)
  bool w8a8_as_f16 = false;
};

std::unique_ptr<runtime::cpu::CpuBackend> hooked_reference(const std::shared_ptr<const model::Model>& model,
                                                           runtime::KvType kv, InputHook hook) {
  enum Round : uint8_t { kNone, kF16, kBf16 };
  std::map<std::string, Round> first_of_stack;  // "blk.N.attn_q.weight" -> rounding of its stack
  for (size_t il = 0; il < model->layers.size(); ++il) {
    const auto& L = model->layers[il];
    auto stack = [&](const char* first, std::initializer_list<const model::WeightMatrix*> parts) {
      Round r = kF16;
      for (const auto* w : parts) {
        if (w->act != runtime::cpu::ActQuant::None) r = kNone;
        else if (r == kF16 && !w->quantized && w->type == formats::GgmlType::BF16) r = kBf16;
      }
      first_of_stack[fmt::format("blk.{}.{}.weight", il, first)] = r;
    };
    stack("attn_q", {&L.wq, &L.wk, &L.wv});
    stack("attn_output", {&L.wo});
    stack("ffn_gate", {&L.w_gate, &L.w_up});
    stack("ffn_down", {&L.w_down});
  }
  runtime::cpu::CpuBackendOptions ro;
  ro.mode = runtime::cpu::CpuMode::Reference;
  ro.kv = kv;
  auto calls = std::make_shared<uint64_t>(0);
  ro.observer = [first_of_stack, hook, calls](int64_t, std::string_view tensor, const float* x, int64_t n_tokens,
                                              int64_t n_in) {
    const auto it = first_of_stack.find(std::string(tensor));
    if (it == first_of_stack.end()) return;
    float* rows = const_cast<float*>(x);  // the backend's workspace (see above)
    uint64_t state = hook.jitter_seed * 0x9e3779b97f4a7c15ull + ++*calls;
    const Round r = hook.round16 ? (it->second == kNone && hook.w8a8_as_f16 ? kF16 : it->second) : kNone;
    for (int64_t i = 0; i < n_tokens * n_in; ++i) {
      float v = rows[i];
      bool up = false;
      if (hook.jitter_seed) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        up = state >> 63;
      }
      if (r == kF16) {
        uint16_t h = f32_to_f16(v);
        if (hook.jitter_seed && (h & 0x7fff) < 0x7bff) h = uint16_t(((h & 0x8000) != 0) != up ? h + 1 : (h & 0x7fff) ? h - 1 : h + 1);
        v = f16_to_f32(h);
      } else if (r == kBf16) {
        uint16_t h = f32_to_bf16(v);
        if (hook.jitter_seed && (h & 0x7fff) < 0x7f7f) h = uint16_t(((h & 0x8000) != 0) != up ? h + 1 : (h & 0x7fff) ? h - 1 : h + 1);
        v = bf16_to_f32(h);
      } else if (hook.jitter_seed) {
        v = std::nextafter(v, up ? INFINITY : -INFINITY);
      }
      rows[i] = v;
    }
  };
  return std::make_unique<runtime::cpu::CpuBackend>(model, ro);
}

}  // namespace

// Every matrix the backend would pack, as repacked, against the CPU's dequantized value (repack_compare.h).
void check_repack(const std::string& path) {
  auto model = model::Model::load(path);
  std::vector<const model::WeightMatrix*> ws{&model->output};
  for (const auto& l : model->layers)
    for (const auto* w : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) ws.push_back(w);
  size_t packed = 0, mismatched = 0, checked = 0;
  std::string spec;
  for (const auto* w : ws) {
    if (w->act != runtime::cpu::ActQuant::None) continue;  // W8A8: its own upload (check_w8a8_exact)
    const cuda_checks::RepackCheck r = cuda_checks::check_repack_of(*w);
    if (!r.packed) continue;
    ++packed;
    const std::string name = runtime::cuda::spec_name(r.hm.spec);
    if (spec.find(name) == std::string::npos) spec += (spec.empty() ? "" : "+") + name;
    checked += r.checked;
    mismatched += r.mismatched;
  }
  char buf[512];
  std::snprintf(buf, sizeof buf, "%s: repack (%zu packed matrices%s%s): %zu of %zu weights differ from the CPU's", path.c_str(),
                packed, spec.empty() ? "" : ", ", spec.c_str(), mismatched, checked);
  check(mismatched == 0, buf);
}

// A W8A8 model whose activations stop being finite: both backends refuse the step in one line and leave
// the sequence as it was. The model is a copy with one attn_norm weight of layer 0 set to NaN, so every
// token's q|k|v input holds a NaN: the GPU's decode steps meet it in the norm that writes the codes, its
// prefill in the activation quantizer, the CPU in its quantizer (matmul_w8a8).
void check_w8a8_refuses_nonfinite(const std::string& path) {
  auto loaded = model::Model::load(path);
  if (loaded->layers.at(0).wq.act == runtime::cpu::ActQuant::None) return;
  auto poisoned = std::make_shared<model::Model>(*loaded);
  poisoned->layers.at(0).attn_norm.at(0) = std::numeric_limits<float>::quiet_NaN();
  const std::shared_ptr<const model::Model> model = poisoned;
  const auto vocab = int32_t(model->spec().n_vocab);
  // Runs one batch of n tokens of a fresh sequence; true if it threw qb::Error naming the non-finite
  // input and the sequence is still empty.
  auto refused = [&](Backend& be, int n, std::string& msg) {
    const auto s = be.create_sequence();
    Batch b;
    b.add_sequence(tokens(n, vocab, 5), s, 0);
    bool threw = false;
    try {
      be.forward(b);
    } catch (const qb::Error& e) {
      threw = true;
      msg = e.what();
    }
    const bool ok = threw && msg.find("not finite") != std::string::npos && msg.find('\n') == std::string::npos &&
                    be.sequence_length(s) == 0;
    be.free_sequence(s);
    return ok;
  };
  std::string msg;
  runtime::cpu::CpuBackend cpu(model, {runtime::cpu::CpuMode::Reference, 0});
  bool ok = refused(cpu, 3, msg);  // (before the message is formed: argument order is unspecified)
  check(ok, path + " with a NaN in attn_norm: the CPU refuses: " + msg);
  for (const DenseType dt : {DenseType::Bits16, DenseType::F32}) {
    runtime::cuda::CudaBackendOptions co;
    co.dense = dt;
    runtime::cuda::CudaBackend gpu(model, co);
    for (const int n : {1, 16, 20}) {  // a graphed decode step (norm codes), its widest, a prefill (quantizer)
      msg.clear();
      ok = refused(gpu, n, msg);
      check(ok, fmt::format("{} {} with a NaN in attn_norm: {} tokens refused, sequence empty: {}",
                                              path, dt == DenseType::F32 ? "f32" : "default", n, msg));
    }
  }
}

void run_model(const std::string& path, bool is_stories) {
  std::printf("model %s\n", path.c_str());
  auto model = model::Model::load(path);
  const auto& sp = model->spec();
  runtime::cpu::CpuBackend ref(model, {runtime::cpu::CpuMode::Reference, 0});  // f32 cache
  using runtime::KvType;
  // References, made on first use, keyed by (cache type, 16-bit inputs): the CPU reference with the
  // GPU's cache type (the GPU has no f32 cache: f16 is its unquantized one), for the default variants
  // with its product inputs rounded as the GPU's default mode rounds them (hooked_reference).
  std::map<std::pair<KvType, bool>, std::unique_ptr<runtime::cpu::CpuBackend>> refs;
  std::map<std::pair<KvType, bool>, double> flip_floor;
  // The flip floor (see below): the largest mean KL over three seeds between the reference and the
  // reference with every product input moved by one ulp (made on first use, like the references).
  auto flip_floor_of = [&](KvType kv, bool round16) {
    auto [it, fresh] = flip_floor.try_emplace({kv, round16}, 0.0);
    for (uint64_t seed = 1; fresh && seed <= 3; ++seed) {
      auto jittered = hooked_reference(model, kv, {round16, seed});
      it->second = std::max(it->second, compare_script(*refs.at({kv, round16}), *jittered, int32_t(sp.n_vocab)).mean);
    }
    return it->second;
  };
  const bool w8a8 = model->layers.at(0).wq.act != runtime::cpu::ActQuant::None;
  if (w8a8) {
    std::string msg;  // switched off: one line naming the switch
    try {
      runtime::cuda::CudaBackendOptions off;
      off.w8a8 = false;
      runtime::cuda::CudaBackend gpu_off(model, off);
    } catch (const qb::Error& e) {
      msg = e.what();
    }
    check(msg.find("QB_CUDA_W8A8=0") != std::string::npos, path + ": W8A8 switched off: " + msg);
  }
  // f32 with decode graphs, f32 with plain launches, the default (packed / bf16), default chunk 7; then
  // quantized caches: f32 matrices (int8, fp8, int4), the default matrices (int8, fp8), chunk 7 (int4);
  // then the default with every decode step's attention in one split (f16, int8, fp8, int4 caches): the
  // kernels a 16-stream Llama step takes (one split normalizes in its own block), which these small
  // models' few (head, token) pairs would otherwise never reach (QB_CUDA_ATTN_ONE_SPLIT=-1). Their
  // prefills run the split kernels too (gemm_attention off): what they test is the decode kernels, and
  // the default prefill attention (f16 Q, P and dequantized K/V on tensor cores, which the reference does
  // not copy) moves W8A8 models with an int4 cache past the flip floor whatever the split (session 15:
  // stories260K-w8a8 mean KL 0.0147 against a floor of 0.000257, 0.000257 with it off; docs/perf.md).
  const KvType kv_of[] = {KvType::F16, KvType::F16, KvType::F16, KvType::F16, KvType::Int8, KvType::Fp8,
                          KvType::Int4, KvType::Int8, KvType::Fp8, KvType::Int4, KvType::Int4,
                          KvType::F16, KvType::Int8, KvType::Fp8, KvType::Int4};
  size_t f16_bytes = 0;
  for (int variant = 0; variant < 15; ++variant) {
    const KvType kv = kv_of[variant];
    const bool f32 = variant < 2 || (variant >= 4 && variant <= 6) || variant == 10;
    const bool one_split = variant >= 11;
    const DenseType dt = f32 ? DenseType::F32 : DenseType::Bits16;
    std::string dns = variant == 0 ? "f32" : variant == 1 ? "f32-nograph" : variant == 2 ? "default" : variant == 3 ? "default-chunk7"
                      : variant == 10 ? "f32-chunk7" : f32 ? "f32" : variant == 9 ? "default-chunk7"
                      : one_split ? "default-onesplit" : "default";
    if (kv != KvType::F16) dns += std::string("-kv-") + std::string(runtime::kv_type_name(kv));
    const char* dn = dns.c_str();
    runtime::cuda::CudaBackendOptions co;
    co.dense = dt;
    co.use_graphs = variant != 1;
    co.kv = kv;
    if (variant == 3 || variant == 9 || variant == 10) co.prefill_chunk = 7;
    if (one_split) co.gemm_attention = false;
    co.fp8_exact = true;  // FP8 W8A8: the form that is the CPU's arithmetic (the fast form: below the loop)
    if (one_split) setenv("QB_CUDA_ATTN_ONE_SPLIT", "-1", 1);  // read by the constructor
    runtime::cuda::CudaBackend gpu(model, co);
    if (one_split) unsetenv("QB_CUDA_ATTN_ONE_SPLIT");
    const std::string desc = gpu.describe();
    if (variant == 0 || variant == 2 || variant == 4 || variant == 8) std::printf("describe %s: %s\n", dn, desc.c_str());
    if (kv == KvType::F16) f16_bytes = gpu.kv_bytes_per_position();
    else if (variant >= 7 && variant <= 9) {  // memory per position: the CPU's bytes per row, rows padded to 16 bytes
      const auto kl = runtime::KvLayout::make(kv, sp.n_head_kv, sp.head_dim_k);
      const auto vl = runtime::KvLayout::make(kv, sp.n_head_kv, sp.head_dim_v);
      const size_t want = size_t(sp.n_layer) * ((kl.bytes_per_row() + 15) / 16 * 16 + (vl.bytes_per_row() + 15) / 16 * 16);
      char mb[256];
      std::snprintf(mb, sizeof mb, "%s: kv cache %zu bytes per position per sequence (f16: %zu; expected %zu)", dn,
                    gpu.kv_bytes_per_position(), f16_bytes, want);
      check(gpu.kv_bytes_per_position() == want && want < f16_bytes, mb);
    }
    const bool round16 = dt != DenseType::F32;
    auto& r = refs[{kv, round16}];
    if (!r) {
      r = hooked_reference(model, kv, {round16, 0});
      const KlStats own = compare_script(ref, *r, int32_t(sp.n_vocab));
      std::printf("INFO %s: the reference's own change (CPU reference, f32 cache and f32 inputs vs %s cache%s): mean "
                  "KL %.3g (max %.3g)\n", path.c_str(), std::string(runtime::kv_type_name(kv)).c_str(),
                  round16 ? " and the GPU's 16-bit product inputs" : "", own.mean, own.max);
    }
    runtime::Backend* rb = r.get();
    const KlStats st = compare_script(*rb, gpu, int32_t(sp.n_vocab));
    if (variant == 0 || variant == 2 || variant == 4 || variant == 8) check_greedy(gpu, int32_t(sp.n_vocab), path + " " + dns);
    const double lim = 1e-4;
    // Flip floor. Where activations (W8A8) or the cache are quantized at run time, a last-bit
    // difference in a value (any other summation order: norms, attention, f32 sums of a product) can
    // move it across a rounding boundary to the next code, a step of up to 1/127 (int8), 1/16 (e4m3) or
    // 1/7 (int4) of its group's absmax, and the model carries that forward: on a small model no
    // implementation that sums in another order stays under a fixed KL. There a KL over the limit
    // passes only if it is at most twice the reference's own sensitivity: the largest KL, over three
    // seeds, between the reference and the reference with every product input moved by one ulp of the
    // type the product reads (hooked_reference; the GPU's inputs differ from the reference's by a few
    // f32 ulps, and by f16 roundings the reference does not copy: Q and P of the prefill attention,
    // prefill weights dequantized to f16). Both numbers are printed.
    const bool flips = w8a8 || (kv != KvType::F16);
    const double floor_kl = flips && st.mean >= lim ? flip_floor_of(kv, round16) : 0.0;
    char buf[320];
    std::snprintf(buf, sizeof buf, "%s %s: mean KL %.3g (max %.3g) over %zu rows, limit %.0e", path.c_str(), dn,
                  st.mean, st.max, st.rows, lim);
    std::string line = buf;
    if (flips && st.mean >= lim) {
      std::snprintf(buf, sizeof buf, " (over it; flip floor, the reference with its inputs moved by one ulp: %.3g; "
                    "limit 2x that)", floor_kl);
      line += buf;
    }
    check(st.finite && st.rows == 81 + 32 + 20 && (st.mean < lim || st.mean <= 2 * floor_kl), line);

    if (is_stories) {
      std::vector<int32_t> prompt = {sp.bos_id >= 0 ? sp.bos_id : 1};
      for (int32_t t : tokens(5, int32_t(sp.n_vocab), 7)) prompt.push_back(t);
      const auto gr = greedy(*rb, prompt, 60), gg = greedy(gpu, prompt, 60);
      size_t same = 0;
      while (same < gr.size() && gr[same] == gg[same]) ++same;
      std::snprintf(buf, sizeof buf, "%s %s: greedy 60 tokens, %zu identical before the first difference", path.c_str(),
                    dn, same);
      if (dt == DenseType::F32 && !flips) check(same == 60, buf);  // quantized: a code may flip
      else std::printf("INFO %s\n", buf);

      // Decode speed on this (tiny, launch-bound) model: one sequence, 128 steps. Informational.
      const auto s = gpu.create_sequence();
      Batch b;
      b.add(prompt[0], s, 0, true);
      gpu.forward(b);
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 1; i <= 128; ++i) {
        Batch d;
        d.add(int32_t(i % sp.n_vocab), s, i, true);
        gpu.forward(d);
      }
      const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::printf("INFO %s %s: decode %.0f tok/s (batch 1, 128 steps, logits copied back each step)\n",
                  path.c_str(), dn, 128 / sec);
      gpu.free_sequence(s);
    }

    // Validation errors leave the caches untouched.
    const auto s = gpu.create_sequence();
    Batch ok;
    ok.add(1, s, 0, false);
    gpu.forward(ok);
    bool threw = false;
    try {
      Batch bad;
      bad.add(2, s, 1, false);
      bad.add(int32_t(sp.n_vocab), s, 2, true);
      gpu.forward(bad);
    } catch (const qb::Error&) {
      threw = true;
    }
    check(threw && gpu.sequence_length(s) == 1, std::string(dn) + ": bad token throws qb::Error, cache unchanged");
    threw = false;
    try {
      Batch bad;
      bad.add(1, s, 5, false);
      gpu.forward(bad);
    } catch (const qb::Error&) {
      threw = true;
    }
    check(threw && gpu.sequence_length(s) == 1, std::string(dn) + ": wrong position throws qb::Error");
    gpu.free_sequence(s);
  }

  // FP8 W8A8's fast form (the backend's default; the variants above ran the exact form), three ways: as
  // it runs (the f16 tensor-core decode kernel up to 16 tokens, the f16 tensor-core prefill kernel from 17
  // where the input width is a multiple of 16, else exact sums: the prefills of 81 and 20 tokens here); in
  // chunks of 7 tokens, so every product runs on the decode kernel; and with the FP8 tensor cores
  // (CudaBackendOptions::fp8_tensor_cores: cuBLASLt from 9 tokens). The first two sum exact products in
  // f32, so they are held to the limit and flip floor above. The FP8 tensor cores' partial sums keep about
  // 14 bits (up to 2^-12 of the sum of |products| at real widths, check_fp8_fast_wide; 7e-4 at 64-80
  // inputs), a perturbation far past one f32 ulp that flips the next product's e4m3 codes about 2^-8 of
  // the time: that form is held to a floor of that size, the reference with every W8A8 product input
  // rounded to f16 and moved by one f16 ulp (about 2^-12 to 2^-10 of each value; largest mean KL over
  // three seeds), limit 2x that. A broken product or a wrong scale gives a mean KL of order 1 (see the top
  // of this file). All three numbers are printed: the third minus the first is what the FP8 tensor cores'
  // accumulation costs on this model.
  if (model->layers.at(0).wq.act == runtime::cpu::ActQuant::Fp8PerToken) {
    auto& r = refs[{KvType::F16, true}];
    if (!r) r = hooked_reference(model, KvType::F16, {true, 0});
    double fp8_floor = 0;
    for (uint64_t seed = 1; seed <= 3; ++seed) {
      InputHook h{true, seed};
      h.w8a8_as_f16 = true;
      fp8_floor = std::max(fp8_floor, compare_script(*r, *hooked_reference(model, KvType::F16, h),
                                                     int32_t(sp.n_vocab)).mean);
    }
    const double lim = 1e-4;
    struct Form { const char* name; bool tensor_cores; int chunk; };
    double mean_kl[2] = {-1, -2};  // as it runs; with the FP8 tensor cores
    for (const Form& f : {Form{"default-fp8-fast", false, 0}, Form{"default-fp8-fast-chunk7-decode-kernel-only", false, 7},
                          Form{"fp8-tensor-cores", true, 0}}) {
      runtime::cuda::CudaBackendOptions co;
      if (f.chunk) co.prefill_chunk = f.chunk;  // (else the default: each prefill in one chunk)
      co.fp8_tensor_cores = f.tensor_cores;
      runtime::cuda::CudaBackend gpu(model, co);
      const std::string desc = gpu.describe();
      const KlStats st = compare_script(*r, gpu, int32_t(sp.n_vocab));
      if (f.chunk == 0) mean_kl[f.tensor_cores ? 1 : 0] = st.mean;
      const double floor_kl = !f.tensor_cores ? (st.mean >= lim ? flip_floor_of(KvType::F16, true) : 0.0) : fp8_floor;
      // (the ranges as gemm_ready takes them: the f16 tensor-core prefill kernel from 17 tokens, or the FP8
      // tensor cores from 9; with them, shapes cuBLASLt does not take, such as stories260K's 344-row gate|up,
      // still run the prefill kernel)
      const bool names_tc = desc.find("from 9 tokens: FP8 tensor cores through cuBLASLt") != std::string::npos;
      const bool names_wgmma = desc.find("from 17 tokens: the exact products summed by the f16 tensor cores (wgmma") !=
                               std::string::npos;
      char buf[400];
      std::snprintf(buf, sizeof buf,
                    "%s %s: mean KL %.3g (max %.3g) over %zu rows, limit %.0e or 2x the floor %.3g (%s); describe %s "
                    "the FP8 tensor cores from 9 tokens, %s the f16 tensor-core prefill kernel from 17",
                    path.c_str(), f.name, st.mean, st.max, st.rows, lim, floor_kl,
                    f.tensor_cores ? "inputs moved by one f16 ulp" : "inputs moved by one ulp",
                    names_tc ? "names" : "does not name", names_wgmma ? "names" : "does not name");
      check(st.finite && st.rows == 81 + 32 + 20 && (st.mean < lim || st.mean <= 2 * floor_kl) &&
                names_tc == f.tensor_cores && (f.tensor_cores || names_wgmma) &&
                desc.find("REFUSED") == std::string::npos,
            buf);
    }
    // The FP8 tensor cores' sums are not the f32 sums of the default form, so the two forms' logits differ
    // (the same mean KL would mean the prefills never reached the tensor cores).
    check(mean_kl[0] != mean_kl[1], path + " fp8-tensor-cores: the prefills ran on the FP8 tensor cores (its mean "
                                           "KL differs from the default form's)");
  }
}

}  // namespace backend_check
