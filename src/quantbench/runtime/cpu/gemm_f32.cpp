// See gemm_f32.h.
#include "quantbench/runtime/cpu/gemm_f32.h"

#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "quantbench/core/error.h"

namespace qb::runtime::cpu {
namespace {

// Rows of k per packed chunk: a 12-wide A panel of 256 rows is 12 KB (stays in L1 while B's panels
// stream past it), and 256 f32 products per partial sum keep its rounding near 1e-6 relative.
constexpr int64_t kKc = 256;

GemmMicroKernel kernel_for(CpuIsa isa) {
  QB_CHECK(cpu_isa_supported(isa), "gemm_f32: this CPU cannot run {} kernels", cpu_isa_name(isa));
  switch (isa) {
    case CpuIsa::Avx512: return gemm_micro_kernel_avx512();
    case CpuIsa::Avx2: return gemm_micro_kernel_avx2();
    case CpuIsa::Scalar: break;
  }
  return gemm_micro_kernel_scalar();
}

// Columns [c0, c0 + w) of rows [r0, r0 + kc) of op as a panel of `width` columns (w <= width; the
// rest zero), row r at out[r * width].
void pack_panel(const GemmOperand& op, int64_t r0, int64_t kc, int64_t c0, int64_t w, int width, float* out) {
  for (int64_t r = 0; r < kc; ++r) {
    const float* row = op.p + (r0 + r) * op.row_stride + c0 * op.col_stride;
    float* o = out + r * width;
    if (op.col_stride == 1) std::copy(row, row + w, o);
    else
      for (int64_t c = 0; c < w; ++c) o[c] = row[c * op.col_stride];
    for (int64_t c = w; c < width; ++c) o[c] = 0;
  }
}

void check_operand(const GemmOperand& op, const char* which) {
  QB_CHECK(op.p != nullptr, "gemm_f32: operand {} has no data", which);
}

template <class T>
void gemm_impl(int64_t k, int64_t m, int64_t n, const GemmOperand& a, const GemmOperand& b, T* c, int64_t ldc,
               bool upper_only, ThreadPool& pool, const GemmMicroKernel& mk) {
  QB_CHECK(k >= 0 && m >= 0 && n >= 0 && ldc >= n, "gemm_f32: impossible shape k {} m {} n {} ldc {}", k, m, n, ldc);
  if (k == 0 || m == 0 || n == 0) return;
  QB_CHECK(c != nullptr, "gemm_f32: no output");
  check_operand(a, "A");
  check_operand(b, "B");
  const int64_t pm = (m + mk.mr - 1) / mk.mr, pn = (n + mk.nr - 1) / mk.nr;
  struct Tile {
    int64_t ip, jp;
  };
  std::vector<Tile> tiles;
  for (int64_t ip = 0; ip < pm; ++ip)
    for (int64_t jp = 0; jp < pn; ++jp)
      if (!upper_only || std::min(n, (jp + 1) * mk.nr) - 1 >= ip * mk.mr) tiles.push_back({ip, jp});
  std::vector<float> ap(size_t(pm * mk.mr * kKc)), bp(size_t(pn * mk.nr * kKc));
  for (int64_t r0 = 0; r0 < k; r0 += kKc) {
    const int64_t kc = std::min(kKc, k - r0);
    pool.parallel_for(size_t(pm + pn), [&](size_t begin, size_t end, int) {
      for (size_t p = begin; p < end; ++p) {
        const int64_t i = int64_t(p);
        if (i < pm)
          pack_panel(a, r0, kc, i * mk.mr, std::min<int64_t>(mk.mr, m - i * mk.mr), mk.mr,
                     ap.data() + i * mk.mr * kc);
        else
          pack_panel(b, r0, kc, (i - pm) * mk.nr, std::min<int64_t>(mk.nr, n - (i - pm) * mk.nr), mk.nr,
                     bp.data() + (i - pm) * mk.nr * kc);
      }
    });
    pool.parallel_for(tiles.size(), [&](size_t begin, size_t end, int) {
      std::vector<float> ct(size_t(mk.mr * mk.nr));
      for (size_t t = begin; t < end; ++t) {
        const Tile& tl = tiles[t];
        mk.tile(kc, ap.data() + tl.ip * mk.mr * kc, bp.data() + tl.jp * mk.nr * kc, ct.data());
        const int64_t i0 = tl.ip * mk.mr, j0 = tl.jp * mk.nr;
        const int64_t ni = std::min<int64_t>(mk.mr, m - i0), nj = std::min<int64_t>(mk.nr, n - j0);
        for (int64_t i = 0; i < ni; ++i) {
          T* ci = c + (i0 + i) * ldc + j0;
          const float* s = ct.data() + i * mk.nr;
          for (int64_t j = 0; j < nj; ++j) ci[j] += T(s[j]);
        }
      }
    });
  }
}

}  // namespace

void gemm_f32_tn(int64_t k, int64_t m, int64_t n, const GemmOperand& a, const GemmOperand& b, double* c, int64_t ldc,
                 bool upper_only, ThreadPool& pool) {
  gemm_impl(k, m, n, a, b, c, ldc, upper_only, pool, kernel_for(selected_cpu_isa()));
}

void gemm_f32_tn(int64_t k, int64_t m, int64_t n, const GemmOperand& a, const GemmOperand& b, float* c, int64_t ldc,
                 bool upper_only, ThreadPool& pool) {
  gemm_impl(k, m, n, a, b, c, ldc, upper_only, pool, kernel_for(selected_cpu_isa()));
}

void gemm_f32_tn_with_isa(int64_t k, int64_t m, int64_t n, const GemmOperand& a, const GemmOperand& b, double* c,
                          int64_t ldc, bool upper_only, ThreadPool& pool, CpuIsa isa) {
  gemm_impl(k, m, n, a, b, c, ldc, upper_only, pool, kernel_for(isa));
}

std::string describe_gemm_f32() {
  const CpuIsa isa = selected_cpu_isa();
  const GemmMicroKernel mk = kernel_for(isa);
  return fmt::format("{} {}x{} f32 micro-kernel, f32 sums over {} products", cpu_isa_name(isa), mk.mr, mk.nr, kKc);
}

}  // namespace qb::runtime::cpu
