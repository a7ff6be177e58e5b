#!/usr/bin/env python3
"""Tiny random models built in Hugging Face transformers and converted to F32 GGUF here, for what
transformers cannot load from GGUF itself: gemma (v1) and llama with llama-3 rope frequency scaling
(GGUF carries it as a rope_freqs tensor, which transformers' GGUF loader ignores). The golden logits
come from the transformers model object, the GGUF from our conversion, which follows llama.cpp's
convert_hf_to_gguf.py conventions (written from its documented behaviour):
  - llama: attn_q / attn_k rows permuted so rope rotates adjacent pairs: per head, the row order
    [0, h/2, 1, h/2+1, ...] (i.e. reshape(n_head, 2, h/2, d).swapaxes(1, 2));
  - llama-3 rope scaling: rope_freqs.weight[i] = 1 / ((1 - s) / factor + s) for the smoothed band,
    1 above it, factor below, where s = (old_ctx / wavelen - low) / (high - low);
  - gemma: every norm weight stored as (1 + w); no output.weight (tied).

  python3 tests/golden/logits/make_tiny_hf_models.py   # writes data/models/tiny/{llama3,gemma}-tiny.gguf
                                                       # and tests/golden/logits/{llama3,gemma}-tiny.json
"""
import math
import os
import sys

import numpy as np
import torch
import gguf
from transformers import GemmaConfig, GemmaForCausalLM, LlamaConfig, LlamaForCausalLM

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_golden  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
OUT = os.path.join(ROOT, "data", "models", "tiny")


def randomize(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            if "norm" in name:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))  # gemma: x * (1 + w); llama: x * w
                if not isinstance(model, GemmaForCausalLM):
                    p.add_(1.0)
            else:
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p.shape[-1]))
    model.eval()
    return model


def permute(w, n_head):
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def llama3_rope_factors(cfg):
    rs = cfg.rope_parameters
    base, dim = rs["rope_theta"], cfg.head_dim
    factor, low, high, old = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"], rs["original_max_position_embeddings"]
    freqs = 1.0 / (base ** (np.arange(0, dim, 2, dtype=np.float32) / dim))
    out = []
    for f in freqs:
        wavelen = 2 * math.pi / f
        if wavelen < old / high:
            out.append(1.0)
        elif wavelen > old / low:
            out.append(factor)
        else:
            s = (old / wavelen - low) / (high - low)
            out.append(1.0 / ((1 - s) / factor + s))
    return np.array(out, dtype=np.float32)


def to_gguf(model, arch, path, extra=None):
    cfg = model.config
    w = gguf.GGUFWriter(path, arch)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    w.add_key_length(cfg.head_dim)
    w.add_value_length(cfg.head_dim)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_rope_freq_base(cfg.rope_parameters["rope_theta"])
    w.add_rope_dimension_count(cfg.head_dim)
    w.add_vocab_size(cfg.vocab_size)
    if extra:
        extra(w)
    sd = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    gemma = arch == "gemma"
    names = {"input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm",
             "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
             "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
             "mlp.down_proj": "ffn_down"}
    w.add_tensor("token_embd.weight", sd["model.embed_tokens.weight"])
    w.add_tensor("output_norm.weight", sd["model.norm.weight"] + (1.0 if gemma else 0.0))
    if not cfg.tie_word_embeddings:
        w.add_tensor("output.weight", sd["lm_head.weight"])
    for il in range(cfg.num_hidden_layers):
        for hf, gg in names.items():
            t = sd[f"model.layers.{il}.{hf}.weight"]
            if gg.endswith("norm"):
                t = t + (1.0 if gemma else 0.0)
            if not gemma and gg == "attn_q":
                t = permute(t, cfg.num_attention_heads)
            if not gemma and gg == "attn_k":
                t = permute(t, cfg.num_key_value_heads)
            w.add_tensor(f"blk.{il}.{gg}.weight", np.ascontiguousarray(t, dtype=np.float32))
    if arch == "llama" and cfg.rope_parameters.get("rope_type") == "llama3":
        w.add_tensor("rope_freqs.weight", llama3_rope_factors(cfg))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    os.makedirs(OUT, exist_ok=True)
    common = dict(vocab_size=128, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, head_dim=16, max_position_embeddings=256, rms_norm_eps=1e-6,
                  pad_token_id=None, bos_token_id=1, eos_token_id=2)
    llama_cfg = LlamaConfig(**common, tie_word_embeddings=False,
                            rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                                             "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                             "original_max_position_embeddings": 64})
    llama = randomize(LlamaForCausalLM(llama_cfg).float(), 11)
    to_gguf(llama, "llama", os.path.join(OUT, "llama3-tiny.gguf"))
    make_golden.write(make_golden.golden(llama, "llama3-tiny", "llama3-tiny.gguf"), "llama3-tiny")

    gemma_cfg = GemmaConfig(**common, hidden_activation="gelu_pytorch_tanh", tie_word_embeddings=True,
                            rope_parameters={"rope_type": "default", "rope_theta": 10000.0})
    gemma = randomize(GemmaForCausalLM(gemma_cfg).float(), 12)
    to_gguf(gemma, "gemma", os.path.join(OUT, "gemma-tiny.gguf"))
    make_golden.write(make_golden.golden(gemma, "gemma-tiny", "gemma-tiny.gguf"), "gemma-tiny")


if __name__ == "__main__":
    main()
