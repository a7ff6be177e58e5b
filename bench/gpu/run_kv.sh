#!/usr/bin/env bash
# GPU machine, from a folder bench/gpu/stage.sh filled (plus this script copied beside run.sh): the
# quantized KV cache checks and benchmark (issue #6: --kv int8 / fp8 / int4 on --backend cuda).
#  1. qb_cuda_backend_check on stories260K and the random GGUFs: the GPU quantizer's codes against the
#     CPU's (bit-exact), then every model with f16 and quantized caches against the CPU reference with
#     the same cache type (mean KL limits in the check's header).
#  2. synthetic:llama2-7b decode at 16 streams (the KV read is a third of a step's bytes there), w4g128
#     and bf16, with --kv f16 / int8 / fp8 in turn, 128-token prompt + 128 generated; then a longer
#     context (1024-token prompt, 64 generated) where the cache dominates. Each row is its own process
#     with its own same-run copy probe.
#  3. W8A8 (--scheme w8a8, w8a8-fp8) against w8 (W8A16) decode at 1 and 16 streams, and their 512-token
#     prefill against bf16 (W8A8 runs by default; QB_CUDA_W8A8=0 turns it off). Prints tables last; logs and JSON under $OUT. The W8A8 models for the
#     check (models/*-w8a8*.gguf) are made here by make_models.sh, with the other quantized test models.
# Usage: bash run_kv.sh [--no-tests] [--no-bench]
set -uo pipefail
cd "$(dirname "$0")"
OUT=${OUT:-$PWD/out}; mkdir -p "$OUT"
source ./staged_env.sh  # unpacks the staged folder, sets the library path
TESTS=1; BENCH=1
for a in "$@"; do case $a in --no-tests) TESTS=0 ;; --no-bench) BENCH=0 ;; esac; done
{ date -u; nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader; cat GIT_COMMIT; } | tee "$OUT/env.txt"
rc=0
if [ $TESTS = 1 ]; then
  bash make_models.sh || { echo "make_models.sh failed"; exit 1; }  # the quantized test models, made here
  t0=$(date +%s)
  timeout ${CHECK_TIMEOUT:-240} ./qb_cuda_backend_check models/stories260K.gguf models/rand-llama.gguf models/rand-qwen2.gguf \
    models/rand-llama-w4g128.gguf models/stories260K-w8.gguf models/rand-llama-w8a8.gguf models/stories260K-w8a8.gguf \
    models/rand-llama-w8a8-fp8.gguf models/stories260K-w8a8-fp8.gguf \
    > "$OUT/backend_check.log" 2>&1; r=$?
  echo "backend_check rc $r ($(( $(date +%s) - t0 )) s)"; grep -E "^(FAIL|PASSED|FAILED)|kv .* codes|w8a8|own effect" "$OUT/backend_check.log" | grep -v "^describe" | cut -c1-260
  [ $r = 0 ] || rc=1
fi
[ $BENCH = 1 ] || exit $rc
B=$OUT/b; mkdir -p "$B"
b() {  # name scheme kv batches prompt gen
  local t0=$(date +%s)
  timeout 75 env ${E:-QB_NOOP=1} ./quantbench bench synthetic:llama2-7b --backend cuda --scheme "$2" --kv "$3" --batch "$4" \
    --prompt-len "$5" --gen-len "$6" --reps 2 --warmup 1 --no-progress --json "$B/bench_$1.json" > "$B/bench_$1.log" 2>&1
  echo "bench $1 rc $? ($(( $(date +%s) - t0 )) s)"
}
for kv in f16 int8 fp8; do b w4g128_$kv w4g128 $kv 16 128 128; done
for kv in f16 int8; do b bf16_$kv bf16 $kv 16 128 128; done
for kv in f16 int8 fp8; do b long_w4g128_$kv w4g128 $kv 16 1024 64; done
# INT8 W8A8 against W8A16 (w8) and bf16, same lengths; prefill of 512 tokens against bf16.
b w8a8 w8a8 f16 1,16 128 128
b w8a8fp8 w8a8-fp8 f16 1,16 128 128
b w8 w8 f16 1,16 128 128
b pp512_w8a8 w8a8 f16 1 512 4
b pp512_w8a8fp8 w8a8-fp8 f16 1 512 4
b pp512_bf16 bf16 f16 1 512 4
for f in "$B"/bench_*.log; do echo "== $f"; cat "$f"; done > "$OUT/bench_all.log"
python3 - "$B" "$OUT" <<'PY' | tee "$OUT/summary.txt"
import json, sys, os, glob
b, out = sys.argv[1], sys.argv[2]
js = {os.path.basename(p)[6:-5]: json.load(open(p)) for p in glob.glob(os.path.join(b, "bench_*.json"))}
json.dump(js, open(os.path.join(out, "bench_all.json"), "w"), indent=1)
def metric(j, name):
    for m in j.get("metrics", []):
        if m["name"] == name: return m["value"]
print("\nsynthetic:llama2-7b, 16 streams; bytes/step = weights + KV codes and scales read (mean context)")
print(f"{'run':22} {'kv':5} {'prompt':>6} {'decode tok/s':>12} {'vs f16':>7} {'KV GB/step':>10} {'GB/step':>8} {'KV B/pos':>9} {'roofline':>8}")
base = {}
for name in ["w4g128_f16", "w4g128_int8", "w4g128_fp8", "bf16_f16", "bf16_int8", "long_w4g128_f16",
             "long_w4g128_int8", "long_w4g128_fp8"]:
    j = js.get(name)
    if not j: print(f"{name:22} (missing)"); continue
    it = j["items"][0]
    kv = name.rsplit("_", 1)[1]
    grp = name.rsplit("_", 1)[0]
    if name.endswith("_f16"): base[grp] = it["decode_tok_s"]
    rel = it["decode_tok_s"] / base[grp] if grp in base else float("nan")
    prompt = 1024 if name.startswith("long") else 128
    print(f"{name:22} {kv:5} {prompt:>6} {it['decode_tok_s']:>12.1f} {rel:>6.2f}x {it['bytes_per_step']['kv_cache_mean']/1e9:>10.3f} "
          f"{it['bytes_per_step']['total']/1e9:>8.3f} {metric(j, 'kv_bytes_per_position') or 0:>9.0f} {100*it['roofline_share']:>7.1f}%")
print("\nW8A8 (int8; fp8 = w8a8fp8) vs W8A16 (w8), f16 KV, 128-token prompt + 128 generated; prefill 512 tokens vs bf16")
for name in ["w8a8", "w8a8fp8", "w8"]:
    j = js.get(name)
    if not j: print(f"{name:8} (missing)"); continue
    for it in j["items"]:
        print(f"{name:8} streams {it['batch']:>3}: decode {it['decode_tok_s']:>8.1f} tok/s, {it['bytes_per_step']['total']/1e9:.3f} GB/step, "
              f"roofline {100*it['roofline_share']:.1f}%")
for name in ["pp512_w8a8", "pp512_w8a8fp8", "pp512_bf16"]:
    j = js.get(name)
    if not j: print(f"{name:10} (missing)"); continue
    print(f"{name:10}: prefill {j['items'][0]['prefill_tok_s']:.0f} tok/s, {metric(j, 'prefill_tflops'):.0f} TFLOP/s "
          f"(same-run cuBLAS bf16 GEMM {metric(j, 'gemm_bf16_tflops'):.0f} TFLOP/s)")
PY
rm -rf "$B"
exit $rc
