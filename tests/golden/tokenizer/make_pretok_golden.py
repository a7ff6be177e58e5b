#!/usr/bin/env python3
"""Pre-tokenizer pieces from Hugging Face `tokenizers` (Rust, Oniguruma regex) for the regexes as the
models' tokenizer.json files write them (e.g. Llama-3's case-insensitive group), on llama.cpp's
llama-bpe vector inputs plus extra text. quantbench's PCRE2 splitter, given llama.cpp's form of the same
patterns, must cut the text at exactly the same places. Writes pretok_golden.json.
Run: python3 tests/golden/tokenizer/make_pretok_golden.py
"""
import json
import os

from tokenizers import Regex, pre_tokenizers

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))

PATTERNS = {  # GGUF pre name -> the regex as published in tokenizer.json
    "llama-bpe": r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
    "qwen2": r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
    "gpt-2": r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+",
}

EXTRA = [
    "I'M SURE IT'S FINE, YOU'LL SEE. We'Re ok",
    "tabs\t\tand  spaces \n\n  mixed\r\n",
    "price: $1234567.89!!! (approx.)",
    "Καλημέρα κόσμε, привет мир",
    "end with spaces   ",
]


def main():
    raw = open(os.path.join(ROOT, "data/vocab/ggml-vocab-qwen2.gguf.inp"), encoding="utf-8").read()
    texts = [t for t in raw.split("\n__ggml_vocab_test__\n") if t] + EXTRA
    out = {"source": "tokenizers " + __import__("tokenizers").__version__, "cases": []}
    for name, pat in PATTERNS.items():
        split = pre_tokenizers.Split(Regex(pat), behavior="isolated")
        for t in texts:
            out["cases"].append({"pre": name, "text": t, "pieces": [p for p, _ in split.pre_tokenize_str(t)]})
    with open(os.path.join(HERE, "pretok_golden.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=0)
    print(len(out["cases"]), "cases")


if __name__ == "__main__":
    main()
