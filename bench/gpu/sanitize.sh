#!/usr/bin/env bash
# GPU machine, from the folder bench/gpu/stage.sh filled: the kernel checks under NVIDIA's compute-sanitizer, the GPU's
# counterpart of the CPU suite's ASan / UBSan runs. The checks' own poisoned outputs and guard regions catch writes
# past an output; the sanitizer also catches reads out of bounds, shared-memory races, misused barriers and reads of
# uninitialized device memory.
#   memcheck   all of qb_cuda_tests (every format's decode products, the forward-pass kernels, qgemm), then the
#              backend check on every staged model (make_models.sh; stories260K alone where quantbench is not staged)
#   racecheck  shared-memory hazards: four formats' decode checks (int4, int4 with mins, int8, bf16), the forward
#              kernels, qgemm
#   synccheck  barrier misuse, the same set
#   initcheck  reads of device memory never written: the forward kernels, one format's decode checks, qgemm
#   w8a8       the W8A8 decode kernels, whose checks live in the backend check (check_w8a8_wide, check_fp8_fast_wide:
#              T = 1/2/7/16 at real widths), under memcheck and synccheck, once with each main loop forced at every
#              token count (QB_CUDA_W8A8_PIPE=0: the plain loop; =1: the ping-pong, which the default takes from 2
#              tokens), on the two random W8A8 models (int8 and fp8 activations; their forward passes too)
#   w8a8race   the same checks under racecheck, each loop on the FP8 model (about 220 s each on an H200, so not in
#              the default set, which would then run past the device tool's 10 minutes per command)
# W8A8_PIPES="0 1" (the default) picks the loops the w8a8 blocks force, so that w8a8race's two runs can go in two
# commands of the device tool.
# The sanitizer is the CUDA toolkit's (on PATH, or /usr/local/cuda/bin; the GPU machine has it, and the log names the
# one that ran). Each run has its own time limit; a run that hits it is reported as such, not as clean.
# Run it from a folder `bash bench/gpu/stage.sh DIR` filled, as `bash DIR/sanitize.sh`.
# Usage: bash sanitize.sh [TOOL ...]   (default: memcheck racecheck synccheck initcheck w8a8)
set -uo pipefail
cd "$(dirname "$0")"
OUT=${OUT:-$PWD/out}; mkdir -p "$OUT"
source ./staged_env.sh  # unpacks the staged folder, sets the library path
CS=$(command -v compute-sanitizer || true)
[ -z "$CS" ] && [ -x /usr/local/cuda/bin/compute-sanitizer ] && CS=/usr/local/cuda/bin/compute-sanitizer
[ -n "$CS" ] || { echo "no compute-sanitizer: it comes with the CUDA toolkit (on PATH or in /usr/local/cuda/bin)"; exit 1; }
REPO=${REPO:-../..}  # the checkout the device tool sent (this script runs in its staged folder)
{ date -u; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; cat GIT_COMMIT 2>/dev/null; echo "$CS: $("$CS" --version | tail -1)"; } \
  | tee "$OUT/env.txt"
TOOLS=${*:-memcheck racecheck synccheck initcheck w8a8}
fails=0
NVJET_APART=0  # 1 (racecheck over cuBLAS's kernels): hazards inside cuBLASLt's own GEMM kernels are counted apart,
               # by sanitizer_verdict.py, with every hazard printed so that none of ours hides behind a print limit
# run LABEL LIMIT_S TOOL PROGRAM ARGS...: one program under one tool; the sanitizer's own exit code is non-zero
# when it reports an error, the program's when a check fails.
run() {
  local label=$1 limit=$2 tool=$3 t0 r verdict log print_limit=20; shift 3
  log=$OUT/${tool}_$label.log
  [ "$NVJET_APART" = 1 ] && print_limit=0
  t0=$(date +%s)
  timeout "$limit" "$CS" --tool "$tool" --error-exitcode 99 --print-limit $print_limit "$@" > "$log" 2>&1; r=$?
  case $r in
    0) verdict=clean ;;
    99) if [ "$NVJET_APART" = 1 ] && verdict=$(python3 sanitizer_verdict.py "$log"); then :
        else verdict="SANITIZER ERRORS${verdict:+ ($verdict)}"; fails=$((fails + 1)); fi ;;
    124) verdict="TIMED OUT after ${limit} s (not checked to the end)"; fails=$((fails + 1)) ;;
    *) verdict="FAILED (rc $r)"; fails=$((fails + 1)) ;;
  esac
  printf '%-10s %-22s %-40s %4d s  %s\n' "$tool" "$label" "$(grep -E '^(PASSED|FAILED)' "$log" | tail -1 | cut -c1-40)" \
    "$(( $(date +%s) - t0 ))" "$verdict"
  grep -m3 -E "^========= (Invalid|Race|Barrier|Uninitialized|Error|Program hit|Internal)" "$log" | cut -c1-200
}
has() { [[ " $TOOLS " == *" $1 "* ]]; }
if has memcheck; then
  run qb_cuda_tests 300 memcheck ./qb_cuda_tests
  models=("$REPO/data/models/stories260K/stories260K.gguf")
  if [ -x quantbench ] && [ -f make_models.sh ]; then
    bash make_models.sh && models=(models/*.gguf) || echo "make_models.sh failed: the backend check runs on stories260K only"
  fi
  run backend_check 450 memcheck ./qb_cuda_backend_check "${models[@]}"
fi
for tool in racecheck synccheck; do
  if has $tool; then
    for f in w4g128 w4g32m w8 bf16; do run "spec_$f" 120 $tool ./qb_cuda_tests spec $f; done
    run forward 200 $tool ./qb_cuda_tests forward
    run qgemm 200 $tool ./qb_cuda_tests qgemm
  fi
done
if has initcheck; then
  run forward 200 initcheck ./qb_cuda_tests forward
  run spec_w4g128 120 initcheck ./qb_cuda_tests spec w4g128
  run qgemm 200 initcheck ./qb_cuda_tests qgemm
fi
if has w8a8 || has w8a8race; then
  bash make_models.sh >/dev/null || echo "make_models.sh failed"
  w8a8_models=(models/rand-llama-w8a8.gguf models/rand-llama-w8a8-fp8.gguf)
  for pipe in ${W8A8_PIPES:-0 1}; do
    export QB_CUDA_W8A8_PIPE=$pipe
    if has w8a8; then
      run "w8a8_pipe$pipe" 200 memcheck ./qb_cuda_backend_check "${w8a8_models[@]}"
      run "w8a8_pipe$pipe" 200 synccheck ./qb_cuda_backend_check "${w8a8_models[@]}"
    fi
    # racecheck over every kernel: the FP8 model's check reaches all the W8A8 kernels (the int8 ones through
    # check_w8a8_wide) and cuBLASLt's, whose own hazards are counted apart. Leaving cuBLAS's kernels out
    # (--kernel-name-exclude kns=nvjet), or naming only ours (--kernel-name kns=w8a8), made the sanitizer fail on a
    # hardware exception in session 36 ("Internal Sanitizer Error").
    if has w8a8race; then
      NVJET_APART=1 run "w8a8_fp8_pipe$pipe" 280 racecheck ./qb_cuda_backend_check models/rand-llama-w8a8-fp8.gguf
    fi
  done
  unset QB_CUDA_W8A8_PIPE
fi
echo "sanitizer runs with errors, failures or time-outs: $fails"
exit $((fails > 0))
