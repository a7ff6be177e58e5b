#!/usr/bin/env bash
# KL divergence on stories260K from quantized KV caches (--kv) and W8A8 schemes, for the tables in
# docs/quantization.md. Usage: scripts/checks/kv_w8a8_kl.sh [OUTDIR]   (needs build/quantbench)
set -euo pipefail
Q=./build/quantbench
M=data/models/stories260K/stories260K.gguf
TEXT=data/eval/tinystories/tiny_eval_slice.txt
OUT=${1:-/tmp/qb_kv_w8a8}
mkdir -p "$OUT"
summary() {  # file label
  python3 - "$1" "$2" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
r = j["regimes"]["perplexity"][0]
m = {x["name"]: x for x in r["metrics"]}
kl = m["kld_mean"]
i = kl.get("interval", {})
print(f"| {sys.argv[2]} | {kl['value']:.3e} | [{i.get('lo', float('nan')):.2e}, {i.get('hi', float('nan')):.2e}] "
      f"| {m['candidate_ppl']['value']:.4f} | {m['same_top1']['value']:.4f} |")
PY
}
for base in f32 f16; do
  for kv in f16 int8 fp8 int4; do
    [ "$base" = "$kv" ] && continue
    $Q eval --baseline $M --candidate $M --baseline-kv $base --kv $kv --regimes perplexity --text $TEXT --quiet \
      -t 1 --json "$OUT/kv_${base}_${kv}.json" 2>/dev/null
    summary "$OUT/kv_${base}_${kv}.json" "kv $kv vs $base"
  done
done
for s in w8 w8a8 w8a8-fp8 w8a8:smoothquant; do
  f="$OUT/$(echo $s | tr ':' '_').gguf"
  $Q quantize $M --scheme $s --calib data/calib/tiny_stories_16k.txt --calib-samples 16 --calib-len 128 -o "$f" >/dev/null 2>&1
  $Q eval --baseline $M --candidate "$f" --regimes perplexity --text $TEXT --quiet -t 1 --json "$f.json" 2>/dev/null
  summary "$f.json" "$s"
done
