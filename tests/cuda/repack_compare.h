// The repack check shared by the CPU suite (tests/runtime/cuda_repack_test.cpp, under the sanitizers in
// CI) and the GPU machine's backend check (cuda_backend_check.cpp): every weight of a stored matrix as the
// CUDA backend repacks it (host/weight_repack.h) against the CPU reference's dequantization, and the
// packed form's round trip (unpack(pack(m)) == m).
// Exact for every type but the K-quants, whose repack rounds each sub-block's scale (d*sc) and min
// (-dmin*m: Q2_K, Q4_K, Q5_K) once to f16 (relative error <= 2^-11, or 2^-25 absolute below f16's normal
// range); there q s + m may differ from the CPU's f32 value by (|q| |s| + |m|) 2^-11 (1 + 2^-10) +
// (|q| + 1) 2^-25 + |value| 2^-23, and q s (no min: Q3_K, Q6_K) by |q| |s| 2^-11 (1 + 2^-10) + |q| 2^-25 +
// |value| 2^-23. A wrong value, scale or min is off by far more.
#pragma once
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "quantbench/core/dtype.h"
#include "quantbench/quant/qformat/ggml_blocks.h"
#include "quantbench/quant/qformat/quantized_tensor.h"
#include "quantbench/runtime/cpu/matmul.h"
#include "quantbench/runtime/cuda/host/packed_layout.h"
#include "quantbench/runtime/cuda/host/weight_repack.h"

namespace qb::cuda_checks {

inline bool rounds_scales(formats::GgmlType t) {
  using formats::GgmlType;
  return t == GgmlType::Q2_K || t == GgmlType::Q3_K || t == GgmlType::Q4_K || t == GgmlType::Q5_K ||
         t == GgmlType::Q6_K;
}

// Weights of hm (w repacked) that differ from the CPU's dequantization of w beyond the bound above, or
// whose packed round trip differs.
inline size_t repack_mismatches(const runtime::cpu::WeightMatrix& w, const runtime::cuda::HostMatrix& hm) {
  const runtime::cuda::HostMatrix back = runtime::cuda::unpack(runtime::cuda::pack(hm));
  std::vector<float> row(size_t(w.n_in));
  size_t mismatched = 0;
  for (int64_t o = 0; o < w.n_out; ++o) {
    if (w.quantized) quant::dequantize_row(*w.quantized, o, row.data());
    else qformat::dequantize_row(w.type, w.data + size_t(o) * w.row_bytes, row.data(), w.n_in);
    for (int64_t i = 0; i < w.n_in; ++i) {
      const double want = row[size_t(i)];
      double slack = 0;
      if (!w.quantized && rounds_scales(w.type)) {
        const size_t g = size_t(o * (w.n_in / hm.spec.group) + i / hm.spec.group);
        const size_t at = size_t(o * w.n_in + i);
        const double q =
            std::fabs(hm.spec.format == runtime::cuda::WeightFormat::W4A16 ? double(hm.q4[at]) : double(hm.q8[at]));
        const double mn = hm.spec.mins ? std::fabs(f16_to_f32(hm.mins[g])) : 0.0;
        slack = (q * std::fabs(f16_to_f32(hm.scales[g])) + mn) * std::ldexp(1.0, -11) * (1 + std::ldexp(1.0, -10)) +
                (q + (hm.spec.mins ? 1 : 0)) * std::ldexp(1.0, -25) + std::fabs(want) * std::ldexp(1.0, -23);
      }
      if (!(std::fabs(hm.weight(o, i) - want) <= slack) || back.weight(o, i) != hm.weight(o, i)) ++mismatched;
    }
  }
  return mismatched;
}

// w repacked as the backend would (plan_for, append_packed_rows); packed false where it runs dense.
struct RepackCheck {
  bool packed = false;
  runtime::cuda::HostMatrix hm;
  size_t checked = 0, mismatched = 0;
};
inline RepackCheck check_repack_of(const runtime::cpu::WeightMatrix& w) {
  RepackCheck r;
  const runtime::cuda::PartPlan pl = runtime::cuda::plan_for(w, "matrix");
  if (!pl.packed) return r;
  r.packed = true;
  r.hm.spec = pl.spec;
  r.hm.n_in = w.n_in;
  runtime::cuda::append_packed_rows(w, r.hm);
  r.checked = size_t(w.n_out * w.n_in);
  r.mismatched = repack_mismatches(w, r.hm);
  return r;
}

}  // namespace qb::cuda_checks
