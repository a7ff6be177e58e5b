#!/usr/bin/env python3
"""Golden outputs for quantbench's GPTQ, from an independent NumPy implementation.

The algorithm follows the GPTQ paper's Algorithm 1 as the reference repository implements it
(IST-DASLab/gptq, gptq.py: GPTQ.fasterquant): H = 2/n X^T X, dead columns, optional act-order,
dampening by a fraction of mean(diag H), U = chol(H^-1) upper, lazy block updates, group params
found when a group starts (from W as of the block start) or up front (static groups).

Two documented departures from the reference's float32 torch code, both shared by quantbench:
  * everything runs in float64 (torch runs float32), so results are reproducible to the last code;
  * a group's scale is rounded *up* to float16 before quantizing (the reference keeps a float32
    scale during the algorithm and converts when packing), so the codes match the stored scale.
The symmetric grid is the reference Quantizer's: scale = 2*absmax/maxq, zero = (maxq+1)/2.

Inputs are not stored: they come from a splitmix64 generator that tests/quant/gptq_golden_test.cpp
re-implements, using only elementwise double arithmetic so both sides produce identical floats.
Run:  python3 tests/golden/gptq/make_golden.py  (writes gptq_golden.json beside this script)
"""
import json
import os

import numpy as np

MASK = (1 << 64) - 1


class SplitMix64:
    def __init__(self, seed):
        self.s = seed & MASK

    def next(self):
        self.s = (self.s + 0x9E3779B97F4A7C15) & MASK
        z = self.s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def uniform(self):  # [0, 1)
        return (self.next() >> 11) * (1.0 / 9007199254740992.0)

    def centered(self):  # [-1, 1)
        return self.uniform() * 2.0 - 1.0


ROWS, COLS, NSAMP, LATENT, SEED = 32, 160, 256, 8, 20261126


def make_problem():
    """Correlated activations with uneven channel magnitudes, and a weight matrix (float32 values)."""
    g = SplitMix64(SEED)
    L = [[g.centered() for _ in range(LATENT)] for _ in range(COLS)]
    cs = [0.25 + 2.0 * g.uniform() for _ in range(COLS)]
    X = np.zeros((NSAMP, COLS), dtype=np.float32)
    for s in range(NSAMP):
        f = [g.centered() for _ in range(LATENT)]
        e = [g.centered() for _ in range(COLS)]
        for j in range(COLS):
            acc = 0.0
            for k in range(LATENT):
                acc += L[j][k] * f[k]
            X[s, j] = np.float32(cs[j] * (acc + 0.3 * e[j]))
    W = np.zeros((ROWS, COLS), dtype=np.float32)
    for r in range(ROWS):
        for j in range(COLS):
            W[r, j] = np.float32(g.centered() + g.centered() + g.centered())
    return W, X


def f16_up(s):
    """Smallest float16 >= s (s a positive float32), returned as float32."""
    h = np.float16(s)
    if np.float32(h) < s:
        h = np.nextafter(h, np.float16(np.inf))
    return np.float32(h)


def find_params(x, bits, asym):
    """Reference Quantizer.find_params for one row segment, in float32 like the reference."""
    maxq = np.float32(2 ** bits - 1)
    lo = np.float32(min(float(x.min()), 0.0))
    hi = np.float32(max(float(x.max()), 0.0))
    if not asym:
        a = max(-lo, hi)
        lo, hi = np.float32(-a), np.float32(a)
    if lo == 0 and hi == 0:
        lo, hi = np.float32(-1), np.float32(1)
    scale = f16_up(np.float32(hi - lo) / maxq)
    if asym:
        zero = int(np.clip(np.round(np.float32(-lo) / scale), 0, maxq))
    else:
        zero = 2 ** (bits - 1)
    return float(scale), zero


