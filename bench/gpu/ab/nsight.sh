# ab.sh's blocks: Nsight Compute on the decode kernels in place (where the machine allows it).
# Sourced by ab.sh, which runs the blocks named on its command line; the helpers are in lib.sh.

# ncudec: Nsight Compute sections for the decode split attention (1, 16 streams) and one layer's four products.
block_ncudec() {  # Nsight Compute on decode kernels in place (w4g128; clocks not locked): split attention at 16
  # and 1 streams (a decode launch: 64 skipped), then layer 2's four products at 1 and 16 tokens (at 16 streams
  # the 16 prefills end in a one-token lm_head each: 16 more skipped)
  NCU=/usr/local/cuda/bin/ncu
  S="--section SpeedOfLight --section MemoryWorkloadAnalysis --section Occupancy --section WarpStateStats --section LaunchStats --section SchedulerStats"
  B="./quantbench bench synthetic:llama2-7b --backend cuda --scheme w4g128 --prompt-len 128 --gen-len 6 --reps 1 --warmup 0 --no-progress"
  for run in "attn16 attention_split 64 1 16" "attn1 attention_split 64 1 1" "qgemv1 qgemv 8 4 1" "qgemv16 qgemv 24 4 16"; do
    set -- $run
    timeout 150 $NCU --clock-control none $S -k regex:$2 -s $3 -c $4 $B --batch $5 > "$OUT/ncu_$1.txt" 2>&1
    echo "== ncu $1 rc $?"
    grep -E "qgemv_kernel|attention_split|Duration|DRAM Throughput|Memory Throughput|L2 Hit|Achieved Occupancy|Registers Per|Block Limit Reg|Grid Size|Theoretical Occ|No Eligible|Warp Cycles Per Issued" "$OUT/ncu_$1.txt" | cut -c1-150 | head -60
  done
}

# ncu16: Nsight Compute (with stall reasons) on the first decode step's 16-token products and the 16-stream attention.
block_ncu16() {  # Nsight Compute on the first decode step's 16-token products (layers 0-1: the 16 prefills' one-token
  # lm_heads are left out by the kernel's name) and the 16-stream split attention, with the warps' stall reasons
  NCU=/usr/local/cuda/bin/ncu
  S="--section SpeedOfLight --section MemoryWorkloadAnalysis --section Occupancy --section WarpStateStats --section LaunchStats"
  M="--metrics regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio"
  B="./quantbench bench synthetic:llama2-7b --backend cuda --scheme w4g128 --prompt-len 128 --gen-len 6 --reps 1 --warmup 0 --no-progress --batch 16"
  timeout 200 $NCU --clock-control none --kernel-name-base demangled $S $M -k "regex:qgemv_kernel<.*int.2, .bool.1>" -s 0 -c 8 $B \
    > "$OUT/ncu_qgemv16.txt" 2>&1
  echo "== ncu qgemv16 rc $?"
  timeout 150 $NCU --clock-control none $S $M -k regex:attention_split -s 64 -c 2 $B > "$OUT/ncu_attn16.txt" 2>&1
  echo "== ncu attn16 rc $?"
  for f in qgemv16 attn16; do
    grep -E "qgemv_kernel|attention_split|Duration|DRAM Throughput|L1/TEX Cache Throughput|L2 Cache Throughput|L1/TEX Hit|L2 Hit|Mem Busy|Max Bandwidth|Achieved Occupancy|Registers Per|Grid Size|Block Size|Warp Cycles Per Issued" "$OUT/ncu_$f.txt" | cut -c1-150 | head -120
    grep -E "stalled_" "$OUT/ncu_$f.txt" | awk '$NF+0 > 0.3' | cut -c1-150 | head -80
  done
}

