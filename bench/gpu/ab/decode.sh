# ab.sh's blocks: decode experiments by name, from the first sessions through session 13: the launch-shape
# sweep, launch rules, L2 prefetch, early launch, attention splits, kernel classes left out, the KV-read probe.
# Sourced by ab.sh, which runs the blocks named on its command line; the helpers are in lib.sh.

block_sweep() {
  t0=$(date +%s); timeout 300 ./qb_gpu_bench "$OUT" > "$OUT/qgemv_bench.log" 2>&1
  echo "qgemv bench rc $? ($(( $(date +%s) - t0 )) s)"; sed -n '/^Sweep/,$p' "$OUT/qgemv_bench.log" | cut -c1-200
}

# ab: the step-5 decode A/B, interleaved, twice: this build, its switches (QB_CUDA_LAUNCH_RULE=4, QB_CUDA_PDL=0),
#   and an earlier build's binary if one was staged beside it as quantbench_step4 (step 5: commit 39ae152).
block_ab() {
  Q=./quantbench; for rep in 1 2; do
    b "step5      " w4g128 1,16
    b "step5 rule4" w4g128 1,16 QB_CUDA_LAUNCH_RULE=4
    b "step5 nopdl" w4g128 1,16 QB_CUDA_PDL=0
    [ -x ./quantbench_step4 ] && Q=./quantbench_step4 b "step4 bin  " w4g128 1,16
    b "step5      " w8 1,16
    b "step5 nopdl" w8 1,16 QB_CUDA_PDL=0
    b "step5 rule4" w8 1,16 QB_CUDA_LAUNCH_RULE=4
    [ -x ./quantbench_step4 ] && Q=./quantbench_step4 b "step4 bin  " w8 1,16
  done 2>&1 | tee "$OUT/ab_decode.txt"
  rm -f "$OUT/tmp.log"
}

# table: the decode rows of run.sh's table (w4g128 1,16; w8 1; bf16 1,16; gen 128) and a profiled w4g128 pass.
block_table() {  # the decode benchmarks (run.sh's, decode only: gen 128), then a profiled w4g128 pass
  for sb in "w4g128 1,16" "w8 1" "bf16 1,16"; do
    set -- $sb
    timeout 200 ./quantbench bench synthetic:llama2-7b --backend cuda --scheme $1 --batch $2 --prompt-len 128 \
      --gen-len 128 --reps 2 --warmup 1 --no-progress --json "$OUT/bench_$1.json" > "$OUT/bench_$1.log" 2>&1
    echo "bench $1 rc $?"; head -4 "$OUT/bench_$1.log" | cut -c1-200
  done 2>&1 | tee "$OUT/table.txt"
  QB_CUDA_PROFILE=1 timeout 120 ./quantbench bench synthetic:llama2-7b --backend cuda --scheme w4g128 --batch 1,16 \
    --prompt-len 128 --gen-len 16 --reps 1 --warmup 1 --no-progress > "$OUT/tmp.log" 2>&1
  grep -E "^profile" "$OUT/tmp.log" | sed 's/ (no graph.*class)://' | tee "$OUT/profile.txt"
  rm -f "$OUT/tmp.log"
}

# l2pf: decode with QB_CUDA_L2_PREFETCH_MB = 0, 4, 6, 8 (w4g128 1,16), 0, 4, 8 (w8 1), 0, 4 (bf16 1,16), twice.
block_l2pf() {  # decode: the next product's first weights prefetched into L2 during the small kernels
  for rep in 1 2; do
    for mb in 0 4 6 8; do b "l2pf $mb" w4g128 1,16 QB_CUDA_L2_PREFETCH_MB=$mb; done
    for mb in 0 4 8; do b "l2pf $mb" w8 1 QB_CUDA_L2_PREFETCH_MB=$mb; done
    for mb in 0 4; do b "l2pf $mb" bf16 1,16 QB_CUDA_L2_PREFETCH_MB=$mb; done
  done 2>&1 | tee "$OUT/ab_l2pf.txt"
  rm -f "$OUT/tmp.log"
}

block_attn() {  # 16 streams: the split-attention grid's target blocks per SM
  for rep in 1 2; do
    for bps in 8 4 16 32; do b "attn$bps/SM " w4g128 16 QB_CUDA_ATTN_BLOCKS_PER_SM=$bps; done
  done 2>&1 | tee "$OUT/ab_attn.txt"
  rm -f "$OUT/tmp.log"
}

