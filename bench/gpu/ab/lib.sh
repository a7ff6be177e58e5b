# The helpers ab.sh's blocks share (sourced by ab.sh, after OUT is set): b, one decode bench; p, one 512-token
# prefill; vs_staged and vs_env, interleaved A/Bs against a staged binary or environment switches; check_with, the
# backend check under switches; qb_gpu_bench's sweep read per kind of launch shape.

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
