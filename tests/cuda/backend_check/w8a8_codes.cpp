// cuda_backend_check's W8A8 activation-code checks: the per-token quantizers (w8a8.h) against the CPU's, on
// finite and non-finite rows, and the norm and gated-activation kernels that write a product's codes themselves
// against the same kernel's f32 rows followed by the quantizer, bitwise.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "backend_check.h"
#include "quantbench/runtime/cpu/matmul_w8a8.h"
#include "quantbench/runtime/cuda/forward_kernels.h"
#include "quantbench/runtime/cuda/w8a8.h"

using namespace qb;

namespace backend_check {

namespace {

// The codes target of a W8A8 product's input (ActOut::codes) in device buffers.
runtime::cuda::ActOut codes_target(uint8_t* q, float* s, bool fp8, unsigned* nonfinite) {
  runtime::cuda::ActOut o;
  o.codes = q;
  o.code_scale = s;
  o.codes_fp8 = fp8;
  o.nonfinite = nonfinite;
  return o;
}

// Two sets of T rows of n W8A8 codes with their scales (the quantizer's, then a fused kernel's, with the
// non-finite flag), downloaded and compared: the count of codes and scales that differ bitwise, plus a flag
// not set exactly where `nan_row` (row 1 holds a NaN: there only the fused scale must be NaN). Adds the
// values compared to `values`.
size_t codes_differ(const uint8_t* dq1, const uint8_t* dq2, const float* ds1, const float* ds2, const unsigned* flag,
                    int T, int n, bool nan_row, size_t& values) {
  std::vector<uint8_t> q1(size_t(T) * size_t(n)), q2(q1.size());
  std::vector<float> s1(static_cast<size_t>(T)), s2(static_cast<size_t>(T));
  unsigned flag_host = 0;
  cuda_ok(cudaMemcpy(q1.data(), dq1, q1.size(), cudaMemcpyDeviceToHost), "download");
  cuda_ok(cudaMemcpy(q2.data(), dq2, q2.size(), cudaMemcpyDeviceToHost), "download");
  cuda_ok(cudaMemcpy(s1.data(), ds1, s1.size() * 4, cudaMemcpyDeviceToHost), "download");
  cuda_ok(cudaMemcpy(s2.data(), ds2, s2.size() * 4, cudaMemcpyDeviceToHost), "download");
  cuda_ok(cudaMemcpy(&flag_host, flag, sizeof flag_host, cudaMemcpyDeviceToHost), "download");
  size_t differ = flag_host != (nan_row ? 1u : 0u);
  for (int t = 0; t < T; ++t) {
    if (nan_row && t == 1) {
      differ += !std::isnan(s2[size_t(t)]);
      continue;
    }
    differ += std::memcmp(&s1[size_t(t)], &s2[size_t(t)], 4) != 0;
    const size_t r0 = size_t(t) * size_t(n);
    for (int i = 0; i < n; ++i) differ += q1[r0 + size_t(i)] != q2[r0 + size_t(i)];
    values += size_t(n) + 1;
  }
  return differ;
}

}  // namespace

// The per-token activation quantizers (quantize_act_int8 / quantize_act_fp8) at real widths, against the
// CPU's quantize_row_int8 / quantize_row_fp8, bitwise (codes and scales): n = 4096, 11008 and 16384 take
// the one-block-of-1024 register kernel, 11010 (not whole 16-byte pieces) and 20000 (over its 16384) the
// looping one; T = 1, 3, 16 (the register kernel's decode shape, 1024 threads per token) and 40 (its prefill
// shape, 256 threads); rows of normal values with outliers, one row all zero, one with an extreme
// finite value (the CPU refuses rows that are not finite, so NaN and infinity are not compared).
void check_act_quant_wide() {
  namespace rc = runtime::cuda;
  std::mt19937 rng(1234);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  size_t values = 0, differ = 0;
  for (const bool fp8 : {false, true})
    for (const int n : {4096, 11008, 16384, 11010, 20000})
      for (const int T : {1, 3, 16, 40}) {
        std::vector<float> x(size_t(T) * size_t(n));
        for (size_t i = 0; i < x.size(); ++i) x[i] = nd(rng) * ((i % 331) == 0 ? 50.0f : 1.0f);
        if (T >= 3) {
          std::fill(x.begin() + n, x.begin() + 2 * size_t(n), 0.0f);  // row 1: all zero (scale 0, codes 0)
          x[size_t(2 * n + 7)] = -3.0e38f;  // row 2: near f32's largest
        }
        void *dx = nullptr, *dq = nullptr, *ds = nullptr;
        cuda_ok(cudaMalloc(&dx, x.size() * 4), "cudaMalloc");
        cuda_ok(cudaMalloc(&dq, x.size()), "cudaMalloc");
        cuda_ok(cudaMalloc(&ds, size_t(T) * 4), "cudaMalloc");
        cuda_ok(cudaMemcpy(dx, x.data(), x.size() * 4, cudaMemcpyHostToDevice), "upload");
        cuda_ok(cudaMemset(dq, 0x5a, x.size()), "poison");
        const auto* X = static_cast<const float*>(dx);
        auto* S = static_cast<float*>(ds);
        if (fp8) rc::quantize_act_fp8(X, n, n, T, static_cast<uint8_t*>(dq), S, nullptr);
        else rc::quantize_act_int8(X, n, n, T, static_cast<int8_t*>(dq), S, nullptr);
        std::vector<uint8_t> qg(x.size()), qc(static_cast<size_t>(n));
        std::vector<float> sg(static_cast<size_t>(T));
        cuda_ok(cudaMemcpy(qg.data(), dq, qg.size(), cudaMemcpyDeviceToHost), "download");
        cuda_ok(cudaMemcpy(sg.data(), ds, sg.size() * 4, cudaMemcpyDeviceToHost), "download");
        for (int t = 0; t < T; ++t) {
          const float* xr = x.data() + size_t(t) * size_t(n);
          const float sc = fp8 ? runtime::cpu::quantize_row_fp8(xr, n, qc.data())
                               : runtime::cpu::quantize_row_int8(xr, n, reinterpret_cast<int8_t*>(qc.data()));
          differ += std::memcmp(&sc, &sg[size_t(t)], 4) != 0;
          for (int i = 0; i < n; ++i) differ += qc[size_t(i)] != qg[size_t(t) * size_t(n) + size_t(i)];
          values += size_t(n) + 1;
        }
        for (void* p : {dx, dq, ds}) cudaFree(p);
      }
  char buf[256];
  std::snprintf(buf, sizeof buf, "per-token activation quantizers (int8, fp8) at n = 4096 / 11008 / 16384 / 11010 / "
                "20000, T = 1 / 3 / 16 / 40: %zu of %zu codes and scales differ from the CPU's (bitwise)", differ, values);
  check(differ == 0 && values == size_t(2) * 60 * (4096 + 11008 + 16384 + 11010 + 20000 + 5), buf);
}

// Rows the CPU's quantizer refuses (a NaN or an infinity): the GPU's quantizers give such a row the scale
// NaN (its products' outputs are then NaN) and set the flag the backend refuses a step on; the finite
// rows of the same launch keep the CPU's codes and scales, and a launch of finite rows leaves the flag 0.
// Both kernels (n = 4096: registers; 11010: the loop), NaN in row 1, +inf in row 3, -inf in row 4 (its
// last value, so the register kernel's last thread sees it), T = 5.
void check_act_quant_nonfinite() {
  namespace rc = runtime::cuda;
  std::mt19937 rng(77);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  size_t cases = 0, wrong = 0;
  unsigned* flag = nullptr;
  cuda_ok(cudaMalloc(&flag, sizeof(unsigned)), "cudaMalloc");
  for (const bool fp8 : {false, true})
    for (const int n : {4096, 11010})
      for (const bool poison_rows : {false, true}) {
        const int T = 5;
        std::vector<float> x(size_t(T) * size_t(n));
        for (auto& v : x) v = nd(rng);
        if (poison_rows) {
          x[size_t(n + 17)] = std::numeric_limits<float>::quiet_NaN();
          x[size_t(3 * n + 1000)] = std::numeric_limits<float>::infinity();
          x[size_t(5 * n - 1)] = -std::numeric_limits<float>::infinity();
        }
        void *dx = nullptr, *dq = nullptr, *ds = nullptr;
        cuda_ok(cudaMalloc(&dx, x.size() * 4), "cudaMalloc");
        cuda_ok(cudaMalloc(&dq, x.size()), "cudaMalloc");
        cuda_ok(cudaMalloc(&ds, size_t(T) * 4), "cudaMalloc");
        cuda_ok(cudaMemcpy(dx, x.data(), x.size() * 4, cudaMemcpyHostToDevice), "upload");
        cuda_ok(cudaMemset(flag, 0, sizeof(unsigned)), "clear");
        const auto* X = static_cast<const float*>(dx);
        auto* S = static_cast<float*>(ds);
        if (fp8) rc::quantize_act_fp8(X, n, n, T, static_cast<uint8_t*>(dq), S, nullptr, flag);
        else rc::quantize_act_int8(X, n, n, T, static_cast<int8_t*>(dq), S, nullptr, flag);
        std::vector<uint8_t> qg(x.size()), qc(static_cast<size_t>(n));
        std::vector<float> sg(static_cast<size_t>(T));
        unsigned flag_host = 0;
        cuda_ok(cudaMemcpy(qg.data(), dq, qg.size(), cudaMemcpyDeviceToHost), "download");
        cuda_ok(cudaMemcpy(sg.data(), ds, sg.size() * 4, cudaMemcpyDeviceToHost), "download");
        cuda_ok(cudaMemcpy(&flag_host, flag, sizeof flag_host, cudaMemcpyDeviceToHost), "download");
        wrong += flag_host != (poison_rows ? 1u : 0u);
        for (int t = 0; t < T; ++t) {
          const bool bad = poison_rows && (t == 1 || t == 3 || t == 4);
          if (bad) {
            wrong += !std::isnan(sg[size_t(t)]);
          } else {
            const float* xr = x.data() + size_t(t) * size_t(n);
            const float sc = fp8 ? runtime::cpu::quantize_row_fp8(xr, n, qc.data())
                                 : runtime::cpu::quantize_row_int8(xr, n, reinterpret_cast<int8_t*>(qc.data()));
            wrong += std::memcmp(&sc, &sg[size_t(t)], 4) != 0 ||
                     std::memcmp(qc.data(), qg.data() + size_t(t) * size_t(n), size_t(n)) != 0;
          }
          ++cases;
        }
        ++cases;  // the flag
        for (void* p : {dx, dq, ds}) cudaFree(p);
      }
  cudaFree(flag);
  char buf[256];
  std::snprintf(buf, sizeof buf, "activation quantizers on rows with NaN / +inf / -inf (int8, fp8; n = 4096 / 11010): "
                "%zu of %zu rows and flags wrong (bad rows: scale NaN and the flag set; finite rows: the CPU's bits)",
                wrong, cases);
  check(wrong == 0 && cases == size_t(2 * 2 * 2 * 6), buf);
}

// The norm kernel that writes a W8A8 product's codes itself (ActOut::codes, what the decode step runs
// before q|k|v and gate|up): against the same norm writing f32 rows followed by the quantizer, bitwise
// (codes and scales), int8 and fp8, n = 4096 and 64 (stories260K), T = 1, 5 and 16, with a residual add,
// and once with a row gather (the output norm's); one launch with a NaN in row 1 of `add` must give that
// row the scale NaN and set the flag, and leave the other rows' bits as the quantizer's.
void check_norm_codes() {
  namespace rc = runtime::cuda;
  std::mt19937 rng(31337);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  size_t values = 0, differ = 0, cases = 0;
  unsigned* flag = nullptr;
  cuda_ok(cudaMalloc(&flag, sizeof(unsigned)), "cudaMalloc");
  for (const bool fp8 : {false, true})
    for (const int n : {4096, 64})
      for (const int T : {1, 5, 16})
        for (const bool gather : {false, true}) {
          if (gather && T != 5) continue;
          const bool nan_row = T == 16;
          const int rows_in = gather ? 7 : T;  // gathered: output row t is input row rows[t]
          std::vector<float> x(size_t(rows_in) * size_t(n)), add(x.size()), w(static_cast<size_t>(n));
          for (auto& v : x) v = nd(rng) * 3.0f;
          for (auto& v : add) v = nd(rng);
          for (auto& v : w) v = 0.5f + 0.1f * nd(rng);
          if (nan_row) add[size_t(n) + 5] = std::numeric_limits<float>::quiet_NaN();
          const std::vector<int32_t> rows = {6, 0, 3, 2, 5};
          float *dx = nullptr, *dadd = nullptr, *dw = nullptr, *dh = nullptr, *ds1 = nullptr, *ds2 = nullptr;
          uint8_t *dq1 = nullptr, *dq2 = nullptr;
          int32_t* drows = nullptr;
          cuda_ok(cudaMalloc(&dx, x.size() * 4), "cudaMalloc");
          cuda_ok(cudaMalloc(&dadd, add.size() * 4), "cudaMalloc");
          cuda_ok(cudaMalloc(&dw, w.size() * 4), "cudaMalloc");
          cuda_ok(cudaMalloc(&dh, size_t(T) * size_t(n) * 4), "cudaMalloc");
          cuda_ok(cudaMalloc(&dq1, size_t(T) * size_t(n)), "cudaMalloc");
          cuda_ok(cudaMalloc(&dq2, size_t(T) * size_t(n)), "cudaMalloc");
          cuda_ok(cudaMalloc(&ds1, size_t(T) * 4), "cudaMalloc");
          cuda_ok(cudaMalloc(&ds2, size_t(T) * 4), "cudaMalloc");
          cuda_ok(cudaMalloc(&drows, rows.size() * 4), "cudaMalloc");
          cuda_ok(cudaMemcpy(dadd, add.data(), add.size() * 4, cudaMemcpyHostToDevice), "upload");
          cuda_ok(cudaMemcpy(dw, w.data(), w.size() * 4, cudaMemcpyHostToDevice), "upload");
          cuda_ok(cudaMemcpy(drows, rows.data(), rows.size() * 4, cudaMemcpyHostToDevice), "upload");
          cuda_ok(cudaMemset(dq2, 0x5a, size_t(T) * size_t(n)), "poison");
          cuda_ok(cudaMemset(flag, 0, sizeof(unsigned)), "clear");
          const int32_t* R = gather ? drows : nullptr;
          // the reference: f32 rows, then the quantizer
          cuda_ok(cudaMemcpy(dx, x.data(), x.size() * 4, cudaMemcpyHostToDevice), "upload");
          rc::ActOut f32_out;
          f32_out.f32 = dh;
          rc::add_rmsnorm(dx, dadd, dw, n, T, 1e-5f, R, f32_out, nullptr);
          if (fp8) rc::quantize_act_fp8(dh, n, n, T, dq1, ds1, nullptr);
          else rc::quantize_act_int8(dh, n, n, T, reinterpret_cast<int8_t*>(dq1), ds1, nullptr);
          // the fused form, from the same x
          cuda_ok(cudaMemcpy(dx, x.data(), x.size() * 4, cudaMemcpyHostToDevice), "upload");
          rc::add_rmsnorm(dx, dadd, dw, n, T, 1e-5f, R, codes_target(dq2, ds2, fp8, flag), nullptr);
          differ += codes_differ(dq1, dq2, ds1, ds2, flag, T, n, nan_row, values);
          ++cases;
          for (void* p : {static_cast<void*>(dx), static_cast<void*>(dadd), static_cast<void*>(dw),
                          static_cast<void*>(dh), static_cast<void*>(dq1), static_cast<void*>(dq2),
                          static_cast<void*>(ds1), static_cast<void*>(ds2), static_cast<void*>(drows)})
            cudaFree(p);
        }
  cudaFree(flag);
  char buf[320];
  std::snprintf(buf, sizeof buf, "norm kernel writing W8A8 codes (int8, fp8; n = 4096 / 64; T = 1 / 5 / 16, a row "
                "gather, a NaN row): %zu of %zu codes, scales and flags differ from the norm then the quantizer "
                "(bitwise) over %zu launches", differ, values, cases);
  check(differ == 0 && cases == 16 && values > 0, buf);
}

// The gated activation writing the down product's codes itself (gated_act_out with ActOut::codes, what the
// decode step runs before a W8A8 down product): against the same activation writing f32 rows followed by
// the quantizer, bitwise (codes and scales), int8 and fp8, n = 11008 (SiLU, gate|up in halves, then in
// interleaved blocks of 16; GELU once), 18944 (Qwen2.5-7B's width) and 172 (stories260K: the kernel's
// eighth slice holds one float4), T = 1, 5 and 16; row 1 of the 16-token launches holds a NaN, which must
// give that row the scale NaN and set the flag. Rows wider than the kernel takes (65540), or not of a
// multiple of 4 (174), are refused in one line.
void check_act_codes() {
  namespace rc = runtime::cuda;
  std::mt19937 rng(4242);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  size_t values = 0, differ = 0, cases = 0;
  unsigned* flag = nullptr;
  cuda_ok(cudaMalloc(&flag, sizeof(unsigned)), "cudaMalloc");
  struct Shape { int n, act; bool interleave16; };
  for (const bool fp8 : {false, true})
    for (const Shape sh : {Shape{11008, 0, false}, Shape{11008, 0, true}, Shape{11008, 1, false},
                           Shape{18944, 0, false}, Shape{172, 0, false}})
      for (const int T : {1, 5, 16}) {
        const int n = sh.n;
        const bool nan_row = T == 16;
        std::vector<float> gu(size_t(T) * 2 * size_t(n));
        for (auto& v : gu) v = nd(rng) * 2.0f;
        if (nan_row) gu[2 * size_t(n) + 7] = std::numeric_limits<float>::quiet_NaN();
        float *dgu = nullptr, *dg = nullptr, *ds1 = nullptr, *ds2 = nullptr;
        uint8_t *dq1 = nullptr, *dq2 = nullptr;
        cuda_ok(cudaMalloc(&dgu, gu.size() * 4), "cudaMalloc");
        cuda_ok(cudaMalloc(&dg, size_t(T) * size_t(n) * 4), "cudaMalloc");
        cuda_ok(cudaMalloc(&dq1, size_t(T) * size_t(n)), "cudaMalloc");
        cuda_ok(cudaMalloc(&dq2, size_t(T) * size_t(n)), "cudaMalloc");
        cuda_ok(cudaMalloc(&ds1, size_t(T) * 4), "cudaMalloc");
        cuda_ok(cudaMalloc(&ds2, size_t(T) * 4), "cudaMalloc");
        cuda_ok(cudaMemcpy(dgu, gu.data(), gu.size() * 4, cudaMemcpyHostToDevice), "upload");
        cuda_ok(cudaMemset(dq2, 0x5a, size_t(T) * size_t(n)), "poison");
        cuda_ok(cudaMemset(ds2, 0x5a, size_t(T) * 4), "poison");
        cuda_ok(cudaMemset(flag, 0, sizeof(unsigned)), "clear");
        // the reference: f32 rows, then the quantizer
        rc::ActOut f32_out;
        f32_out.f32 = dg;
        rc::gated_act_out(dgu, n, T, sh.act, f32_out, nullptr, false, sh.interleave16);
        if (fp8) rc::quantize_act_fp8(dg, n, n, T, dq1, ds1, nullptr);
        else rc::quantize_act_int8(dg, n, n, T, reinterpret_cast<int8_t*>(dq1), ds1, nullptr);
        // the fused form
        rc::gated_act_out(dgu, n, T, sh.act, codes_target(dq2, ds2, fp8, flag), nullptr, false, sh.interleave16);
        differ += codes_differ(dq1, dq2, ds1, ds2, flag, T, n, nan_row, values);
        ++cases;
        for (void* p : {static_cast<void*>(dgu), static_cast<void*>(dg), static_cast<void*>(dq1),
                        static_cast<void*>(dq2), static_cast<void*>(ds1), static_cast<void*>(ds2)})
          cudaFree(p);
      }
  cudaFree(flag);
  std::string refusal;
  int refused = 0;
  for (const int n : {65540, 174}) {
    try {  // refused before any launch (pointers never read)
      rc::ActOut bad;
      bad.codes = reinterpret_cast<uint8_t*>(16);
      bad.code_scale = reinterpret_cast<float*>(16);
      rc::gated_act_out(reinterpret_cast<const float*>(16), n, 1, 0, bad, nullptr);
    } catch (const std::invalid_argument& e) {
      refusal = e.what();
      ++refused;
    }
  }
  char buf[400];
  std::snprintf(buf, sizeof buf, "gated activation writing W8A8 codes (int8, fp8; n = 11008 / 18944 / 172, SiLU and "
                "GELU, halves and interleaved; T = 1 / 5 / 16, a NaN row): %zu of %zu codes, scales and flags differ "
                "from the activation then the quantizer (bitwise) over %zu launches; rows 65540 and 174 wide refused "
                "(%d of 2): %s", differ, values, cases, refused, refusal.c_str());
  check(differ == 0 && cases == 30 && values > 0 && refused == 2 && !rc::gated_act_writes_codes(65540) &&
            !rc::gated_act_writes_codes(174) && rc::gated_act_writes_codes(65536),
        buf);
}

}  // namespace backend_check
