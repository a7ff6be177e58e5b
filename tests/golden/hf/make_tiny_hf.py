#!/usr/bin/env python3
"""Tiny random Hugging Face checkpoints (config.json + safetensors + tokenizer.json) built with
transformers, and golden fp32 logits from transformers for fixed token ids. The C++ test
(tests/model/hf_model_test.cpp) loads each directory with model::Model::load and must match within
max|dlogit| <= 1e-4 x RMS(logits) on the reference path.

Covered: llama with GQA and llama-3 rope scaling, untied output, stored as BF16 (so the Q/K row
permutation and rope_freqs are exercised); qwen2 (QKV bias, tied, F32, saved in 3 shards with an
index); qwen3 (QK-norm, head_dim != hidden/heads, F16); gemma (v1: (1 + w) norms, GeGLU, sqrt(d)
embedding scale); gemma3 (QK-norm, post-norms, query_pre_attn_scalar, a sliding-window layer with its
local rope base and a global layer). The goldens are computed from the checkpoint as reloaded from
disk in float32, so a BF16/F16 checkpoint's rounding is part of what both sides run.

The tokenizer is a 320-token byte-level BPE trained with the `tokenizers` library on
data/calib/tiny_stories_16k.txt (deterministic); every model uses the same one.

  python3 tests/golden/hf/make_tiny_hf.py   # writes data/models/tiny-hf/<name>/ and tests/golden/hf/<name>.json
"""
import json
import math
import os
import shutil

import numpy as np
import torch
import transformers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (Gemma3ForCausalLM, Gemma3TextConfig, GemmaConfig, GemmaForCausalLM, LlamaConfig,
                          LlamaForCausalLM, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM, Qwen3Config,
                          Qwen3ForCausalLM, AutoModelForCausalLM)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
OUT = os.path.join(ROOT, "data", "models", "tiny-hf")
V = 320
PROMPTS = {"p0": [1, 203, 207, 61, 178, 232, 183, 86], "p1": [1, 100, 17, 250, 299, 5, 42, 111, 260, 133, 270, 12]}


def make_tokenizer():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=V, special_tokens=["<unk>", "<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train([os.path.join(ROOT, "data", "calib", "tiny_stories_16k.txt")], trainer)
    assert tok.get_vocab_size() == V, tok.get_vocab_size()
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")


def randomize(model, seed, gemma):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            if "norm" in name:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))  # gemma: x * (1 + w); others: x * w
                if not gemma:
                    p.add_(1.0)
            elif name.endswith(".bias"):
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p.shape[-1]))
    return model.eval()


TEXT = "Once upon a time, there was a little girl named Lily. She liked 42 red balloons!"


def golden(model, name, tok):
    out = {"model": name, "text": TEXT, "text_ids": tok(TEXT)["input_ids"], "vocab": V, "transformers": transformers.__version__, "torch": torch.__version__,
           "columns": None, "prompts": []}
    with torch.no_grad():
        for pname, ids in PROMPTS.items():
            logits = model(torch.tensor([ids])).logits[0].double().numpy()
            rows = []
            for p in sorted({0, len(ids) // 2, len(ids) - 1}):
                row = logits[p]
                rows.append({"pos": p, "rms": float(np.sqrt(np.mean(row ** 2))), "argmax": int(np.argmax(row)),
                             "logits": [float(np.float32(x)) for x in row]})
            out["prompts"].append({"name": pname, "ids": ids, "rows": rows})
    return out


def build(name, model, seed, dtype, tok, shard=None, gemma=False):
    d = os.path.join(OUT, name)
    shutil.rmtree(d, ignore_errors=True)
    randomize(model, seed, gemma).to(dtype).save_pretrained(d, max_shard_size=shard or "10MB")
    tok.save_pretrained(d)
    reloaded = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="eager").eval()
    with open(os.path.join(HERE, f"{name}.json"), "w") as fh:
        json.dump(golden(reloaded, name, tok), fh, separators=(",", ":"))
        fh.write("\n")
    size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
    print(f"{name}: {sorted(os.listdir(d))}, {size} bytes")


def main():
    torch.manual_seed(0)
    tok = make_tokenizer()
    common = dict(vocab_size=V, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=256, rms_norm_eps=1e-6, pad_token_id=None,
                  bos_token_id=1, eos_token_id=2)
    build("llama-gqa", LlamaForCausalLM(LlamaConfig(
        **common, head_dim=8, tie_word_embeddings=False,
        rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
                         "high_freq_factor": 4.0, "original_max_position_embeddings": 32})).float(),
        21, torch.bfloat16, tok)
    build("qwen2", Qwen2ForCausalLM(Qwen2Config(**common, tie_word_embeddings=True,
                                                rope_parameters={"rope_type": "default", "rope_theta": 1000000.0})).float(),
          22, torch.float32, tok, shard="45KB")
    build("qwen3", Qwen3ForCausalLM(Qwen3Config(**common, head_dim=16, tie_word_embeddings=True)).float(),
          23, torch.float16, tok)
    build("gemma", GemmaForCausalLM(GemmaConfig(**common, head_dim=8, hidden_activation="gelu_pytorch_tanh",
                                                tie_word_embeddings=True)).float(),
          24, torch.float32, tok, gemma=True)
    g3 = dict(common, num_attention_heads=2, num_key_value_heads=1)
    build("gemma3", Gemma3ForCausalLM(Gemma3TextConfig(
        **g3, head_dim=16, query_pre_attn_scalar=24, sliding_window=4,
        layer_types=["sliding_attention", "full_attention"], tie_word_embeddings=True,
        rope_parameters={"full_attention": {"rope_type": "default", "rope_theta": 50000.0},
                         "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}})).float(),
          25, torch.float32, tok, gemma=True)


if __name__ == "__main__":
    main()
