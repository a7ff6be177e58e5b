#!/usr/bin/env python3
"""Golden dequantization outputs for ggml block types, made by the `gguf` Python package.

For each type, writes <type>.bin:
  b"QBGB", u32 ggml type id, u32 element count, u32 byte count, raw block bytes, f32 dequantized values
(all little-endian). Blocks are random bytes, except that every f16 super-scale field (d, dmin, m) is
overwritten with a finite value of sane magnitude (including negative, zero and subnormal ones), so the
test checks the bit layout, not NaN propagation. Deterministic (fixed seed).
Run:  python3 tests/golden/ggml_blocks/make_golden.py   (tested with gguf 0.19, numpy 2.x)
"""
import os
import struct

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import dequantize

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(20261126)

# Byte offsets of the f16 scale fields within each block (ggml-common.h layouts).
SCALE_OFFSETS = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
    T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
}


def sane_f16(k):
    """k finite f16 values: mostly 2^[-12, 1) with random sign, plus zero and a subnormal."""
    v = rng.choice([-1.0, 1.0], size=k) * np.exp2(rng.uniform(-12, 1, size=k))
    h = v.astype(np.float16)
    if k >= 3:
        h[1] = np.float16(0.0)
        h[2] = np.frombuffer(np.uint16(0x0123).tobytes(), dtype=np.float16)[0]  # subnormal
    return h


def write(qtype, raw, values):
    path = os.path.join(HERE, f"{qtype.name.lower()}.bin")
    raw = np.ascontiguousarray(raw, dtype=np.uint8).tobytes()
    values = np.ascontiguousarray(values, dtype="<f4")
    with open(path, "wb") as f:
        f.write(b"QBGB" + struct.pack("<III", int(qtype), values.size, len(raw)))
        f.write(raw)
        f.write(values.tobytes())
    print(f"{path}: {values.size} values, {len(raw)} bytes")


def block_type(qtype, n_blocks):
    block_size, type_size = GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, size=(n_blocks, type_size), dtype=np.uint8)
    for off in SCALE_OFFSETS[qtype]:
        raw[:, off:off + 2] = sane_f16(n_blocks).view(np.uint8).reshape(n_blocks, 2)
    values = dequantize(raw, qtype).reshape(-1)
    assert values.size == n_blocks * block_size and values.dtype == np.float32
    write(qtype, raw, values)


def float_types():
    f32 = rng.standard_normal(64).astype(np.float32) * np.exp2(rng.uniform(-20, 20, 64)).astype(np.float32)
    write(T.F32, f32.view(np.uint8), dequantize(f32.view(np.uint8).view(np.float32), T.F32))
    # f16: every exponent, including subnormals; no Inf/NaN (exponent 31).
    h = rng.integers(0, 65536, size=256, dtype=np.uint16)
    h = h[(h & 0x7C00) != 0x7C00][:128]
    write(T.F16, h.view(np.uint8), dequantize(h.view(np.float16), T.F16))
    b = rng.integers(0, 65536, size=256, dtype=np.uint16)
    b = b[(b & 0x7F80) != 0x7F80][:128]
    write(T.BF16, b.view(np.uint8), dequantize(b.view(np.uint8).reshape(1, -1), T.BF16))


if __name__ == "__main__":
    float_types()
    for qt in (T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0):
        block_type(qt, 8)
    for qt in (T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K):
        block_type(qt, 3)
