# ab.sh's blocks from session 13 (docs/perf.md, session 13, says what each measured and what it found).
# Sourced by ab.sh, which runs the blocks named on its command line; the helpers are in lib.sh.

# s13: this build against quantbench_prev: w4g128 at 1 and 16 streams, w4g128 at 16 with more than one
#   attention split, bf16 at 16 streams; three times.
block_s13() {
  # Session 13: the one-token half step's first two steps before the wait, and one-split attention
  # normalizing in its own block; against quantbench_prev (15ec688), three rounds.
  for rep in 1 2 3; do
    b "new" w4g128 1,16
    [ -x ./quantbench_prev ] && Q=./quantbench_prev b "prev" w4g128 1,16
    b "new splits>1" w4g128 16 QB_CUDA_ATTN_ONE_SPLIT=0
    b "new" bf16 16
    [ -x ./quantbench_prev ] && Q=./quantbench_prev b "prev" bf16 16
  done 2>&1 | tee "$OUT/ab_s13.txt"
  rm -f "$OUT/tmp.log"
}

# s13b: the one-token half step loading after its wait (quantbench_w0: commit ae4d1c3 with
#   QB_HALF1_STEPS_BEFORE_WAIT set to 0), early norms at 16 tokens with and without loads before the
#   wait, against quantbench_prev; then the 16-stream skip breakdown.
block_s13b() {
  # Session 13: the one-token half step with its first weight loads after the wait (quantbench_w0),
  # early norms at 16 tokens with and without their loads before the wait, and where a 16-stream step
  # goes; against quantbench_prev (15ec688), three rounds.
  for rep in 1 2 3; do
    b "new" w4g128 1,16
    [ -x ./quantbench_w0 ] && Q=./quantbench_w0 b "w0" w4g128 1
    [ -x ./quantbench_prev ] && Q=./quantbench_prev b "prev" w4g128 1,16
    b "new early norms T16" w4g128 16 QB_CUDA_PDL_SMALL=1 QB_CUDA_PDL_SMALL_T=16
    b "new early norms T16 noprewait" w4g128 16 QB_CUDA_PDL_SMALL=1 QB_CUDA_PDL_SMALL_T=16 QB_CUDA_PREWAIT=0
  done 2>&1 | tee "$OUT/ab_s13b.txt"
  for rep in 1 2; do
    for sk in norm attn act norm,attn,act; do b "new skip $sk" w4g128 16 QB_CUDA_TIMING_SKIP=$sk; done
  done 2>&1 | tee "$OUT/ab_s13skip.txt"
  rm -f "$OUT/tmp.log"
}

# s13d: qgemv's weight loads with an L2 evict-first policy against the same build without it
#   (quantbench_ef0): w4g128 at 1 and 16 streams, w8 at 1, bf16 at 1 and 16; three times. The policy
#   was measured within noise and removed; the evict-first build is commit ad5bc52 (docs/perf.md, session 13).
block_s13d() {
  # Session 13: qgemv's weight loads with an L2 evict-first policy (this build) against the same code
  # without it (quantbench_ef0), three rounds.
  for rep in 1 2 3; do
    for sb in "w4g128 1,16" "w8 1" "bf16 1,16"; do
      set -- $sb
      b "evict-first" $1 $2
      [ -x ./quantbench_ef0 ] && Q=./quantbench_ef0 b "plain" $1 $2
    done
  done 2>&1 | tee "$OUT/ab_s13d.txt"
  rm -f "$OUT/tmp.log"
}
