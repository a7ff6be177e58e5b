// cuda_backend_check's W8A8 product checks: the GPU's int8 and fp8 products (w8a8.h, w8a8_fp8_tc.h) against the
// CPU's matmul_w8a8 on a model's first layer, and at real models' widths against the CPU's formula computed here,
// bitwise where the GPU sums exactly, within stated bounds where it sums on tensor cores.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "backend_check.h"
#include "quantbench/core/dtype.h"
#include "quantbench/core/thread_pool.h"
#include "quantbench/model/model.h"
#include "quantbench/runtime/cpu/matmul_w8a8.h"
#include "quantbench/runtime/cuda/w8a8.h"
#include "quantbench/runtime/cuda/w8a8_fp8_tc.h"

using namespace qb;

namespace backend_check {

namespace {

// Random W8A8 operands on the device for the wide checks: n_out x n_in weight codes with per-row scales,
// Tmax x n_in activation codes with per-token scales (fp8: every e4m3 code but NaN; int8: -127..127),
// and an output buffer of Tmax x n_out + 4 floats. Freed by the destructor.
struct W8a8Operands {
  int n_out = 0, n_in = 0, Tmax = 0;
  std::vector<uint8_t> w, xq;
  std::vector<float> sw, sx;
  void *dw = nullptr, *dsw = nullptr, *dx = nullptr, *dsx = nullptr, *dy = nullptr;
  W8a8Operands(std::mt19937& rng, bool fp8, int n_out_, int n_in_, int Tmax_)
      : n_out(n_out_), n_in(n_in_), Tmax(Tmax_) {
    w.resize(size_t(n_out) * size_t(n_in));
    xq.resize(size_t(Tmax) * size_t(n_in));
    sw.resize(static_cast<size_t>(n_out));
    sx.resize(static_cast<size_t>(Tmax));
    auto code = [&] {
      uint8_t c = uint8_t(rng());
      if (fp8 && (c & 0x7f) == 0x7f) c ^= 1;  // not NaN
      if (!fp8 && c == 0x80) c = 0x81;        // int8 codes are in [-127, 127]
      return c;
    };
    for (auto& c : w) c = code();
    for (auto& c : xq) c = code();
    for (auto& v : sw) v = std::ldexp(float(rng() % 1000 + 1), -14);
    for (auto& v : sx) v = std::ldexp(float(rng() % 1000 + 1), -12);
    cuda_ok(cudaMalloc(&dw, w.size()), "cudaMalloc");
    cuda_ok(cudaMalloc(&dsw, sw.size() * 4), "cudaMalloc");
    cuda_ok(cudaMalloc(&dx, xq.size()), "cudaMalloc");
    cuda_ok(cudaMalloc(&dsx, sx.size() * 4), "cudaMalloc");
    cuda_ok(cudaMalloc(&dy, y_bytes()), "cudaMalloc");
    cuda_ok(cudaMemcpy(dw, w.data(), w.size(), cudaMemcpyHostToDevice), "upload");
    cuda_ok(cudaMemcpy(dsw, sw.data(), sw.size() * 4, cudaMemcpyHostToDevice), "upload");
    cuda_ok(cudaMemcpy(dx, xq.data(), xq.size(), cudaMemcpyHostToDevice), "upload");
    cuda_ok(cudaMemcpy(dsx, sx.data(), sx.size() * 4, cudaMemcpyHostToDevice), "upload");
  }
  W8a8Operands(const W8a8Operands&) = delete;
  W8a8Operands& operator=(const W8a8Operands&) = delete;
  ~W8a8Operands() {
    for (void* p : {dw, dsw, dx, dsx, dy}) cudaFree(p);
  }
  size_t y_bytes() const { return size_t(Tmax * n_out + 4) * 4; }
  void poison_y() const { cuda_ok(cudaMemset(dy, 0xff, y_bytes()), "poison"); }
  std::vector<float> download_y(size_t n) const {
    std::vector<float> y(n);
    cuda_ok(cudaMemcpy(y.data(), dy, n * 4, cudaMemcpyDeviceToHost), "download");
    return y;
  }
  const uint8_t* W() const { return static_cast<const uint8_t*>(dw); }
  const uint8_t* X() const { return static_cast<const uint8_t*>(dx); }
  const float* SW() const { return static_cast<const float*>(dsw); }
  const float* SX() const { return static_cast<const float*>(dsx); }
  float* Y() const { return static_cast<float*>(dy); }
  const uint8_t* w_row(int o) const { return w.data() + size_t(o) * size_t(n_in); }
  const uint8_t* x_row(int t) const { return xq.data() + size_t(t) * size_t(n_in); }
};

// The exact sum of e4m3 products of two code rows (each product is exact in f32 and the sum in double,
// see w8a8.h), and the sum of their magnitudes.
struct ExactDot { double sum = 0, mag = 0; };
ExactDot exact_fp8_dot(const uint8_t* wr, const uint8_t* xr, int n) {
  ExactDot d;
  for (int i = 0; i < n; ++i) {
    const double p = double(f8e4m3_to_f32(wr[i]) * f8e4m3_to_f32(xr[i]));
    d.sum += p;
    d.mag += std::fabs(p);
  }
  return d;
}

// An FP8 W8A8 product's outputs y[t * n_out + o] (t < T, o < n_out) from op's codes against the CPU's
// formula float(exact sum) * s_x * s_w: each must lie within rel * sum|products| * s_x * s_w plus 4 f32 ulps
// of the result (the two scale multiplies). Adds the outputs seen to `outputs`, those outside the bound to
// `outside`, and raises `worst` to the largest error / (sum|products| * s_x * s_w).
void tally_fp8_outputs(const W8a8Operands& op, const std::vector<float>& y, int T, int n_out, double rel,
                       size_t& outputs, size_t& outside, double& worst) {
  for (int t = 0; t < T; ++t)
    for (int o = 0; o < n_out; ++o) {
      const ExactDot d = exact_fp8_dot(op.w_row(o), op.x_row(t), op.n_in);
      const double s = double(op.sx[size_t(t)]) * double(op.sw[size_t(o)]);
      const float want = float(d.sum) * op.sx[size_t(t)] * op.sw[size_t(o)];
      const double err = std::fabs(double(y[size_t(t * n_out + o)]) - double(want));
      outside += !(err <= rel * d.mag * s + 4.0 * std::ldexp(std::fabs(double(want)), -24) + 1e-30);
      if (d.mag > 0) worst = std::max(worst, err / (d.mag * s));
      ++outputs;
    }
}

}  // namespace

// Every W8A8 matrix of the model's first layer: GPU vs CPU matmul_w8a8, bitwise.
void check_w8a8_exact(const std::string& path) {
  namespace rc = runtime::cuda;
  auto model = model::Model::load(path);
  const auto& L = model->layers.at(0);
  ThreadPool pool(0);
  std::mt19937 rng(77);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  size_t mats = 0, outputs = 0, differ = 0, mma_runs = 0;
  void* blas = nullptr;
  for (const auto* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) {
    if (w->act == runtime::cpu::ActQuant::None) continue;
    const bool fp8 = w->act == runtime::cpu::ActQuant::Fp8PerToken;
    ++mats;
    const quant::QuantizedTensor& q = *w->quantized;
    std::vector<uint8_t> codes(size_t(w->n_out * w->n_in));
    std::vector<float> sc(size_t(w->n_out));
    for (int64_t r = 0; r < w->n_out; ++r) {
      for (int64_t i = 0; i < w->n_in; ++i) {
        const uint8_t c = q.codes[size_t(r) * q.row_bytes() + size_t(i)];
        codes[size_t(r * w->n_in + i)] = fp8 ? c : uint8_t(int8_t(int(c) - 128));
      }
      sc[size_t(r)] = q.params(r, 0).scale;
    }
    void *dw = nullptr, *ds = nullptr, *dx = nullptr, *dq = nullptr, *dsx = nullptr, *dacc = nullptr, *dy = nullptr;
    const int Tmax = 40;
    cuda_ok(cudaMalloc(&dw, codes.size()), "cudaMalloc");
    cuda_ok(cudaMalloc(&ds, sc.size() * 4), "cudaMalloc");
    cuda_ok(cudaMalloc(&dx, size_t(Tmax * w->n_in) * 4), "cudaMalloc");
    cuda_ok(cudaMalloc(&dq, size_t(Tmax * w->n_in)), "cudaMalloc");
    cuda_ok(cudaMalloc(&dsx, Tmax * 4), "cudaMalloc");
    cuda_ok(cudaMalloc(&dacc, size_t(Tmax * w->n_out) * 4), "cudaMalloc");
    cuda_ok(cudaMalloc(&dy, size_t(Tmax * w->n_out) * 4), "cudaMalloc");
    cuda_ok(cudaMemcpy(dw, codes.data(), codes.size(), cudaMemcpyHostToDevice), "upload");
    cuda_ok(cudaMemcpy(ds, sc.data(), sc.size() * 4, cudaMemcpyHostToDevice), "upload");
    for (int T : {1, 5, 16, 40}) {
      std::vector<float> x(size_t(T * w->n_in)), yc(size_t(T * w->n_out)), yg(yc.size());
      for (size_t i = 0; i < x.size(); ++i) x[i] = nd(rng) * ((i % 97) == 0 ? 20.0f : 1.0f);  // a few outliers
      runtime::cpu::matmul_w8a8(*w, x.data(), T, yc.data(), pool);
      cuda_ok(cudaMemcpy(dx, x.data(), x.size() * 4, cudaMemcpyHostToDevice), "upload");
      auto poison = [&] { cuda_ok(cudaMemset(dy, 0xff, size_t(Tmax * w->n_out) * 4), "poison"); };
      auto compare = [&] {  // the product in dy against the CPU's, bitwise
        cuda_ok(cudaMemcpy(yg.data(), dy, yg.size() * 4, cudaMemcpyDeviceToHost), "download");
        for (size_t i = 0; i < yc.size(); ++i) differ += std::memcmp(&yc[i], &yg[i], 4) != 0;
        outputs += yc.size();
      };
      poison();
      if (fp8) {
        rc::quantize_act_fp8(static_cast<const float*>(dx), w->n_in, int(w->n_in), T, static_cast<uint8_t*>(dq),
                             static_cast<float*>(dsx), nullptr);
        rc::w8a8_fp8_gemm(static_cast<const uint8_t*>(dw), static_cast<const float*>(ds), int(w->n_out), int(w->n_in),
                          static_cast<const uint8_t*>(dq), static_cast<const float*>(dsx), T, static_cast<float*>(dy),
                          nullptr);
      } else {
        rc::quantize_act_int8(static_cast<const float*>(dx), w->n_in, int(w->n_in), T, static_cast<int8_t*>(dq),
                              static_cast<float*>(dsx), nullptr);
        if (T <= 16) {
          // The tensor-core decode kernel where it takes the width (compared here), then the dp4a kernel
          // (compared below).
          if (rc::w8a8_int8_mma(static_cast<const int8_t*>(dw), static_cast<const float*>(ds), int(w->n_out),
                                int(w->n_in), static_cast<const int8_t*>(dq), static_cast<const float*>(dsx), T,
                                static_cast<float*>(dy), nullptr)) {
            compare();
            ++mma_runs;
            poison();
          }
          rc::w8a8_gemv(static_cast<const int8_t*>(dw), static_cast<const float*>(ds), int(w->n_out), int(w->n_in),
                        static_cast<const int8_t*>(dq), static_cast<const float*>(dsx), T, static_cast<float*>(dy),
                        nullptr);
        } else {
          if (!blas) {
            cublasHandle_t h = nullptr;
            cublasCreate(&h);
            blas = h;
          }
          const bool lt = rc::w8a8_gemm(blas, static_cast<const int8_t*>(dw), static_cast<const float*>(ds),
                                        int(w->n_out), int(w->n_in), static_cast<const int8_t*>(dq),
                                        static_cast<const float*>(dsx), T, static_cast<int32_t*>(dacc),
                                        static_cast<float*>(dy), nullptr);
          std::printf("INFO %s: w8a8 prefill product %lldx%lld, T = %d: %s\n", path.c_str(), (long long)w->n_out,
                      (long long)w->n_in, T, lt ? "cuBLAS int8 GEMM" : "decode kernel in chunks (cuBLAS refused)");
        }
      }
      compare();
    }
    for (void* p : {dw, ds, dx, dq, dsx, dacc, dy}) cudaFree(p);
  }
  if (blas) cublasDestroy(static_cast<cublasHandle_t>(blas));
  if (mats == 0) {
    if (path.find("w8a8") != std::string::npos) check(false, path + ": named w8a8 but no W8A8 matrix in layer 0");
    return;
  }
  char buf[512];
  std::snprintf(buf, sizeof buf, "%s: w8a8 (int8 or fp8 activations) GPU vs CPU matmul_w8a8 on %zu matrices, T = 1/5/16/40 "
                "(int8 up to 16: the dp4a kernel, and the tensor-core one where it takes the width: %zu runs): %zu of %zu "
                "outputs differ (bitwise)",
                path.c_str(), mats, mma_runs, differ, outputs);
  check(differ == 0, buf);
}

// The W8A8 kernels at the widths of real models, whose unrolled main loop the check models (n_in <= 512)
// do not reach: n_in 4096 and 11008 + 16 (ragged against the 2048-byte unroll and the DMMA kernel's
// 64-input steps), 40 rows (ragged row tiles), random codes (fp8 without the NaN codes), T = 1 to 100
// (ragged token tiles), against the CPU's formula computed here: int8, the exact int32 sum, then
// float(sum) * s_x * s_w; fp8, the exact e4m3 products summed in double, then the same.
void check_w8a8_wide() {
  namespace rc = runtime::cuda;
  std::mt19937 rng(4096);
  size_t outputs = 0, differ = 0;
  cublasHandle_t blas = nullptr;
  for (const bool fp8 : {false, true})
    for (const int n_in : {4096, 11024}) {
      const int n_out = 40;
      const W8a8Operands op(rng, fp8, n_out, n_in, 100);
      void* dacc = nullptr;
      cuda_ok(cudaMalloc(&dacc, size_t(op.Tmax * n_out) * 4), "cudaMalloc");
      const auto* W8 = reinterpret_cast<const int8_t*>(op.W());
      const auto* X8 = reinterpret_cast<const int8_t*>(op.X());
      // fp8: w8a8_fp8_gemm picks the kernel by T (CUDA cores for 1, the DMMA tiles for 2-8, 9-16, more);
      // int8: the dp4a kernel (T <= 16, `pass` 0), the cuBLAS path (`pass` 1) and the tensor-core decode
      // kernel (T <= 16, `pass` 2; 40 rows, so its last row block is partial).
      for (const int T : {1, 2, 7, 16, 100})
        for (int pass = 0; pass < 3; ++pass) {
          if ((fp8 && pass > 0) || (!fp8 && pass != 1 && T > 16)) continue;
          op.poison_y();
          if (fp8) rc::w8a8_fp8_gemm(op.W(), op.SW(), n_out, n_in, op.X(), op.SX(), T, op.Y(), nullptr);
          else if (pass == 0)
            rc::w8a8_gemv(W8, op.SW(), n_out, n_in, X8, op.SX(), T, op.Y(), nullptr,
                          T == 7);  // 7: launched early (programmatic dependent launch)
          else if (pass == 2)
            differ += !rc::w8a8_int8_mma(W8, op.SW(), n_out, n_in, X8, op.SX(), T, op.Y(), nullptr, T == 7);
          else {
            if (!blas) cublasCreate(&blas);
            rc::w8a8_gemm(blas, W8, op.SW(), n_out, n_in, X8, op.SX(), T, static_cast<int32_t*>(dacc), op.Y(), nullptr);
          }
          const std::vector<float> y = op.download_y(size_t(T * n_out));
          for (int t = 0; t < T; ++t)
            for (int o = 0; o < n_out; ++o) {
              float acc;
              if (fp8) {
                acc = float(exact_fp8_dot(op.w_row(o), op.x_row(t), n_in).sum);
              } else {
                int32_t sum = 0;
                for (int i = 0; i < n_in; ++i) sum += int32_t(int8_t(op.w_row(o)[i])) * int32_t(int8_t(op.x_row(t)[i]));
                acc = float(sum);
              }
              const float want = acc * op.sx[size_t(t)] * op.sw[size_t(o)];
              differ += std::memcmp(&want, &y[size_t(t * n_out + o)], 4) != 0;
              ++outputs;
            }
        }
      cudaFree(dacc);
    }
  if (blas) cublasDestroy(blas);
  char buf[256];
  std::snprintf(buf, sizeof buf, "w8a8 kernels at n_in 4096 / 11024 (int8: dp4a and tensor cores T = 1/2/7/16, cuBLAS "
                "T = 1/2/7/16/100; fp8: T = 1/2/7/16/100): %zu of %zu outputs differ from the CPU's formula (bitwise)",
                differ, outputs);
  check(differ == 0 && outputs == size_t(2 * (26 + 26 + 126 + 126) * 40), buf);
}

// FP8 W8A8's fast form (the backend's default: CudaBackendOptions::fp8_exact off) at the widths of real
// models, against the exact sums computed here. Not bitwise: each output must lie within a bound of the
// CPU's formula float(exact sum) * s_x * s_w:
// - the f32 CUDA-core kernel (1-16 tokens, the shapes the mma kernel refuses): each lane adds n_in / 32
//   exact products in f32, then five shuffle adds, so |sum - exact| <= (n_in / 32 + 5) * 2^-24 *
//   sum |products| (a proven bound);
// - the f16 tensor-core decode kernel (w8a8_fp8_mma, 1-16 tokens; 41 rows here, so its last row block is
//   ragged): the products are exact (e4m3 values are f16 values) and each mma adds 16 of them to an f32
//   accumulator; a warp's chain is at most n_in / 16 mmas, then at most 15 adds across warps. The bound
//   (n_in / 16 + 16) * 2^-22 * sum |products| allows each of those accumulations to be off by 2^-22 of
//   the magnitudes summed so far (twice f32's unit roundoff: truncation rather than rounding, as measured
//   on V100-A100 tensor cores by Fasi et al., 2021); not a proven bound (the accumulation is not
//   documented), the largest ratio seen is printed;
// - the FP8 tensor cores through cuBLASLt (2-100 tokens): 2^-12 * sum |products|, not a proven bound (the
//   tensor cores' internal accumulation is not documented) but 16 times below what leaving out one
//   16-byte piece of inputs would change (16 of 11024 products, about 2^-9.4 of the sum); the largest
//   ratio seen is printed;
// plus 4 f32 ulps of the result for the two scale multiplies on each side. Outputs start as NaN
// (poisoned), which fails any bound; the mma kernel's first output past its rows must stay poisoned. A
// misaligned output makes the tensor-core path refuse without writing.
void check_fp8_fast_wide() {
  namespace rc = runtime::cuda;
  std::mt19937 rng(8192);
  size_t outputs = 0, outside = 0;
  bool untouched_past = true;  // the mma kernel wrote nothing past its T x 41 outputs
  // largest |error| / (sum |products| * s_x * s_w) per form: CUDA cores, FP8 tensor cores, f16 mma
  double worst[3] = {0.0, 0.0, 0.0};
  rc::Fp8TensorCoreGemm tc, tc_plain;  // scales in cuBLASLt's epilogue (from 2 tokens here); by the kernel
  tc.outer_scales_from(2);
  tc_plain.outer_scales_from(std::numeric_limits<int>::max());
  bool refused_misaligned = true, tc_ran = true, outer_ran = true, mma_ran = true;
  const size_t ws_bytes = size_t(32) << 20;
  void* ws = nullptr;
  cuda_ok(cudaMalloc(&ws, ws_bytes), "cudaMalloc");
  for (const int n_in : {4096, 11024, 64, 80}) {  // (64, 80: stories260K's width; one chunk and a part of one)
    const W8a8Operands op(rng, true, 48, n_in, 100);
    {  // misaligned output: refused, nothing written
      op.poison_y();
      refused_misaligned = refused_misaligned && !tc.run(op.W(), op.SW(), op.n_out, n_in, op.X(), op.SX(), 16,
                                                         op.Y() + 1, ws, ws_bytes, nullptr);
      cuda_ok(cudaDeviceSynchronize(), "sync");
      std::vector<uint32_t> raw(size_t(16 * op.n_out + 1));
      cuda_ok(cudaMemcpy(raw.data(), op.dy, raw.size() * 4, cudaMemcpyDeviceToHost), "download");
      for (uint32_t v : raw) refused_misaligned = refused_misaligned && v == 0xffffffffu;
    }
    // form 0: the CUDA-core kernel; 1, 2: the FP8 tensor cores, scales by cuBLASLt / by a kernel; 3: mma
    for (const int form : {0, 1, 2, 3})
      for (const int T : {1, 2, 7, 16, 100}) {
        const bool on_tc = form == 1 || form == 2;
        // (the tensor cores' bound is checked at real widths only: at 64 / 80 inputs their error reached
        // 7e-4 of sum|products| on an H200, over 2^-12, docs/perf.md session 28)
        if ((on_tc && (T == 1 || n_in < 4096)) || (!on_tc && T > 16)) continue;
        const int n_out = form == 3 ? 41 : op.n_out;
        op.poison_y();
        if (form == 1) {
          tc_ran = tc.run(op.W(), op.SW(), n_out, n_in, op.X(), op.SX(), T, op.Y(), ws, ws_bytes, nullptr) && tc_ran;
          outer_ran = outer_ran && tc.last_outer_scales();
        } else if (form == 2) {
          tc_ran = tc_plain.run(op.W(), op.SW(), n_out, n_in, op.X(), op.SX(), T, op.Y(), ws, ws_bytes, nullptr) &&
                   tc_ran;
        } else if (form == 3) {  // 7: an early launch (programmatic dependent launch), as in the decode step
          mma_ran = rc::w8a8_fp8_mma(op.W(), op.SW(), n_out, n_in, op.X(), op.SX(), T, op.Y(), nullptr, T == 7) &&
                    mma_ran;
        } else {
          rc::w8a8_fp8_gemv_f32(op.W(), op.SW(), n_out, n_in, op.X(), op.SX(), T, op.Y(), nullptr, T == 7);
        }
        const std::vector<float> y = op.download_y(size_t(T * n_out + 1));
        if (form == 3) untouched_past = untouched_past && std::isnan(y[size_t(T * n_out)]);
        const double rel = on_tc       ? std::ldexp(1.0, -12)
                           : form == 3 ? (n_in / 16 + 16) * std::ldexp(1.0, -22)
                                       : (n_in / 32 + 5) * std::ldexp(1.0, -24);
        tally_fp8_outputs(op, y, T, n_out, rel, outputs, outside, worst[on_tc ? 1 : form == 3 ? 2 : 0]);
      }
  }
  cudaFree(ws);
  char buf[768];
  std::snprintf(buf, sizeof buf, "fp8 w8a8 fast form at n_in 4096 / 11024 / 64 / 80 (f32 CUDA-core kernel and "
                "f16 tensor-core mma kernel T = 1/2/7/16, FP8 tensor cores at 4096 / 11024, T = 2/7/16/100, "
                "scaled by cuBLASLt and by a kernel): %zu of %zu outputs outside the bound; largest error / "
                "sum|products|: CUDA cores %.3g (bound %.3g at 11024), mma kernel %.3g (bound %.3g at 11024), FP8 "
                "tensor cores %.3g (bound %.3g); mma kernel ran: %s, nothing past its rows: %s; FP8 tensor cores "
                "ran: %s; with cuBLASLt's outer-vector scales: %s; misaligned output refused untouched: %s",
                outside, outputs, worst[0], (11024 / 32 + 5) * std::ldexp(1.0, -24), worst[2],
                (11024 / 16 + 16) * std::ldexp(1.0, -22), worst[1], std::ldexp(1.0, -12), mma_ran ? "yes" : "NO",
                untouched_past ? "yes" : "NO", tc_ran ? "yes" : "NO", outer_ran ? "yes" : "no (the kernel scaled)",
                refused_misaligned ? "yes" : "NO");
  check(outside == 0 && tc_ran && mma_ran && untouched_past && refused_misaligned &&
            outputs == size_t(2 * ((26 + 125 + 125) * 48 + 26 * 41) + 2 * (26 * 48 + 26 * 41)),
        buf);
}

// FP8 W8A8's prefill kernel (w8a8_fp8_prefill: 17 tokens or more in the backend's default form, wgmma on
// the f16 tensor cores), against the exact sums computed here. The products are exact (e4m3 values are f16
// values) and each wgmma adds 16 of them to an f32 accumulator, a chain of n_in / 16 per output: the bound
// (n_in / 16 + 1) * 2^-22 * sum |products| allows each accumulation to be off by 2^-22 of the magnitudes
// summed so far, as the decode kernel's bound in check_fp8_fast_wide (not proven: the accumulation is not
// documented; the largest ratio seen is printed), plus 4 f32 ulps for the two scale multiplies. The weights'
// and the activations' k orders are permuted to match each other (w8a8_fp8_prefill.cu): a wrong mapping
// pairs weights with other inputs' activations and misses by the size of the sum. Shapes: real widths and
// stories260K's (64, 80) and one 16-wide chunk, 41 rows (a ragged row block) at T = 17 / 100 / 200 (64-token
// tiles, ragged); 4100 rows at T = 129, which takes 128-token tiles (33 row tiles, the last 4 rows; 2 token
// tiles, the last 1 token). Outputs start poisoned (NaN fails any bound) and the first one past them must
// stay so. A misaligned input or an input width not a multiple of 16 is refused, nothing written.
void check_fp8_prefill_wide() {
  namespace rc = runtime::cuda;
  std::mt19937 rng(8317);
  size_t outputs = 0, outside = 0, cases = 0;
  bool untouched_past = true, ran = true, refused = true;
  double worst = 0.0;
  struct Shape { int n_out, n_in; std::vector<int> Ts; };
  const Shape shapes[] = {{41, 4096, {17, 100, 200}}, {41, 11024, {17, 100, 200}}, {41, 64, {17, 100, 200}},
                          {41, 80, {17, 100, 200}},   {41, 16, {17, 100, 200}},    {4100, 80, {129}}};
  for (const Shape& sh : shapes) {
    const W8a8Operands op(rng, true, sh.n_out, sh.n_in, 200);
    uint16_t* x16 = nullptr;
    cuda_ok(cudaMalloc(reinterpret_cast<void**>(&x16), rc::w8a8_fp8_prefill_scratch_bytes(sh.n_in, 200)), "cudaMalloc");
    for (const int T : sh.Ts) {
      op.poison_y();
      ran = rc::w8a8_fp8_prefill(op.W(), op.SW(), op.n_out, op.n_in, op.X(), op.SX(), T, x16, op.Y(), nullptr) && ran;
      ++cases;
      const std::vector<float> y = op.download_y(size_t(T * op.n_out + 1));
      untouched_past = untouched_past && std::isnan(y[size_t(T * op.n_out)]);
      tally_fp8_outputs(op, y, T, op.n_out, (sh.n_in / 16 + 1) * std::ldexp(1.0, -22), outputs, outside, worst);
    }
    if (sh.n_in == 4096) {  // misaligned activation codes: refused, nothing written
      op.poison_y();
      refused = !rc::w8a8_fp8_prefill(op.W(), op.SW(), op.n_out, op.n_in, op.X() + 1, op.SX(), 17, x16, op.Y(),
                                      nullptr) &&
                refused;
      cuda_ok(cudaDeviceSynchronize(), "sync");
      for (float v : op.download_y(size_t(17 * op.n_out))) refused = refused && std::isnan(v);
    }
    cudaFree(x16);
  }
  refused = refused && !rc::w8a8_fp8_prefill_fits(72, reinterpret_cast<const void*>(uintptr_t(4096))) &&
            rc::w8a8_fp8_prefill_fits(80, reinterpret_cast<const void*>(uintptr_t(4096)));
  char buf[640];
  std::snprintf(buf, sizeof buf, "fp8 w8a8 prefill kernel (f16 tensor cores, wgmma) at n_in 4096 / 11024 / 64 / 80 / 16 "
                "x 41 rows (T = 17 / 100 / 200) and 80 x 4100 rows (T = 129): %zu of %zu outputs outside the bound over "
                "%zu launches; largest error / sum|products| %.3g (bound %.3g at 11024); all ran: %s; nothing past "
                "the outputs: %s; misaligned codes and n_in 72 refused, nothing written: %s",
                outside, outputs, cases, worst, (11024 / 16 + 1) * std::ldexp(1.0, -22), ran ? "yes" : "NO",
                untouched_past ? "yes" : "NO", refused ? "yes" : "NO");
  check(outside == 0 && ran && untouched_past && refused && cases == 16 &&
            outputs == size_t(5 * 41 * (17 + 100 + 200) + 4100 * 129),
        buf);
}

// The prefill's quantizer writing its codes straight into the prefill kernel's f16 layout
// (quantize_act_fp8_permuted, the backend's path where it takes the rows) against quantize_act_fp8 then
// the permutation inside w8a8_fp8_prefill: the same x16 bytes (its zero padding included), the same
// scales, and the same outputs from w8a8_fp8_prefill_f16 as from w8a8_fp8_prefill, bitwise. Rows 4096,
// 11024 (a 64-input chunk's padding of 48), 80 and 16 wide, 37 tokens of mixed magnitudes, one a NaN row
// (its scale NaN, its flag set, its codes 0). Rows not a multiple of 16 or wider than 16384 are refused.
void check_fp8_quantize_permuted() {
  namespace rc = runtime::cuda;
  std::mt19937 rng(4242);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  size_t differ = 0, bytes = 0;
  bool all_ran = true, flagged = true;
  const int T = 37, n_out = 40;
  unsigned* flag = nullptr;
  cuda_ok(cudaMallocManaged(&flag, 4), "cudaMallocManaged");
  for (const int n : {4096, 11024, 80, 16}) {
    const int width = (n + 63) / 64 * 64;
    std::vector<float> x(size_t(T) * n);
    for (int t = 0; t < T; ++t)
      for (int i = 0; i < n; ++i) x[size_t(t) * n + i] = nd(rng) * std::ldexp(1.0f, t % 9 - 4);
    x[size_t(5) * n + n / 2] = NAN;
    std::vector<uint8_t> w(size_t(n_out) * n);
    for (auto& c : w) c = uint8_t(rng() % 0x7f);  // (positive codes below NaN)
    void *dx, *dw, *dsw, *dq, *ds1, *ds2, *dy1, *dy2;
    uint16_t *a16, *b16;
    for (void** p : {&dx, &dw, &dsw, &dq, &ds1, &ds2, &dy1, &dy2}) cuda_ok(cudaMalloc(p, size_t(T) * width * 4 + 4096), "cudaMalloc");
    cuda_ok(cudaMalloc(reinterpret_cast<void**>(&a16), rc::w8a8_fp8_prefill_scratch_bytes(n, T)), "cudaMalloc");
    cuda_ok(cudaMalloc(reinterpret_cast<void**>(&b16), rc::w8a8_fp8_prefill_scratch_bytes(n, T)), "cudaMalloc");
    cuda_ok(cudaMemset(a16, 0xff, rc::w8a8_fp8_prefill_scratch_bytes(n, T)), "poison");
    cuda_ok(cudaMemset(b16, 0xff, rc::w8a8_fp8_prefill_scratch_bytes(n, T)), "poison");
    cuda_ok(cudaMemcpy(dx, x.data(), x.size() * 4, cudaMemcpyHostToDevice), "upload");
    cuda_ok(cudaMemcpy(dw, w.data(), w.size(), cudaMemcpyHostToDevice), "upload");
    const std::vector<float> sw(size_t(n_out), 0.01f);
    cuda_ok(cudaMemcpy(dsw, sw.data(), sw.size() * 4, cudaMemcpyHostToDevice), "upload");
    auto* W = static_cast<const uint8_t*>(dw);
    auto* SW = static_cast<const float*>(dsw);
    *flag = 0;
    rc::quantize_act_fp8(static_cast<const float*>(dx), n, n, T, static_cast<uint8_t*>(dq), static_cast<float*>(ds1),
                         nullptr);
    all_ran = rc::w8a8_fp8_prefill(W, SW, n_out, n, static_cast<const uint8_t*>(dq), static_cast<const float*>(ds1), T,
                                   a16, static_cast<float*>(dy1), nullptr) && all_ran;
    all_ran = rc::quantize_act_fp8_permuted(static_cast<const float*>(dx), n, n, T, b16, static_cast<float*>(ds2),
                                            nullptr, flag) && all_ran;
    all_ran = rc::w8a8_fp8_prefill_f16(W, SW, n_out, n, b16, static_cast<const float*>(ds2), T,
                                       static_cast<float*>(dy2), nullptr) && all_ran;
    cuda_ok(cudaDeviceSynchronize(), "sync");
    flagged = flagged && *flag == 1;
    auto same = [&](const void* p, const void* q, size_t nb) {
      std::vector<uint8_t> u(nb), v(nb);
      cuda_ok(cudaMemcpy(u.data(), p, nb, cudaMemcpyDeviceToHost), "download");
      cuda_ok(cudaMemcpy(v.data(), q, nb, cudaMemcpyDeviceToHost), "download");
      for (size_t i = 0; i < nb; ++i) differ += u[i] != v[i];
      bytes += nb;
    };
    same(a16, b16, size_t(T) * width * 2);
    same(ds1, ds2, size_t(T) * 4);
    same(dy1, dy2, size_t(T) * n_out * 4);
    for (void* p : {dx, dw, dsw, dq, ds1, ds2, dy1, dy2}) cudaFree(p);
    cudaFree(a16);
    cudaFree(b16);
  }
  cudaFree(flag);
  const bool refused = !rc::quantize_act_fp8_permuted(nullptr, 72, 72, 1, nullptr, nullptr, nullptr) &&
                       !rc::quantize_act_fp8_permuted(nullptr, 16400, 16400, 1, nullptr, nullptr, nullptr);
  char buf[512];
  std::snprintf(buf, sizeof buf, "fp8 prefill quantizer into the kernel's f16 layout at n 4096 / 11024 / 80 / 16, T = "
                "%d with a NaN row: %zu of %zu bytes (f16 codes with padding, scales, outputs) differ from the "
                "quantizer then the permutation; all ran: %s; NaN rows flagged: %s; n 72 and 16400 refused: %s",
                T, differ, bytes, all_ran ? "yes" : "NO", flagged ? "yes" : "NO", refused ? "yes" : "NO");
  check(differ == 0 && bytes > 0 && all_ran && flagged && refused, buf);
}

}  // namespace backend_check
