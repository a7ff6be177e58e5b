#!/usr/bin/env python3
"""Writes a small random-weight GGUF for the CUDA backend checks: dimensions that are multiples of
128 (the shapes the tensor-core paths are built for), grouped-query attention, and a choice of
architecture so both rope styles are exercised: "llama" (normal pairs) or "qwen2" (neox pairs plus
q/k/v biases). Matrices are stored in mixed types (f32, f16, q8_0) so the host dequantization paths
run too. Weights are seeded, so the file is reproducible; it is made on the fly, never committed.

With "q5_0" as third argument, attn_q, attn_k, ffn_gate and ffn_up are stored as GGUF Q5_0 (as llama.cpp's
Q4_K_M stores them where a row's length is not a multiple of 256, e.g. Gemma 3 270M), which the CUDA
backend packs like Q8_0.

Usage: make_random_gguf.py OUT.gguf [llama|qwen2] [q5_0]
"""
import sys

import numpy as np
import gguf
from gguf.quants import quantize

out = sys.argv[1]
arch = sys.argv[2] if len(sys.argv) > 2 else "llama"
if len(sys.argv) > 3 and sys.argv[3] != "q5_0":
    sys.exit(f"make_random_gguf.py: third argument must be q5_0, got {sys.argv[3]!r}")
q5 = len(sys.argv) > 3
rng = np.random.default_rng(1234 if arch == "llama" else 4321)
n_vocab, n_embd, n_layer, n_head, n_head_kv, n_ff, n_ctx = 512, 256, 2, 2, 1, 512, 512
hd = n_embd // n_head

w = gguf.GGUFWriter(out, arch)
w.add_context_length(n_ctx)
w.add_embedding_length(n_embd)
w.add_block_count(n_layer)
w.add_feed_forward_length(n_ff)
w.add_head_count(n_head)
w.add_head_count_kv(n_head_kv)
w.add_layer_norm_rms_eps(1e-5)
w.add_rope_freq_base(10000.0)
# A minimal sentencepiece-style vocabulary (the model layer reads the tokenizer with the model).
toks = ["<unk>", "<s>", "</s>"] + [f"<0x{i:02X}>" for i in range(256)]
toks += [f"tok{i}" for i in range(n_vocab - len(toks))]
w.add_tokenizer_model("llama")
w.add_token_list(toks)
w.add_token_scores([0.0] * n_vocab)
w.add_token_types([2, 3, 3] + [6] * 256 + [1] * (n_vocab - 259))
w.add_bos_token_id(1)
w.add_eos_token_id(2)


def mat(name, n_out, n_in, kind):
    a = (rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)).astype(np.float32)
    if q5 and name.split(".")[-2] in ("attn_q", "attn_k", "ffn_gate", "ffn_up"):
        kind = "q5_0"
    if kind == "f16":
        w.add_tensor(name, a.astype(np.float16))
    elif kind in ("q8_0", "q5_0"):
        t = gguf.GGMLQuantizationType.Q8_0 if kind == "q8_0" else gguf.GGMLQuantizationType.Q5_0
        q = quantize(a, t)
        w.add_tensor(name, q, raw_shape=q.shape, raw_dtype=t)
    else:
        w.add_tensor(name, a)


def vec(name, n, base=1.0, spread=0.1):
    w.add_tensor(name, (base + spread * rng.standard_normal(n)).astype(np.float32))


w.add_tensor("token_embd.weight", rng.standard_normal((n_vocab, n_embd)).astype(np.float32))
for il in range(n_layer):
    p = f"blk.{il}."
    vec(p + "attn_norm.weight", n_embd)
    vec(p + "ffn_norm.weight", n_embd)
    mat(p + "attn_q.weight", n_head * hd, n_embd, "f16")
    mat(p + "attn_k.weight", n_head_kv * hd, n_embd, "f16")
    mat(p + "attn_v.weight", n_head_kv * hd, n_embd, "q8_0")
    mat(p + "attn_output.weight", n_embd, n_head * hd, "f32")
    mat(p + "ffn_gate.weight", n_ff, n_embd, "q8_0")
    mat(p + "ffn_up.weight", n_ff, n_embd, "f32")
    mat(p + "ffn_down.weight", n_embd, n_ff, "f16")
    if arch == "qwen2":
        vec(p + "attn_q.bias", n_head * hd, 0.0, 0.5)
        vec(p + "attn_k.bias", n_head_kv * hd, 0.0, 0.5)
        vec(p + "attn_v.bias", n_head_kv * hd, 0.0, 0.5)
vec("output_norm.weight", n_embd)
mat("output.weight", n_vocab, n_embd, "q8_0")

w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
