#!/usr/bin/env python3
"""Based and power attention (issue 9): streamattn's causal stream vs the PyTorch chunked form
and flash-linear-attention's reference, measured side by side in one run, 2 threads.

    python bench/bench_models.py           # n = 2^10 .. 2^16, decode after 2^10 and 2^20 tokens
    python bench/bench_models.py --quick   # smoke run

Writes a markdown table to stdout and bench/out/bench_models.md.

Prefill (tokens/s, float32 inputs, one layer of --heads heads, causal, with outputs):
  * streamattn.MultiHeadCausalStream.update (C++ threads over heads; float64 state; float32
    inputs run the float32 compute path, docs/design.md §2.5);
  * torch chunked, features inside the chunk / kernel of the scores inside the chunk
    (bench/torch_chunked.py, full d^2 outer-product features as flash-linear-attention's Based);
  * fla.ops.based.naive.naive_parallel_based (O(n^2) memory; skipped beyond --naive-max).
Shapes: Based (feature dim 16, value dim 64, Taylor degree 2, eps 1e-6) and power p = 2 at d = 64
(value dim 64). streamattn uses 2 threads; torch runs at 1 and 2 threads and the faster counts.
Decode: seconds per token of CausalStream.step after 2^10 and 2^20 tokens (one head), next to a
KV-cache softmax step (torch scaled_dot_product_attention of one query on the n cached keys).
GEMM peak: torch float32, Eigen float64 and streamattn's own float64 GEMM kernel (the one the
streams run on), 1024^3, on 2 threads in the same run; prefill's useful flops per token
(4 t dv for the state's two products, chunk (d + dv) for the causal half of the intra-chunk
scores and their product with V, per head) as a fraction of the rate of streamattn's kernel on
the state product (chunk x t)(t x dv) alone, measured in the same run.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import torch

import streamattn as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from torch_chunked import chunked_direct, chunked_features  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"
THREADS = 2


def seconds(fn, repeats: int, warmup: bool = False) -> float:
    if warmup:  # first calls pay one-time costs (torch's kernel selection, page faults)
        fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def naive_based():
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from fla.ops.based.naive import naive_parallel_based
        return naive_parallel_based
    except ImportError:
        return None


SHAPES = [("Based", 16, 64, "taylor", 1e-6), ("power p=2", 64, 64, "power", 0.0)]


def prefill_rows(args, naive):
    rows = []
    for name, d, dv, kernel, eps in SHAPES:
        for e in range(args.min_log2, args.max_log2 + 1):
            n = 1 << e
            rng = np.random.default_rng(e)
            H = args.heads
            q = rng.standard_normal((H, n, d)).astype(np.float32)
            k = rng.standard_normal((H, n, d)).astype(np.float32)
            v = rng.standard_normal((H, n, dv)).astype(np.float32)
            c = 1 / math.sqrt(d)
            # A warm-up call, then the median of --repeats: the first call at a size pays one-time
            # costs (fresh pages for the output, torch's kernel selection) that a single cold run
            # would count on one side more than the other.
            reps, wu = args.repeats, True

            def ours():
                sa.MultiHeadCausalStream(H, H, d, dv, kernel=kernel, eps=eps, threads=THREADS).update(q, k, v)

            tq, tk, tv = (torch.from_numpy(x) for x in (q, k, v))
            r = {"shape": name, "n": n}
            r["streamattn"] = seconds(ours, reps, wu)
            # torch at 1 and 2 threads, the faster counts: on a loaded machine torch's OpenMP
            # workers at 2 threads can be far slower than one thread (spinning, oversubscription).
            with torch.inference_mode():
                for th in (1, THREADS):
                    torch.set_num_threads(th)
                    for key, fn in (("torch features", chunked_features), ("torch direct", chunked_direct)):
                        t = seconds(lambda: fn(tq, tk, tv, c, kernel, eps=eps), reps, wu)
                        r[key] = min(r.get(key, math.inf), t)
                    if naive is not None and kernel == "taylor" and n <= args.naive_max:
                        t = seconds(lambda: naive(tq[None], tk[None], tv[None]), reps, wu)
                        r["fla naive"] = min(r.get("fla naive", math.inf), t)
                torch.set_num_threads(THREADS)
            tdim = sa.TaylorFeatures(d, 2, kernel=kernel).dim
            C = sa.CausalStream(d, dv, degree=2, kernel=kernel).chunk  # the default, chosen by t
            r["flops"] = H * n * (4 * tdim * dv + C * (d + dv))
            rows.append(r)
            print(name, n, {k2: (f"{v2:.4f}" if isinstance(v2, float) else v2) for k2, v2 in r.items()}, flush=True)
    return rows


def decode_rows(args):
    rows = []
    d, dv = 16, 64
    for e in (10, args.decode_log2):
        n = 1 << e
        rng = np.random.default_rng(100 + e)
        cs = sa.CausalStream(d, dv, degree=2, eps=1e-6)
        block = 1 << 16
        for a in range(0, n, block):
            m = min(block, n - a)
            kk = rng.standard_normal((m, d)).astype(np.float32)
            cs.prefill(kk, rng.standard_normal((m, dv)).astype(np.float32))
        qv = rng.standard_normal(d).astype(np.float32)
        vv = rng.standard_normal(dv).astype(np.float32)
        steps = 2000
        # Median of 7: a step is microseconds, and one slow pass of the machine moves a median of 3.
        t_step = seconds(lambda: [cs.step(qv, qv, vv) for _ in range(steps)], 7, True) / steps
        # KV-cache softmax decode at the same n: one query over n cached keys (one head).
        Kc = torch.randn(1, 1, n, d)
        Vc = torch.randn(1, 1, n, dv)
        tq = torch.randn(1, 1, 1, d)
        with torch.inference_mode():
            torch.set_num_threads(1)  # one query: threads only add synchronization
            reps = 200 if n <= 1 << 12 else 20
            t_sdpa = (
                seconds(
                    # F821: the lambda runs here, before `del Kc, Vc` below (pyflakes reads it as after)
                    lambda: [torch.nn.functional.scaled_dot_product_attention(tq, Kc, Vc) for _ in range(reps)],  # noqa: F821
                    3,
                    True,
                )
                / reps
            )
        rows.append({"n": n, "step": t_step, "sdpa": t_sdpa, "state": cs.nbytes, "cache": (d + dv) * 4 * n})
        print("decode", rows[-1], flush=True)
        del Kc, Vc
    return rows


def concurrent_rate(m, k, n, impl, repeats):
    """FLOP/s of THREADS concurrent float64 GEMMs (m x k)(k x n), one per thread."""
    box = []

    def run():
        box.append(sa._core._gemm_seconds(m, k, n, repeats, impl))

    ths = [threading.Thread(target=run) for _ in range(THREADS)]
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    return THREADS * 2 * m * k * n / max(box)


def gemm_peaks():
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    t_torch = seconds(lambda: a @ b, 10)
    out = {"torch_f32": 2 * 1024**3 / t_torch}
    # float64 1024^3 on Eigen (the baseline-ISA build) and on the streams' own per-ISA kernel,
    # on one thread and on THREADS threads (one GEMM per thread, run concurrently).
    for impl in ("eigen", "streamattn"):
        out[f"{impl}_f64_1"] = 2 * 1024**3 / sa._core._gemm_seconds(1024, 1024, 1024, 3, impl)
        out[f"{impl}_f64"] = concurrent_rate(1024, 1024, 1024, impl, 3)
    # The peak that prefill is compared with: streamattn's kernel on the stream's own state
    # product, phi(Q_c) M = (chunk x t)(t x dv), per shape (small operands in cache: the best
    # rate this kernel reaches on this work).
    for name, d, dv, kernel, _ in SHAPES:
        t = sa.TaylorFeatures(d, 2, kernel=kernel).dim
        chunk = sa.CausalStream(d, dv, degree=2, kernel=kernel).chunk  # the default, chosen by t
        out[f"state {name}"] = concurrent_rate(chunk, t, dv, "streamattn", 200)
    return out


def render(args, pre, dec, peak, elapsed) -> str:
    L = [
        f"# bench_models: Based and power attention, prefill and decode ({THREADS} threads, {args.heads} heads)",
        "",
        f"torch {torch.__version__} (each torch figure is the faster of 1 and {THREADS} threads; decode SDPA on 1); "
        f"streamattn {sa.__version__} on {THREADS} threads; {os.cpu_count()} CPUs visible, load average "
        f"{os.getloadavg()[0]:.1f} at the end; total {elapsed:.0f} s. Command: `python bench/bench_models.py`.",
        "",
        "## Prefill, tokens/s (float32 inputs; all heads of one layer per token)",
        "",
        "| shape | n | streamattn | torch chunked (features) | torch chunked (direct) | fla naive_parallel_based | "
        "streamattn / best torch | streamattn GFLOP/s | of the kernel's rate on the state product |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in pre:
        n = r["n"]
        best = min(r["torch features"], r["torch direct"])
        naive = f"{n / r['fla naive']:,.0f}" if "fla naive" in r else "-"
        gf = r["flops"] / r["streamattn"] / 1e9
        L.append(
            f"| {r['shape']} | 2^{int(math.log2(n))} | {n / r['streamattn']:,.0f} | {n / r['torch features']:,.0f} | "
            f"{n / r['torch direct']:,.0f} | {naive} | {best / r['streamattn']:.2f}x | {gf:.1f} | "
            f"{gf * 1e9 / peak['state ' + r['shape']]:.0%} |"
        )
    L += [
        "",
        f"GEMM peaks measured in this run (1024^3): torch float32 {peak['torch_f32'] / 1e9:.1f} GFLOP/s; "
        f"Eigen float64 {peak['eigen_f64_1'] / 1e9:.1f} GFLOP/s on one thread, "
        f"{peak['eigen_f64'] / 1e9:.1f} on {THREADS}; streamattn's float64 kernel "
        f"({sa.build_info()['gemm_kernel']}) {peak['streamattn_f64_1'] / 1e9:.1f} GFLOP/s on one thread, "
        f"{peak['streamattn_f64'] / 1e9:.1f} on {THREADS}; the same kernel on the state product "
        f"(chunk x t)(t x dv), {THREADS} threads: "
        + ", ".join(f"{nm} {peak['state ' + nm] / 1e9:.1f} GFLOP/s" for nm, *_ in SHAPES)
        + ".",
        "",
        "## Decode: one token (Based head: feature dim 16, value dim 64)",
        "",
        "| tokens before | CausalStream.step | torch SDPA on a KV cache | step state bytes | KV cache bytes (fp32) |",
        "|---|---|---|---|---|",
    ]
    for r in dec:
        L.append(
            f"| 2^{int(math.log2(r['n']))} | {r['step'] * 1e6:.1f} us | {r['sdpa'] * 1e6:.1f} us | {r['state']:,} | "
            f"{r['cache']:,} |"
        )
    if len(dec) == 2:
        L.append("")
        L.append(
            f"step latency after 2^{int(math.log2(dec[1]['n']))} / after 2^10 tokens: "
            f"{dec[1]['step'] / dec[0]['step']:.2f}x."
        )
    return "\n".join(L) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--min-log2", type=int, default=10)
    p.add_argument("--max-log2", type=int, default=16)
    p.add_argument("--decode-log2", type=int, default=20)
    p.add_argument("--naive-max", type=int, default=1 << 13)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    if args.quick:
        args.max_log2, args.decode_log2, args.repeats = 11, 12, 1
    torch.set_num_threads(THREADS)
    t0 = time.perf_counter()
    peak = gemm_peaks()
    pre = prefill_rows(args, naive_based())
    dec = decode_rows(args)
    text = render(args, pre, dec, peak, time.perf_counter() - t0)
    OUT.mkdir(exist_ok=True)
    (OUT / "bench_models.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
