#!/usr/bin/env python3
"""Perplexity of a GGUF under llama.cpp's convention, computed by llama.cpp's engine (llama-cpp-python).

The reference for docs/validation.md: `quantbench eval --regimes perplexity --convention llama.cpp` must
agree with this within 0.5% on the same file and text. The convention, as llama.cpp's perplexity tool
implements it (tools/perplexity/perplexity.cpp, perplexity()):
  - the whole text is tokenized once, with BOS when the vocabulary adds one;
  - it is cut into chunks of n_ctx tokens; a partial last chunk is dropped;
  - the first token of each chunk is replaced by BOS (when the vocabulary adds one);
  - only the second half is scored: for j in [n_ctx/2, n_ctx-1) the logits at j predict token j+1.
Log-softmax is taken here in float64 from llama.cpp's float32 logits.

  python3 scripts/checks/llamacpp_perplexity.py MODEL.gguf TEXT [--ctx 512] [--chunks N] [--threads 2]
Prints one JSON object: chunks, scored tokens, mean NLL, perplexity, and its standard error.
"""
import argparse
import json
import math
import sys

import numpy as np
from llama_cpp import Llama, llama_cpp


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("text")
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--chunks", type=int, default=0, help="first N chunks only (0 = all)")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()

    llm = Llama(model_path=a.model, n_ctx=a.ctx, n_batch=a.ctx, n_ubatch=a.ctx, logits_all=True,
                n_threads=a.threads, n_threads_batch=a.threads, verbose=False)
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    add_bos = bool(llama_cpp.llama_vocab_get_add_bos(vocab))
    bos = llm.token_bos()
    text = open(a.text, "rb").read()
    tokens = llm.tokenize(text, add_bos=add_bos, special=False)
    n_chunks = len(tokens) // a.ctx
    if a.chunks:
        n_chunks = min(n_chunks, a.chunks)
    first = a.ctx // 2
    nll = []
    for c in range(n_chunks):
        toks = list(tokens[c * a.ctx:(c + 1) * a.ctx])
        if add_bos:
            toks[0] = bos
        llm.reset()
        llm.eval(toks)
        logits = np.asarray(llm.scores[:a.ctx], dtype=np.float64)
        for j in range(first, a.ctx - 1):
            row = logits[j]
            m = row.max()
            lse = m + math.log(np.exp(row - m).sum())
            nll.append(lse - row[toks[j + 1]])
        print(f"chunk {c + 1}/{n_chunks}: running ppl {math.exp(sum(nll) / len(nll)):.4f}", file=sys.stderr)
    nll = np.asarray(nll)
    mean = float(nll.mean())
    # llama.cpp's tool reports the error of ln(ppl) from the per-token spread; so do we.
    se = float(nll.std(ddof=1) / math.sqrt(len(nll)))
    print(json.dumps({"model": a.model, "text": a.text, "tokens_in_text": len(tokens), "add_bos": add_bos,
                      "ctx": a.ctx, "chunks": n_chunks, "scored_tokens": int(len(nll)), "mean_nll": mean,
                      "ppl": math.exp(mean), "ln_ppl_stderr": se,
                      "engine": f"llama-cpp-python {__import__('llama_cpp').__version__}"}, indent=1))


if __name__ == "__main__":
    main()
