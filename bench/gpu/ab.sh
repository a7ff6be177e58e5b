#!/usr/bin/env bash
# GPU machine, from the staged folder (bench/gpu/stage.sh): the step-5 A/B runs in one call. Kernel
# checks first, then the decode-kernel benchmark with its launch-shape sweep (qb_gpu_bench), then
# decode A/Bs, interleaved: this build, its switches (QB_CUDA_LAUNCH_RULE=4, QB_CUDA_PDL=0), and an
# earlier build's binary if one was staged beside it as quantbench_step4 (step 5: commit 39ae152).
# table: the decode rows of run.sh's table (w4g128 1,16; w8 1; bf16 1,16; gen 128) and a profiled w4g128 pass.
# (Step 6's epilogue A/B blocks, "step6" and "checkall", left with the epilogue code: see docs/perf.md step 6.)
# w8a8: W8A8 decode with its kernel switches (QB_CUDA_W8A8_GEMM_MIN, QB_CUDA_FP8_DMMA_MIN) and prefill.
# (Session 32's "s32" and "s32n", qgemm_decode's checks, its sweep against qgemv and Nsight Compute on both, left
#  with that code: commit 35474e5; docs/perf.md, session 32.)
# s35: the W8A8 tensor-core decode kernel's loop as a ping-pong: the backend check's W8A8 checks with it at every token
#   count, then the default (the ping-pong from 2 tokens) against the plain loop (QB_CUDA_W8A8_PIPE=0): FP8 at 1, 8,
#   16 streams and INT8 at 8, 16, interleaved, two rounds.
# s34: asymmetric int4's scale pair and zero-point pair in one 8-byte entry, one load (this build), against the separate
#   zero-point array (5d29236, staged as quantbench_prev, qb_gpu_bench_prev, qb_qgemm_bench_prev): both qgemv benches for
#   w4g128a and w4g32a (--quick), both qgemm benches (--quick; all of them tarred), w4g32-asym at 16 streams with each
#   build's default rule and rule 5 (QB_CUDA_LAUNCH_RULE=5), decode interleaved two rounds (w4g128-asym and w4g32-asym
#   1,16, symmetric w4g128 1,16 as the unchanged control), 512-token prefills of w4g128-asym two rounds.
# (Session 34's "s34g", symmetric w4g32's 16-token half step at R = 1 capped at 128 registers against uncapped, with
#  qb_cuda_tests spec w4g32, left with that cap: commit bdd866a; docs/perf.md, session 34.)
# s33: quantized caches' prefill attention on the codes with their scales (this build) against the f16 dequantization
#   (QB_CUDA_KV_PREFILL_CODES=0): 512- and 2048-token prefills, FP8 W8A8 and w4g128, int8 and fp8 caches, two rounds.
#   (At 628406e both forms took the codes; since, only W8A8 models do, so w4g128's rows are the same form twice.)
# (Session 33's "s33z", qb_gpu_bench against a build with QB_TIMING_INT4_NO_ZSUB (the int4 decode's masks without the
#  HSUB2 / HFMA2 that remove offset and zero point; values wrong), left with that switch: commit 0046f3d; docs/perf.md,
#  session 33.)
# s30: the gated activation writing the down product's W8A8 codes against the activation kernel then a quantizer
#   (QB_CUDA_W8A8_ACT_CODES=0): INT8 W8A8 at 1, 8, 16 streams, FP8 at 1, 16; two rounds.
# (Session 30's "s30b", the W8A8 tensor-core decode kernels capped at 64 registers against the default, left with that
#  code: commit 370ec01; docs/perf.md, session 30.)
# (Session 30's "s30k", split-K for the W8A8 tensor-core decode kernels against none, left with that code: commit
#  038c1c7; docs/perf.md, session 30.)
# s30w: the W8A8 tensor-core decode kernel with 8 warps per block everywhere (QB_CUDA_FP8_MMA_WARPS=8) against the
#   default rule, at 1-8 tokens (one 8-token tile): FP8 at 1, 4, 8 streams, INT8 at 4, 8; two rounds.
# s30n: Nsight Compute on the first 16-token step's products, INT8 W8A8 (int8 tensor-core kernel) and w8 (qgemv), stall
#   reasons; INT8's gate|up stall samples per SASS line.
# s28: FP8's decode products on the f16 tensor cores (this build) against the f32 CUDA-core kernel (QB_CUDA_FP8_MMA=0),
#   one and 16 streams; the mma kernel at 16 tokens too (QB_CUDA_FP8_TC_MIN=17) against cuBLASLt; its warps per block.
# s28d: the norm kernel writing W8A8 codes against a quantizer before every W8A8 product, one and 16 streams.
# s28c: session 28's final build against quantbench_prev (session 27's), W8A8 and FP8 at one and 16 streams.
# s27d: FP8 scales in cuBLASLt's epilogue against the scaling kernel (quantbench_prev): 16 streams, 512-token prefill.
# s27c: the W8A8 gemv kernels launched early (programmatic dependent launch) against plain (quantbench_prev).
# s27b: the one-token FP8 kernel with fma against fmul + fadd (quantbench_prev), three rounds.
# s27: W8A8 activation quantizers, 1024 threads against quantbench_prev (256), decode 1,16; profiled W8A8 / w8 steps.
# fp8: FP8 W8A8 fast (FP8 tensor cores, f32 CUDA-core sums at one token) against exact (QB_CUDA_FP8_EXACT=1), decode
#   1,16 (gen 128) twice, the switch QB_CUDA_FP8_TC_MIN, int8 W8A8 / w8 / bf16 beside them; 512-token prefills twice each.
# qgemm: the fused prefill GEMM (qb_qgemm_bench, 512-token prefills with QB_CUDA_QGEMM=1|0 and bf16, ncu).
# l2pf: decode with QB_CUDA_L2_PREFETCH_MB = 0, 4, 6, 8 (w4g128 1,16), 0, 4, 8 (w8 1), 0, 4 (bf16 1,16), twice.
# skip: w4g128 1,16 and w8 1 decode with kernel classes left out (QB_CUDA_TIMING_SKIP; timing only, outputs wrong), twice.
# skip2: w4g128 one stream, products alone and full, each with L2 prefetch / early launch on and off, twice.
# ropecache: 512-token prefills (bf16, w4g128) and w4g128 decode 1,16 against quantbench_prev, twice.
# splits1: one-stream decode with QB_CUDA_ATTN_BLOCKS_PER_SM 8, 2, 1 (16, 9, 5 key splits; w4g128, w8), twice.
# rule6: w4g128 decode 1,16 (and w4g128-asym 1: unchanged) with QB_CUDA_LAUNCH_RULE 5 and 6 (the half step), interleaved, three times (asym once).
# splits16: 16-stream decode with QB_CUDA_ATTN_ONE_SPLIT 2 (one key split, the default) and 0 (3 splits): w4g128, bf16,
#   w4g128 with an int8 KV cache, w4g128 after a 1024-token prompt; twice.
# pdlsmall: decode with QB_CUDA_PDL_SMALL 0, 7 (all), 1 (norms), 2 (attention), 4 (activation), 5 (w4g128 1,16), 0 and 7
#   (w8 1; bf16 1,16), at every step size (QB_CUDA_PDL_SMALL_T=16; the default was 5 at one-token steps then, 7 since session 10), three times;
#   then the backend check with 7 at every step size.
# prewait: decode with the norms' and fused-rope attention's loads before their early-launch wait on and off
#   (QB_CUDA_PREWAIT 1|0), with session 9's early set (mask 5 at one token), all three (7) at one token, all three and
#   the norms alone at 16 tokens (w4g128), and w8 1 at mask 5; three times; then the backend check with 7 at every
#   step size.
# prewait2: session 10's defaults (all three small kernels early at one token, loads before the wait where early) against
#   session 9's (QB_CUDA_PDL_SMALL=5 QB_CUDA_PREWAIT=0): w4g128 1,16, w8 1, bf16 1; three times.
# l2pf2: larger L2 prefetches for the wider formats: w8 1 at 4, 8, 12, 16 MB, bf16 1,16 at 4, 8, 16; twice.
# l2wide: the one-token prefetch of 8- and 16-bit products at its default (8 MB) against 4 (QB_CUDA_L2_PREFETCH_WIDE_MB=4,
#   session 9's size): w8 1, bf16 1,16, and w4g128 1 (not affected); three times.
# sweep4: qb_gpu_bench's launch-shape sweep for symmetric w4g128 only (QB_BENCH_SPEC).
# probe: qb_kv_read_probe (KV-read patterns; one streaming kernel per decode product, alone and as a graph; the step's
#   reads in one persistent kernel with grid barriers).
# ncudec: Nsight Compute sections for the decode split attention (1, 16 streams) and one layer's four products.
# ncu16: Nsight Compute (with stall reasons) on the first decode step's 16-token products and the 16-stream attention.
# ncusrc: Nsight Compute warp-stall samples per SASS instruction (CSV) for the 16-stream attention and gate|up at 16 and 1 tokens.
# lean: session 12's decode loop with fewer instructions (this build) against the previous build's binaries staged beside
#   it as quantbench_prev and qb_gpu_bench_prev: both qgemv benches (--quick), then decode interleaved, three times:
#   w4g128 1,16, w8 1, bf16 1,16, w4g128-asym 1, w4g32 1; w4g128 and bf16 also with the L2 prefetch at steps of up
#   to 16 tokens (QB_CUDA_L2_PREFETCH_MAX_T=16, the default before session 12).
# pdl16: 16-stream w4g128 decode with the small kernels launched early at every step size (QB_CUDA_PDL_SMALL_T=16,
#   masks 7, 1, 2, 4) against the default (early at one-token steps only), three times.
# (Session 17's "s17", the folded decode norms against the norm kernels, left with the fold code: commits
#  936228b-edc2bab, docs/perf.md session 17.)
# evalcuda: `quantbench eval --backend cuda` against `--backend cpu --reference` on the same inputs (stories260K against its
#   w8, rand-llama against its q4_k_m mix; perplexity, hellaswag, story generation), compared by eval_backends.py.
# clicuda: `quantbench bench` on a GGUF file and `quantbench generate` with --backend cuda (beside the CPU's).
# (Session 25's "s25", GGUF Q4_K in its own scale form against w4g32m, left with that code: commit debb8be.)
# (Session 26's "s26", the row-split decode kernel for symmetric w4g128 against the rule's kernels, left with that code:
#  commit d0a7ca2; docs/perf.md, session 26.)
# (Session 26's "s26b" and "s26c", symmetric w4g128's 16-token half step with three step buffers, forced on and as
#  launch rule 10 against rule 9, left with that code: commits 4bbbd8d and 26c3cf9; docs/perf.md, session 26.)
# (Session 29's "s29f", the W8A8 mma kernel with two 16-row blocks per thread block against one, left with that code:
#  commit 8fa4cd8; docs/perf.md, session 29.)
# s21, s21b, s21c, s21d: session 21 (blocks below; docs/perf.md, session 21).
# s20, s20b, s20c, s20d, s20e, s20f, s20g, s20h, s20n: session 20 (blocks below; docs/perf.md, session 20).
# s19, s19b, s19c, s19d, s19e: session 19 (blocks below; docs/perf.md, session 19).
# s18, s18b, s18c, s18d, s18e: session 18 (blocks below; docs/perf.md, session 18).
# s16, s16b, s16c, s16d, s16e, s16f: session 16 (blocks below; docs/perf.md, session 16).
# s15, s15b, s15c: session 15 (blocks below; docs/perf.md, session 15).
# s14, s14b, s14c, s14d, s14e, s14f, s14g: session 14 (blocks below; docs/perf.md, session 14).
# s13: this build against quantbench_prev: w4g128 at 1 and 16 streams, w4g128 at 16 with more than one
#   attention split, bf16 at 16 streams; three times.
# s13b: the one-token half step loading after its wait (quantbench_w0: commit ae4d1c3 with
#   QB_HALF1_STEPS_BEFORE_WAIT set to 0), early norms at 16 tokens with and without loads before the
#   wait, against quantbench_prev; then the 16-stream skip breakdown.
# s13d: qgemv's weight loads with an L2 evict-first policy against the same build without it
#   (quantbench_ef0): w4g128 at 1 and 16 streams, w8 at 1, bf16 at 1 and 16; three times. The policy
#   was measured within noise and removed; the evict-first build is commit ad5bc52 (docs/perf.md, session 13).
# deep: a 16-token kernel variant (its build as quantbench / qb_gpu_bench, labelled $LABEL) against
#   quantbench_base / qb_gpu_bench_base: kernel level (w4g128) and 16-stream steps, three times. Run for
#   b95f44f (two steps in flight; quantbench_d128 capped at 128), cf11ab8 (LABEL=xpf) and db320c5
#   (LABEL=xahead); docs/perf.md, session 13.
# pipes: Nsight Compute pipe utilization (tensor, ALU, FMA, issue) of the w4g128 products at 16 and 1 tokens
#   and w8's at 16 (first decode steps), to tell which unit bounds the 16-token int4 kernel.
# lean4: the lean loop in every one-token int4 kernel (this build) against quantbench_prev: w4g128-asym, w4g32,
#   w4g32-asym and w4g128 at one stream, three times.
# Usage: bash ab.sh [evalcuda] [clicuda] [s35] [s34] [s24] [s24b] [s24c] [s24d] [s24e] [s24f] [s23] [s23b] [s23c] [s23d] [s23e] [s23f] [s22] [s22b] [s22c] [s22d] [s22e] [s22f] [s21] [s21b] [s21c] [s21d] [s20] [s20b] [s20c] [s20d] [s20e] [s20f] [s20g] [s20h] [s20n] [s19] [s19b] [s19c] [s19d] [s19e] [s18] [s18b] [s18c] [s18d] [s18e] [s16] [s16b] [s16c] [s16d] [s16e] [s16f] [s15] [s15b] [s15c] [s14] [s14b] [s14c] [s14d] [s14e] [s14f] [s14g] [s13] [s13b] [s13d] [deep] [pipes] [lean] [pdl16] [lean4] [tests] [sweep] [ab] [table] [pp] [ppprof] [attn] [w8a8] [fp8] [s33] [s31] [s31b] [s31q] [s31p] [s30] [s30w] [s30n] [s29] [s29b] [s29c] [s29d] [s29e] [s29g] [s28] [s28c] [s28d] [s27] [s27b] [s27c] [s27d] [qgemm] [l2pf] [skip] [skip2] [ropecache] [splits1] [rule6] [splits16] [pdlsmall] [prewait] [prewait2] [l2pf2] [l2wide] [sweep4] [probe] [ncudec] [ncu16] [ncusrc] [check]   (default: tests sweep ab check)
set -uo pipefail
cd "$(dirname "$0")"
OUT=${OUT:-$PWD/out}; mkdir -p "$OUT"
source ./staged_env.sh  # unpacks the staged folder, sets the library path
WHAT=${*:-tests sweep ab check}
{ date -u; nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader; cat GIT_COMMIT; } | tee "$OUT/env.txt"
has() { [[ " $WHAT " == *" $1 "* ]]; }
bash make_models.sh || { echo "make_models.sh failed"; exit 1; }  # the quantized test models, made here
b() {  # label scheme batches env...  (MODEL: another model than synthetic:llama2-7b)
  local label=$1 scheme=$2 batches=$3; shift 3
  env "$@" timeout 120 ${Q:-./quantbench} bench ${MODEL:-synthetic:llama2-7b} --backend cuda --scheme $scheme --batch $batches \
    --prompt-len ${PROMPT:-128} --gen-len ${GEN:-64} --reps 2 --warmup 1 --no-progress ${EXTRA:-} > "$OUT/tmp.log" 2>&1
  awk -v l="$label $scheme" '$1 ~ /^[0-9]+$/ && NF == 7 {print l, $0}' "$OUT/tmp.log"
}

