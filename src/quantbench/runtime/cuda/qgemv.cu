// The decode products' launch (qgemv.h): the launch rules that choose each product's kernel and grid from its shape
// and token count (choose_config, read off same-run sweeps of every launch shape: docs/perf.md), and the launch
// itself. The kernels are in qgemv_kernel.cuh.
#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <stdexcept>
#include <string>

#include "quantbench/runtime/cuda/cuda_check.h"
#include "quantbench/runtime/cuda/launch.cuh"
#include "quantbench/runtime/cuda/qgemv.h"
#include "quantbench/runtime/cuda/qgemv_kernel.cuh"

namespace qb::runtime::cuda {
namespace {

// The dynamic shared memory of a launch: each warp's partial sums, the kernels' red[warps][R][NT][4][32].
size_t partial_sum_bytes(int warps, int r, int nt) { return size_t(warps) * r * nt * 4 * 32 * sizeof(float); }

// How many blocks of `warps` warps of kernel fn (R = r, NT = nt) an SM holds at once, as launched.
int blocks_per_sm(KernelFn fn, int warps, int r, int nt) {
  int b = 0;
  QB_CUDA_OK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&b, fn, warps * 32, partial_sum_bytes(warps, r, nt)));
  return b;
}

// How many 4-warp blocks of the one-token half step at R = 2 an SM holds at once (its registers decide:
// six at 76 per thread, symmetric w4g128). Asked of the runtime once per kernel; every card this is
// built for (sm_90a) answers alike.
int half_step_r2_blocks_per_sm(const QuantSpec& s) {
  auto ask = [](KernelFn fn) { return blocks_per_sm(fn, 4, 2, 1); };
  static const int blocks[2][2] = {  // [group 32][asymmetric]
      {ask(kernel_for<2, 128, kNoOffset, 2, 1, true>()), ask(kernel_for<2, 128, kZeroPoints, 2, 1, true>())},
      {ask(kernel_for<2, 32, kNoOffset, 2, 1, true>()), ask(kernel_for<2, 32, kZeroPoints, 2, 1, true>())}};
  return blocks[s.group == 32][s.asym];
}

// The warp counts w4g32 with mins takes on "mid" grids, most first, and how many blocks of each an SM
// holds at once (its R = 1 kernels at 1-8 and 9-16 tokens; asked of the runtime once).
constexpr int kMinsMidWarps[] = {8, 6, 4, 3};
int mins_blocks_per_sm(int nt, int warps_index) {
  static const auto table = [] {
    std::array<std::array<int, 4>, 2> t{};
    for (int j = 0; j < 2; ++j)
      for (int i = 0; i < 4; ++i)
        t[size_t(j)][size_t(i)] = blocks_per_sm(
            j ? kernel_for<2, 32, kMins, 1, 2, true>() : kernel_for<2, 32, kMins, 1, 1, true>(), kMinsMidWarps[i], 1, j + 1);
    return t;
  }();
  return table[size_t(nt - 1)][size_t(warps_index)];
}

}  // namespace

