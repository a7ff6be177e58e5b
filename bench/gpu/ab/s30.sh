# ab.sh's blocks from session 30 (docs/perf.md, session 30, says what each measured and what it found).
# Sourced by ab.sh, which runs the blocks named on its command line; the helpers are in lib.sh.

# s30: the gated activation writing the down product's W8A8 codes against the activation kernel then a quantizer
#   (QB_CUDA_W8A8_ACT_CODES=0): INT8 W8A8 at 1, 8, 16 streams, FP8 at 1, 16; two rounds.
block_s30() {  # session 30: the gated activation writing the down product's W8A8 codes (this build's default) against the
  # activation kernel then a quantizer (QB_CUDA_W8A8_ACT_CODES=0): INT8 and FP8 W8A8 decode, two rounds
  vs_env QB_CUDA_W8A8_ACT_CODES=0 "act codes    " "act+quantizer" 2 "w8a8 1,8,16 128" "w8a8-fp8 1,16 128" \
    2>&1 | tee "$OUT/ab_s30.txt"
  rm -f "$OUT/tmp.log"
}

# s30w: the W8A8 tensor-core decode kernel with 8 warps per block everywhere (QB_CUDA_FP8_MMA_WARPS=8) against the
#   default rule, at 1-8 tokens (one 8-token tile): FP8 at 1, 4, 8 streams, INT8 at 4, 8; two rounds.
block_s30w() {  # session 30: the W8A8 tensor-core decode kernel with 8 warps per block at every shape
  # (QB_CUDA_FP8_MMA_WARPS=8) against the default rule (8 below 512 blocks, else 4) where it runs one 8-token tile:
  # FP8 at 1, 4, 8 streams, INT8 at 4, 8; two rounds
  vs_env QB_CUDA_FP8_MMA_WARPS=8 "rule warps   " "8 warps      " 2 "w8a8-fp8 1,4,8 128" "w8a8 4,8 128" \
    2>&1 | tee "$OUT/ab_s30w.txt"
  rm -f "$OUT/tmp.log"
}

# s30n: Nsight Compute on the first 16-token step's products, INT8 W8A8 (int8 tensor-core kernel) and w8 (qgemv), stall
#   reasons; INT8's gate|up stall samples per SASS line.
block_s30n() {  # session 30: Nsight Compute on the first 16-token decode step's products, INT8 W8A8 (the int8 tensor-core
  # kernel) beside w8 (qgemv) over about the same bytes, with stall reasons; then INT8's gate|up stall samples per SASS line
  NCU=/usr/local/cuda/bin/ncu
  S="--section SpeedOfLight --section MemoryWorkloadAnalysis --section Occupancy --section WarpStateStats --section LaunchStats"
  M="--metrics regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio"
  # (w8: 5 launches, the first the prefill's 16-row lm_head)
  for run in "int8|w8a8|regex:w8a8_mma_kernel|4" "w8|w8|regex:qgemv_kernel|5"; do
    IFS='|' read -r name sc kern count <<< "$run"
    timeout 200 $NCU --clock-control none --kernel-name-base demangled $S $M -k "$kern" -s 0 -c $count ./quantbench bench \
      synthetic:llama2-7b --backend cuda --scheme $sc --prompt-len 128 --gen-len 4 --reps 1 --warmup 0 --no-progress \
      --batch 16 > "$OUT/ncu16_$name.txt" 2>&1
    echo "== ncu $name rc $?"
    grep -E "w8a8_mma_kernel|qgemv_kernel|Duration|DRAM Throughput|L1/TEX Cache Throughput|L2 Cache Throughput|L1/TEX Hit|L2 Hit|Achieved Occupancy|Theoretical Occupancy|Registers Per|Grid Size|Block Size|Warp Cycles Per Issued|Block Limit|Issue Slots Busy|Eligible Warps" \
      "$OUT/ncu16_$name.txt" | cut -c1-150 | head -100
    grep -E "stalled_" "$OUT/ncu16_$name.txt" | awk '$NF+0 > 0.3' | cut -c1-150 | head -60
  done
  timeout 200 $NCU --clock-control none --kernel-name-base demangled --section SourceCounters --section WarpStateStats \
    --section SpeedOfLight -k "regex:w8a8_mma_kernel" -s 2 -c 1 -f -o "$OUT/rep_int8gu16" ./quantbench bench \
    synthetic:llama2-7b --backend cuda --scheme w8a8 --prompt-len 128 --gen-len 4 --reps 1 --warmup 0 --no-progress \
    --batch 16 > "$OUT/ncu_src_int8gu16.log" 2>&1
  echo "== ncu src int8 gate|up rc $?"
  $NCU -i "$OUT/rep_int8gu16.ncu-rep" --page source --csv --print-source sass > "$OUT/src_int8gu16.csv" 2>/dev/null
  python3 ncu_stalls.py "$OUT/src_int8gu16.csv" 25 > "$OUT/stalls_int8gu16.txt" && head -30 "$OUT/stalls_int8gu16.txt"
  rm -f "$OUT/rep_int8gu16.ncu-rep" "$OUT/src_int8gu16.csv"
}
