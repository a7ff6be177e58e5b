#!/usr/bin/env python3
"""Golden logits from Hugging Face transformers, loading the SAME GGUF file our engine loads.

transformers dequantizes the GGUF itself (its own code, not ours) and runs its own PyTorch model in
float32, so agreement with it checks our spec parsing, weight layout (incl. the Q/K permutation the
llama.cpp converter applies), rope style, attention and MLP independently.

Output: one small JSON per model beside this script: for each fixed token-id prompt, the logits at a
few positions (full vocab rows only for small vocabularies; for large vocabularies a fixed subset of
columns plus the row's RMS and argmax), and for stories260K the 60 greedy tokens from BOS.

Usage:
  python3 make_golden.py stories260K  data/models/stories260K/stories260K.gguf
  python3 make_golden.py smollm2-135m .models/smollm2-135m-instruct-q4_1/<file>.gguf
  python3 make_golden.py <name> <file.gguf>      (tiny random models, see make_tiny_models.py)
"""
import json
import os
import shutil
import sys
import tempfile

import numpy as np
import torch
from transformers import AutoConfig, AutoModelForCausalLM

PROMPTS = {
    # fixed token-id prompts (BOS first); ids < 512 so they fit every vocab used here
    "p0": [1, 403, 407, 261, 378, 432, 383, 286],
    "p1": [1, 300, 17, 250, 499, 5, 42, 111, 260, 333, 270, 12],
}
MAX_FULL_VOCAB = 2048   # store whole rows up to this vocab size
N_COLS = 256            # else: this many fixed columns per stored row


def gguf_meta(path):
    import gguf
    r = gguf.GGUFReader(path)
    return {k: f.contents() for k, f in r.fields.items() if not k.startswith("tokenizer.")}


def patch_config(cfg, path):
    """Fields transformers' GGUF config mapping drops, set as llama.cpp reads the same file."""
    meta = gguf_meta(path)
    arch = meta["general.architecture"]
    if arch == "qwen3" and f"{arch}.attention.key_length" in meta:
        cfg.head_dim = int(meta[f"{arch}.attention.key_length"])  # Qwen3Config defaults to 128
    if arch == "gemma3":
        # llama.cpp scales queries by 1/sqrt(head_dim) (all sizes but 27B); HF by query_pre_attn_scalar.
        cfg.query_pre_attn_scalar = cfg.head_dim
        pat = meta.get(f"{arch}.attention.sliding_window_pattern")
        if isinstance(pat, list):
            cfg.layer_types = ["sliding_attention" if b else "full_attention" for b in pat]
        rp = cfg.rope_parameters
        assert abs(rp["full_attention"]["rope_theta"] - meta[f"{arch}.rope.freq_base"]) < 1e-3, rp
        assert rp["sliding_attention"]["rope_theta"] == 10000.0, rp
        assert cfg.final_logit_softcapping is None and cfg.attn_logit_softcapping is None


def load(path):
    d, f = os.path.split(os.path.abspath(path))
    cfg = AutoConfig.from_pretrained(d, gguf_file=f)
    # stories260K stores pad id 4294967295, which does not fit the embedding: transformers needs None.
    if getattr(cfg, "pad_token_id", None) is not None and cfg.pad_token_id >= cfg.vocab_size:
        cfg.pad_token_id = None
    patch_config(cfg, path)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, config=cfg, torch_dtype=torch.float32)
    model.eval()
    return model


def golden(model, name, gguf_name):
    """The golden record of `model` (a transformers model in float32) on PROMPTS."""
    vocab = model.config.vocab_size
    out = {"model": name, "gguf": gguf_name, "vocab": vocab,
           "transformers": __import__("transformers").__version__, "torch": torch.__version__,
           "prompts": []}
    rng = np.random.default_rng(1234)
    cols = list(range(vocab)) if vocab <= MAX_FULL_VOCAB else sorted(rng.choice(vocab, N_COLS, replace=False).tolist())
    out["columns"] = None if vocab <= MAX_FULL_VOCAB else cols
    with torch.no_grad():
        for pname, ids in PROMPTS.items():
            ids = [i % vocab for i in ids]  # tiny models have small vocabularies
            logits = model(torch.tensor([ids])).logits[0].double().numpy()
            n = len(ids)
            positions = sorted(set([0, n // 2, n - 1]))
            rows = []
            for p in positions:
                row = logits[p]
                rows.append({"pos": p,
                             "rms": float(np.sqrt(np.mean(row ** 2))),
                             "argmax": int(np.argmax(row)),
                             "logits": [float(np.float32(row[c])) for c in cols]})
            out["prompts"].append({"name": pname, "ids": ids, "rows": rows})
        if name == "stories260K":
            gen = model.generate(torch.tensor([[1]]), max_new_tokens=60, do_sample=False,
                                 pad_token_id=0, eos_token_id=None)
            out["greedy_from_bos_60"] = gen[0].tolist()
    return out


def write(out, name):
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, f"{name}.json"), "w") as fh:
        json.dump(out, fh, separators=(",", ":"))
        fh.write("\n")
    print("wrote", name, "vocab", out["vocab"], "greedy" if "greedy_from_bos_60" in out else "")


def main():
    name, path = sys.argv[1], sys.argv[2]
    torch.manual_seed(0)
    write(golden(load(path), name, os.path.basename(path)), name)


if __name__ == "__main__":
    main()
