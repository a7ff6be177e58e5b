#!/usr/bin/env python3
"""Compares two `quantbench eval` JSON files of the same inputs run on different backends (--backend cpu
and --backend cuda): per regime the headline metrics side by side with their relative difference, and the
manifest fields that differ (they must: backend, hardware, toolchain). Fails (exit 1) where a perplexity
differs by more than its tolerance, where the runs' items differ, or where the CUDA run's manifest does not
name its GPU and CUDA runtime.

A perplexity's tolerance is --ppl-rtol (1e-3), or twice the largest floor where that is larger. A floor is
the relative difference between two runs that differ by one change that should not matter: with --floor
FLOOR.json, the CPU run and FLOOR.json, the CPU run again with, for instance, an f16 KV cache for its f32 one
(ab.sh's EVAL_FLOOR_KV); with --floor-pair A.json B.json (repeatable), A and B, for instance the CUDA run and
the CUDA run again with its prefill in chunks of 7 tokens, which sums the same products in another order
(ab.sh's EVAL_FLOOR_GPU_ENV). Each floor is printed beside the tolerance it gives.
Where activations are quantized per token at run time (W8A8), a last-bit difference upstream flips codes
at rounding ties and moves a small model's perplexity by more than 1e-3: on stories260K's W8A8 models the
CPU against itself with an f16 cache differs by up to 2.3e-3 (docs/perf.md, session 29). This is the
backend check's flip floor (tests/cuda/backend_check/model_vs_cpu.cpp, run_model: limit 2x the floor) applied to eval.

Usage: eval_backends.py CPU.json CUDA.json [--ppl-rtol 1e-3] [--floor FLOOR.json] [--floor-pair A.json B.json]..."""
import argparse
import json
import sys

HEADLINE = {
    "perplexity": ["baseline_ppl", "candidate_ppl", "kld_mean", "kld_p99", "same_top1"],
    "multiple_choice": ["baseline_acc", "candidate_acc", "baseline_acc_norm", "candidate_acc_norm", "flips_total"],
    "generation": ["identical_output_rate", "first_divergence_mean", "tf_kld_mean", "tf_agreement", "chrf"],
}


def metrics(result):
    return {m["name"]: m["value"] for m in result.get("metrics", [])}


def value(field):
    return field.get("value") if isinstance(field, dict) else field


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cpu")
    ap.add_argument("cuda")
    ap.add_argument("--ppl-rtol", type=float, default=1e-3)
    ap.add_argument("--floor", help="the CPU run again with one change that should not matter (see above)")
    ap.add_argument("--floor-pair", nargs=2, action="append", default=[], metavar=("A", "B"),
                    help="two runs that differ by one change that should not matter (see above); repeatable")
    a = ap.parse_args()
    try:
        cpu, gpu = (json.load(open(p)) for p in (a.cpu, a.cuda))
        # each floor as (label, run x, run y): None for x stands for the CPU run
        pairs = [("cpu / " + a.floor, None, json.load(open(a.floor)))] if a.floor else []
        pairs += [(f"{x} / {y}", json.load(open(x)), json.load(open(y))) for x, y in a.floor_pair]
    except (OSError, ValueError) as e:
        print(f"FAILED: {e}")
        return 1
    bad = []
    for regime, results in cpu["regimes"].items():
        for i, (rc, rg) in enumerate(zip(results, gpu["regimes"].get(regime, []))):
            task = value(rc["manifest"].get("harness.task", ""))
            mc, mg = metrics(rc), metrics(rg)

            def floor_metrics(run):  # the floor run's result i of this regime, as {name: value}
                rs = run["regimes"].get(regime, [])
                return metrics(rs[i]) if i < len(rs) else {}

            floors = [(label, mc if x is None else floor_metrics(x), floor_metrics(y)) for label, x, y in pairs]
            print(f"{regime} {task}: {len(rc.get('items', []))} items (cpu) / {len(rg.get('items', []))} (cuda)")
            if len(rc.get("items", [])) != len(rg.get("items", [])):
                bad.append(f"{regime} {task}: item counts differ")
            names = [n for n in HEADLINE.get(regime, []) if n in mc] or sorted(mc)[:6]
            for n in names:
                c, g = mc[n], mg.get(n)
                rel = abs(g - c) / abs(c) if isinstance(g, (int, float)) and c else float("nan")
                print(f"  {n:26s} cpu {c:14.6g}  cuda {g if g is None else format(g, '14.6g')}  rel diff {rel:.2e}")
                if regime == "perplexity" and n.endswith("_ppl"):
                    tol = a.ppl_rtol
                    missing = False
                    for label, fx, fy in floors:
                        x, y = fx.get(n), fy.get(n)
                        if not all(isinstance(v, (int, float)) and v for v in (x, y)):
                            bad.append(f"{task} {n}: a floor run has no value ({label})")
                            missing = True
                            continue
                        f = abs(y - x) / abs(x)
                        tol = max(tol, 2 * f)
                        print(f"  {'':26s} floor {f:.2e} ({label}: {x:.6g} / {y:.6g})  tolerance {tol:.2e}")
                    if missing:
                        continue
                    if not rel <= tol:
                        bad.append(f"{task} {n}: cpu {c} cuda {g} (rel {rel:.2e} > {tol:.2e})")
            differ = [k for k in sorted(set(rc["manifest"]) | set(rg["manifest"]))
                      if value(rc["manifest"].get(k)) != value(rg["manifest"].get(k))]
            print("  manifest fields that differ:", ", ".join(differ))
            gpu_name = str(value(rg["manifest"].get("hardware.gpu", "")))
            cuda_rt = str(value(rg["manifest"].get("toolchain.cuda", "")))
            print(f"  cuda run: hardware.gpu = {gpu_name[:100]}; toolchain.cuda = {cuda_rt[:100]}")
            print(f"  cuda run: toolchain.backend = {str(value(rg['manifest'].get('toolchain.backend', '')))[:160]}")
            if "NVIDIA" not in gpu_name or "runtime" not in cuda_rt:
                bad.append(f"{regime} {task}: the cuda run's manifest does not name its GPU and CUDA runtime")
    for b in bad:
        print("FAIL", b)
    print("PASSED" if not bad else "FAILED")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
