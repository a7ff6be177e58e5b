// Matrix products over weights in their stored format. Reference: dequantize a row, accumulate in
// double. Fast: per-ISA fused kernels (matmul_kernels_*.cpp) that read the weights block by block and
// never materialise a dequantized matrix; for quantized weights the activations are first quantized
// to 8-bit blocks (llama.cpp's scheme), so the inner loops are integer dot products. Work is split
// over output rows (contiguous chunks per thread, so results never depend on scheduling); tokens are
// processed kMaxTileTokens at a time per weight row so each weight block is unpacked once per tile.
#include "quantbench/runtime/cpu/matmul.h"

#include <algorithm>
#include <memory>
#include <vector>

#include "quantbench/core/error.h"
#include "quantbench/quant/qformat/ggml_blocks.h"
#include "quantbench/quant/qformat/quantized_tensor.h"
#include "quantbench/runtime/cpu/gemm_f32.h"
#include "quantbench/runtime/cpu/matmul_intk_driver.h"
#include "quantbench/runtime/cpu/matmul_kernels.h"
#include "quantbench/runtime/cpu/matmul_w8a8.h"

namespace qb::runtime::cpu {

using formats::GgmlType;

namespace {

void check_matrix(const WeightMatrix& w, const float* x, int64_t n_tokens, const float* y) {
  QB_CHECK(w.n_in > 0 && w.n_out > 0, "matmul: impossible weight shape [{}, {}]", w.n_out, w.n_in);
  QB_CHECK(n_tokens >= 0, "matmul: negative token count {}", n_tokens);
  QB_CHECK(w.data != nullptr && x != nullptr && y != nullptr, "matmul: null data pointer");
  const size_t need = formats::ggml_row_bytes(w.type, w.n_in);  // throws on ragged rows
  QB_CHECK(w.row_bytes >= need, "matmul: {} row of {} elements needs {} bytes, row stride is {}",
           formats::ggml_type_name(w.type), w.n_in, need, w.row_bytes);
}

void matmul_reference(const WeightMatrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool) {
  QB_CHECK(qformat::can_dequantize(w.type), "matmul: no dequantizer for {}", formats::ggml_type_name(w.type));
  pool.parallel_for(size_t(w.n_out), [&](size_t begin, size_t end, int) {
    std::vector<float> row(size_t(w.n_in));
    for (size_t o = begin; o < end; ++o) {
      qformat::dequantize_row(w.type, w.data + o * w.row_bytes, row.data(), w.n_in);
      for (int64_t t = 0; t < n_tokens; ++t) {
        const float* xt = x + t * w.n_in;
        double acc = 0;
        for (int64_t i = 0; i < w.n_in; ++i) acc += double(row[size_t(i)]) * xt[i];
        y[t * w.n_out + int64_t(o)] = float(acc);
      }
    }
  });
}

const KernelTable& table_for(CpuIsa isa) {
  return for_cpu_isa(isa, "matmul", scalar_kernels, avx2_kernels, avx512_kernels);
}

QuantDotFn quant_kernel(const KernelTable& k, GgmlType type) {
  switch (type) {
    case GgmlType::Q8_0: return k.q8_0;
    case GgmlType::Q4_0: return k.q4_0;
    case GgmlType::Q4_1: return k.q4_1;
    case GgmlType::Q5_0: return k.q5_0;
    case GgmlType::Q5_1: return k.q5_1;
    case GgmlType::Q4_K: return k.q4_k;
    case GgmlType::Q5_K: return k.q5_k;
    case GgmlType::Q6_K: return k.q6_k;
    default: return nullptr;
  }
}

FloatDotFn float_kernel(const KernelTable& k, GgmlType type) {
  switch (type) {
    case GgmlType::F32: return k.f32;
    case GgmlType::F16: return k.f16;
    default: return nullptr;
  }
}

// Each thread takes a contiguous range of output rows and walks it in blocks of kRowBlock rows; for
// each block it runs every token tile, so the block's weights stay in L1 while the (small, reused)
// activations stream from L2. Decode (one token) is then one kernel call per row block.
constexpr int64_t kRowBlock = 16;

template <typename X, typename Fn>
void run_tiles(const WeightMatrix& w, const X* const* tokens, int64_t n_tokens, float* y, ThreadPool& pool, Fn kernel) {
  pool.parallel_for(size_t(w.n_out), [&](size_t begin, size_t end, int) {
    for (int64_t r0 = int64_t(begin); r0 < int64_t(end); r0 += kRowBlock) {
      const int64_t rows = std::min<int64_t>(kRowBlock, int64_t(end) - r0);
      for (int64_t t0 = 0; t0 < n_tokens; t0 += kMaxTileTokens) {
        const int nt = int(std::min<int64_t>(kMaxTileTokens, n_tokens - t0));
        kernel(w.data + size_t(r0) * w.row_bytes, w.row_bytes, rows, w.n_in, tokens + t0, nt, y + t0 * w.n_out + r0,
               w.n_out);
      }
    }
  });
}

}  // namespace

bool has_fast_kernel(GgmlType type) { return quant_kernel(scalar_kernels(), type) || float_kernel(scalar_kernels(), type); }
bool fast_kernel_quantizes_activations(GgmlType type) { return quant_kernel(scalar_kernels(), type) != nullptr; }

void matmul_with_isa(const WeightMatrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool, CpuIsa isa) {
  check_matrix(w, x, n_tokens, y);
  if (n_tokens == 0) return;
  const KernelTable& k = table_for(isa);
  if (const FloatDotFn f = float_kernel(k, w.type)) {
    std::vector<const float*> tokens(static_cast<size_t>(n_tokens));
    for (int64_t t = 0; t < n_tokens; ++t) tokens[size_t(t)] = x + t * w.n_in;
    run_tiles(w, tokens.data(), n_tokens, y, pool, f);
    return;
  }
  const QuantDotFn q = quant_kernel(k, w.type);
  if (!q) return matmul_reference(w, x, n_tokens, y, pool);
  // All quantized types here have blocks of 32 or 256, so n_in is a multiple of 32.
  const int64_t nb = w.n_in / 32;
  std::vector<ActQ8Block> act(static_cast<size_t>(n_tokens * nb));
  pool.parallel_for(size_t(n_tokens), [&](size_t begin, size_t end, int) {
    for (size_t t = begin; t < end; ++t)
      k.quantize_act(x + int64_t(t) * w.n_in, w.n_in, act.data() + int64_t(t) * nb);
  });
  std::vector<const ActQ8Block*> tokens(static_cast<size_t>(n_tokens));
  for (int64_t t = 0; t < n_tokens; ++t) tokens[size_t(t)] = act.data() + t * nb;
  run_tiles(w, tokens.data(), n_tokens, y, pool, q);
}

namespace {

constexpr int64_t kDequantGemmMaxElements = int64_t(1) << 26;  // 256 MB of f32 scratch at most

// y = x W^T through gemm_f32 with W dequantized to f32 row-major first (rows in parallel).
void matmul_dequant_gemm(const WeightMatrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool) {
  // Not value-initialised: every row is written by the dequantizer.
  const std::unique_ptr<float[]> wf(new float[size_t(w.n_out * w.n_in)]);
  pool.parallel_for(size_t(w.n_out), [&](size_t b, size_t e, int) {
    for (size_t o = b; o < e; ++o) {
      float* dst = wf.get() + o * size_t(w.n_in);
      if (w.quantized) quant::dequantize_row(*w.quantized, int64_t(o), dst);
      else qformat::dequantize_row(w.type, w.data + o * w.row_bytes, dst, w.n_in);
    }
  });
  // A(r, t) = x[t][r], B(r, o) = W[o][r]: C = A^T B is tokens x outputs, y's layout.
  const GemmOperand a{x, 1, w.n_in}, b{wf.get(), 1, w.n_in};
  gemm_f32_tn(w.n_in, n_tokens, w.n_out, a, b, y, w.n_out, false, pool, /*accumulate=*/false);
}

}  // namespace

std::string describe_dequant_gemm_path() {
  return describe_gemm_f32() + ", weights dequantized to f32, activations unquantized, for batches of >= " +
         std::to_string(kDequantGemmMinTokens) + " tokens (smaller ones run the fast kernels)";
}

void matmul(const WeightMatrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool, MatmulPath path) {
  if (w.act != ActQuant::None) return matmul_w8a8(w, x, n_tokens, y, pool);  // one exact path for both modes
  if (w.quantized) {
    const quant::QuantizedTensor& q = *w.quantized;
    QB_CHECK(q.rows == w.n_out && q.cols == w.n_in, "matmul: quantized tensor is {}x{}, the matrix {}x{}", q.rows,
             q.cols, w.n_out, w.n_in);
    QB_CHECK(n_tokens >= 0 && x != nullptr && y != nullptr, "matmul: bad arguments");
  }
  if (path == MatmulPath::DequantGemm) {
    const bool can_dequantize = w.quantized || qformat::can_dequantize(w.type);
    if (n_tokens >= kDequantGemmMinTokens && w.n_out * w.n_in <= kDequantGemmMaxElements && can_dequantize) {
      if (w.quantized) w.quantized->check();
      else check_matrix(w, x, n_tokens, y);
      return matmul_dequant_gemm(w, x, n_tokens, y, pool);
    }
    path = MatmulPath::Fast;
  }
  if (w.quantized) {
    const quant::QuantizedTensor& q = *w.quantized;
    if (path == MatmulPath::Fast && has_intk_kernel(q))
      return matmul_intk(q, x, n_tokens, y, pool, selected_cpu_isa());
    q.check();
    pool.parallel_for(size_t(n_tokens), [&](size_t b, size_t e, int) {
      for (size_t t = b; t < e; ++t) quant::matvec(q, x + t * size_t(w.n_in), y + t * size_t(w.n_out));
    });
    return;
  }
  if (path == MatmulPath::Fast && has_fast_kernel(w.type))
    return matmul_with_isa(w, x, n_tokens, y, pool, selected_cpu_isa());
  check_matrix(w, x, n_tokens, y);
  matmul_reference(w, x, n_tokens, y, pool);
}

std::string describe_fast_path(GgmlType type) {
  const std::string name(formats::ggml_type_name(type));
  if (!has_fast_kernel(type)) return "reference (no fast kernel for " + name + ")";
  const CpuIsa isa = selected_cpu_isa();
  const KernelTable& k = table_for(isa);
  const std::string tile = std::to_string(kMaxTileTokens) + " tokens per weight pass";
  if (!fast_kernel_quantizes_activations(type))
    return std::string(cpu_isa_name(isa)) + ": " + name + " x f32, " + k.float_label + " accumulating in f32, " + tile;
  return std::string(cpu_isa_name(isa)) + ": " + name +
         " x q8 (activations quantized to 8-bit blocks, as llama.cpp does), integer dot products (" +
         k.int_dot_label + "), " + tile;
}

}  // namespace qb::runtime::cpu
