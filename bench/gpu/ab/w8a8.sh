# ab.sh's blocks: W8A8 decode and prefill with their kernel switches.
# Sourced by ab.sh, which runs the blocks named on its command line; the helpers are in lib.sh.

# w8a8: W8A8 decode with its kernel switches (QB_CUDA_W8A8_GEMM_MIN, QB_CUDA_FP8_DMMA_MIN) and prefill.
block_w8a8() {  # W8A8 decode (1 and 16 streams) with the kernel switches, once each, then 512-token prefill
  {
    b "default       " w8a8 1,16
    b "dp4a to 16    " w8a8 1,16 QB_CUDA_W8A8_GEMM_MIN=17
    b "cublas from 1 " w8a8 1 QB_CUDA_W8A8_GEMM_MIN=1
    b "default       " w8a8-fp8 1,16
    b "dmma from 1   " w8a8-fp8 1,16 QB_CUDA_FP8_DMMA_MIN=1
    b "cuda cores    " w8a8-fp8 1,16 QB_CUDA_FP8_DMMA_MIN=100000
    b "w8 (W8A16)    " w8 1,16
  } 2>&1 | tee "$OUT/ab_w8a8.txt"
  for s in w8a8 w8a8-fp8 bf16; do
    timeout 120 ./quantbench bench synthetic:llama2-7b --backend cuda --scheme $s --batch 1 --prompt-len 512 --gen-len 4 \
      --reps 3 --warmup 1 --no-progress > "$OUT/tmp.log" 2>&1
    echo "prefill 512 $s $(awk '$1 == 1 && NF == 7 {print "prefill tok/s", $2}' "$OUT/tmp.log")"
  done 2>&1 | tee -a "$OUT/ab_w8a8.txt"
  rm -f "$OUT/tmp.log"
}

# fp8: FP8 W8A8 fast (FP8 tensor cores, f32 CUDA-core sums at one token) against exact (QB_CUDA_FP8_EXACT=1), decode
#   1,16 (gen 128) twice, the switch QB_CUDA_FP8_TC_MIN, int8 W8A8 / w8 / bf16 beside them; 512-token prefills twice each.
block_fp8() {  # session 27: FP8 W8A8's fast form (the default) against its exact form, decode and 512-token prefill
  {
    vs_env "QB_CUDA_FP8_EXACT=1" "fp8 fast      " "fp8 exact     " 2 "w8a8-fp8 1,16 128"
    GEN=128 b "fp8 f32 cores to 16" w8a8-fp8 16 QB_CUDA_FP8_TC_MIN=17
    GEN=128 b "fp8 tc from 1 " w8a8-fp8 1 QB_CUDA_FP8_TC_MIN=1
    GEN=128 b "int8 w8a8     " w8a8 1,16
    GEN=128 b "w8 (W8A16)    " w8 1,16
    GEN=128 b "bf16          " bf16 1,16
  } 2>&1 | tee "$OUT/ab_fp8.txt"
  for v in "w8a8-fp8" "w8a8-fp8 QB_CUDA_FP8_EXACT=1" "w8a8" "w8" "bf16"; do
    read -r s e <<< "$v"
    for rep in 1 2; do
      env $e timeout 120 ./quantbench bench synthetic:llama2-7b --backend cuda --scheme $s --batch 1 --prompt-len 512 \
        --gen-len 4 --reps 3 --warmup 1 --no-progress > "$OUT/tmp.log" 2>&1
      echo "prefill 512 $s ${e:-} $(awk '$1 == 1 && NF == 7 {print "prefill tok/s", $2}' "$OUT/tmp.log")"
    done
    [ "$s" = "w8a8-fp8" ] && cp "$OUT/tmp.log" "$OUT/fp8_prefill_${e:+exact_}log.txt"
  done 2>&1 | tee -a "$OUT/ab_fp8.txt"
  rm -f "$OUT/tmp.log"
}
