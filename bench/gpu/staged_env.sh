# Sourced by the scripts that run in a folder bench/gpu/stage.sh filled, from that folder: unpacks what stage.sh
# gzipped (the binaries, libraries and models; the device tool's carry is limited to 64 MiB) and puts the staged
# libraries first on the loader's path (the GPU machine lacks Debian's -dev packages). Unpacking twice is a no-op;
# the `|| true`s keep a sourcing script under `set -e` alive once the globs match nothing.
gunzip -f ./*.gz lib/*.gz models/*.gz 2>/dev/null || true
chmod +x quantbench* qb_* 2>/dev/null || true
export LD_LIBRARY_PATH=$PWD/lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
