#!/usr/bin/env python3
"""Cuts the small deterministic slices of MMLU, TruthfulQA, LAMBADA, GSM8K and MGSM that the tests
and a user without ../shared/data evaluate on (data/eval/...), from the full files in ../shared/data
(provenance in its SOURCES.md). Re-running it reproduces the files byte for byte; it prints the
sha256 lines for data/SOURCES.md.

GSM8K is 5-shot with lm-evaluation-harness 0.4.13's default sampler: one random.Random(1234) (the
evaluator's fewshot_random_seed) draws rnd.sample(train_docs, 5) for each test document in order.
The slice keeps only the training rows those draws reach, each tagged with its row number in the
full train.jsonl ("train_row"), so the C++ port of the sampler reads the same examples from the slice
as from the full file.

usage: python3 data/eval/make_task_slices.py [SHARED_DATA_DIR]   (default /work/shared/data)
"""
import csv
import hashlib
import io
import json
import os
import random
import sys

SRC = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/data"
DST = os.path.dirname(os.path.abspath(__file__))

MMLU_SUBJECTS = ["abstract_algebra", "high_school_geography", "marketing", "world_religions"]
MMLU_TEST_ROWS = 20
TRUTHFULQA_ROWS = 50
LAMBADA_ROWS = 50
GSM8K_TEST_ROWS = 20
MGSM_LANGS = ["bn", "de", "en", "es", "fr", "ja", "ru", "sw", "te", "th", "zh"]
MGSM_ROWS = 10

written = []


def write(rel, data: bytes):
    path = os.path.join(DST, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    written.append(rel)


def csv_head(path, n_rows):
    """Header + first n_rows records, re-written by the csv module (quote-minimal, LF)."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    for r in rows[: 1 + n_rows]:
        w.writerow(r)
    return out.getvalue().encode("utf-8")


def head_lines(path, n):
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    return b"\n".join(lines[:n]) + b"\n"


for s in MMLU_SUBJECTS:
    write(f"mmlu/test/{s}_test.csv", csv_head(f"{SRC}/mmlu/test/{s}_test.csv", MMLU_TEST_ROWS))
    write(f"mmlu/dev/{s}_dev.csv", csv_head(f"{SRC}/mmlu/dev/{s}_dev.csv", 5))

with open(f"{SRC}/truthfulqa/en.validation.json", encoding="utf-8") as f:
    tqa = json.load(f)
write("truthfulqa/en.validation.json",
      (json.dumps(tqa[:TRUTHFULQA_ROWS], ensure_ascii=False) + "\n").encode("utf-8"))

write("llm_foundry_icl/lambada_openai.jsonl", head_lines(f"{SRC}/llm_foundry_icl/lambada_openai.jsonl", LAMBADA_ROWS))

write("gsm8k/test.jsonl", head_lines(f"{SRC}/gsm8k/test.jsonl", GSM8K_TEST_ROWS))
with open(f"{SRC}/gsm8k/train.jsonl", encoding="utf-8") as f:
    train = [json.loads(line) for line in f if line.strip()]
rnd = random.Random(1234)
draws = []
for _ in range(GSM8K_TEST_ROWS):
    # lm-eval samples the docs themselves; sampling their indices draws the same random numbers.
    draws.append(rnd.sample(list(range(len(train))), 5))
needed = sorted({i for d in draws for i in d})
lines = []
for i in needed:
    row = dict(train[i])
    row["train_row"] = i
    lines.append(json.dumps(row, ensure_ascii=False))
write("gsm8k/train_fewshot.jsonl", ("\n".join(lines) + "\n").encode("utf-8"))

for lang in MGSM_LANGS:
    write(f"mgsm/mgsm_{lang}.tsv", head_lines(f"{SRC}/mgsm/mgsm_{lang}.tsv", MGSM_ROWS))

for rel in written:
    with open(os.path.join(DST, rel), "rb") as f:
        print(f"{hashlib.sha256(f.read()).hexdigest()}  data/eval/{rel}")
print("gsm8k draws (train rows) for test docs 0..%d:" % (GSM8K_TEST_ROWS - 1))
print(json.dumps(draws))
