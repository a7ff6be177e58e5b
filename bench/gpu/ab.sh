#!/usr/bin/env bash
# GPU machine, from the staged folder (bench/gpu/stage.sh): the A/B runs, probes and checks behind docs/perf.md, one
# device call's worth at a time. Each block is a function, block_NAME, in ab/:
#   ab/checks.sh    tests (qb_cuda_tests), check (the backend check on every staged model), evalcuda (`eval --backend
#                   cuda` against the CPU reference), clicuda (`bench` and `generate` on a GGUF file);
#   ab/decode.sh, ab/prefill.sh, ab/w8a8.sh, ab/nsight.sh   the named experiments (sweep, table, skip, probe, ...);
#   ab/sNN.sh       session NN's A/Bs (sNN, sNNb, ...), each against a build or a switch of its time: docs/perf.md,
#                   session NN, says what each measured and what it found.
# The helpers they share (b, one decode bench; p, one prefill; vs_staged and vs_env, interleaved A/Bs) are in
# ab/lib.sh. Blocks that ran against a staged binary (quantbench_prev, quantbench_base, ...) skip those runs when
# it is not there.
# Usage: bash ab.sh [BLOCK...]   the named blocks, in that order (default: tests sweep ab check); a name that is not a
#                                block stops the script before anything runs
#        bash ab.sh --list       the blocks, by file
# Blocks removed with the code they measured (the commit that has each):
# (Step 6's epilogue A/B blocks, "step6" and "checkall", left with the epilogue code: see docs/perf.md step 6.)
# (Session 32's "s32" and "s32n", qgemm_decode's checks, its sweep against qgemv and Nsight Compute on both, left
#  with that code: commit 35474e5; docs/perf.md, session 32.)
# (Session 34's "s34g", symmetric w4g32's 16-token half step at R = 1 capped at 128 registers against uncapped, with
#  qb_cuda_tests spec w4g32, left with that cap: commit bdd866a; docs/perf.md, session 34.)
# (Session 33's "s33z", qb_gpu_bench against a build with QB_TIMING_INT4_NO_ZSUB (the int4 decode's masks without the
#  HSUB2 / HFMA2 that remove offset and zero point; values wrong), left with that switch: commit 0046f3d; docs/perf.md,
#  session 33.)
# (Session 30's "s30b", the W8A8 tensor-core decode kernels capped at 64 registers against the default, left with that
#  code: commit 370ec01; docs/perf.md, session 30.)
# (Session 30's "s30k", split-K for the W8A8 tensor-core decode kernels against none, left with that code: commit
#  038c1c7; docs/perf.md, session 30.)
# (Session 17's "s17", the folded decode norms against the norm kernels, left with the fold code: commits
#  936228b-edc2bab, docs/perf.md session 17.)
# (Session 25's "s25", GGUF Q4_K in its own scale form against w4g32m, left with that code: commit debb8be.)
# (Session 26's "s26", the row-split decode kernel for symmetric w4g128 against the rule's kernels, left with that code:
#  commit d0a7ca2; docs/perf.md, session 26.)
# (Session 26's "s26b" and "s26c", symmetric w4g128's 16-token half step with three step buffers, forced on and as
#  launch rule 10 against rule 9, left with that code: commits 4bbbd8d and 26c3cf9; docs/perf.md, session 26.)
# (Session 29's "s29f", the W8A8 mma kernel with two 16-row blocks per thread block against one, left with that code:
#  commit 8fa4cd8; docs/perf.md, session 29.)
set -uo pipefail
cd "$(dirname "$0")"
for f in ab/lib.sh ab/checks.sh ab/decode.sh ab/prefill.sh ab/w8a8.sh ab/nsight.sh ab/s[0-9]*.sh; do
  source "$f" || { echo "ab.sh: cannot read $f"; exit 2; }
done
if [ "${1:-}" = --list ]; then
  for f in ab/*.sh; do
    [ "$f" = ab/lib.sh ] || echo "$f: $(sed -n 's/^block_\([a-z0-9]*\)() {.*/\1/p' "$f" | tr '\n' ' ')"
  done
  exit 0
fi
WHAT=${*:-tests sweep ab check}
for name in $WHAT; do
  declare -F "block_$name" > /dev/null || { echo "ab.sh: no block '$name' (bash ab.sh --list)"; exit 2; }
done
OUT=${OUT:-$PWD/out}; mkdir -p "$OUT"
source ./staged_env.sh  # unpacks the staged folder, sets the library path
{ date -u; nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader; cat GIT_COMMIT; } | tee "$OUT/env.txt"
bash make_models.sh || { echo "make_models.sh failed"; exit 1; }  # the quantized test models, made here
for name in $WHAT; do "block_$name"; done
