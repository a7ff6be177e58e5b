# ab.sh's blocks from session 20 (docs/perf.md, session 20, says what each measured and what it found).
# Sourced by ab.sh, which runs the blocks named on its command line; the helpers are in lib.sh.

block_s20() {
  # Session 20 (H200): 16-token qgemv variants staged beside this build as quantbench_<v> / qb_gpu_bench_<v>
  # (VARIANTS, default "prev pp112"): both benches' w4g128 kernels (--quick), then 16-stream w4g128 steps
  # at gen 128, interleaved, three rounds.
  for v in ${VARIANTS:-prev pp112} this; do
    bin=./qb_gpu_bench_$v; [ $v = this ] && bin=./qb_gpu_bench
    [ -x $bin ] || continue
    mkdir -p "$OUT/gb_$v"; QB_BENCH_SPEC=w4g128 timeout 300 $bin "$OUT/gb_$v" --quick > "$OUT/gb_${v}_quick.log" 2>&1
    echo "== qb_gpu_bench $v rc $?"
    sed -n '/^Per-shape decode/,/^$/p' "$OUT/gb_${v}_quick.log" | awk '$1 == "shape" || $3 == 16' | cut -c1-120
  done
  for rep in 1 2 3; do
    for v in ${VARIANTS:-prev pp112}; do
      [ -x ./quantbench_$v ] && GEN=128 Q=./quantbench_$v b "gen128 $v" w4g128 16
    done
    GEN=128 b "gen128 this" w4g128 16
  done 2>&1 | tee "$OUT/ab_s20.txt"
  rm -f "$OUT/tmp.log"
}

block_s20b() {
  # Session 20: launch rule 7 (the 16-token half step at R = 2 everywhere; 16 warps on small grids, else 4)
  # against rule 6's shapes with the same kernels (QB_CUDA_LAUNCH_RULE=6): w4g128 16 at gen 128, three rounds.
  GEN=128 vs_env "QB_CUDA_LAUNCH_RULE=6" "gen128 rule7" "gen128 rule6" 3 "w4g128 16" 2>&1 | tee "$OUT/ab_s20b.txt"
  rm -f "$OUT/tmp.log"
}

block_s20c() {
  # Session 20: rule 7's one-token shapes (4 warps on the wide grids: gate|up, lm_head) against rule 6's
  # (QB_CUDA_LAUNCH_RULE=6; at one token the kernels are the same): w4g128 1 at gen 128, three rounds; then
  # the L2 prefetch at 16-token steps too (QB_CUDA_L2_PREFETCH_MAX_T=16) against the default (one-token
  # steps only), w4g128 16 at gen 128, two rounds.
  GEN=128 vs_env "QB_CUDA_LAUNCH_RULE=6" "gen128 rule7" "gen128 rule6" 3 "w4g128 1" 2>&1 | tee "$OUT/ab_s20c.txt"
  GEN=128 vs_env "QB_CUDA_L2_PREFETCH_MAX_T=16" "gen128 default" "gen128 pf16   " 2 "w4g128 16" 2>&1 | tee -a "$OUT/ab_s20c.txt"
  rm -f "$OUT/tmp.log"
}

block_s20d() {
  # Session 20: this build's default (launch rule 7: the 16-token ping-pong kernel, its shapes, 4 warps on
  # the wide one-token grids) against QB_CUDA_LAUNCH_RULE=6 (session 19's kernels and shapes, copy_loop16):
  # w4g128 1 and 16 at gen 128, three rounds.
  GEN=128 vs_env "QB_CUDA_LAUNCH_RULE=6" "gen128 rule7" "gen128 rule6" 3 "w4g128 16" "w4g128 1" 2>&1 | tee "$OUT/ab_s20d.txt"
  rm -f "$OUT/tmp.log"
}

block_s20e() {
  # Session 20: where a 16-stream w4g128 step goes now (QB_CUDA_TIMING_SKIP: kernel classes left out of
  # the graph, outputs wrong), gen 128, two rounds.
  for rep in 1 2; do
    for sk in "" norm attn act "norm,attn,act" prod; do
      GEN=128 b "gen128 skip=${sk:-none}" w4g128 16 ${sk:+QB_CUDA_TIMING_SKIP=$sk}
    done
  done 2>&1 | tee "$OUT/ab_s20e.txt"
  rm -f "$OUT/tmp.log"
}

