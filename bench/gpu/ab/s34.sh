# ab.sh's blocks from session 34 (docs/perf.md, session 34, says what each measured and what it found).
# Sourced by ab.sh, which runs the blocks named on its command line; the helpers are in lib.sh.

# s34: asymmetric int4's scale pair and zero-point pair in one 8-byte entry, one load (this build), against the separate
#   zero-point array (5d29236, staged as quantbench_prev, qb_gpu_bench_prev, qb_qgemm_bench_prev): both qgemv benches for
#   w4g128a and w4g32a (--quick), both qgemm benches (--quick; all of them tarred), w4g32-asym at 16 streams with each
#   build's default rule and rule 5 (QB_CUDA_LAUNCH_RULE=5), decode interleaved two rounds (w4g128-asym and w4g32-asym
#   1,16, symmetric w4g128 1,16 as the unchanged control), 512-token prefills of w4g128-asym two rounds.
block_s34() {
  for bin in qb_gpu_bench qb_gpu_bench_prev; do
    [ -x ./$bin ] || continue
    for spec in w4g128a w4g32a; do
      mkdir -p "$OUT/${bin}_$spec"
      QB_BENCH_SPEC=$spec timeout 200 ./$bin "$OUT/${bin}_$spec" --quick > "$OUT/${bin}_${spec}.log" 2>&1
      echo "$bin $spec rc $?"
    done
  done
  for bin in qb_qgemm_bench qb_qgemm_bench_prev; do
    [ -x ./$bin ] && { timeout 300 ./$bin --quick > "$OUT/${bin}.txt" 2>&1; echo "$bin rc $?"; }
  done
  (cd "$OUT" && tar czf s34_benches.tgz qb_gpu_bench*_w4g* $(ls qb_qgemm_bench*.txt 2>/dev/null) && rm -rf qb_gpu_bench*_w4g*/ qb_qgemm_bench*.txt)
  # w4g32a at 16 tokens: the half step (rule 9) against rule 5's full step, both builds
  for rep in 1 2; do
    for q in ./quantbench_prev ./quantbench; do
      GEN=128 Q=$q b "${q#./} rule9" w4g32-asym 16
      GEN=128 Q=$q b "${q#./} rule5" w4g32-asym 16 QB_CUDA_LAUNCH_RULE=5
    done
  done 2>&1 | tee "$OUT/ab_s34r.txt"
  vs_staged ./quantbench_prev "s33 sep zeros" "s34 one load " 2 "w4g128-asym 1,16 128" "w4g32-asym 1,16 128" \
    "w4g128 1,16 128" 2>&1 | tee "$OUT/ab_s34.txt"
  for rep in 1 2; do
    Q=./quantbench_prev p "s33 sep zeros" w4g128-asym
    p "s34 one load " w4g128-asym
  done 2>&1 | tee -a "$OUT/ab_s34.txt"
  rm -f "$OUT/tmp.log"
}
