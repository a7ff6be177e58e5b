#!/usr/bin/env bash
# GPTQ wall time on this machine beside its FLOP floor (docs/perf.md). Measures, in one run:
#   1. the machine's fp32 rate: numpy's float32 matrix product (OpenBLAS), 2048^3, best of 5, with
#      the thread count given;
#   2. `quantbench quantize MODEL --scheme SCHEME --calib FILE --calib-samples N --calib-len L`;
#   3. the rate again (the machine may be shared: both are printed).
# The floor counts only the arithmetic GPTQ cannot avoid, at that rate:
#   forward: 2 x (parameters of the block matrices) x tokens (no lm_head: calibration needs no logits)
#   Hessians: tokens x n(n+1) per distinct layer input (X^T X is symmetric): attn in, attn out, ffn in
#             (d), ffn_down in (ff)
#   GPTQ proper, per matrix rows x n: 2 rows n^2 (error propagation) + n^3 (Cholesky x2, inverse,
#             H^-1 product, each ~n^3/3 or n^3/6).
# The floor counts one forward pass; sequential calibration (gptq's default, --calib-order) runs each
# block twice (statistics with the block unquantized, then the samples through the quantized block),
# as GPTQ's reference does, and is measured against the same floor.
# Usage: scripts/checks/gptq_time.sh MODEL.gguf CALIB [SCHEME] [N] [L] [THREADS]
#   env ORDER (auto | sequential | one-pass: quantize's --calib-order; default auto), QB_BIN (the quantbench binary; default ./build/quantbench)
set -euo pipefail
cd "$(dirname "$0")/../.."
M=$1; CAL=$2; S=${3:-w4g128:gptq}; N=${4:-128}; L=${5:-512}; T=${6:-2}
rate() {
  OMP_NUM_THREADS=$T OPENBLAS_NUM_THREADS=$T python3 - <<'PY'
import time, numpy as np
a = np.random.rand(2048, 2048).astype(np.float32); b = np.random.rand(2048, 2048).astype(np.float32)
best = min((lambda t0: (a @ b, time.perf_counter() - t0)[1])(time.perf_counter()) for _ in range(5))
print(f"{2 * 2048**3 / best / 1e9:.1f}")
PY
}
R1=$(rate)
echo "fp32 rate before: $R1 GFLOP/s (numpy float32 2048^3, $T threads); load: $(cut -d' ' -f1-3 /proc/loadavg)"
OUT=$(mktemp -d)
t0=$(date +%s.%N)
"${QB_BIN:-./build/quantbench}" quantize "$M" --scheme "$S" --calib "$CAL" --calib-samples "$N" --calib-len "$L" --seed 1 \
  --calib-order "${ORDER:-auto}" -o "$OUT/q.gguf" -q -t "$T" 2>&1 | tail -1
t1=$(date +%s.%N)
R2=$(rate)
echo "fp32 rate after: $R2 GFLOP/s; load: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$M" "$N" "$L" "$t0" "$t1" "$R1" "$R2" <<'PY'
import sys, gguf
m, n, l, t0, t1, r1, r2 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), *map(float, sys.argv[4:])
r = gguf.GGUFReader(m)
mats = [t for t in r.tensors if t.name.startswith("blk.") and t.name.endswith(".weight") and len(t.shape) == 2]
tokens = n * l
fwd = sum(2 * int(t.shape[0]) * int(t.shape[1]) for t in mats) * tokens
inputs = {}
for t in mats:  # ggml shape is (cols, rows): the layer input width first
    layer, kind = t.name.split(".")[1], t.name.split(".")[2]
    key = {"attn_q": "attn_in", "attn_k": "attn_in", "attn_v": "attn_in", "ffn_gate": "ffn_in", "ffn_up": "ffn_in"}.get(kind, kind)
    inputs[(layer, key)] = int(t.shape[0])
hess = sum(tokens * c * (c + 1) for c in inputs.values())
solve = sum(2 * int(t.shape[1]) * int(t.shape[0]) ** 2 + int(t.shape[0]) ** 3 for t in mats)
total = fwd + hess + solve
rate = max(r1, r2) * 1e9
wall = t1 - t0
print(f"tokens {tokens}; FLOP: forward {fwd/1e12:.2f} T, Hessians {hess/1e12:.2f} T, GPTQ solve {solve/1e12:.3f} T; total {total/1e12:.2f} T")
print(f"floor at {rate/1e9:.1f} GFLOP/s: {total/rate:.1f} s; quantize wall time {wall:.1f} s = {wall/(total/rate):.2f}x the floor")
PY
rm -rf "$OUT"
