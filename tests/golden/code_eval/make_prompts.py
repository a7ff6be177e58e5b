#!/usr/bin/env python3
# Golden prompts, test programs and stop-sequence truncations for tests/eval/code_tasks_test.cpp,
# produced by lm-evaluation-harness 0.4.13's own task files, independently of our C++:
#   - the YAMLs (tasks/humaneval/humaneval.yaml, tasks/mbpp/mbpp.yaml) are read from the lm_eval wheel
#     and their doc_to_text / doc_to_target templates rendered with jinja2 configured as lm_eval/utils.py
#     does (StrictUndefined, keep_trailing_newline=True);
#   - MBPP's few-shot docs come from utils.list_fewshot_samples (read from the wheel's source with ast,
#     since importing it needs HF evaluate), joined as api/task.py build_qa_turn does:
#     q + target_delimiter + a + fewshot_delimiter per shot, then the eval doc's q;
#   - programs are built as utils.build_predictions + HF code_eval do: prediction + "\n" + reference;
#   - truncation is lm-eval's HF generate_until post-processing: for term in until: s = s.split(term)[0].
# Usage: pip download lm_eval==0.4.13 --no-deps; python3 make_prompts.py lm_eval-0.4.13-py3-none-any.whl
import ast, io, json, os, sys, zipfile
import jinja2, yaml

whl = zipfile.ZipFile(sys.argv[1])
here = os.path.dirname(os.path.abspath(__file__))
repo = os.path.abspath(os.path.join(here, "..", "..", ".."))

class Loader(yaml.SafeLoader):
    pass
Loader.add_multi_constructor("!", lambda loader, suffix, node: None)

def task_yaml(path):
    return yaml.load(whl.read(path).decode(), Loader=Loader)

env = jinja2.Environment(loader=jinja2.BaseLoader, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
def render(t, doc):
    return env.from_string(t).render(**doc)

def lm_eval_truncate(s, until):
    for term in until:
        if len(term) > 0:
            s = s.split(term)[0]
    return s

def lines(path):
    return [json.loads(l) for l in open(os.path.join(repo, path), encoding="utf-8") if l.strip()]

out = {"lm_eval": os.path.basename(sys.argv[1])}

he = task_yaml("lm_eval/tasks/humaneval/humaneval.yaml")
assert he["num_fewshot"] == 0 and he["generation_kwargs"]["do_sample"] is False
items = []
for doc in lines("data/eval/humaneval/HumanEval.jsonl")[:3]:
    prompt = render(he["doc_to_text"], doc)
    ref = render(he["doc_to_target"], doc)
    items.append({"task_id": doc["task_id"], "prompt": prompt,
                  "canonical_program": doc["prompt"] + doc["canonical_solution"] + "\n" + ref})
out["humaneval"] = {"until": he["generation_kwargs"]["until"], "max_gen_toks": he["generation_kwargs"]["max_gen_toks"],
                    "items": items}

mb = task_yaml("lm_eval/tasks/mbpp/mbpp.yaml")
src = whl.read("lm_eval/tasks/mbpp/utils.py").decode()
fn = next(n for n in ast.parse(src).body if isinstance(n, ast.FunctionDef) and n.name == "list_fewshot_samples")
shots = ast.literal_eval(fn.body[-1].value)
tgt_delim = mb.get("target_delimiter", " ")
few_delim = mb.get("fewshot_delimiter", "\n\n")
assert mb["num_fewshot"] == 3 and mb["fewshot_config"]["sampler"] == "first_n"
ctx = "".join(render(mb["doc_to_text"], d) + tgt_delim + render(mb["doc_to_target"], d) + few_delim for d in shots[:3])
items = []
for doc in [d for d in lines("data/eval/mbpp/mbpp.jsonl") if 11 <= d["task_id"] <= 510][:3]:
    prompt = ctx + render(mb["doc_to_text"], doc)
    ref = render(mb["doc_to_target"], doc)
    items.append({"task_id": "mbpp/%d" % doc["task_id"], "prompt": prompt,
                  "canonical_program": doc["code"] + "\n" + ref})
out["mbpp"] = {"until": mb["generation_kwargs"]["until"], "max_gen_toks": 256, "items": items}

samples = ["    return x\n\ndef other():\n    pass", "    y = 1\n    # comment\n", "  a\nif __name__:\nclass X",
           "no stop at all", "x\nprinted\nprint(1)", "code\n[DONE]\nmore [DONE]", "[DONE]", "\n#\ndef"]
out["truncation"] = [{"text": s, "until": u, "expected": lm_eval_truncate(s, u)}
                     for s in samples for u in (out["humaneval"]["until"], out["mbpp"]["until"])]

with open(os.path.join(here, "prompts.json"), "w", encoding="utf-8") as f:
    json.dump(out, f, indent=1, ensure_ascii=False)
    f.write("\n")
print("wrote", os.path.join(here, "prompts.json"))
