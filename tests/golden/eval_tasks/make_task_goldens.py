#!/usr/bin/env python3
"""Golden values for tests/eval/knowledge_tasks_test.cpp and math_task_test.cpp, made independently
of our C++:

* prompts.json: contexts and continuations rendered with jinja2 from the task YAMLs inside the
  lm-evaluation-harness 0.4.13 wheel (pip download lm-eval==0.4.13 --no-deps), joined the way its
  Task.fewshot_context/build_qa_turn do (description; per shot text + target_delimiter + answer +
  fewshot_delimiter; then the test text), over the vendored slices in data/eval;
* python_random.json: CPython's random.Random(1234) draws (getrandbits, sample) and lm-eval's GSM8K
  few-shot draws (one Random(1234), sample(train, 5) per test doc);
* scoring.json: TruthfulQA mc2 by lm-eval's process_results_mc2 on hand-made log-likelihoods, and
  MGSM/GSM8K exact_match by lm-eval's exact_match_hf_evaluate logic (numpy) on hand-made responses.

usage: python3 make_task_goldens.py LM_EVAL_WHEEL   (run from the repository root)
"""
import json
import random
import re
import string
import sys
import zipfile

import jinja2
import numpy as np
import yaml

WHEEL = sys.argv[1]
OUT = "tests/golden/eval_tasks/"
DATA = "data/eval/"
zf = zipfile.ZipFile(WHEEL)


class Loader(yaml.SafeLoader):
    pass


Loader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))


def task_yaml(path):
    return yaml.load(zf.read("lm_eval/tasks/" + path).decode("utf-8"), Loader=Loader)


env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)


def render(template, doc):
    return env.from_string(template).render(**doc)


def read_csv(path):
    import csv
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))[1:]
    return [{"question": r[0], "choices": r[1:5], "answer": int(r[5])} for r in rows]


prompts = {}

# MMLU (default): description + first_n dev shots + test text; choices " A".." D".
mmlu_t = task_yaml("mmlu/default/_default_template_yaml")
for subject in ["abstract_algebra", "world_religions"]:
    desc = task_yaml(f"mmlu/default/mmlu_{subject}.yaml")["description"]
    dev = read_csv(f"{DATA}mmlu/dev/{subject}_dev.csv")
    test = read_csv(f"{DATA}mmlu/test/{subject}_test.csv")
    for shots in (0, 5):
        ctx = desc
        for d in dev[:shots]:
            ctx += render(mmlu_t["doc_to_text"], d) + " " + mmlu_t["doc_to_choice"][d["answer"]] + "\n\n"
        ctx += render(mmlu_t["doc_to_text"], test[1])
        prompts[f"mmlu_{shots}shot_{subject}_1"] = {
            "context": ctx, "continuations": [" " + c for c in mmlu_t["doc_to_choice"]], "gold": test[1]["answer"]}

# TruthfulQA mc1 / mc2: the preamble is inside doc_to_text; 0-shot.
tqa = json.load(open(f"{DATA}truthfulqa/en.validation.json", encoding="utf-8"))
mc1 = task_yaml("truthfulqa/truthfulqa_mc1.yaml")
mc2 = task_yaml("truthfulqa/truthfulqa_mc2.yaml")
assert mc2["include"] == "truthfulqa_mc1.yaml" and "doc_to_text" not in mc2
for i in (0, 3):
    doc = tqa[i]
    prompts[f"truthfulqa_mc1_{i}"] = {
        "context": render(mc1["doc_to_text"], doc),
        "continuations": [" " + c for c in doc["mc1_targets"]["choices"]], "gold": 0}
    prompts[f"truthfulqa_mc2_{i}"] = {
        "context": render(mc1["doc_to_text"], doc),
        "continuations": [" " + c for c in doc["mc2_targets"]["choices"]],
        "n_true": doc["mc2_targets"]["labels"].index(0)}

