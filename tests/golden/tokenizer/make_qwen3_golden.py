#!/usr/bin/env python3
"""Token ids from Hugging Face `tokenizers` (the Rust implementation) for the bundled Qwen3 tokenizer.json,
on text beyond llama.cpp's vectors: whitespace runs, digits, mixed scripts, code, contractions, and
special/added tokens written in the text. Writes qwen3_golden.json for tokenizer_test.cpp.

Every string is already NFC (Qwen3's normalizer is NFC, which quantbench does not apply); the script
checks that, so a non-NFC string cannot slip in and make the comparison meaningless.
Run: python3 tests/golden/tokenizer/make_qwen3_golden.py
"""
import gzip
import json
import os
import unicodedata

from tokenizers import Tokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "I'm sure they'll say it's fine, we've seen THEY'RE and DON'T too",
    "    indented\n\tcode();\n\n\n  trailing   \n",
    "x = 12345678901234567890 + 3.14159e-10; y=0xFF",
    "Numbers: ١٢٣ (Arabic-Indic), ⅷ (Roman), ²³ (superscripts), 一二三",
    "Ελληνικά και русский текст, עברית ועוד, हिन्दी भी, ภาษาไทย",
    "日本語の文章と中文句子，还有한국어 문장。",
    "emoji 🦙🚀 family 👨‍👩‍👧‍👦 flags 🇯🇵🇩🇪 skin 👋🏽",
    "def f(a, b):\n    return {'k': [a**2, b // 3]}  # comment\n",
    "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n",
    "<think>\nreasoning here\n</think>\n\nanswer <tool_call>{\"a\": 1}</tool_call>",
    "   ",
    "\r\n\r\n",
    "a\u00a0b\u2003c\u3000d",
    "mixed'QUOTES' and \"double\" – dashes — ellipsis…",
    "URL https://example.com/path?q=1&r=two#frag",
]


def main():
    raw = gzip.open(os.path.join(ROOT, "data/tokenizers/qwen3/tokenizer.json.gz"), "rb").read()
    tok = Tokenizer.from_str(raw.decode("utf-8"))
    cases = []
    for t in TEXTS:
        assert unicodedata.normalize("NFC", t) == t, t
        cases.append({"text": t, "ids": tok.encode(t, add_special_tokens=False).ids})
    with open(os.path.join(HERE, "qwen3_golden.json"), "w", encoding="utf-8") as f:
        json.dump({"source": "tokenizers " + __import__("tokenizers").__version__, "cases": cases}, f,
                  ensure_ascii=False, indent=1)
    print(len(cases), "cases")


if __name__ == "__main__":
    main()
