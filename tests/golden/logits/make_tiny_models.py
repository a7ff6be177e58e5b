#!/usr/bin/env python3
"""Tiny random models (hidden 64, 2 layers, vocab 128) for the architectures stories260K and SmolLM2
do not cover: qwen2 (QKV bias, untied output), qwen3 (QK-norm, head_dim != hidden/heads, tied) and
gemma3 (GeGLU, QK-norm, post-norms, sqrt(d) embedding scale, a sliding-window layer with its local
rope base and a global layer). Weights are drawn in Hugging Face's layout from a fixed torch seed and
written as F32 GGUF with the gguf package, the way llama.cpp's converter lays them out: these three
architectures use neox rope, so Q/K are NOT permuted (only llama-style archs are); Gemma norm weights
are stored with the +1 folded in (the converter adds 1; transformers subtracts it on load).

  python3 tests/golden/logits/make_tiny_models.py     # writes data/models/tiny/*.gguf
then make_golden.py <name> <file> for each (see the bottom of this file for the exact commands).
"""
import os

import numpy as np
import torch
import gguf

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
OUT = os.path.join(ROOT, "data", "models", "tiny")

D, L, V, H, KV, FF = 64, 2, 128, 4, 2, 96


def rnd(g, *shape, scale):
    return (torch.randn(*shape, generator=g) * scale).numpy().astype(np.float32)


def norm_w(g, n):  # around 1, within [0.5, 2] so that (w - 1) + 1 == w exactly in f32
    return (1.0 + 0.2 * torch.rand(n, generator=g) - 0.1).numpy().astype(np.float32)


def write(name, arch, head_dim, extra_meta, tied, bias, qk_norm, post_norms, seed):
    g = torch.Generator().manual_seed(seed)
    w = gguf.GGUFWriter(os.path.join(OUT, f"{name}.gguf"), arch)
    w.add_block_count(L)
    w.add_context_length(256)
    w.add_embedding_length(D)
    w.add_feed_forward_length(FF)
    w.add_head_count(H)
    w.add_head_count_kv(KV)
    w.add_key_length(head_dim)
    w.add_value_length(head_dim)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_vocab_size(V)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    extra_meta(w)
    w.add_tensor("token_embd.weight", rnd(g, V, D, scale=1.0))
    w.add_tensor("output_norm.weight", norm_w(g, D))
    if not tied:
        w.add_tensor("output.weight", rnd(g, V, D, scale=0.2))
    s = 1.0 / np.sqrt(D)
    for il in range(L):
        p = f"blk.{il}."
        w.add_tensor(p + "attn_norm.weight", norm_w(g, D))
        w.add_tensor(p + "attn_q.weight", rnd(g, H * head_dim, D, scale=s))
        w.add_tensor(p + "attn_k.weight", rnd(g, KV * head_dim, D, scale=s))
        w.add_tensor(p + "attn_v.weight", rnd(g, KV * head_dim, D, scale=s))
        w.add_tensor(p + "attn_output.weight", rnd(g, D, H * head_dim, scale=1.0 / np.sqrt(H * head_dim)))
        if bias:
            w.add_tensor(p + "attn_q.bias", rnd(g, H * head_dim, scale=0.3))
            w.add_tensor(p + "attn_k.bias", rnd(g, KV * head_dim, scale=0.3))
            w.add_tensor(p + "attn_v.bias", rnd(g, KV * head_dim, scale=0.3))
        if qk_norm:
            w.add_tensor(p + "attn_q_norm.weight", norm_w(g, head_dim))
            w.add_tensor(p + "attn_k_norm.weight", norm_w(g, head_dim))
        if post_norms:
            w.add_tensor(p + "post_attention_norm.weight", norm_w(g, D))
            w.add_tensor(p + "post_ffw_norm.weight", norm_w(g, D))
        w.add_tensor(p + "ffn_norm.weight", norm_w(g, D))
        w.add_tensor(p + "ffn_gate.weight", rnd(g, FF, D, scale=s))
        w.add_tensor(p + "ffn_up.weight", rnd(g, FF, D, scale=s))
        w.add_tensor(p + "ffn_down.weight", rnd(g, D, FF, scale=1.0 / np.sqrt(FF)))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print("wrote", name)


def main():
    os.makedirs(OUT, exist_ok=True)
    write("qwen2-tiny", "qwen2", 16, lambda w: w.add_rope_freq_base(1000000.0),
          tied=False, bias=True, qk_norm=False, post_norms=False, seed=1)
    write("qwen3-tiny", "qwen3", 24, lambda w: w.add_rope_freq_base(1000000.0),
          tied=True, bias=False, qk_norm=True, post_norms=False, seed=2)

    def gemma3_meta(w):
        w.add_rope_freq_base(50000.0)            # global layers; local layers use 10000 (llama.cpp, HF)
        w.add_sliding_window(4)                  # shorter than the golden prompts, so the mask bites
        w.add_sliding_window_pattern([True, False])  # layer 0 local, layer 1 global
    write("gemma3-tiny", "gemma3", 16, gemma3_meta, tied=True, bias=False, qk_norm=True, post_norms=True, seed=3)


if __name__ == "__main__":
    main()

# Goldens:
#   for m in qwen2-tiny qwen3-tiny gemma3-tiny; do
#     python3 tests/golden/logits/make_golden.py $m data/models/tiny/$m.gguf; done
