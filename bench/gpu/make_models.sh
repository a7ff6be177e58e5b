#!/usr/bin/env bash
# Makes the derived test models for the GPU checks in the staged folder's models/, with the staged
# `quantbench quantize`, from the base GGUFs stage.sh carries (stories260K and the random GGUFs of
# tests/cuda/make_random_gguf.py). They are made where they are used, on the GPU machine, because the
# device tool's carry is limited to 64 MiB and the quantized copies are most of the models' bytes; a
# model already there is kept. run.sh and ab.sh's check blocks call this first.
# Usage: bash make_models.sh (from the staged folder, or with it as working directory)
set -euo pipefail
cd "$(dirname "$0")"
source ./staged_env.sh  # unpacks the staged folder, sets the library path
M=models
q() { [ -f "$3" ] || ./quantbench quantize "$1" --scheme "$2" -o "$3" -q -t 4 >/dev/null; }
# packed formats (q4_1 and q4_k as w4g32 with mins, q5_k as w8g32 with mins, q6_k as w8g16), then bf16,
# which runs dense (cuBLAS)
for s in w8 w4g128 w4g128-asym w4g32 w4g32-asym q4_0 q8_0 q4_1 q4_k q5_k q6_k bf16; do
  q $M/rand-llama.gguf $s $M/rand-llama-$s.gguf
done
q $M/rand-qwen2.gguf w4g128-asym $M/rand-qwen2-w4g128-asym.gguf
# GGUF Q4_K_M's mix (q4_k with q6_k in layer 0's attn_v and ffn_down): a q|k|v stack in two packed
# formats; likewise q5_k (w8g32m) with q6_k
q $M/rand-llama.gguf q4_k_m_like.toml $M/rand-llama-q4_k_m.gguf
q $M/rand-llama.gguf q5_k_m_like.toml $M/rand-llama-q5_k_m.gguf
q $M/stories260K.gguf w8 $M/stories260K-w8.gguf
for s in w8a8 w8a8-fp8; do for m in rand-llama stories260K; do q $M/$m.gguf $s $M/$m-$s.gguf; done; done  # run_kv.sh's W8A8 checks
