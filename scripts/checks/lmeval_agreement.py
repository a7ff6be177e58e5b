#!/usr/bin/env python3
"""Baseline multiple-choice accuracy by lm-evaluation-harness on the same items quantbench scores.

lm-eval cannot reach its data hub here, so this script writes lm-eval task YAMLs over local JSONL files
that carry exactly the context and continuation strings quantbench builds (arc_easy: the llm-foundry
query + "\\nAnswer:", continuations " " + choice; hellaswag: klosax's line, preprocessed as lm-eval's
hellaswag `preprocess` does). lm-eval then tokenizes, scores and aggregates with its own code
(`multiple_choice` output type: acc = argmax of summed log-likelihood, acc_norm = argmax of the sum
divided by the continuation's length in bytes... lm-eval divides by len(choice) in characters), and runs
the model through Hugging Face transformers loading the same GGUF (dequantized to float32).

  python3 scripts/checks/lmeval_agreement.py MODEL.gguf DATA_DIR --limit N [--tasks arc_easy,hellaswag]
Writes lmeval_agreement.json in the current directory (per task: acc, acc_norm, stderrs, per-item
predictions) and prints the summary. Compare with `quantbench eval ... --regimes multiple_choice`.
"""
import argparse
import json
import os
import re
import sys
import tempfile


def hellaswag_preprocess(text):
    # lm-eval tasks/hellaswag/utils.py: strip, " [title]" -> ". ", drop [tags], collapse double spaces.
    text = text.strip().replace(" [title]", ". ")
    text = re.sub("\\[.*?\\]", "", text)
    return text.replace("  ", " ")


def load_arc(data_dir, name, limit):
    rows = [json.loads(l) for l in open(os.path.join(data_dir, "llm_foundry_icl", f"{name}.jsonl"))]
    return [{"ctx": r["query"] + "\nAnswer:", "choices": r["choices"], "gold": r["gold"]} for r in rows[:limit]]


def load_hellaswag(data_dir, limit):
    lines = open(os.path.join(data_dir, "hellaswag", "hellaswag_val_full.txt"), encoding="utf-8").read().split("\n")
    out = []
    for t in range(min(limit, len(lines) // 6)):
        b = lines[t * 6:t * 6 + 6]
        out.append({"ctx": hellaswag_preprocess(b[0]), "choices": [hellaswag_preprocess(e) for e in b[2:6]],
                    "gold": int(b[1])})
    return out


TASK_YAML = """task: qb_{name}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {path}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{ctx}}}}"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: "{{{{gold}}}}"
target_delimiter: " "
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("data_dir")
    ap.add_argument("--limit", type=int, default=200)
    ap.add_argument("--tasks", default="arc_easy,hellaswag")
    ap.add_argument("--out", default="lmeval_agreement.json")
    a = ap.parse_args()
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    tmp = tempfile.mkdtemp(prefix="qb_lmeval_")
    names = a.tasks.split(",")
    for n in names:
        docs = load_hellaswag(a.data_dir, a.limit) if n == "hellaswag" else load_arc(a.data_dir, n, a.limit)
        path = os.path.join(tmp, f"{n}.jsonl")
        with open(path, "w") as f:
            for d in docs:
                f.write(json.dumps(d) + "\n")
        open(os.path.join(tmp, f"qb_{n}.yaml"), "w").write(TASK_YAML.format(name=n, path=path))
    model_dir, model_file = os.path.split(os.path.abspath(a.model))
    lm = HFLM(pretrained=model_dir, gguf_file=model_file, dtype="float32", batch_size=8, device="cpu")
    res = lm_eval.simple_evaluate(model=lm, tasks=[f"qb_{n}" for n in names], task_manager=TaskManager(include_path=tmp),
                                  log_samples=True, num_fewshot=0)
    out = {"lm_eval_version": lm_eval.__version__ if hasattr(lm_eval, "__version__") else "unknown",
           "model": a.model, "limit": a.limit, "tasks": {}}
    for n in names:
        r = res["results"][f"qb_{n}"]
        preds = []
        for s in sorted(res["samples"][f"qb_{n}"], key=lambda s: s["doc_id"]):
            ll = [x[0][0] for x in s["resps"]]
            preds.append({"doc_id": s["doc_id"], "loglik": ll, "acc": s["acc"], "acc_norm": s["acc_norm"]})
        out["tasks"][n] = {"acc": r["acc,none"], "acc_stderr": r["acc_stderr,none"], "acc_norm": r["acc_norm,none"],
                           "acc_norm_stderr": r["acc_norm_stderr,none"], "n": len(preds), "items": preds}
        print(f"{n}: n={len(preds)} acc={r['acc,none']:.4f}±{r['acc_stderr,none']:.4f} "
              f"acc_norm={r['acc_norm,none']:.4f}±{r['acc_norm_stderr,none']:.4f}")
    json.dump(out, open(a.out, "w"), indent=1)


if __name__ == "__main__":
    sys.exit(main())
