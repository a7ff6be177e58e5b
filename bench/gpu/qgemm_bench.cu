// Prefill products on packed weights (w4g128, w4g128-asym, w8) at Llama-2-7B shapes: the fused qgemm
// kernel against the path it replaces (dequantize_packed to an f16 scratch matrix, then cuBLAS f16 GEMM)
// and against cuBLAS on a dense 16-bit matrix of the same shape (what a bf16 model's prefill runs), all
// in the same run.
// Weights rotate among enough copies that every product reads them from HBM, as in a forward pass.
// Each figure is the median of `reps` graph replays of `inner` back-to-back products.
// Usage: qgemm_bench [--quick | --ncu]. --ncu: only one plain qgemm launch per format on gate|up at T = 512
// (for Nsight Compute: ncu --kernel-name regex:qgemm qgemm_bench --ncu).
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "quantbench/runtime/cuda/cuda_check.h"
#include "quantbench/runtime/cuda/probes.h"
#include "quantbench/runtime/cuda/qgemm.h"
#include "quantbench/runtime/cuda/qgemv.h"

using namespace qb::runtime::cuda;

namespace {

struct Shape { const char* name; int n_out, n_in, per_layer; };
const Shape kShapes[] = {{"qkv 12288x4096", 12288, 4096, 1},
                         {"o 4096x4096", 4096, 4096, 1},
                         {"gate|up 22016x4096", 22016, 4096, 1},
                         {"down 4096x11008", 4096, 11008, 1}};
constexpr size_t kRotateBytes = 256u << 20;

void blas_ok(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) throw std::runtime_error(std::string("cublas: ") + what);
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  const bool ncu = argc > 1 && std::strcmp(argv[1], "--ncu") == 0;
  const int reps = quick ? 5 : 11;
  try {
    cudaDeviceProp prop{};
    QB_CUDA_OK(cudaGetDeviceProperties(&prop, 0));
    std::printf("device: %s, %d SMs\n", prop.name, prop.multiProcessorCount);
    cudaStream_t s;
    QB_CUDA_OK(cudaStreamCreate(&s));
    cublasHandle_t blas;
    blas_ok(cublasCreate(&blas), "create");
    blas_ok(cublasSetStream(blas, s), "stream");
    std::printf("%-20s %5s %-8s %10s %10s %12s %10s %10s\n", "shape", "T", "weights", "fused us", "deq+gemm us",
                "dense16 us", "fused/deq", "fused/dense");
    double sum[3][2] = {};  // [fused, deq+gemm, dense][T index], us per layer's products
    const int Ts[] = {128, 512};
    for (const Shape& sh : kShapes) {
      if (ncu && sh.n_out != 22016) continue;
      for (int ti = 0; ti < 2; ++ti) {
        const int T = Ts[ti];
        if (ncu && T != 512) continue;
        const QuantSpec specs[] = {{WeightFormat::W4A16, 128, false}, {WeightFormat::W4A16, 128, true},
                                   {WeightFormat::W8A16, 0, false}};
        for (const QuantSpec& spec : specs) {
          const PackedShape ps = packed_shape(spec, sh.n_out, sh.n_in);
          const PackedSizes sz = packed_sizes(ps);
          const size_t one = sz.weights + sz.scales + sz.zeros;
          const int copies = int(std::max<size_t>(2, kRotateBytes / one + 1));
          std::vector<DeviceMatrix> w;
          for (int c = 0; c < copies; ++c) {
            w.push_back(allocate(ps));
            DeviceMatrix& d = w.back();
            fill_bytes(d.weights.get(), d.weight_bytes, 10 + c, 0xff, s);
            fill_random_group_params(d, 500 + c, 1e-3f, 5e-3f, 0.f, 0.f, s);
          }
          const size_t dense_bytes = size_t(sh.n_out) * sh.n_in * 2;
          const int dcopies = int(std::max<size_t>(2, kRotateBytes / dense_bytes + 1));
          std::vector<void*> dense(size_t(dcopies), nullptr);
          for (int c = 0; c < dcopies; ++c) {
            QB_CUDA_OK(cudaMalloc(&dense[size_t(c)], dense_bytes));
            fill_uniform_f16(dense[size_t(c)], dense_bytes / 2, 77 + c, -0.05f, 0.05f, s);
          }
          uint16_t* x = nullptr;
          float* y = nullptr;
          QB_CUDA_OK(cudaMalloc(&x, size_t(T) * sh.n_in * 2));
          QB_CUDA_OK(cudaMalloc(&y, size_t(T) * sh.n_out * 4));
          fill_uniform_f16(x, size_t(T) * sh.n_in, 3, -1.f, 1.f, s);
          const float one_f = 1.f, zero_f = 0.f;
          auto gemm = [&](const void* wmat, cudaStream_t st) {
            blas_ok(cublasSetStream(blas, st), "stream");
            blas_ok(cublasGemmEx(blas, CUBLAS_OP_T, CUBLAS_OP_N, sh.n_out, T, sh.n_in, &one_f, wmat, CUDA_R_16F,
                                 sh.n_in, x, CUDA_R_16F, sh.n_in, &zero_f, y, CUDA_R_32F, sh.n_out,
                                 CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                    "gemm");
          };
          const int inner = std::max(copies, 8);
          if (ncu) {
            qgemm(w[0], x, T, y, s);
            QB_CUDA_OK(cudaStreamSynchronize(s));
            std::printf("ncu: one qgemm launch, %s, %s, T=%d\n", sh.name, spec_name(spec).c_str(), T);
            for (void* p : dense) QB_CUDA_OK(cudaFree(p));
            QB_CUDA_OK(cudaFree(x));
            QB_CUDA_OK(cudaFree(y));
            continue;
          }
          const Timing tf =
              time_graph([&](int i, cudaStream_t st) { qgemm(w[size_t(i % copies)], x, T, y, st); }, inner, reps, s);
          const QgemmConfig chosen = qgemm_config(ps, T, prop.multiProcessorCount);
          std::string tiles;  // both tiles, for the launch rule
          for (int nt : {64, 128}) {
            const Timing tt = time_graph(
                [&](int i, cudaStream_t st) { qgemm(w[size_t(i % copies)], x, T, y, st, {nt}); }, inner, reps, s);
            char buf[64];
            std::snprintf(buf, sizeof buf, " 128x%d%s %.1f", nt, chosen.tokens == nt ? "*" : "", tt.median_ms * 1e3);
            tiles += buf;
          }
          const Timing td = time_graph(
              [&](int i, cudaStream_t st) {
                dequantize_packed(w[size_t(i % copies)], false, dense[0], st);
                gemm(dense[0], st);
              },
              inner, reps, s);
          const Timing tg = time_graph([&](int i, cudaStream_t st) { gemm(dense[size_t(i % dcopies)], st); },
                                       std::max(dcopies, 8), reps, s);
          const double flop = 2.0 * T * sh.n_out * sh.n_in;
          std::printf("%-20s %5d %-8s %10.1f %10.1f %12.1f %9.2fx %9.2fx   (%.0f / %.0f / %.0f TFLOP/s)\n", sh.name, T,
                      spec_name(spec).c_str(), tf.median_ms * 1e3, td.median_ms * 1e3, tg.median_ms * 1e3,
                      td.median_ms / tf.median_ms, tg.median_ms / tf.median_ms, flop / tf.median_ms / 1e9,
                      flop / td.median_ms / 1e9, flop / tg.median_ms / 1e9);
          std::printf("    launches (us; * = chosen):%s\n", tiles.c_str());
          if (spec.format == WeightFormat::W4A16 && !spec.asym) {
            sum[0][ti] += tf.median_ms * 1e3 * sh.per_layer;
            sum[1][ti] += td.median_ms * 1e3 * sh.per_layer;
            sum[2][ti] += tg.median_ms * 1e3 * sh.per_layer;
          }
          for (void* p : dense) QB_CUDA_OK(cudaFree(p));
          QB_CUDA_OK(cudaFree(x));
          QB_CUDA_OK(cudaFree(y));
        }
      }
    }
    for (int ti = 0; ti < 2 && !ncu; ++ti)
      std::printf("one Llama-2-7B layer's products, T=%d, w4g128: fused %.1f us, dequantize + cuBLAS %.1f us, dense "
                  "16-bit cuBLAS %.1f us (fused = %.0f%% of the dense rate)\n",
                  Ts[ti], sum[0][ti], sum[1][ti], sum[2][ti], 100.0 * sum[2][ti] / sum[0][ti]);
    blas_ok(cublasDestroy(blas), "destroy");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "qgemm_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
