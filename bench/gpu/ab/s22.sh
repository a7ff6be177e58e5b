# ab.sh's blocks from session 22 (docs/perf.md, session 22, says what each measured and what it found).
# Sourced by ab.sh, which runs the blocks named on its command line; the helpers are in lib.sh.

block_s22() {
  # Session 22: w4g32 with mins (GGUF Q4_1 and Q4_K packed, weight q * s + m; before, both ran as dense f16).
  # Kernel level: the w4g32m sweep (QB_BENCH_SPEC), per shape at 1 and 16 tokens the rule's row and the best
  # half-step shape (its only kernel: R = 1). Then steps at gen 128 on synthetic:llama2-7b at 1 and 16
  # streams: w4g32m beside asymmetric w4g32 (the nearest format), symmetric w4g32 and bf16 (what the dense
  # f16 path streamed), interleaved, two rounds; once on synthetic:llama3-8b.
  rule_vs_best w4g32m | tee "$OUT/sweep_w4g32m.txt"
  for rep in 1 2; do
    for sc in w4g32m w4g32-asym w4g32 bf16; do GEN=128 b "gen128" $sc 1,16; done
  done 2>&1 | tee "$OUT/ab_s22.txt"
  for sc in w4g32m w4g32-asym; do MODEL=synthetic:llama3-8b GEN=128 b "llama3-8b" $sc 1,16; done 2>&1 | tee -a "$OUT/ab_s22.txt"
  rm -f "$OUT/tmp.log"
}

block_s22b() {
  # Session 22: the kernel with mins in its two forms, steps at gen 128 at 1 and 16 streams, interleaved,
  # three rounds. 63a2e8d: the group's activation sum from an mma on ones, the one-token kernel capped at 96
  # registers (quantbench_ones, staged; uncapped at 100 registers it had run 4% slower: 2.28-2.29 against
  # 2.18-2.20 ms at one stream, same call); this build: weights q * s + m formed in f16 (78 registers).
  vs_staged ./quantbench_ones "gen128 ones" "gen128 f16w" 3 "w4g32m 1 128" "w4g32m 16 128" 2>&1 | tee "$OUT/ab_s22b.txt"
  rm -f "$OUT/tmp.log"
}

block_s22c() {
  # Session 22: w4g32m's launch shapes (this build: 12 warps on small grids at one token, 3 on the others at
  # 16 tokens) against asymmetric w4g32's (quantbench_prev, 64e2e22), steps at gen 128 at 1 and 16 streams,
  # interleaved, two rounds on synthetic:llama2-7b, one on llama3-8b.
  vs_staged ./quantbench_prev "gen128 prev" "gen128 this" 2 "w4g32m 1 128" "w4g32m 16 128" 2>&1 | tee "$OUT/ab_s22c.txt"
  MODEL=synthetic:llama3-8b vs_staged ./quantbench_prev "llama3-8b prev" "llama3-8b this" 1 "w4g32m 1,16 128" 2>&1 | tee -a "$OUT/ab_s22c.txt"
  rm -f "$OUT/tmp.log"
}

block_s22d() {
  # Session 22: w4g32m at 16 tokens on the wide grids (gate|up, lm_head): 3 warps (this build, d50bb70) against
  # 4 and 5 (quantbench_wide4, quantbench_wide5; q|k|v at 3 in all three), 16-stream steps at gen 128,
  # interleaved, two rounds on synthetic:llama2-7b and llama3-8b, one on qwen2.5-7b.
  for m in llama2-7b llama3-8b llama2-7b llama3-8b qwen2.5-7b; do
    for v in "" _wide4 _wide5; do MODEL=synthetic:$m GEN=128 Q=./quantbench$v b "$m ${v:-_wide3}" w4g32m 16; done
  done 2>&1 | tee "$OUT/ab_s22d.txt"
  rm -f "$OUT/tmp.log"
}

block_s22e() {
  # Session 22: the w4g32m sweep on Llama-3-8B's and Qwen2.5-7B's shapes (QB_BENCH_SHAPES), each shape's time at
  # 1 and 16 tokens per warp count (R = 1, the half step: its only kernel), to set its launch shapes.
  for m in llama3-8b qwen2.5-7b; do
    t0=$(date +%s); QB_BENCH_SHAPES=$m QB_BENCH_SPEC=w4g32m QB_BENCH_NO_PDL=1 timeout 200 ./qb_gpu_bench "$OUT" > "$OUT/qgemv_bench_w4g32m_$m.log" 2>&1
    echo "qgemv bench (w4g32m, $m) rc $? ($(( $(date +%s) - t0 )) s)"
    cp "$OUT/qgemv_results.csv" "$OUT/qgemv_results_w4g32m_$m.csv"
    awk -F, '$1 == "qgemv_w4g32m" && ($5 == 1 || $5 == 16) && $6 ~ /^(auto:)?R1w[0-9]+h$/ {
        k = $2 " n=" $5; a[k] = a[k] sprintf(" %s:%.1f", $6, $8) }
      END { for (k in a) print k, a[k] }' "$OUT/qgemv_results_w4g32m_$m.csv" | sort
  done 2>&1 | tee "$OUT/sweep_s22e.txt"
}

block_s22f() {
  # Session 22: w4g32m's launch rule as set from three models' sweeps (this build) against d50bb70's
  # (quantbench_prev: Llama-2-7B's sweep alone), steps at gen 128 at 1 and 16 streams, interleaved, two rounds
  # on synthetic:llama2-7b, llama3-8b and qwen2.5-7b.
  for m in llama2-7b llama3-8b qwen2.5-7b; do
    MODEL=synthetic:$m vs_staged ./quantbench_prev "$m prev" "$m this" 2 "w4g32m 1,16 128"
  done 2>&1 | tee "$OUT/ab_s22f.txt"
  rm -f "$OUT/tmp.log"
}
