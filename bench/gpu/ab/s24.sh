# ab.sh's blocks from session 24 (docs/perf.md, session 24, says what each measured and what it found).
# Sourced by ab.sh, which runs the blocks named on its command line; the helpers are in lib.sh.

block_s24() {
  # Session 24: w8g16 with mins (GGUF Q2_K's form, new): the launch-shape sweep against the rule, then
  # one- and 16-stream steps at gen 128 beside w8g16 (Q6_K's and Q3_K's form: same bytes but the mins)
  # and w8g32m, two rounds.
  rule_vs_best w8g16m | tee "$OUT/sweep_w8g16m.txt"
  for rep in 1 2; do
    for sc in w8g16m w8g16 w8g32m; do GEN=128 b "gen128" $sc 1,16; done
  done 2>&1 | tee "$OUT/ab_s24.txt"
  rm -f "$OUT/tmp.log"
}

block_s24b() {
  # Session 24: w8g16m's launch shapes (rule 9, this build) against rule 8's, steps at gen 128, interleaved,
  # two rounds; then the bench's table for q4_k_m and for a GGUF file with q2_k matrices (the stored-bytes line).
  GEN=128 vs_env "QB_CUDA_LAUNCH_RULE=8" "gen128 rule9" "gen128 rule8" 2 "w8g16m 1,16" 2>&1 | tee "$OUT/ab_s24b.txt"
  for m in synthetic:llama2-7b models/rand-llama-q2_k.gguf; do
    sc="--scheme q4_k_m"; [ "$m" = synthetic:llama2-7b ] || sc=
    timeout 120 ./quantbench bench $m --backend cuda $sc --batch 1,16 --prompt-len 128 --gen-len 64 --reps 2 \
      --warmup 1 --no-progress --json "$OUT/bench_s24b_$(basename $m).json" 2>&1 | head -12
  done 2>&1 | tee -a "$OUT/ab_s24b.txt"
  rm -f "$OUT/tmp.log"
}

block_s24c() {
  # Session 24: qgemm for int8 with groups of 16 (w8g16: GGUF Q6_K, Q3_K; w8g16m: Q2_K) and with an output row
  # stride (the parts of a split q|k|v stack): its checks (qb_cuda_tests qgemm), the backend check on the models
  # with those, then 512-token prefills on synthetic:llama2-7b (p: prefill tok/s and the share of the same-run
  # cuBLAS GEMM), this build against the previous one (quantbench_prev: w8g16 and split stacks dequantized for
  # cuBLAS), interleaved, two rounds: q4_k_m, q5_k_m, w8g16, w8g16m; bf16 once.
  qgemm_then_backend_check g16 models/rand-llama-{q6_k,q3_k,q2_k,q4_k_m,q5_k_m}.gguf
  for rep in 1 2; do
    for sc in q4_k_m q5_k_m w8g16 w8g16m; do p "this" $sc; [ -x ./quantbench_prev ] && Q=./quantbench_prev p "prev" $sc; done
  done 2>&1 | tee "$OUT/ab_s24c.txt"
  p "this" bf16 2>&1 | tee -a "$OUT/ab_s24c.txt"
  rm -f "$OUT/tmp.log"
}

block_s24d() {
  # Session 24: w4g32m's half step at R = 2 (new; before, R = 1 only): the launch-shape sweep, best of each
  # row-block count per shape against the rule's shape.
  KIND='c ~ /^auto/ ? "rule" : c ~ /^R1/ ? "R1" : "R2"' KINDS="rule R1 R2" rule_vs_best w4g32m | tee "$OUT/sweep_s24d.txt"
}

block_s24e() {
  # Session 24: w4g32m's 16-token shapes at R = 2 (rule 9, this build) against rule 8's (R = 1), steps at gen 128,
  # interleaved: w4g32m and q4_k_m at 16 streams (and one stream: unchanged) on synthetic:llama2-7b (two rounds),
  # llama3-8b and qwen2.5-7b (one round each).
  GEN=128 vs_env "QB_CUDA_LAUNCH_RULE=8" "llama2-7b rule9" "llama2-7b rule8" 2 "w4g32m 1,16" "q4_k_m 16" 2>&1 | tee "$OUT/ab_s24e.txt"
  for m in llama3-8b qwen2.5-7b; do
    MODEL=synthetic:$m GEN=128 vs_env "QB_CUDA_LAUNCH_RULE=8" "$m rule9" "$m rule8" 1 "w4g32m 16" "q4_k_m 16"
  done 2>&1 | tee -a "$OUT/ab_s24e.txt"
  rm -f "$OUT/tmp.log"
}

block_s24f() {
  # Session 24: w4g32m's launch-shape sweep on Llama-3-8B's and Qwen2.5-7B's products (its 16-token R = 2 shapes
  # made a Llama-3-8B 16-stream step slower: s24e), best of each row-block count per shape against the rule.
  for m in llama3-8b qwen2.5-7b; do
    TAG=$m KIND='c ~ /^auto/ ? "rule" : c ~ /^R1/ ? "R1" : "R2"' KINDS="rule R1 R2" rule_vs_best w4g32m QB_BENCH_SHAPES=$m
  done 2>&1 | tee "$OUT/sweep_s24f.txt"
}
