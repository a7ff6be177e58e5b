#!/usr/bin/env bash
# Dev machine: builds the CUDA binaries (-DQB_CUDA=ON, sm_90a) and stages everything the GPU machine
# needs in .gpu_stage/ (git-ignored): the binaries, the non-CUDA shared libraries they link (the GPU
# machine lacks Debian's -dev packages), the test models (stories260K, random GGUFs made here with the
# `gguf` package and quantized here by `quantbench quantize`), and run.sh. Then, through the device
# tool: carry [".gpu_stage"], command `bash .gpu_stage/run.sh`. Usage: stage.sh [STAGE_DIR] (default .gpu_stage;
# the device tool sends the session's checkout, so a helper stages into an ignored folder there).
set -euo pipefail
cd "$(dirname "$0")/../.."
export CCACHE_BASEDIR=$PWD CCACHE_NOHASHDIR=1
cmake -S . -B build-cuda -DCMAKE_BUILD_TYPE=Release -DQB_CUDA=ON >/dev/null
cmake --build build-cuda -j2 --target quantbench_cli qb_cuda_tests qb_cuda_backend_check qb_gpu_bench qb_qgemm_bench qb_kv_read_probe
S=${1:-.gpu_stage}
mkdir -p $S/lib $S/models
cp build-cuda/quantbench build-cuda/tests/qb_cuda_tests build-cuda/tests/qb_cuda_backend_check \
  build-cuda/src/quantbench/qb_gpu_bench build-cuda/src/quantbench/qb_qgemm_bench \
  build-cuda/src/quantbench/qb_kv_read_probe bench/gpu/run.sh bench/gpu/ab.sh bench/gpu/run_kv.sh bench/gpu/ncu_stalls.py $S/
git rev-parse HEAD > $S/GIT_COMMIT
git status --porcelain --untracked-files=no | grep -q . && echo "(plus uncommitted changes)" >> $S/GIT_COMMIT || true
for lib in libfmt.so.9 libstdc++.so.6 libgcc_s.so.1 libpcre2-8.so.0 libsqlite3.so.0 libtomlplusplus.so.3; do
  p=$(ldd build-cuda/quantbench | awk -v l=$lib '$1 == l {print $3}')
  [ -n "$p" ] && cp -L "$p" $S/lib/
done
M=$S/models
cp data/models/stories260K/stories260K.gguf $M/
[ -f $M/rand-llama.gguf ] || python3 tests/cuda/make_random_gguf.py $M/rand-llama.gguf llama
[ -f $M/rand-qwen2.gguf ] || python3 tests/cuda/make_random_gguf.py $M/rand-qwen2.gguf qwen2
[ -f $M/rand-llama-q5_0.gguf ] || python3 tests/cuda/make_random_gguf.py $M/rand-llama-q5_0.gguf llama q5_0
q() { [ -f "$3" ] || build-cuda/quantbench quantize "$1" --scheme "$2" -o "$3" -q -t 2 >/dev/null; }
# packed formats (q4_1 and q4_k as w4g32 with mins, q5_k as w8g32 with mins, q6_k as w8g16), then bf16,
# which runs dense (cuBLAS)
for s in w8 w4g128 w4g128-asym w4g32 w4g32-asym q4_0 q8_0 q4_1 q4_k q5_k q6_k bf16; do q $M/rand-llama.gguf $s $M/rand-llama-$s.gguf; done
q $M/rand-qwen2.gguf w4g128-asym $M/rand-qwen2-w4g128-asym.gguf
# GGUF Q4_K_M's mix (q4_k with q6_k in layer 0's attn_v and ffn_down): a q|k|v stack in two packed formats
q $M/rand-llama.gguf tests/cuda/q4_k_m_like.toml $M/rand-llama-q4_k_m.gguf
q $M/rand-llama.gguf tests/cuda/q5_k_m_like.toml $M/rand-llama-q5_k_m.gguf  # likewise q5_k (w8g32m) with q6_k
q $M/stories260K.gguf w8 $M/stories260K-w8.gguf
for s in w8a8 w8a8-fp8; do for m in rand-llama stories260K; do q $M/$m.gguf $s $M/$m-$s.gguf; done; done  # run_kv.sh's W8A8 checks
du -sh $S
