# ab.sh's blocks from session 33 (docs/perf.md, session 33, says what each measured and what it found).
# Sourced by ab.sh, which runs the blocks named on its command line; the helpers are in lib.sh.

# s33: quantized caches' prefill attention on the codes with their scales (this build) against the f16 dequantization
#   (QB_CUDA_KV_PREFILL_CODES=0): 512- and 2048-token prefills, FP8 W8A8 and w4g128, int8 and fp8 caches, two rounds.
#   (At 628406e both forms took the codes; since, only W8A8 models do, so w4g128's rows are the same form twice.)
block_s33() {
  pk() {  # label scheme kv prompt env...: one prefill with a quantized cache
    local label=$1 scheme=$2 kv=$3 pl=$4; shift 4
    env "$@" timeout 120 ./quantbench bench synthetic:llama2-7b --backend cuda --scheme $scheme --kv $kv --batch 1 \
      --prompt-len $pl --gen-len 4 --reps 5 --warmup 1 --no-progress > "$OUT/tmp.log" 2>&1
    echo "$label $scheme kv $kv prompt $pl $(awk '$1 == 1 && NF == 7 {print "prefill tok/s", $2}' "$OUT/tmp.log")"
  }
  for rep in 1 2; do
    for sc in w8a8-fp8 w4g128; do
      for kv in int8 fp8; do
        for pl in 512 2048; do
          pk "codes  " $sc $kv $pl
          pk "deq f16" $sc $kv $pl QB_CUDA_KV_PREFILL_CODES=0
        done
      done
    done
  done 2>&1 | tee "$OUT/ab_s33.txt"
  grep -o "kv cache [^;]*;[^;]*;" "$OUT/tmp.log" | head -2 | tee -a "$OUT/ab_s33.txt"
  rm -f "$OUT/tmp.log"
}
