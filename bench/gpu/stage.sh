#!/usr/bin/env bash
# Dev machine: builds the CUDA binaries (-DQB_CUDA=ON, sm_90a) and stages everything the GPU machine
# needs in .gpu_stage/ (git-ignored): the binaries, the non-CUDA shared libraries they link (the GPU
# machine lacks Debian's -dev packages), the base test models (stories260K, random GGUFs made here with
# the `gguf` package; make_models.sh quantizes them on the GPU machine), run.sh and the scripts beside it. Then, through the device
# tool: carry [".gpu_stage"], command `bash .gpu_stage/run.sh`. Usage: stage.sh [STAGE_DIR] (default .gpu_stage;
# the device tool sends the session's checkout, so a helper stages into an ignored folder there). The same folder
# serves sanitize.sh (the GPU machine's CUDA toolkit has compute-sanitizer). STAGE_ALL=1 keeps two probes (below).
set -euo pipefail
cd "$(dirname "$0")/../.."
export CCACHE_BASEDIR=$PWD CCACHE_NOHASHDIR=1
cmake -S . -B build-cuda -DCMAKE_BUILD_TYPE=Release -DQB_CUDA=ON >/dev/null
cmake --build build-cuda -j2 --target quantbench_cli qb_cuda_tests qb_cuda_backend_check qb_gpu_bench qb_qgemm_bench qb_kv_read_probe
S=${1:-.gpu_stage}
mkdir -p $S/lib $S/models
cp build-cuda/quantbench build-cuda/tests/qb_cuda_tests build-cuda/tests/qb_cuda_backend_check \
  build-cuda/src/quantbench/qb_gpu_bench build-cuda/src/quantbench/qb_qgemm_bench \
  build-cuda/src/quantbench/qb_kv_read_probe bench/gpu/run.sh bench/gpu/ab.sh bench/gpu/run_kv.sh bench/gpu/ncu_stalls.py bench/gpu/eval_backends.py bench/gpu/make_models.sh \
  bench/gpu/sanitize.sh bench/gpu/sanitizer_verdict.py bench/gpu/summarize.py bench/gpu/staged_env.sh \
  tests/cuda/q4_k_m_like.toml tests/cuda/q5_k_m_like.toml $S/
rm -rf $S/ab && cp -r bench/gpu/ab $S/ab  # ab.sh's blocks
git rev-parse HEAD > $S/GIT_COMMIT
git status --porcelain --untracked-files=no | grep -q . && echo "(plus uncommitted changes)" >> $S/GIT_COMMIT || true
for lib in libfmt.so.9 libstdc++.so.6 libgcc_s.so.1 libpcre2-8.so.0 libsqlite3.so.0 libtomlplusplus.so.3; do
  p=$(ldd build-cuda/quantbench | awk -v l=$lib '$1 == l {print $3}')
  [ -n "$p" ] && cp -L "$p" $S/lib/
done
M=$S/models
rm -rf $M && mkdir -p $M  # base models only (a seeded few seconds to remake); the GPU machine makes the rest
cp data/models/stories260K/stories260K.gguf $M/
python3 tests/cuda/make_random_gguf.py $M/rand-llama.gguf llama
python3 tests/cuda/make_random_gguf.py $M/rand-qwen2.gguf qwen2
# attn_q, attn_k, ffn_gate, ffn_up in a GGUF type gguf-py (or the script) quantizes and `quantize` does not
for t in q5_0 q5_1 q3_k q2_k; do
  python3 tests/cuda/make_random_gguf.py $M/rand-llama-$t.gguf llama $t
done
# The quantized models are made on the GPU machine (make_models.sh, called by run.sh and ab.sh).
# Gzipped to fit the device tool's 64 MiB carry (uncompressed the folder is about 75 MB); the scripts unpack it
# first (staged_env.sh).
for f in $S/quantbench $S/qb_* $S/lib/* $S/models/*; do case $f in *.gz) ;; *) gzip -f "$f" ;; esac; done
# The carry is this folder and the checkout together. Two probes only some ab.sh blocks run (qgemm's bench, the KV
# read probe) are left out unless STAGE_ALL=1: with them the two come to about 67 MiB.
[ "${STAGE_ALL:-0}" = 1 ] || rm -f $S/qb_qgemm_bench.gz $S/qb_kv_read_probe.gz
du -sh $S
