#!/usr/bin/env python3
"""Polynomial attention vs exact attention vs torch SDPA (issue 5), measured side by side in one run.

Writes a markdown table to stdout and bench/out/bench_poly.md, and a plot to bench/out/bench_poly.png.

    python bench/bench_poly.py            # default sweep, a few minutes
    python bench/bench_poly.py --full     # n up to 2^16 for every method (long: exact O(n^2) dominates)
    python bench/bench_poly.py --quick    # smoke run

What is measured (all inputs float32, the dtype torch uses; streamattn computes in float64):
  * seconds (median of --repeats runs) of streamattn.poly_attention (degree g), streamattn.exact_attention
    and torch.nn.functional.scaled_dot_product_attention (only when torch imports), causal and not,
    for n from 2^10 up, d in {16, 32, 64}, g in {2, 4}. A measurement whose predicted time exceeds
    --max-seconds is skipped (shown as "-"): the prediction is a flop count at a rate measured first.
  * max |poly - exact| and the guaranteed bound (return_stats) on data with q, k ~ N(0, sigma^2 I),
    sigma = 0.5, v ~ N(0, 1) (beta = c max||q|| max||k|| is reported).
  * the crossover n: the smallest measured n from which poly_attention is faster than torch SDPA
    (and than exact_attention) at every larger measured n.
  * the U2^T V accumulation (PolyPrefixState.absorb) in GFLOP/s (2 n t dv flops) as a fraction of
    (a) an Eigen GEMM of the same shape in this build, (b) an Eigen 1024^3 GEMM, (c) numpy's 1024^3
    float64 GEMM (its BLAS, its threads) — all measured in this run.
streamattn is single-threaded and built for the baseline ISA (no -march); torch and numpy's BLAS use
their own threads and SIMD dispatch. The table header says how many threads torch used.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

import streamattn as sa

try:
    import torch

    HAVE_TORCH = True
except ImportError:  # torch is optional
    HAVE_TORCH = False

OUT = Path(__file__).resolve().parent / "out"


def median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


SIGMA = 0.5  # set by --sigma


def make_data(n: int, d: int, seed: int):
    rng = np.random.default_rng(seed)
    Q = (SIGMA * rng.standard_normal((n, d))).astype(np.float32)
    K = (SIGMA * rng.standard_normal((n, d))).astype(np.float32)
    V = rng.standard_normal((n, d)).astype(np.float32)
    return Q, K, V


class Rates:
    """Flop rates measured up front, to predict (and skip) long measurements."""

    def __init__(self) -> None:
        Q, K, V = make_data(2048, 32, 0)
        t = median_seconds(lambda: sa.exact_attention(Q, K, V), 3)
        self.exact = 4 * 2048 * 2048 * 32 / t
        t = median_seconds(lambda: sa.poly_attention(Q, K, V, 2), 3)
        self.poly = 4 * 2048 * math.comb(34, 2) * 32 / t
        self.torch = None
        if HAVE_TORCH:
            tq, tk, tv = (torch.from_numpy(x)[None, None] for x in (Q, K, V))
            t = median_seconds(lambda: torch.nn.functional.scaled_dot_product_attention(tq, tk, tv), 3)
            self.torch = 4 * 2048 * 2048 * 32 / t

    def predict(self, method: str, n: int, d: int, g: int, causal: bool, chunk: int) -> float:
        if method == "poly":
            t = math.comb(d + g, g)
            flops = 4 * n * t * d + (4 * n * min(chunk, n) * d if causal else 0)
            return flops / self.poly
        flops = 4 * n * n * d / (2 if causal else 1)
        return flops / (self.exact if method == "exact" else self.torch)


def bench_attention(args, rates: Rates):
    rows = []
    for d in args.d:
        for causal in (False, True):
            for n in args.n:
                Q, K, V = make_data(n, d, seed=n + d)
                exact_out = None
                entry = {"d": d, "causal": causal, "n": n}
                if rates.predict("exact", n, d, 0, causal, args.chunk) <= args.max_seconds:
                    reps = 1 if rates.predict("exact", n, d, 0, causal, args.chunk) > 0.5 else args.repeats
                    entry["exact"] = median_seconds(lambda: sa.exact_attention(Q, K, V, causal=causal), reps)
                    exact_out = sa.exact_attention(Q, K, V, causal=causal)
                if HAVE_TORCH and rates.predict("torch", n, d, 0, causal, args.chunk) <= args.max_seconds:
                    tq, tk, tv = (torch.from_numpy(x)[None, None] for x in (Q, K, V))
                    entry["torch"] = median_seconds(
                        lambda: torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, is_causal=causal),
                        args.repeats,
                    )
                for g in args.degrees:
                    e = dict(entry, g=g, t=math.comb(d + g, g))
                    if rates.predict("poly", n, d, g, causal, args.chunk) <= args.max_seconds:
                        reps = 1 if rates.predict("poly", n, d, g, causal, args.chunk) > 0.5 else args.repeats
                        e["poly"] = median_seconds(
                            lambda: sa.poly_attention(Q, K, V, g, causal=causal, chunk=args.chunk), reps
                        )
                        if exact_out is not None:
                            out, st = sa.poly_attention(Q, K, V, g, causal=causal, chunk=args.chunk, return_stats=True)
                            e["err"] = float(np.abs(out - exact_out).max())
                            e["bound"], e["beta"] = st["bound"], st["beta"]
                    rows.append(e)
                    print(
                        f"  d={d} g={g} causal={causal} n={n}: "
                        + ", ".join(f"{k}={e[k]:.4g}" for k in ("poly", "exact", "torch", "err") if k in e),
                        file=sys.stderr,
                    )
    return rows


def crossover(rows, d, g, causal, other):
    """Smallest measured n from which poly is faster than `other` at every larger measured n."""
    pts = [
        (r["n"], r["poly"] < r[other])
        for r in rows
        if r["d"] == d and r["g"] == g and r["causal"] == causal and "poly" in r and other in r
    ]
    if not pts:
        return "-"
    pts.sort()
    best = None
    for n, faster in reversed(pts):
        if not faster:
            break
        best = n
    return f"{best}" if best is not None else f"> {pts[-1][0]}"


def bench_gemm(args):
    rows = []
    A = np.random.default_rng(1).standard_normal((1024, 1024))
    numpy_rate = 2 * 1024**3 / median_seconds(lambda: A @ A, 5)
    eigen_peak = 2 * 1024**3 / sa._core._gemm_seconds(1024, 1024, 1024, 3)
    n = args.gemm_n
    for d in args.d:
        g = 2
        st = sa.PolyPrefixState(d, d, g)
        t = st.dim
        rng = np.random.default_rng(d)
        K, V = rng.standard_normal((n, d)), rng.standard_normal((n, d))
        secs = median_seconds(lambda: st.absorb(K, V), args.repeats)
        rate = 2 * n * t * d / secs
        pass_rows = min(1024, max(32, (16 << 20) // (8 * t)))
        same_shape = 2 * t * pass_rows * d / sa._core._gemm_seconds(t, pass_rows, d, 20)
        rows.append(
            {"d": d, "g": g, "t": t, "n": n, "rate": rate, "same": same_shape, "eigen": eigen_peak, "numpy": numpy_rate}
        )
    return rows


def chunk_sweep(args):
    """Causal poly_attention at one size for several chunk lengths (the intra-chunk part costs O(n chunk d))."""
    n, d, g = args.chunk_sweep_n, 32, 2
    Q, K, V = make_data(n, d, 3)
    out = []
    for chunk in (64, 128, 256, 512):
        out.append(
            (chunk, median_seconds(lambda: sa.poly_attention(Q, K, V, g, causal=True, chunk=chunk), args.repeats))
        )
    return n, d, g, out


def fmt(x, spec=".4f"):
    return "-" if x is None else format(x, spec)


def render(args, rows, gemm_rows, sweep, elapsed):
    lines = []
    torch_desc = (
        f"torch {torch.__version__}, {torch.get_num_threads()} threads" if HAVE_TORCH else "torch not installed"
    )
    lines.append("# Polynomial attention benchmark (bench/bench_poly.py)\n")
    lines.append(
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs; streamattn {sa.__version__} (1 thread, "
        f"baseline ISA); {torch_desc}; numpy {np.__version__}. Inputs float32, q, k ~ N(0, {SIGMA}^2 I), "
        f"v ~ N(0, 1); chunk = {args.chunk}; median of {args.repeats} runs (1 run above 0.5 s). "
        f"Run took {elapsed:.0f} s.\n"
    )
    lines.append("## Seconds and max error vs exact_attention\n")
    lines.append(
        "| d | g | t | causal | n | poly (s) | exact (s) | torch SDPA (s) | poly/torch | max err | bound | beta |"
    )
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        ratio = r["poly"] / r["torch"] if "poly" in r and "torch" in r else None
        lines.append(
            f"| {r['d']} | {r['g']} | {r['t']} | {'yes' if r['causal'] else 'no'} | {r['n']} | "
            f"{fmt(r.get('poly'))} | {fmt(r.get('exact'))} | {fmt(r.get('torch'))} | {fmt(ratio, '.2f')} | "
            f"{fmt(r.get('err'), '.2e')} | {fmt(r.get('bound'), '.2e')} | {fmt(r.get('beta'), '.2f')} |"
        )
    lines.append("\n## Crossover n (poly faster from this measured n on)\n")
    lines.append("| d | g | causal | vs torch SDPA | vs exact_attention |")
    lines.append("|---|---|---|---|---|")
    for d in args.d:
        for g in args.degrees:
            for causal in (False, True):
                lines.append(
                    f"| {d} | {g} | {'yes' if causal else 'no'} | {crossover(rows, d, g, causal, 'torch')} | "
                    f"{crossover(rows, d, g, causal, 'exact')} |"
                )
    lines.append("\n## U2^T V accumulation (PolyPrefixState.absorb, float64) vs GEMM measured in this run\n")
    lines.append(
        "| d = dv | g | t | n | absorb GFLOP/s | Eigen GEMM same shape | Eigen 1024^3 | numpy 1024^3 | "
        "fraction of same-shape | of Eigen peak | of numpy |"
    )
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in gemm_rows:
        lines.append(
            f"| {r['d']} | {r['g']} | {r['t']} | {r['n']} | {r['rate'] / 1e9:.2f} | {r['same'] / 1e9:.2f} | "
            f"{r['eigen'] / 1e9:.2f} | {r['numpy'] / 1e9:.2f} | {r['rate'] / r['same']:.0%} | "
            f"{r['rate'] / r['eigen']:.0%} | {r['rate'] / r['numpy']:.0%} |"
        )
    n, d, g, sw = sweep
    lines.append(f"\n## Causal poly_attention vs chunk length (n = {n}, d = {d}, g = {g})\n")
    lines.append("| chunk | seconds |")
    lines.append("|---|---|")
    for chunk, s in sw:
        lines.append(f"| {chunk} | {s:.4f} |")
    return "\n".join(lines) + "\n"


def plot(args, rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(args.d), figsize=(5 * len(args.d), 8), squeeze=False)
    for j, d in enumerate(args.d):
        for i, causal in enumerate((False, True)):
            ax = axes[i][j]
            base = [r for r in rows if r["d"] == d and r["causal"] == causal and r["g"] == args.degrees[0]]
            for key, label in (("exact", "exact_attention"), ("torch", "torch SDPA")):
                pts = [(r["n"], r[key]) for r in base if key in r]
                if pts:
                    ax.loglog(*zip(*pts), marker="o", label=label)
            for g in args.degrees:
                pts = [
                    (r["n"], r["poly"])
                    for r in rows
                    if r["d"] == d and r["causal"] == causal and r["g"] == g and "poly" in r
                ]
                if pts:
                    ax.loglog(*zip(*pts), marker="s", label=f"poly_attention g={g}")
            ax.set_title(f"d = {d}, {'causal' if causal else 'non-causal'}")
            ax.set_xlabel("n")
            ax.set_ylabel("seconds")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--full", action="store_true", help="n up to 2^16 for every method, longer time limit")
    p.add_argument("--quick", action="store_true", help="a smoke run (small n, one d)")
    p.add_argument("--d", type=int, nargs="+", default=[16, 32, 64])
    p.add_argument("--degrees", type=int, nargs="+", default=[2, 4])
    p.add_argument("--n", type=int, nargs="+", default=None, help="default 2^10, 2^12, ..., 2^16")
    p.add_argument("--chunk", type=int, default=256)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument(
        "--max-seconds",
        type=float,
        default=None,
        help="skip single measurements predicted to take longer (default 4, --full 60)",
    )
    p.add_argument("--gemm-n", type=int, default=1 << 15)
    p.add_argument("--chunk-sweep-n", type=int, default=8192)
    p.add_argument("--sigma", type=float, default=0.5, help="q, k ~ N(0, sigma^2 I)")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    global SIGMA
    SIGMA = args.sigma
    if args.n is None:
        args.n = [1 << k for k in (range(10, 17) if not args.quick else (10, 11, 12))]
    if args.quick:
        args.d, args.repeats, args.gemm_n, args.chunk_sweep_n = [32], 1, 1 << 12, 2048
    if args.max_seconds is None:
        args.max_seconds = 60.0 if args.full else 4.0
    args.out.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    rates = Rates()
    rows = bench_attention(args, rates)
    gemm_rows = bench_gemm(args)
    sweep = chunk_sweep(args)
    text = render(args, rows, gemm_rows, sweep, time.perf_counter() - t0)
    print(text)
    (args.out / "bench_poly.md").write_text(text)
    plot(args, rows, args.out / "bench_poly.png")
    print(f"wrote {args.out / 'bench_poly.md'} and {args.out / 'bench_poly.png'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
