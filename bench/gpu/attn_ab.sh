#!/usr/bin/env bash
# GPU machine, from the staged folder (bench/gpu/stage.sh): the decode-attention runs of docs/perf.md
# "GPU: decode attention (issue #6, session 6)" in one call. Kernel checks; the attention benchmark
# (qb_attn_bench: every variant / shape at 1 and 16 tokens); decode A/Bs, interleaved, of the
# split-kernel variants (QB_CUDA_ATTN_V=old against the default, twice each, then other shapes of the
# new kernel once); a profiled pass per variant; the backend checks with each variant.
# Usage: bash attn_ab.sh [tests] [bench] [ab] [prof] [check]   (default: all)
set -uo pipefail
cd "$(dirname "$0")"
OUT=${OUT:-$PWD/out}; mkdir -p "$OUT"
export LD_LIBRARY_PATH=$PWD/lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
WHAT=${*:-tests bench ab prof check}
has() { [[ " $WHAT " == *" $1 "* ]]; }
{ date -u; nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader; cat GIT_COMMIT; } | tee "$OUT/env.txt"
b() {  # label env...: decode at 1 and 16 streams, w4g128
  local label=$1; shift
  env "$@" timeout 120 ./quantbench bench synthetic:llama2-7b --backend cuda --scheme w4g128 --batch 1,16 \
    --prompt-len 128 --gen-len 64 --reps 2 --warmup 1 --no-progress --json "$OUT/last.json" > "$OUT/tmp.log" 2>&1
  awk -v l="$label" '$1 ~ /^[0-9]+$/ && NF == 7 {print l, $0}' "$OUT/tmp.log"
}
if has tests; then
  t0=$(date +%s); timeout 300 ./qb_cuda_tests > "$OUT/qgemv_check.log" 2>&1; r=$?
  echo "qb_cuda_tests rc $r ($(( $(date +%s) - t0 )) s)"; grep -E "^(FAIL|PASSED|FAILED|seed)" "$OUT/qgemv_check.log" | head -20
fi
if has bench; then
  t0=$(date +%s); timeout 150 ./qb_attn_bench > "$OUT/attn_bench.txt" 2>&1
  echo "qb_attn_bench rc $? ($(( $(date +%s) - t0 )) s)"
fi
if has ab; then
  for rep in 1 2; do
    b "old          " QB_CUDA_ATTN_V=old; cp "$OUT/last.json" "$OUT/bench_old.json"
    b "new          "; cp "$OUT/last.json" "$OUT/bench_new.json"
  done 2>&1 | tee "$OUT/ab_decode.txt"
  {  # the new kernel's other shapes (the overrides apply at 1 and 16 streams alike)
    b "new 8k       " QB_CUDA_ATTN_KPW=8 QB_CUDA_ATTN_DOUBLE=0 QB_CUDA_ATTN_PREFETCH=0
    b "new 8k pf64  " QB_CUDA_ATTN_KPW=8 QB_CUDA_ATTN_DOUBLE=0 QB_CUDA_ATTN_PREFETCH=64
    b "new 8k pf256 " QB_CUDA_ATTN_KPW=8 QB_CUDA_ATTN_DOUBLE=0 QB_CUDA_ATTN_PREFETCH=256
    b "new 4k dbl   " QB_CUDA_ATTN_KPW=4 QB_CUDA_ATTN_DOUBLE=1 QB_CUDA_ATTN_PREFETCH=0
    b "new 4k       " QB_CUDA_ATTN_KPW=4 QB_CUDA_ATTN_DOUBLE=0 QB_CUDA_ATTN_PREFETCH=0
    b "new min32    " QB_CUDA_ATTN_MIN_KEYS=32
    b "old          " QB_CUDA_ATTN_V=old
    b "new          "
  } 2>&1 | tee "$OUT/ab_shapes.txt"
  rm -f "$OUT/last.json"
fi
if has prof; then
  for v in old new; do
    QB_CUDA_ATTN_V=$v QB_CUDA_PROFILE=1 timeout 120 ./quantbench bench synthetic:llama2-7b --backend cuda --scheme w4g128 \
      --batch 1,16 --prompt-len 128 --gen-len 16 --reps 1 --warmup 1 --no-progress > "$OUT/tmp.log" 2>&1
    grep -E "^profile T=(1|16):" "$OUT/tmp.log" | sed "s/^/$v: /; s/ (no graph.*class)://"
  done 2>&1 | tee "$OUT/profile.txt"
fi
if has check; then
  for v in new old; do
    t0=$(date +%s); QB_CUDA_ATTN_V=$v timeout 240 ./qb_cuda_backend_check models/*.gguf > "$OUT/backend_check_$v.log" 2>&1; r=$?
    echo "backend_check $v rc $r ($(( $(date +%s) - t0 )) s): $(grep -cE '^PASS' "$OUT/backend_check_$v.log") PASS, $(grep -cE '^FAIL' "$OUT/backend_check_$v.log") FAIL"
  done 2>&1 | tee "$OUT/check.txt"
  diff <(grep -E '^FAIL' "$OUT/backend_check_old.log" | cut -c1-120) <(grep -E '^FAIL' "$OUT/backend_check_new.log" | cut -c1-120) > "$OUT/check_fail_diff.txt" && echo "same FAIL lines" | tee -a "$OUT/check.txt"
fi
rm -f "$OUT/tmp.log"