block_s20f() {
  # Session 20: the wide 16-token grids (gate|up, lm_head) at 2 warps per block (this build) against 4
  # (quantbench_prev, 64e9985), w4g128 16 at gen 128, three rounds; then the small kernels launched early
  # at 16-token steps too (QB_CUDA_PDL_SMALL_T=16) against the default, two rounds.
  GEN=128 vs_staged ./quantbench_prev "gen128 w4 " "gen128 w2 " 3 "w4g128 16" 2>&1 | tee "$OUT/ab_s20f.txt"
  GEN=128 vs_env "QB_CUDA_PDL_SMALL_T=16" "gen128 default " "gen128 early16 " 2 "w4g128 16" 2>&1 | tee -a "$OUT/ab_s20f.txt"
  rm -f "$OUT/tmp.log"
}

block_s20g() {
  # Session 20: launch rule 7 against rule 6 on the other synthetic models (their shapes were not in the
  # sweeps: Llama-3-8B's n_ff 14336 and 128256-token vocabulary, Qwen2.5-7B's 3584 x 18944), w4g128 1,16 at
  # gen 128, two rounds.
  for m in synthetic:llama3-8b synthetic:qwen2.5-7b; do
    MODEL=$m GEN=128 vs_env "QB_CUDA_LAUNCH_RULE=6" "${m#synthetic:} rule7" "${m#synthetic:} rule6" 2 "w4g128 1,16"
  done 2>&1 | tee "$OUT/ab_s20g.txt"
  rm -f "$OUT/tmp.log"
}

block_s20h() {
  # Session 20: rule 7's one-token 4-warp shape only where the grid fits in one wave, against rule 6, on
  # the three synthetic models: w4g128 1 at gen 128, two rounds.
  for m in synthetic:llama2-7b synthetic:llama3-8b synthetic:qwen2.5-7b; do
    MODEL=$m GEN=128 vs_env "QB_CUDA_LAUNCH_RULE=6" "${m#synthetic:} rule7" "${m#synthetic:} rule6" 2 "w4g128 1"
  done 2>&1 | tee "$OUT/ab_s20h.txt"
  rm -f "$OUT/tmp.log"
}

block_s20n() {
  # Session 20: Nsight Compute (details page and warp-stall samples per SASS instruction) on the 16-token
  # gated gate|up product of this build and, if staged, of quantbench_prev (first decode steps).
  NCU=/usr/local/cuda/bin/ncu
  for v in this prev; do
    q=./quantbench; [ $v = prev ] && q=./quantbench_prev
    [ -x $q ] || continue
    timeout 200 $NCU --clock-control none --kernel-name-base demangled --section SourceCounters --section WarpStateStats \
      --section SpeedOfLight --section Occupancy --section LaunchStats --section SchedulerStats \
      -k "regex:qgemv_kernel_capped<.*\(bool\)1, \(bool\)1(, \(bool\)0)?>" -s 2 -c 1 -f -o "$OUT/rep_gu16_$v" \
      $q bench synthetic:llama2-7b --backend cuda --scheme w4g128 --prompt-len 128 --gen-len 6 --reps 1 --warmup 0 \
      --no-progress --batch 16 > "$OUT/ncu_gu16_$v.log" 2>&1
    echo "== ncu gu16 $v rc $?"
    $NCU -i "$OUT/rep_gu16_$v.ncu-rep" --page details > "$OUT/ncu_gu16_$v.txt" 2>&1
    grep -E "Duration|DRAM Throughput|Achieved Occupancy|Theoretical Occ|Registers Per|Grid Size|Block Size|Issue Slots Busy|No Eligible|Active Warps Per|Eligible Warps|Warp Cycles Per Issued" "$OUT/ncu_gu16_$v.txt" | cut -c1-120
    $NCU -i "$OUT/rep_gu16_$v.ncu-rep" --page source --csv --print-source sass > "$OUT/src_gu16_$v.csv" 2> /dev/null
    python3 ncu_stalls.py "$OUT/src_gu16_$v.csv" 12 > "$OUT/stalls_gu16_$v.txt" && head -30 "$OUT/stalls_gu16_$v.txt"
  done
  rm -f "$OUT/tmp.log"
}
