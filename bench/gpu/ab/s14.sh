# ab.sh's blocks from session 14 (docs/perf.md, session 14, says what each measured and what it found).
# Sourced by ab.sh, which runs the blocks named on its command line; the helpers are in lib.sh.

kv_ab() {  # block label kv+streams...: w4g128 decode per "KV-type streams", quantbench_base then this build, three rounds
  local block=$1 label=$2; shift 2
  local cases=("$@")  # the loop's `set --` replaces the arguments
  for rep in 1 2 3; do
    for kb in "${cases[@]}"; do
      set -- $kb
      [ -x ./quantbench_base ] && EXTRA="--kv $1" Q=./quantbench_base b "base kv $1     " w4g128 $2
      EXTRA="--kv $1" b "$label kv $1" w4g128 $2
    done
  done 2>&1 | tee "$OUT/ab_$block.txt"
  rm -f "$OUT/tmp.log"
}

block_s14() {
  # Session 14: at 16 streams, L2 prefetch of o's weights (and on into gate|up's) during attention
  # (QB_CUDA_L2_PREFETCH_ATTN_MB), with the attention's K/V loads evict-first or not
  # (QB_CUDA_KV_EVICT_FIRST), against quantbench_prev (the previous build); three rounds.
  for rep in 1 2 3; do
    [ -x ./quantbench_prev ] && Q=./quantbench_prev b "prev          " w4g128 16
    b "ef0 mb0       " w4g128 16
    b "ef1 mb0       " w4g128 16 QB_CUDA_KV_EVICT_FIRST=1
    b "ef0 mb16      " w4g128 16 QB_CUDA_L2_PREFETCH_ATTN_MB=16
    for mb in 8 16 24; do b "ef1 mb$mb      " w4g128 16 QB_CUDA_KV_EVICT_FIRST=1 QB_CUDA_L2_PREFETCH_ATTN_MB=$mb; done
    b "ef0 mb0       " bf16 16
    b "ef1 mb16      " bf16 16 QB_CUDA_KV_EVICT_FIRST=1 QB_CUDA_L2_PREFETCH_ATTN_MB=16
    [ -x ./quantbench_prev ] && Q=./quantbench_prev b "prev          " w4g128 1
    b "ef1 mb16      " w4g128 1 QB_CUDA_KV_EVICT_FIRST=1 QB_CUDA_L2_PREFETCH_ATTN_MB=16
  done 2>&1 | tee "$OUT/ab_s14.txt"
  rm -f "$OUT/tmp.log"
}

block_s14b() {
  # Session 14: one stream, the fused-rope attention as one block of 8 or 16 warps per head and one key
  # split (QB_CUDA_ATTN_WIDE 1: 16 warps x 8 keys, 2: 16 x 12, 3: 8 x 8; no merge) against 16 splits of
  # 4 warps merged by the last block (0), and quantbench_prev; gen 64 and 128; three rounds.
  for rep in 1 2 3; do
    [ -x ./quantbench_prev ] && Q=./quantbench_prev b "prev          " w4g128 1
    for w in 0 1 2 3; do b "wide$w         " w4g128 1 QB_CUDA_ATTN_WIDE=$w; done
    b "wide1 ef1     " w4g128 1 QB_CUDA_ATTN_WIDE=1 QB_CUDA_KV_EVICT_FIRST=1
    for w in 0 1; do b "wide$w         " w8 1 QB_CUDA_ATTN_WIDE=$w; b "wide$w         " bf16 1 QB_CUDA_ATTN_WIDE=$w; done
    for w in 0 1 2; do GEN=128 b "gen128 wide$w  " w4g128 1 QB_CUDA_ATTN_WIDE=$w; done
  done 2>&1 | tee "$OUT/ab_s14b.txt"
  rm -f "$OUT/tmp.log"
}

block_s14c() {
  # Session 14: the f16 decode attention's K/V loads as streaming data (ld.global.cs, QB_CUDA_KV_STREAMING=1)
  # against plain loads (0) and quantbench_prev; three rounds.
  for rep in 1 2 3; do
    for sb in "w4g128 16" "w4g128 1" "bf16 16" "w8 1"; do
      set -- $sb
      [ -x ./quantbench_prev ] && Q=./quantbench_prev b "prev          " $1 $2
      b "plain         " $1 $2 QB_CUDA_KV_STREAMING=0
      b "streaming     " $1 $2 QB_CUDA_KV_STREAMING=1
    done
  done 2>&1 | tee "$OUT/ab_s14c.txt"
  rm -f "$OUT/tmp.log"
}

block_s14d() {
  # Session 14: the f16 decode attention's K/V loads always streaming (ld.global.cs, this build) against
  # plain loads (quantbench_prev, commit ab145bf); three rounds, gen 64, then w4g128 at 16 streams at gen 128.
  vs_staged ./quantbench_prev "prev          " "streaming     " 3 "w4g128 16" "w4g128 1" "bf16 16" "bf16 1" "w8 1" \
    "w4g128 16 128" 2>&1 | tee "$OUT/ab_s14d.txt"
  rm -f "$OUT/tmp.log"
}

block_s14e() {
  # Session 14: qgemv's weight loads evict-first in L1 and L2 (ld.global.cs.nc; this build, QB_WEIGHTS_EVICT_FIRST=1)
  # against L1 no-allocate (quantbench_base, commit deaa758); three rounds, gen 64, then w4g128 16 at gen 128.
  vs_staged ./quantbench_base "base          " "weights-cs    " 3 "w4g128 16" "w4g128 1" "w8 1" "w4g128-asym 1" \
    "w4g128 16 128" 2>&1 | tee "$OUT/ab_s14e.txt"
  rm -f "$OUT/tmp.log"
}

# Session 14, s14f: the quantized-cache decode attention's code and scale loads as streaming data
# (ld.global.cs; this build) against plain loads (quantbench_base, commit 5c85e16): w4g128 with an int8, fp8
# and int4 KV cache at 16 streams, int8 at one stream.
block_s14f() {
  kv_ab s14f streaming "int8 16" "fp8 16" "int4 16" "int8 1"
}

# Session 14, s14g: the quantized-cache attention with one split normalizing in its own block, no merge
# kernel (this build) against quantbench_base (commit 254c19f: a merge kernel after every launch): w4g128
# with an int8, fp8 and int4 KV cache at 16 streams (one split), and the f16 cache at 16 streams (unchanged
# code).
block_s14g() {
  kv_ab s14g one-split "int8 16" "fp8 16" "int4 16" "f16 16"
}
