#!/usr/bin/env bash
# KL divergence against the baseline for weight schemes at 8, 4, 3 and 2 bits, group sizes and methods,
# on stories260K (a true fp32 model) and SmolLM2-135M-Instruct (the Q4_1 file PyPI publishes), for the
# table in docs/quantization.md. Every KL is exact (the baseline runs live beside the candidate: no
# top-K cache), with the 95% cluster-bootstrap interval over windows that `eval` reports.
# Usage: scripts/checks/kl_vs_bits.sh [stories|smollm2|all] [OUTDIR]
#   env SMOL_WINDOWS (8), SMOL_SCHEMES (a space-separated subset of short forms or TOML scheme files, e.g.
#   scripts/checks/schemes/w3g128_gptq_mse.toml; SCHEME@seq / SCHEME@onepass force quantize's --calib-order), SMOL_CALIB (c4 text; needs ../shared/data or CALIB_FILE), THREADS (2), QB_BIN (the quantbench binary)
# Prints one Markdown row per candidate; the JSONs stay in OUTDIR.
set -euo pipefail
cd "$(dirname "$0")/../.."
Q=${QB_BIN:-./build/quantbench}  # QB_BIN: a copy, so a rebuild cannot change the binary mid-run
WHICH=${1:-all}
OUT=${2:-/tmp/qb_kl_vs_bits}
T=${THREADS:-2}
mkdir -p "$OUT"

row() {  # json label quantize_seconds bits
  python3 - "$1" "$2" "$3" "$4" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
r = j["regimes"]["perplexity"][0]
m = {x["name"]: x for x in r["metrics"]}
kl = m["kld_mean"]
i = kl.get("interval", {})
print(f"| {sys.argv[2]} | {float(sys.argv[4]):.3f} | {kl['value']:.4f} | [{i.get('lo', float('nan')):.4f}, {i.get('hi', float('nan')):.4f}] "
      f"| {m['kld_p99']['value']:.3f} | {m['candidate_ppl']['value']:.3f} | {m['same_top1']['value']:.4f} | {sys.argv[3]} |",
      flush=True)
PY
}

run() {  # model text ctx limit calib samples len tag scheme
  local model=$1 text=$2 ctx=$3 limit=$4 calib=$5 ns=$6 nl=$7 tag=$8 label=$9
  local scheme=${label%@*}  # SCHEME@seq / SCHEME@onepass: the scheme with that calibration order
  local f="$OUT/${tag}_$(basename "$label" | tr ':@' '__').gguf"
  local spec=$scheme  # a TOML scheme file: its base short form says whether it calibrates
  [[ $scheme != *.toml ]] || spec=$(sed -n 's/^scheme *= *"\(.*\)".*/\1/p' "$scheme")
  local t0; t0=$(date +%s.%N)
  local cal=()
  [[ $spec == *:rtn_clip || $spec != *:* ]] || cal=(--calib "$calib" --calib-samples "$ns" --calib-len "$nl" --seed 1 --eval-text "$text")
  [[ $label != *@seq ]] || cal+=(--calib-order sequential)
  [[ $label != *@onepass ]] || cal+=(--calib-order one-pass)
  local bits  # effective bits per weight of the quantized matrices, embeddings excluded
  bits=$($Q quantize "$model" --scheme "$scheme" "${cal[@]}" -o "$f" -q -t "$T" 2>&1 | sed -n 's/.*, \([0-9.]*\) without embeddings.*/\1/p')
  local qs; qs=$(python3 -c "import time; print(f'{time.time() - $t0:.0f} s')")
  $Q eval --baseline "$model" --candidate "$f" --regimes perplexity --text "$text" --ctx "$ctx" --limit "$limit" \
    --quiet -t "$T" --json "$f.json" 2>/dev/null
  row "$f.json" "$label" "$qs" "$bits"
}

header() { echo "| scheme | bits/weight | mean KL | 95% interval | KL p99 | PPL | same top-1 | quantize time |"; echo "|---|---|---|---|---|---|---|---|"; }

if [[ $WHICH == stories || $WHICH == all ]]; then
  M=data/models/stories260K/stories260K.gguf
  TEXT=data/eval/tinystories/tiny_eval_slice.txt
  CAL=data/calib/tiny_stories_16k.txt
  echo "## stories260K (eval: $TEXT, n_ctx 128, all windows; calibration: $CAL, 32 x 64 tokens)"
  header
  for s in w8 w4g32 w4g64 w4g32-asym w3g32 w3g64 w3g32-asym w2g32 w2g32-asym \
           w4g64:rtn_clip w4g64:imatrix w4g64:gptq w4g64:awq w3g32:rtn_clip w3g32:imatrix w3g32:gptq w3g32:awq; do
    run $M $TEXT 128 0 $CAL 32 64 stories "$s"
  done
fi

if [[ $WHICH == smollm2 || $WHICH == all ]]; then
  M=.models/smollm2-135m-instruct-q4_1/SmolLM2-135M-Instruct.Q4_1.gguf
  TEXT=${SMOL_TEXT:-../shared/data/wikitext2/wiki.test.raw.reconstructed}
  CAL=${CALIB_FILE:-../shared/data/exllamav2_cal/c4.utf8}
  W=${SMOL_WINDOWS:-8}
  echo "## SmolLM2-135M-Instruct Q4_1 (eval: $TEXT, llama.cpp convention, n_ctx 512, first $W windows; calibration: $CAL, 32 x 512 tokens)"
  header
  SCHEMES=${SMOL_SCHEMES:-w8 w4g32 w4g32-asym w4g128 w4g128-asym w3g32 w3g128 w3g128-asym w2g32-asym \
    w4g128:rtn_clip w4g128:imatrix w4g128:gptq w4g128:awq w3g128:rtn_clip w3g128:imatrix w3g128:gptq w3g128:awq}
  for s in $SCHEMES; do
    run $M "$TEXT" 512 "$W" "$CAL" 32 512 smol "$s"
  done
fi
