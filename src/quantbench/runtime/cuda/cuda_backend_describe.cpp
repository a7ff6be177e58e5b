// See cuda_backend_impl.h. What the CUDA backend says of itself: describe() and the Manifest's other
// notes (device, KV cache, activations, weight bytes), and the profiling mode's totals and report.
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "quantbench/runtime/cuda/cuda_backend_impl.h"

namespace qb::runtime::cuda {

std::string CudaBackend::Impl::early_small_note(bool overlap) const {
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

void CudaBackend::Impl::prof_end(int T) {
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
                     "dependent launch): {}{}; batches of more than {} tokens run as consecutive chunks; qgemv launch rule {}{}; decode L2 prefetch of each product's first {} "
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
                     std::max(1, options_.prefill_chunk),
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

}  // namespace qb::runtime::cuda
