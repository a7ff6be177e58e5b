# ab.sh's blocks from session 27 (docs/perf.md, session 27, says what each measured and what it found).
# Sourced by ab.sh, which runs the blocks named on its command line; the helpers are in lib.sh.

# s27: W8A8 activation quantizers, 1024 threads against quantbench_prev (256), decode 1,16; profiled W8A8 / w8 steps.
block_s27() {  # the W8A8 activation quantizers as one block of 1024 (this build) against one of 256 (quantbench_prev:
  # e3cd402), three rounds; then where a one-stream FP8 / INT8 W8A8 step goes (profiled: no graph, events between classes)
  vs_staged ./quantbench_prev "quant256      " "quant1024     " 3 "w8a8-fp8 1,16 128" "w8a8 1,16 128" 2>&1 | tee "$OUT/ab_s27.txt"
  for q in ./quantbench_prev ./quantbench; do
    for s in w8a8-fp8 w8a8 w8; do
      echo "== $q $s (QB_CUDA_PROFILE=1)"
      QB_CUDA_PROFILE=1 timeout 120 $q bench synthetic:llama2-7b --backend cuda --scheme $s --batch 1,16 --prompt-len 128 \
        --gen-len 32 --reps 1 --warmup 1 --no-progress 2>&1 | grep -v "^backend:\|^gpu:"
    done
  done > "$OUT/s27_profile.txt" 2>&1
}

# s27b: the one-token FP8 kernel with fma against fmul + fadd (quantbench_prev), three rounds.
block_s27b() {  # the one-token FP8 kernel's f32 sums by fused multiply-add (this build) against multiply then add
  # (quantbench_prev: 8c4c308), three rounds
  vs_staged ./quantbench_prev "fmul+fadd     " "fma           " 3 "w8a8-fp8 1 128" 2>&1 | tee "$OUT/ab_s27b.txt"
}

# s27c: the W8A8 gemv kernels launched early (programmatic dependent launch) against plain (quantbench_prev).
block_s27c() {  # the W8A8 decode gemv kernels launched early after the quantizer (this build) against plain launches
  # (quantbench_prev: 9ae8396), three rounds
  vs_staged ./quantbench_prev "plain         " "early         " 3 "w8a8-fp8 1,16 128" "w8a8 1,16 128" 2>&1 | tee "$OUT/ab_s27c.txt"
}

# s27d: FP8 scales in cuBLASLt's epilogue against the scaling kernel (quantbench_prev): 16 streams, 512-token prefill.
block_s27d() {  # FP8 scales in cuBLASLt's epilogue from 17 tokens (this build) against the scaling kernel always (quantbench_prev: ff75347)
  {
    vs_staged ./quantbench_prev "scale kernel  " "outer scales  " 2 "w8a8-fp8 1,16 128"  # (at 4012619: 3 rounds of "w8a8-fp8 16 128")
    for rep in 1 2; do
      for q in ./quantbench_prev ./quantbench; do
        timeout 120 $q bench synthetic:llama2-7b --backend cuda --scheme w8a8-fp8 --batch 1 --prompt-len 512 --gen-len 4 \
          --reps 3 --warmup 1 --no-progress > "$OUT/tmp.log" 2>&1
        echo "prefill 512 w8a8-fp8 $q $(awk '$1 == 1 && NF == 7 {print "prefill tok/s", $2}' "$OUT/tmp.log")"
      done
    done
    grep -o "scaled in cuBLASLt[^;]*" "$OUT/tmp.log" | head -1
  } 2>&1 | tee "$OUT/ab_s27d.txt"
}