# A staged binary against this build (blocks s14d, s14e, s15c, s18, s18d, s18e): for each of ROUNDS
# rounds and each "scheme batches[ gen]" item, the staged binary (if it is there), then this build;
# an item's gen (default $GEN, else 64) is added to its labels.
#   vs_staged BINARY LABEL_STAGED LABEL_THIS ROUNDS ITEM...
vs_staged() {
  local bin=$1 ls=$2 lt=$3 rounds=$4 rep item sc bt gen; shift 4
  for rep in $(seq "$rounds"); do
    for item in "$@"; do
      read -r sc bt gen <<< "$item"
      [ -x "$bin" ] && GEN=${gen:-${GEN:-64}} Q=$bin b "$ls${gen:+ gen$gen}" "$sc" "$bt"
      GEN=${gen:-${GEN:-64}} b "$lt${gen:+ gen$gen}" "$sc" "$bt"
    done
  done
}

# This build with and without environment switches (vs_staged's twin), interleaved: for each of ROUNDS
# rounds and each "scheme batches[ gen]" item, a run labelled LABEL_OFF, then one with ENV (a quoted,
# space-separated list of NAME=VALUE) labelled LABEL_ON; an item's gen is added to its labels.
#   vs_env "ENV" LABEL_OFF LABEL_ON ROUNDS ITEM...
vs_env() {
  local envs=$1 lo=$2 ln=$3 rounds=$4 rep item sc bt gen; shift 4
  for rep in $(seq "$rounds"); do
    for item in "$@"; do
      read -r sc bt gen <<< "$item"
      GEN=${gen:-${GEN:-64}} b "$lo${gen:+ gen$gen}" "$sc" "$bt"
      # shellcheck disable=SC2086  # the switches split into words on purpose
      GEN=${gen:-${GEN:-64}} b "$ln${gen:+ gen$gen}" "$sc" "$bt" $envs
    done
  done
}

# The backend check with environment switches set, before a block times what they switch on:
#   check_with LOG ENV...
check_with() {
  local log=$1; shift
  env "$@" timeout 240 ./qb_cuda_backend_check models/*.gguf > "$OUT/$log" 2>&1
  echo "backend_check with $* rc $?"; grep -E "^(FAIL|FAILED|PASSED)" "$OUT/$log" | cut -c1-200 | head
}

# Per shape at 1 and 16 tokens, the fastest row of each kind of launch shape in a qgemv_bench CSV, as
# "kind config us share" columns. FILTER and KIND are awk expressions (over $1, the kernel column, and c,
# the config): which rows count, and the kind a row is.
#   best_per_kind CSV FILTER KIND "KIND_NAME..."
best_per_kind() {
  local prog="$2"' && ($5 == 1 || $5 == 16) { k = $2 " n=" $5; c = $6; kind = '"$3"'
      if (!((k, kind) in t) || $8 < t[k, kind]) { t[k, kind] = $8; cf[k, kind] = c; sh[k, kind] = $13 }
      keys[k] = 1 }
    END { n = split(kinds, ks, " ")
      for (k in keys) { line = sprintf("%-22s", k)
        for (i = 1; i <= n; ++i)
          line = line sprintf("  %-5s %-12s %7.2f us %5.1f%%", ks[i], cf[k, ks[i]], t[k, ks[i]], sh[k, ks[i]] * 100)
        print line } }'
  awk -F, -v kinds="$4" "$prog" "$1" | sort
}

# qgemm's checks alone (qb_cuda_tests qgemm), then the backend check on the given models (log backend_check_NAME.log):
#   qgemm_then_backend_check NAME MODEL...
qgemm_then_backend_check() {
  local name=$1 t0; shift
  t0=$(date +%s); timeout 200 ./qb_cuda_tests qgemm > "$OUT/qgemm_check.log" 2>&1
  echo "qgemm_check rc $? ($(( $(date +%s) - t0 )) s)"; grep -E "^(FAIL|PASSED|FAILED|seed)" "$OUT/qgemm_check.log" | head -20
  t0=$(date +%s); timeout 200 ./qb_cuda_backend_check "$@" > "$OUT/backend_check_$name.log" 2>&1
  echo "backend_check ($name) rc $? ($(( $(date +%s) - t0 )) s)"
  grep -E "^(FAIL|FAILED|PASSED)" "$OUT/backend_check_$name.log" | cut -c1-200 | head
}

# qb_gpu_bench's launch-shape sweep for one format (QB_BENCH_SPEC; its CSV kept as qgemv_results_SPEC.csv, or
# qgemv_results_SPEC_TAG.csv with TAG set), then per shape at 1 and 16 tokens the launch rule's row and the best
# row; KIND and KINDS (best_per_kind's) split the best rows by kind instead.
#   [TAG=...] [KIND=... KINDS=...] rule_vs_best SPEC [ENV...]
rule_vs_best() {
  local sp=$1 name=$1${TAG:+_$TAG}; shift
  env QB_BENCH_SPEC="$sp" "$@" timeout 300 ./qb_gpu_bench "$OUT" > "$OUT/qgemv_bench_$name.log" 2>&1
  echo "qgemv bench ($name) rc $?"; cp "$OUT/qgemv_results.csv" "$OUT/qgemv_results_$name.csv"
  best_per_kind "$OUT/qgemv_results_$name.csv" '$1 == "qgemv_'"$sp"'"' "${KIND:-c ~ /^auto/ ? \"rule\" : \"best\"}" \
    "${KINDS:-rule best}"
}

if has tests; then
  t0=$(date +%s); timeout 300 ./qb_cuda_tests > "$OUT/qgemv_check.log" 2>&1; r=$?
  echo "qgemv_check rc $r ($(( $(date +%s) - t0 )) s)"; grep -E "^(FAIL|PASSED|FAILED|seed|time)" "$OUT/qgemv_check.log" | head -20
fi
if has sweep; then
  t0=$(date +%s); timeout 300 ./qb_gpu_bench "$OUT" > "$OUT/qgemv_bench.log" 2>&1
  echo "qgemv bench rc $? ($(( $(date +%s) - t0 )) s)"; sed -n '/^Sweep/,$p' "$OUT/qgemv_bench.log" | cut -c1-200
fi
if has ab; then
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
fi
if has table; then  # the issue's decode benchmarks (run.sh's, decode only: gen 128), then a profiled w4g128 pass
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
fi
pp_profile() {  # scheme VAR value...: a profiled 512-token prefill per value of the environment variable VAR
  local scheme=$1 var=$2; shift 2
  for v in "$@"; do
    env "$var=$v" QB_CUDA_PROFILE=1 timeout 120 ./quantbench bench synthetic:llama2-7b --backend cuda --scheme $scheme \
      --batch 1 --prompt-len 512 --gen-len 1 --reps 1 --warmup 1 --no-progress > "$OUT/tmp.log" 2>&1
    echo "$var=$v: $(grep -E '^profile T=512' "$OUT/tmp.log" | sed 's/ (no graph.*class)://')"
  done
}
p() {  # prefill 512 tokens: label scheme env...
  local label=$1 scheme=$2; shift 2
  env "$@" timeout 120 ${Q:-./quantbench} bench ${MODEL:-synthetic:llama2-7b} --backend cuda --scheme $scheme --batch 1 \
    --prompt-len 512 --gen-len 4 --reps 5 --warmup 1 --no-progress > "$OUT/tmp.log" 2>&1
  echo "$label $scheme $(awk '$1 == 1 && NF == 7 {print "prefill tok/s", $2}' "$OUT/tmp.log") $(grep -o '[0-9.]*% of the same-run cuBLAS bf16 GEMM ([0-9.]* TFLOP/s)' "$OUT/tmp.log")"
}
if has pp; then  # prefill 512: the fused attention kernel against the two-GEMM path, interleaved
  for rep in 1 2; do
    p "flash   " bf16
    p "twogemm " bf16 QB_CUDA_FLASH_ATTN=0
    p "flash   " w4g128
    p "twogemm " w4g128 QB_CUDA_FLASH_ATTN=0
  done 2>&1 | tee "$OUT/ab_prefill.txt"
  rm -f "$OUT/tmp.log"
fi
if has qgemm; then  # prefill on packed weights: fused qgemm against dequantize + cuBLAS, then bf16; interleaved
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
fi
if has l2pf; then  # decode: the next product's first weights prefetched into L2 during the small kernels
  for rep in 1 2; do
    for mb in 0 4 6 8; do b "l2pf $mb" w4g128 1,16 QB_CUDA_L2_PREFETCH_MB=$mb; done
    for mb in 0 4 8; do b "l2pf $mb" w8 1 QB_CUDA_L2_PREFETCH_MB=$mb; done
    for mb in 0 4; do b "l2pf $mb" bf16 1,16 QB_CUDA_L2_PREFETCH_MB=$mb; done
  done 2>&1 | tee "$OUT/ab_l2pf.txt"
  rm -f "$OUT/tmp.log"
fi
if has ppprof; then  # where a 512-token prefill's GPU time goes, fused attention on and off
  pp_profile bf16 QB_CUDA_FLASH_ATTN 1 0 2>&1 | tee "$OUT/ab_prefill_profile.txt"
  rm -f "$OUT/tmp.log"
fi
if has attn; then  # 16 streams: the split-attention grid's target blocks per SM
  for rep in 1 2; do
    for bps in 8 4 16 32; do b "attn$bps/SM " w4g128 16 QB_CUDA_ATTN_BLOCKS_PER_SM=$bps; done
  done 2>&1 | tee "$OUT/ab_attn.txt"
  rm -f "$OUT/tmp.log"
fi
if has w8a8; then  # W8A8 decode (1 and 16 streams) with the kernel switches, once each, then 512-token prefill
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
fi
if has fp8; then  # session 27: FP8 W8A8's fast form (the default) against its exact form, decode and 512-token prefill
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
fi
if has s29g; then  # session 29's final build: where W8A8 and w8 steps of 1, 8 and 16 tokens go, kernel class by class
  # (profiled: no graph, events between classes)
  for sc in w8a8 w8a8-fp8 w8; do
    echo "== $sc (QB_CUDA_PROFILE=1)"
    QB_CUDA_PROFILE=1 timeout 120 ./quantbench bench synthetic:llama2-7b --backend cuda --scheme $sc --batch 1,8,16 \
      --prompt-len 128 --gen-len 32 --reps 1 --warmup 1 --no-progress 2>&1 | grep -v "^backend:\|^gpu:"
  done > "$OUT/s29_profile.txt" 2>&1
fi
if has s31; then  # session 31: FP8 W8A8's default (exact products summed in f32 on the f16 tensor cores: the decode kernel
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
fi
if has s31b; then  # session 31: 512-token FP8 prefill with the quantizer writing the prefill kernel's f16 layout itself (this
  # build) beside the FP8 tensor cores and w8, two rounds; then where its time goes
  for rep in 1 2; do
    p "f16 tc  " w8a8-fp8
    p "fp8 tc  " w8a8-fp8 QB_CUDA_FP8_TC=1
    p "        " w8
  done 2>&1 | tee "$OUT/ab_s31b.txt"
  pp_profile w8a8-fp8 QB_CUDA_FP8_TC 0 2>&1 | tee -a "$OUT/ab_s31b.txt"
  rm -f "$OUT/tmp.log"
fi
if has s34; then  # session 34: see the header
  for bin in qb_gpu_bench qb_gpu_bench_prev; do
    [ -x ./$bin ] || continue
    for spec in w4g128a w4g32a; do
      mkdir -p "$OUT/${bin}_$spec"
      QB_BENCH_SPEC=$spec timeout 200 ./$bin "$OUT/${bin}_$spec" --quick > "$OUT/${bin}_${spec}.log" 2>&1
      echo "$bin $spec rc $?"
    done
  done
  for bin in qb_qgemm_bench qb_qgemm_bench_prev; do
    [ -x ./$bin ] && { timeout 300 ./$bin --quick > "$OUT/${bin}.txt" 2>&1; echo "$bin rc $?"; }
  done
  (cd "$OUT" && tar czf s34_benches.tgz qb_gpu_bench*_w4g* $(ls qb_qgemm_bench*.txt 2>/dev/null) && rm -rf qb_gpu_bench*_w4g*/ qb_qgemm_bench*.txt)
  # w4g32a at 16 tokens: the half step (rule 9) against rule 5's full step, both builds
  for rep in 1 2; do
    for q in ./quantbench_prev ./quantbench; do
      GEN=128 Q=$q b "${q#./} rule9" w4g32-asym 16
      GEN=128 Q=$q b "${q#./} rule5" w4g32-asym 16 QB_CUDA_LAUNCH_RULE=5
    done
  done 2>&1 | tee "$OUT/ab_s34r.txt"
  vs_staged ./quantbench_prev "s33 sep zeros" "s34 one load " 2 "w4g128-asym 1,16 128" "w4g32-asym 1,16 128" \
    "w4g128 1,16 128" 2>&1 | tee "$OUT/ab_s34.txt"
  for rep in 1 2; do
    Q=./quantbench_prev p "s33 sep zeros" w4g128-asym
    p "s34 one load " w4g128-asym
  done 2>&1 | tee -a "$OUT/ab_s34.txt"
  rm -f "$OUT/tmp.log"
