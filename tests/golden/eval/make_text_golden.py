#!/usr/bin/env python3
"""Golden values for src/quantbench/eval/text_metrics.* from the reference implementations:
rouge-score (RougeScorer(["rougeL"]), default tokenizer, no stemmer), sacrebleu CHRF() defaults, and
lm-evaluation-harness gsm8k.yaml v3.0 regexes run by Python's `re` exactly as lm-eval's RegexFilter
and exact_match apply them.

Run from the repo root:  python3 tests/golden/eval/make_text_golden.py
"""
import importlib.metadata
import json
import os
import random
import re

import rouge_score
import sacrebleu
from rouge_score import rouge_scorer

rnd = random.Random(11262026)
WORDS = ["the", "The", "cat", "sat", "on", "mat", "dog", "ran", "quickly", "42", "3.14", "don't", "e-mail",
         "x", "AND", "then", "it", "was", "over", "again", "again,", "(note)", "end.", "U.S.", "a1b2"]
SEPS = [" ", " ", " ", "  ", "\n", "\t", ", ", ". ", "; ", "! ", " -- "]


def random_text(n):
    return "".join(rnd.choice(WORDS) + rnd.choice(SEPS) for _ in range(n)).strip()


def mutate(t):
    w = t.split(" ")
    for _ in range(rnd.randint(0, 4)):
        op = rnd.randint(0, 2)
        i = rnd.randrange(len(w) + 1)
        if op == 0:
            w.insert(i, rnd.choice(WORDS))
        elif op == 1 and len(w) > 1:
            del w[min(i, len(w) - 1)]
        else:
            w[min(i, len(w) - 1)] = rnd.choice(WORDS)
    return " ".join(w)


pairs = [("", ""), ("", "abc"), ("abc", ""), ("!!! ...", "the cat"), ("same text here", "same text here"),
         ("The cat sat on the mat.", "the CAT sat on a mat"), ("a", "a"), ("ab", "ab"), ("abcdefg", "abcdefh"),
         ("naïve café — 日本語のテキスト", "naive café — 日本語テキスト"), ("x\u00a0y\u2003z", "xyz"),
         ("tabs\tand\nnewlines", "tabs and newlines")]
for _ in range(60):
    a = random_text(rnd.randint(1, 40))
    b = mutate(a) if rnd.random() < 0.7 else random_text(rnd.randint(1, 40))
    pairs.append((a, b))

scorer = rouge_scorer.RougeScorer(["rougeL"])
chrf = sacrebleu.metrics.CHRF()
out = {"versions": {"rouge_score": importlib.metadata.version("rouge-score"), "sacrebleu": sacrebleu.__version__},
       "pairs": []}
for ref, hyp in pairs:
    r = scorer.score(ref, hyp)["rougeL"]  # score(target, prediction)
    c = chrf.sentence_score(hyp, [ref]).score
    ascii_only = all(ord(ch) < 128 for ch in ref + hyp)
    out["pairs"].append({"reference": ref, "candidate": hyp, "ascii": ascii_only,
                         "rougeL": [r.precision, r.recall, r.fmeasure], "chrf": c})
# Corpus chrF sums statistics over segments before scoring.
out["corpus_chrf"] = chrf.corpus_score([h for _, h in pairs], [[r for r, _ in pairs]]).score

# lm-eval gsm8k v3.0: filters and exact_match normalisation.
STRICT = re.compile(r"#### (\-?[0-9\.\,]+)")
FLEX = re.compile(r"(-?[$0-9.,]{2,})|(-?[0-9]+)")
IGNORE = [",", "\\$", "(?s).*#### ", "\\.$"]


def regex_filter(regex, group_select, resp):
    match = regex.findall(resp)
    if match:
        match = match[group_select]
        if isinstance(match, tuple):
            match = [m for m in match if m][0]
        return match.strip()
    return "[invalid]"


def normalize(s):
    for r in IGNORE:
        s = re.sub(r, "", s)
    return s.lower()


responses = [
    "Natalia sold 48/2 = 24 clips in May.\nNatalia sold 48+24 = 72 clips altogether.\n#### 72",
    "The answer is $1,234.50.", "#### -5\n#### 6", "no numbers here", "It costs $18.", "#### 1,000,000",
    "5 apples and 3 pears, so 8.", "Value: -0.5", "####72", "She has 3.5.\n", "So 10, 20, 30", "x 7 y",
    "Total = 2,500 dollars #### 2500", "negative -12 and then - 4", "1.2.3", "$$", "#### .5", "Answer: 007",
]
targets = ["Some reasoning.\n#### 72", "#### 1,234.50", "#### 6", "#### 0", "#### 18", "#### 1000000", "#### 8",
           "#### -0.5", "#### 72", "#### 3.5", "#### 30", "#### 7", "#### 2500", "#### 4", "#### 1.2.3", "#### 0",
           "#### 0.5", "#### 7"]
out["gsm8k"] = []
for resp, tgt in zip(responses, targets):
    s = regex_filter(STRICT, 0, resp)
    f = regex_filter(FLEX, -1, resp)
    out["gsm8k"].append({"response": resp, "target": tgt, "strict": s, "flexible": f,
                         "strict_match": normalize(s) == normalize(tgt),
                         "flexible_match": normalize(f) == normalize(tgt),
                         "normalized_target": normalize(tgt)})

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "text_golden.json")
with open(path, "w", encoding="utf-8") as fh:
    json.dump(out, fh, indent=1, ensure_ascii=False)
    fh.write("\n")
print("wrote", path)
