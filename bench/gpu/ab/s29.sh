# ab.sh's blocks from session 29 (docs/perf.md, session 29, says what each measured and what it found).
# Sourced by ab.sh, which runs the blocks named on its command line; the helpers are in lib.sh.

block_s29g() {  # session 29's final build: where W8A8 and w8 steps of 1, 8 and 16 tokens go, kernel class by class
  # (profiled: no graph, events between classes)
  for sc in w8a8 w8a8-fp8 w8; do
    echo "== $sc (QB_CUDA_PROFILE=1)"
    QB_CUDA_PROFILE=1 timeout 120 ./quantbench bench synthetic:llama2-7b --backend cuda --scheme $sc --batch 1,8,16 \
      --prompt-len 128 --gen-len 32 --reps 1 --warmup 1 --no-progress 2>&1 | grep -v "^backend:\|^gpu:"
  done > "$OUT/s29_profile.txt" 2>&1
}

block_s29e() {  # session 29: FP8 W8A8 with cuBLASLt from 9 tokens (this build's default) against the f16 tensor-core
  # decode kernel up to 16 (QB_CUDA_FP8_TC_MIN=17), and this build against 6fad525 (quantbench_prev), two rounds each
  {
    vs_env QB_CUDA_FP8_TC_MIN=17 "tc from 9    " "mma to 16    " 2 "w8a8-fp8 12,16 128"
    vs_staged ./quantbench_prev "s28 6fad525 " "s29 final   " 2 "w8a8-fp8 1,4,8,16 128"
  } 2>&1 | tee "$OUT/ab_s29e.txt"
  rm -f "$OUT/tmp.log"
}

block_s29d() {  # session 29: FP8 W8A8 at 2-8 tokens on the f16 tensor-core decode kernel (QB_CUDA_FP8_TC_MIN=9) against
  # cuBLASLt's FP8 GEMM from 2 (the default), two rounds; then this build against 6fad525 (quantbench_prev) on the INT8
  # rule it settled (dp4a at one token, the int8 tensor-core kernel at 2-16) and w4g128, two rounds
  {
    vs_env QB_CUDA_FP8_TC_MIN=9 "cublaslt 2+  " "mma to 8     " 2 "w8a8-fp8 2,4,8,16 128"
    vs_staged ./quantbench_prev "s28 6fad525 " "s29 final   " 2 "w8a8 1,8,16 128" "w4g128 1,16 128"
  } 2>&1 | tee "$OUT/ab_s29d.txt"
  rm -f "$OUT/tmp.log"
}

block_s29b() {  # session 29: pdl_wait_for (this build) against 6fad525 (quantbench_prev): the kernels whose SASS it changed
  # (bf16 at one token among them; symmetric w4g128's half steps and per-row int8's are the same), one round
  vs_staged ./quantbench_prev "s28 6fad525 " "s29 wait_for" 1 "bf16 1,16 128" "w4g128-asym 1,16 128" "w4g32 1,16 128" \
    2>&1 | tee "$OUT/ab_s29b.txt"
  rm -f "$OUT/tmp.log"
}

block_s29c() {  # session 29: INT8 W8A8's decode products on the int8 tensor cores (this build's default) against the
  # dp4a kernel at one token and cuBLAS's int8 GEMM at 2-16 (QB_CUDA_INT8_MMA=0), three rounds; then the warps per block
  {
    vs_env QB_CUDA_INT8_MMA=0 "int8 mma    " "dp4a/cublas " 3 "w8a8 1,8,16 128"
    for w in 4 8 16; do GEN=128 b "mma warps$w  " w8a8 1,16 QB_CUDA_FP8_MMA_WARPS=$w; done
  } 2>&1 | tee "$OUT/ab_s29c.txt"
  rm -f "$OUT/tmp.log"
}

block_s29() {  # session 29: the decode products' activation loads as plain loads after the wait (this build) against
  # __ldg through __restrict__ pointers (quantbench_prev: 6fad525), two rounds. Run at dbf3391; qgemv went back to __ldg
  # behind pdl_wait_for after it (docs/perf.md, session 29)
  vs_staged ./quantbench_prev "s28 6fad525 " "s29 plain x " 2 "w4g128 1,16 128" "w8 1 128" "bf16 1 128" "w8a8 1,16 128" \
    "w8a8-fp8 1,16 128" 2>&1 | tee "$OUT/ab_s29.txt"
  rm -f "$OUT/tmp.log"
}
