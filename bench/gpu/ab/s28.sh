# ab.sh's blocks from session 28 (docs/perf.md, session 28, says what each measured and what it found).
# Sourced by ab.sh, which runs the blocks named on its command line; the helpers are in lib.sh.

# s28d: the norm kernel writing W8A8 codes against a quantizer before every W8A8 product, one and 16 streams.
block_s28d() {  # session 28: the norm kernel writing the W8A8 codes of q|k|v's and gate|up's input (this build's
  # default) against a quantizer kernel before every W8A8 product (QB_CUDA_W8A8_NORM_CODES=0), two rounds
  vs_env QB_CUDA_W8A8_NORM_CODES=0 "norm codes  " "quantizer   " 2 "w8a8 1,16 128" "w8a8-fp8 1,16 128" 2>&1 | tee "$OUT/ab_s28d.txt"
  rm -f "$OUT/tmp.log"
}

# s28c: session 28's final build against quantbench_prev (session 27's), W8A8 and FP8 at one and 16 streams.
block_s28c() {  # session 28's final build against session 27's (quantbench_prev: 121b616): what the FP8 mma kernel and the
  # quantizers' non-finite check did to W8A8 steps, three rounds
  vs_staged ./quantbench_prev "s27 121b616 " "s28         " 3 "w8a8 1,16 128" "w8a8-fp8 1,16 128" 2>&1 | tee "$OUT/ab_s28c.txt"
  rm -f "$OUT/tmp.log"
}

# s28: FP8's decode products on the f16 tensor cores (this build) against the f32 CUDA-core kernel (QB_CUDA_FP8_MMA=0),
#   one and 16 streams; the mma kernel at 16 tokens too (QB_CUDA_FP8_TC_MIN=17) against cuBLASLt; its warps per block.
block_s28() {  # session 28: the FP8 decode products on the f16 tensor cores (w8a8_fp8_mma.cu)
  {
    vs_env QB_CUDA_FP8_MMA=0 "mma         " "cuda-cores  " 3 "w8a8-fp8 1,16 128"
    vs_env QB_CUDA_FP8_TC_MIN=17 "cublaslt-16 " "mma-16      " 2 "w8a8-fp8 16 128"
    for w in 4 8 16; do GEN=128 b "mma warps$w  " w8a8-fp8 1 QB_CUDA_FP8_MMA_WARPS=$w; done
    GEN=128 b "reference   " w8 1; GEN=128 b "reference   " w8a8 1
  } 2>&1 | tee "$OUT/ab_s28.txt"
  for m in 1 0; do  # where a one-stream FP8 step goes, each kernel (profiled: no graph, events between classes)
    echo "== QB_CUDA_FP8_MMA=$m (QB_CUDA_PROFILE=1)"
    QB_CUDA_FP8_MMA=$m QB_CUDA_PROFILE=1 timeout 120 ./quantbench bench synthetic:llama2-7b --backend cuda --scheme w8a8-fp8 \
      --batch 1,16 --prompt-len 128 --gen-len 32 --reps 1 --warmup 1 --no-progress 2>&1 | grep -v "^backend:\|^gpu:"
  done > "$OUT/s28_profile.txt" 2>&1
  rm -f "$OUT/tmp.log"
}
