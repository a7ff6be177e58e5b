#!/usr/bin/env bash
# On the GPU machine, from a staged folder (binaries built on the dev machine with -DQB_CUDA=ON, their
# non-CUDA shared libraries in lib/, models in models/; see docs/perf.md "CUDA backend"): runs the
# qgemv checks, the CUDA-backend-vs-CPU-reference checks, then times the backend end to end on a
# random GGUF at TinyLlama shapes made on the spot. Logs go to $OUT.
set -uo pipefail
cd "$(dirname "$0")"
OUT=${OUT:-$PWD/out}; mkdir -p "$OUT"
LIBS=$PWD/lib:/usr/local/cuda/lib64:/usr/local/cuda/lib
run() { LD_LIBRARY_PATH=$LIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} "$@"; }
{ date -u; nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv; cat GIT_COMMIT; } | tee "$OUT/env.txt"
timeout 120 bash -c "$(declare -f run); LIBS=$LIBS; run ./qb_cuda_tests" > "$OUT/qgemv_check.log" 2>&1
echo "qgemv check rc $?"; grep -E "^(FAIL|PASSED|FAILED)" "$OUT/qgemv_check.log" | head -5
run ./qb_cuda_backend_check models/*.gguf > "$OUT/backend_check.log" 2>&1
echo "backend check rc $?"; grep -vE "^describe" "$OUT/backend_check.log"; grep -m1 "^describe" "$OUT/backend_check.log" | cut -c1-400
[ "${1:-}" = "--no-bench" ] && exit 0
t0=$(date +%s); python3 make_bench_gguf.py /tmp/qb_bench.gguf "${BENCH_SHAPE:-tinyllama}"; echo "gguf made in $(( $(date +%s) - t0 )) s"
run ./qb_gpu_backend_bench /tmp/qb_bench.gguf bf16 2>&1 | tee "$OUT/backend_bench.log" | cut -c1-600
rm -f /tmp/qb_bench.gguf
