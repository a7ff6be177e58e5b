# ab.sh's blocks from session 18 (docs/perf.md, session 18, says what each measured and what it found).
# Sourced by ab.sh, which runs the blocks named on its command line; the helpers are in lib.sh.

s18_s18d_runs() {  # BLOCK: s18 and s18d share these runs
  local blk=$1
  vs_staged ./quantbench_prev "prev  " "this  " 3 "w4g128 1" "w4g128 1 128" "w8 1" "w4g128 16" 2>&1 | tee "$OUT/ab_$blk.txt"
  rm -f "$OUT/tmp.log"
}

block_s18() {
  s18_s18d_runs s18
}

block_s18d() {
  s18_s18d_runs s18d
}

block_s18b() {
  # Session 18: the KV-read probe with graph timings beside the single launches, then what attention
  # costs inside the decode graph at the table's length (gen 128: mean context 192, the probe's):
  # w4g128 at 16 and 1 streams with and without it (QB_CUDA_TIMING_SKIP; outputs wrong), twice.
  ./qb_kv_read_probe 2>&1 | tee "$OUT/kv_read_probe.txt"
  for rep in 1 2; do
    for sk in none attn; do GEN=128 b "gen128 skip $sk" w4g128 16,1 QB_CUDA_TIMING_SKIP=$sk; done
  done 2>&1 | tee "$OUT/ab_s18b.txt"
  rm -f "$OUT/tmp.log"
}

block_s18c() {
  # Session 18: the f16 decode attention in blocks of 8 warps, 4 keys per warp step, 64 registers
  # (QB_CUDA_ATTN_WARPS=8) against the default 4 warps of 8 keys at 96 registers: the backend check with
  # 8 warps, then w4g128 at 16 streams (gen 128 and 64) and one stream, three rounds; bf16 at 16 once.
  # Ran at commit 6a5b588; the switch was reverted with its kernels (docs/perf.md, session 18).
  check_with backend_check_warps8.log QB_CUDA_ATTN_WARPS=8
  vs_env QB_CUDA_ATTN_WARPS=8 warps4 warps8 3 "w4g128 16 128" "w4g128 16 64" "w4g128 1 64" 2>&1 | tee "$OUT/ab_s18c.txt"
  vs_env QB_CUDA_ATTN_WARPS=8 warps4 warps8 1 "bf16 16 128" 2>&1 | tee -a "$OUT/ab_s18c.txt"
  rm -f "$OUT/tmp.log"
}

block_s18e() {
  # Session 18: the split attention's two fences acquire-release instead of sequentially consistent
  # (this build) against quantbench_prev (51914d6, the merge of s18d); two rounds, one stream. Ran at
  # commit 4098e3a: neutral, reverted.
  vs_staged ./quantbench_prev "prev  " "this  " 2 "w4g128 1 128" "w4g128 1" "w8 1" 2>&1 | tee "$OUT/ab_s18e.txt"
  rm -f "$OUT/tmp.log"
}
