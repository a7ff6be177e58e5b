# ab.sh's blocks from session 16 (docs/perf.md, session 16, says what each measured and what it found).
# Sourced by ab.sh, which runs the blocks named on its command line; the helpers are in lib.sh.

# b, then the decode steps' device spans that QB_CUDA_STEP_SPAN (in the variant's env) printed at exit.
bspan() { b "$@"; grep "^step span T=\(1\|16\)[: ]" "$OUT/tmp.log"; }

# s16c: a graphed decode step pulling its table from mapped host memory and writing its argmax ids there,
# with the float4 argmax (the build of 409fe52), against quantbench_base (copy-engine transfers around the
# graph, scalar argmax). s16d: the graphed step's table copy and embedding rows in one launch (commit
# ca40b93, measured within noise and reverted after it) against quantbench_base (two kernels). The same
# runs: this build and quantbench_base, w4g128 and w8 at 1 and 16 streams with their device spans
# (QB_CUDA_STEP_SPAN=1), three times.
s16c_s16d_runs() {  # BLOCK: s16c and s16d share these runs
  local blk=$1
  for rep in 1 2 3; do
    for sc in w4g128 w8; do
      [ -x ./quantbench_base ] && Q=./quantbench_base bspan "base  " $sc 1,16 QB_CUDA_STEP_SPAN=1
      bspan "this  " $sc 1,16 QB_CUDA_STEP_SPAN=1
    done
  done 2>&1 | tee "$OUT/ab_$blk.txt"
  rm -f "$OUT/tmp.log"
}

# Session 15, s15c: this build against quantbench_base (4b2b449's A: the fused kernel's ping-pong only,
# fused at 2-16 tokens): w4g128 at 1 and 16 streams, w8 and bf16 at 1; three rounds.
block_s16() {
  # Session 16: the gated epilogue summing over the warps in a pass of its own, and the decode norms
  # over thread-block clusters (QB_CUDA_NORM_CLUSTER; 8 at 2-16 rows by default), both in the build of
  # commit 9106597 (the clusters lost and were removed after it: docs/perf.md, session 16). Kernel
  # level: this build and qb_gpu_bench_base (the previous build) for w4g128 and w8; then steps against
  # quantbench_base, the cluster off, on from 2 rows (default) and from one row; three times.
  for spec in w4g128 w8; do
    for bin in qb_gpu_bench qb_gpu_bench_base; do
      [ -x ./$bin ] || continue
      mkdir -p "$OUT/${bin}_$spec"
      QB_BENCH_SPEC=$spec QB_BENCH_NO_PDL=1 timeout 300 ./$bin "$OUT/${bin}_$spec" --quick > "$OUT/${bin}_${spec}_quick.log" 2>&1
      echo "$bin $spec --quick rc $?"
      grep -E "^(o|qkv|gate.up|down) " "$OUT/${bin}_${spec}_quick.log" | cut -c1-100
    done
  done 2>&1 | tee "$OUT/ab_s16_kernels.txt"
  for rep in 1 2 3; do
    for sb in "w4g128 1,16" "w8 1,16"; do
      set -- $sb
      [ -x ./quantbench_base ] && Q=./quantbench_base b "base  " $1 $2
      b "c0    " $1 $2 QB_CUDA_NORM_CLUSTER=0
      b "c8    " $1 $2
      b "c8t1  " $1 $2 QB_CUDA_NORM_CLUSTER_MIN_T=1
      b "c4    " $1 $2 QB_CUDA_NORM_CLUSTER=4
    done
  done 2>&1 | tee "$OUT/ab_s16.txt"
  rm -f "$OUT/tmp.log"
}

block_s16b() {
  # Session 16: where a step's wall time goes outside the GPU's work (QB_CUDA_STEP_SPAN=1 prints the device
  # time from each step's table upload to its ids download), and the fused gate|up activation against the
  # activation kernel (QB_CUDA_FUSE_ACT=0) after the two-pass epilogue; w4g128 and w8 at 1 and 16 streams,
  # three times.
  for rep in 1 2 3; do
    for sc in w4g128 w8; do
      bspan "span  " $sc 1,16 QB_CUDA_STEP_SPAN=1
      b "fuse0 " $sc 1,16 QB_CUDA_FUSE_ACT=0
      b "this  " $sc 1,16
    done
  done 2>&1 | tee "$OUT/ab_s16b.txt"
  rm -f "$OUT/tmp.log"
}

block_s16c() {
  s16c_s16d_runs s16c
}

block_s16d() {
  s16c_s16d_runs s16d
}

block_s16e() {
  # Session 16: how long a step waits on the host. QB_CUDA_STEP_SPAN=2 launches each graphed greedy step a
  # second time behind the first and prints both runs' device times (the queued one has no submission to
  # wait for); w4g128 and w8 at 1 and 16 streams, twice. The bench's own step times are wrong here.
  for rep in 1 2; do
    for sc in w4g128 w8; do
      bspan "twice " $sc 1,16 QB_CUDA_STEP_SPAN=2
    done
  done 2>&1 | tee "$OUT/ab_s16e.txt"
  rm -f "$OUT/tmp.log"
}

block_s16f() {
  # Session 16: one-stream decode with QB_CUDA_ATTN_BLOCKS_PER_SM 8 (the default: 16 key splits at one
  # stream on 132 SMs), 3 (13 splits) and 2 (9 splits) on the final build, w4g128 and w8, three times.
  for rep in 1 2 3; do
    for sc in w4g128 w8; do
      for bps in 8 3 2; do b "bps$bps  " $sc 1 QB_CUDA_ATTN_BLOCKS_PER_SM=$bps; done
    done
  done 2>&1 | tee "$OUT/ab_s16f.txt"
  rm -f "$OUT/tmp.log"
}
