"""Accumulation accuracy at scale (docs/design.md §2.5, issue 7): stream n float32 tokens through the
state of KVStream (keys first) and CausalStream, and compare the accumulated state
M = phi(K)^T V, s = phi(K)^T 1 with a compensated reference computed in the same pass over the
same generated blocks.

Reference: for each block, phi(K_b) is computed once (TaylorFeatures, float64) and the block's
contribution phi^T V, phi^T 1 is summed in extended precision (np.longdouble, 64-bit mantissa on
x86-64); block contributions are accumulated in longdouble too. The reference's own error is
~ (block rows + blocks) * 2^-64 relative: far below the 1e-9 being checked. The library
accumulates in float64 (its kernels' GEMMs plus the running sum), so its error should be
~1e-13 relative; a float32 accumulator would be off by ~1e-4 at n = 10^8.

    python bench/bench_numerics.py                      # n = 10^8, both streams (minutes)
    python bench/bench_numerics.py --n 1000000 --json   # quick

Reported per stream: n, seconds, rel_fro_M = ||M - M_ref||_F / ||M_ref||_F, rel_fro_s, max entry
error relative to the sum of |terms| of that entry, and s[0] - n (the constant feature counts
tokens exactly in float64 up to 2^53).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

import streamattn as sa


def reference_block(phi: np.ndarray, v: np.ndarray):
    """(phi^T v, phi^T 1, |phi|^T |v|) of one block, the first two in longdouble."""
    pl = phi.astype(np.longdouble)
    return pl.T @ v.astype(np.longdouble), pl.sum(axis=0), np.abs(phi).T @ np.abs(v)


def run(
    kind: str,
    n: int,
    d: int,
    dv: int,
    degree: int,
    block: int,
    seed: int,
    scale: float,
    mean_v: float,
    compute: str | None = None,
):
    rng = np.random.default_rng(seed)
    feats = sa.TaylorFeatures(d, degree)
    t = feats.dim
    s = (
        sa.KVStream(d, dv, degree=degree)
        if kind == "kv"
        else sa.CausalStream(d, dv, degree=degree, chunk=256, compute=compute)
    )
    M_ref = np.zeros((t, dv), dtype=np.longdouble)
    s_ref = np.zeros(t, dtype=np.longdouble)
    abs_sum = np.zeros((t, dv))
    t0 = time.perf_counter()
    done = 0
    while done < n:
        b = min(block, n - done)
        K = rng.standard_normal((b, d), dtype=np.float32) * np.float32(scale)
        V = rng.standard_normal((b, dv), dtype=np.float32) + np.float32(mean_v)
        if kind == "kv":
            s.add(K, V)
        else:
            Qb = rng.standard_normal((b, d), dtype=np.float32) * np.float32(scale)
            s.update(Qb, K, V, return_rows=False)
        phi = feats.transform(K)  # float64 features of the float32 keys (exactly what the stream sees)
        m, z, a = reference_block(phi, V.astype(np.float64))
        M_ref += m
        s_ref += z
        abs_sum += a
        done += b
    seconds = time.perf_counter() - t0
    M = np.asarray(s.numerator_state, dtype=np.longdouble)
    S = np.asarray(s.normalizer_state, dtype=np.longdouble)
    rel_M = float(np.sqrt(np.sum((M - M_ref) ** 2)) / np.sqrt(np.sum(M_ref**2)))
    rel_s = float(np.sqrt(np.sum((S - s_ref) ** 2)) / np.sqrt(np.sum(s_ref**2)))
    max_entry = float(np.max(np.abs(M - M_ref) / np.maximum(abs_sum, 1e-300)))
    # What a float32 accumulator of the same block sums would have given (for contrast).
    return {
        "stream": "KVStream" if kind == "kv" else "CausalStream",
        "compute": "float64" if kind == "kv" else (compute or "input (float32)"),
        "n": n,
        "d": d,
        "dv": dv,
        "degree": degree,
        "t": t,
        "block": block,
        "seconds": round(seconds, 2),
        "tokens_per_second": round(n / seconds),
        "rel_fro_M": rel_M,
        "rel_fro_s": rel_s,
        "max_entry_error_over_abs_sum": max_entry,
        "s0_minus_n": float(S[0] - n),
        "within_1e-9": bool(rel_M <= 1e-9 and rel_s <= 1e-9),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=10**8)
    p.add_argument("--d", type=int, default=4)
    p.add_argument("--dv", type=int, default=2)
    p.add_argument("--degree", type=int, default=2)
    p.add_argument("--block", type=int, default=1 << 20)
    p.add_argument("--seed", type=int, default=2024)
    p.add_argument("--scale", type=float, default=0.5, help="std of the key entries")
    p.add_argument("--mean-v", type=float, default=1.0, help="mean of the values (nonzero: sums grow like n)")
    p.add_argument("--streams", default="kv,causal")
    p.add_argument("--compute", choices=["float32", "float64"], default=None, help="CausalStream's compute=")
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    rows = [
        run(k, a.n, a.d, a.dv, a.degree, a.block, a.seed, a.scale, a.mean_v, a.compute) for k in a.streams.split(",")
    ]
    if a.json:
        print(json.dumps(rows, indent=1))
    else:
        for r in rows:
            print(" ".join(f"{k}={v}" for k, v in r.items()))
    return 0 if all(r["within_1e-9"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
