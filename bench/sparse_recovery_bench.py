"""Sparse-recovery benchmarks: decode time vs n for both decoders, update throughput vs CountSketch.

    python bench/sparse_recovery_bench.py [--max-log2n 30] [--standard-limit 60]

Prints markdown tables (the ones in README.md). Decode time: k = 16, eps = 0.25, the sketch of
a vector with 16 heavy coordinates plus noise on 20,000 random coordinates (streamed as index
updates, so building the sketch costs the same at every n). The standard decoder is timed
until one decode exceeds --standard-limit seconds; beyond that its time is extrapolated
linearly in n (it is O(n rows)) and marked "~". Each figure is the median of a few runs in one
process, so ratios between columns are comparable; absolute times depend on the machine.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import streamattn as sa


def timed(f, repeat: int) -> float:
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def decode_table(max_log2n: int, standard_limit: float) -> None:
    k, eps = 16, 0.25
    rng = np.random.default_rng(0)
    print(f"## Decode time vs n (k = {k}, eps = {eps}; threads = all cores)\n")
    print("| n | rows | bit rows | nbytes | sublinear decode (ms) | standard decode (s) | standard / sublinear |")
    print("|---|---|---|---|---|---|---|")
    last_std = None
    sub_at = {}
    for log2n in range(16, max_log2n + 1, 2):
        n = 2**log2n
        m = min(n, 20000)
        idx = rng.choice(n, size=m, replace=False).astype(np.int64)
        val = rng.normal(scale=1 / np.sqrt(m), size=m)
        val[:k] = rng.choice([-1, 1], k) * rng.uniform(0.5, 2, k)
        sk = sa.SparseRecovery(n, k, eps, seed=log2n)
        sk.update(idx, val)
        t_sub = timed(lambda: sk.decode("sublinear"), 5)
        sub_at[log2n] = t_sub
        if last_std is None or last_std[1] < standard_limit:
            t_std = timed(lambda: sk.decode("standard"), 1)
            last_std = (n, t_std)
            std_txt = f"{t_std:.3f}"
        else:
            t_std = last_std[1] * n / last_std[0]
            std_txt = f"~{t_std:.0f} (extrapolated)"
        print(
            f"| 2^{log2n} | {sk.rows} | {sk.bit_rows} | {sk.nbytes} | {t_sub * 1e3:.2f} | {std_txt} | "
            f"{t_std / t_sub:.0f} |",
            flush=True,
        )
    if 20 in sub_at and max_log2n in sub_at:
        print(f"\nsublinear time at n = 2^{max_log2n} / at n = 2^20: {sub_at[max_log2n] / sub_at[20]:.2f}\n")


def throughput_table() -> None:
    n = 2**22
    rng = np.random.default_rng(1)
    x = rng.normal(size=n)
    idx = rng.integers(0, n, size=n).astype(np.int64)
    print("## Update throughput (entries/s), n = 2^22, one thread\n")
    print(
        "| (k, eps) | rows x buckets (+bit rows x bits) | CountSketch dense | SparseRecovery dense | ratio | "
        "CountSketch indexed | SparseRecovery indexed | ratio |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for k, eps in [(1, 0.5), (16, 0.25), (64, 0.1)]:
        sk = sa.SparseRecovery(n, k, eps)
        cs = sa.CountSketch(sk.rows, sk.buckets, dim=n)
        t_cs = timed(lambda: cs.update_rows(0, x), 3)
        t_sr = timed(lambda: sk.update_dense(0, x), 3)
        t_csi = timed(lambda: cs.update(idx, x), 3)
        t_sri = timed(lambda: sk.update(idx, x), 3)
        print(
            f"| ({k}, {eps}) | {sk.rows} x {sk.buckets} (+{sk.bit_rows} x {sk.bits}) | {n / t_cs:.3g} | "
            f"{n / t_sr:.3g} | "
            f"{t_cs / t_sr:.2f} | {n / t_csi:.3g} | {n / t_sri:.3g} | {t_csi / t_sri:.2f} |",
            flush=True,
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--max-log2n", type=int, default=30)
    ap.add_argument("--standard-limit", type=float, default=60.0)
    ap.add_argument("--skip-decode", action="store_true")
    ap.add_argument("--skip-throughput", action="store_true")
    a = ap.parse_args()
    if not a.skip_decode:
        decode_table(a.max_log2n, a.standard_limit)
    if not a.skip_throughput:
        throughput_table()


if __name__ == "__main__":
    main()
