#!/usr/bin/env python3
"""Whether two builds of the same CUDA kernels are the same machine code, kernel by kernel: the SASS instruction
streams, with their encodings, of `cuobjdump -sass` listings. For changes that should not change a kernel (moving
kernels between .cu files, splitting a host file): identical SASS means the GPU runs the same code, and that can be
checked on a machine without a GPU (docs/perf.md, session 37). bench/gpu/sass_same.sh makes the listings of two
revisions and calls this.

One rename is allowed: a kernel in an anonymous namespace has a mangled name that carries its file's name and a hash
(`_GLOBAL__N__<hash>_<len>_<file>_cu_<hash>`), so that token is compared as "the anonymous namespace". Everything
else must match: the set of kernels and, per kernel, every instruction and its encoding, in order. Branch targets
are offsets inside the kernel, so moving a kernel does not move them.

Usage: sass_same.py --old OLD.sass [OLD.sass ...] --new NEW.sass [NEW.sass ...]
Prints one line per kernel missing, added or changed (with the first instruction that differs), then a count.
Exit 0 when every kernel is the same, 1 when any differs, 2 when a listing is unreadable or holds no kernel.
"""
import argparse
import re
import sys

ANON = re.compile(r'\d+_GLOBAL__N__[0-9a-f]+_\d+_\w+?_cu_[0-9a-f]{8}')
FUNCTION = re.compile(r'^\s*Function : (\S+)\s*$')
# an instruction line: /*offset*/ text ; /* encoding */ (the encoding's second half is on the next line)
INSN = re.compile(r'^\s*/\*([0-9a-f]{4,})\*/\s+(.*?)\s*;\s*/\*\s*(0x[0-9a-f]+)\s*\*/\s*$')
ENCODING_TAIL = re.compile(r'^\s*/\*\s*(0x[0-9a-f]+)\s*\*/\s*$')


def kernels(path):
    """[(kernel name with the anonymous namespace normalised, [instruction lines])] of one listing, in its order."""
    out, body = [], None
    with open(path) as f:
        for line in f:
            m = FUNCTION.match(line)
            if m:
                body = []
                out.append((ANON.sub('(anonymous)', m.group(1)), body))
                continue
            if body is None:
                continue
            m = INSN.match(line)
            if m:
                body.append(f"{m.group(1)} {ANON.sub('(anonymous)', ' '.join(m.group(2).split()))} {m.group(3)}")
                continue
            m = ENCODING_TAIL.match(line)
            if m and body:
                body[-1] += ' ' + m.group(1)
    return out


def merged(paths):
    """The kernels of several listings (one per object file). A template kernel from a shared header can be in two
    objects; the linker keeps one, so two copies count once where they are the same, and are an error where not."""
    all_k = {}
    for p in paths:
        for name, body in kernels(p):
            if name in all_k and all_k[name] != body:
                raise ValueError(f"kernel {name} is listed twice, with different code ({p})")
            all_k[name] = body
    return all_k


def first_difference(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return f"instruction {i}: {x!r} -> {y!r}"
    return f"{len(a)} instructions -> {len(b)}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--old', nargs='+', required=True)
    ap.add_argument('--new', nargs='+', required=True)
    a = ap.parse_args()
    try:
        old, new = merged(a.old), merged(a.new)
    except (OSError, ValueError) as e:
        print(f"sass_same: {e}")
        return 2
    if not old or not new:
        which = 'old' if not old else 'new'
        print(f"sass_same: no kernel in the {which} listings (are they `cuobjdump -sass` output?)")
        return 2
    same = bad = 0
    for name in sorted(old.keys() | new.keys()):
        if name not in new:
            print(f"MISSING {name}")
        elif name not in old:
            print(f"ADDED   {name}")
        elif old[name] != new[name]:
            print(f"CHANGED {name}: {first_difference(old[name], new[name])}")
        else:
            same += 1
            continue
        bad += 1
    print(f"{same} of {len(old)} kernels the same ({len(new)} in the new listings); {bad} missing, added or changed")
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
