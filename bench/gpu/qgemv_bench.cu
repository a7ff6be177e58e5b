// Decode-kernel benchmark on Llama-2-7B shapes (QB_BENCH_SHAPES=llama3-8b or qwen2.5-7b: that model's
// instead): per format and token count, the time of one product,
// the weight(+scale+zero) bytes it streams over that time, and that rate as a share of the copy
// bandwidth probed in the same run. Weights are random bytes generated on the GPU, rotated among
// enough copies that the set is over 4x the L2, so every product reads HBM. Each number is the median
// of `reps` graph replays of `inner` back-to-back products (min and max kept for the spread).
// Also: cuBLAS bf16 at the same shapes (baseline), cuBLAS bf16 GEMM at prefill shapes, a launch-shape
// sweep per case (so the heuristic can be checked against the best), and a whole-model decode
// estimate for the model built from the per-shape kernel times (an estimate, not an end-to-end run).
// The per-product times are of a product back to back with copies of itself, not of the decode step's
// neighbours: a kernel that won here lost in the step (docs/perf.md, session 26), so a change of kernel or
// launch shape is adopted on the step's A/B (bench/gpu/ab.sh), not on this table alone.
// Usage: qgemv_bench OUT_DIR [--quick]  (QB_BENCH_SPEC=w4g128: that one format; QB_BENCH_NO_PDL: no overlap rows)
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "quantbench/runtime/cuda/cuda_check.h"
#include "quantbench/runtime/cuda/probes.h"
#include "quantbench/runtime/cuda/qgemv.h"

using namespace qb::runtime::cuda;