def gptq(W, X, bits, group, asym, act_order, static_groups, damp, block):
    rows, n = W.shape
    maxq = 2 ** bits - 1
    W = W.astype(np.float64).copy()
    Xd = X.astype(np.float64)
    H = 2.0 / X.shape[0] * (Xd.T @ Xd)
    dead = np.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    ngroups = (n + group - 1) // group if group else 1
    scales = np.zeros((rows, ngroups))
    zeros = np.zeros((rows, ngroups), dtype=int)

    def set_params(c0, c1, k):
        for r in range(rows):
            scales[r, k], zeros[r, k] = find_params(W[r, c0:c1], bits, asym)

    if not group:
        set_params(0, n, 0)
    elif static_groups:
        for k in range(ngroups):
            set_params(k * group, min(n, (k + 1) * group), k)
    perm = np.arange(n)
    if act_order:
        perm = np.argsort(-np.diag(H), kind="stable")
        W = W[:, perm]
        H = H[perm][:, perm]
    H[np.diag_indices(n)] += damp * np.mean(np.diag(H))
    Hinv = np.linalg.inv(H)
    U = np.linalg.cholesky(Hinv).T  # upper: Hinv = U^T U
    Q = np.zeros((rows, n), dtype=int)
    for i1 in range(0, n, block):
        i2 = min(i1 + block, n)
        cnt = i2 - i1
        W1 = W[:, i1:i2].copy()
        Err1 = np.zeros((rows, cnt))
        U1 = U[i1:i2, i1:i2]
        for i in range(cnt):
            col = i1 + i
            k = perm[col] // group if group else 0
            if group and not static_groups and col % group == 0:
                set_params(col, min(n, col + group), k)
            w = W1[:, i]
            s = scales[:, k]
            z = zeros[:, k]
            q = np.clip(np.round(w / s) + z, 0, maxq)
            Q[:, perm[col]] = q.astype(int)
            err = (w - (q - z) * s) / U1[i, i]
            W1[:, i:] -= np.outer(err, U1[i, i:])
            Err1[:, i] = err
        W[:, i2:] -= Err1 @ U[i1:i2, i2:]
    return Q, scales, zeros


def dequant(Q, scales, zeros, group):
    rows, n = Q.shape
    k = np.arange(n) // group if group else np.zeros(n, dtype=int)
    return (Q - zeros[:, k]) * scales[:, k]


def output_error(W, V, X):
    D = W.astype(np.float64) - V
    return float(np.sum((D @ X.astype(np.float64).T) ** 2))


CONFIGS = [
    # name, bits, group (0 = per channel), asym, act_order, static_groups, damp, block
    ("int4_g32_sym_block128", 4, 32, False, False, False, 0.01, 128),
    ("int4_channel_asym_block32", 4, 0, True, False, False, 0.01, 32),
    ("int3_g64_asym_actorder_static_block32", 3, 64, True, True, True, 0.01, 32),
    ("int2_channel_sym_actorder_block64", 2, 0, False, True, False, 0.1, 64),
    ("int8_g128_sym_block48", 8, 128, False, False, False, 0.01, 48),
]


def main():
    W, X = make_problem()
    # Checksums summed in plain order (the C++ test sums the same way) prove the inputs agree.
    sw = 0.0
    for v in W.flatten():
        sw += float(v)
    sx = 0.0
    for v in X.flatten():
        sx += float(v) * float(v)
    out = {"rows": ROWS, "cols": COLS, "samples": NSAMP, "latent": LATENT, "seed": SEED,
           "checksum_w": sw, "checksum_x": sx, "configs": []}
    for name, bits, group, asym, act_order, static_groups, damp, block in CONFIGS:
        Q, S, Z = gptq(W, X, bits, group, asym, act_order, static_groups, damp, block)
        # RTN with the same grid, for the "GPTQ beats RTN" check.
        ngroups = S.shape[1]
        Sr = np.zeros_like(S)
        Zr = np.zeros_like(Z)
        Qr = np.zeros_like(Q)
        for r in range(ROWS):
            for k in range(ngroups):
                c0, c1 = (k * group, min(COLS, (k + 1) * group)) if group else (0, COLS)
                Sr[r, k], Zr[r, k] = find_params(W[r, c0:c1].astype(np.float64), bits, asym)
                Qr[r, c0:c1] = np.clip(np.round(W[r, c0:c1] / Sr[r, k]) + Zr[r, k], 0, 2 ** bits - 1)
        out["configs"].append({
            "name": name, "bits": bits, "group": group, "asym": asym, "act_order": act_order,
            "static_groups": static_groups, "damp": damp, "block": block,
            "codes": "".join(f"{v:02x}" for v in Q.flatten()),
            "scales": [float(v) for v in S.flatten()],
            "zeros": [int(v) for v in Z.flatten()],
            "output_error": output_error(W, dequant(Q, S, Z, group), X),
            "rtn_output_error": output_error(W, dequant(Qr, Sr, Zr, group), X),
        })
        c = out["configs"][-1]
        print(f"{name}: gptq {c['output_error']:.4f}  rtn {c['rtn_output_error']:.4f}")
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gptq_golden.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
