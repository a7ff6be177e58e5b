#!/usr/bin/env bash
# One command on the GPU machine: build the CUDA kernels, tests and benchmark with plain nvcc (the
# machine has the CUDA toolkit but not the Debian -dev packages the rest of the library needs), run the
# correctness checks, then the benchmark. Full logs and the CSV go to $OUT (or ./gpu-out); the short
# tables come last on stdout.
# Usage (repo root): bash bench/gpu/run.sh [--quick] [--no-bench] [--bench-anyway] [--build-only]
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT" build-gpu
QUICK=""; BENCH=1; ANYWAY=0; BUILD_ONLY=0
for a in "$@"; do
  case $a in --quick) QUICK=--quick ;; --no-bench) BENCH=0 ;; --bench-anyway) ANYWAY=1 ;; --build-only) BUILD_ONLY=1 ;; esac
done

{
  date -u; nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv || true
  nvcc --version | tail -1; cat GIT_COMMIT 2>/dev/null || git rev-parse HEAD 2>/dev/null || echo "commit unknown"
} | tee "$OUT/env.txt"

NVCC="nvcc -O3 -std=c++20 -gencode arch=compute_90a,code=sm_90a -Isrc -Xcompiler -Wall,-Wextra"
SRC=src/quantbench/runtime/cuda
t0=$(date +%s)
pids=()
for f in $SRC/qgemv.cu $SRC/probes.cu $SRC/qgemv_pack.cpp tests/cuda/qgemv_check.cu bench/gpu/qgemv_bench.cu; do
  o=build-gpu/$(basename "${f%.*}").o
  $NVCC -Xptxas -warn-spills -c "$f" -o "$o" >"$o.log" 2>&1 &
  pids+=($!)
done
fail=0
for p in "${pids[@]}"; do wait "$p" || fail=1; done
cat build-gpu/*.o.log > "$OUT/build.log"
if [ $fail = 1 ]; then cat "$OUT/build.log"; echo "BUILD FAILED"; exit 1; fi
$NVCC -o build-gpu/qgemv_check build-gpu/qgemv_check.o build-gpu/qgemv.o build-gpu/qgemv_pack.o
$NVCC -o build-gpu/qgemv_bench build-gpu/qgemv_bench.o build-gpu/qgemv.o build-gpu/qgemv_pack.o build-gpu/probes.o -lcublas
echo "build: $(( $(date +%s) - t0 )) s"
[ $BUILD_ONLY = 1 ] && exit 0

set +e
build-gpu/qgemv_check > "$OUT/check.log" 2>&1
rc=$?
set -e
grep -E "^(FAIL|PASSED|FAILED|device|seed)" "$OUT/check.log" | head -40
if [ $rc != 0 ]; then
  echo "CORRECTNESS FAILED (rc $rc)"
  [ $ANYWAY = 1 ] || exit 1
  echo "benchmarking anyway (--bench-anyway): the numbers below are NOT of a verified kernel"
fi

if [ $BENCH = 1 ]; then
  if ! build-gpu/qgemv_bench "$OUT" $QUICK > "$OUT/bench.log" 2>&1; then
    tail -3 "$OUT/bench.log"
    echo "benchmark failed; rerunning without the launch-overlap variant (QB_BENCH_NO_PDL=1)"
    mv "$OUT/bench.log" "$OUT/bench_failed.log"
    QB_BENCH_NO_PDL=1 build-gpu/qgemv_bench "$OUT" $QUICK > "$OUT/bench.log" 2>&1 || true
  fi
  cat "$OUT/bench.log"
fi