QgemvConfig choose_config(const PackedShape& p, int n_tokens, int sm_count, int rule) {
  // Rules read off a sweep of every launch shape on an H100 (docs/perf.md).
  QgemvConfig c;
  // R = 2 shares each activation fragment between two row blocks: it pays for bf16 / int8 at 16
  // tokens; the int4 kernels need too many registers for it (occupancy falls more than L1 traffic).
  const bool int4 = p.spec.format == WeightFormat::W4A16;
  c.row_blocks_per_warp = !int4 && n_tokens > 8 ? 2 : 1;
  const int64_t blocks = (p.row_blocks + c.row_blocks_per_warp - 1) / c.row_blocks_per_warp;
  // The warps of a block split the input dimension: 16 for long inputs (down projection) or when
  // there are fewer blocks than SMs, else 8; int4 at 16 tokens keeps 8 (its registers would allow
  // only one 16-warp block per SM).
  const bool long_k = p.chunks >= 128 && !(int4 && n_tokens > 8);
  c.warps_per_block = long_k || (c.row_blocks_per_warp == 2 && blocks < sm_count) ? 16 : 8;
  if (rule >= 5) {
    // Step 5: overrides read off a same-run sweep of every launch shape on an H100 (docs/perf.md, step
    // 5; each > 5% on its shape). "mid": grids of 2-8 blocks per SM with short inputs (the q|k|v shape),
    // where 4 warps per block (more, smaller blocks) beat 8; "big": 2 or more blocks per SM.
    const int64_t rb = p.row_blocks;
    const bool big = rb >= 2 * sm_count && p.chunks < 128, mid = big && rb < 8 * sm_count;
    if (int4) {
      const bool g128_sym = p.spec.group == 128 && !p.spec.asym;
      if (n_tokens <= 8) {
        if (mid) { c.row_blocks_per_warp = 1; c.warps_per_block = 4; }  // w4g128 qkv 14.7 -> 12.1 us
      } else if (g128_sym) {  // R = 2: qkv 17.1 -> 14.4 us, gate|up 27.7 -> 24.5, down 17.3 -> 14.8, lm 36.3 -> 33.2
        c.row_blocks_per_warp = 2;
        c.warps_per_block = p.chunks >= 128 ? 16 : (rb + 1) / 2 < sm_count ? 8 : 4;
      } else if (big) {  // the others keep R = 1 (their registers): w4g128a gate|up 29.0 -> 24.1 us at w4
        c.row_blocks_per_warp = 1;
        c.warps_per_block = mid || p.spec.asym ? 4 : 8;
      } else {
        c.row_blocks_per_warp = p.spec.group == 32 ? 2 : 1;
        c.warps_per_block = 8;
      }
    } else if (p.spec.format == WeightFormat::W8A16 && p.spec.group == 0) {
      if (n_tokens <= 8) {
        if (mid) { c.row_blocks_per_warp = 2; c.warps_per_block = 8; }  // qkv 20.8 -> 19.0 us
      } else if (big) {  // qkv 23.6 -> 21.1 us, gate|up 37.2 -> 35.5, lm_head 51.6 -> 48.2
        c.row_blocks_per_warp = 4;
        c.warps_per_block = mid ? 8 : 4;
      }
    }
  }
  if (rule >= 9 && p.spec.format == WeightFormat::W8A16 && p.spec.group != 0) {
    // Session 23: int8 with group scales (w8g16: GGUF Q6_K; w8g32: Q8_0, Q5_0; w8g32m: Q5_K), from H200
    // sweeps of Llama-2-7B's products (docs/perf.md, session 23), us, against the shapes above:
    // - 1-8 tokens: one row block per warp, 8 warps on the small grids (down, w8g16 / w8g32 / w8g32m: 16.6
    //   / 15.5 / 16.2 against 20.2 / 18.1 / 19.3 at 16 warps; o unchanged) and 4 on the mid ones (q|k|v
    //   16.8 / 15.8 / 16.3 against 18.4 / 17.5 / 17.5); the wide ones (gate|up, lm_head) 4 warps too for
    //   w8g16 and w8g32m (28.7 / 30.2 and 38.9 / 41.5; 28.7 / 29.5 and 38.0 / 40.0), while w8g32 keeps 8
    //   (at 4: 28.7 / 27.9 and 39.7 / 37.0);
    // - 9-16 tokens: the mid grids at R = 2 with 4 warps (21.1 / 18.4 / 19.2 against 25.8 / 21.5 / 22.6)
    //   where that still gives every SM two blocks (Llama-2-7B's q|k|v: 384 blocks; on Llama-3-8B's, 192,
    //   a w8g32 16-stream step ran 3.70 against 3.55 ms at 8 warps);
    //   w8g32m's wide grids at R = 4 with 4 warps (gate|up 30.5 / 34.2, lm_head 38.3 / 44.9), where R = 4
    //   lost on lm_head for the others (62.5 / 51.2 for w8g16, 56.4 / 43.0 for w8g32), which keep R = 2 x 8.
    const int64_t rb = p.row_blocks;
    const bool small = rb < 2 * sm_count || p.chunks >= 128, mid = !small && rb < 8 * sm_count;
    const bool w8g32_plain = p.spec.group == 32 && !p.spec.mins;
    if (n_tokens <= 8) {
      c.row_blocks_per_warp = 1;
      c.warps_per_block = small || (!mid && w8g32_plain) ? 8 : 4;
    } else if (mid && (rb + 1) / 2 >= 2 * sm_count) {
      c.row_blocks_per_warp = 2;
      c.warps_per_block = 4;
    } else if (!small && !mid && p.spec.mins) {
      c.row_blocks_per_warp = 4;
      c.warps_per_block = 4;
    }
    if (p.spec.mins && p.spec.group == 16) {
      // Session 24: w8g16 with mins (GGUF Q2_K) from one H200 sweep of Llama-2-7B's products (docs/perf.md,
      // session 24), us, against the shapes above: the small grids at R = 1 x 4 warps (o 10.0 / 11.8 at
      // 1 / 16 tokens against 11.7 / 12.3, down 20.6 / 25.4 against 22.9 / 26.8); q|k|v R = 2 x 4 at one
      // token (21.6 against 24.4), R = 4 x 4 at 16 (27.1 / 36.9); the wide grids R = 4 at 4 warps at one
      // token (gate|up 33.1 against 42.3; lm_head, once a step, loses: 58.8 against 57.3), at 8 warps at 16
      // (gate|up 43.4 against 49.3; lm_head 59.7 against 55.2).
      const bool one = n_tokens <= 8;
      c.row_blocks_per_warp = small ? 1 : mid && one ? 2 : 4;
      c.warps_per_block = !small && !mid && !one ? 8 : 4;
    }
  }
  if ((rule >= 6 || p.spec.mins) && half_step_format(p.spec, rule)) {
    // Rule 8 (session 21): asymmetric w4g128 and w4g32 take the half step too, with symmetric w4g128's
    // shapes except at 1-8 tokens on the wider grids (the end of this block).
    // Session 9: symmetric w4g128 with half the chunks per step (two, one group of 128: 44 registers at
    // one token, 96 at 16 tokens with R = 2, against 48 and 136), which runs best with more warps. Shapes
    // read off a same-run sweep of both kernels on an H100 (docs/perf.md, session 9): grids of fewer
    // than two blocks per SM, or long inputs (o, down), take 16 warps of one row block; the others two
    // row blocks per warp, 8 warps per block, or 4 at 16 tokens on "mid" grids (q|k|v).
    const int64_t rb = p.row_blocks;
    const bool small = rb < 2 * sm_count || p.chunks >= 128, mid = !small && rb < 8 * sm_count;
    c.half_step = true;
    c.copy_loop16 = rule < 7;
    c.row_blocks_per_warp = small ? 1 : 2;
    c.warps_per_block = small ? 16 : (n_tokens > 8 && mid) ? 4 : 8;
    if (rule >= 7 && n_tokens > 8) {
      // Session 20: the 16-token half step at R = 2 as a ping-pong (128 registers) runs best at R = 2 on
      // every shape: 16 warps on the small grids, 4 on the mid ones (q|k|v), 2 on the wide ones, whose
      // warps then stream 32 chunks each. H200 sweeps against rule 6's shapes, us: down 9.26 against 10.87
      // (R = 1), o 5.53 / 5.83, gate|up 16.69 / 18.35, lm_head 21.32 / 24.26, q|k|v unchanged (docs/perf.md,
      // session 20). Rule 6 runs that kernel as it was (copy_loop16).
      c.row_blocks_per_warp = 2;
      c.warps_per_block = small ? 16 : mid ? 4 : 2;
    } else if (rule >= 7 && !small && !mid && (rb + 1) / 2 <= int64_t(half_step_r2_blocks_per_sm(p.spec)) * sm_count) {
      // Session 20: at 1-8 tokens a wide grid at 4 warps instead of 8 where all its blocks are resident at
      // once: each warp streams twice the chunks, and no second wave trails. Llama-2-7B's gate|up (688
      // blocks; 792 fit on an H200): 14.1-14.3 us against 15.0 at one token in three H200 sweeps. Its
      // lm_head (1000 blocks) ran slower at 4 warps (22.4 against 21.0 us), and applied to every wide grid
      // the change made a Llama-3-8B step slower (docs/perf.md, session 20).
      c.warps_per_block = 4;
    }
    if (p.spec.mins) {
      // Session 22: w4g32 with mins in the half step at R = 1 (then its one kernel). Shapes from H200 sweeps on
      // Llama-2-7B's, Llama-3-8B's and Qwen2.5-7B's products (docs/perf.md, session 22):
      // - small grids (o, down): 12 warps at one token (down 11.3 / 13.5 / 16.2 us against 12.3 / 15.0 /
      //   18.7 at 8), 8 at 16 tokens;
      // - mid grids (q|k|v): the most warps (8, 6, 4, 3) at which every block is resident at once: each
      //   model's best or within 1% of it (16 tokens: Llama-2-7B 3 warps 15.6 us, Llama-3-8B 6 warps 10.2,
      //   Qwen2.5-7B 6 warps 8.6; one token: 4, 8 and 8 warps);
      // - wide grids (gate|up, lm_head): 4 warps. 3 won on Llama-2-7B at 16 tokens (gate|up 28.6 against
      //   33.0 us) and lost more on Llama-3-8B (41.1 against 34.1).
      c.row_blocks_per_warp = 1;
      const int nt = n_tokens > 8 ? 2 : 1;
      if (small) {
        c.warps_per_block = nt == 2 ? 8 : 12;
      } else if (mid) {
        c.warps_per_block = 3;
        for (int i = 0; i < 4; ++i)
          if (rb <= int64_t(mins_blocks_per_sm(nt, i)) * sm_count) {
            c.warps_per_block = kMinsMidWarps[i];
            break;
          }
      } else {
        c.warps_per_block = 4;
      }
      if (rule >= 9 && nt == 2 && (!mid || (rb + 1) / 2 >= 2 * sm_count)) {
        // Session 24: at 9-16 tokens the half step at R = 2 (new): 12 warps on the small grids (as many as its
        // registers allow), 4 on the others, but a mid grid only where that still gives every SM two blocks
        // (else the shapes above). From H200 sweeps of Llama-2-7B's, Llama-3-8B's and Qwen2.5-7B's products,
        // us, against the shapes above: down 13.8 / 16.4 / 19.7 against 15.8 / 19.3 / 24.6; gate|up 24.9 /
        // 34.7 / 33.2 against 32.9 / 34.1 / 41.0 (2 warps: 23.8 / 40.0 / 39.4); lm_head 35.4 / 141.1 / 138.5
        // against 43.1 / 147.3 / 148.1; Llama-2-7B's q|k|v (384 blocks) 13.8 against 15.5, while Llama-3-8B's
        // (192) ran 11.4 against 10.2 at R = 1 (docs/perf.md, session 24). At one token R = 2 lost on every
        // shape but lm_head.
        c.row_blocks_per_warp = 2;
        c.warps_per_block = small ? 12 : 4;
      }
    } else if (p.spec.group == 32 && p.spec.asym) {
      // Session 21: asymmetric w4g32's half step needs 142-180 registers at R = 2 and ran best at R = 1 in an
      // H200 sweep: 8 warps on the small grids (o, down) and on q|k|v at 16 tokens, else 4. Against rule
      // 7's full step, us, one token / 16 tokens: q|k|v 11.8 / 17.6 against 11.4 / 18.0, o 6.1 / 7.3 against
      // 6.4 / 8.4, gate|up 20.2 / 29.2 against 20.8 / 29.8, down 12.5 / 14.8 against 14.8 / 18.1
      // (docs/perf.md, session 21). Symmetric w4g32 keeps symmetric w4g128's shapes but below.
      c.row_blocks_per_warp = 1;
      c.warps_per_block = small || (mid && n_tokens > 8) ? 8 : 4;
    } else if (p.spec.group == 32 && n_tokens <= 8 && !small) {
      // Session 21: symmetric w4g32 at 1-8 tokens on the wider grids at R = 1 x 4 warps (R = 2 needs 104
      // registers). One-stream steps on an H200 against symmetric w4g128's shapes (R = 2 x 8 or 4 warps),
      // same call: Llama-2-7B 1.686 / 1.691 against 1.718 / 1.732 ms, Llama-3-8B 1.801 against 1.853; 6
      // warps: 1.814 / 1.820 and 1.816 (docs/perf.md, session 21).
      c.row_blocks_per_warp = 1;
      c.warps_per_block = 4;
    } else if (p.spec.asym && n_tokens <= 8 && !small) {
      // Session 21: asymmetric w4g128's one-token kernel at R = 2 needs 84 registers (symmetric 76) and
      // ran 13-34% slower than at R = 1, where 6 warps per block gave the least total time over these
      // three shapes in an H200 sweep (us, against R = 2 x 8 warps): q|k|v 9.20 / 11.75, gate|up 15.64 /
      // 17.02, lm_head 20.80 / 22.45. One-stream steps against R = 2, same call: Llama-2-7B 1.56 / 1.65 ms,
      // Qwen2.5-7B 1.65 / 1.77, Llama-3-8B 1.73 / 1.76 (4 warps: 1.61, 1.67, 1.70) (docs/perf.md,
      // session 21).
      c.row_blocks_per_warp = 1;
      c.warps_per_block = 6;
    }
  }
  if (p.chunks < 2 * c.warps_per_block) c.warps_per_block = int(std::max<int64_t>(1, p.chunks / 2));
  return c;
}

