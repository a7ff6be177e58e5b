#!/usr/bin/env python3
"""Golden quantizer outputs for Q8_0, Q4_0, Q4_1, made by the `gguf` Python package's quantizers
(which reproduce llama.cpp's quantize_row_*_ref without fused multiply-add).

Writes quant_<type>.bin: b"QBGQ", u32 ggml type id, u32 element count, u32 byte count, f32 input,
quantized block bytes (little-endian). Inputs: Gaussian blocks of widely varying scale, an all-zero
block, a constant block, blocks on an exact grid (rounding ties), and a block of tiny values.
Run:  python3 tests/golden/ggml_blocks/make_quant_golden.py   (tested with gguf 0.19, numpy 2.x)
"""
import os
import struct

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.quants import quantize

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(7)


def inputs():
    blocks = [rng.standard_normal(32) * np.exp2(rng.uniform(-10, 6)) for _ in range(40)]
    blocks.append(np.zeros(32))
    blocks.append(np.full(32, 0.75))
    blocks.append(np.concatenate([[127.0], np.arange(-15, 16) + 0.5]))  # q8_0: d = 1, x*id on exact ties
    blocks.append(np.concatenate([[-8.0], (np.arange(31) - 15) * 0.5]))  # q4_0: d = 1; q4_1: grid values
    blocks.append(rng.standard_normal(32) * 1e-6)      # f16 subnormal scales
    blocks.append(np.where(np.arange(32) % 2 == 0, 3.0, -3.0))  # equal |max| of both signs
    return np.concatenate(blocks).astype(np.float32)


if __name__ == "__main__":
    x = inputs()
    for qt in (T.Q8_0, T.Q4_0, T.Q4_1):
        q = quantize(x.reshape(1, -1), qt).reshape(-1)
        path = os.path.join(HERE, f"quant_{qt.name.lower()}.bin")
        with open(path, "wb") as f:
            f.write(b"QBGQ" + struct.pack("<III", int(qt), x.size, q.size))
            f.write(x.astype("<f4").tobytes())
            f.write(q.astype(np.uint8).tobytes())
        print(f"{path}: {x.size} values -> {q.size} bytes")
