#!/usr/bin/env python3
"""Decode speed of llama.cpp (through llama-cpp-python) on a GGUF, measured the way quantbench
generate measures its own: one prompt forward (prefill), then one token per forward, greedy, wall clock.

  python3 bench/cpu/llamacpp_decode.py MODEL.gguf --threads 2 --prompt "..." --tokens 128

Prints one JSON line: prefill and decode tokens, seconds, tok/s, and the llama.cpp build info.
"""
import argparse
import json
import time

import llama_cpp


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompt", default="Once upon a time")
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()

    llm = llama_cpp.Llama(model_path=a.model, n_threads=a.threads, n_threads_batch=a.threads, n_ctx=1024,
                          n_batch=512, verbose=False, logits_all=False)
    prompt = llm.tokenize(a.prompt.encode(), add_bos=True, special=True)
    runs = []
    for _ in range(a.reps):
        llm.reset()
        t0 = time.perf_counter()
        llm.eval(prompt)
        tok = int(llm.scores[llm.n_tokens - 1].argmax())
        t1 = time.perf_counter()
        out = [tok]
        for _ in range(a.tokens - 1):
            llm.eval([tok])
            tok = int(llm.scores[llm.n_tokens - 1].argmax())
            out.append(tok)
        t2 = time.perf_counter()
        runs.append(dict(prefill_tokens=len(prompt), prefill_s=t1 - t0, decode_tokens=a.tokens - 1, decode_s=t2 - t1,
                         decode_tok_s=(a.tokens - 1) / (t2 - t1), tokens=out))
    best = max(runs, key=lambda r: r["decode_tok_s"])
    print(json.dumps(dict(engine="llama.cpp via llama-cpp-python " + llama_cpp.__version__,
                          system_info=llama_cpp.llama_print_system_info().decode(errors="replace").strip(),
                          threads=a.threads, runs=[{k: v for k, v in r.items() if k != "tokens"} for r in runs],
                          best_decode_tok_s=best["decode_tok_s"], tokens=best["tokens"])))


if __name__ == "__main__":
    main()