bool gated_epilogue_fits(const PackedShape& p, const QgemvConfig& c) {
  if (p.spec.mins) return false;  // no gated kernel was built with mins (w4 or w8)
  return c.row_blocks_per_warp % 2 == 0 && p.n_out % 128 == 0;  // n = n_out / 2, a multiple of 64
}

QgemvConfig qgemv(const DeviceMatrix& w, const void* xfrag, int n_tokens, float* y, cudaStream_t stream,
           QgemvConfig cfg, const QgemvGatedOut* gated, int64_t ldy) {
  if (n_tokens < 1 || n_tokens > 16) throw std::invalid_argument("qgemv: n_tokens must be 1..16");
  if (ldy == 0) ldy = w.shape.n_out;
  if (ldy < w.shape.n_out || ldy >= (int64_t(1) << 31))
    throw std::invalid_argument("qgemv: ldy " + std::to_string(ldy) + " must be at least n_out (" +
                                std::to_string(w.shape.n_out) + ") and below 2^31");
  QgemvGatedOut go;
  if (gated) {
    if (cfg.row_blocks_per_warp == 0 || cfg.warps_per_block == 0 || !gated_epilogue_fits(w.shape, cfg) ||
        !gated->frag || int64_t(gated->n) * 2 != w.shape.n_out)
      throw std::invalid_argument("qgemv: the fused gated epilogue needs a chosen config with an even row-block "
                                  "count, n_out % 128 == 0, n = n_out / 2 and a fragment buffer");
    go = *gated;
  }
  const PackedShape& p = w.shape;
  if (cfg.row_blocks_per_warp == 0 || cfg.warps_per_block == 0) {
    int dev = 0, sms = 0;
    QB_CUDA_OK(cudaGetDevice(&dev));
    QB_CUDA_OK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    const QgemvConfig auto_cfg = choose_config(p, n_tokens, sms);
    if (cfg.row_blocks_per_warp == 0) {  // the row-block count chosen by the rule, with its kernel
      cfg.row_blocks_per_warp = auto_cfg.row_blocks_per_warp;
      cfg.half_step = auto_cfg.half_step;
      cfg.copy_loop16 = auto_cfg.copy_loop16;
    }
    if (cfg.warps_per_block == 0) cfg.warps_per_block = auto_cfg.warps_per_block;
  }
  if (p.spec.mins && p.spec.format == WeightFormat::W4A16) {  // its kernels: the half step at R = 1 or 2; what ran is reported
    cfg.row_blocks_per_warp = std::min(cfg.row_blocks_per_warp, 2);
    cfg.half_step = true;
  }
  if (w.weight_bytes / 16 >= (size_t(1) << 31) || w.scale_bytes / 4 >= (size_t(1) << 31))
    throw std::invalid_argument("qgemv: a matrix of 32 GiB or more (the kernels index it with int)");
  const int r = cfg.row_blocks_per_warp, nt = (n_tokens + 7) / 8;
  int nw = cfg.warps_per_block;
  if (r != 1 && r != 2 && r != 4) throw std::invalid_argument("qgemv: row_blocks_per_warp must be 1, 2 or 4");
  if (nw < 1 || nw > kMaxWarps) throw std::invalid_argument("qgemv: warps_per_block must be 1..16");
  cfg.half_step = cfg.half_step && has_half_step(p.spec, r);  // report what ran
  cfg.copy_loop16 = cfg.copy_loop16 && cfg.half_step && has_copy_loop16(p.spec, r, nt);
  const KernelFn fn = pick_kernel(p.spec, r, nt, cfg.half_step, gated != nullptr, cfg.copy_loop16);
  if (nw > 8) {  // up to 8 warps always fit (the largest kernel uses < 255 registers per thread)
    cudaFuncAttributes attr{};
    QB_CUDA_OK(cudaFuncGetAttributes(&attr, fn));
    nw = std::min(nw, attr.maxThreadsPerBlock / 32);
    cfg.warps_per_block = nw;
  }
  const size_t smem = partial_sum_bytes(nw, r, nt);
  const int blocks = int((p.row_blocks + r - 1) / r);
  if (smem > 48 * 1024) QB_CUDA_OK(cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  launch_kernel(fn, dim3(unsigned(blocks)), dim3(unsigned(nw * 32)), smem, stream, cfg.overlap_launch,
                static_cast<const uint4*>(w.weights.get()), static_cast<const uint16_t*>(w.scales.get()),
                static_cast<const uint8_t*>(w.zeros.get()), static_cast<const uint4*>(xfrag), y, int(p.n_out),
                int(p.row_blocks), int(p.chunks), int(p.groups), n_tokens, int(ldy), go);
  QB_CUDA_LAUNCHED();
  return cfg;
}

}  // namespace qb::runtime::cuda
