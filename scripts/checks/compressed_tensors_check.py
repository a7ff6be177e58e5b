#!/usr/bin/env python3
"""Load a quantbench compressed-tensors artifact with the `compressed-tensors` package and check it.

  scripts/checks/compressed_tensors_check.py OUTDIR[:REF.safetensors] [OUTDIR2[:REF2] ...]
      [--expect-greedy OUTDIR=ID,ID,...]

(Several artifacts per run: importing torch and compressed-tensors is most of the time.)

What it does, using only compressed-tensors' own code for the format:
  * validates config.json's quantization_config with compressed_tensors' QuantizationConfig;
  * for every module holding weight_packed, finds its config group (targets / ignore, the same rules
    as vLLM: "Linear", exact names, "re:" patterns) and decompresses it with
    PackedQuantizationCompressor.decompress (unpack_from_int32 + dequantize);
  * with a reference (written by quantbench's test from the in-memory quantized model, GGUF row order,
    one f32 entry per weight), compares bitwise:
      NAME.weight      the dequantized weights (decompressed with the scales upcast to f32, where
                       (q - z) * s is exact, so equality must be bitwise);
      NAME.scale       each column's scale (f32) vs weight_scale expanded over its group;
      NAME.zero_point  each column's unsigned zero point (asymmetric only) vs the unpacked zero points;
    Llama q_proj/k_proj reference rows are first permuted with the formula of transformers'
    convert_llama_weights_to_hf.py (GGUF stores them un-permuted), so the writer's own permutation is
    checked against an independent one.
  * also decompresses with the scales in their stored dtype (what a f16/bf16 runtime does) and prints
    the largest difference from the exact values, for information.
  * with --expect-greedy, loads OUTDIR with transformers (AutoModelForCausalLM: config.json, HF names,
    the compressed-tensors decompression, f32 compute) and decodes greedily from the model's BOS token;
    the ids must equal the given ones (quantbench's greedy ids from the same quantized model).
    (Symmetric artifacts: transformers 5.x with compressed-tensors 0.20 builds its empty model with
    unpacked zero points, [rows, groups], while compress() itself writes them packed, as vLLM reads
    them, so asymmetric artifacts fail in transformers' loader, not here.)
Exit status 0 if every check passed; 1 with one line per failure otherwise.
"""
import argparse
import json
import os
import re
import sys

import torch
from safetensors import safe_open
from safetensors.torch import load_file

from compressed_tensors.compressors.pack_quantized import PackedQuantizationCompressor, unpack_from_int32
from compressed_tensors.quantization import QuantizationConfig


def matches(name, target):
    if target.startswith("re:"):
        return re.match(target[3:], name) is not None
    return name == target or target == "Linear"


def scheme_for(module, qc):
    if any(matches(module, t) and t != "Linear" for t in qc.ignore or []) or module in (qc.ignore or []):
        return None
    found = [s for s in qc.config_groups.values() if any(matches(module, t) for t in s.targets)]
    if len(found) != 1:
        raise SystemExit(f"{module}: matched by {len(found)} config groups (expected 1)")
    return found[0]


