# ab.sh's blocks: 512-token prefill experiments: the fused attention, qgemm against dequantize + cuBLAS, profiles.
# Sourced by ab.sh, which runs the blocks named on its command line; the helpers are in lib.sh.

block_pp() {  # prefill 512: the fused attention kernel against the two-GEMM path, interleaved
  for rep in 1 2; do
    p "flash   " bf16
    p "twogemm " bf16 QB_CUDA_FLASH_ATTN=0
    p "flash   " w4g128
    p "twogemm " w4g128 QB_CUDA_FLASH_ATTN=0
  done 2>&1 | tee "$OUT/ab_prefill.txt"
  rm -f "$OUT/tmp.log"
}

# qgemm: the fused prefill GEMM (qb_qgemm_bench, 512-token prefills with QB_CUDA_QGEMM=1|0 and bf16, ncu).
block_qgemm() {  # prefill on packed weights: fused qgemm against dequantize + cuBLAS, then bf16; interleaved
  t0=$(date +%s); timeout 300 ./qb_qgemm_bench > "$OUT/qgemm_bench.txt" 2>&1
  echo "qgemm bench rc $? ($(( $(date +%s) - t0 )) s)"; cat "$OUT/qgemm_bench.txt"
  for rep in 1 2; do
    p "qgemm   " w4g128
    p "deq+blas" w4g128 QB_CUDA_QGEMM=0
    p "dense   " bf16
  done 2>&1 | tee "$OUT/ab_qgemm.txt"
  { p "qgemm   " w4g32-asym; p "qgemm   " w8; p "deq+blas" w8 QB_CUDA_QGEMM=0; p "qgemm   " w8g32; } | tee -a "$OUT/ab_qgemm.txt"
  if command -v ncu > /dev/null || [ -x /usr/local/cuda/bin/ncu ]; then  # where the kernel's time goes (if allowed)
    timeout 180 ${NCU:-/usr/local/cuda/bin/ncu} --kernel-name regex:qgemm --section SpeedOfLight --section WarpStateStats \
      --section Occupancy --section MemoryWorkloadAnalysis ./qb_qgemm_bench --ncu > "$OUT/qgemm_ncu.txt" 2>&1
    echo "ncu rc $?"
  fi
  pp_profile w4g128 QB_CUDA_QGEMM 1 0 2>&1 | tee "$OUT/qgemm_profile.txt"
  rm -f "$OUT/tmp.log"
}

block_ppprof() {  # where a 512-token prefill's GPU time goes, fused attention on and off
  pp_profile bf16 QB_CUDA_FLASH_ATTN 1 0 2>&1 | tee "$OUT/ab_prefill_profile.txt"
  rm -f "$OUT/tmp.log"
}
