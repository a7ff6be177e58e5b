// See gemm_f32.h.
#include "quantbench/runtime/cpu/gemm_f32.h"

#include <fmt/format.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "quantbench/core/error.h"

namespace qb::runtime::cpu {
namespace {

// Rows of k per packed chunk: a 12-wide A panel of 256 rows is 12 KB (stays in L1 while B's panels
// stream past it), and 256 f32 products per partial sum keep its rounding near 1e-6 relative.
constexpr int64_t kKc = 256;
// With a float C the sum across chunks is f32 anyway, so chunks only bound the panels' size: up to
// 384 rows, balanced (k = 576 runs as 2 x 288, not 256 + 256 + 64, whose short chunk paid the C
// update for little arithmetic).
constexpr int64_t kKcF32 = 384;
// Bytes of packed B per block of the tile order (about half a core's L2).
constexpr int64_t kBBlockBytes = int64_t(512) << 10;
// Largest micro-kernel tile (12 x 32).
constexpr int kMaxTile = 384;

GemmMicroKernel kernel_for(CpuIsa isa) {
  return for_cpu_isa(isa, "gemm_f32", gemm_micro_kernel_scalar, gemm_micro_kernel_avx2, gemm_micro_kernel_avx512);
}

// Columns [c0, c0 + w) of rows [r0, r0 + kc) of op as a panel of `width` columns (w <= width; the
// rest zero), row r at out[r * width].
void pack_panel(const GemmOperand& op, int64_t r0, int64_t kc, int64_t c0, int64_t w, int width, float* out) {
  if (op.col_stride == 1) {
    for (int64_t r = 0; r < kc; ++r) {
      const float* row = op.p + (r0 + r) * op.row_stride + c0;
      std::copy(row, row + w, out + r * width);
    }
  } else {
    // A transpose (x W^T reads W's rows as columns): walk each source column contiguously.
    for (int64_t c = 0; c < w; ++c) {
      const float* col = op.p + r0 * op.row_stride + (c0 + c) * op.col_stride;
      for (int64_t r = 0; r < kc; ++r) out[r * width + c] = col[r * op.row_stride];
    }
  }
  if (w < width)
    for (int64_t r = 0; r < kc; ++r) std::fill(out + r * width + w, out + (r + 1) * width, 0.0f);
}

void check_operand(const GemmOperand& op, const char* which) {
  QB_CHECK(op.p != nullptr, "gemm_f32: operand {} has no data", which);
}

template <class T>
void gemm_impl(int64_t k, int64_t m, int64_t n, const GemmOperand& a, const GemmOperand& b, T* c, int64_t ldc,
               bool upper_only, bool accumulate, ThreadPool& pool, const GemmMicroKernel& mk) {
  QB_CHECK(k >= 0 && m >= 0 && n >= 0 && ldc >= n, "gemm_f32: impossible shape k {} m {} n {} ldc {}", k, m, n, ldc);
  if (m == 0 || n == 0) return;
  QB_CHECK(c != nullptr, "gemm_f32: no output");
  if (k == 0) {
    if (!accumulate)
      for (int64_t i = 0; i < m; ++i)
        std::fill(c + i * ldc + (upper_only ? std::min(i, n) : 0), c + i * ldc + n, T(0));
    return;
  }
  check_operand(a, "A");
  check_operand(b, "B");
  const int64_t max_kc = std::is_same_v<T, float> ? kKcF32 : kKc;
  const int64_t n_chunks = (k + max_kc - 1) / max_kc, chunk = (k + n_chunks - 1) / n_chunks;
  const int64_t b_block_panels = std::max<int64_t>(1, kBBlockBytes / (mk.nr * chunk * int64_t(sizeof(float))));
  const int64_t pm = (m + mk.mr - 1) / mk.mr, pn = (n + mk.nr - 1) / mk.nr;
  QB_CHECK(mk.mr * mk.nr <= kMaxTile, "gemm_f32: micro-kernel tile {}x{} too large", mk.mr, mk.nr);
  // Tiles in (B block, A panel, B panel) order: a block of B panels (about half a core's L2) is
  // reused by every A panel, and each A panel (12 KB at 256 rows) stays in L1 across the block's B
  // panels. Without the blocking, every A panel streamed all of packed B from L3 once B
  // passed the L2 size (n > ~1000).
  struct Tile {
    int64_t ip, jp;
  };
  std::vector<Tile> tiles;
  for (int64_t jb = 0; jb < pn; jb += b_block_panels)
    for (int64_t ip = 0; ip < pm; ++ip)
      for (int64_t jp = jb; jp < std::min(pn, jb + b_block_panels); ++jp)
        if (!upper_only || std::min(n, (jp + 1) * mk.nr) - 1 >= ip * mk.mr) tiles.push_back({ip, jp});
  // Packed A and B for one k chunk; not value-initialised (pack_panel writes every element, padding too).
  const std::unique_ptr<float[]> ap(new float[size_t(pm * mk.mr * chunk)]), bp(new float[size_t(pn * mk.nr * chunk)]);
  for (int64_t r0 = 0; r0 < k; r0 += chunk) {
    const int64_t kc = std::min(chunk, k - r0);
    const bool add = accumulate || r0 > 0;  // the first chunk sets C when not accumulating
    pool.parallel_for(size_t(pm + pn), [&](size_t begin, size_t end, int) {
      for (size_t p = begin; p < end; ++p) {
        const int64_t i = int64_t(p);
        if (i < pm)
          pack_panel(a, r0, kc, i * mk.mr, std::min<int64_t>(mk.mr, m - i * mk.mr), mk.mr, ap.get() + i * mk.mr * kc);
        else
          pack_panel(b, r0, kc, (i - pm) * mk.nr, std::min<int64_t>(mk.nr, n - (i - pm) * mk.nr), mk.nr,
                     bp.get() + (i - pm) * mk.nr * kc);
      }
    });
    pool.parallel_for(tiles.size(), [&](size_t begin, size_t end, int) {
      float ct[kMaxTile];
      for (size_t t = begin; t < end; ++t) {
        const Tile& tl = tiles[t];
        const int64_t i0 = tl.ip * mk.mr, j0 = tl.jp * mk.nr;
        const int64_t ni = std::min<int64_t>(mk.mr, m - i0), nj = std::min<int64_t>(mk.nr, n - j0);
        // C's rows are far apart (a large C lives in L3 or DRAM): start their loads now so they
        // overlap the tile's arithmetic instead of stalling the update after it. Into L2 only: the
        // B panel streaming through L1 during the tile would evict them from there.
        for (int64_t i = 0; i < ni; ++i)
          for (int64_t j = 0; j < nj; j += 64 / int64_t(sizeof(T)))
            __builtin_prefetch(c + (i0 + i) * ldc + j0 + j, /*rw=*/1, /*locality=*/2);
        mk.tile(kc, ap.get() + tl.ip * mk.mr * kc, bp.get() + tl.jp * mk.nr * kc, ct);
        for (int64_t i = 0; i < ni; ++i) {
          T* ci = c + (i0 + i) * ldc + j0;
          const float* s = ct + i * mk.nr;
          if (add)
            for (int64_t j = 0; j < nj; ++j) ci[j] += T(s[j]);
          else
            for (int64_t j = 0; j < nj; ++j) ci[j] = T(s[j]);
        }
      }
    });
  }
}

}  // namespace

void gemm_f32_tn(int64_t k, int64_t m, int64_t n, const GemmOperand& a, const GemmOperand& b, double* c, int64_t ldc,
                 bool upper_only, ThreadPool& pool, bool accumulate) {
  gemm_impl(k, m, n, a, b, c, ldc, upper_only, accumulate, pool, kernel_for(selected_cpu_isa()));
}

void gemm_f32_tn(int64_t k, int64_t m, int64_t n, const GemmOperand& a, const GemmOperand& b, float* c, int64_t ldc,
                 bool upper_only, ThreadPool& pool, bool accumulate) {
  gemm_impl(k, m, n, a, b, c, ldc, upper_only, accumulate, pool, kernel_for(selected_cpu_isa()));
}

void gemm_f32_tn_with_isa(int64_t k, int64_t m, int64_t n, const GemmOperand& a, const GemmOperand& b, double* c,
                          int64_t ldc, bool upper_only, ThreadPool& pool, CpuIsa isa, bool accumulate) {
  gemm_impl(k, m, n, a, b, c, ldc, upper_only, accumulate, pool, kernel_for(isa));
}

std::string describe_gemm_f32() {
  const CpuIsa isa = selected_cpu_isa();
  const GemmMicroKernel mk = kernel_for(isa);
  return fmt::format("{} {}x{} f32 micro-kernel, f32 sums over {} products", cpu_isa_name(isa), mk.mr, mk.nr, kKc);
}

}  // namespace qb::runtime::cpu
