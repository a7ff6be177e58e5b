# ab.sh's blocks from session 31 (docs/perf.md, session 31, says what each measured and what it found).
# Sourced by ab.sh, which runs the blocks named on its command line; the helpers are in lib.sh.

block_s31() {  # session 31: FP8 W8A8's default (exact products summed in f32 on the f16 tensor cores: the decode kernel
  # to 16 tokens, the wgmma prefill kernel from 17) against the FP8 tensor cores from 9 tokens (QB_CUDA_FP8_TC=1): decode at
  # 1, 8, 16 streams, two rounds; then 512-token prefill, two rounds, with bf16, w8, w4g128 (qgemm, whose pipeline moved to
  # wgmma_pipe.cuh) and INT8 W8A8 beside them
  vs_env QB_CUDA_FP8_TC=1 "f16 tc       " "fp8 tc       " 2 "w8a8-fp8 1,8,16 128" 2>&1 | tee "$OUT/ab_s31.txt"
  for rep in 1 2; do
    p "f16 tc  " w8a8-fp8
    p "fp8 tc  " w8a8-fp8 QB_CUDA_FP8_TC=1
    for s in bf16 w8 w4g128 w8a8; do p "        " $s; done
  done 2>&1 | tee -a "$OUT/ab_s31.txt"
  rm -f "$OUT/tmp.log"
}

block_s31b() {  # session 31: 512-token FP8 prefill with the quantizer writing the prefill kernel's f16 layout itself (this
  # build) beside the FP8 tensor cores and w8, two rounds; then where its time goes
  for rep in 1 2; do
    p "f16 tc  " w8a8-fp8
    p "fp8 tc  " w8a8-fp8 QB_CUDA_FP8_TC=1
    p "        " w8
  done 2>&1 | tee "$OUT/ab_s31b.txt"
  pp_profile w8a8-fp8 QB_CUDA_FP8_TC 0 2>&1 | tee -a "$OUT/ab_s31b.txt"
  rm -f "$OUT/tmp.log"
}

block_s31q() {  # session 31: the W8A8 activation quantizers in their prefill shape (256 threads x 16 float4 per token, this
  # build) against the decode shape (1024 x 4, QB_CUDA_QUANT_PREFILL_1024=1): 512-token prefill, FP8 and INT8, two rounds;
  # then where FP8's time goes with each
  for rep in 1 2; do
    for s in w8a8-fp8 w8a8; do
      p "q 256x16 " $s
      p "q 1024x4 " $s QB_CUDA_QUANT_PREFILL_1024=1
    done
  done 2>&1 | tee "$OUT/ab_s31q.txt"
  pp_profile w8a8-fp8 QB_CUDA_QUANT_PREFILL_1024 0 1 2>&1 | tee -a "$OUT/ab_s31q.txt"
  rm -f "$OUT/tmp.log"
}

block_s31p() {  # session 31: where a 512-token FP8 W8A8 prefill's GPU time goes (the f16 tensor-core default, then the FP8
  # tensor cores) beside w8 (qgemm) and INT8 W8A8 (cuBLAS); then Nsight Compute's duration and throughput of layer 0's four
  # products in the FP8 prefill kernel and in w8's qgemm
  { pp_profile w8a8-fp8 QB_CUDA_FP8_TC 0 1; pp_profile w8 QB_CUDA_QGEMM 1; pp_profile w8a8 QB_CUDA_W8A8_GEMM_MIN 2; } 2>&1 |
    tee "$OUT/ab_s31p.txt"
  for run in "fp8|w8a8-fp8|regex:fp8_prefill_kernel|permute_codes" "w8|w8|regex:qgemm_kernel|qgemm"; do
    IFS='|' read -r name sc kern _ <<< "$run"
    timeout 150 /usr/local/cuda/bin/ncu --clock-control none --kernel-name-base demangled --section SpeedOfLight \
      --section Occupancy -k "$kern" -s 0 -c 4 ./quantbench bench synthetic:llama2-7b --backend cuda --scheme $sc \
      --prompt-len 512 --gen-len 1 --reps 1 --warmup 0 --no-progress --batch 1 > "$OUT/ncu_pp_$name.txt" 2>&1
    echo "== ncu $name rc $?"
    grep -E "fp8_prefill_kernel|qgemm_kernel|Duration|DRAM Throughput|Compute \(SM\) Throughput|Achieved Occupancy|Registers Per|Grid Size" \
      "$OUT/ncu_pp_$name.txt" | cut -c1-150 | head -40
  done 2>&1 | tee -a "$OUT/ab_s31p.txt"
  rm -f "$OUT/tmp.log"
}
