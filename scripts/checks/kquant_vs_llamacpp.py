#!/usr/bin/env python3
"""Our K-quant quantizer against llama.cpp's own, on the same float32 tensors.

  python3 scripts/checks/kquant_vs_llamacpp.py F32.gguf --quantbench build/quantbench [--types q4_k,q5_k,q6_k]

For each type: llama.cpp quantizes F32.gguf (llama_model_quantize through llama-cpp-python, with the
ftype whose main type it is; no imatrix) and `quantbench quantize --scheme <type>` quantizes the same file.
Every tensor that BOTH stored in that type is dequantized with the `gguf` package (an independent decoder)
and its squared error against the float32 original is summed. Printed per type: the tensors compared,
total squared error of each quantizer, their ratio (ours / llama.cpp), how many tensors each won, and
how many are byte-for-byte identical blocks.
The issue's bar: ours no worse than llama.cpp's on the same tensors.
"""
import argparse
import ctypes
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import gguf
import llama_cpp

FTYPE = {"q4_k": (llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_S, gguf.GGMLQuantizationType.Q4_K),
         "q5_k": (llama_cpp.LLAMA_FTYPE_MOSTLY_Q5_K_S, gguf.GGMLQuantizationType.Q5_K),
         "q6_k": (llama_cpp.LLAMA_FTYPE_MOSTLY_Q6_K, gguf.GGMLQuantizationType.Q6_K)}


def tensors(path):
    r = gguf.GGUFReader(path)
    return {t.name: t for t in r.tensors}


def dequant(t):
    return gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float64).reshape(-1)


def llamacpp_quantize(src, dst, ftype):
    p = llama_cpp.llama_model_quantize_default_params()
    p.ftype = ftype
    p.nthread = 2
    rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(p))
    if rc != 0:
        sys.exit(f"llama_model_quantize failed ({rc})")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("f32")
    ap.add_argument("--quantbench", default="build/quantbench")
    ap.add_argument("--types", default="q4_k,q5_k,q6_k")
    a = ap.parse_args()
    ref = tensors(a.f32)
    tmp = tempfile.mkdtemp(prefix="qb_kq_")
    out = {}
    for name in a.types.split(","):
        ftype, qtype = FTYPE[name]
        lc_path, qb_path = os.path.join(tmp, f"llamacpp_{name}.gguf"), os.path.join(tmp, f"quantbench_{name}.gguf")
        llamacpp_quantize(a.f32, lc_path, ftype)
        subprocess.run([a.quantbench, "quantize", a.f32, "--scheme", name, "-o", qb_path], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        lc, qb = tensors(lc_path), tensors(qb_path)
        sse_lc = sse_qb = 0.0
        n = wins_qb = wins_lc = identical = 0
        for tname, t in lc.items():
            if t.tensor_type != qtype or tname not in qb or qb[tname].tensor_type != qtype:
                continue
            x = dequant(ref[tname])
            e_lc = float(((dequant(t) - x) ** 2).sum())
            e_qb = float(((dequant(qb[tname]) - x) ** 2).sum())
            sse_lc += e_lc
            sse_qb += e_qb
            n += 1
            identical += bytes(t.data.tobytes()) == bytes(qb[tname].data.tobytes())
            wins_qb += e_qb < e_lc
            wins_lc += e_lc < e_qb
        out[name] = {"tensors_compared": n, "sse_llamacpp": sse_lc, "sse_quantbench": sse_qb,
                     "ratio_quantbench_over_llamacpp": sse_qb / sse_lc if sse_lc else None,
                     "tensors_bytes_identical": identical, "tensors_quantbench_lower": wins_qb, "tensors_llamacpp_lower": wins_lc}
        print(name, json.dumps(out[name]), flush=True)
    print(json.dumps({"f32": a.f32, "llama_cpp_python": llama_cpp.__version__, "gguf": gguf.__version__ if hasattr(gguf, "__version__") else "?",
                      "results": out}, indent=1))


if __name__ == "__main__":
    main()
