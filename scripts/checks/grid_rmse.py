#!/usr/bin/env python3
"""Weight-space RMSE of 4-bit grids on a GGUF model's block matrices, independent of quantbench:
our symmetric grid (GPTQ's: s = 2 max|w| / 15, codes -8..7), llama.cpp's q4_0 grid (s = -m / 8 from
the signed weight m of largest magnitude, codes 0..15 with offset 8) and min/max asymmetric grids, at
groups of 32 and 128. Weights are read and dequantized by the `gguf` package.
Usage: python3 scripts/checks/grid_rmse.py MODEL.gguf   (docs/quantization.md)"""
import sys

import gguf
import numpy as np


def sym(w, g):
    x = w.reshape(-1, g)
    a = np.abs(x).max(1, keepdims=True)
    s = np.where(a > 0, 2 * a / 15, 1)
    q = np.clip(np.round(x / s), -8, 7)
    return ((x - q * s) ** 2).mean()


def asym(w, g):
    x = w.reshape(-1, g)
    lo = np.minimum(x.min(1, keepdims=True), 0)
    hi = np.maximum(x.max(1, keepdims=True), 0)
    s = np.where(hi > lo, (hi - lo) / 15, 1)
    z = np.round(-lo / s)
    q = np.clip(np.round(x / s) + z, 0, 15)
    return ((x - (q - z) * s) ** 2).mean()


def q4_0(w, g=32):
    x = w.reshape(-1, g)
    m = x[np.arange(len(x)), np.abs(x).argmax(1)][:, None]
    d = np.where(m != 0, m / -8, 1)
    q = np.clip(np.floor(x / d + 8.5), 0, 15)  # llama.cpp's quantize_row_q4_0_ref rounding
    return ((x - (q - 8) * d) ** 2).mean()


def main():
    r = gguf.GGUFReader(sys.argv[1])
    grids = {"w4g32 (ours, symmetric)": lambda w: sym(w, 32), "q4_0 (llama.cpp)": q4_0,
             "w4g32-asym": lambda w: asym(w, 32), "w4g128 (ours, symmetric)": lambda w: sym(w, 128),
             "w4g128-asym": lambda w: asym(w, 128)}
    sq = dict.fromkeys(grids, 0.0)
    n = 0
    for t in r.tensors:
        if not t.name.startswith("blk.") or len(t.shape) != 2:
            continue
        w = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float64).reshape(-1)
        w = w[: (w.size // 128) * 128]
        for k, f in grids.items():
            sq[k] += f(w) * w.size
        n += w.size
    for k in grids:
        print(f"{k:26} weight RMSE {np.sqrt(sq[k] / n):.3e}")


if __name__ == "__main__":
    main()