# ncusrc: Nsight Compute warp-stall samples per SASS instruction (CSV) for the 16-stream attention and gate|up at 16 and 1 tokens.
block_ncusrc() {  # Nsight Compute warp-stall sampling per SASS instruction (source page as CSV): the 16-stream split
  # attention, and the gate|up product at 16 tokens and at one token (first decode step, layer 0)
  NCU=/usr/local/cuda/bin/ncu
  B="./quantbench bench synthetic:llama2-7b --backend cuda --scheme w4g128 --prompt-len 128 --gen-len 6 --reps 1 --warmup 0 --no-progress"
  for run in "attn16|regex:attention_split|64|16" "gu16|regex:qgemv_kernel<.*int.2, .int.2, .bool.1>|1|16" \
             "gu1|regex:qgemv_kernel<.*int.2, .int.1, .bool.1>|2|1"; do
    IFS='|' read -r name kern skip batch <<< "$run"
    timeout 200 $NCU --clock-control none --kernel-name-base demangled --section SourceCounters --section WarpStateStats \
      --section SpeedOfLight -k "$kern" -s $skip -c 1 -f -o "$OUT/rep_$name" $B --batch $batch > "$OUT/ncu_src_$name.log" 2>&1
    echo "== ncu $name rc $?"
    $NCU -i "$OUT/rep_$name.ncu-rep" --page source --csv --print-source sass > "$OUT/src_$name.csv" 2> "$OUT/src_$name.err"
    echo "source page rc $? ($(wc -l < "$OUT/src_$name.csv") lines)"; head -c 300 "$OUT/src_$name.err"
    python3 ncu_stalls.py "$OUT/src_$name.csv" 15 > "$OUT/stalls_$name.txt" && head -12 "$OUT/stalls_$name.txt"
  done
}

# pipes: Nsight Compute pipe utilization (tensor, ALU, FMA, issue) of the w4g128 products at 16 and 1 tokens
#   and w8's at 16 (first decode steps), to tell which unit bounds the 16-token int4 kernel.
block_pipes() {  # Nsight Compute: pipe utilization of the decode products (which unit bounds the 16-token int4 kernel?)
  NCU=/usr/local/cuda/bin/ncu
  S="--section SpeedOfLight --section ComputeWorkloadAnalysis --section Occupancy"
  M="--metrics sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active,sm__inst_executed_pipe_tensor_op_hmma.avg.pct_of_peak_sustained_active,sm__pipe_alu_cycles_active.avg.pct_of_peak_sustained_active,sm__pipe_fma_cycles_active.avg.pct_of_peak_sustained_active,sm__pipe_fmaheavy_cycles_active.avg.pct_of_peak_sustained_active,smsp__issue_active.avg.pct_of_peak_sustained_active,sm__inst_executed_pipe_lsu.avg.pct_of_peak_sustained_active"
  for run in "w4g128|16|regex:qgemv_kernel_capped" "w4g128|1|regex:qgemv_kernel<.*int.2, .int.1, .bool.1>" \
             "w8|16|regex:qgemv_kernel<.*int.1, .int.0, .bool.0, .int.4, .int.2"; do  # (bf16 decode runs on cuBLAS)
    IFS='|' read -r sc batch kern <<< "$run"
    B="./quantbench bench synthetic:llama2-7b --backend cuda --scheme $sc --prompt-len 128 --gen-len 4 --reps 1 --warmup 0 --no-progress --batch $batch"
    timeout 150 $NCU --clock-control none --kernel-name-base demangled $S $M -k "$kern" -s 2 -c 3 $B > "$OUT/ncu_pipes_${sc}_$batch.txt" 2>&1
    r=$?; echo "== ncu pipes $sc $batch rc $r"
    if [ $r != 0 ]; then  # a metric this ncu lacks: the sections alone
      grep -E "ERROR" "$OUT/ncu_pipes_${sc}_$batch.txt" | head -3
      timeout 150 $NCU --clock-control none --kernel-name-base demangled $S --print-details all -k "$kern" -s 2 -c 3 $B > "$OUT/ncu_pipes_${sc}_$batch.txt" 2>&1
      echo "== ncu pipes (sections only) $sc $batch rc $?"
    fi
    grep -E "qgemv_kernel|Duration|DRAM Throughput|Compute \(SM\) Throughput|Achieved Occupancy|Registers Per|Grid Size|Block Size|pipe_|issue_active|Issue Slots|Executed Ipc A" "$OUT/ncu_pipes_${sc}_$batch.txt" | cut -c1-160 | head -60
  done
}
