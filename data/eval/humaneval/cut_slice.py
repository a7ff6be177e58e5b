#!/usr/bin/env python3
# Cuts data/eval/humaneval/HumanEval.jsonl: the first N problems of openai/human-eval's
# data/HumanEval.jsonl.gz, decompressed, each line exactly as upstream wrote it (no re-serialising, so the
# prompts and tests keep every byte). Usage: cut_slice.py PATH/TO/HumanEval.jsonl.gz [N=30]
import gzip, hashlib, sys
src = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 30
out = __file__.rsplit("/", 1)[0] + "/HumanEval.jsonl"
with gzip.open(src, "rb") as f:
    lines = f.read().split(b"\n")
lines = [l for l in lines if l.strip()][:n]
data = b"\n".join(lines) + b"\n"
open(out, "wb").write(data)
print(out, len(lines), "lines, sha256", hashlib.sha256(data).hexdigest())
print("source sha256", hashlib.sha256(open(src, "rb").read()).hexdigest())
