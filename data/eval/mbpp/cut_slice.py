#!/usr/bin/env python3
# Cuts data/eval/mbpp/mbpp.jsonl from google-research's mbpp/mbpp.jsonl: the three rows lm-eval uses as
# its fixed few-shot examples (task ids 2, 3, 4) and the first N rows of the test split (task ids
# 11-510, as lm-eval's "full" config), each line byte for byte as upstream wrote it.
# Usage: cut_slice.py PATH/TO/mbpp.jsonl [N=30]
import hashlib, json, sys
src = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 30
out = __file__.rsplit("/", 1)[0] + "/mbpp.jsonl"
keep = []
tests = 0
for line in open(src, "rb").read().split(b"\n"):
    if not line.strip():
        continue
    tid = json.loads(line)["task_id"]
    if tid in (2, 3, 4):
        keep.append(line)
    elif 11 <= tid <= 510 and tests < n:
        keep.append(line)
        tests += 1
data = b"\n".join(keep) + b"\n"
open(out, "wb").write(data)
print(out, len(keep), "lines, sha256", hashlib.sha256(data).hexdigest())
print("source sha256", hashlib.sha256(open(src, "rb").read()).hexdigest())
