#!/usr/bin/env python3
"""run.sh's last step: the table of its benchmarks, then issue #6's done-when judged from that run alone.

Reads BENCH_DIR/bench_NAME.json (`quantbench bench --json`, NAME as run.sh names its runs: w4g128, w4g128a, w4g32m,
q4_k_m, w8, bf16, pp512_bf16, pp512_w4g128), merges them into OUT_DIR/bench_all.json, and prints
- the decode table: tok/s, bytes per step, the same-run copy probe, the share of the roofline (and of the roofline of
  the bytes the model stores, where the GPU reads a wider packed form);
- w4g128 against bf16 at 16 streams, and the prefill rates;
- the targets: each measured share against its target, "met", "NOT met" or "missing" (no run), with the peer's figure
  from ../shared/GPU.md beside it; then whether the kernel checks and the backend check passed (their exit codes, or
  "not run"), and from OUT_DIR/backend_check.log how many GPU/CPU comparisons passed on the flip floor instead of the
  issue's 1e-4.

Usage: summarize.py BENCH_DIR OUT_DIR TESTS_RC CHECK_RC CARD   (RC: an exit code, or "not run"; CARD: a line naming the
GPU). Tested by tests/bench/gpu_summary_test.cpp."""
import glob
import json
import os
import re
import sys

# Issue #6's done-when (stated for an H100). The peer is llama.cpp on an H100 (../shared/GPU.md): decode at one
# stream at 30% of its roofline at 4 bits (Q4_0, Q4_K_M) and 47% at 8 bits (Q8_0); at 16 streams its 4-bit model runs
# 1.0-1.08x F16's tokens per second.
DECODE_TARGETS = [  # (label, run, streams, target, peer)
    ("decode w4g128, one stream", "w4g128", 1, 0.75, "peer 30% (Q4_0, Q4_K_M)"),
    ("decode w8, one stream", "w8", 1, 0.75, "peer 47% (Q8_0)"),
    ("decode bf16, one stream", "bf16", 1, 0.75, ""),
    ("decode w4g128, 16 streams, f16 KV", "w4g128", 16, 0.70, "peer: 4-bit / F16 1.0-1.08x"),
]
PREFILL_OF_GEMM, PREFILL_W4_OF_BF16 = 0.60, 0.85
KL_LIMIT = 1e-4


def main(argv):
    if len(argv) != 6:
        print("usage: summarize.py BENCH_DIR OUT_DIR TESTS_RC CHECK_RC CARD", file=sys.stderr)
        return 2
    bench_dir, out_dir, tests_rc, check_rc, card = argv[1:]
    runs = {}
    for p in sorted(glob.glob(os.path.join(bench_dir, "bench_*.json"))):
        try:
            runs[os.path.basename(p)[len("bench_"):-len(".json")]] = json.load(open(p))
        except (OSError, ValueError) as e:
            print(f"summarize.py: {p}: {e}", file=sys.stderr)
            return 1
    with open(os.path.join(out_dir, "bench_all.json"), "w") as f:
        json.dump({f"bench_{n}.json": j for n, j in runs.items()}, f, indent=1)

    def metric(j, name):
        return next((m["value"] for m in j.get("metrics", []) if m["name"] == name), None)

    def item(n, streams):
        return next((it for it in runs.get(n, {}).get("items", []) if it["batch"] == streams), None)

    print("\nsynthetic:llama2-7b, 128-token prompt; roofline = copy probe / (weights+scales+zeros + f16 KV read per step)")
    print("(stored: the same share with the weights counted as the model stores them, where the GPU's packed form is wider)")
    print(f"{'scheme':8} {'streams':>7} {'decode tok/s':>13} {'GB/step':>8} {'copy GB/s':>9} {'roofline':>8} {'stored':>7}")
    for n in ["w4g128", "w4g128a", "w4g32m", "q4_k_m", "w8", "bf16"]:
        j = runs.get(n)
        if not j:
            print(f"{n:8} (missing)")
            continue
        for it in j["items"]:
            share = it["roofline_share"]
            stored = it.get("roofline_share_stored", share)
            print(f"{n:8} {it['batch']:>7} {it['decode_tok_s']:>13.1f} {it['bytes_per_step']['total'] / 1e9:>8.3f} "
                  f"{metric(j, 'bandwidth_copy_gbps'):>9.0f} {100 * share:>7.1f}% "
                  + (f"{100 * stored:>6.1f}%" if abs(stored - share) > 1e-9 else f"{'same':>7}"))
    w16, b16 = item("w4g128", 16), item("bf16", 16)
    if w16 and b16:
        print(f"16 streams: w4g128 / bf16 = {w16['decode_tok_s'] / b16['decode_tok_s']:.2f}x (peer llama.cpp: 1.0-1.08x)")
    pb, pw = runs.get("pp512_bf16"), runs.get("pp512_w4g128")
    of_gemm = w4_of_bf16 = None
    if pb and metric(pb, "prefill_tflops") and metric(pb, "gemm_bf16_tflops"):
        of_gemm = metric(pb, "prefill_tflops") / metric(pb, "gemm_bf16_tflops")
        print(f"prefill 512 bf16: {pb['items'][0]['prefill_tok_s']:.0f} tok/s, {metric(pb, 'prefill_tflops'):.0f} TFLOP/s = "
              f"{100 * of_gemm:.0f}% of same-run cuBLAS bf16 {metric(pb, 'gemm_bf16_tflops'):.0f} TFLOP/s")
    if pb and pw:
        w4_of_bf16 = pw["items"][0]["prefill_tok_s"] / pb["items"][0]["prefill_tok_s"]
        print(f"prefill 512 w4g128: {pw['items'][0]['prefill_tok_s']:.0f} tok/s = {100 * w4_of_bf16:.0f}% of bf16 "
              "(separate processes, same card)")

    rows = [(label, (item(n, s) or {}).get("roofline_share"), target, peer)
            for label, n, s, target, peer in DECODE_TARGETS]
    rows.append(("prefill 512 bf16 / same-run cuBLAS GEMM", of_gemm, PREFILL_OF_GEMM, ""))
    rows.append(("prefill 512 w4g128 / bf16", w4_of_bf16, PREFILL_W4_OF_BF16, ""))
    print(f"\nissue #6 targets (stated for an H100; this card: {card})")
    for label, got, target, peer in rows:
        verdict = "missing" if got is None else ("met" if got >= target else "NOT met")
        got_s = "-" if got is None else f"{100 * got:.1f}%"
        print(f"  {label:42} {got_s:>7}  target {100 * target:.0f}%  {verdict:8} {peer}".rstrip())
    for label, rc in (("kernel checks (qb_cuda_tests)", tests_rc), ("GPU against CPU (qb_cuda_backend_check)", check_rc)):
        state = "not run (--no-tests)" if rc == "not run" else "passed" if rc == "0" else f"FAILED (rc {rc})"
        print(f"  {label:42} {state}")
    log = os.path.join(out_dir, "backend_check.log")
    if check_rc != "not run" and os.path.exists(log):  # how many rows rest on the flip floor, not on the 1e-4
        kl = [float(m.group(1)) for line in open(log, errors="replace") if line.startswith(("PASS ", "FAIL "))
              for m in [re.search(r" mean KL ([0-9.]+(?:e[-+]?[0-9]+)?) ", line)] if m]
        print(f"  {len(kl)} GPU/CPU next-token comparisons; {sum(k >= KL_LIMIT for k in kl)} at mean KL >= 1e-4, each "
              "held instead to 2x its one-ulp flip floor (run-time-quantized KV caches or activations, the optional "
              "FP8 tensor cores: backend_check.log)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