fi
if has s33; then  # session 33: see the header
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
fi
if has s31q; then  # session 31: the W8A8 activation quantizers in their prefill shape (256 threads x 16 float4 per token, this
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
fi
if has s31p; then  # session 31: where a 512-token FP8 W8A8 prefill's GPU time goes (the f16 tensor-core default, then the FP8
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
fi
if has s35; then  # session 35: the W8A8 tensor-core decode kernel's loop as a ping-pong. The backend check's W8A8 checks with
  # the ping-pong at every token count (QB_CUDA_W8A8_PIPE=1; the default takes it from 2 tokens), then the default
  # against the plain loop (QB_CUDA_W8A8_PIPE=0): FP8 at 1, 8, 16 streams and INT8 at 8, 16 (INT8's one-token product is
  # the dp4a kernel), interleaved, S35_ROUNDS rounds (2). (At ccd1f8a, before the default changed, the same block ran
  # the plain loop against QB_CUDA_W8A8_PIPE=1.)
  QB_CUDA_W8A8_PIPE=1 timeout 300 ./qb_cuda_backend_check models/stories260K.gguf models/*w8a8*.gguf \
    > "$OUT/backend_check_pipe.log" 2>&1
  echo "backend_check (W8A8 models) with QB_CUDA_W8A8_PIPE=1 rc $?"
  grep -E "^(FAIL|FAILED|PASSED)" "$OUT/backend_check_pipe.log" | cut -c1-200 | head
  vs_env QB_CUDA_W8A8_PIPE=0 "default      " "plain loop   " "${S35_ROUNDS:-2}" "w8a8-fp8 1,8,16 128" "w8a8 8,16 128" \
    2>&1 | tee "$OUT/ab_s35.txt"
  rm -f "$OUT/tmp.log"
fi
if has s30; then  # session 30: the gated activation writing the down product's W8A8 codes (this build's default) against the
  # activation kernel then a quantizer (QB_CUDA_W8A8_ACT_CODES=0): INT8 and FP8 W8A8 decode, two rounds
  vs_env QB_CUDA_W8A8_ACT_CODES=0 "act codes    " "act+quantizer" 2 "w8a8 1,8,16 128" "w8a8-fp8 1,16 128" \
    2>&1 | tee "$OUT/ab_s30.txt"
  rm -f "$OUT/tmp.log"
fi
if has s30w; then  # session 30: the W8A8 tensor-core decode kernel with 8 warps per block at every shape
  # (QB_CUDA_FP8_MMA_WARPS=8) against the default rule (8 below 512 blocks, else 4) where it runs one 8-token tile:
  # FP8 at 1, 4, 8 streams, INT8 at 4, 8; two rounds
  vs_env QB_CUDA_FP8_MMA_WARPS=8 "rule warps   " "8 warps      " 2 "w8a8-fp8 1,4,8 128" "w8a8 4,8 128" \
    2>&1 | tee "$OUT/ab_s30w.txt"
  rm -f "$OUT/tmp.log"
fi
if has s30n; then  # session 30: Nsight Compute on the first 16-token decode step's products, INT8 W8A8 (the int8 tensor-core
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
fi
if has s29e; then  # session 29: FP8 W8A8 with cuBLASLt from 9 tokens (this build's default) against the f16 tensor-core
  # decode kernel up to 16 (QB_CUDA_FP8_TC_MIN=17), and this build against 6fad525 (quantbench_prev), two rounds each
  {
    vs_env QB_CUDA_FP8_TC_MIN=17 "tc from 9    " "mma to 16    " 2 "w8a8-fp8 12,16 128"
    vs_staged ./quantbench_prev "s28 6fad525 " "s29 final   " 2 "w8a8-fp8 1,4,8,16 128"
  } 2>&1 | tee "$OUT/ab_s29e.txt"
  rm -f "$OUT/tmp.log"
fi
if has s29d; then  # session 29: FP8 W8A8 at 2-8 tokens on the f16 tensor-core decode kernel (QB_CUDA_FP8_TC_MIN=9) against
  # cuBLASLt's FP8 GEMM from 2 (the default), two rounds; then this build against 6fad525 (quantbench_prev) on the INT8
  # rule it settled (dp4a at one token, the int8 tensor-core kernel at 2-16) and w4g128, two rounds
  {
    vs_env QB_CUDA_FP8_TC_MIN=9 "cublaslt 2+  " "mma to 8     " 2 "w8a8-fp8 2,4,8,16 128"
    vs_staged ./quantbench_prev "s28 6fad525 " "s29 final   " 2 "w8a8 1,8,16 128" "w4g128 1,16 128"
  } 2>&1 | tee "$OUT/ab_s29d.txt"
  rm -f "$OUT/tmp.log"
fi
if has s29b; then  # session 29: pdl_wait_for (this build) against 6fad525 (quantbench_prev): the kernels whose SASS it changed
  # (bf16 at one token among them; symmetric w4g128's half steps and per-row int8's are the same), one round
  vs_staged ./quantbench_prev "s28 6fad525 " "s29 wait_for" 1 "bf16 1,16 128" "w4g128-asym 1,16 128" "w4g32 1,16 128" \
    2>&1 | tee "$OUT/ab_s29b.txt"
  rm -f "$OUT/tmp.log"
fi
if has s29c; then  # session 29: INT8 W8A8's decode products on the int8 tensor cores (this build's default) against the
  # dp4a kernel at one token and cuBLAS's int8 GEMM at 2-16 (QB_CUDA_INT8_MMA=0), three rounds; then the warps per block
  {
    vs_env QB_CUDA_INT8_MMA=0 "int8 mma    " "dp4a/cublas " 3 "w8a8 1,8,16 128"
    for w in 4 8 16; do GEN=128 b "mma warps$w  " w8a8 1,16 QB_CUDA_FP8_MMA_WARPS=$w; done
  } 2>&1 | tee "$OUT/ab_s29c.txt"
  rm -f "$OUT/tmp.log"
fi
if has s29; then  # session 29: the decode products' activation loads as plain loads after the wait (this build) against
  # __ldg through __restrict__ pointers (quantbench_prev: 6fad525), two rounds. Run at dbf3391; qgemv went back to __ldg
  # behind pdl_wait_for after it (docs/perf.md, session 29)
  vs_staged ./quantbench_prev "s28 6fad525 " "s29 plain x " 2 "w4g128 1,16 128" "w8 1 128" "bf16 1 128" "w8a8 1,16 128" \
    "w8a8-fp8 1,16 128" 2>&1 | tee "$OUT/ab_s29.txt"
  rm -f "$OUT/tmp.log"
fi
if has s28d; then  # session 28: the norm kernel writing the W8A8 codes of q|k|v's and gate|up's input (this build's
  # default) against a quantizer kernel before every W8A8 product (QB_CUDA_W8A8_NORM_CODES=0), two rounds
  vs_env QB_CUDA_W8A8_NORM_CODES=0 "norm codes  " "quantizer   " 2 "w8a8 1,16 128" "w8a8-fp8 1,16 128" 2>&1 | tee "$OUT/ab_s28d.txt"
  rm -f "$OUT/tmp.log"
fi
if has s28c; then  # session 28's final build against session 27's (quantbench_prev: 121b616): what the FP8 mma kernel and the
  # quantizers' non-finite check did to W8A8 steps, three rounds
  vs_staged ./quantbench_prev "s27 121b616 " "s28         " 3 "w8a8 1,16 128" "w8a8-fp8 1,16 128" 2>&1 | tee "$OUT/ab_s28c.txt"
  rm -f "$OUT/tmp.log"
fi
if has s28; then  # session 28: the FP8 decode products on the f16 tensor cores (w8a8_fp8_mma.cu)
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
fi
if has s27; then  # the W8A8 activation quantizers as one block of 1024 (this build) against one of 256 (quantbench_prev:
  # e3cd402), three rounds; then where a one-stream FP8 / INT8 W8A8 step goes (profiled: no graph, events between classes)
  vs_staged ./quantbench_prev "quant256      " "quant1024     " 3 "w8a8-fp8 1,16 128" "w8a8 1,16 128" 2>&1 | tee "$OUT/ab_s27.txt"
  for q in ./quantbench_prev ./quantbench; do
    for s in w8a8-fp8 w8a8 w8; do
      echo "== $q $s (QB_CUDA_PROFILE=1)"
      QB_CUDA_PROFILE=1 timeout 120 $q bench synthetic:llama2-7b --backend cuda --scheme $s --batch 1,16 --prompt-len 128 \
        --gen-len 32 --reps 1 --warmup 1 --no-progress 2>&1 | grep -v "^backend:\|^gpu:"
    done
  done > "$OUT/s27_profile.txt" 2>&1
fi
if has s27b; then  # the one-token FP8 kernel's f32 sums by fused multiply-add (this build) against multiply then add
  # (quantbench_prev: 8c4c308), three rounds
  vs_staged ./quantbench_prev "fmul+fadd     " "fma           " 3 "w8a8-fp8 1 128" 2>&1 | tee "$OUT/ab_s27b.txt"
fi
if has s27c; then  # the W8A8 decode gemv kernels launched early after the quantizer (this build) against plain launches
  # (quantbench_prev: 9ae8396), three rounds
  vs_staged ./quantbench_prev "plain         " "early         " 3 "w8a8-fp8 1,16 128" "w8a8 1,16 128" 2>&1 | tee "$OUT/ab_s27c.txt"
fi
if has s27d; then  # FP8 scales in cuBLASLt's epilogue from 17 tokens (this build) against the scaling kernel always (quantbench_prev: ff75347)
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
fi
if has skip; then  # what each kernel class costs inside the decode graph: steps with it left out (outputs wrong)
  for rep in 1 2; do
    for sk in none norm attn act norm,attn,act prod; do b "skip $sk" w4g128 1,16 QB_CUDA_TIMING_SKIP=$sk; done
    for sk in none norm,attn,act prod; do b "skip $sk" w8 1 QB_CUDA_TIMING_SKIP=$sk; done
  done 2>&1 | tee "$OUT/ab_skip.txt"
  rm -f "$OUT/tmp.log"
fi
if has skip2; then  # w4g128, one stream: the products alone (norm, attention, activation left out) and the full step,
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
fi
if has ropecache; then  # host rope-angle cache: this build against quantbench_prev (staged beside it), interleaved
  for rep in 1 2; do
    Q=./quantbench_prev p "prev" bf16; Q=./quantbench p "new " bf16
    Q=./quantbench_prev p "prev" w4g128; Q=./quantbench p "new " w4g128
    Q=./quantbench_prev b "prev" w4g128 1,16; Q=./quantbench b "new " w4g128 1,16
  done 2>&1 | tee "$OUT/ab_ropecache.txt"
  rm -f "$OUT/tmp.log"
fi
if has splits1; then  # one stream: split-attention grid (QB_CUDA_ATTN_BLOCKS_PER_SM 8 = 16 splits, 2 = 9, 1 = 5)
  for rep in 1 2; do
    for k in 8 2 1; do b "attn blocks/SM $k" w4g128 1 QB_CUDA_ATTN_BLOCKS_PER_SM=$k; done
    for k in 8 2 1; do b "attn blocks/SM $k" w8 1 QB_CUDA_ATTN_BLOCKS_PER_SM=$k; done
  done 2>&1 | tee "$OUT/ab_splits1.txt"
  rm -f "$OUT/tmp.log"
fi
if has rule6; then  # launch rule 6 (symmetric w4g128's half step) against rule 5, interleaved, three times
  { for rep in 1 2 3; do
      for r in 5 6; do b "launch rule $r" w4g128 1,16 QB_CUDA_LAUNCH_RULE=$r; done
    done
    for r in 5 6; do b "launch rule $r" w4g128-asym 1 QB_CUDA_LAUNCH_RULE=$r; done
    for r in 5 6; do b "launch rule $r, early launch off" w4g128 16 QB_CUDA_LAUNCH_RULE=$r QB_CUDA_PDL=0; done
  } 2>&1 | tee "$OUT/ab_rule6.txt"
  rm -f "$OUT/tmp.log"
fi
if has splits16; then  # 16 streams: one key split (the current rule) against the blocks-per-SM rule alone (3 splits)
  for rep in 1 2; do
    for o in 2 0; do b "one-split rule $o" w4g128 16 QB_CUDA_ATTN_ONE_SPLIT=$o; done
    for o in 2 0; do b "one-split rule $o" bf16 16 QB_CUDA_ATTN_ONE_SPLIT=$o; done
    for o in 2 0; do EXTRA="--kv int8" b "one-split rule $o, kv int8" w4g128 16 QB_CUDA_ATTN_ONE_SPLIT=$o; done
    for o in 2 0; do PROMPT=1024 b "one-split rule $o, prompt 1024" w4g128 16 QB_CUDA_ATTN_ONE_SPLIT=$o; done
  done 2>&1 | tee "$OUT/ab_splits16.txt"
  rm -f "$OUT/tmp.log"
fi
if has pdlsmall; then  # decode: small kernels launched early at every step size (QB_CUDA_PDL_SMALL mask, _T=16), then its backend check
  for rep in 1 2 3; do
    for e in 0 7 1 2 4 5; do b "small kernels early $e" w4g128 1,16 QB_CUDA_PDL_SMALL=$e QB_CUDA_PDL_SMALL_T=16; done
    for e in 0 7; do b "small kernels early $e" w8 1 QB_CUDA_PDL_SMALL=$e QB_CUDA_PDL_SMALL_T=16; done
    for e in 0 7; do b "small kernels early $e" bf16 1,16 QB_CUDA_PDL_SMALL=$e QB_CUDA_PDL_SMALL_T=16; done
  done 2>&1 | tee "$OUT/ab_pdlsmall.txt"
  rm -f "$OUT/tmp.log"
  QB_CUDA_PDL_SMALL=7 QB_CUDA_PDL_SMALL_T=16 timeout 240 ./qb_cuda_backend_check models/*.gguf > "$OUT/backend_check_pdlsmall.log" 2>&1
  echo "backend_check with QB_CUDA_PDL_SMALL=7 QB_CUDA_PDL_SMALL_T=16 rc $?"; grep -cE "^PASS " "$OUT/backend_check_pdlsmall.log"
  grep -E "^(FAIL|FAILED|PASSED)" "$OUT/backend_check_pdlsmall.log" | cut -c1-200 | head
fi
if has prewait; then  # loads before the early-launch wait (QB_CUDA_PREWAIT), then its backend check with everything early
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
fi
if has prewait2; then  # the new defaults against session 9's, interleaved
  for rep in 1 2 3; do
    for s in "w4g128 1,16" "w8 1" "bf16 1"; do
      set -- $s
      b "session 10 default" $1 $2
      b "session 9 default " $1 $2 QB_CUDA_PDL_SMALL=5 QB_CUDA_PREWAIT=0
    done
  done 2>&1 | tee "$OUT/ab_prewait2.txt"
  rm -f "$OUT/tmp.log"
fi
if has l2pf2; then  # QB_CUDA_L2_PREFETCH_MB for w8 and bf16, interleaved
  for rep in 1 2; do
    for mb in 4 8 12 16; do b "l2pf $mb" w8 1 QB_CUDA_L2_PREFETCH_MB=$mb; done
    for mb in 4 8 16; do b "l2pf $mb" bf16 1,16 QB_CUDA_L2_PREFETCH_MB=$mb; done
  done 2>&1 | tee "$OUT/ab_l2pf2.txt"
  rm -f "$OUT/tmp.log"
fi
if has l2wide; then  # the wide formats' one-token prefetch, default against 4 MB, interleaved
  for rep in 1 2 3; do
    for s in "w8 1" "bf16 1,16" "w4g128 1"; do
      set -- $s
      b "wide 8 (default)" $1 $2
      b "wide 4          " $1 $2 QB_CUDA_L2_PREFETCH_WIDE_MB=4
    done
  done 2>&1 | tee "$OUT/ab_l2wide.txt"
  rm -f "$OUT/tmp.log"
fi
if has sweep4; then  # the launch-shape sweep of symmetric w4g128 alone (QB_BENCH_SPEC)
  t0=$(date +%s); QB_BENCH_SPEC=w4g128 timeout 300 ./qb_gpu_bench "$OUT" > "$OUT/qgemv_bench_w4.log" 2>&1
  echo "qgemv bench (w4g128) rc $? ($(( $(date +%s) - t0 )) s)"
  awk -F, '$1 == "qgemv_w4g128" && ($5 == 1 || $5 == 16) {printf "%-20s n=%-3s %-14s %7.2f us %5.1f%%\n", $2, $5, $6, $8, $13 * 100}' \
    "$OUT/qgemv_results.csv" | sort -k1,1 -k2,2 -k4,4n | tee "$OUT/sweep_w4.txt" | grep -E "auto|R2w4h|R2w8h"
fi
if has probe; then  # KV-read patterns and the floor of one streaming kernel per product (bench/gpu/kv_read_probe.cu)
  ./qb_kv_read_probe 2>&1 | tee "$OUT/kv_read_probe.txt"
fi
if has ncudec; then  # Nsight Compute on decode kernels in place (w4g128; clocks not locked): split attention at 16
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
fi
if has ncu16; then  # Nsight Compute on the first decode step's 16-token products (layers 0-1: the 16 prefills' one-token
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
fi
if has ncusrc; then  # Nsight Compute warp-stall sampling per SASS instruction (source page as CSV): the 16-stream split
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
fi
if has lean; then
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
fi
if has pdl16; then
  for rep in 1 2 3; do
    b "default" w4g128 16
    for e in 7 1 2 4; do b "early $e at T<=16" w4g128 16 QB_CUDA_PDL_SMALL=$e QB_CUDA_PDL_SMALL_T=16; done
  done 2>&1 | tee "$OUT/ab_pdl16.txt"
  rm -f "$OUT/tmp.log"
fi
if has lean4; then
  for rep in 1 2 3; do
    for sc in w4g128-asym w4g32 w4g32-asym w4g128; do
      b "lean" $sc 1
      [ -x ./quantbench_prev ] && Q=./quantbench_prev b "prev" $sc 1
    done
  done 2>&1 | tee "$OUT/ab_lean4.txt"
  rm -f "$OUT/tmp.log"
fi
if has s13; then
  # Session 13: the one-token half step's first two steps before the wait, and one-split attention
  # normalizing in its own block; against quantbench_prev (15ec688), three rounds.
  for rep in 1 2 3; do
    b "new" w4g128 1,16
    [ -x ./quantbench_prev ] && Q=./quantbench_prev b "prev" w4g128 1,16
    b "new splits>1" w4g128 16 QB_CUDA_ATTN_ONE_SPLIT=0
    b "new" bf16 16
    [ -x ./quantbench_prev ] && Q=./quantbench_prev b "prev" bf16 16
  done 2>&1 | tee "$OUT/ab_s13.txt"
  rm -f "$OUT/tmp.log"
fi
if has s13b; then
  # Session 13: the one-token half step with its first weight loads after the wait (quantbench_w0),
  # early norms at 16 tokens with and without their loads before the wait, and where a 16-stream step
  # goes; against quantbench_prev (15ec688), three rounds.
  for rep in 1 2 3; do
    b "new" w4g128 1,16
    [ -x ./quantbench_w0 ] && Q=./quantbench_w0 b "w0" w4g128 1
    [ -x ./quantbench_prev ] && Q=./quantbench_prev b "prev" w4g128 1,16
    b "new early norms T16" w4g128 16 QB_CUDA_PDL_SMALL=1 QB_CUDA_PDL_SMALL_T=16
    b "new early norms T16 noprewait" w4g128 16 QB_CUDA_PDL_SMALL=1 QB_CUDA_PDL_SMALL_T=16 QB_CUDA_PREWAIT=0
  done 2>&1 | tee "$OUT/ab_s13b.txt"
  for rep in 1 2; do
    for sk in norm attn act norm,attn,act; do b "new skip $sk" w4g128 16 QB_CUDA_TIMING_SKIP=$sk; done
  done 2>&1 | tee "$OUT/ab_s13skip.txt"
  rm -f "$OUT/tmp.log"
fi
if has s13d; then
  # Session 13: qgemv's weight loads with an L2 evict-first policy (this build) against the same code
  # without it (quantbench_ef0), three rounds.
  for rep in 1 2 3; do
    for sb in "w4g128 1,16" "w8 1" "bf16 1,16"; do
      set -- $sb
      b "evict-first" $1 $2
      [ -x ./quantbench_ef0 ] && Q=./quantbench_ef0 b "plain" $1 $2
    done
  done 2>&1 | tee "$OUT/ab_s13d.txt"
  rm -f "$OUT/tmp.log"
fi
if has s14; then
  # Session 14: at 16 streams, L2 prefetch of o's weights (and on into gate|up's) during attention
  # (QB_CUDA_L2_PREFETCH_ATTN_MB), with the attention's K/V loads evict-first or not
  # (QB_CUDA_KV_EVICT_FIRST), against quantbench_prev (the previous build); three rounds.
  for rep in 1 2 3; do
    [ -x ./quantbench_prev ] && Q=./quantbench_prev b "prev          " w4g128 16
    b "ef0 mb0       " w4g128 16
    b "ef1 mb0       " w4g128 16 QB_CUDA_KV_EVICT_FIRST=1
    b "ef0 mb16      " w4g128 16 QB_CUDA_L2_PREFETCH_ATTN_MB=16
    for mb in 8 16 24; do b "ef1 mb$mb      " w4g128 16 QB_CUDA_KV_EVICT_FIRST=1 QB_CUDA_L2_PREFETCH_ATTN_MB=$mb; done
    b "ef0 mb0       " bf16 16
    b "ef1 mb16      " bf16 16 QB_CUDA_KV_EVICT_FIRST=1 QB_CUDA_L2_PREFETCH_ATTN_MB=16
    [ -x ./quantbench_prev ] && Q=./quantbench_prev b "prev          " w4g128 1
    b "ef1 mb16      " w4g128 1 QB_CUDA_KV_EVICT_FIRST=1 QB_CUDA_L2_PREFETCH_ATTN_MB=16
  done 2>&1 | tee "$OUT/ab_s14.txt"
  rm -f "$OUT/tmp.log"
fi
if has s14b; then
  # Session 14: one stream, the fused-rope attention as one block of 8 or 16 warps per head and one key
  # split (QB_CUDA_ATTN_WIDE 1: 16 warps x 8 keys, 2: 16 x 12, 3: 8 x 8; no merge) against 16 splits of
  # 4 warps merged by the last block (0), and quantbench_prev; gen 64 and 128; three rounds.
  for rep in 1 2 3; do
    [ -x ./quantbench_prev ] && Q=./quantbench_prev b "prev          " w4g128 1
    for w in 0 1 2 3; do b "wide$w         " w4g128 1 QB_CUDA_ATTN_WIDE=$w; done
    b "wide1 ef1     " w4g128 1 QB_CUDA_ATTN_WIDE=1 QB_CUDA_KV_EVICT_FIRST=1
    for w in 0 1; do b "wide$w         " w8 1 QB_CUDA_ATTN_WIDE=$w; b "wide$w         " bf16 1 QB_CUDA_ATTN_WIDE=$w; done
    for w in 0 1 2; do GEN=128 b "gen128 wide$w  " w4g128 1 QB_CUDA_ATTN_WIDE=$w; done
  done 2>&1 | tee "$OUT/ab_s14b.txt"
  rm -f "$OUT/tmp.log"
fi
if has s14c; then
  # Session 14: the f16 decode attention's K/V loads as streaming data (ld.global.cs, QB_CUDA_KV_STREAMING=1)
  # against plain loads (0) and quantbench_prev; three rounds.
  for rep in 1 2 3; do
    for sb in "w4g128 16" "w4g128 1" "bf16 16" "w8 1"; do
      set -- $sb
      [ -x ./quantbench_prev ] && Q=./quantbench_prev b "prev          " $1 $2
      b "plain         " $1 $2 QB_CUDA_KV_STREAMING=0
      b "streaming     " $1 $2 QB_CUDA_KV_STREAMING=1
    done
  done 2>&1 | tee "$OUT/ab_s14c.txt"
  rm -f "$OUT/tmp.log"
fi
if has s14d; then
  # Session 14: the f16 decode attention's K/V loads always streaming (ld.global.cs, this build) against
  # plain loads (quantbench_prev, commit ab145bf); three rounds, gen 64, then w4g128 at 16 streams at gen 128.
  vs_staged ./quantbench_prev "prev          " "streaming     " 3 "w4g128 16" "w4g128 1" "bf16 16" "bf16 1" "w8 1" \
    "w4g128 16 128" 2>&1 | tee "$OUT/ab_s14d.txt"
  rm -f "$OUT/tmp.log"
fi
if has s14e; then
  # Session 14: qgemv's weight loads evict-first in L1 and L2 (ld.global.cs.nc; this build, QB_WEIGHTS_EVICT_FIRST=1)
  # against L1 no-allocate (quantbench_base, commit deaa758); three rounds, gen 64, then w4g128 16 at gen 128.
  vs_staged ./quantbench_base "base          " "weights-cs    " 3 "w4g128 16" "w4g128 1" "w8 1" "w4g128-asym 1" \
    "w4g128 16 128" 2>&1 | tee "$OUT/ab_s14e.txt"
  rm -f "$OUT/tmp.log"
fi
kv_ab() {  # block label kv+streams...: w4g128 decode per "KV-type streams", quantbench_base then this build, three rounds
  local block=$1 label=$2; shift 2
  local cases=("$@")  # the loop's `set --` replaces the arguments
  for rep in 1 2 3; do
    for kb in "${cases[@]}"; do
      set -- $kb
      [ -x ./quantbench_base ] && EXTRA="--kv $1" Q=./quantbench_base b "base kv $1     " w4g128 $2
      EXTRA="--kv $1" b "$label kv $1" w4g128 $2
    done
  done 2>&1 | tee "$OUT/ab_$block.txt"
  rm -f "$OUT/tmp.log"
}
# Session 14, s14f: the quantized-cache decode attention's code and scale loads as streaming data
# (ld.global.cs; this build) against plain loads (quantbench_base, commit 5c85e16): w4g128 with an int8, fp8
# and int4 KV cache at 16 streams, int8 at one stream.
has s14f && kv_ab s14f streaming "int8 16" "fp8 16" "int4 16" "int8 1"
# Session 14, s14g: the quantized-cache attention with one split normalizing in its own block, no merge
# kernel (this build) against quantbench_base (commit 254c19f: a merge kernel after every launch): w4g128
# with an int8, fp8 and int4 KV cache at 16 streams (one split), and the f16 cache at 16 streams (unchanged
# code).
has s14g && kv_ab s14g one-split "int8 16" "fp8 16" "int4 16" "f16 16"
# Session 15, s15: the gated activation in the gate|up product's epilogue (the default; at 29ffab4, where
# this block last ran, at steps of 2-16 tokens, from 7dbb6e4 on from one token) against the same build
# with QB_CUDA_FUSE_ACT=0 (the activation kernel, as before): w4g128 at 1 and 16 streams, w8 at 16; three
# rounds. The session's first two calls also ran the down product launched early after the fused gate|up
# (commits b3794b7 and 0c4d217; docs/perf.md, session 15).
if has s15; then
  for rep in 1 2 3; do
    for sb in "w4g128 1" "w4g128 16" "w8 16"; do
      set -- $sb
      b "fused      " $1 $2
      b "unfused    " $1 $2 QB_CUDA_FUSE_ACT=0
    done
  done 2>&1 | tee "$OUT/ab_s15.txt"
  rm -f "$OUT/tmp.log"
fi
# Session 15, s15b: the one-token half step's double buffer as an explicit ping-pong. At 4b2b449 this build
# (A) had it in the fused gate|up kernel only and quantbench_B (built with QB_PINGPONG_PLAIN=1, since
# removed) in every one-token half-step kernel, as every build since has: w4g128 at one stream, each with
# the activation fused at one token too (QB_CUDA_FUSE_ACT_MIN_T=1) and not; three rounds.
if has s15b; then
  for rep in 1 2 3; do
    b "A            " w4g128 1 QB_CUDA_FUSE_ACT_MIN_T=2
    b "A fused at 1 " w4g128 1 QB_CUDA_FUSE_ACT_MIN_T=1
    [ -x ./quantbench_B ] && Q=./quantbench_B b "B            " w4g128 1 QB_CUDA_FUSE_ACT_MIN_T=2
    [ -x ./quantbench_B ] && Q=./quantbench_B b "B fused at 1 " w4g128 1 QB_CUDA_FUSE_ACT_MIN_T=1
  done 2>&1 | tee "$OUT/ab_s15b.txt"
  rm -f "$OUT/tmp.log"
fi
# Session 15, s15c: this build against quantbench_base (4b2b449's A: the fused kernel's ping-pong only,
# fused at 2-16 tokens): w4g128 at 1 and 16 streams, w8 and bf16 at 1; three rounds.
if has s16; then
  # Session 16: the gated epilogue summing over the warps in a pass of its own, and the decode norms
  # over thread-block clusters (QB_CUDA_NORM_CLUSTER; 8 at 2-16 rows by default), both in the build of
  # commit 9106597 (the clusters lost and were removed after it: docs/perf.md, session 16). Kernel
  # level: this build and qb_gpu_bench_base (the previous build) for w4g128 and w8; then steps against
  # quantbench_base, the cluster off, on from 2 rows (default) and from one row; three times.
  for spec in w4g128 w8; do
    for bin in qb_gpu_bench qb_gpu_bench_base; do
      [ -x ./$bin ] || continue
      mkdir -p "$OUT/${bin}_$spec"
      QB_BENCH_SPEC=$spec QB_BENCH_NO_PDL=1 timeout 300 ./$bin "$OUT/${bin}_$spec" --quick > "$OUT/${bin}_${spec}_quick.log" 2>&1
      echo "$bin $spec --quick rc $?"
      grep -E "^(o|qkv|gate.up|down) " "$OUT/${bin}_${spec}_quick.log" | cut -c1-100
    done
  done 2>&1 | tee "$OUT/ab_s16_kernels.txt"
  for rep in 1 2 3; do
    for sb in "w4g128 1,16" "w8 1,16"; do
      set -- $sb
      [ -x ./quantbench_base ] && Q=./quantbench_base b "base  " $1 $2
      b "c0    " $1 $2 QB_CUDA_NORM_CLUSTER=0
      b "c8    " $1 $2
      b "c8t1  " $1 $2 QB_CUDA_NORM_CLUSTER_MIN_T=1
      b "c4    " $1 $2 QB_CUDA_NORM_CLUSTER=4
    done
  done 2>&1 | tee "$OUT/ab_s16.txt"
  rm -f "$OUT/tmp.log"
fi
# b, then the decode steps' device spans that QB_CUDA_STEP_SPAN (in the variant's env) printed at exit.
bspan() { b "$@"; grep "^step span T=\(1\|16\)[: ]" "$OUT/tmp.log"; }
if has s16b; then
  # Session 16: where a step's wall time goes outside the GPU's work (QB_CUDA_STEP_SPAN=1 prints the device
  # time from each step's table upload to its ids download), and the fused gate|up activation against the
  # activation kernel (QB_CUDA_FUSE_ACT=0) after the two-pass epilogue; w4g128 and w8 at 1 and 16 streams,
  # three times.
  for rep in 1 2 3; do
    for sc in w4g128 w8; do
      bspan "span  " $sc 1,16 QB_CUDA_STEP_SPAN=1
      b "fuse0 " $sc 1,16 QB_CUDA_FUSE_ACT=0
      b "this  " $sc 1,16
    done
  done 2>&1 | tee "$OUT/ab_s16b.txt"
  rm -f "$OUT/tmp.log"
fi
# s16c: a graphed decode step pulling its table from mapped host memory and writing its argmax ids there,
# with the float4 argmax (the build of 409fe52), against quantbench_base (copy-engine transfers around the
# graph, scalar argmax). s16d: the graphed step's table copy and embedding rows in one launch (commit
# ca40b93, measured within noise and reverted after it) against quantbench_base (two kernels). The same
# runs: this build and quantbench_base, w4g128 and w8 at 1 and 16 streams with their device spans
# (QB_CUDA_STEP_SPAN=1), three times.
for blk in s16c s16d; do
  has $blk || continue
  for rep in 1 2 3; do
    for sc in w4g128 w8; do
      [ -x ./quantbench_base ] && Q=./quantbench_base bspan "base  " $sc 1,16 QB_CUDA_STEP_SPAN=1
      bspan "this  " $sc 1,16 QB_CUDA_STEP_SPAN=1
    done
  done 2>&1 | tee "$OUT/ab_$blk.txt"
  rm -f "$OUT/tmp.log"
done
if has s16e; then
  # Session 16: how long a step waits on the host. QB_CUDA_STEP_SPAN=2 launches each graphed greedy step a
  # second time behind the first and prints both runs' device times (the queued one has no submission to
  # wait for); w4g128 and w8 at 1 and 16 streams, twice. The bench's own step times are wrong here.
  for rep in 1 2; do
    for sc in w4g128 w8; do
      bspan "twice " $sc 1,16 QB_CUDA_STEP_SPAN=2
    done
  done 2>&1 | tee "$OUT/ab_s16e.txt"
  rm -f "$OUT/tmp.log"
fi
# s18, s18d (session 18): the split-attention merge with its partial outputs loaded together with the
# splits' maxima and sums, one L2 round trip (this build) against quantbench_prev (main at e2233ec, whose
# merge loaded the partial outputs after the splits' weights); three rounds, gen 64, and w4g128 at one
# stream at gen 128 (the table's length). 16 streams run one split (no merge): a control. s18 ran commit
# b6a9266 (32 scalar loads per thread: slower, reverted); s18d ran 51914d6 (one 8-byte load per split with
# a running address: kept). docs/perf.md, session 18.
if has s21; then
  # Session 21: the half step for asymmetric w4g128 (launch rule 8, the default) against rule 7 (its
  # asymmetric products in full steps). Kernel level: the w4g128a sweep (QB_BENCH_SPEC), per shape at 1 and
  # 16 tokens the rule's row, rule 5's (= rule 7's for asymmetric), and the best half-step and full-step
  # shapes. Then steps at gen 128, w4g128-asym at 1 and 16 streams against QB_CUDA_LAUNCH_RULE=7,
  # interleaved, three rounds; then once on synthetic:llama3-8b and qwen2.5-7b.
  t0=$(date +%s); QB_BENCH_SPEC=w4g128a timeout 300 ./qb_gpu_bench "$OUT" > "$OUT/qgemv_bench_w4a.log" 2>&1
  echo "qgemv bench (w4g128a) rc $? ($(( $(date +%s) - t0 )) s)"
  best_per_kind "$OUT/qgemv_results.csv" '$1 ~ /^qgemv_w4g128a/ && $1 !~ /pdl/' \
    'c ~ /^auto/ ? "rule8" : c ~ /^rule5/ ? "rule7" : c ~ /h$/ ? "half" : "full"' "rule8 rule7 half full" |
    tee "$OUT/sweep_w4a.txt"
  GEN=128 vs_env "QB_CUDA_LAUNCH_RULE=7" "gen128 rule8" "gen128 rule7" 3 "w4g128-asym 16" "w4g128-asym 1" 2>&1 | tee "$OUT/ab_s21.txt"
  for m in synthetic:llama3-8b synthetic:qwen2.5-7b; do
    MODEL=$m GEN=128 vs_env "QB_CUDA_LAUNCH_RULE=7" "${m#synthetic:} rule8" "${m#synthetic:} rule7" 1 "w4g128-asym 1,16"
  done 2>&1 | tee -a "$OUT/ab_s21.txt"
  rm -f "$OUT/tmp.log"
fi
if has s22; then
  # Session 22: w4g32 with mins (GGUF Q4_1 and Q4_K packed, weight q * s + m; before, both ran as dense f16).
  # Kernel level: the w4g32m sweep (QB_BENCH_SPEC), per shape at 1 and 16 tokens the rule's row and the best
  # half-step shape (its only kernel: R = 1). Then steps at gen 128 on synthetic:llama2-7b at 1 and 16
  # streams: w4g32m beside asymmetric w4g32 (the nearest format), symmetric w4g32 and bf16 (what the dense
  # f16 path streamed), interleaved, two rounds; once on synthetic:llama3-8b.
  rule_vs_best w4g32m | tee "$OUT/sweep_w4g32m.txt"
  for rep in 1 2; do
    for sc in w4g32m w4g32-asym w4g32 bf16; do GEN=128 b "gen128" $sc 1,16; done
  done 2>&1 | tee "$OUT/ab_s22.txt"
  for sc in w4g32m w4g32-asym; do MODEL=synthetic:llama3-8b GEN=128 b "llama3-8b" $sc 1,16; done 2>&1 | tee -a "$OUT/ab_s22.txt"
  rm -f "$OUT/tmp.log"
fi
if has s23; then
  # Session 23: GGUF Q6_K packed as w8g16 (before: dense f16), and stacks whose parts are packed in different
  # formats (Q4_K_M's q|k in Q4_K with v in Q6_K) run as one product per format (before: dense f16 as a whole).
  # Kernel level: the w8g16 sweep (QB_BENCH_SPEC), per shape at 1 and 16 tokens the rule's row and the best.
  # Steps at gen 128 at 1 and 16 streams on synthetic:llama2-7b's q4_k_m (GGUF Q4_K_M's mix) as it runs now,
  # with split stacks off (QB_CUDA_SPLIT_STACKS=0), with Q6_K dense (QB_CUDA_PACK_Q6K=0: how a Q4_K_M file ran
  # before), and all Q4_K (w4g32m), interleaved, two rounds; now and Q6_K dense once on llama3-8b.
  rule_vs_best w8g16 | tee "$OUT/sweep_w8g16.txt"
  for rep in 1 2; do
    GEN=128 b "gen128 now" q4_k_m 1,16
    GEN=128 b "gen128 nosplit" q4_k_m 1,16 QB_CUDA_SPLIT_STACKS=0
    GEN=128 b "gen128 q6dense" q4_k_m 1,16 QB_CUDA_PACK_Q6K=0
    GEN=128 b "gen128" w4g32m 1,16
  done 2>&1 | tee "$OUT/ab_s23.txt"
  for v in "" QB_CUDA_PACK_Q6K=0; do MODEL=synthetic:llama3-8b GEN=128 b "llama3-8b ${v:-now}" q4_k_m 1,16 $v; done 2>&1 |
    tee -a "$OUT/ab_s23.txt"
  rm -f "$OUT/tmp.log"
fi
if has s23b; then
  # Session 23: launch rule 9 (w8g16's own shapes) against 8: the w8g16 sweep, rule and best per shape (as run
  # at 67ab6d0 it also asked for w8g32, which qgemv_bench did not offer then: nothing ran); then q4_k_m steps at
  # gen 128 at 1 and 16 streams under rules 9 and 8, interleaved, two rounds on synthetic:llama2-7b, one on
  # llama3-8b.
  rule_vs_best w8g16 QB_BENCH_NO_PDL=1 2>&1 | tee "$OUT/sweep_s23b.txt"
  GEN=128 vs_env "QB_CUDA_LAUNCH_RULE=8" "gen128 rule9" "gen128 rule8" 2 "q4_k_m 1,16" 2>&1 | tee "$OUT/ab_s23b.txt"
  MODEL=synthetic:llama3-8b GEN=128 vs_env "QB_CUDA_LAUNCH_RULE=8" "llama3-8b rule9" "llama3-8b rule8" 1 "q4_k_m 1,16" 2>&1 |
    tee -a "$OUT/ab_s23b.txt"
  rm -f "$OUT/tmp.log"
fi
if has s23c; then
  # Session 23: GGUF Q5_K packed as w8g32 with mins (before: dense f16). The w8g32m and w8g32 sweeps, rule and
  # best per shape; then steps at gen 128 at 1 and 16 streams on synthetic:llama2-7b: q5_k_m (Q5_K_M's mix,
  # w8g32m with w8g16), w8g32m alone, bf16 (what dense streamed), interleaved, two rounds.
  for sp in w8g32m w8g32; do rule_vs_best $sp QB_BENCH_NO_PDL=1; done 2>&1 | tee "$OUT/sweep_s23c.txt"
  for rep in 1 2; do
    for sc in q5_k_m w8g32m bf16; do GEN=128 b "gen128" $sc 1,16; done
  done 2>&1 | tee "$OUT/ab_s23c.txt"
  rm -f "$OUT/tmp.log"
fi
if has evalcuda; then
  # quantbench eval on the GPU against the CPU's reference path, same inputs: stories260K against its w8 (64- and 172-wide
  # matrices: the ragged paths) and rand-llama against its q4_k_m mix (the packed fast paths and a split
  # q|k|v stack); perplexity with KL, hellaswag, and greedy story continuations. eval_backends.py prints the
  # headline metrics side by side and fails where a perplexity differs by more than 1e-3 relative or the
  # CUDA run's manifest does not name its GPU and runtime.
  R=../..  # the checkout the device tool sent (ab.sh runs in its staged folder)
  E="--regimes perplexity,multiple_choice,generation --tasks hellaswag --text $R/data/eval/tinystories/tiny_eval_slice.txt
     --prompts $R/examples/stories_prompts.jsonl --data-dir $R/data/eval --limit 16 --quiet"
  # EVAL_PAIRS ("base cand,base cand"): other pairs (session 28: the W8A8 models)
  IFS=',' read -r -a pairs <<< "${EVAL_PAIRS:-stories260K stories260K-w8,rand-llama rand-llama-q4_k_m}"
  for pair in "${pairs[@]}"; do
    read -r base cand <<< "$pair"
    # the CPU on its exact reference path (its fast kernels quantize a quantized matrix's input to 8-bit
    # blocks, as llama.cpp's do, which the GPU's products do not: the manifests say which ran)
    # EVAL_GPU_REF=1: the GPU in its most exact mode too (eval --reference: f32 weights and products);
    # EVAL_CPU_KV=f16: the CPU with the GPU's f16 cache (both models) instead of its f32 one
    for be in cpu cuda; do
      timeout 300 ./quantbench eval --baseline models/$base.gguf --candidate models/$cand.gguf $E --backend $be \
        $([ $be = cpu ] || [ -n "${EVAL_GPU_REF:-}" ] && echo --reference) \
        $([ $be = cpu ] && [ -n "${EVAL_CPU_KV:-}" ] && echo --kv $EVAL_CPU_KV --baseline-kv $EVAL_CPU_KV) \
        --json "$OUT/eval_${cand}_$be.json" > "$OUT/eval_${cand}_$be.log" 2>&1
      echo "eval $cand --backend $be rc $?"
    done
    # EVAL_FLOOR_KV=f16: the CPU run again with that cache (both models), whose distance from the first sets
    # the perplexity tolerance where it exceeds 1e-3 (eval_backends.py --floor)
    floor=()
    if [ -n "${EVAL_FLOOR_KV:-}" ]; then
      timeout 300 ./quantbench eval --baseline models/$base.gguf --candidate models/$cand.gguf $E --backend cpu --reference \
        --kv $EVAL_FLOOR_KV --baseline-kv $EVAL_FLOOR_KV --json "$OUT/eval_${cand}_floor.json" > "$OUT/eval_${cand}_floor.log" 2>&1
      echo "eval $cand --backend cpu --kv $EVAL_FLOOR_KV (floor) rc $?"
      floor=(--floor "$OUT/eval_${cand}_floor.json")
    fi
    python3 eval_backends.py "$OUT/eval_${cand}_cpu.json" "$OUT/eval_${cand}_cuda.json" "${floor[@]}" \
      | tee "$OUT/eval_${cand}_compare.txt"
  done
fi
if has clicuda; then
  # The other two commands with --backend cuda on files (run.sh benches synthetic models only): bench on
  # rand-llama's q4_k_m mix (a file's stored-bytes roofline, the manifest), and greedy generate on
  # stories260K-w8 beside the CPU's (the same text up to where f16 and f32 products part at a near-tie).
  timeout 120 ./quantbench bench models/rand-llama-q4_k_m.gguf --backend cuda --batch 1,4 --prompt-len 32 --gen-len 32 \
    --reps 2 --warmup 1 --no-progress --json "$OUT/bench_q4_k_m_file.json" > "$OUT/bench_q4_k_m_file.log" 2>&1
  echo "bench file rc $?"; grep -vE "^\s*$" "$OUT/bench_q4_k_m_file.log" | cut -c1-200 | head -12
  python3 -c "import json,sys; m=json.load(open(sys.argv[1]))['manifest']; [print(k, '=', str(m.get(k))[:150]) for k in ('hardware.gpu','toolchain.cuda','scheme.kv_cache','model.source_file')]" "$OUT/bench_q4_k_m_file.json"
  for be in cpu cuda; do
    timeout 60 ./quantbench generate models/stories260K-w8.gguf --backend $be --prompt "Once upon a time" --max-tokens 48 \
      > "$OUT/generate_$be.txt" 2> "$OUT/generate_$be.log"; echo "generate --backend $be rc $?"; cat "$OUT/generate_$be.txt"
  done
fi
if has s24; then
  # Session 24: w8g16 with mins (GGUF Q2_K's form, new): the launch-shape sweep against the rule, then
  # one- and 16-stream steps at gen 128 beside w8g16 (Q6_K's and Q3_K's form: same bytes but the mins)
  # and w8g32m, two rounds.
  rule_vs_best w8g16m | tee "$OUT/sweep_w8g16m.txt"
  for rep in 1 2; do
    for sc in w8g16m w8g16 w8g32m; do GEN=128 b "gen128" $sc 1,16; done
  done 2>&1 | tee "$OUT/ab_s24.txt"
  rm -f "$OUT/tmp.log"
fi
if has s24b; then
  # Session 24: w8g16m's launch shapes (rule 9, this build) against rule 8's, steps at gen 128, interleaved,
  # two rounds; then the bench's table for q4_k_m and for a GGUF file with q2_k matrices (the stored-bytes line).
  GEN=128 vs_env "QB_CUDA_LAUNCH_RULE=8" "gen128 rule9" "gen128 rule8" 2 "w8g16m 1,16" 2>&1 | tee "$OUT/ab_s24b.txt"
  for m in synthetic:llama2-7b models/rand-llama-q2_k.gguf; do
    sc="--scheme q4_k_m"; [ "$m" = synthetic:llama2-7b ] || sc=
    timeout 120 ./quantbench bench $m --backend cuda $sc --batch 1,16 --prompt-len 128 --gen-len 64 --reps 2 \
      --warmup 1 --no-progress --json "$OUT/bench_s24b_$(basename $m).json" 2>&1 | head -12
  done 2>&1 | tee -a "$OUT/ab_s24b.txt"
  rm -f "$OUT/tmp.log"
fi
if has s24c; then
  # Session 24: qgemm for int8 with groups of 16 (w8g16: GGUF Q6_K, Q3_K; w8g16m: Q2_K) and with an output row
  # stride (the parts of a split q|k|v stack): its checks (qb_cuda_tests qgemm), the backend check on the models
  # with those, then 512-token prefills on synthetic:llama2-7b (p: prefill tok/s and the share of the same-run
  # cuBLAS GEMM), this build against the previous one (quantbench_prev: w8g16 and split stacks dequantized for
  # cuBLAS), interleaved, two rounds: q4_k_m, q5_k_m, w8g16, w8g16m; bf16 once.
  qgemm_then_backend_check g16 models/rand-llama-{q6_k,q3_k,q2_k,q4_k_m,q5_k_m}.gguf
  for rep in 1 2; do
    for sc in q4_k_m q5_k_m w8g16 w8g16m; do p "this" $sc; [ -x ./quantbench_prev ] && Q=./quantbench_prev p "prev" $sc; done
  done 2>&1 | tee "$OUT/ab_s24c.txt"
  p "this" bf16 2>&1 | tee -a "$OUT/ab_s24c.txt"
  rm -f "$OUT/tmp.log"
fi
if has s24d; then
  # Session 24: w4g32m's half step at R = 2 (new; before, R = 1 only): the launch-shape sweep, best of each
  # row-block count per shape against the rule's shape.
  KIND='c ~ /^auto/ ? "rule" : c ~ /^R1/ ? "R1" : "R2"' KINDS="rule R1 R2" rule_vs_best w4g32m | tee "$OUT/sweep_s24d.txt"
fi
if has s24e; then
  # Session 24: w4g32m's 16-token shapes at R = 2 (rule 9, this build) against rule 8's (R = 1), steps at gen 128,
  # interleaved: w4g32m and q4_k_m at 16 streams (and one stream: unchanged) on synthetic:llama2-7b (two rounds),
  # llama3-8b and qwen2.5-7b (one round each).
  GEN=128 vs_env "QB_CUDA_LAUNCH_RULE=8" "llama2-7b rule9" "llama2-7b rule8" 2 "w4g32m 1,16" "q4_k_m 16" 2>&1 | tee "$OUT/ab_s24e.txt"
  for m in llama3-8b qwen2.5-7b; do
    MODEL=synthetic:$m GEN=128 vs_env "QB_CUDA_LAUNCH_RULE=8" "$m rule9" "$m rule8" 1 "w4g32m 16" "q4_k_m 16"
  done 2>&1 | tee -a "$OUT/ab_s24e.txt"
  rm -f "$OUT/tmp.log"
fi
if has s24f; then
  # Session 24: w4g32m's launch-shape sweep on Llama-3-8B's and Qwen2.5-7B's products (its 16-token R = 2 shapes
  # made a Llama-3-8B 16-stream step slower: s24e), best of each row-block count per shape against the rule.
  for m in llama3-8b qwen2.5-7b; do
    TAG=$m KIND='c ~ /^auto/ ? "rule" : c ~ /^R1/ ? "R1" : "R2"' KINDS="rule R1 R2" rule_vs_best w4g32m QB_BENCH_SHAPES=$m
  done 2>&1 | tee "$OUT/sweep_s24f.txt"
fi
if has s23d; then
  # Session 23: launch rule 9 with the shapes of w8g32 and w8g32m against 8, steps at gen 128 at 1 and 16 streams,
  # interleaved, two rounds on synthetic:llama2-7b (q5_k_m, w8g32: GGUF Q8_0's form, q4_k_m), one on llama3-8b.
  GEN=128 vs_env "QB_CUDA_LAUNCH_RULE=8" "gen128 rule9" "gen128 rule8" 2 "q5_k_m 1,16" "w8g32 1,16" "q4_k_m 1,16" 2>&1 |
    tee "$OUT/ab_s23d.txt"
  MODEL=synthetic:llama3-8b GEN=128 vs_env "QB_CUDA_LAUNCH_RULE=8" "llama3-8b rule9" "llama3-8b rule8" 1 "q5_k_m 1,16" \
    "w8g32 1,16" 2>&1 | tee -a "$OUT/ab_s23d.txt"
  rm -f "$OUT/tmp.log"
fi
if has s23e; then
  # Session 23: rule 9's 16-token mid grids at R = 2 x 4 warps only where that gives every SM two blocks (this
  # build) against rule 8, 16-stream steps at gen 128, interleaved, two rounds: w8g32 and q5_k_m on
  # synthetic:llama3-8b (its q|k|v: 192 blocks, now rule 8's shape) and w8g32 on llama2-7b (384, unchanged).
  for rep in 1 2; do
    MODEL=synthetic:llama3-8b GEN=128 vs_env "QB_CUDA_LAUNCH_RULE=8" "llama3-8b rule9" "llama3-8b rule8" 1 "w8g32 16" "q5_k_m 16"
    GEN=128 vs_env "QB_CUDA_LAUNCH_RULE=8" "gen128 rule9" "gen128 rule8" 1 "w8g32 16"
  done 2>&1 | tee "$OUT/ab_s23e.txt"
  rm -f "$OUT/tmp.log"
fi
if has s23f; then
  # Session 23: qgemm (the fused prefill product) with mins, w4g32m (GGUF Q4_1, Q4_K) and w8g32m (Q5_K): its
  # checks (qb_cuda_tests qgemm), the backend check on the models with mins, then 512-token prefills on
  # synthetic:llama2-7b (p: prefill tok/s and the share of the same-run cuBLAS GEMM): q4_k_m, q5_k_m and w4g32m
  # with qgemm and with dequantize + cuBLAS (QB_CUDA_QGEMM=0, the path before), w4g128 and bf16, one round. (As
  # run at ac185b9 it had a copy of p printing the bench row too.)
  qgemm_then_backend_check mins models/rand-llama-{q4_1,q4_k,q4_k_m,q5_k,q5_k_m}.gguf
  for sc in q4_k_m q5_k_m w4g32m; do p "qgemm" $sc; p "deq+blas" $sc QB_CUDA_QGEMM=0; done 2>&1 | tee "$OUT/ab_s23f.txt"
  for sc in w4g128 bf16; do p "this" $sc; done 2>&1 | tee -a "$OUT/ab_s23f.txt"
  rm -f "$OUT/tmp.log"
fi
if has s22b; then
  # Session 22: the kernel with mins in its two forms, steps at gen 128 at 1 and 16 streams, interleaved,
  # three rounds. 63a2e8d: the group's activation sum from an mma on ones, the one-token kernel capped at 96
  # registers (quantbench_ones, staged; uncapped at 100 registers it had run 4% slower: 2.28-2.29 against
  # 2.18-2.20 ms at one stream, same call); this build: weights q * s + m formed in f16 (78 registers).
  vs_staged ./quantbench_ones "gen128 ones" "gen128 f16w" 3 "w4g32m 1 128" "w4g32m 16 128" 2>&1 | tee "$OUT/ab_s22b.txt"
  rm -f "$OUT/tmp.log"
fi
if has s22c; then
  # Session 22: w4g32m's launch shapes (this build: 12 warps on small grids at one token, 3 on the others at
  # 16 tokens) against asymmetric w4g32's (quantbench_prev, 64e2e22), steps at gen 128 at 1 and 16 streams,
  # interleaved, two rounds on synthetic:llama2-7b, one on llama3-8b.
  vs_staged ./quantbench_prev "gen128 prev" "gen128 this" 2 "w4g32m 1 128" "w4g32m 16 128" 2>&1 | tee "$OUT/ab_s22c.txt"
  MODEL=synthetic:llama3-8b vs_staged ./quantbench_prev "llama3-8b prev" "llama3-8b this" 1 "w4g32m 1,16 128" 2>&1 | tee -a "$OUT/ab_s22c.txt"
  rm -f "$OUT/tmp.log"
fi
if has s22d; then
  # Session 22: w4g32m at 16 tokens on the wide grids (gate|up, lm_head): 3 warps (this build, d50bb70) against
  # 4 and 5 (quantbench_wide4, quantbench_wide5; q|k|v at 3 in all three), 16-stream steps at gen 128,
  # interleaved, two rounds on synthetic:llama2-7b and llama3-8b, one on qwen2.5-7b.
  for m in llama2-7b llama3-8b llama2-7b llama3-8b qwen2.5-7b; do
    for v in "" _wide4 _wide5; do MODEL=synthetic:$m GEN=128 Q=./quantbench$v b "$m ${v:-_wide3}" w4g32m 16; done
  done 2>&1 | tee "$OUT/ab_s22d.txt"
  rm -f "$OUT/tmp.log"
fi
if has s22e; then
  # Session 22: the w4g32m sweep on Llama-3-8B's and Qwen2.5-7B's shapes (QB_BENCH_SHAPES), each shape's time at
  # 1 and 16 tokens per warp count (R = 1, the half step: its only kernel), to set its launch shapes.
  for m in llama3-8b qwen2.5-7b; do
    t0=$(date +%s); QB_BENCH_SHAPES=$m QB_BENCH_SPEC=w4g32m QB_BENCH_NO_PDL=1 timeout 200 ./qb_gpu_bench "$OUT" > "$OUT/qgemv_bench_w4g32m_$m.log" 2>&1
    echo "qgemv bench (w4g32m, $m) rc $? ($(( $(date +%s) - t0 )) s)"
    cp "$OUT/qgemv_results.csv" "$OUT/qgemv_results_w4g32m_$m.csv"
    awk -F, '$1 == "qgemv_w4g32m" && ($5 == 1 || $5 == 16) && $6 ~ /^(auto:)?R1w[0-9]+h$/ {
        k = $2 " n=" $5; a[k] = a[k] sprintf(" %s:%.1f", $6, $8) }
      END { for (k in a) print k, a[k] }' "$OUT/qgemv_results_w4g32m_$m.csv" | sort
  done 2>&1 | tee "$OUT/sweep_s22e.txt"
fi
if has s22f; then
  # Session 22: w4g32m's launch rule as set from three models' sweeps (this build) against d50bb70's
  # (quantbench_prev: Llama-2-7B's sweep alone), steps at gen 128 at 1 and 16 streams, interleaved, two rounds
  # on synthetic:llama2-7b, llama3-8b and qwen2.5-7b.
  for m in llama2-7b llama3-8b qwen2.5-7b; do
    MODEL=synthetic:$m vs_staged ./quantbench_prev "$m prev" "$m this" 2 "w4g32m 1,16 128"
  done 2>&1 | tee "$OUT/ab_s22f.txt"
  rm -f "$OUT/tmp.log"
fi
if has s21d; then
  # Session 21: symmetric w4g32 at 1-8 tokens on wide and mid grids at R = 1 with 4 or 6 warps (staged builds
  # quantbench_w4, quantbench_w6) against this build (run at 8ebf8bf: R = 2, symmetric w4g128's shapes; 9e2c5e8
  # took the 4 warps): one stream at gen 128, interleaved, two rounds on synthetic:llama2-7b, one on llama3-8b.
  for rep in 1 2; do
    GEN=128 b "gen128 this" w4g32 1
    for v in w4 w6; do GEN=128 Q=./quantbench_$v b "gen128 $v  " w4g32 1; done
  done 2>&1 | tee "$OUT/ab_s21d.txt"
  MODEL=synthetic:llama3-8b GEN=128 b "llama3-8b this" w4g32 1 2>&1 | tee -a "$OUT/ab_s21d.txt"
  for v in w4 w6; do MODEL=synthetic:llama3-8b GEN=128 Q=./quantbench_$v b "llama3-8b $v  " w4g32 1; done 2>&1 | tee -a "$OUT/ab_s21d.txt"
  rm -f "$OUT/tmp.log"
fi
if has s21c; then
  # Session 21: the half step for w4g32 (symmetric and asymmetric; launch rule 8) against rule 7 (full steps).
  # Kernel level: each spec's sweep (QB_BENCH_SPEC), per shape at 1 and 16 tokens the rule's row, rule 5's
  # (= rule 7's for these), and the best half-step and full-step shapes with R = 1 and R = 2 apart. Then
  # steps at gen 128 on synthetic:llama2-7b at 1 and 16 streams against QB_CUDA_LAUNCH_RULE=7, interleaved,
  # two rounds.
  for spec in w4g32 w4g32a; do
    QB_BENCH_SPEC=$spec timeout 300 ./qb_gpu_bench "$OUT" > "$OUT/qgemv_bench_$spec.log" 2>&1
    echo "qgemv bench ($spec) rc $?"
    awk -F, -v sp="qgemv_$spec" '($1 == sp || $1 == sp "-r5") && ($5 == 1 || $5 == 16) {
        k = $2 " n=" $5; c = $6
        kind = c ~ /^auto/ ? "rule8" : c ~ /^rule5/ ? "rule7" : (c ~ /h$/ ? "half" : "full") substr(c, 2, 1)
        if (!((k, kind) in t) || $8 < t[k, kind]) { t[k, kind] = $8; cf[k, kind] = c; sh[k, kind] = $13 }
        keys[k] = 1 }
      END { for (k in keys) { line = sprintf("%-22s", k)
              n = split("rule8 rule7 half1 half2 full1 full2", kinds, " ")
              for (i = 1; i <= n; ++i) line = line sprintf("  %-5s %-12s %6.2f", kinds[i], cf[k, kinds[i]], t[k, kinds[i]])
              print line } }' "$OUT/qgemv_results.csv" | sort | tee "$OUT/sweep_$spec.txt"
  done
  GEN=128 vs_env "QB_CUDA_LAUNCH_RULE=7" "gen128 rule8" "gen128 rule7" 2 "w4g32 1,16" "w4g32-asym 1,16" 2>&1 | tee "$OUT/ab_s21c.txt"
  rm -f "$OUT/tmp.log"
fi
if has s21b; then
  # Session 21: asymmetric w4g128 at 1-8 tokens on wide and mid grids at R = 1 with 6 warps (this build) or
  # 4 (quantbench_w4) against rule 8 as first built (R = 2, quantbench_prev: 44d4614; run with f8f7ee8's build
  # as this one): one stream at gen 128,
  # interleaved, three rounds on synthetic:llama2-7b, one on llama3-8b and qwen2.5-7b.
  for rep in 1 2 3; do
    for v in prev w4; do GEN=128 Q=./quantbench_$v b "gen128 $v" w4g128-asym 1; done
    GEN=128 b "gen128 w6  " w4g128-asym 1
  done 2>&1 | tee "$OUT/ab_s21b.txt"
  for m in llama3-8b qwen2.5-7b; do
    for v in prev w4; do MODEL=synthetic:$m GEN=128 Q=./quantbench_$v b "$m $v" w4g128-asym 1; done
    MODEL=synthetic:$m GEN=128 b "$m w6  " w4g128-asym 1
  done 2>&1 | tee -a "$OUT/ab_s21b.txt"
  rm -f "$OUT/tmp.log"
fi
if has s20; then
  # Session 20 (H200): 16-token qgemv variants staged beside this build as quantbench_<v> / qb_gpu_bench_<v>
  # (VARIANTS, default "prev pp112"): both benches' w4g128 kernels (--quick), then 16-stream w4g128 steps
  # at gen 128, interleaved, three rounds.
  for v in ${VARIANTS:-prev pp112} this; do
    bin=./qb_gpu_bench_$v; [ $v = this ] && bin=./qb_gpu_bench
    [ -x $bin ] || continue
    mkdir -p "$OUT/gb_$v"; QB_BENCH_SPEC=w4g128 timeout 300 $bin "$OUT/gb_$v" --quick > "$OUT/gb_${v}_quick.log" 2>&1
    echo "== qb_gpu_bench $v rc $?"
    sed -n '/^Per-shape decode/,/^$/p' "$OUT/gb_${v}_quick.log" | awk '$1 == "shape" || $3 == 16' | cut -c1-120
  done
  for rep in 1 2 3; do
    for v in ${VARIANTS:-prev pp112}; do
      [ -x ./quantbench_$v ] && GEN=128 Q=./quantbench_$v b "gen128 $v" w4g128 16
    done
    GEN=128 b "gen128 this" w4g128 16
  done 2>&1 | tee "$OUT/ab_s20.txt"
  rm -f "$OUT/tmp.log"
fi
if has s20b; then
  # Session 20: launch rule 7 (the 16-token half step at R = 2 everywhere; 16 warps on small grids, else 4)
  # against rule 6's shapes with the same kernels (QB_CUDA_LAUNCH_RULE=6): w4g128 16 at gen 128, three rounds.
  GEN=128 vs_env "QB_CUDA_LAUNCH_RULE=6" "gen128 rule7" "gen128 rule6" 3 "w4g128 16" 2>&1 | tee "$OUT/ab_s20b.txt"
  rm -f "$OUT/tmp.log"
fi
if has s20c; then
  # Session 20: rule 7's one-token shapes (4 warps on the wide grids: gate|up, lm_head) against rule 6's
  # (QB_CUDA_LAUNCH_RULE=6; at one token the kernels are the same): w4g128 1 at gen 128, three rounds; then
  # the L2 prefetch at 16-token steps too (QB_CUDA_L2_PREFETCH_MAX_T=16) against the default (one-token
  # steps only), w4g128 16 at gen 128, two rounds.
  GEN=128 vs_env "QB_CUDA_LAUNCH_RULE=6" "gen128 rule7" "gen128 rule6" 3 "w4g128 1" 2>&1 | tee "$OUT/ab_s20c.txt"
  GEN=128 vs_env "QB_CUDA_L2_PREFETCH_MAX_T=16" "gen128 default" "gen128 pf16   " 2 "w4g128 16" 2>&1 | tee -a "$OUT/ab_s20c.txt"
  rm -f "$OUT/tmp.log"
fi
if has s20d; then
  # Session 20: this build's default (launch rule 7: the 16-token ping-pong kernel, its shapes, 4 warps on
  # the wide one-token grids) against QB_CUDA_LAUNCH_RULE=6 (session 19's kernels and shapes, copy_loop16):
  # w4g128 1 and 16 at gen 128, three rounds.
  GEN=128 vs_env "QB_CUDA_LAUNCH_RULE=6" "gen128 rule7" "gen128 rule6" 3 "w4g128 16" "w4g128 1" 2>&1 | tee "$OUT/ab_s20d.txt"
  rm -f "$OUT/tmp.log"
fi
if has s20e; then
  # Session 20: where a 16-stream w4g128 step goes now (QB_CUDA_TIMING_SKIP: kernel classes left out of
  # the graph, outputs wrong), gen 128, two rounds.
  for rep in 1 2; do
    for sk in "" norm attn act "norm,attn,act" prod; do
      GEN=128 b "gen128 skip=${sk:-none}" w4g128 16 ${sk:+QB_CUDA_TIMING_SKIP=$sk}
    done
  done 2>&1 | tee "$OUT/ab_s20e.txt"
  rm -f "$OUT/tmp.log"
fi
if has s20f; then
  # Session 20: the wide 16-token grids (gate|up, lm_head) at 2 warps per block (this build) against 4
  # (quantbench_prev, 64e9985), w4g128 16 at gen 128, three rounds; then the small kernels launched early
  # at 16-token steps too (QB_CUDA_PDL_SMALL_T=16) against the default, two rounds.
  GEN=128 vs_staged ./quantbench_prev "gen128 w4 " "gen128 w2 " 3 "w4g128 16" 2>&1 | tee "$OUT/ab_s20f.txt"
  GEN=128 vs_env "QB_CUDA_PDL_SMALL_T=16" "gen128 default " "gen128 early16 " 2 "w4g128 16" 2>&1 | tee -a "$OUT/ab_s20f.txt"
  rm -f "$OUT/tmp.log"
fi
if has s20g; then
  # Session 20: launch rule 7 against rule 6 on the other synthetic models (their shapes were not in the
  # sweeps: Llama-3-8B's n_ff 14336 and 128256-token vocabulary, Qwen2.5-7B's 3584 x 18944), w4g128 1,16 at
  # gen 128, two rounds.
  for m in synthetic:llama3-8b synthetic:qwen2.5-7b; do
    MODEL=$m GEN=128 vs_env "QB_CUDA_LAUNCH_RULE=6" "${m#synthetic:} rule7" "${m#synthetic:} rule6" 2 "w4g128 1,16"
  done 2>&1 | tee "$OUT/ab_s20g.txt"
  rm -f "$OUT/tmp.log"
fi
if has s20h; then
  # Session 20: rule 7's one-token 4-warp shape only where the grid fits in one wave, against rule 6, on
  # the three synthetic models: w4g128 1 at gen 128, two rounds.
  for m in synthetic:llama2-7b synthetic:llama3-8b synthetic:qwen2.5-7b; do
    MODEL=$m GEN=128 vs_env "QB_CUDA_LAUNCH_RULE=6" "${m#synthetic:} rule7" "${m#synthetic:} rule6" 2 "w4g128 1"
  done 2>&1 | tee "$OUT/ab_s20h.txt"
  rm -f "$OUT/tmp.log"
fi
if has s20n; then
  # Session 20: Nsight Compute (details page and warp-stall samples per SASS instruction) on the 16-token
  # gated gate|up product of this build and, if staged, of quantbench_prev (first decode steps).
  NCU=/usr/local/cuda/bin/ncu
  for v in this prev; do
    q=./quantbench; [ $v = prev ] && q=./quantbench_prev
    [ -x $q ] || continue
    timeout 200 $NCU --clock-control none --kernel-name-base demangled --section SourceCounters --section WarpStateStats \
      --section SpeedOfLight --section Occupancy --section LaunchStats --section SchedulerStats \
      -k "regex:qgemv_kernel_capped<.*\(bool\)1, \(bool\)1(, \(bool\)0)?>" -s 2 -c 1 -f -o "$OUT/rep_gu16_$v" \
      $q bench synthetic:llama2-7b --backend cuda --scheme w4g128 --prompt-len 128 --gen-len 6 --reps 1 --warmup 0 \
      --no-progress --batch 16 > "$OUT/ncu_gu16_$v.log" 2>&1
    echo "== ncu gu16 $v rc $?"
    $NCU -i "$OUT/rep_gu16_$v.ncu-rep" --page details > "$OUT/ncu_gu16_$v.txt" 2>&1
    grep -E "Duration|DRAM Throughput|Achieved Occupancy|Theoretical Occ|Registers Per|Grid Size|Block Size|Issue Slots Busy|No Eligible|Active Warps Per|Eligible Warps|Warp Cycles Per Issued" "$OUT/ncu_gu16_$v.txt" | cut -c1-120
    $NCU -i "$OUT/rep_gu16_$v.ncu-rep" --page source --csv --print-source sass > "$OUT/src_gu16_$v.csv" 2> /dev/null
    python3 ncu_stalls.py "$OUT/src_gu16_$v.csv" 12 > "$OUT/stalls_gu16_$v.txt" && head -30 "$OUT/stalls_gu16_$v.txt"
  done
  rm -f "$OUT/tmp.log"
fi
if has s19; then
  # Session 19 (H200): the half-warp-per-key decode attention (QB_CUDA_ATTN_HW=1) against the default
  # kernel of this build and against quantbench_prev (the build before, whose default kernel's code
  # generation the shared block end changed): the backend check with the switch, the KV-read probe (the
  # attention alone in a graph), then w4g128 1,16 and bf16 16 at gen 128, two rounds.
  check_with backend_check_hw.log QB_CUDA_ATTN_HW=1
  ./qb_kv_read_probe > "$OUT/kv_read_probe.txt" 2>&1; sed -n '/decode attention alone/,/^$/p' "$OUT/kv_read_probe.txt"
  for rep in 1 2; do
    for item in "w4g128 1,16" "bf16 16"; do
      read -r sc bt <<< "$item"
      [ -x ./quantbench_prev ] && GEN=128 Q=./quantbench_prev b "gen128 prev   " $sc $bt
      GEN=128 b "gen128 this   " $sc $bt
      GEN=128 b "gen128 this hw" $sc $bt QB_CUDA_ATTN_HW=1
    done
  done 2>&1 | tee "$OUT/ab_s19.txt"
  rm -f "$OUT/tmp.log"
fi
if has s19b; then
  # Session 19 (H200): what each kernel class costs inside the decode graph, w4g128 1,16 at gen 128, with
  # it left out (QB_CUDA_TIMING_SKIP; outputs wrong), once; the activation is fused into gate|up at w4g128.
  for sk in none norm attn prod norm,attn,act; do GEN=128 b "gen128 skip $sk" w4g128 1,16 QB_CUDA_TIMING_SKIP=$sk; done \
    2>&1 | tee "$OUT/ab_s19b.txt"
  rm -f "$OUT/tmp.log"
fi
if has s19c; then
  # Session 19 (H200): the half-warp attention with 8 key pairs per warp step (QB_CUDA_ATTN_HW_PAIRS=8: 16
  # keys, 256 bytes per lane in flight, 128 registers) against 4 (the default); and at one stream fewer key
  # splits with the half-warp kernel (QB_CUDA_ATTN_BLOCKS_PER_SM 2 and 1: 9 and 5 splits against 16).
  # The KV-read probe first (the attention alone in a graph), then two rounds at gen 128.
  ./qb_kv_read_probe > "$OUT/kv_read_probe.txt" 2>&1; sed -n '/decode attention alone/,/^$/p' "$OUT/kv_read_probe.txt"
  for rep in 1 2; do
    GEN=128 b "gen128 pairs4 " w4g128 1,16
    GEN=128 b "gen128 pairs8 " w4g128 1,16 QB_CUDA_ATTN_HW_PAIRS=8
    GEN=128 b "gen128 bps2   " w4g128 1 QB_CUDA_ATTN_BLOCKS_PER_SM=2
    GEN=128 b "gen128 bps1   " w4g128 1 QB_CUDA_ATTN_BLOCKS_PER_SM=1
    GEN=128 b "gen128 pairs4 " bf16 16
    GEN=128 b "gen128 pairs8 " bf16 16 QB_CUDA_ATTN_HW_PAIRS=8
  done 2>&1 | tee "$OUT/ab_s19c.txt"
  rm -f "$OUT/tmp.log"
fi
if has s19d; then
  # Session 19 (H200): the one-stream split merge through a thread-block cluster (QB_CUDA_ATTN_CLUSTER=1:
  # each (head, token)'s 16 splits one cluster, partials in distributed shared memory, no fence or counter)
  # against the default (partials in L2, the last block merges): the backend check with the switch, then
  # w4g128 1,16 at gen 128 and 64 and w8 1 (16 streams: one split, no merge: a control), three rounds.
  check_with backend_check_cluster.log QB_CUDA_ATTN_CLUSTER=1
  vs_env QB_CUDA_ATTN_CLUSTER=1 default cluster 3 "w4g128 1,16 128" "w4g128 1 64" "w8 1 128" 2>&1 | tee "$OUT/ab_s19d.txt"
  rm -f "$OUT/tmp.log"
fi
if has s19e; then
  # Session 19 (H200): with the half-warp attention, the attention launched early at 16-token steps too
  # (QB_CUDA_PDL_SMALL_T=16 QB_CUDA_PDL_SMALL=2: only the attention early, its first keys loaded before
  # the wait) against the default (small kernels early at one-token steps only): the backend check with
  # the switch, then w4g128 and bf16 at 16 streams, gen 128, three rounds.
  check_with backend_check_attn16.log QB_CUDA_PDL_SMALL_T=16 QB_CUDA_PDL_SMALL=2
  vs_env "QB_CUDA_PDL_SMALL_T=16 QB_CUDA_PDL_SMALL=2" "default     " "attn early16" 3 "w4g128 16 128" "bf16 16 128" \
    2>&1 | tee "$OUT/ab_s19e.txt"
  rm -f "$OUT/tmp.log"
fi
for blk in s18 s18d; do
  has $blk || continue
  vs_staged ./quantbench_prev "prev  " "this  " 3 "w4g128 1" "w4g128 1 128" "w8 1" "w4g128 16" 2>&1 | tee "$OUT/ab_$blk.txt"
  rm -f "$OUT/tmp.log"
done
if has s18b; then
  # Session 18: the KV-read probe with graph timings beside the single launches, then what attention
  # costs inside the decode graph at the table's length (gen 128: mean context 192, the probe's):
  # w4g128 at 16 and 1 streams with and without it (QB_CUDA_TIMING_SKIP; outputs wrong), twice.
  ./qb_kv_read_probe 2>&1 | tee "$OUT/kv_read_probe.txt"
  for rep in 1 2; do
    for sk in none attn; do GEN=128 b "gen128 skip $sk" w4g128 16,1 QB_CUDA_TIMING_SKIP=$sk; done
  done 2>&1 | tee "$OUT/ab_s18b.txt"
  rm -f "$OUT/tmp.log"
fi
if has s18c; then
  # Session 18: the f16 decode attention in blocks of 8 warps, 4 keys per warp step, 64 registers
  # (QB_CUDA_ATTN_WARPS=8) against the default 4 warps of 8 keys at 96 registers: the backend check with
  # 8 warps, then w4g128 at 16 streams (gen 128 and 64) and one stream, three rounds; bf16 at 16 once.
  # Ran at commit 6a5b588; the switch was reverted with its kernels (docs/perf.md, session 18).
  check_with backend_check_warps8.log QB_CUDA_ATTN_WARPS=8
  vs_env QB_CUDA_ATTN_WARPS=8 warps4 warps8 3 "w4g128 16 128" "w4g128 16 64" "w4g128 1 64" 2>&1 | tee "$OUT/ab_s18c.txt"
  vs_env QB_CUDA_ATTN_WARPS=8 warps4 warps8 1 "bf16 16 128" 2>&1 | tee -a "$OUT/ab_s18c.txt"
  rm -f "$OUT/tmp.log"
fi
if has s18e; then
  # Session 18: the split attention's two fences acquire-release instead of sequentially consistent
  # (this build) against quantbench_prev (51914d6, the merge of s18d); two rounds, one stream. Ran at
  # commit 4098e3a: neutral, reverted.
  vs_staged ./quantbench_prev "prev  " "this  " 2 "w4g128 1 128" "w4g128 1" "w8 1" 2>&1 | tee "$OUT/ab_s18e.txt"
  rm -f "$OUT/tmp.log"
fi
if has s16f; then
  # Session 16: one-stream decode with QB_CUDA_ATTN_BLOCKS_PER_SM 8 (the default: 16 key splits at one
  # stream on 132 SMs), 3 (13 splits) and 2 (9 splits) on the final build, w4g128 and w8, three times.
  for rep in 1 2 3; do
    for sc in w4g128 w8; do
      for bps in 8 3 2; do b "bps$bps  " $sc 1 QB_CUDA_ATTN_BLOCKS_PER_SM=$bps; done
    done
  done 2>&1 | tee "$OUT/ab_s16f.txt"
  rm -f "$OUT/tmp.log"
fi
if has s15c; then
  vs_staged ./quantbench_base "base  " "this  " 3 "w4g128 1" "w4g128 16" "w8 1" "bf16 1" 2>&1 | tee "$OUT/ab_s15c.txt"
  rm -f "$OUT/tmp.log"
fi
if has deep; then
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
fi
if has pipes; then  # Nsight Compute: pipe utilization of the decode products (which unit bounds the 16-token int4 kernel?)
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
fi
if has check; then  # (75-85 s on a warm machine; one fresh machine took over 240 s in session 27)
  t0=$(date +%s); timeout 420 ./qb_cuda_backend_check models/*.gguf > "$OUT/backend_check.log" 2>&1; r=$?
  echo "backend_check rc $r ($(( $(date +%s) - t0 )) s)"; grep -cE "^PASS " "$OUT/backend_check.log"; grep -E "^(FAIL|FAILED|PASSED)" "$OUT/backend_check.log" | cut -c1-200 | head
fi
