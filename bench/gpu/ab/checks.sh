# ab.sh's blocks: correctness on the GPU machine: the kernel checks (qb_cuda_tests), the backend check against the CPU
# (qb_cuda_backend_check on every staged model), `eval` and the CLI with --backend cuda against the CPU.
# Sourced by ab.sh, which runs the blocks named on its command line; the helpers are in lib.sh.

block_tests() {
  t0=$(date +%s); timeout 300 ./qb_cuda_tests > "$OUT/qgemv_check.log" 2>&1; r=$?
  echo "qgemv_check rc $r ($(( $(date +%s) - t0 )) s)"; grep -E "^(FAIL|PASSED|FAILED|seed|time)" "$OUT/qgemv_check.log" | head -20
}

# evalcuda: `quantbench eval --backend cuda` against `--backend cpu --reference` on the same inputs (stories260K against its
#   w8, rand-llama against its q4_k_m mix; perplexity, hellaswag, story generation), compared by eval_backends.py.
block_evalcuda() {
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
  # eval_run NAME [NAME=VALUE...] -- ARGS...: this pair's eval with ARGS (and those switches set), as
  # eval_${cand}_NAME.json and .log
  eval_run() {
    local name=$1 envs=()
    shift
    while [ "$1" != -- ]; do envs+=("$1"); shift; done
    shift
    env "${envs[@]}" timeout 300 ./quantbench eval --baseline models/$base.gguf --candidate models/$cand.gguf $E "$@" \
      --json "$OUT/eval_${cand}_$name.json" > "$OUT/eval_${cand}_$name.log" 2>&1
  }
  for pair in "${pairs[@]}"; do
    read -r base cand <<< "$pair"
    # the CPU on its exact reference path (its fast kernels quantize a quantized matrix's input to 8-bit
    # blocks, as llama.cpp's do, which the GPU's products do not: the manifests say which ran)
    # EVAL_GPU_REF=1: the GPU in its most exact mode too (eval --reference: f32 weights and products);
    # EVAL_CPU_KV=f16: the CPU with the GPU's f16 cache (both models) instead of its f32 one
    gpu_ref=$([ -n "${EVAL_GPU_REF:-}" ] && echo --reference)
    cpu_kv=$([ -n "${EVAL_CPU_KV:-}" ] && echo --kv $EVAL_CPU_KV --baseline-kv $EVAL_CPU_KV)
    eval_run cpu -- --backend cpu --reference $cpu_kv
    echo "eval $cand --backend cpu rc $?"
    eval_run cuda -- --backend cuda $gpu_ref
    echo "eval $cand --backend cuda rc $?"
    # EVAL_FLOOR_KV=f16: the CPU run again with that cache (both models), whose distance from the first sets
    # the perplexity tolerance where it exceeds 1e-3 (eval_backends.py --floor)
    floor=()
    if [ -n "${EVAL_FLOOR_KV:-}" ]; then
      eval_run floor -- --backend cpu --reference --kv $EVAL_FLOOR_KV --baseline-kv $EVAL_FLOOR_KV
      echo "eval $cand --backend cpu --kv $EVAL_FLOOR_KV (floor) rc $?"
      floor=(--floor "$OUT/eval_${cand}_floor.json")
    fi
    # EVAL_FLOOR_GPU_ENV="QB_CUDA_PREFILL_CHUNK=7": the CUDA run again with that switch, a change that should not matter
    # (the same products and attention, summed in another order); its distance from the CUDA run is a second floor
    # (eval_backends.py --floor-pair)
    if [ -n "${EVAL_FLOOR_GPU_ENV:-}" ]; then
      # shellcheck disable=SC2086  # the switches split into words on purpose
      eval_run cuda_floor $EVAL_FLOOR_GPU_ENV -- --backend cuda $gpu_ref
      echo "eval $cand --backend cuda with $EVAL_FLOOR_GPU_ENV (floor) rc $?"
      floor+=(--floor-pair "$OUT/eval_${cand}_cuda.json" "$OUT/eval_${cand}_cuda_floor.json")
    fi
    python3 eval_backends.py "$OUT/eval_${cand}_cpu.json" "$OUT/eval_${cand}_cuda.json" "${floor[@]}" \
      | tee "$OUT/eval_${cand}_compare.txt"
  done
}

# clicuda: `quantbench bench` on a GGUF file and `quantbench generate` with --backend cuda (beside the CPU's).
block_clicuda() {
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
}

block_check() {  # (75-85 s on a warm machine; one fresh machine took over 240 s in session 27)
  t0=$(date +%s); timeout 420 ./qb_cuda_backend_check models/*.gguf > "$OUT/backend_check.log" 2>&1; r=$?
  echo "backend_check rc $r ($(( $(date +%s) - t0 )) s)"; grep -cE "^PASS " "$OUT/backend_check.log"; grep -E "^(FAIL|FAILED|PASSED)" "$OUT/backend_check.log" | cut -c1-200 | head
}
