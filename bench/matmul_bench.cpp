// Check-then-time benchmark of the CPU matmul: SmolLM2-135M's projection shapes (hidden 576,
// kv 192, ffn 1536, vocab 49152) for each fast type and ISA, decode (1 token) and prefill (32 tokens).
// Before timing, each case is compared with the Reference path (normalised error must be < 1e-2, far
// above activation-quantization error and far below any layout bug); a failed check aborts the case.
// Reports weight bytes/s (decode is bandwidth-bound). Threads: QB_BENCH_THREADS (default 2).
// Run: build-bench/bench/qb_bench --benchmark_filter='q4_1/.*/tokens:1'
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "quantbench/core/dtype.h"
#include "quantbench/quant/qformat/ggml_quantize.h"
#include "quantbench/runtime/cpu/matmul.h"

namespace {

using qb::formats::GgmlType;
using namespace qb::runtime::cpu;

struct Case {
  std::vector<uint8_t> bytes;
  WeightMatrix w;
  std::vector<float> x;
};

int bench_threads() {
  const char* e = std::getenv("QB_BENCH_THREADS");
  return e ? std::atoi(e) : 2;
}

// Weights from quantizing Gaussian data with our reference quantizers (realistic scale patterns).
std::unique_ptr<Case> make_case(GgmlType type, int64_t n_in, int64_t n_out, int64_t n_tokens) {
  auto c = std::make_unique<Case>();
  std::mt19937 rng(42);
  std::normal_distribution<float> g;
  const size_t row = qb::formats::ggml_row_bytes(type, n_in);
  c->bytes.resize(row * size_t(n_out));
  std::vector<float> src(static_cast<size_t>(n_in));
  for (int64_t o = 0; o < n_out; ++o) {
    for (auto& v : src) v = g(rng) * 0.02f;
    uint8_t* dst = c->bytes.data() + size_t(o) * row;
    if (type == GgmlType::F32) std::memcpy(dst, src.data(), row);
    else if (type == GgmlType::F16)
      for (int64_t i = 0; i < n_in; ++i) { const uint16_t h = qb::f32_to_f16(src[size_t(i)]); std::memcpy(dst + 2 * i, &h, 2); }
    else qb::qformat::quantize_row(type, src.data(), dst, n_in);
  }
  c->w = WeightMatrix{type, n_in, n_out, c->bytes.data(), row};
  c->x.resize(size_t(n_in * n_tokens));
  for (auto& v : c->x) v = g(rng);
  return c;
}

bool check(const Case& c, int64_t n_tokens, CpuIsa isa, qb::ThreadPool& pool, std::string* why) {
  std::vector<float> ref(size_t(c.w.n_out * n_tokens)), y(ref.size());
  matmul(c.w, c.x.data(), n_tokens, ref.data(), pool, MatmulPath::Reference);
  matmul_with_isa(c.w, c.x.data(), n_tokens, y.data(), pool, isa);
  double num = 0, den = 0;
  for (size_t i = 0; i < y.size(); ++i) num += (double(y[i]) - ref[i]) * (double(y[i]) - ref[i]), den += double(ref[i]) * ref[i];
  const double err = std::sqrt(num / std::max(den, 1e-300));
  *why = "normalised error " + std::to_string(err);
  return err < 1e-2;
}

void bm_matmul(benchmark::State& state, GgmlType type, CpuIsa isa, int64_t n_in, int64_t n_out) {
  const int64_t n_tokens = state.range(0);
  if (!cpu_isa_supported(isa)) {
    state.SkipWithError("ISA not supported on this CPU");
    return;
  }
  qb::ThreadPool pool(bench_threads());
  const auto c = make_case(type, n_in, n_out, n_tokens);
  std::string why;
  if (!check(*c, n_tokens, isa, pool, &why)) {
    state.SkipWithError(("check against reference failed: " + why).c_str());
    return;
  }
  std::vector<float> y(size_t(n_out * n_tokens));
  for (auto _ : state) {
    matmul_with_isa(c->w, c->x.data(), n_tokens, y.data(), pool, isa);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(c->bytes.size()));
  state.SetItemsProcessed(int64_t(state.iterations()) * n_in * n_out * n_tokens);  // multiply-adds
  state.SetLabel(std::string(cpu_isa_name(isa)) + " " + std::to_string(bench_threads()) + " threads");
}

const bool registered = [] {
  const std::tuple<const char*, int64_t, int64_t> shapes[] = {
      {"attn_q_576x576", 576, 576}, {"attn_k_576x192", 576, 192}, {"ffn_up_576x1536", 576, 1536},
      {"ffn_down_1536x576", 1536, 576}, {"lm_head_576x49152", 576, 49152}};
  for (GgmlType type : {GgmlType::Q4_1, GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q6_K,
                        GgmlType::F16, GgmlType::F32})
    for (CpuIsa isa : {CpuIsa::Scalar, CpuIsa::Avx2, CpuIsa::Avx512})
      for (const auto& [name, n_in, n_out] : shapes) {
        if ((type == GgmlType::Q4_K || type == GgmlType::Q6_K) && n_in % 256 != 0) continue;
        const std::string label = std::string(qb::formats::ggml_type_name(type)) + "/" +
                                  std::string(cpu_isa_name(isa)) + "/" + name;
        benchmark::RegisterBenchmark(label.c_str(), bm_matmul, type, isa, n_in, n_out)
            ->ArgName("tokens")->Arg(1)->Arg(32)->UseRealTime()->Unit(benchmark::kMicrosecond);
      }
  return true;
}();

}  // namespace
