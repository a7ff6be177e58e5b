#!/usr/bin/env bash
# GPU machine, from the folder bench/gpu/stage.sh filled (.gpu_stage): runs the CUDA kernel checks
# (qgemv, dequantize, activation packing vs float64 / bit-exact references), the CUDA backend vs the CPU
# reference on every staged model, then the issue's benchmarks on synthetic:llama2-7b (weights made on
# the GPU), each with its same-run copy probe and cuBLAS GEMM rate; prints a table last, then issue #6's
# targets judged from this run alone. Before the benchmarks, a profiled pass (QB_CUDA_PROFILE=1) gives the
# GPU time per kernel class. Logs and JSON go to $OUT (or ./out). On an H200 the whole run takes about 4 minutes.
# Usage: bash run.sh [--no-tests] [--no-bench] [--no-profile] [--quick]
set -uo pipefail
cd "$(dirname "$0")"
OUT=${OUT:-$PWD/out}; mkdir -p "$OUT"
# stage.sh gzips the binaries, libraries and models (the device tool's carry is limited to 64 MiB)
gunzip -f ./*.gz lib/*.gz models/*.gz 2>/dev/null; chmod +x quantbench* qb_* 2>/dev/null
export LD_LIBRARY_PATH=$PWD/lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
TESTS=1; BENCH=1; QUICK=0; PROFILE=1
for a in "$@"; do case $a in --no-tests) TESTS=0 ;; --no-bench) BENCH=0 ;; --quick) QUICK=1 ;; --no-profile) PROFILE=0 ;; esac; done
{ date -u; nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader; cat GIT_COMMIT; } | tee "$OUT/env.txt"
rc=0
TESTS_RC="not run"; CHECK_RC="not run"  # for the targets block at the end
if [ $TESTS = 1 ]; then
  bash make_models.sh || { echo "make_models.sh failed"; exit 1; }  # the quantized test models, made here
  t0=$(date +%s)
  timeout 300 ./qb_cuda_tests > "$OUT/qgemv_check.log" 2>&1; r=$?
  echo "qgemv_check rc $r ($(( $(date +%s) - t0 )) s)"; grep -E "^(FAIL|PASSED|FAILED|seed|time)" "$OUT/qgemv_check.log" | head -12
  [ $r = 0 ] || rc=1; TESTS_RC=$r
  t0=$(date +%s)
  timeout 300 ./qb_cuda_backend_check models/*.gguf > "$OUT/backend_check.log" 2>&1; r=$?
  echo "backend_check rc $r ($(( $(date +%s) - t0 )) s)"; grep -E "^(FAIL|PASS|INFO|FAILED|PASSED)" "$OUT/backend_check.log" | cut -c1-230
  [ $r = 0 ] || rc=1; CHECK_RC=$r
fi
[ $BENCH = 1 ] || exit $rc
GEN=128; [ $QUICK = 1 ] && GEN=32
B=$OUT/b; mkdir -p "$B"  # per-run files, merged below (the device tool returns only a few files)
if [ $PROFILE = 1 ]; then  # GPU time per kernel class (QB_CUDA_PROFILE=1: no graphs, not the bench's timings)
  for s in w4g128 w8 bf16; do
    QB_CUDA_PROFILE=1 timeout 120 ./quantbench bench synthetic:llama2-7b --backend cuda --scheme $s --batch 1,16 \
      --prompt-len 128 --gen-len 16 --reps 1 --warmup 1 --no-progress > "$B/prof_$s.log" 2>&1
    echo "== profile $s (prompt 128, 16 decode steps)"; grep -E "^profile" "$B/prof_$s.log" | sed 's/ (no graph.*class)://'
  done 2>&1 | tee "$OUT/profile.txt"
  for s in w4g128 bf16; do
    QB_CUDA_PROFILE=1 timeout 120 ./quantbench bench synthetic:llama2-7b --backend cuda --scheme $s --batch 1 \
      --prompt-len 512 --gen-len 1 --reps 1 --warmup 1 --no-progress > "$B/prof_pp_$s.log" 2>&1
    echo "== profile prefill 512 $s"; grep -E "^profile T=512" "$B/prof_pp_$s.log" | sed 's/ (no graph.*class)://'
  done 2>&1 | tee -a "$OUT/profile.txt"
fi
b() {  # name scheme batches prompt gen [reps]
  timeout 200 ./quantbench bench synthetic:llama2-7b --backend cuda --scheme "$2" --batch "$3" --prompt-len "$4" \
    --gen-len "$5" --reps "${6:-2}" --warmup 1 --no-progress --json "$B/bench_$1.json" > "$B/bench_$1.log" 2>&1
  echo "bench $1 rc $?"; head -6 "$B/bench_$1.log" | cut -c1-200
}
b w4g128 w4g128 1,16 128 $GEN
b bf16 bf16 1,16 128 $GEN
b w8 w8 1 128 $GEN
b w4g128a w4g128-asym 1,16 128 $GEN  # zero points per group (AWQ's and GPTQ's usual form)
b w4g32m w4g32m 1,16 128 $GEN  # f16 mins per group of 32 (GGUF Q4_1 and Q4_K, repacked)
b q4_k_m q4_k_m 1,16 128 $GEN  # GGUF Q4_K_M's mix: w4g32m (Q4_K) with w8g16 (Q6_K) for v, down in half the layers, output
b pp512_bf16 bf16 1 512 4 5  # one prefill per rep: 5 reps (with 2, one host hiccup moved the median by 30%)
b pp512_w4g128 w4g128 1 512 4 5
for f in "$B"/bench_*.log; do echo "== $f"; cat "$f"; done > "$OUT/bench_all.log"
python3 - "$B" "$OUT" "$TESTS_RC" "$CHECK_RC" "$(head -2 "$OUT/env.txt" | tail -1)" <<'PY' | tee "$OUT/summary.txt"
import json, sys, os, glob, re
out = sys.argv[1]
json.dump({os.path.basename(p): json.load(open(p)) for p in glob.glob(os.path.join(out, "bench_*.json"))},
          open(os.path.join(sys.argv[2], "bench_all.json"), "w"), indent=1)
def load(n):
    p = os.path.join(out, f"bench_{n}.json")
    return json.load(open(p)) if os.path.exists(p) else None
def metric(j, name):
    for m in j.get("metrics", []):
        if m["name"] == name: return m["value"]
print("\nsynthetic:llama2-7b, 128-token prompt; roofline = copy probe / (weights+scales+zeros + f16 KV read per step)")
print("(stored: the same share with the weights counted as the model stores them, where the GPU's packed form is wider)")
print(f"{'scheme':8} {'streams':>7} {'decode tok/s':>13} {'GB/step':>8} {'copy GB/s':>9} {'roofline':>8} {'stored':>7}")
dec = {}
for n in ["w4g128", "w4g128a", "w4g32m", "q4_k_m", "w8", "bf16"]:
    j = load(n)
    if not j: print(f"{n:8} (missing)"); continue
    for it in j["items"]:
        dec[(n, it["batch"])] = it["decode_tok_s"]
        st = it.get("roofline_share_stored", it["roofline_share"])
        print(f"{n:8} {it['batch']:>7} {it['decode_tok_s']:>13.1f} {it['bytes_per_step']['total']/1e9:>8.3f} "
              f"{metric(j,'bandwidth_copy_gbps'):>9.0f} {100*it['roofline_share']:>7.1f}% "
              + (f"{100*st:>6.1f}%" if abs(st - it["roofline_share"]) > 1e-9 else f"{'same':>7}"))
if ("w4g128", 16) in dec and ("bf16", 16) in dec:
    print(f"16 streams: w4g128 / bf16 = {dec[('w4g128',16)]/dec[('bf16',16)]:.2f}x (peer llama.cpp: 1.0-1.08x)")
pb, pw = load("pp512_bf16"), load("pp512_w4g128")
if pb:
    print(f"prefill 512 bf16: {pb['items'][0]['prefill_tok_s']:.0f} tok/s, {metric(pb,'prefill_tflops'):.0f} TFLOP/s = "
          f"{100*metric(pb,'prefill_tflops')/metric(pb,'gemm_bf16_tflops'):.0f}% of same-run cuBLAS bf16 {metric(pb,'gemm_bf16_tflops'):.0f} TFLOP/s")
if pb and pw:
    print(f"prefill 512 w4g128: {pw['items'][0]['prefill_tok_s']:.0f} tok/s = {100*pw['items'][0]['prefill_tok_s']/pb['items'][0]['prefill_tok_s']:.0f}% of bf16 (separate processes, same card)")

# Issue #6's done-when, judged from this run alone (its targets are stated for an H100; the card is named).
# The peer is llama.cpp on an H100 (../shared/GPU.md): decode at one stream, 30% of its roofline at 4 bits
# (Q4_0, Q4_K_M), 47% at 8 bits (Q8_0); at 16 streams its 4-bit model runs 1.0-1.08x F16's tokens per second.
tests_rc, check_rc, card = sys.argv[3], sys.argv[4], sys.argv[5]
def share(n, b):
    j = load(n)
    it = [i for i in (j or {}).get("items", []) if i["batch"] == b]
    return it[0]["roofline_share"] if it else None
rows = [("decode w4g128, one stream", share("w4g128", 1), 0.75, "peer 30% (Q4_0, Q4_K_M)"),
        ("decode w8, one stream", share("w8", 1), 0.75, "peer 47% (Q8_0)"),
        ("decode bf16, one stream", share("bf16", 1), 0.75, ""),
        ("decode w4g128, 16 streams, f16 KV", share("w4g128", 16), 0.70, "peer: 4-bit / F16 1.0-1.08x")]
if pb:
    rows.append(("prefill 512 bf16 / same-run cuBLAS GEMM", metric(pb, "prefill_tflops") / metric(pb, "gemm_bf16_tflops"), 0.60, ""))
if pb and pw:
    rows.append(("prefill 512 w4g128 / bf16", pw["items"][0]["prefill_tok_s"] / pb["items"][0]["prefill_tok_s"], 0.85, ""))
print(f"\nissue #6 targets (stated for an H100; this card: {card})")
for name, got, target, peer in rows:
    verdict = "missing" if got is None else ("met" if got >= target else "NOT met")
    got_s = "-" if got is None else f"{100 * got:.1f}%"
    print(f"  {name:42} {got_s:>7}  target {100 * target:.0f}%  {verdict:8} {peer}".rstrip())
for name, r in (("kernel checks (qb_cuda_tests)", tests_rc), ("GPU against CPU (qb_cuda_backend_check)", check_rc)):
    print(f"  {name:42} {'passed' if r == '0' else 'FAILED (rc ' + r + ')' if r != 'not run' else 'not run (--no-tests)'}")
log = os.path.join(sys.argv[2], "backend_check.log")
if check_rc != "not run" and os.path.exists(log):  # the issue asks for mean KL < 1e-4: how many rows rest on the floor
    kl = [float(m.group(1)) for l in open(log, errors="replace") if l.startswith(("PASS ", "FAIL "))
          for m in [re.search(r" mean KL ([0-9.]+(?:e[-+]?[0-9]+)?) ", l)] if m]
    print(f"  {len(kl)} GPU/CPU next-token comparisons; {sum(k >= 1e-4 for k in kl)} at mean KL >= 1e-4, each held instead "
          "to 2x its one-ulp flip floor (run-time-quantized KV caches or activations, the optional FP8 tensor cores: "
          "backend_check.log)")
PY
rm -rf "$B"
exit $rc
