// See matmul_intk_driver.h. Activations are quantized once per call (the same blocks the ggml-type
// path makes), permuted within blocks for the SIMD tables, then rows are split over threads in
// contiguous ranges (results never depend on scheduling) and walked in blocks of 16 rows x tiles of
// kMaxTileTokens tokens, so each weight block is unpacked once per tile.
#include "quantbench/runtime/cpu/matmul_intk_driver.h"

#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "quantbench/core/error.h"
#include "quantbench/runtime/cpu/matmul_intk_kernels.h"
#include "quantbench/runtime/cpu/matmul_kernels.h"

namespace qb::runtime::cpu {

using quant::QuantizedTensor;

namespace {

const IntkKernelTable& intk_table(CpuIsa isa) {
  return for_cpu_isa(isa, "matmul", intk_scalar_kernels, intk_avx2_kernels, intk_avx512_kernels);
}

QuantizeActFn act_quantizer(CpuIsa isa) {
  return for_cpu_isa(
      isa, "matmul", [] { return scalar_kernels().quantize_act; }, [] { return avx2_kernels().quantize_act; },
      [] { return avx512_kernels().quantize_act; });
}

IntkDotFn kernel_for(const IntkKernelTable& t, quant::QFormat f) {
  switch (f) {
    case quant::QFormat::Int2: return t.int2;
    case quant::QFormat::Int3: return t.int3;
    case quant::QFormat::Int4: return t.int4;
    case quant::QFormat::Int8: return t.int8;
    default: return nullptr;
  }
}

constexpr int64_t kRowBlock = 16;

}  // namespace

std::array<uint8_t, 32> act_permutation(int bits) {
  std::array<uint8_t, 32> p{};
  for (int i = 0; i < 32; ++i) {
    if (bits == 4) p[size_t(i)] = uint8_t(i < 16 ? 2 * i : 2 * (i - 16) + 1);
    else if (bits == 2) p[size_t(i)] = uint8_t(4 * (i % 8) + i / 8);
    else p[size_t(i)] = uint8_t(i);
  }
  return p;
}

bool has_intk_kernel(const QuantizedTensor& q) {
  const auto& l = q.layout;
  return quant::is_int_format(l.format) && (l.scale_type == quant::ScaleType::F16 || l.scale_type == quant::ScaleType::BF16) &&
         (l.granularity == quant::Granularity::Channel || l.granularity == quant::Granularity::Group) &&
         q.group_cols() % 32 == 0 && q.cols % 32 == 0;
}

void matmul_intk(const QuantizedTensor& q, const float* x, int64_t n_tokens, float* y, ThreadPool& pool, CpuIsa isa) {
  q.check();
  QB_CHECK(has_intk_kernel(q), "matmul: no INTk kernel for {} with {} columns", quant::layout_name(q.layout), q.cols);
  QB_CHECK(n_tokens >= 0 && x != nullptr && y != nullptr, "matmul: bad arguments");
  if (n_tokens == 0) return;
  const IntkKernelTable& t = intk_table(isa);
  const IntkDotFn fn = kernel_for(t, q.layout.format);
  const int64_t nb = q.cols / 32;
  std::vector<ActQ8Block> act(size_t(n_tokens * nb));
  const QuantizeActFn quantize = act_quantizer(isa);
  const auto perm = act_permutation(quant::format_traits(q.layout.format).bits);
  pool.parallel_for(size_t(n_tokens), [&](size_t begin, size_t end, int) {
    for (size_t tk = begin; tk < end; ++tk) {
      ActQ8Block* blocks = act.data() + int64_t(tk) * nb;
      quantize(x + int64_t(tk) * q.cols, q.cols, blocks);
      if (!t.permuted_acts) continue;
      for (int64_t b = 0; b < nb; ++b) {
        int8_t tmp[32];
        for (int i = 0; i < 32; ++i) tmp[i] = blocks[b].qs[perm[size_t(i)]];
        std::copy(tmp, tmp + 32, blocks[b].qs);
      }
    }
  });
  std::vector<const ActQ8Block*> tokens(static_cast<size_t>(n_tokens));
  for (int64_t tk = 0; tk < n_tokens; ++tk) tokens[size_t(tk)] = act.data() + tk * nb;
  pool.parallel_for(size_t(q.rows), [&](size_t begin, size_t end, int) {
    for (int64_t r0 = int64_t(begin); r0 < int64_t(end); r0 += kRowBlock) {
      const int64_t r1 = std::min<int64_t>(r0 + kRowBlock, int64_t(end));
      for (int64_t t0 = 0; t0 < n_tokens; t0 += kMaxTileTokens) {
        const int nt = int(std::min<int64_t>(kMaxTileTokens, n_tokens - t0));
        fn(q, r0, r1, tokens.data() + t0, nt, y + t0 * q.rows, q.rows);
      }
    }
  });
}

std::string describe_intk_path(const QuantizedTensor& q) {
  if (!has_intk_kernel(q)) return "reference quant::matvec (no fused kernel for " + quant::layout_name(q.layout) + ")";
  const CpuIsa isa = selected_cpu_isa();
  return fmt::format("{}: {} x q8 (activations quantized to 8-bit blocks of 32, as llama.cpp does), {}, {} tokens per "
                     "weight pass",
                     cpu_isa_name(isa), quant::layout_name(q.layout), intk_table(isa).label, kMaxTileTokens);
}

}  // namespace qb::runtime::cpu
