#!/usr/bin/env python3
"""Instructions per iteration of each qgemv kernel's main loop, read off its SASS.

The dev machine has nvcc but no cuobjdump/nvdisasm; both come as PyPI wheels (docs/perf.md, session 12):
  pip download --no-deps -d /tmp/nv nvidia-cuda-cuobjdump nvidia-cuda-nvdisasm && (cd /tmp/nv && unzip -qo '*.whl')
  export PATH=$PATH:/tmp/nv/nvidia/cu13/bin
  nvcc -std=c++17 -gencode arch=compute_90a,code=sm_90a -O3 -Isrc -c src/quantbench/runtime/cuda/qgemv.cu -o /tmp/q.o
  cuobjdump -sass /tmp/q.o > /tmp/q.sass && python3 bench/gpu/sass_loops.py /tmp/q.sass

For each qgemv kernel (template arguments F, G, OFS, R, NT, HALF, GATED, COPY16; a capped kernel's cap first) it prints
the longest backward branch that contains an HMMA (the main loop: one step of U chunks), its instruction
count and the most frequent opcodes. Instructions per loop over the step's weight bytes is what
session 12 cut (docs/perf.md).
"""
import collections
import re
import sys

# qgemv_kernel<F, G, OFS, R, NT, HALF, GATED[, COPY16]> and qgemv_kernel_capped<CAP, F, G, OFS, R, NT, HALF, GATED, COPY16>
KERNEL = re.compile(r'qgemv_kernel(?:_cappedILi(\d+)E)?I?Li(\d)ELi(\d+)ELi(\d)ELi(\d)ELi(\d)ELb(\d)ELb(\d)E(?:Lb(\d)E)?')
INSN = re.compile(r'/\*([0-9a-f]{4,})\*/\s+(.*?)\s*;')


def main(path):
    text = open(path).read()
    for body in re.split(r'\n\s*Function : ', text)[1:]:
        m = KERNEL.search(body.split('\n')[0])
        if not m:
            continue
        cap = m.group(1)
        f, g, ofs, r, nt, half, gated, copy16 = m.groups()[1:]
        ins = [(int(a, 16), t) for a, t in INSN.findall(body)]
        best = None
        for addr, t in ins:
            b = re.search(r'BRA (0x[0-9a-f]+)', t)
            if not b or int(b.group(1), 16) >= addr:
                continue
            loop = [x for x in ins if int(b.group(1), 16) <= x[0] <= addr]
            if any('HMMA' in x[1] for x in loop) and (best is None or len(loop) > len(best)):
                best = loop
        if best is None:
            continue
        ops = collections.Counter(re.sub(r'^@!?U?P\w+\s+', '', t).split()[0].split('.')[0] for _, t in best)
        name = (f"F{f} G{g} ofs{ofs} R{r} NT{nt} half{half}" + (" gated" if gated == "1" else "") +
                (" copy16" if copy16 == "1" else "") + (f" cap{cap}" if cap else ""))
        print(f"{name:36s} {len(best):4d}  " + " ".join(f"{k}:{v}" for k, v in ops.most_common(8)))


if __name__ == '__main__':
    if len(sys.argv) != 2:
        sys.exit('usage: sass_loops.py FILE.sass (cuobjdump -sass output)')
    main(sys.argv[1])
