#include "quantbench/runtime/cpu/matmul.h"

#include <vector>

#include "quantbench/quant/qformat/ggml_blocks.h"

namespace qb::runtime::cpu {

static void matmul_reference(const WeightMatrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool) {
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

void matmul(const WeightMatrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool, MatmulPath path) {
  (void)path;  // the fast kernels are not written yet: everything runs the reference
  matmul_reference(w, x, n_tokens, y, pool);
}

std::string describe_fast_path(formats::GgmlType type) {
  return std::string("reference (no fast kernel for ") + std::string(formats::ggml_type_name(type)) + ")";
}

}  // namespace qb::runtime::cpu
