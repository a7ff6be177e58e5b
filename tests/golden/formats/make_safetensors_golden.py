#!/usr/bin/env python3
"""Makes the safetensors golden files for tests/formats/safetensors_test.cpp with the `safetensors`
Python package (Hugging Face's reference implementation, 0.8.0), so our reader and writer are checked
against it.

  safetensors_all_dtypes.safetensors  one tensor of each supported dtype (F32, F16, BF16, I8, U8, I32,
                                      F8_E4M3) in various ranks incl. a scalar and a zero-size tensor,
                                      and one __metadata__ entry (one, because the reference writer
                                      orders several entries by hash, which is not reproducible).
  safetensors_golden.json             what safetensors.safe_open reads back: metadata, and per tensor
                                      its dtype, row-major shape and sha256 of its bytes.

Run from this directory:  python3 make_safetensors_golden.py   (safetensors 0.8.0, torch)
"""
import hashlib
import json

import torch
from safetensors import safe_open
from safetensors.torch import save_file

NAME = "safetensors_all_dtypes.safetensors"

g = torch.Generator().manual_seed(0)
tensors = {
    "model.embed.weight": torch.randn(4, 3, generator=g, dtype=torch.float32),
    "layer.f16": torch.randn(5, generator=g).to(torch.float16),
    "layer.bf16": torch.randn(2, 3, generator=g).to(torch.bfloat16),
    "q.i8": torch.randint(-128, 128, (2, 2, 2), generator=g, dtype=torch.int8),
    "q.u8": torch.randint(0, 256, (3,), generator=g, dtype=torch.uint8),
    "idx.i32": torch.randint(-1000, 1000, (1, 3), generator=g, dtype=torch.int32),
    "fp8.w": (torch.randn(2, 4, generator=g) * 10).to(torch.float8_e4m3fn),
    "a.scalar": torch.tensor(2.5, dtype=torch.float32),
    "b.empty": torch.zeros(0, 3, dtype=torch.float32),
}
save_file(tensors, NAME, metadata={"format": "pt"})

summary = {"metadata": {}, "tensors": {}}
with safe_open(NAME, framework="pt") as f:
    summary["metadata"] = f.metadata()
    for name in f.keys():
        t = f.get_tensor(name)
        raw = t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        summary["tensors"][name] = {
            "dtype": str(f.get_slice(name).get_dtype()),
            "shape": list(t.shape),  # row-major, outermost first
            "sha256": hashlib.sha256(raw).hexdigest(),
        }
with open("safetensors_golden.json", "w") as out:
    json.dump(summary, out, indent=1, sort_keys=True)
    out.write("\n")