# skip: w4g128 1,16 and w8 1 decode with kernel classes left out (QB_CUDA_TIMING_SKIP; timing only, outputs wrong), twice.
block_skip() {  # what each kernel class costs inside the decode graph: steps with it left out (outputs wrong)
  for rep in 1 2; do
    for sk in none norm attn act norm,attn,act prod; do b "skip $sk" w4g128 1,16 QB_CUDA_TIMING_SKIP=$sk; done
    for sk in none norm,attn,act prod; do b "skip $sk" w8 1 QB_CUDA_TIMING_SKIP=$sk; done
  done 2>&1 | tee "$OUT/ab_skip.txt"
  rm -f "$OUT/tmp.log"
}

# skip2: w4g128 one stream, products alone and full, each with L2 prefetch / early launch on and off, twice.
block_skip2() {  # w4g128, one stream: the products alone (norm, attention, activation left out) and the full step,
  # each with the L2 prefetch and the early launch on and off
  for rep in 1 2; do
    for sk in none norm,attn,act; do
      b "skip $sk" w4g128 1 QB_CUDA_TIMING_SKIP=$sk
      b "skip $sk nol2" w4g128 1 QB_CUDA_TIMING_SKIP=$sk QB_CUDA_L2_PREFETCH_MB=0
      b "skip $sk nopdl" w4g128 1 QB_CUDA_TIMING_SKIP=$sk QB_CUDA_PDL=0
      b "skip $sk nol2 nopdl" w4g128 1 QB_CUDA_TIMING_SKIP=$sk QB_CUDA_L2_PREFETCH_MB=0 QB_CUDA_PDL=0
    done
  done 2>&1 | tee "$OUT/ab_skip2.txt"
  rm -f "$OUT/tmp.log"
}

# ropecache: 512-token prefills (bf16, w4g128) and w4g128 decode 1,16 against quantbench_prev, twice.
block_ropecache() {  # host rope-angle cache: this build against quantbench_prev (staged beside it), interleaved
  for rep in 1 2; do
    Q=./quantbench_prev p "prev" bf16; Q=./quantbench p "new " bf16
    Q=./quantbench_prev p "prev" w4g128; Q=./quantbench p "new " w4g128
    Q=./quantbench_prev b "prev" w4g128 1,16; Q=./quantbench b "new " w4g128 1,16
  done 2>&1 | tee "$OUT/ab_ropecache.txt"
  rm -f "$OUT/tmp.log"
}

# splits1: one-stream decode with QB_CUDA_ATTN_BLOCKS_PER_SM 8, 2, 1 (16, 9, 5 key splits; w4g128, w8), twice.
block_splits1() {  # one stream: split-attention grid (QB_CUDA_ATTN_BLOCKS_PER_SM 8 = 16 splits, 2 = 9, 1 = 5)
  for rep in 1 2; do
    for k in 8 2 1; do b "attn blocks/SM $k" w4g128 1 QB_CUDA_ATTN_BLOCKS_PER_SM=$k; done
    for k in 8 2 1; do b "attn blocks/SM $k" w8 1 QB_CUDA_ATTN_BLOCKS_PER_SM=$k; done
  done 2>&1 | tee "$OUT/ab_splits1.txt"
  rm -f "$OUT/tmp.log"
}

# rule6: w4g128 decode 1,16 (and w4g128-asym 1: unchanged) with QB_CUDA_LAUNCH_RULE 5 and 6 (the half step), interleaved, three times (asym once).
block_rule6() {  # launch rule 6 (symmetric w4g128's half step) against rule 5, interleaved, three times
  { for rep in 1 2 3; do
      for r in 5 6; do b "launch rule $r" w4g128 1,16 QB_CUDA_LAUNCH_RULE=$r; done
    done
    for r in 5 6; do b "launch rule $r" w4g128-asym 1 QB_CUDA_LAUNCH_RULE=$r; done
    for r in 5 6; do b "launch rule $r, early launch off" w4g128 16 QB_CUDA_LAUNCH_RULE=$r QB_CUDA_PDL=0; done
  } 2>&1 | tee "$OUT/ab_rule6.txt"
  rm -f "$OUT/tmp.log"
}

