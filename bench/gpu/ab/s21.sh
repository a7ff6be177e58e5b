# ab.sh's blocks from session 21 (docs/perf.md, session 21, says what each measured and what it found).
# Sourced by ab.sh, which runs the blocks named on its command line; the helpers are in lib.sh.

# s18, s18d (session 18): the split-attention merge with its partial outputs loaded together with the
# splits' maxima and sums, one L2 round trip (this build) against quantbench_prev (main at e2233ec, whose
# merge loaded the partial outputs after the splits' weights); three rounds, gen 64, and w4g128 at one
# stream at gen 128 (the table's length). 16 streams run one split (no merge): a control. s18 ran commit
# b6a9266 (32 scalar loads per thread: slower, reverted); s18d ran 51914d6 (one 8-byte load per split with
# a running address: kept). docs/perf.md, session 18.
block_s21() {
  # Session 21: the half step for asymmetric w4g128 (launch rule 8, the default) against rule 7 (its
  # asymmetric products in full steps). Kernel level: the w4g128a sweep (QB_BENCH_SPEC), per shape at 1 and
  # 16 tokens the rule's row, rule 5's (= rule 7's for asymmetric), and the best half-step and full-step
  # shapes. Then steps at gen 128, w4g128-asym at 1 and 16 streams against QB_CUDA_LAUNCH_RULE=7,
  # interleaved, three rounds; then once on synthetic:llama3-8b and qwen2.5-7b.
  t0=$(date +%s); QB_BENCH_SPEC=w4g128a timeout 300 ./qb_gpu_bench "$OUT" > "$OUT/qgemv_bench_w4a.log" 2>&1
  echo "qgemv bench (w4g128a) rc $? ($(( $(date +%s) - t0 )) s)"
  best_per_kind "$OUT/qgemv_results.csv" '$1 ~ /^qgemv_w4g128a/ && $1 !~ /pdl/' \
    'c ~ /^auto/ ? "rule8" : c ~ /^rule5/ ? "rule7" : c ~ /h$/ ? "half" : "full"' "rule8 rule7 half full" |
    tee "$OUT/sweep_w4a.txt"
  GEN=128 vs_env "QB_CUDA_LAUNCH_RULE=7" "gen128 rule8" "gen128 rule7" 3 "w4g128-asym 16" "w4g128-asym 1" 2>&1 | tee "$OUT/ab_s21.txt"
  for m in synthetic:llama3-8b synthetic:qwen2.5-7b; do
    MODEL=$m GEN=128 vs_env "QB_CUDA_LAUNCH_RULE=7" "${m#synthetic:} rule8" "${m#synthetic:} rule7" 1 "w4g128-asym 1,16"
  done 2>&1 | tee -a "$OUT/ab_s21.txt"
  rm -f "$OUT/tmp.log"
}

block_s21d() {
  # Session 21: symmetric w4g32 at 1-8 tokens on wide and mid grids at R = 1 with 4 or 6 warps (staged builds
  # quantbench_w4, quantbench_w6) against this build (run at 8ebf8bf: R = 2, symmetric w4g128's shapes; 9e2c5e8
  # took the 4 warps): one stream at gen 128, interleaved, two rounds on synthetic:llama2-7b, one on llama3-8b.
  for rep in 1 2; do
    GEN=128 b "gen128 this" w4g32 1
    for v in w4 w6; do GEN=128 Q=./quantbench_$v b "gen128 $v  " w4g32 1; done
  done 2>&1 | tee "$OUT/ab_s21d.txt"
  MODEL=synthetic:llama3-8b GEN=128 b "llama3-8b this" w4g32 1 2>&1 | tee -a "$OUT/ab_s21d.txt"
  for v in w4 w6; do MODEL=synthetic:llama3-8b GEN=128 Q=./quantbench_$v b "llama3-8b $v  " w4g32 1; done 2>&1 | tee -a "$OUT/ab_s21d.txt"
  rm -f "$OUT/tmp.log"
}

block_s21c() {
  # Session 21: the half step for w4g32 (symmetric and asymmetric; launch rule 8) against rule 7 (full steps).
  # Kernel level: each spec's sweep (QB_BENCH_SPEC), per shape at 1 and 16 tokens the rule's row, rule 5's
  # (= rule 7's for these), and the best half-step and full-step shapes with R = 1 and R = 2 apart. Then
  # steps at gen 128 on synthetic:llama2-7b at 1 and 16 streams against QB_CUDA_LAUNCH_RULE=7, interleaved,
  # two rounds.
  for spec in w4g32 w4g32a; do
    QB_BENCH_SPEC=$spec timeout 300 ./qb_gpu_bench "$OUT" > "$OUT/qgemv_bench_$spec.log" 2>&1
    echo "qgemv bench ($spec) rc $?"
    awk -F, -v sp="qgemv_$spec" '($1 == sp || $1 == sp "-r5") && ($5 == 1 || $5 == 16) {
        k = $2 " n=" $5; c = $6
        kind = c ~ /^auto/ ? "rule8" : c ~ /^rule5/ ? "rule7" : (c ~ /h$/ ? "half" : "full") substr(c, 2, 1)
        if (!((k, kind) in t) || $8 < t[k, kind]) { t[k, kind] = $8; cf[k, kind] = c; sh[k, kind] = $13 }
        keys[k] = 1 }
      END { for (k in keys) { line = sprintf("%-22s", k)
              n = split("rule8 rule7 half1 half2 full1 full2", kinds, " ")
              for (i = 1; i <= n; ++i) line = line sprintf("  %-5s %-12s %6.2f", kinds[i], cf[k, kinds[i]], t[k, kinds[i]])
              print line } }' "$OUT/qgemv_results.csv" | sort | tee "$OUT/sweep_$spec.txt"
  done
  GEN=128 vs_env "QB_CUDA_LAUNCH_RULE=7" "gen128 rule8" "gen128 rule7" 2 "w4g32 1,16" "w4g32-asym 1,16" 2>&1 | tee "$OUT/ab_s21c.txt"
  rm -f "$OUT/tmp.log"
}

block_s21b() {
  # Session 21: asymmetric w4g128 at 1-8 tokens on wide and mid grids at R = 1 with 6 warps (this build) or
  # 4 (quantbench_w4) against rule 8 as first built (R = 2, quantbench_prev: 44d4614; run with f8f7ee8's build
  # as this one): one stream at gen 128,
  # interleaved, three rounds on synthetic:llama2-7b, one on llama3-8b and qwen2.5-7b.
  for rep in 1 2 3; do
    for v in prev w4; do GEN=128 Q=./quantbench_$v b "gen128 $v" w4g128-asym 1; done
    GEN=128 b "gen128 w6  " w4g128-asym 1
  done 2>&1 | tee "$OUT/ab_s21b.txt"
  for m in llama3-8b qwen2.5-7b; do
    for v in prev w4; do MODEL=synthetic:$m GEN=128 Q=./quantbench_$v b "$m $v" w4g128-asym 1; done
    MODEL=synthetic:$m GEN=128 b "$m w6  " w4g128-asym 1
  done 2>&1 | tee -a "$OUT/ab_s21b.txt"
  rm -f "$OUT/tmp.log"
}
