# ab.sh's blocks from session 19 (docs/perf.md, session 19, says what each measured and what it found).
# Sourced by ab.sh, which runs the blocks named on its command line; the helpers are in lib.sh.

block_s19() {
  # Session 19 (H200): the half-warp-per-key decode attention (QB_CUDA_ATTN_HW=1) against the default
  # kernel of this build and against quantbench_prev (the build before, whose default kernel's code
  # generation the shared block end changed): the backend check with the switch, the KV-read probe (the
  # attention alone in a graph), then w4g128 1,16 and bf16 16 at gen 128, two rounds.
  check_with backend_check_hw.log QB_CUDA_ATTN_HW=1
  ./qb_kv_read_probe > "$OUT/kv_read_probe.txt" 2>&1; sed -n '/decode attention alone/,/^$/p' "$OUT/kv_read_probe.txt"
  for rep in 1 2; do
    for item in "w4g128 1,16" "bf16 16"; do
      read -r sc bt <<< "$item"
      [ -x ./quantbench_prev ] && GEN=128 Q=./quantbench_prev b "gen128 prev   " $sc $bt
      GEN=128 b "gen128 this   " $sc $bt
      GEN=128 b "gen128 this hw" $sc $bt QB_CUDA_ATTN_HW=1
    done
  done 2>&1 | tee "$OUT/ab_s19.txt"
  rm -f "$OUT/tmp.log"
}

block_s19b() {
  # Session 19 (H200): what each kernel class costs inside the decode graph, w4g128 1,16 at gen 128, with
  # it left out (QB_CUDA_TIMING_SKIP; outputs wrong), once; the activation is fused into gate|up at w4g128.
  for sk in none norm attn prod norm,attn,act; do GEN=128 b "gen128 skip $sk" w4g128 1,16 QB_CUDA_TIMING_SKIP=$sk; done \
    2>&1 | tee "$OUT/ab_s19b.txt"
  rm -f "$OUT/tmp.log"
}

block_s19c() {
  # Session 19 (H200): the half-warp attention with 8 key pairs per warp step (QB_CUDA_ATTN_HW_PAIRS=8: 16
  # keys, 256 bytes per lane in flight, 128 registers) against 4 (the default); and at one stream fewer key
  # splits with the half-warp kernel (QB_CUDA_ATTN_BLOCKS_PER_SM 2 and 1: 9 and 5 splits against 16).
  # The KV-read probe first (the attention alone in a graph), then two rounds at gen 128.
  ./qb_kv_read_probe > "$OUT/kv_read_probe.txt" 2>&1; sed -n '/decode attention alone/,/^$/p' "$OUT/kv_read_probe.txt"
  for rep in 1 2; do
    GEN=128 b "gen128 pairs4 " w4g128 1,16
    GEN=128 b "gen128 pairs8 " w4g128 1,16 QB_CUDA_ATTN_HW_PAIRS=8
    GEN=128 b "gen128 bps2   " w4g128 1 QB_CUDA_ATTN_BLOCKS_PER_SM=2
    GEN=128 b "gen128 bps1   " w4g128 1 QB_CUDA_ATTN_BLOCKS_PER_SM=1
    GEN=128 b "gen128 pairs4 " bf16 16
    GEN=128 b "gen128 pairs8 " bf16 16 QB_CUDA_ATTN_HW_PAIRS=8
  done 2>&1 | tee "$OUT/ab_s19c.txt"
  rm -f "$OUT/tmp.log"
}

block_s19d() {
  # Session 19 (H200): the one-stream split merge through a thread-block cluster (QB_CUDA_ATTN_CLUSTER=1:
  # each (head, token)'s 16 splits one cluster, partials in distributed shared memory, no fence or counter)
  # against the default (partials in L2, the last block merges): the backend check with the switch, then
  # w4g128 1,16 at gen 128 and 64 and w8 1 (16 streams: one split, no merge: a control), three rounds.
  check_with backend_check_cluster.log QB_CUDA_ATTN_CLUSTER=1
  vs_env QB_CUDA_ATTN_CLUSTER=1 default cluster 3 "w4g128 1,16 128" "w4g128 1 64" "w8 1 128" 2>&1 | tee "$OUT/ab_s19d.txt"
  rm -f "$OUT/tmp.log"
}

block_s19e() {
  # Session 19 (H200): with the half-warp attention, the attention launched early at 16-token steps too
  # (QB_CUDA_PDL_SMALL_T=16 QB_CUDA_PDL_SMALL=2: only the attention early, its first keys loaded before
  # the wait) against the default (small kernels early at one-token steps only): the backend check with
  # the switch, then w4g128 and bf16 at 16 streams, gen 128, three rounds.
  check_with backend_check_attn16.log QB_CUDA_PDL_SMALL_T=16 QB_CUDA_PDL_SMALL=2
  vs_env "QB_CUDA_PDL_SMALL_T=16 QB_CUDA_PDL_SMALL=2" "default     " "attn early16" 3 "w4g128 16 128" "bf16 16 128" \
    2>&1 | tee "$OUT/ab_s19e.txt"
  rm -f "$OUT/tmp.log"
}
