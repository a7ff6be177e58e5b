#!/usr/bin/env python3
"""Golden values for src/quantbench/eval/stats.* from numpy / scipy / statsmodels (independent oracles).

Run from the repo root:  python3 tests/golden/eval/make_stats_golden.py
Versions used are written into the output so a regenerated file can be compared knowingly.
"""
import json
import os

import numpy as np
import scipy
import scipy.special
import scipy.stats
import statsmodels
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.proportion import proportion_confint

rng = np.random.default_rng(20261126)
out = {"versions": {"numpy": np.__version__, "scipy": scipy.__version__, "statsmodels": statsmodels.__version__}}

# Samples with odd and even lengths, ties, heavy tails.
samples = [
    rng.normal(size=37).round(6).tolist(),
    rng.standard_cauchy(size=50).round(6).tolist(),
    [1.0, 2.0, 2.0, 2.0, 3.0, 10.0],
    [4.5],
    rng.exponential(size=201).round(6).tolist(),
]
qs = [0, 0.1, 1, 5, 10, 25, 33.3, 50, 66.7, 75, 90, 95, 99, 99.9, 100]
out["percentile_qs"] = qs
out["samples"] = []
for x in samples:
    a = np.array(x)
    z = scipy.stats.norm.ppf(0.975)
    sd = float(a.std(ddof=1)) if len(a) > 1 else 0.0
    se = sd / np.sqrt(len(a))
    out["samples"].append({
        "x": x,
        "mean": float(a.mean()), "sd": sd, "stderr": se,
        "ci95": [float(a.mean() - z * se), float(a.mean() + z * se)],
        "percentiles": [float(np.percentile(a, q)) for q in qs],  # numpy default method='linear'
    })

out["normal_ppf"] = [[p, float(scipy.stats.norm.ppf(p))] for p in
                     [1e-300, 1e-20, 1e-9, 0.001, 0.01, 0.02425, 0.025, 0.05, 0.2, 0.5, 0.7, 0.95, 0.975, 0.999, 1 - 1e-12]]

out["wilson"] = []
for k, n, level in [(0, 10, 0.95), (10, 10, 0.95), (3, 10, 0.95), (50, 100, 0.9), (1, 1, 0.99), (731, 1000, 0.95), (7, 20000, 0.95)]:
    lo, hi = proportion_confint(k, n, alpha=1 - level, method="wilson")
    out["wilson"].append({"k": k, "n": n, "level": level, "lo": float(lo), "hi": float(hi)})

out["mcnemar"] = []
for b, c in [(0, 0), (0, 1), (1, 0), (3, 3), (2, 9), (15, 4), (40, 60), (0, 25), (1000, 1100), (5000, 5321)]:
    r = mcnemar([[10, b], [c, 10]], exact=True)
    out["mcnemar"].append({"b": b, "c": c, "p": float(r.pvalue), "statistic": float(r.statistic)})

out["binom_half_cdf"] = [[k, n, float(scipy.stats.binom.cdf(k, n, 0.5))] for k, n in
                         [(0, 1), (3, 10), (5, 10), (480, 1000), (4900, 10000), (100, 1000)]]

base = rng.normal(size=29).round(6)
cand = (base + rng.normal(scale=0.3, size=29)).round(6)
d = cand - base
z = scipy.stats.norm.ppf(0.975)
se = d.std(ddof=1) / np.sqrt(len(d))
out["paired"] = {"base": base.tolist(), "cand": cand.tolist(), "mean": float(d.mean()), "stderr": float(se),
                 "ci95": [float(d.mean() - z * se), float(d.mean() + z * se)]}

out["kl"] = []
for v, scale in [(5, 1.0), (64, 3.0), (1000, 2.0)]:
    lb = rng.standard_t(2, size=v) * scale
    lc = lb + rng.normal(scale=0.5, size=v)
    lb = lb.astype(np.float32)
    lc = lc.astype(np.float32)
    lpb = scipy.special.log_softmax(lb.astype(np.float64))
    lpc = scipy.special.log_softmax(lc.astype(np.float64))
    kl = float(scipy.stats.entropy(np.exp(lpb), np.exp(lpc)))
    ref = int(rng.integers(v))
    out["kl"].append({"logits_base": lb.tolist(), "logits_cand": lc.tolist(), "kl": kl,
                      "log_softmax_base_first3": lpb[:3].tolist(), "ref": ref,
                      "delta_p": float(np.exp(lpc[ref]) - np.exp(lpb[ref])),
                      "same_top1": bool(np.argmax(lpb) == np.argmax(lpc))})

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "stats_golden.json")
with open(path, "w") as f:
    json.dump(out, f, indent=1)
    f.write("\n")
print("wrote", path)