# LAMBADA (openai): the llm-foundry row's context + " " + word is lm-eval's `text`.
lam = task_yaml("lambada/lambada_openai.yaml")
with open(f"{DATA}llm_foundry_icl/lambada_openai.jsonl", encoding="utf-8") as f:
    rows = [json.loads(l) for l in f if l.strip()]
for i in (0, 7):
    text = rows[i]["context"] + " " + rows[i]["continuation"]
    prompts[f"lambada_openai_{i}"] = {
        "context": render(lam["doc_to_text"], {"text": text}),
        "continuations": [render(lam["doc_to_target"], {"text": text})]}

# GSM8K: 5 shots by the default sampler; fewshot target_delimiter " ", fewshot_delimiter "\n\n".
g = task_yaml("gsm8k/gsm8k.yaml")
assert g["num_fewshot"] == 5 and g["fewshot_split"] == "train" and "fewshot_config" not in g
with open(f"{DATA}gsm8k/test.jsonl", encoding="utf-8") as f:
    gtest = [json.loads(l) for l in f if l.strip()]
train_rows = {}
with open(f"{DATA}gsm8k/train_fewshot.jsonl", encoding="utf-8") as f:
    for l in f:
        if l.strip():
            r = json.loads(l)
            train_rows[r.pop("train_row")] = r
rnd = random.Random(1234)
gsm_draws = [rnd.sample(list(range(7473)), 5) for _ in range(len(gtest))]
for i in (0, 2):
    ctx = ""
    for r in gsm_draws[i]:
        ctx += render(g["doc_to_text"], train_rows[r]) + " " + render(g["doc_to_target"], train_rows[r]) + "\n\n"
    ctx += render(g["doc_to_text"], gtest[i])
    prompts[f"gsm8k_{i}"] = {"context": ctx, "until": g["generation_kwargs"]["until"],
                             "target": render(g["doc_to_target"], gtest[i])}

# MGSM direct: the test docs have answer None, so the "else" branch of doc_to_text renders.
for lang in ["de", "zh", "fr", "bn"]:
    y = task_yaml(f"mgsm/direct/mgsm_direct_{lang}.yaml")
    with open(f"{DATA}mgsm/mgsm_{lang}.tsv", encoding="utf-8") as f:
        q, a = f.readline().rstrip("\n").split("\t")
    doc = {"question": q, "answer": None, "answer_number": int(a.replace(",", ""))}
    prompts[f"mgsm_direct_{lang}_0"] = {"context": render(y["doc_to_text"], doc), "until": y["generation_kwargs"]["until"],
                                        "target": render(y["doc_to_target"], doc)}

with open(OUT + "prompts.json", "w", encoding="utf-8") as f:
    json.dump(prompts, f, ensure_ascii=False, indent=1, sort_keys=True)
    f.write("\n")

# CPython's random.
r = random.Random(1234)
bits = [r.getrandbits(32) for _ in range(8)]
r = random.Random(1234)
small_bits = [r.getrandbits(k) for k in (1, 5, 13, 31)]
r = random.Random(7)
samples = {"pool_10_3": r.sample(range(10), 3), "set_7473_5": r.sample(range(7473), 5),
           "big_100_10": r.sample(range(100), 10), "set_1000_12": r.sample(range(1000), 12)}
with open(OUT + "python_random.json", "w") as f:
    json.dump({"seed1234_getrandbits32": bits, "seed1234_getrandbits_1_5_13_31": small_bits,
               "seed7_samples": samples, "gsm8k_draws": gsm_draws[:6]}, f, indent=1)
    f.write("\n")


# Scoring: mc2 (lm-eval utils.process_results_mc2) and exact_match (api/metrics.exact_match_hf_evaluate).
def mc2(labels, lls):
    split_idx = list(labels).index(0)
    ll_true, ll_false = lls[:split_idx], lls[split_idx:]
    p_true, p_false = np.exp(np.array(ll_true)), np.exp(np.array(ll_false))
    p_true = p_true / (sum(p_true) + sum(p_false))
    return float(sum(p_true))


