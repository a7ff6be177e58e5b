#!/usr/bin/env python3
"""Markdown tables of the headline metrics of a run, from `quantbench runs show RUN --json OUT`
(schema quantbench.run/1): one table per regime, a row per (task, candidate), each value with its 95%
interval where the result has one. Used for docs/findings.md.
Usage: python3 scripts/checks/findings_tables.py RUN.json"""
import json
import sys

COLUMNS = {
    "perplexity": ["baseline_ppl", "candidate_ppl", "kld_mean", "kld_p99", "kld_max", "same_top1", "delta_p_p1"],
    "multiple_choice": ["baseline_acc", "candidate_acc", "acc_difference", "acc_flips_correct_to_wrong",
                        "acc_flips_wrong_to_correct", "acc_mcnemar_exact_p", "answer_changed_rate"],
    "generation": ["first_divergence_mean", "first_divergence_median", "identical_rate", "rouge_l", "chrf",
                   "tf_kld_mean", "tf_agreement"],
    "workload": ["first_divergence_mean", "identical_rate", "rouge_l", "chrf", "tf_kld_mean", "tf_agreement"],
    "code": ["baseline_pass_at_1", "candidate_pass_at_1", "pass_at_1_difference", "flips_pass_to_fail",
             "flips_fail_to_pass", "identical_completion_rate"],
    "bench": ["decode_speedup", "b1_decode_speedup", "b4_decode_speedup"],
}


def fmt(m):
    v = m["value"]
    s = f"{v:.4g}"
    i = m.get("interval")
    if i and "lo" in i and "hi" in i:
        s += f" [{i['lo']:.3g}, {i['hi']:.3g}]"
    return s


def main():
    run = json.load(open(sys.argv[1]))
    print(f"run {run['run']['id']} ({run['run']['status']})\n")
    by_regime = {}
    for r in run["results"]:
        by_regime.setdefault(r["regime"], []).append(r)
    for regime, results in by_regime.items():
        names = COLUMNS.get(regime)
        present = set()
        for r in results:
            present.update(m["name"] for m in r["metrics"])
        cols = [c for c in (names or sorted(present)) if c in present]
        print(f"### {regime}\n")
        print("| task | candidate | " + " | ".join(cols) + " |")
        print("|---|---|" + "---|" * len(cols))
        for r in results:
            ms = {m["name"]: m for m in r["metrics"]}
            cells = [fmt(ms[c]) if c in ms else "" for c in cols]
            print(f"| {r['task']} | {r['candidate']} | " + " | ".join(cells) + " |")
        print()


if __name__ == "__main__":
    main()