# splits16: 16-stream decode with QB_CUDA_ATTN_ONE_SPLIT 2 (one key split, the default) and 0 (3 splits): w4g128, bf16,
#   w4g128 with an int8 KV cache, w4g128 after a 1024-token prompt; twice.
block_splits16() {  # 16 streams: one key split (the current rule) against the blocks-per-SM rule alone (3 splits)
  for rep in 1 2; do
    for o in 2 0; do b "one-split rule $o" w4g128 16 QB_CUDA_ATTN_ONE_SPLIT=$o; done
    for o in 2 0; do b "one-split rule $o" bf16 16 QB_CUDA_ATTN_ONE_SPLIT=$o; done
    for o in 2 0; do EXTRA="--kv int8" b "one-split rule $o, kv int8" w4g128 16 QB_CUDA_ATTN_ONE_SPLIT=$o; done
    for o in 2 0; do PROMPT=1024 b "one-split rule $o, prompt 1024" w4g128 16 QB_CUDA_ATTN_ONE_SPLIT=$o; done
  done 2>&1 | tee "$OUT/ab_splits16.txt"
  rm -f "$OUT/tmp.log"
}

# pdlsmall: decode with QB_CUDA_PDL_SMALL 0, 7 (all), 1 (norms), 2 (attention), 4 (activation), 5 (w4g128 1,16), 0 and 7
#   (w8 1; bf16 1,16), at every step size (QB_CUDA_PDL_SMALL_T=16; the default was 5 at one-token steps then, 7 since session 10), three times;
#   then the backend check with 7 at every step size.
block_pdlsmall() {  # decode: small kernels launched early at every step size (QB_CUDA_PDL_SMALL mask, _T=16), then its backend check
  for rep in 1 2 3; do
    for e in 0 7 1 2 4 5; do b "small kernels early $e" w4g128 1,16 QB_CUDA_PDL_SMALL=$e QB_CUDA_PDL_SMALL_T=16; done
    for e in 0 7; do b "small kernels early $e" w8 1 QB_CUDA_PDL_SMALL=$e QB_CUDA_PDL_SMALL_T=16; done
    for e in 0 7; do b "small kernels early $e" bf16 1,16 QB_CUDA_PDL_SMALL=$e QB_CUDA_PDL_SMALL_T=16; done
  done 2>&1 | tee "$OUT/ab_pdlsmall.txt"
  rm -f "$OUT/tmp.log"
  QB_CUDA_PDL_SMALL=7 QB_CUDA_PDL_SMALL_T=16 timeout 240 ./qb_cuda_backend_check models/*.gguf > "$OUT/backend_check_pdlsmall.log" 2>&1
  echo "backend_check with QB_CUDA_PDL_SMALL=7 QB_CUDA_PDL_SMALL_T=16 rc $?"; grep -cE "^PASS " "$OUT/backend_check_pdlsmall.log"
  grep -E "^(FAIL|FAILED|PASSED)" "$OUT/backend_check_pdlsmall.log" | cut -c1-200 | head
}

# prewait: decode with the norms' and fused-rope attention's loads before their early-launch wait on and off
#   (QB_CUDA_PREWAIT 1|0), with session 9's early set (mask 5 at one token), all three (7) at one token, all three and
#   the norms alone at 16 tokens (w4g128), and w8 1 at mask 5; three times; then the backend check with 7 at every
#   step size.
block_prewait() {  # loads before the early-launch wait (QB_CUDA_PREWAIT), then its backend check with everything early
  for rep in 1 2 3; do
    for p in 1 0; do
      b "prewait $p early 5 at 1 " w4g128 1,16 QB_CUDA_PDL_SMALL=5 QB_CUDA_PREWAIT=$p
      b "prewait $p early 7 at 1 " w4g128 1 QB_CUDA_PDL_SMALL=7 QB_CUDA_PREWAIT=$p
      b "prewait $p early 7 at 16" w4g128 16 QB_CUDA_PDL_SMALL=7 QB_CUDA_PDL_SMALL_T=16 QB_CUDA_PREWAIT=$p
      b "prewait $p early 1 at 16" w4g128 16 QB_CUDA_PDL_SMALL=1 QB_CUDA_PDL_SMALL_T=16 QB_CUDA_PREWAIT=$p
      b "prewait $p early 5 at 1 " w8 1 QB_CUDA_PDL_SMALL=5 QB_CUDA_PREWAIT=$p
    done
  done 2>&1 | tee "$OUT/ab_prewait.txt"
  rm -f "$OUT/tmp.log"
  QB_CUDA_PDL_SMALL=7 QB_CUDA_PDL_SMALL_T=16 timeout 240 ./qb_cuda_backend_check models/*.gguf > "$OUT/backend_check_prewait.log" 2>&1
  echo "backend_check with QB_CUDA_PDL_SMALL=7 QB_CUDA_PDL_SMALL_T=16 (prewait on) rc $?"; grep -cE "^PASS " "$OUT/backend_check_prewait.log"
  grep -E "^(FAIL|FAILED|PASSED)" "$OUT/backend_check_prewait.log" | cut -c1-200 | head
}

# prewait2: session 10's defaults (all three small kernels early at one token, loads before the wait where early) against
#   session 9's (QB_CUDA_PDL_SMALL=5 QB_CUDA_PREWAIT=0): w4g128 1,16, w8 1, bf16 1; three times.
block_prewait2() {  # the new defaults against session 9's, interleaved
  for rep in 1 2 3; do
    for s in "w4g128 1,16" "w8 1" "bf16 1"; do
      set -- $s
      b "session 10 default" $1 $2
      b "session 9 default " $1 $2 QB_CUDA_PDL_SMALL=5 QB_CUDA_PREWAIT=0
    done
  done 2>&1 | tee "$OUT/ab_prewait2.txt"
  rm -f "$OUT/tmp.log"
}

# l2pf2: larger L2 prefetches for the wider formats: w8 1 at 4, 8, 12, 16 MB, bf16 1,16 at 4, 8, 16; twice.
block_l2pf2() {  # QB_CUDA_L2_PREFETCH_MB for w8 and bf16, interleaved
  for rep in 1 2; do
    for mb in 4 8 12 16; do b "l2pf $mb" w8 1 QB_CUDA_L2_PREFETCH_MB=$mb; done
    for mb in 4 8 16; do b "l2pf $mb" bf16 1,16 QB_CUDA_L2_PREFETCH_MB=$mb; done
  done 2>&1 | tee "$OUT/ab_l2pf2.txt"
  rm -f "$OUT/tmp.log"
}

# l2wide: the one-token prefetch of 8- and 16-bit products at its default (8 MB) against 4 (QB_CUDA_L2_PREFETCH_WIDE_MB=4,
#   session 9's size): w8 1, bf16 1,16, and w4g128 1 (not affected); three times.
block_l2wide() {  # the wide formats' one-token prefetch, default against 4 MB, interleaved
  for rep in 1 2 3; do
    for s in "w8 1" "bf16 1,16" "w4g128 1"; do
      set -- $s
      b "wide 8 (default)" $1 $2
      b "wide 4          " $1 $2 QB_CUDA_L2_PREFETCH_WIDE_MB=4
    done
  done 2>&1 | tee "$OUT/ab_l2wide.txt"
  rm -f "$OUT/tmp.log"
}

# sweep4: qb_gpu_bench's launch-shape sweep for symmetric w4g128 only (QB_BENCH_SPEC).
block_sweep4() {  # the launch-shape sweep of symmetric w4g128 alone (QB_BENCH_SPEC)
  t0=$(date +%s); QB_BENCH_SPEC=w4g128 timeout 300 ./qb_gpu_bench "$OUT" > "$OUT/qgemv_bench_w4.log" 2>&1
  echo "qgemv bench (w4g128) rc $? ($(( $(date +%s) - t0 )) s)"
  awk -F, '$1 == "qgemv_w4g128" && ($5 == 1 || $5 == 16) {printf "%-20s n=%-3s %-14s %7.2f us %5.1f%%\n", $2, $5, $6, $8, $13 * 100}' \
    "$OUT/qgemv_results.csv" | sort -k1,1 -k2,2 -k4,4n | tee "$OUT/sweep_w4.txt" | grep -E "auto|R2w4h|R2w8h"
}

# probe: qb_kv_read_probe (KV-read patterns; one streaming kernel per decode product, alone and as a graph; the step's
#   reads in one persistent kernel with grid barriers).
block_probe() {  # KV-read patterns and the floor of one streaming kernel per product (bench/gpu/kv_read_probe.cu)
  ./qb_kv_read_probe 2>&1 | tee "$OUT/kv_read_probe.txt"
}

# lean: session 12's decode loop with fewer instructions (this build) against the previous build's binaries staged beside
#   it as quantbench_prev and qb_gpu_bench_prev: both qgemv benches (--quick), then decode interleaved, three times:
#   w4g128 1,16, w8 1, bf16 1,16, w4g128-asym 1, w4g32 1; w4g128 and bf16 also with the L2 prefetch at steps of up
#   to 16 tokens (QB_CUDA_L2_PREFETCH_MAX_T=16, the default before session 12).
block_lean() {
  for bin in qb_gpu_bench qb_gpu_bench_prev; do
    [ -x ./$bin ] || continue
    mkdir -p "$OUT/$bin"; timeout 300 ./$bin "$OUT/$bin" --quick > "$OUT/${bin}_quick.log" 2>&1; echo "$bin --quick rc $?"
  done
  for rep in 1 2 3; do
    for sb in "w4g128 1,16" "w8 1" "bf16 1,16" "w4g128-asym 1" "w4g32 1"; do
      set -- $sb
      b "lean" $1 $2
      [[ $1 == w4g128 || $1 == bf16 ]] && b "lean pf16" $1 $2 QB_CUDA_L2_PREFETCH_MAX_T=16
      [ -x ./quantbench_prev ] && Q=./quantbench_prev b "prev" $1 $2
    done
  done 2>&1 | tee "$OUT/ab_lean.txt"
  rm -f "$OUT/tmp.log"
}

# pdl16: 16-stream w4g128 decode with the small kernels launched early at every step size (QB_CUDA_PDL_SMALL_T=16,
#   masks 7, 1, 2, 4) against the default (early at one-token steps only), three times.
block_pdl16() {
  for rep in 1 2 3; do
    b "default" w4g128 16
    for e in 7 1 2 4; do b "early $e at T<=16" w4g128 16 QB_CUDA_PDL_SMALL=$e QB_CUDA_PDL_SMALL_T=16; done
  done 2>&1 | tee "$OUT/ab_pdl16.txt"
  rm -f "$OUT/tmp.log"
}

# lean4: the lean loop in every one-token int4 kernel (this build) against quantbench_prev: w4g128-asym, w4g32,
#   w4g32-asym and w4g128 at one stream, three times.
block_lean4() {
  for rep in 1 2 3; do
    for sc in w4g128-asym w4g32 w4g32-asym w4g128; do
      b "lean" $sc 1
      [ -x ./quantbench_prev ] && Q=./quantbench_prev b "prev" $sc 1
    done
  done 2>&1 | tee "$OUT/ab_lean4.txt"
  rm -f "$OUT/tmp.log"
}

# deep: a 16-token kernel variant (its build as quantbench / qb_gpu_bench, labelled $LABEL) against
#   quantbench_base / qb_gpu_bench_base: kernel level (w4g128) and 16-stream steps, three times. Run for
#   b95f44f (two steps in flight; quantbench_d128 capped at 128), cf11ab8 (LABEL=xpf) and db320c5
#   (LABEL=xahead); docs/perf.md, session 13.
block_deep() {
  # Session 13: the 16-token half step at R = 2 with two steps of weights in flight (commit b95f44f, capped
  # at 112 registers; quantbench_d128 at 128) against one (quantbench_base, qb_gpu_bench_base); reused for
  # the next step's activations prefetched into L1 (xpf: commit after it), labelled by the binary.
  for bin in qb_gpu_bench qb_gpu_bench_base; do
    [ -x ./$bin ] || continue
    mkdir -p "$OUT/$bin"; QB_BENCH_SPEC=w4g128 timeout 300 ./$bin "$OUT/$bin" --quick > "$OUT/${bin}_quick.log" 2>&1; echo "$bin --quick rc $?"
    grep -E "^(o|qkv|gate.up|down|lm_head) " "$OUT/${bin}_quick.log" | cut -c1-120
  done
  for rep in 1 2 3; do
    b "${LABEL:-deep112}" w4g128 16
    [ -x ./quantbench_d128 ] && Q=./quantbench_d128 b "deep128" w4g128 16
    [ -x ./quantbench_base ] && Q=./quantbench_base b "base" w4g128 16
  done 2>&1 | tee "$OUT/ab_deep.txt"
  b "${LABEL:-deep112}" w4g128 1 | tee -a "$OUT/ab_deep.txt"
  [ -x ./quantbench_base ] && Q=./quantbench_base b "base" w4g128 1 | tee -a "$OUT/ab_deep.txt"
  rm -f "$OUT/tmp.log"
}
