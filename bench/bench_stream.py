#!/usr/bin/env python3
"""Streaming attention (issue 6), measured side by side in one run: memory vs n, throughput vs exact
attention, KV-cache latency, exact vs sketched state, error vs degree and beta.

Writes markdown tables to stdout and bench/out/bench_stream.md, and figures to bench/out/stream_*.png.

    python bench/bench_stream.py              # default: every section, about 10 minutes on 2 cores
    python bench/bench_stream.py --full       # RSS and KV sweeps to 2^24 with d = 16, throughput to 2^17
                                              # for every method (long: exact O(n^2) dominates)
    python bench/bench_stream.py --quick      # smoke run
    python bench/bench_stream.py --only rss kv   # some sections

Sections
  rss         peak RSS and state bytes of `streamattn run --json` (one subprocess per n) for
              n = 2^14, 2^16, ..., 2^24 at fixed parameters (synthetic input, d = dv = 8, g = 2, 8 probes).
  throughput  CausalStream.update (rows returned) tokens/s vs torch scaled_dot_product_attention
              (is_causal, CPU, when torch imports) and streamattn.exact_attention (causal), float32 inputs,
              n = 2^10 ... 2^17, d in {32, 64}, g in {2, 4}; medians of --repeats runs. A cell whose
              predicted time (from the previous n, linear for the stream, quadratic for exact) exceeds
              --max-seconds is skipped ("-"), except the issue's target cell n = 65536, d = 32, g = 2.
  kv          KVStream.query single-query latency vs keys n = 2^10 ... 2^24 (the state filled
              incrementally) against an exact KV cache (numpy softmax over the cached keys; torch SDPA).
  sketched    exact vs sketched KVStream state (AMS and Gaussian): error and bytes vs s.
  error       max error of the causal stream vs exact softmax attention on q, k on the sphere of
              radius sqrt(beta / c) (so c max|q| max|k| = beta exactly), for g in {2, 4, 6, 8} and
              beta in {0.25, ..., 8}; the Alman-Song bound 2 eps/(1 - eps) |V|_max (vacuous where
              eps >= 1) and the probe certificate next to the true error.
All timings are medians on a shared machine: read the ratios, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
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
TARGET = (65536, 32, 2)  # the throughput target: n, d, g; >= 10x torch SDPA


def median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def g3(x) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if isinstance(x, float) and math.isinf(x):
        return "inf (vacuous)"
    return f"{x:.3g}"


def pow2(n: int) -> str:
    k = int(round(math.log2(n)))
    return f"2^{k}" if 1 << k == n else str(n)


def streamattn_cmd() -> list[str]:
    exe = Path(sys.executable).parent / "streamattn"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "streamattn.cli"]


# --- rss ----------------------------------------------------------------------------------
def bench_rss(args) -> tuple[str, dict]:
    rows, res = [], []
    for k in args.rss_exponents:
        cmd = [*streamattn_cmd(), "run", "--json", "--n", str(1 << k), "--d", str(args.rss_d), "--probes", "8"]
        p = subprocess.run(cmd, capture_output=True, text=True, check=True)
        r = json.loads(p.stdout)
        res.append(r)
        rows.append(
            [
                pow2(r["tokens"]),
                f"{r['seconds']:.1f}",
                f"{r['tokens_per_second']:.3g}",
                r["state_bytes"],
                f"{r['rss_after_import_bytes'] / 2**20:.1f}",
                f"{r['peak_rss_bytes'] / 2**20:.1f}",
                f"{(r['peak_rss_bytes'] - r['rss_after_import_bytes']) / 2**20:.1f}",
                g3(r["certificate"]["max_abs_error"]),
            ]
        )
        print(f"  rss n=2^{k}: {r['seconds']:.1f} s", file=sys.stderr)
    peaks = [r["peak_rss_bytes"] for r in res]
    states = {r["state_bytes"] for r in res}
    cmd = " ".join(["streamattn", "run", "--json", "--n", "N", "--d", str(args.rss_d), "--probes", "8"])
    text = (
        f"### Memory vs n (`{cmd}`, one process per n)\n\n"
        + table(
            [
                "n",
                "seconds",
                "tokens/s",
                "state bytes",
                "RSS after import (MiB)",
                "peak RSS (MiB)",
                "peak - after import (MiB)",
                "certificate max abs err",
            ],
            rows,
        )
        + f"\n\npeak RSS largest/smallest: **{max(peaks) / min(peaks):.3f}**; state bytes identical: "
        f"**{len(states) == 1}** ({', '.join(map(str, sorted(states)))})\n"
    )
    ns = [r["tokens"] for r in res]
    return text, {
        "n": ns,
        "peak": peaks,
        "state": [r["state_bytes"] for r in res],
        "after_import": [r["rss_after_import_bytes"] for r in res],
    }


def plot_rss(data, path):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(data["n"], np.array(data["peak"]) / 2**20, "o-", label="peak RSS (MiB)")
    ax.plot(data["n"], np.array(data["after_import"]) / 2**20, "s--", label="RSS after import (MiB)")
    ax.plot(data["n"], np.array(data["state"]) / 2**20, "^-", label="state bytes (MiB)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("tokens n")
    ax.set_title("streamattn run: memory does not grow with n")
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --- throughput ---------------------------------------------------------------------------
def make_qkv(n: int, d: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    b = math.sqrt(0.5 / math.sqrt(d))  # entries bounded as in `streamattn run` (beta <= 0.5)
    return (
        rng.uniform(-b, b, (n, d)).astype(np.float32),
        rng.uniform(-b, b, (n, d)).astype(np.float32),
        rng.uniform(-1, 1, (n, d)).astype(np.float32),
    )


def run_stream(Q, K, V, d, g, block=8192):
    cs = sa.CausalStream(d, d, degree=g)
    for a in range(0, len(Q), block):
        cs.update(Q[a : a + block], K[a : a + block], V[a : a + block])


def bench_throughput(args) -> tuple[str, dict]:
    results = {}  # (method, d, g, n) -> seconds (None if skipped)
    last: dict[tuple, tuple[int, float]] = {}

    def measure(key_last, n, fn, power, force=False):
        prev = last.get(key_last)
        pred = prev[1] * (n / prev[0]) ** power if prev else 0.0
        if pred > args.max_seconds and not force:
            return None
        reps = args.repeats if pred * args.repeats <= args.max_seconds else 1
        t = median_seconds(fn, reps)
        last[key_last] = (n, t)
        return t

    for d in args.dims:
        for n in args.ns:
            Q, K, V = make_qkv(n, d)
            target = (n, d) == TARGET[:2]
            for g in args.degrees:
                t = sa.plan(n, d, degree=g).t
                if t * d * 8 > args.max_state_bytes:
                    results[("stream", d, g, n)] = None
                    continue
                results[("stream", d, g, n)] = measure(
                    ("stream", d, g), n, lambda: run_stream(Q, K, V, d, g), 1, force=target and g == TARGET[2]
                )
            results[("exact", d, 0, n)] = measure(
                ("exact", d), n, lambda: sa.exact_attention(Q, K, V, causal=True), 2, force=target
            )
            if HAVE_TORCH:
                tq, tk, tv = (torch.from_numpy(x).view(1, 1, n, d) for x in (Q, K, V))

                def sdpa():
                    with torch.no_grad():
                        torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, is_causal=True)

                results[("sdpa", d, 0, n)] = measure(("sdpa", d), n, sdpa, 2, force=target)
            print(f"  throughput d={d} n={pow2(n)} done", file=sys.stderr)

    def tps(key):
        s = results.get(key)
        return None if s is None else key[3] / s

    rows = []
    for d in args.dims:
        for g in args.degrees:
            for n in args.ns:
                st, ex, sd = tps(("stream", d, g, n)), tps(("exact", d, 0, n)), tps(("sdpa", d, 0, n))
                rows.append(
                    [
                        d,
                        g,
                        pow2(n),
                        g3(st),
                        g3(sd),
                        g3(ex),
                        g3(st / sd) if st and sd else "-",
                        g3(st / ex) if st and ex else "-",
                    ]
                )
    cross = []
    for d in args.dims:
        for g in args.degrees:
            for other in (["sdpa"] if HAVE_TORCH else []) + ["exact"]:
                cross.append([d, g, other, crossover(results, d, g, other, args.ns)])
    tn, td, tg = TARGET
    st, sd, ex = tps(("stream", td, tg, tn)), tps(("sdpa", td, 0, tn)), tps(("exact", td, 0, tn))
    threads = torch.get_num_threads() if HAVE_TORCH else 0
    verdict = "-"
    if st and sd:
        verdict = f"{st / sd:.2f}x torch SDPA ({'met' if st / sd >= 10 else 'NOT met'}: target >= 10x)"
    text = (
        f"### Causal throughput (tokens/s; float32 inputs; streamattn one thread, torch {threads} threads)\n\n"
        + table(["d", "g", "n", "CausalStream", "torch SDPA", "exact_attention", "stream/SDPA", "stream/exact"], rows)
        + "\n\nCrossover: the smallest measured n from which CausalStream is faster at every larger measured n"
        ' ("-": never within the measured range)\n\n'
        + table(["d", "g", "against", "crossover n"], cross)
        + f"\n\nTarget n = {tn}, d = {td}, g = {tg}: CausalStream {g3(st)} tokens/s, torch SDPA {g3(sd)}, "
        f"exact_attention {g3(ex)}: **{verdict}**, {g3(st / ex) if st and ex else '-'}x exact_attention.\n"
    )
    return text, {"results": results, "ns": args.ns, "dims": args.dims, "degrees": args.degrees}


def crossover(results, d, g, other, ns):
    best = "-"
    for n in reversed(ns):
        s, o = results.get(("stream", d, g, n)), results.get((other, d, 0, n))
        if s is None or o is None:
            continue
        if s < o:
            best = pow2(n)
        else:
            break
    return best


def plot_throughput(data, path):
    import matplotlib.pyplot as plt

    res, ns = data["results"], data["ns"]
    fig, axes = plt.subplots(1, len(data["dims"]), figsize=(6 * len(data["dims"]), 4), squeeze=False)
    for ax, d in zip(axes[0], data["dims"]):

        def series(key_of):
            xs, ys = [], []
            for n in ns:
                s = res.get(key_of(n))
                if s:
                    xs.append(n)
                    ys.append(n / s)
            return xs, ys

        for g in data["degrees"]:
            ax.plot(*series(lambda n: ("stream", d, g, n)), "o-", label=f"CausalStream g={g}")
        ax.plot(*series(lambda n: ("exact", d, 0, n)), "s--", label="exact_attention")
        if HAVE_TORCH:
            ax.plot(*series(lambda n: ("sdpa", d, 0, n)), "^--", label="torch SDPA (causal)")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("n")
        ax.set_ylabel("tokens/s")
        ax.set_title(f"causal throughput, d = {d}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --- kv latency ---------------------------------------------------------------------------
def bench_kv(args) -> tuple[str, dict]:
    d = args.kv_d
    rng = np.random.default_rng(1)
    b = math.sqrt(0.5 / math.sqrt(d))
    n_max = 1 << max(args.kv_exponents)
    cache_max = 1 << min(max(args.kv_exponents), args.cache_max_exp)
    Kc = np.empty((cache_max, d), np.float32)  # the exact KV cache grows with n; the stream does not
    Vc = np.empty((cache_max, d), np.float32)
    kv = sa.KVStream(d, d, degree=2)
    queries = rng.uniform(-b, b, (256, d)).astype(np.float32)
    c = 1 / math.sqrt(d)
    filled = 0
    rows, data = [], {"n": [], "stream": [], "numpy": [], "sdpa": []}
    for e in sorted(args.kv_exponents):
        n = 1 << e
        while filled < n:
            m = min(1 << 18, n - filled)
            K = rng.uniform(-b, b, (m, d)).astype(np.float32)
            V = rng.uniform(-1, 1, (m, d)).astype(np.float32)
            kv.add(K, V)
            if filled + m <= cache_max:
                Kc[filled : filled + m], Vc[filled : filled + m] = K, V
            filled += m
        for q in queries[:16]:  # warm-up: the add loop above has flushed the caches
            kv.query(q[None, :])
        lat = []
        for q in queries:
            q1 = q[None, :]
            t0 = time.perf_counter()
            kv.query(q1)
            lat.append(time.perf_counter() - t0)
        st = statistics.median(lat)
        npy = sd = None
        if n <= cache_max:
            Kn, Vn = Kc[:n], Vc[:n]

            def exact_np(q):
                s = (Kn @ q) * c
                w = np.exp(s - s.max())
                return (w @ Vn) / w.sum()

            npy = statistics.median(median_seconds(lambda: exact_np(q), 1) for q in queries[: args.kv_queries])
            if HAVE_TORCH:
                tk, tv = torch.from_numpy(Kn).view(1, 1, n, d), torch.from_numpy(Vn).view(1, 1, n, d)

                def sdpa(q):
                    with torch.no_grad():
                        torch.nn.functional.scaled_dot_product_attention(torch.from_numpy(q).view(1, 1, 1, d), tk, tv)

                sd = statistics.median(median_seconds(lambda: sdpa(q), 1) for q in queries[: args.kv_queries])
        rows.append(
            [
                pow2(n),
                f"{st * 1e6:.1f}",
                g3(npy * 1e6) if npy else "-",
                g3(sd * 1e6) if sd else "-",
                kv.nbytes,
                2 * n * d * 4,
                g3(npy / st) if npy else "-",
            ]
        )
        data["n"].append(n)
        data["stream"].append(st)
        data["numpy"].append(npy)
        data["sdpa"].append(sd)
        print(f"  kv n=2^{e} done", file=sys.stderr)
    lo, hi = data["stream"][0], data["stream"][-1]
    text = (
        f"### Single-query latency vs n (d = dv = {d}, g = 2, float32 keys; medians over {len(queries)} "
        f"queries for the stream, {args.kv_queries} for the caches)\n\n"
        + table(
            [
                "n keys",
                "KVStream.query (us)",
                "exact cache, numpy (us)",
                "exact cache, torch SDPA (us)",
                "KVStream state bytes",
                "exact cache bytes (K+V float32)",
                "numpy/stream",
            ],
            rows,
        )
        + f"\n\nKVStream latency at n = {pow2(data['n'][-1])} / at n = {pow2(data['n'][0])}: **{hi / lo:.2f}**"
        + (f"; the exact caches stop at n = {pow2(cache_max)} (--cache-max-exp)" if cache_max < n_max else "")
        + "\n"
    )
    return text, data


def plot_kv(data, path):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(data["n"], np.array(data["stream"]) * 1e6, "o-", label="KVStream.query (constant-size state)")
    for key, lab, m in (("numpy", "exact KV cache (numpy)", "s--"), ("sdpa", "exact KV cache (torch SDPA)", "^--")):
        xs = [n for n, v in zip(data["n"], data[key]) if v]
        ys = [v * 1e6 for v in data[key] if v]
        if xs:
            ax.plot(xs, ys, m, label=lab)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("keys n")
    ax.set_ylabel("latency of one query (us)")
    ax.set_title("decode-step latency")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --- exact vs sketched --------------------------------------------------------------------
def bench_sketched(args) -> tuple[str, dict]:
    n, d = args.sketch_n, 8
    rng = np.random.default_rng(2)
    b = math.sqrt(0.5 / math.sqrt(d))
    K, Q = rng.uniform(-b, b, (n, d)), rng.uniform(-b, b, (64, d))
    V = rng.uniform(-1, 1, (n, d))
    ex = sa.KVStream(d, d)
    t_ex = median_seconds(lambda: sa.KVStream(d, d).add(K, V), 3)
    ex.add(K, V)
    want = ex.query(Q)
    truth = sa.exact_attention(Q, K, V)
    ex_err = np.abs(want - truth).max()
    rows = []
    data = {"s": args.sketch_sizes, "exact_bytes": ex.nbytes, "exact_err": ex_err}
    for kind in ("ams", "gaussian"):
        data[kind] = {"err": [], "bytes": []}
        for s in args.sketch_sizes:
            errs, errs_true, secs = [], [], []
            nbytes = 0
            for seed in range(args.sketch_seeds):
                kv = sa.KVStream(d, d, state="sketched", sketch=kind, sketch_size=s, seed=seed)
                t0 = time.perf_counter()
                kv.add(K, V)
                secs.append(time.perf_counter() - t0)
                out = kv.query(Q)
                errs.append(np.abs(out - want).max())
                errs_true.append(np.abs(out - truth).max())
                nbytes = kv.nbytes
            eps2 = sa.plan(n, d, state="sketched", sketch_size=s).sketch_eps2
            e_med = statistics.median(errs)
            data[kind]["err"].append(e_med)
            data[kind]["bytes"].append(nbytes)
            rows.append(
                [
                    kind,
                    s,
                    nbytes,
                    f"{nbytes / ex.nbytes:.1f}",
                    g3(e_med),
                    g3(statistics.median(errs_true)),
                    g3(eps2),
                    g3(statistics.median(secs) / t_ex),
                ]
            )
        print(f"  sketched {kind} done", file=sys.stderr)
    text = (
        f"### Exact vs sketched KVStream state (n = {n} keys, d = dv = {d}, g = 2, beta <= 0.5; "
        f"median over {args.sketch_seeds} seeds, max over 64 queries)\n\n"
        f"Exact state: {ex.nbytes} bytes, max |exact state - softmax| = {g3(ex_err)} (Taylor error only).\n\n"
        + table(
            [
                "sketch",
                "s",
                "bytes",
                "bytes / exact",
                "max err vs exact state",
                "max err vs softmax",
                "plan eps2 (Frobenius, 99%)",
                "add time / exact add",
            ],
            rows,
        )
        + "\n"
    )
    return text, data


def plot_sketched(data, path):
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    for kind, m in (("ams", "o-"), ("gaussian", "s-")):
        a1.plot(data["s"], data[kind]["err"], m, label=f"sketched ({kind})")
        a2.plot(data["s"], data[kind]["bytes"], m, label=f"sketched ({kind})")
    s = np.array(data["s"], float)
    a1.plot(s, data["ams"]["err"][0] * np.sqrt(s[0] / s), "k:", label="~ 1/sqrt(s)")
    a1.axhline(data["exact_err"], color="gray", ls="--", label="exact state vs softmax")
    a2.axhline(data["exact_bytes"], color="gray", ls="--", label="exact state")
    for ax, yl in ((a1, "max abs error vs exact state"), (a2, "state bytes")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sketch size s")
        ax.set_ylabel(yl)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    a1.set_title("error of the paper's sketched layout")
    a2.set_title("what it costs")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --- error vs degree and beta -------------------------------------------------------------
def sphere(rng, n, d, radius):
    x = rng.normal(size=(n, d))
    return radius * x / np.linalg.norm(x, axis=1, keepdims=True)


def bench_error(args) -> tuple[str, dict]:
    n, d = args.error_n, 8
    c = 1 / math.sqrt(d)
    rows = []
    data = {"betas": args.betas, "degrees": args.error_degrees}
    for g in args.error_degrees:
        data[g] = {"true": [], "bound": [], "cert": []}
    for beta in args.betas:
        rng = np.random.default_rng(3)
        r = math.sqrt(beta / c)
        Q, K = sphere(rng, n, d, r), sphere(rng, n, d, r)
        V = rng.uniform(-1, 1, (n, d))
        vmax = np.abs(V).max()
        truth = sa.exact_attention(Q, K, V, causal=True)
        pos = np.sort(rng.choice(n, 16, replace=False))
        for g in args.error_degrees:
            cs = sa.CausalStream(d, d, degree=g, probes=Q[pos], probe_positions=pos)
            out = cs.update(Q, K, V)
            true = np.abs(out - truth).max()
            cert = cs.certificate()["max_abs_error"]
            true_at_probes = np.abs(out[pos] - truth[pos]).max()
            eps = sa.taylor_error(beta, g)
            bound = 2 * eps / (1 - eps) * vmax if eps < 1 else math.inf
            data[g]["true"].append(true)
            data[g]["bound"].append(bound)
            data[g]["cert"].append(cert)
            rows.append(
                [
                    beta,
                    g,
                    sa.plan(n, d, degree=g).t,
                    g3(eps),
                    g3(bound),
                    g3(true),
                    g3(cert),
                    g3(true_at_probes),
                    "vacuous" if math.isinf(bound) else "yes" if true <= bound else "NO",
                ]
            )
        print(f"  error beta={beta} done", file=sys.stderr)
    text = (
        f"### Error vs degree and beta (causal, n = {n}, d = dv = {d}, c = 1/sqrt(d); q, k on the sphere of "
        "radius sqrt(beta/c); v ~ U[-1, 1]; 16 probes)\n\n"
        + table(
            [
                "beta",
                "g",
                "t",
                "eps(beta, g)",
                "Alman-Song bound",
                "true max abs err",
                "certificate max abs err",
                "true err at the probe rows",
                "bound holds",
            ],
            rows,
        )
        + "\n\nThe certificate equals the true error at its probe rows (same numbers); over all rows the "
        "true maximum is somewhat larger, which is what a 16-row sample can and cannot say.\n"
    )
    return text, data


def plot_error(data, path):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    betas = np.array(data["betas"])
    for i, g in enumerate(data["degrees"]):
        col = f"C{i}"
        ax.plot(betas, data[g]["true"], "o-", color=col, label=f"g={g} true")
        ax.plot(betas, data[g]["cert"], "x:", color=col, label=f"g={g} certificate")
        b = np.array(data[g]["bound"])
        ok = np.isfinite(b)
        ax.plot(betas[ok], b[ok], "--", color=col, alpha=0.6, label=f"g={g} bound")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("beta = c max|q| max|k|")
    ax.set_ylabel("max abs error")
    ax.set_title("error vs degree and beta (bound vacuous where it stops)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --- main ---------------------------------------------------------------------------------
SECTIONS = ["rss", "throughput", "kv", "sketched", "error"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--only", nargs="+", choices=SECTIONS, default=SECTIONS)
    p.add_argument("--full", action="store_true")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--max-seconds", type=float, default=12.0, help="skip a throughput cell predicted longer")
    p.add_argument("--max-state-bytes", type=float, default=64e6, help="skip stream configs with a larger state")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    args.rss_exponents = list(range(14, 25, 2))
    args.rss_d = 8
    args.ns = [1 << k for k in range(10, 18)]
    args.dims, args.degrees = [32, 64], [2, 4]
    args.kv_exponents = list(range(10, 25, 2))
    args.kv_d, args.cache_max_exp, args.kv_queries = 8, 24, 9
    args.sketch_n, args.sketch_sizes, args.sketch_seeds = 1 << 14, [16, 64, 256, 1024, 4096], 5
    args.error_n, args.betas, args.error_degrees = 2048, [0.25, 0.5, 1, 2, 4, 8], [2, 4, 6, 8]
    if args.full:
        args.rss_d, args.kv_d = 16, 16
        args.max_seconds = 120.0
    if args.quick:
        args.rss_exponents = [10, 12]
        args.ns = [1 << 10, 1 << 12]
        args.dims, args.degrees = [32], [2]
        args.kv_exponents = [10, 12]
        args.sketch_n, args.sketch_sizes, args.sketch_seeds = 2048, [16, 64], 2
        args.error_n, args.betas, args.error_degrees = 256, [0.5, 4], [2, 4]
        args.repeats = 1
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    head = (
        f"## bench_stream ({' '.join(sys.argv[1:]) or 'default'}) — {platform.machine()}, "
        f"{os.cpu_count()} cores, streamattn {sa.__version__}, ISA {sa.build_info()['isa_selected']}, "
        f"torch {torch.__version__ if HAVE_TORCH else 'not installed'}\n"
    )
    parts = [head]
    benches = {
        "rss": (bench_rss, plot_rss),
        "throughput": (bench_throughput, plot_throughput),
        "kv": (bench_kv, plot_kv),
        "sketched": (bench_sketched, plot_sketched),
        "error": (bench_error, plot_error),
    }
    for name in SECTIONS:
        if name not in args.only:
            continue
        s0 = time.perf_counter()
        text, data = benches[name][0](args)
        png = args.out / f"stream_{name}.png"
        benches[name][1](data, png)
        text += f"\n![{name}]({png.name}) — section time {time.perf_counter() - s0:.0f} s\n"
        print(text, flush=True)
        parts.append(text)
    parts.append(f"\ntotal {time.perf_counter() - t0:.0f} s\n")
    print(parts[-1])
    suffix = "" if args.only == SECTIONS else "_" + "_".join(args.only)
    (args.out / f"bench_stream{'_quick' if args.quick else ''}{suffix}.md").write_text("\n".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
