#!/usr/bin/env python3
"""Compares two `quantbench eval` JSON files of the same inputs run on different backends (--backend cpu
and --backend cuda): per regime the headline metrics side by side with their relative difference, and the
manifest fields that differ (they must: backend, hardware, toolchain). Fails (exit 1) where a perplexity
differs by more than its tolerance, where the runs' items differ, or where the CUDA run's manifest does not
name its GPU and CUDA runtime.

A perplexity's tolerance is --ppl-rtol (1e-3), or, with --floor FLOOR.json, twice the relative difference
between the CPU run and FLOOR.json where that is larger. FLOOR.json is the CPU run again with one change
that should not matter, by one rounding, such as an f16 KV cache for its f32 one (ab.sh's EVAL_FLOOR_KV).
Where activations are quantized per token at run time (W8A8), a last-bit difference upstream flips codes
at rounding ties and moves a small model's perplexity by more than 1e-3: on stories260K's W8A8 models the
CPU against itself with an f16 cache differs by up to 2.3e-3 (docs/perf.md, session 29). This is the
backend check's flip floor (tests/cuda/backend_check/model_vs_cpu.cpp, run_model: limit 2x the floor) applied to eval.

Usage: eval_backends.py CPU.json CUDA.json [--ppl-rtol 1e-3] [--floor FLOOR.json]"""
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
    a = ap.parse_args()
    try:
        cpu, gpu = (json.load(open(p)) for p in (a.cpu, a.cuda))
        floor = json.load(open(a.floor)) if a.floor else None
    except (OSError, ValueError) as e:
        print(f"FAILED: {e}")
        return 1
    bad = []
    for regime, results in cpu["regimes"].items():
        floors = floor["regimes"].get(regime, []) if floor else []
        for i, (rc, rg) in enumerate(zip(results, gpu["regimes"].get(regime, []))):
            task = value(rc["manifest"].get("harness.task", ""))
            mc, mg = metrics(rc), metrics(rg)
            mf = metrics(floors[i]) if i < len(floors) else {}
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
                    if floor is not None:
                        f = mf.get(n)
                        if not isinstance(f, (int, float)) or not c:
                            bad.append(f"{task} {n}: the floor run has no value")
                            continue
                        tol = max(tol, 2 * abs(f - c) / abs(c))
                        print(f"  {'':26s} floor run {f:14.6g}  rel diff {abs(f - c) / abs(c):.2e}  tolerance {tol:.2e}")
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
