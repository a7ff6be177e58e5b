// End-to-end timing of the CUDA backend on one GGUF (the GPU machine makes a random one at real
// shapes with make_bench_gguf.py): prefill tok/s, decode tok/s at batch 1 and 16 sequences, each
// next to the same-run bandwidth probe, so a decode step reads as a share of the roofline
// (weight bytes / step time / probe bandwidth). The timed forward() is the whole user-visible call:
// host embedding lookup and tables, every kernel, the logits copy back and the stream sync.
// Usage: qb_gpu_backend_bench MODEL.gguf [bf16|f32]
#include <chrono>
#include <cstdio>
#include <string>

#include "quantbench/model/model.h"
#include "quantbench/runtime/cuda/cuda_backend.h"
#include "quantbench/runtime/cuda/probes.h"

using namespace qb;
using runtime::Batch;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s MODEL.gguf [bf16|f32]\n", argv[0]);
    return 2;
  }
  if (!runtime::cuda::cuda_device_available()) {
    std::printf("SKIPPED: no CUDA device\n");
    return 2;
  }
  const bool f32 = argc > 2 && std::string(argv[2]) == "f32";
  const auto bw = runtime::cuda::probe_bandwidth(size_t(1) << 30, 20);
  std::printf("probe: copy kernel %.0f GB/s (read+write), read kernel %.0f GB/s, memcpy %.0f GB/s\n", bw.copy_gbs,
              bw.read_gbs, bw.memcpy_gbs);
  auto t0 = std::chrono::steady_clock::now();
  auto model = model::Model::load(argv[1]);
  runtime::cuda::CudaBackend be(model, {f32 ? runtime::cuda::DenseType::F32 : runtime::cuda::DenseType::Bits16, 0});
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto& sp = be.spec();
  std::printf("model: %s\nbackend: %s\nweights on device: %.3f GB (load+upload %.1f s)\n", sp.describe().c_str(),
              be.describe().c_str(), double(be.weight_bytes()) / 1e9, load_s);
  auto now = [] { return std::chrono::steady_clock::now(); };
  auto secs = [](auto a, auto b) { return std::chrono::duration<double>(b - a).count(); };

  // Prefill: 512 tokens of one sequence, logits for the last (3 reps after a warm-up).
  const int P = 512;
  double best = 1e30;
  for (int rep = 0; rep < 4; ++rep) {
    const auto s = be.create_sequence(P + 300);
    Batch b;
    for (int i = 0; i < P; ++i) b.add((i * 7919 + 13) % int(sp.n_vocab), s, i, i == P - 1);
    const auto a = now();
    be.forward(b);
    if (rep) best = std::min(best, secs(a, now()));
    be.free_sequence(s);
  }
  std::printf("prefill pp%d: %.0f tok/s (best of 3)\n", P, P / best);

  for (int cfg = 0; cfg < 4; ++cfg) {
    const int streams = cfg % 2 ? 16 : 1;
    const bool graphs = cfg < 2;
    be.set_use_graphs(graphs);
    std::vector<runtime::SeqId> seqs;
    Batch b;
    for (int s = 0; s < streams; ++s) {
      seqs.push_back(be.create_sequence(P + 300));
      for (int i = 0; i < 128; ++i) b.add((i * 31 + s) % int(sp.n_vocab), seqs.back(), i, i == 127);
    }
    be.forward(b);  // 128-token prompts
    const int steps = 128;
    double t = 0;
    for (int st = 0; st < steps; ++st) {
      Batch d;
      for (int s = 0; s < streams; ++s) d.add((st * 17 + s) % int(sp.n_vocab), seqs[size_t(s)], 128 + st, true);
      const auto a = now();
      be.forward(d);
      if (st >= 8) t += secs(a, now());
    }
    const double step = t / (steps - 8);
    const double gbs = double(be.weight_bytes()) / step / 1e9;
    std::printf("%s decode %2d stream(s), ctx 128..256: %.2f ms/step, %.0f tok/s aggregate; weights %.0f GB/s = %.0f%% "
                "of the copy probe\n",
                graphs ? "graph " : "launch", streams, step * 1e3, streams / step, gbs, 100 * gbs / bw.copy_gbs);
    for (auto s : seqs) be.free_sequence(s);
  }
  return 0;
}
