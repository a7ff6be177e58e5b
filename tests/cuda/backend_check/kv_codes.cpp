// cuda_backend_check's quantized-cache check: the GPU's KV quantize kernel (kv_quant.h) against the CPU's
// kv_quantize_row / kv_dequantize_head on the same f32 rows, bitwise.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backend_check.h"
#include "quantbench/core/dtype.h"
#include "quantbench/runtime/cuda/kv_quant.h"
#include "quantbench/runtime/kv_cache.h"

using namespace qb;

namespace backend_check {

// The GPU quantizer (kv_quant.h) against the CPU's kv_quantize_row / kv_dequantize_head.
void check_kv_codes() {
  using runtime::KvType;
  namespace rc = runtime::cuda;
  struct Shape { int n_head, hd; };
  const Shape shapes[] = {{4, 8}, {8, 128}, {2, 64}, {3, 96}, {2, 6}, {1, 256}, {2, 160}};
  std::mt19937 rng(20261127);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (KvType kt : {KvType::Int8, KvType::Fp8, KvType::Int4}) {
    const int code = kt == KvType::Int8 ? rc::kKvInt8 : kt == KvType::Fp8 ? rc::kKvFp8 : rc::kKvInt4;
    const float qmax = kt == KvType::Int8 ? 127.0f : kt == KvType::Fp8 ? 448.0f : 7.0f;
    size_t rows_total = 0, values = 0, code_diff = 0, scale_diff = 0, deq_diff = 0, split_diff = 0;
    const bool split = kt != KvType::Int4;  // kv_codes_f16: codes as f16 and scale rows (int8, fp8)
    bool layout_ok = true;
    for (const Shape sh : shapes) {
      const runtime::KvLayout cl = runtime::KvLayout::make(kt, sh.n_head, sh.hd);
      const rc::KvRowLayout gl = rc::kv_row_layout(code, sh.n_head, sh.hd);
      layout_ok = layout_ok && cl.group == gl.group && int64_t(cl.code_bytes_per_row()) == gl.code_bytes &&
                  cl.scales_per_row() == gl.scales();
      const int rows = 40, w = sh.n_head * sh.hd;
      std::vector<float> x(size_t(rows) * size_t(w));
      for (int r = 0; r < rows; ++r) {
        float* xr = x.data() + size_t(r) * size_t(w);
        const float mag = std::pow(10.0f, float(r % 9) - 4.0f);
        for (int i = 0; i < w; ++i) xr[i] = nd(rng) * mag;
        if (r == 0) std::fill(xr, xr + w, 0.0f);  // zero groups: s = 0, zero codes
        if (r == 1 || r == 2) {  // exact ties: s = 1 (each group's absmax = qmax), values halfway between codes
          for (int i = 0; i < w; ++i) {
            if (kt == KvType::Fp8) {
              const uint8_t c = uint8_t(rng() % 0x7e);
              const float mid = 0.5f * (f8e4m3_to_f32(c) + f8e4m3_to_f32(uint8_t(c + 1)));
              xr[i] = (rng() & 1) ? -mid : mid;
            } else {
              xr[i] = float(int(rng() % uint32_t(2 * qmax)) - int(qmax)) + 0.5f;
            }
          }
          for (int g = 0; g < w; g += int(cl.group)) xr[g] = (r == 1 ? qmax : -qmax);
        }
        if (r == 3) {  // NaN, inf, signed zeros and tiny negatives
          xr[0] = NAN;
          xr[w - 1] = INFINITY;
          xr[1] = -0.0f;
          if (w > 3) xr[2] = -1e-30f;
        }
      }
      // CPU codes.
      std::vector<uint8_t> ccodes(size_t(rows) * cl.code_bytes_per_row());
      std::vector<float> cscales(size_t(rows) * size_t(cl.scales_per_row()));
      for (int r = 0; r < rows; ++r)
        runtime::kv_quantize_row(cl, x.data() + size_t(r) * size_t(w), ccodes.data() + size_t(r) * cl.code_bytes_per_row(),
                                 cscales.data() + size_t(r) * size_t(cl.scales_per_row()));
      // GPU codes, then its f16 dequantization.
      void *dx = nullptr, *dq = nullptr, *dh = nullptr;
      cuda_ok(cudaMalloc(&dx, x.size() * 4), "cudaMalloc");
      cuda_ok(cudaMalloc(&dq, size_t(rows) * size_t(gl.row_bytes)), "cudaMalloc");
      cuda_ok(cudaMalloc(&dh, size_t(rows) * size_t(w) * 2), "cudaMalloc");
      cuda_ok(cudaMemset(dq, 0xa5, size_t(rows) * size_t(gl.row_bytes)), "poison");
      cuda_ok(cudaMemcpy(dx, x.data(), x.size() * 4, cudaMemcpyHostToDevice), "upload");
      rc::kv_quantize_rows(static_cast<const float*>(dx), w, rows, gl, static_cast<uint8_t*>(dq), nullptr);
      rc::kv_dequantize_f16(static_cast<const uint8_t*>(dq), gl, rows, static_cast<uint16_t*>(dh), nullptr);
      std::vector<uint8_t> g(size_t(rows) * size_t(gl.row_bytes));
      std::vector<uint16_t> gh(size_t(rows) * size_t(w));
      cuda_ok(cudaMemcpy(g.data(), dq, g.size(), cudaMemcpyDeviceToHost), "download");
      cuda_ok(cudaMemcpy(gh.data(), dh, gh.size() * 2, cudaMemcpyDeviceToHost), "download");
      // The prefill's split form: codes as f16, scales as rows [head][stride] (0 past the rows), poisoned first.
      const int64_t stride = rc::kv_scale_stride(rows);
      std::vector<uint16_t> sc16(size_t(rows) * size_t(w));
      std::vector<float> srow(size_t(sh.n_head) * size_t(stride));
      if (split) {
        void *dc = nullptr, *ds = nullptr;
        cuda_ok(cudaMalloc(&dc, sc16.size() * 2), "cudaMalloc");
        cuda_ok(cudaMalloc(&ds, srow.size() * 4), "cudaMalloc");
        cuda_ok(cudaMemset(dc, 0xff, sc16.size() * 2), "poison");
        cuda_ok(cudaMemset(ds, 0xff, srow.size() * 4), "poison");
        rc::kv_codes_f16(static_cast<const uint8_t*>(dq), gl, rows, static_cast<uint16_t*>(dc), static_cast<float*>(ds),
                         stride, nullptr);
        cuda_ok(cudaMemcpy(sc16.data(), dc, sc16.size() * 2, cudaMemcpyDeviceToHost), "download");
        cuda_ok(cudaMemcpy(srow.data(), ds, srow.size() * 4, cudaMemcpyDeviceToHost), "download");
        cudaFree(dc);
        cudaFree(ds);
      }
      cudaFree(dx);
      cudaFree(dq);
      cudaFree(dh);
      std::vector<float> deq(size_t(sh.hd));
      for (int r = 0; r < rows; ++r) {
        const uint8_t* gr = g.data() + size_t(r) * size_t(gl.row_bytes);
        const uint8_t* cr = ccodes.data() + size_t(r) * cl.code_bytes_per_row();
        for (size_t i = 0; i < cl.code_bytes_per_row(); ++i) code_diff += gr[i] != cr[i];
        const float* cs = cscales.data() + size_t(r) * size_t(cl.scales_per_row());
        scale_diff += std::memcmp(gr + gl.scale_off, cs, size_t(cl.scales_per_row()) * 4) != 0;
        for (int hh = 0; hh < sh.n_head; ++hh) {
          runtime::kv_dequantize_head(cl, cr, cs, hh, deq.data());
          for (int i = 0; i < sh.hd; ++i) {
            const uint16_t want = f32_to_f16(deq[size_t(i)]), got = gh[size_t(r) * size_t(w) + size_t(hh * sh.hd + i)];
            const bool both_nan = std::isnan(deq[size_t(i)]) && std::isnan(f16_to_f32(got));
            deq_diff += !both_nan && want != got;
            if (split) {  // code value * scale, in f32 as the CPU multiplies: its dequantized value, bit for bit
              const float v = f16_to_f32(sc16[size_t(r) * size_t(w) + size_t(hh * sh.hd + i)]) *
                              srow[size_t(hh) * size_t(stride) + size_t(r)];
              split_diff += !(std::isnan(v) && std::isnan(deq[size_t(i)])) &&
                            std::memcmp(&v, &deq[size_t(i)], 4) != 0;
            }
          }
        }
        ++rows_total;
        values += size_t(w);
      }
      if (split)
        for (int hh = 0; hh < sh.n_head; ++hh)
          for (int64_t p = 0; p < stride; ++p) {
            const float got = srow[size_t(hh) * size_t(stride) + size_t(p)];
            const float want = p < rows ? cscales[size_t(p) * size_t(cl.scales_per_row()) + size_t(hh)] : 0.0f;
            split_diff += std::memcmp(&got, &want, 4) != 0;
          }
    }
    const std::string split_note = split ? "prefill's f16 codes times their scale rows (zeros past the rows): " +
                                               std::to_string(split_diff) + " differ from the CPU's values"
                                         : "no split form (int4)";
    char buf[400];
    std::snprintf(buf, sizeof buf, "kv %s codes: GPU vs CPU on %zu rows (%zu values, 7 shapes, ties/zeros/NaN/inf): "
                  "%zu code bytes and %zu scale rows differ; dequantized f16: %zu differ; %s; layout %s",
                  std::string(runtime::kv_type_name(kt)).c_str(), rows_total, values, code_diff, scale_diff, deq_diff,
                  split_note.c_str(), layout_ok ? "same" : "DIFFERENT");
    check(layout_ok && code_diff == 0 && scale_diff == 0 && deq_diff == 0 && split_diff == 0, buf);
  }
}

}  // namespace backend_check