def hf_permute(w, n_heads):
    # transformers/models/llama/convert_llama_weights_to_hf.py: permute(w, n_heads, dim1, dim2)
    dim1, dim2 = w.shape
    return w.view(n_heads, dim1 // n_heads // 2, 2, dim2).transpose(1, 2).reshape(dim1, dim2)


def check(artifact, reference):
    with open(os.path.join(artifact, "config.json")) as f:
        cfg = json.load(f)
    raw = cfg["quantization_config"]
    failures = []
    if raw.get("quant_method") != "compressed-tensors" or raw.get("format") != "pack-quantized":
        failures.append(f"quantization_config: quant_method {raw.get('quant_method')}, format {raw.get('format')}")
    qc = QuantizationConfig.model_validate(raw)
    tensors = load_file(os.path.join(artifact, "model.safetensors"))
    ref = load_file(reference) if reference else None

    modules = sorted(k[: -len(".weight_packed")] for k in tensors if k.endswith(".weight_packed"))
    if not modules:
        failures.append("no weight_packed tensor")
    checked, worst_native = 0, 0.0
    for m in modules:
        scheme = scheme_for(m, qc)
        if scheme is None:
            failures.append(f"{m}: has weight_packed but is in ignore")
            continue
        sd = {k[len(m) + 1:]: v for k, v in tensors.items() if k.startswith(m + ".")}
        exact = dict(sd)
        exact["weight_scale"] = sd["weight_scale"].to(torch.float32)
        w = PackedQuantizationCompressor.decompress(exact, scheme)["weight"]
        native = PackedQuantizationCompressor.decompress(dict(sd), scheme)["weight"]
        worst_native = max(worst_native, (native.float() - w).abs().max().item())
        if ref is None:
            if not torch.isfinite(w).all():
                failures.append(f"{m}: non-finite dequantized weight")
            checked += 1
            continue

        def ref_rows(key):
            r = ref[key]
            if cfg.get("model_type") == "llama" and m.endswith((".q_proj", ".k_proj")):
                heads = cfg["num_attention_heads"] if m.endswith(".q_proj") else cfg["num_key_value_heads"]
                r = hf_permute(r, heads)
            return r

        if m + ".weight" not in ref:
            failures.append(f"{m}: not in the reference")
            continue
        rw = ref_rows(m + ".weight")
        if rw.shape != w.shape or not torch.equal(rw.view(torch.int32), w.view(torch.int32)):
            n = (rw != w).sum().item() if rw.shape == w.shape else "shape"
            failures.append(f"{m}: dequantized weights differ from the in-memory model ({n} elements)")
        rows, cols = w.shape
        s = sd["weight_scale"].to(torch.float32)
        per_col = s.repeat_interleave(cols // s.shape[1], dim=1)
        rs = ref_rows(m + ".scale")
        if not torch.equal(per_col.view(torch.int32), rs.view(torch.int32)):
            failures.append(f"{m}: scales differ from the in-memory model")
        if "weight_zero_point" in sd:
            bits = scheme.weights.num_bits
            zp = unpack_from_int32(sd["weight_zero_point"], bits, (rows, s.shape[1]), packed_dim=0).to(torch.int32)
            zp = (zp + (1 << (bits - 1))).repeat_interleave(cols // s.shape[1], dim=1)
            if not torch.equal(zp, ref_rows(m + ".zero_point")):
                failures.append(f"{m}: zero points differ from the in-memory model")
        elif m + ".zero_point" in ref:
            failures.append(f"{m}: the model is asymmetric but the artifact has no weight_zero_point")
        checked += 1
    if ref is not None:
        missing = sorted({k.rsplit(".", 1)[0] for k in ref} - set(modules))
        if missing:
            failures.append(f"modules of the reference missing from the artifact: {missing[:3]}")
    for f in failures:
        print(f"FAIL: {artifact}: {f}")
    print(f"compressed_tensors_check: {artifact}: {checked} modules decompressed by compressed-tensors; "
          f"{'compared bitwise with the reference' if ref is not None else 'no reference given'}; "
          f"largest |difference| when dequantizing in the scale dtype: {worst_native:.3g}")
    return not failures


def greedy(artifact, expected):
    from transformers import AutoModelForCausalLM
    with open(os.path.join(artifact, "config.json")) as f:
        bos = json.load(f)["bos_token_id"]
    model = AutoModelForCausalLM.from_pretrained(artifact, dtype=torch.float32)
    ids = [bos]
    with torch.no_grad():
        for _ in range(len(expected)):
            logits = model(torch.tensor([ids])).logits[0, -1]
            ids.append(int(logits.argmax()))
    got = ids[1:]
    if got != expected:
        print(f"FAIL: {artifact}: transformers' greedy ids {got} differ from quantbench's {expected}")
        return False
    print(f"compressed_tensors_check: {artifact}: transformers decodes the same {len(got)} greedy tokens")
    return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("artifacts", nargs="+", help="OUTDIR or OUTDIR:REFERENCE.safetensors")
    ap.add_argument("--expect-greedy", action="append", default=[], help="OUTDIR=ID,ID,...")
    a = ap.parse_args()
    ok = True
    for spec in a.artifacts:
        artifact, _, reference = spec.partition(":")
        ok = check(artifact, reference or None) and ok
    for spec in a.expect_greedy:
        artifact, _, ids = spec.partition("=")
        ok = greedy(artifact, [int(t) for t in ids.split(",")]) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
