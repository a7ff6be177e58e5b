# ab.sh's blocks from session 15 (docs/perf.md, session 15, says what each measured and what it found).
# Sourced by ab.sh, which runs the blocks named on its command line; the helpers are in lib.sh.

# Session 15, s15: the gated activation in the gate|up product's epilogue (the default; at 29ffab4, where
# this block last ran, at steps of 2-16 tokens, from 7dbb6e4 on from one token) against the same build
# with QB_CUDA_FUSE_ACT=0 (the activation kernel, as before): w4g128 at 1 and 16 streams, w8 at 16; three
# rounds. The session's first two calls also ran the down product launched early after the fused gate|up
# (commits b3794b7 and 0c4d217; docs/perf.md, session 15).
block_s15() {
  for rep in 1 2 3; do
    for sb in "w4g128 1" "w4g128 16" "w8 16"; do
      set -- $sb
      b "fused      " $1 $2
      b "unfused    " $1 $2 QB_CUDA_FUSE_ACT=0
    done
  done 2>&1 | tee "$OUT/ab_s15.txt"
  rm -f "$OUT/tmp.log"
}

# Session 15, s15b: the one-token half step's double buffer as an explicit ping-pong. At 4b2b449 this build
# (A) had it in the fused gate|up kernel only and quantbench_B (built with QB_PINGPONG_PLAIN=1, since
# removed) in every one-token half-step kernel, as every build since has: w4g128 at one stream, each with
# the activation fused at one token too (QB_CUDA_FUSE_ACT_MIN_T=1) and not; three rounds.
block_s15b() {
  for rep in 1 2 3; do
    b "A            " w4g128 1 QB_CUDA_FUSE_ACT_MIN_T=2
    b "A fused at 1 " w4g128 1 QB_CUDA_FUSE_ACT_MIN_T=1
    [ -x ./quantbench_B ] && Q=./quantbench_B b "B            " w4g128 1 QB_CUDA_FUSE_ACT_MIN_T=2
    [ -x ./quantbench_B ] && Q=./quantbench_B b "B fused at 1 " w4g128 1 QB_CUDA_FUSE_ACT_MIN_T=1
  done 2>&1 | tee "$OUT/ab_s15b.txt"
  rm -f "$OUT/tmp.log"
}

block_s15c() {
  vs_staged ./quantbench_base "base  " "this  " 3 "w4g128 1" "w4g128 16" "w8 1" "bf16 1" 2>&1 | tee "$OUT/ab_s15c.txt"
  rm -f "$OUT/tmp.log"
}
