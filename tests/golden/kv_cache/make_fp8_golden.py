#!/usr/bin/env python3
"""Golden FP8 E4M3 encodings from torch.float8_e4m3fn (an implementation independent of quantbench).

Inputs: every non-negative finite e4m3 value, the exact midpoint between each pair of neighbours
(round-half-to-even ties), points a quarter-step either side of each midpoint, values beyond the
largest finite 448 (torch's cast saturates to 448, which is the behaviour quantbench's KV cache and
W8A8 activations specify), and 200 seeded random values over the whole range; every value also
negated. Output fp8_e4m3.json: f32 bit patterns of the inputs and torch's codes.
Run: python3 make_fp8_golden.py  (torch 2.x)
"""
import json
import struct

import numpy as np
import torch


def bits(x):
    return struct.unpack("<I", struct.pack("<f", float(x)))[0]


codes = torch.arange(0, 0x7F, dtype=torch.uint8)  # 0x00..0x7e: the non-negative finite codes
vals = codes.view(torch.float8_e4m3fn).to(torch.float32).numpy().astype(np.float32)
xs = list(vals)
for a, b in zip(vals[:-1], vals[1:]):
    mid = np.float32((np.float64(a) + np.float64(b)) / 2)
    q = np.float32((np.float64(b) - np.float64(a)) / 4)
    xs += [mid, np.float32(mid - q), np.float32(mid + q)]
xs += [np.float32(v) for v in (448.0, 449.0, 463.99, 464.0, 480.0, 1000.0, 1e30)]
rng = np.random.default_rng(20261127)
xs += list((np.exp(rng.uniform(np.log(1e-4), np.log(600.0), 200))).astype(np.float32))
xs = xs + [np.float32(-v) for v in xs]
t = torch.tensor(np.array(xs, dtype=np.float32))
out = t.to(torch.float8_e4m3fn).view(torch.uint8).tolist()
with open("fp8_e4m3.json", "w") as f:
    json.dump({"source": "torch %s float8_e4m3fn cast" % torch.__version__,
               "input_f32_bits": [bits(x) for x in xs], "code": out}, f, separators=(",", ":"))
print(len(xs), "values")