namespace {

struct Shape { const char* name; int n_out, n_in, per_step; };  // per_step: layers, or 1 (lm_head)
struct ShapeSet { const char* model; std::vector<Shape> shapes; };
ShapeSet shape_set() {
  const char* want = std::getenv("QB_BENCH_SHAPES");
  const std::string m = want ? want : "llama2-7b";
  if (m == "llama3-8b")
    return {"Llama-3-8B", {{"o 4096x4096", 4096, 4096, 32}, {"qkv 6144x4096", 6144, 4096, 32},
                           {"gate|up 28672x4096", 28672, 4096, 32}, {"down 4096x14336", 4096, 14336, 32},
                           {"lm_head 128256x4096", 128256, 4096, 1}}};
  if (m == "qwen2.5-7b")
    return {"Qwen2.5-7B", {{"o 3584x3584", 3584, 3584, 28}, {"qkv 4608x3584", 4608, 3584, 28},
                           {"gate|up 37888x3584", 37888, 3584, 28}, {"down 3584x18944", 3584, 18944, 28},
                           {"lm_head 152064x3584", 152064, 3584, 1}}};
  if (m != "llama2-7b") throw std::runtime_error("QB_BENCH_SHAPES: llama2-7b, llama3-8b or qwen2.5-7b, got " + m);
  return {"Llama-2-7B", {{"o 4096x4096", 4096, 4096, 32}, {"qkv 12288x4096", 12288, 4096, 32},
                         {"gate|up 22016x4096", 22016, 4096, 32}, {"down 4096x11008", 4096, 11008, 32},
                         {"lm_head 32000x4096", 32000, 4096, 1}}};
}
const QuantSpec kSpecs[] = {{WeightFormat::BF16, 0, false},   {WeightFormat::W8A16, 0, false},
                            {WeightFormat::W4A16, 128, false}, {WeightFormat::W4A16, 128, true},
                            {WeightFormat::W4A16, 32, false},  {WeightFormat::W4A16, 32, true},
                            {WeightFormat::W4A16, 32, false, true},   // (w4g32m: GGUF Q4_1 / Q4_K)
                            {WeightFormat::W8A16, 16, false},         // (w8g16: GGUF Q6_K, Q3_K)
                            {WeightFormat::W8A16, 32, false},         // (w8g32: GGUF Q8_0, Q5_0)
                            {WeightFormat::W8A16, 32, false, true},   // (w8g32m: GGUF Q5_K, Q5_1)
                            {WeightFormat::W8A16, 16, false, true}};  // (w8g16m: GGUF Q2_K)
const int kTokens[] = {1, 4, 16};
constexpr size_t kRotateBytes = 256u << 20;  // > 5x the 50 MB L2

// "R2w8h": row blocks per warp, warps per block, and the half step where it ran.
std::string launch_name(const QgemvConfig& c) {
  return "R" + std::to_string(c.row_blocks_per_warp) + "w" + std::to_string(c.warps_per_block) +
         (c.half_step ? "h" : "");
}

struct Row {
  std::string shape, spec, config;
  int n_out, n_in, n;
  size_t bytes;
  Timing t;
  double gbs, share;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) { std::fprintf(stderr, "usage: qgemv_bench OUT_DIR [--quick]\n"); return 2; }
  const std::string out_dir = argv[1];
  const bool quick = argc > 2 && std::strcmp(argv[2], "--quick") == 0;
  const int reps = quick ? 5 : 15;
  const bool no_pdl = std::getenv("QB_BENCH_NO_PDL") != nullptr;  // skip the overlap variant
  try {
    const ShapeSet set = shape_set();
    const std::vector<Shape>& kShapes = set.shapes;
    std::printf("shapes: %s\n", set.model);
    cudaDeviceProp prop{};
    QB_CUDA_OK(cudaGetDeviceProperties(&prop, 0));
    std::printf("device: %s, %d SMs, L2 %d MB, %.1f GB\n", prop.name, prop.multiProcessorCount,
                prop.l2CacheSize >> 20, prop.totalGlobalMem / 1e9);

    const BandwidthResult bw = probe_bandwidth(size_t(2) << 30, 20);
    std::printf("copy kernel: %.0f GB/s (read+write), read-only kernel: %.0f GB/s, cudaMemcpy d2d: %.0f GB/s\n",
                bw.copy_gbs, bw.read_gbs, bw.memcpy_gbs);
    const double roof = bw.copy_gbs;

    FILE* csv = std::fopen((out_dir + "/qgemv_results.csv").c_str(), "w");
    if (!csv) throw std::runtime_error("cannot write " + out_dir + "/qgemv_results.csv");
    std::fprintf(csv, "# device %s; copy %.1f GB/s (r+w), read %.1f GB/s, memcpy %.1f GB/s\n", prop.name,
                 bw.copy_gbs, bw.read_gbs, bw.memcpy_gbs);
    std::fprintf(csv, "kernel,shape,n_out,n_in,n,config,bytes,median_us,min_us,max_us,reps,GBps,share_of_copy\n");

    cudaStream_t s;
    QB_CUDA_OK(cudaStreamCreate(&s));
    std::vector<Row> rows;  // heuristic config, one per (shape, spec, n)
    std::map<std::string, Row> best;

    for (const Shape& sh : kShapes) {
      // Activations for each n, packed once (the timed products read them from L2, as in decode).
      std::map<int, void*> xf16, xbf16;
      void* xraw = nullptr;
      QB_CUDA_OK(cudaMalloc(&xraw, size_t(16) * sh.n_in * 2));
      for (int n : kTokens) {
        for (int bf : {0, 1}) {
          void* xf = nullptr;
          QB_CUDA_OK(cudaMalloc(&xf, activation_frag_bytes(sh.n_in, n)));
          if (bf) fill_uniform_bf16(xraw, size_t(n) * sh.n_in, 1000 + n, -1.f, 1.f, s);
          else fill_uniform_f16(xraw, size_t(n) * sh.n_in, 2000 + n, -1.f, 1.f, s);
          pack_activations(xraw, bf, n, sh.n_in, xf, s);
          (bf ? xbf16 : xf16)[n] = xf;
        }
      }
      float* y = nullptr;
      QB_CUDA_OK(cudaMalloc(&y, size_t(16) * sh.n_out * sizeof(float)));

      for (const QuantSpec& spec : kSpecs) {
        if (const char* only = std::getenv("QB_BENCH_SPEC"); only && spec_name(spec) != only) continue;
        const PackedShape ps = packed_shape(spec, sh.n_out, sh.n_in);
        const size_t one = packed_sizes(ps).weights + packed_sizes(ps).scales + packed_sizes(ps).zeros;
        const int copies = int(std::max<size_t>(2, kRotateBytes / one + 1));
        std::vector<DeviceMatrix> w;
        for (int c = 0; c < copies; ++c) {
          w.push_back(allocate(ps));
          DeviceMatrix& d = w.back();
          if (spec.format == WeightFormat::BF16) fill_uniform_bf16(d.weights.get(), d.weight_bytes / 2, 10 + c, -0.05f, 0.05f, s);
          else fill_bytes(d.weights.get(), d.weight_bytes, 10 + c, 0xff, s);
          fill_random_group_params(d, 500 + c, 1e-3f, 5e-3f, -4e-2f, -8e-3f, s);
        }
        const int inner = copies * std::max(1, 24 / copies);
        // One timed product as a row: its CSV line written, the Row returned for the summaries.
        auto record = [&](const std::string& spec_label, const std::string& config, int n, const Timing& t) {
          Row r;
          r.shape = sh.name;
          r.spec = spec_label;
          r.config = config;
          r.n_out = sh.n_out;
          r.n_in = sh.n_in;
          r.n = n;
          r.bytes = one;
          r.t = t;
          r.gbs = one / (t.median_ms * 1e6);
          r.share = r.gbs / roof;
          std::fprintf(csv, "qgemv_%s,%s,%d,%d,%d,%s,%zu,%.3f,%.3f,%.3f,%d,%.1f,%.4f\n", r.spec.c_str(), sh.name,
                       sh.n_out, sh.n_in, n, r.config.c_str(), one, t.median_ms * 1e3, t.min_ms * 1e3, t.max_ms * 1e3,
                       t.reps, r.gbs, r.share);
          return r;
        };
        for (int n : kTokens) {
          void* xf = spec.format == WeightFormat::BF16 ? xbf16[n] : xf16[n];
          // The heuristic launch shape without and with the launch overlap, then (full runs) the sweep.
          std::vector<QgemvConfig> configs = {{0, 0, false}};
          if (!no_pdl) configs.push_back({0, 0, true});
          // The previous launch-shape rule (step 5's), where it differs from the current one ("-r5" rows).
          const QgemvConfig prev = choose_config(ps, n, prop.multiProcessorCount, 5);
          const QgemvConfig cur = choose_config(ps, n, prop.multiProcessorCount);
          const bool prev_differs =
              prev.row_blocks_per_warp != cur.row_blocks_per_warp || prev.warps_per_block != cur.warps_per_block ||
              prev.half_step != cur.half_step;
          const size_t prev_index = configs.size();
          if (prev_differs) configs.push_back(prev);
          if (!quick) {
            for (int r : {1, 2, 4})
              for (int nw : {4, 8, 16}) configs.push_back({r, nw, false});
            if (spec.format == WeightFormat::W4A16)  // the half step (every int4 format)
              for (int r : {1, 2})
                for (int nw : {2, 3, 4, 5, 6, 8, 12, 16}) configs.push_back({r, nw, false, true});
          }
          for (size_t ci = 0; ci < configs.size(); ++ci) {
            const QgemvConfig& cfg = configs[ci];
            const QgemvConfig ran = qgemv(w[0], xf, n, y, s, cfg);  // the launch shape that really runs
            const Timing t = time_graph(
                [&](int i, cudaStream_t st) { qgemv(w[size_t(i % copies)], xf, n, y, st, cfg); }, inner, reps, s);
            const bool is_prev = prev_differs && ci == prev_index;
            const Row r = record(spec_name(spec) + (cfg.overlap_launch ? "+pdl" : "") + (is_prev ? "-r5" : ""),
                                 std::string(cfg.row_blocks_per_warp ? (is_prev ? "rule5:" : "") : "auto:") +
                                     launch_name(ran) + (cfg.overlap_launch ? "+pdl" : ""),
                                 n, t);
            const std::string key =
                spec_name(spec) + (cfg.overlap_launch ? "+pdl" : "") + "|" + sh.name + "|" + std::to_string(n);
            if (cfg.row_blocks_per_warp == 0 || is_prev) rows.push_back(r);
            if (!best.count(key) || best[key].t.median_ms > t.median_ms) best[key] = r;
          }
          // gate|up with the gated activation in its epilogue (QgemvGatedOut: writes the down product's
          // fragments instead of y), at the rule's launch shape where it fits: the "+gated" rows.
          if (std::strncmp(sh.name, "gate|up", 7) == 0 && gated_epilogue_fits(ps, cur)) {
            void* hfrag = nullptr;
            QB_CUDA_OK(cudaMalloc(&hfrag, activation_frag_bytes(sh.n_out / 2, 16)));
            QgemvGatedOut go;
            go.frag = hfrag;
            go.n = sh.n_out / 2;
            go.bf16 = spec.format == WeightFormat::BF16;
            const Timing t = time_graph(
                [&](int i, cudaStream_t st) { qgemv(w[size_t(i % copies)], xf, n, nullptr, st, cur, &go); }, inner,
                reps, s);
            rows.push_back(record(spec_name(spec) + "+gated", "auto:" + launch_name(cur) + "+gated", n, t));
            QB_CUDA_OK(cudaStreamSynchronize(s));
            QB_CUDA_OK(cudaFree(hfrag));
          }
        }
        QB_CUDA_OK(cudaStreamSynchronize(s));
      }
      // cuBLAS bf16 at the same shape: the library baseline for bf16 weights.
      for (int n : kTokens) {
        const GemmResult g = probe_gemm_bf16(n, sh.n_out, sh.n_in, reps);
        std::fprintf(csv, "cublas_bf16,%s,%d,%d,%d,default,%zu,%.3f,%.3f,%.3f,%d,%.1f,%.4f\n", sh.name, sh.n_out,
                     sh.n_in, n, size_t(sh.n_out) * sh.n_in * 2, g.t.median_ms * 1e3, g.t.min_ms * 1e3,
                     g.t.max_ms * 1e3, g.t.reps, g.weight_gbs, g.weight_gbs / roof);
        Row r{sh.name, "cublas", "default", sh.n_out, sh.n_in, n, size_t(sh.n_out) * sh.n_in * 2, g.t,
              g.weight_gbs, g.weight_gbs / roof};
        rows.push_back(r);
      }
      for (auto& kv : xf16) QB_CUDA_OK(cudaFree(kv.second));
      for (auto& kv : xbf16) QB_CUDA_OK(cudaFree(kv.second));
      QB_CUDA_OK(cudaFree(xraw));
      QB_CUDA_OK(cudaFree(y));
    }

    // The activation packing kernel on its own (a real decode step would fuse it into the norm or
    // activation kernel that produces x; reported so the estimate below can be judged without it).
    for (int n_in : {4096, 11008})
      for (int n : {1, 16}) {
        void *xr = nullptr, *xf = nullptr;
        QB_CUDA_OK(cudaMalloc(&xr, size_t(n) * n_in * 2));
        QB_CUDA_OK(cudaMalloc(&xf, activation_frag_bytes(n_in, n)));
        fill_uniform_f16(xr, size_t(n) * n_in, 3, -1.f, 1.f, s);
        const Timing t = time_graph([&](int, cudaStream_t st) { pack_activations(xr, false, n, n_in, xf, st); }, 20, reps, s);
        std::printf("pack_activations n_in=%d n=%d: %.2f us\n", n_in, n, t.median_ms * 1e3);
        std::fprintf(csv, "pack_activations,x,0,%d,%d,default,0,%.3f,%.3f,%.3f,%d,0,0\n", n_in, n, t.median_ms * 1e3,
                     t.min_ms * 1e3, t.max_ms * 1e3, t.reps);
        QB_CUDA_OK(cudaFree(xr));
        QB_CUDA_OK(cudaFree(xf));
      }

    // Prefill baseline: cuBLAS bf16 GEMM at 512 tokens.
    std::printf("\ncuBLAS bf16 GEMM, prefill shapes (tokens x n_out x n_in): TFLOP/s\n");
    for (const Shape& sh : kShapes) {
      const GemmResult g = probe_gemm_bf16(512, sh.n_out, sh.n_in, reps);
      std::fprintf(csv, "cublas_gemm_bf16,%s,%d,%d,512,default,%zu,%.3f,%.3f,%.3f,%d,%.1f,%.2f TFLOP/s\n", sh.name,
                   sh.n_out, sh.n_in, size_t(sh.n_out) * sh.n_in * 2, g.t.median_ms * 1e3, g.t.min_ms * 1e3,
                   g.t.max_ms * 1e3, g.t.reps, g.weight_gbs, g.tflops);
      std::printf("  512 x %-20s %7.1f TFLOP/s  (%.1f us)\n", sh.name, g.tflops, g.t.median_ms * 1e3);
    }
    std::fclose(csv);

    // Short tables last (the device tool returns the tail of the output).
    std::printf("\nSweep: best launch shape vs heuristic (share of copy bandwidth)\n");
    for (const Row& r : rows) {
      if (r.spec == "cublas" || r.spec.find("+pdl") != std::string::npos || r.spec.find("-r5") != std::string::npos)
        continue;
      const Row& b = best[r.spec + "|" + r.shape + "|" + std::to_string(r.n)];
      if (b.t.median_ms < 0.97 * r.t.median_ms)
        std::printf("  %-8s %-20s n=%-2d auto %s %.0f%%  best %s %.0f%%\n", r.spec.c_str(), r.shape.c_str(), r.n,
                    r.config.c_str(), 100 * r.share, b.config.c_str(), 100 * b.share);
    }

    std::printf("\nPer-shape decode kernels, heuristic launch shape, plain launches (no PDL): GB/s of weight+scale bytes (%% of copy %.0f GB/s),"
                " median of %d; [min..max] us for spread in the CSV\n", roof, reps);
    std::printf("%-20s %-3s", "shape", "n");
    const char* cols[] = {"cublas", "bf16",  "w8",    "w4g128", "w4g128-r5", "w4g128a",
                          "w4g32",  "w4g32a", "w4g32m", "w8g16", "w8g32",     "w8g32m", "w8g16m"};
    for (const char* c : cols) std::printf(" %15s", c);
    std::printf("\n");
    std::map<std::string, const Row*> by;
    for (const Row& r : rows) by[r.spec + "|" + r.shape + "|" + std::to_string(r.n)] = &r;
    for (const Shape& sh : kShapes)
      for (int n : kTokens) {
        std::printf("%-20s %-3d", sh.name, n);
        for (const char* c : cols) {
          const Row* r = by[std::string(c) + "|" + sh.name + "|" + std::to_string(n)];
          if (r) std::printf("    %5.0f (%3.0f%%)", r->gbs, 100 * r->share);
          else std::printf(" %15s", "-");
        }
        std::printf("\n");
      }

    // Whole-model decode estimate from kernel times: layers x (qkv + o + gate|up + down) + lm_head, same
    // format everywhere; roofline = those bytes / copy bandwidth.
    std::printf("\n%s decode ESTIMATE from per-shape kernel times (not an end-to-end run; no attention,"
                " norms, KV cache or launch gaps between layers):\n", set.model);
    std::printf("%-13s %-3s %10s %10s %12s %12s %8s\n", "weights", "n", "GB/step", "us/step", "tok/s", "roof tok/s",
                "share");
    for (const char* spec : {"cublas", "bf16", "bf16+pdl", "w8", "w8+pdl", "w4g128", "w4g128-r5", "w4g128+pdl",
                             "w4g128a", "w4g32", "w4g32m", "w8g16", "w8g32", "w8g32m", "w8g16m"}) {
      for (int n : kTokens) {
        double us = 0, bytes = 0;
        bool ok = true;
        for (const Shape& sh : kShapes) {
          const Row* r = by[std::string(spec) + "|" + sh.name + "|" + std::to_string(n)];
          const std::string sp(spec);
          if (!r && sp.size() > 3 && sp.compare(sp.size() - 3, 3, "-r5") == 0)  // the rules agree on this shape
            r = by[sp.substr(0, sp.size() - 3) + "|" + sh.name + "|" + std::to_string(n)];
          if (!r) { ok = false; break; }
          const double mult = sh.per_step;
          us += mult * r->t.median_ms * 1e3;
          bytes += mult * double(r->bytes);
        }
        if (!ok) continue;
        const double roof_us = bytes / (roof * 1e3);
        std::printf("%-13s %-3d %10.2f %10.0f %12.0f %12.0f %7.0f%%\n", spec, n, bytes / 1e9, us, n * 1e6 / us,
                    n * 1e6 / roof_us, 100 * roof_us / us);
      }
    }
    QB_CUDA_OK(cudaStreamDestroy(s));
  } catch (const std::exception& e) {
    std::printf("FAIL: %s\n", e.what());
    return 1;
  }
  return 0;
}
