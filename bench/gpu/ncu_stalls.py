#!/usr/bin/env python3
"""Summarizes an Nsight Compute source page exported as CSV (ab.sh's `ncusrc` block:
`ncu -i REP --page source --csv --print-source sass`): where the sampled warps stalled, by reason over
the whole kernel, the hottest SASS instructions with their top reasons, and the executed opcode mix.

Usage: ncu_stalls.py SOURCE.csv [HOT_LINES]
"""
import csv
import sys
from collections import Counter


def main() -> int:
    rows = list(csv.reader(open(sys.argv[1], newline="")))
    hot_lines = int(sys.argv[2]) if len(sys.argv) > 2 else 25
    header, data = rows[1], rows[2:]  # row 0 names the kernel
    col = {h: i for i, h in enumerate(header)}
    reasons = [h for h in header if h.startswith("stall_") and "Not Issued" not in h]
    by_reason, total, executed = Counter(), 0, 0
    hot, opcodes = [], Counter()
    for r in data:
        samples = int(r[col["Warp Stall Sampling (All Samples)"]] or 0)
        count = int(r[col["Instructions Executed"]] or 0)
        total += samples
        executed += count
        per = {h: int(r[col[h]] or 0) for h in reasons}
        by_reason.update(per)
        source = r[col["Source"]].strip()
        hot.append((samples, source, r[col["Address"]][-5:], per, count))
        words = source.split()
        if words:
            op = words[1] if words[0].startswith("@") and len(words) > 1 else words[0]
            opcodes[op.split(".")[0]] += count
    print(f"{rows[0][1] if len(rows[0]) > 1 else ''}")
    print(f"samples {total}, warp instructions executed {executed}")
    for reason, n in by_reason.most_common():
        if n:
            print(f"  {reason:24s} {n:7d} {100 * n / max(total, 1):5.1f}%")
    print("hottest instructions (samples, share, address, SASS, times executed, top reasons):")
    for samples, source, addr, per, count in sorted(hot, key=lambda x: -x[0])[:hot_lines]:
        top = sorted(((k, v) for k, v in per.items() if v), key=lambda kv: -kv[1])[:3]
        print(f"{samples:6d} {100 * samples / max(total, 1):5.1f}% {addr} {source[:60]:60s} {count:8d} {top}")
    print("opcode mix (warp instructions):", ", ".join(f"{k} {v}" for k, v in opcodes.most_common(20)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