mc2_cases = [
    {"labels": [1, 0], "lls": [-1.0, -2.0]},
    {"labels": [1, 1, 0, 0, 0], "lls": [-3.5, -7.25, -2.0, -9.0, -4.125]},
    {"labels": [1, 1, 1, 0], "lls": [-20.0, -21.5, -19.0, -18.75]},
]
for c in mc2_cases:
    c["mc2"] = mc2(c["labels"], c["lls"])


def exact_match(pred, ref, regexes_to_ignore=None, ignore_case=False, ignore_punctuation=False):
    predictions, references = [pred], [ref]
    if regexes_to_ignore is not None:
        for s in regexes_to_ignore:
            predictions = np.array([re.sub(s, "", x) for x in predictions])
            references = np.array([re.sub(s, "", x) for x in references])
    else:
        predictions, references = np.asarray(predictions), np.asarray(references)
    if ignore_case:
        predictions, references = np.char.lower(predictions), np.char.lower(references)
    if ignore_punctuation:
        table = string.punctuation.maketrans("", "", string.punctuation)
        predictions = np.char.translate(predictions, table=table)
        references = np.char.translate(references, table=table)
    return bool((predictions == references)[0])


def regex_filter(resp, pattern, group_select):
    m = re.compile(pattern).findall(resp)
    if not m:
        return "[invalid]"
    m = m[group_select]
    if isinstance(m, tuple):
        m = [x for x in m if x]
        m = m[0] if m else "[invalid]"
    return m.strip()


mgsm_y = task_yaml("mgsm/direct/direct_yaml")
flex = [f for f in mgsm_y["filter_list"] if f["name"] == "flexible-extract"][0]["filter"][0]
mgsm_metric = mgsm_y["metric_list"][0]
mgsm_cases = []
for resp, target in [(" 18", "18"), (" 18.", "18"), ("Die Antwort ist 18 Euro", "18"), (" 2,125", "2125"),
                     (" -5", "5"), ("\n 42\n", "42"), ("keine Ahnung", "7"), (" 3.5 und 7", "7"), (" $1,000", "1000")]:
    strict = resp.strip()
    fl = regex_filter(resp, flex["regex_pattern"], flex["group_select"])
    kw = dict(ignore_case=mgsm_metric["ignore_case"], ignore_punctuation=mgsm_metric["ignore_punctuation"])
    mgsm_cases.append({"response": resp, "target": target, "strict": strict, "flexible": fl,
                       "strict_ok": exact_match(strict, target, **kw), "flexible_ok": exact_match(fl, target, **kw)})

gsm_metric = g["metric_list"][0]
gf = {f["name"]: f["filter"][0] for f in g["filter_list"]}
gsm_cases = []
target = gtest[0]["answer"]
for resp in [" She sells 9 eggs.\n#### 18", " 9 * 2 = $18.", " #### 18.00", " The answer is 1,8", " 16 - 3 - 4 = 9 so 9*2=18\n#### 18\nQuestion:"]:
    st = regex_filter(resp, gf["strict-match"]["regex_pattern"], gf["strict-match"].get("group_select", 0))
    fl = regex_filter(resp, gf["flexible-extract"]["regex_pattern"], gf["flexible-extract"]["group_select"])
    kw = dict(regexes_to_ignore=gsm_metric["regexes_to_ignore"], ignore_case=gsm_metric["ignore_case"],
              ignore_punctuation=gsm_metric["ignore_punctuation"])
    gsm_cases.append({"response": resp, "target": target, "strict": st, "flexible": fl,
                      "strict_ok": exact_match(st, target, **kw), "flexible_ok": exact_match(fl, target, **kw)})

with open(OUT + "scoring.json", "w", encoding="utf-8") as f:
    json.dump({"mc2": mc2_cases, "mgsm": mgsm_cases, "gsm8k": gsm_cases}, f, ensure_ascii=False, indent=1)
    f.write("\n")
print("wrote", OUT + "prompts.json", OUT + "python_random.json", OUT + "scoring.json")
