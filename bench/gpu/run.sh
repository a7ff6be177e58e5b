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
source ./staged_env.sh  # unpacks the staged folder, sets the library path
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
# the table, then issue #6's targets judged from this run (summarize.py)
python3 summarize.py "$B" "$OUT" "$TESTS_RC" "$CHECK_RC" "$(head -2 "$OUT/env.txt" | tail -1)" | tee "$OUT/summary.txt"
rm -rf "$B"
exit $rc
