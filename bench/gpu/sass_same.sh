#!/usr/bin/env bash
# Dev machine, no GPU needed: whether the CUDA backend's kernels at two revisions are the same machine code, kernel by
# kernel (sass_same.py says how they are compared). For changes that should leave every kernel as it was, such as
# moving kernels between .cu files: where the SASS is the same, the GPU runs the same code.
# Each tree's src/quantbench/runtime/cuda/*.cu is compiled for sm_90a with the build's code-generation flags (-O3,
# -DNDEBUG, C++17; host-only flags such as warnings do not change device code), one object per file, each listed with
# `cuobjdump -sass`. cuobjdump comes with a full CUDA toolkit, or from PyPI (the dev machine's toolkit lacks it):
#   pip download --no-deps -d /tmp/nv nvidia-cuda-cuobjdump && (cd /tmp/nv && unzip -qo '*.whl')
#   export PATH=$PATH:/tmp/nv/nvidia/cu13/bin
# Usage: bash bench/gpu/sass_same.sh BASE [REV]   (REV: default the working tree; about 5 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -ge 1 ] && [ $# -le 2 ] || { echo "usage: sass_same.sh BASE [REV]   (REV: default the working tree)"; exit 2; }
BASE=$1 REV=${2:-}
NVCC=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
[ -x "$NVCC" ] || { echo "sass_same.sh: no nvcc (the CUDA toolkit)"; exit 2; }
CUOBJDUMP=$(command -v cuobjdump || true)
[ -z "$CUOBJDUMP" ] && [ -x /usr/local/cuda/bin/cuobjdump ] && CUOBJDUMP=/usr/local/cuda/bin/cuobjdump
[ -n "$CUOBJDUMP" ] || { echo "sass_same.sh: no cuobjdump (see this script's header for the PyPI wheel)"; exit 2; }
for r in "$BASE" ${REV:+"$REV"}; do
  git rev-parse -q --verify "$r^{commit}" >/dev/null || { echo "sass_same.sh: $r is not a revision here"; exit 2; }
done
W=$(mktemp -d)
cleanup() {
  git worktree remove --force "$W/base" >/dev/null 2>&1 || true
  git worktree remove --force "$W/rev" >/dev/null 2>&1 || true
  rm -rf "$W"
}
trap cleanup EXIT
git worktree add --detach -q "$W/base" "$BASE"
NEW_TREE=$PWD
if [ -n "$REV" ]; then git worktree add --detach -q "$W/rev" "$REV"; NEW_TREE=$W/rev; fi
# listings TREE DIR: one SASS listing per .cu file of TREE's CUDA backend, in DIR
listings() {
  local tree=$1 dir=$2 f
  mkdir -p "$dir"
  for f in "$tree"/src/quantbench/runtime/cuda/*.cu; do
    "$NVCC" -O3 -DNDEBUG -DQB_HAVE_CUDA=1 -std=c++17 --generate-code=arch=compute_90a,code=sm_90a -I"$tree/src" \
      -x cu -c "$f" -o "$W/obj.o"
    "$CUOBJDUMP" -sass "$W/obj.o" > "$dir/$(basename "$f" .cu).sass"
  done
}
listings "$W/base" "$W/old"
listings "$NEW_TREE" "$W/new"
echo "base $(git rev-parse --short "$BASE"): $(ls "$W/old" | wc -l) .cu files;" \
  "new ${REV:-(the working tree)}: $(ls "$W/new" | wc -l) .cu files"
python3 bench/gpu/sass_same.py --old "$W"/old/*.sass --new "$W"/new/*.sass
