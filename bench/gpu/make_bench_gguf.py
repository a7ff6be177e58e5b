#!/usr/bin/env python3
"""Writes a random-weight f16 GGUF at real Llama shapes for timing the CUDA backend on the GPU machine
(nothing large travels: the file is made there). Dependency-free apart from numpy (the GPU machine has
no `gguf` package), so it carries its own minimal GGUF v3 writer. Weights are N(0, 0.02) f16 slices
of one random pool at random offsets: every tensor is its own buffer on the device (no L2 reuse), and
generation takes seconds instead of minutes.

Usage: make_bench_gguf.py OUT.gguf [tinyllama|llama2-7b]
"""
import struct
import sys

import numpy as np

SHAPES = {  # n_vocab, n_embd, n_layer, n_head, n_head_kv, n_ff
    "tinyllama": (32000, 2048, 22, 32, 4, 5632),
    "llama2-7b": (32000, 4096, 32, 32, 32, 11008),
}
out = sys.argv[1]
n_vocab, n_embd, n_layer, n_head, n_head_kv, n_ff = SHAPES[sys.argv[2] if len(sys.argv) > 2 else "tinyllama"]
hd = n_embd // n_head
rng = np.random.default_rng(7)
pool = (rng.standard_normal(1 << 26, dtype=np.float32) * 0.02).astype(np.float16)


def s(x):
    b = x.encode()
    return struct.pack("<Q", len(b)) + b


kv = []
def kv_u32(k, v): kv.append(s(k) + struct.pack("<II", 4, v))
def kv_f32(k, v): kv.append(s(k) + struct.pack("<If", 6, v))
def kv_str(k, v): kv.append(s(k) + struct.pack("<I", 8) + s(v))
def kv_arr(k, etype, items, fmt=None):
    body = b"".join(s(i) for i in items) if etype == 8 else b"".join(struct.pack(fmt, i) for i in items)
    kv.append(s(k) + struct.pack("<IIQ", 9, etype, len(items)) + body)


kv_str("general.architecture", "llama")
kv_u32("llama.context_length", 4096)
kv_u32("llama.embedding_length", n_embd)
kv_u32("llama.block_count", n_layer)
kv_u32("llama.feed_forward_length", n_ff)
kv_u32("llama.attention.head_count", n_head)
kv_u32("llama.attention.head_count_kv", n_head_kv)
kv_f32("llama.attention.layer_norm_rms_epsilon", 1e-5)
toks = ["<unk>", "<s>", "</s>"] + [f"<0x{i:02X}>" for i in range(256)]
toks += [f"tok{i}" for i in range(n_vocab - len(toks))]
kv_str("tokenizer.ggml.model", "llama")
kv_arr("tokenizer.ggml.tokens", 8, toks)
kv_arr("tokenizer.ggml.scores", 6, [0.0] * n_vocab, "<f")
kv_arr("tokenizer.ggml.token_type", 5, [2, 3, 3] + [6] * 256 + [1] * (n_vocab - 259), "<i")
kv_u32("tokenizer.ggml.bos_token_id", 1)
kv_u32("tokenizer.ggml.eos_token_id", 2)

tensors = []  # (name, dims ne0-first, ggml type, nbytes, source)
def mat(name, n_out, n_in): tensors.append((name, (n_in, n_out), 1, n_out * n_in * 2, n_out * n_in))
def vec(name, n): tensors.append((name, (n,), 0, n * 4, None))


mat("token_embd.weight", n_vocab, n_embd)
for il in range(n_layer):
    p = f"blk.{il}."
    vec(p + "attn_norm.weight", n_embd)
    vec(p + "ffn_norm.weight", n_embd)
    mat(p + "attn_q.weight", n_head * hd, n_embd)
    mat(p + "attn_k.weight", n_head_kv * hd, n_embd)
    mat(p + "attn_v.weight", n_head_kv * hd, n_embd)
    mat(p + "attn_output.weight", n_embd, n_head * hd)
    mat(p + "ffn_gate.weight", n_ff, n_embd)
    mat(p + "ffn_up.weight", n_ff, n_embd)
    mat(p + "ffn_down.weight", n_embd, n_ff)
vec("output_norm.weight", n_embd)
mat("output.weight", n_vocab, n_embd)

ALIGN = 32
infos, off = [], 0
for name, dims, typ, nbytes, _ in tensors:
    infos.append(s(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
                 + struct.pack("<IQ", typ, off))
    off += (nbytes + ALIGN - 1) // ALIGN * ALIGN
with open(out, "wb") as f:
    f.write(b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kv)))
    for k in kv: f.write(k)
    for i in infos: f.write(i)
    f.write(b"\0" * ((-f.tell()) % ALIGN))
    for name, dims, typ, nbytes, count in tensors:
        if count is None:
            data = (1.0 + 0.1 * rng.standard_normal(dims[0])).astype(np.float32).tobytes()
        else:
            start = int(rng.integers(0, pool.size))
            idx = (start + np.arange(count, dtype=np.int64)) % pool.size if count > pool.size - start else None
            data = (pool[idx] if idx is not None else pool[start:start + count]).tobytes()
        f.write(data)
        f.write(b"\0" * ((-len(data)) % ALIGN))
