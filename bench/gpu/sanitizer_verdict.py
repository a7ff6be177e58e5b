#!/usr/bin/env python3
"""The verdict on one compute-sanitizer racecheck log of a program checked over every kernel, cuBLAS's included
(sanitize.sh's w8a8race): cuBLASLt's own GEMM kernels (named nvjet_*) report shared-memory hazards there, which are
NVIDIA's to answer, so they are counted apart and only the rest is judged.

Clean in our kernels (exit 0, one line naming how many hazards were set apart) only when all of these hold:
- the program printed its PASSED line and no FAILED line;
- racecheck's summary is there, and it printed every hazard it counted (run with --print-limit 0): a hazard of ours
  could otherwise hide behind the limit;
- every record the sanitizer printed is a race whose accesses are all inside nvjet_ kernels. Anything else (a race in
  another kernel, an internal sanitizer error, a target that did not start) fails.
Otherwise exit 1, with the first reason. Usage: sanitizer_verdict.py LOG"""
import re
import sys

PREFIX = "========= "
SUMMARY = re.compile(r"RACECHECK SUMMARY: (\d+) hazards? displayed \((\d+) errors?, (\d+) warnings?\)")
ACCESS = re.compile(r"access at ([^\s+]+)")  # the kernel's name, before its +0x offset


def verdict(text):
    lines = text.splitlines()
    if not any(l.startswith("PASSED") for l in lines) or any(l.startswith("FAILED") for l in lines):
        return False, "the program did not pass its checks"
    summary = [m for m in map(SUMMARY.search, lines) if m]
    if not summary:
        return False, "no racecheck summary (not a racecheck log, or the run was cut short)"
    shown, errors, warnings = map(int, summary[-1].groups())
    if shown != errors + warnings:
        return False, f"{errors + warnings - shown} of {errors + warnings} hazards not printed (run with --print-limit 0)"
    races = 0
    for line in lines:
        if not line.startswith(PREFIX) or "SUMMARY" in line:
            continue
        body = line[len(PREFIX):]
        if body.startswith(("Error: ", "Warning: ")):
            if "Race reported" not in body:
                return False, body.strip()
            races += 1
        elif not body.startswith("    and ") and body.strip() and body.strip() != "COMPUTE-SANITIZER":
            return False, body.strip()  # an internal error, a target that returned an error, ...
        for kernel in ACCESS.findall(body):
            if not kernel.startswith("nvjet_"):
                return False, f"a race in {kernel}"
    if races != shown:
        return False, f"the summary counts {shown} hazards, the log shows {races}"
    return True, f"clean in ours; {races} hazards in cuBLASLt's nvjet kernels"


def main():
    if len(sys.argv) != 2:
        print("usage: sanitizer_verdict.py LOG", file=sys.stderr)
        return 2
    try:
        text = open(sys.argv[1], errors="replace").read()
    except OSError as e:
        print(f"sanitizer_verdict.py: {e}", file=sys.stderr)
        return 2
    ok, why = verdict(text)
    print(why)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
