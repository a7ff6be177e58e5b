#!/usr/bin/env python3
"""Cross-check: llama.cpp (through llama-cpp-python) loads a GGUF that quantbench wrote and its greedy
continuation from BOS gives the same text as quantbench's. Not part of the unit suite: llama-cpp-python builds from
source (tens of minutes on 2 cores). Usage:

  ./build/quantbench quantize data/models/stories260K/stories260K.gguf --scheme q8_0 -o /tmp/s-q8_0.gguf
  python3 scripts/checks/llamacpp_greedy.py /tmp/s-q8_0.gguf --tokens 32

Exit 0 when the texts agree, 1 otherwise; both are printed.
"""
import argparse
import subprocess
import sys

import llama_cpp


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--quantbench", default="./build/quantbench")
    ap.add_argument("--prompt", default="", help="continue this text (default: from BOS alone)")
    a = ap.parse_args()

    llm = llama_cpp.Llama(a.model, n_ctx=256, n_threads=2, verbose=False, logits_all=True)
    bos = llm.token_bos()
    llm.eval(llm.tokenize(a.prompt.encode(), add_bos=True) if a.prompt else [bos])
    ours_llama, margins = [], []
    for _ in range(a.tokens):
        row = llm.scores[llm.n_tokens - 1]
        top2 = row.argsort()[-2:]
        margins.append(float(row[top2[1]] - row[top2[0]]))
        t = int(top2[1])
        ours_llama.append(t)
        llm.eval([t])
    llama_text = llm.detokenize(ours_llama).decode(errors="replace")

    q = subprocess.run([a.quantbench, "generate", a.model, "--max-tokens", str(a.tokens)] +
                       (["--prompt", a.prompt] if a.prompt else []), capture_output=True,
                       text=True, check=True)
    qb_text = q.stdout.rstrip("\n")
    # quantbench generate prints the prompt and then the continuation.
    expected = a.prompt + llama_text if a.prompt else llama_text.lstrip()
    print("llama.cpp :", repr(expected))
    print("quantbench:", repr(qb_text))
    same = expected == qb_text
    print("match" if same else "MISMATCH")
    # A near-tie (small top-1 minus top-2 logit gap) flips under any change of rounding, e.g. the 8-bit
    # activation blocks both engines use; the margins tell a tie from a bug.
    print("llama.cpp top-1 minus top-2 logit per step:", " ".join(f"{m:.3f}" for m in margins))
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()
