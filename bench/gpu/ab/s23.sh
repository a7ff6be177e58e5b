# ab.sh's blocks from session 23 (docs/perf.md, session 23, says what each measured and what it found).
# Sourced by ab.sh, which runs the blocks named on its command line; the helpers are in lib.sh.

block_s23() {
  # Session 23: GGUF Q6_K packed as w8g16 (before: dense f16), and stacks whose parts are packed in different
  # formats (Q4_K_M's q|k in Q4_K with v in Q6_K) run as one product per format (before: dense f16 as a whole).
  # Kernel level: the w8g16 sweep (QB_BENCH_SPEC), per shape at 1 and 16 tokens the rule's row and the best.
  # Steps at gen 128 at 1 and 16 streams on synthetic:llama2-7b's q4_k_m (GGUF Q4_K_M's mix) as it runs now,
  # with split stacks off (QB_CUDA_SPLIT_STACKS=0), with Q6_K dense (QB_CUDA_PACK_Q6K=0: how a Q4_K_M file ran
  # before), and all Q4_K (w4g32m), interleaved, two rounds; now and Q6_K dense once on llama3-8b.
  rule_vs_best w8g16 | tee "$OUT/sweep_w8g16.txt"
  for rep in 1 2; do
    GEN=128 b "gen128 now" q4_k_m 1,16
    GEN=128 b "gen128 nosplit" q4_k_m 1,16 QB_CUDA_SPLIT_STACKS=0
    GEN=128 b "gen128 q6dense" q4_k_m 1,16 QB_CUDA_PACK_Q6K=0
    GEN=128 b "gen128" w4g32m 1,16
  done 2>&1 | tee "$OUT/ab_s23.txt"
  for v in "" QB_CUDA_PACK_Q6K=0; do MODEL=synthetic:llama3-8b GEN=128 b "llama3-8b ${v:-now}" q4_k_m 1,16 $v; done 2>&1 |
    tee -a "$OUT/ab_s23.txt"
  rm -f "$OUT/tmp.log"
}

block_s23b() {
  # Session 23: launch rule 9 (w8g16's own shapes) against 8: the w8g16 sweep, rule and best per shape (as run
  # at 67ab6d0 it also asked for w8g32, which qgemv_bench did not offer then: nothing ran); then q4_k_m steps at
  # gen 128 at 1 and 16 streams under rules 9 and 8, interleaved, two rounds on synthetic:llama2-7b, one on
  # llama3-8b.
  rule_vs_best w8g16 QB_BENCH_NO_PDL=1 2>&1 | tee "$OUT/sweep_s23b.txt"
  GEN=128 vs_env "QB_CUDA_LAUNCH_RULE=8" "gen128 rule9" "gen128 rule8" 2 "q4_k_m 1,16" 2>&1 | tee "$OUT/ab_s23b.txt"
  MODEL=synthetic:llama3-8b GEN=128 vs_env "QB_CUDA_LAUNCH_RULE=8" "llama3-8b rule9" "llama3-8b rule8" 1 "q4_k_m 1,16" 2>&1 |
    tee -a "$OUT/ab_s23b.txt"
  rm -f "$OUT/tmp.log"
}

block_s23c() {
  # Session 23: GGUF Q5_K packed as w8g32 with mins (before: dense f16). The w8g32m and w8g32 sweeps, rule and
  # best per shape; then steps at gen 128 at 1 and 16 streams on synthetic:llama2-7b: q5_k_m (Q5_K_M's mix,
  # w8g32m with w8g16), w8g32m alone, bf16 (what dense streamed), interleaved, two rounds.
  for sp in w8g32m w8g32; do rule_vs_best $sp QB_BENCH_NO_PDL=1; done 2>&1 | tee "$OUT/sweep_s23c.txt"
  for rep in 1 2; do
    for sc in q5_k_m w8g32m bf16; do GEN=128 b "gen128" $sc 1,16; done
  done 2>&1 | tee "$OUT/ab_s23c.txt"
  rm -f "$OUT/tmp.log"
}

block_s23d() {
  # Session 23: launch rule 9 with the shapes of w8g32 and w8g32m against 8, steps at gen 128 at 1 and 16 streams,
  # interleaved, two rounds on synthetic:llama2-7b (q5_k_m, w8g32: GGUF Q8_0's form, q4_k_m), one on llama3-8b.
  GEN=128 vs_env "QB_CUDA_LAUNCH_RULE=8" "gen128 rule9" "gen128 rule8" 2 "q5_k_m 1,16" "w8g32 1,16" "q4_k_m 1,16" 2>&1 |
    tee "$OUT/ab_s23d.txt"
  MODEL=synthetic:llama3-8b GEN=128 vs_env "QB_CUDA_LAUNCH_RULE=8" "llama3-8b rule9" "llama3-8b rule8" 1 "q5_k_m 1,16" \
    "w8g32 1,16" 2>&1 | tee -a "$OUT/ab_s23d.txt"
  rm -f "$OUT/tmp.log"
}

block_s23e() {
  # Session 23: rule 9's 16-token mid grids at R = 2 x 4 warps only where that gives every SM two blocks (this
  # build) against rule 8, 16-stream steps at gen 128, interleaved, two rounds: w8g32 and q5_k_m on
  # synthetic:llama3-8b (its q|k|v: 192 blocks, now rule 8's shape) and w8g32 on llama2-7b (384, unchanged).
  for rep in 1 2; do
    MODEL=synthetic:llama3-8b GEN=128 vs_env "QB_CUDA_LAUNCH_RULE=8" "llama3-8b rule9" "llama3-8b rule8" 1 "w8g32 16" "q5_k_m 16"
    GEN=128 vs_env "QB_CUDA_LAUNCH_RULE=8" "gen128 rule9" "gen128 rule8" 1 "w8g32 16"
  done 2>&1 | tee "$OUT/ab_s23e.txt"
  rm -f "$OUT/tmp.log"
}

block_s23f() {
  # Session 23: qgemm (the fused prefill product) with mins, w4g32m (GGUF Q4_1, Q4_K) and w8g32m (Q5_K): its
  # checks (qb_cuda_tests qgemm), the backend check on the models with mins, then 512-token prefills on
  # synthetic:llama2-7b (p: prefill tok/s and the share of the same-run cuBLAS GEMM): q4_k_m, q5_k_m and w4g32m
  # with qgemm and with dequantize + cuBLAS (QB_CUDA_QGEMM=0, the path before), w4g128 and bf16, one round. (As
  # run at ac185b9 it had a copy of p printing the bench row too.)
  qgemm_then_backend_check mins models/rand-llama-{q4_1,q4_k,q4_k_m,q5_k,q5_k_m}.gguf
  for sc in q4_k_m q5_k_m w4g32m; do p "qgemm" $sc; p "deq+blas" $sc QB_CUDA_QGEMM=0; done 2>&1 | tee "$OUT/ab_s23f.txt"
  for sc in w4g128 bf16; do p "this" $sc; done 2>&1 | tee -a "$OUT/ab_s23f.txt"
  rm -f "$OUT/tmp.log"
}
