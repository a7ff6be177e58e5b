#!/usr/bin/env python3
"""Writes a small random-weight GGUF for the CUDA backend checks: dimensions that are multiples of
128 (the shapes the tensor-core paths are built for), grouped-query attention, and a choice of
architecture so both rope styles are exercised: "llama" (normal pairs) or "qwen2" (neox pairs plus
q/k/v biases). Matrices are stored in mixed types (f32, f16, q8_0) so the host dequantization paths
run too. Weights are seeded, so the file is reproducible; it is made on the fly, never committed.

With a GGUF type as third argument (q5_0, q5_1, q3_k or q2_k), attn_q, attn_k, ffn_gate and ffn_up are
stored in that type (llama.cpp's Q4_K_M stores them as Q5_0 where a row's length is not a multiple of
256, e.g. Gemma 3 270M; Q3_K and Q2_K are the bulk of its Q3_K_* and Q2_K files), which the CUDA backend
packs (Q5_0 like Q8_0, Q5_1 with mins, Q3_K with groups of 16, Q2_K with groups of 16 and mins). The
q|k|v stack then holds two types (v stays q8_0). gguf-py quantizes Q5_0 and Q5_1; it has no quantizer
for Q3_K and Q2_K, so those are quantized here (round to nearest per sub-block of 16, no search) and
checked against gguf-py's dequantization, an implementation of the block layout independent of ours.

Usage: make_random_gguf.py OUT.gguf [llama|qwen2] [q5_0|q5_1|q3_k|q2_k]
"""
import sys

import numpy as np
import gguf
from gguf.quants import dequantize, quantize

out = sys.argv[1]
arch = sys.argv[2] if len(sys.argv) > 2 else "llama"
low = sys.argv[3] if len(sys.argv) > 3 else None
if low not in (None, "q5_0", "q5_1", "q3_k", "q2_k"):
    sys.exit(f"make_random_gguf.py: third argument must be q5_0, q5_1, q3_k or q2_k, got {low!r}")
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


def f16(v):
    return np.asarray(v, np.float32).astype(np.float16)


def quantize_low_k(a, kind):
    """Q3_K or Q2_K blocks of a [n_out][n_in] (n_in % 256 == 0), as uint8 [n_out][row bytes], and the
    weights they hold (float32), computed from the integers chosen here."""
    n_out, n_in = a.shape
    sub = a.reshape(n_out, n_in // 256, 16, 16)  # [row][super-block][sub-block][element]
    if kind == "q3_k":
        s = np.abs(sub).max(-1) / 4  # sub-block scale: q3 = round(x / s) in -4..3
        d = f16(s.max(-1) / 31).astype(np.float32)
        sc = np.clip(np.rint(s / np.where(d > 0, d, 1)[..., None]), -32, 31).astype(np.int32)
        step = d[..., None] * sc
        q = np.clip(np.rint(sub / np.where(step > 0, step, 1)[..., None]), -4, 3).astype(np.int32)
        held = step[..., None] * q
        v = q + 4  # stored: low 2 bits in qs, bit 2 in hmask (set: +0, clear: -4)
    else:
        lo = np.minimum(sub.min(-1), 0)
        s, mn = (sub.max(-1) - lo) / 3, -lo  # weight s * q - mn, q = 0..3
        d, dmin = (f16(t.max(-1) / 15).astype(np.float32) for t in (s, mn))
        sc = np.clip(np.rint(s / np.where(d > 0, d, 1)[..., None]), 0, 15).astype(np.int32)
        m = np.clip(np.rint(mn / np.where(dmin > 0, dmin, 1)[..., None]), 0, 15).astype(np.int32)
        step, off = d[..., None] * sc, dmin[..., None] * m
        q = np.clip(np.rint((sub + off[..., None]) / np.where(step > 0, step, 1)[..., None]), 0, 3).astype(np.int32)
        held = step[..., None] * q - off[..., None]
        v = q
    # element e of a super-block: half e // 128, plane (e % 128) // 32, byte l = e % 32 of that half
    v = v.reshape(n_out, n_in // 256, 2, 4, 32)
    qs = np.zeros((n_out, n_in // 256, 2, 32), np.int32)
    for p in range(4):
        qs |= (v[:, :, :, p, :] & 3) << (2 * p)
    qs = qs.reshape(n_out, n_in // 256, 64).astype(np.uint8)
    nb = n_in // 256
    if kind == "q3_k":
        hm = np.zeros((n_out, nb, 32), np.int32)
        for half in range(2):
            for p in range(4):
                hm |= (v[:, :, half, p, :] >> 2) << (4 * half + p)
        u = sc + 32  # 6-bit, stored: low nibbles in bytes 0-7, top two bits in bytes 8-11
        sb = np.zeros((n_out, nb, 12), np.int32)
        for k in range(16):
            sb[..., k % 8] |= (u[..., k] & 15) << (4 * (k // 8))
            sb[..., 8 + k % 4] |= (u[..., k] >> 4) << (2 * (k // 4))
        blocks = [hm.astype(np.uint8), qs, sb.astype(np.uint8), f16(d)[..., None].view(np.uint8)]
    else:
        blocks = [(sc | (m << 4)).astype(np.uint8), qs, f16(d)[..., None].view(np.uint8),
                  f16(dmin)[..., None].view(np.uint8)]
    raw = np.concatenate(blocks, axis=-1).reshape(n_out, -1)
    return raw, held.reshape(n_out, n_in).astype(np.float32)


def mat(name, n_out, n_in, kind):
    a = (rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)).astype(np.float32)
    if low and name.split(".")[-2] in ("attn_q", "attn_k", "ffn_gate", "ffn_up"):
        kind = low
    if kind == "f16":
        w.add_tensor(name, a.astype(np.float16))
    elif kind in ("q8_0", "q5_0", "q5_1"):
        t = getattr(gguf.GGMLQuantizationType, kind.upper())
        q = quantize(a, t)
        w.add_tensor(name, q, raw_shape=q.shape, raw_dtype=t)
    elif kind in ("q3_k", "q2_k"):
        t = getattr(gguf.GGMLQuantizationType, kind.upper())
        raw, held = quantize_low_k(a, kind)
        theirs = dequantize(raw, t)
        if not np.allclose(theirs, held, rtol=1e-6, atol=1e-7):
            sys.exit(f"make_random_gguf.py: {name}: gguf-py reads other weights from our {kind} blocks")
        w.add_tensor(name, raw, raw_shape=raw.shape, raw_dtype=t)
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
