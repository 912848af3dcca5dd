#!/usr/bin/env python3
"""streamattn.dask against the in-process stream, measured side by side in one run.

(a) causal_attention: tokens/s of one sequence of n tokens (default 2^22) split into P row blocks,
    on a process-based dask.distributed LocalCluster of 1 and of 2 worker processes (one thread
    each), against one in-process CausalStream fed the same blocks in order. Each block's rows are
    generated from a seeded generator inside the task that needs them (the in-process loop
    generates them the same way), so no side ever holds the n rows; the outputs are reduced to
    their column sums, which are compared (1e-9 relative) as a correctness check. Reported: the
    median time of each variant, tokens/s, the speed-up over the in-process stream and the
    scaling efficiency, and the cost of the parallel algorithm's extra stages measured in-process
    on one block: the block's segment (its keys absorbed once more) and one composition of the
    scan (t x dv), times P.
(b) sketch: CountSketch of an n x c integer-valued float32 array (generated per block the same
    way) through streamattn.dask.sketch against update_rows block by block in-process; integer
    values make every counter exact, so the tables must be equal bit for bit.

The repeats of the variants are interleaved so machine noise hits them alike; every figure is a
median. The machines are shared: ratios are the figures to quote.

    python bench/bench_dask.py               # n = 2^22, writes bench/out/bench_dask.md
    python bench/bench_dask.py --quick       # n = 2^18, a smoke test (same output file)
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

import streamattn

D, DV, DEGREE, SEED = 16, 16, 2, 20261203


# Inputs: a seeded base of BASE rows repeated to the block's length. The work of every variant does
# not depend on the values, and repeating keeps the generation (timed on every side) far below
# the attention's cost.
BASE = 4096


def rows(seed: int, r: int, cols: int) -> np.ndarray:
    base = np.random.default_rng(seed).uniform(-0.25, 0.25, size=(min(r, BASE), cols)).astype(np.float32)
    return np.resize(base, (r, cols))


def int_rows(seed: int, r: int, cols: int) -> np.ndarray:
    """Integer-valued rows: every partial sum of a sketch counter is exact, whatever the order."""
    base = np.random.default_rng(seed).integers(-128, 128, size=(min(r, BASE), cols)).astype(np.float32)
    return np.resize(base, (r, cols))


def gate_rows(seed: int, r: int) -> np.ndarray:
    base = -np.random.default_rng(seed).uniform(0.0, 1e-3, size=min(r, BASE))
    return np.resize(base, r)


def block_sizes(n: int, parts: int) -> list[int]:
    base = n // parts
    return [base + (1 if i < n % parts else 0) for i in range(parts)]


def lazy(da, dask, seed: int, chunks: list[int], cols: int, make: Callable[[int, int, int], np.ndarray] = rows):
    blocks = [
        da.from_delayed(dask.delayed(make, pure=True)(seed * 100003 + i, r, cols), (r, cols), np.float32)
        for i, r in enumerate(chunks)
    ]
    return da.concatenate(blocks)


def lazy_gate(da, dask, seed: int, chunks: list[int]):
    blocks = [
        da.from_delayed(dask.delayed(gate_rows, pure=True)(seed * 100003 + i, r), (r,), np.float64)
        for i, r in enumerate(chunks)
    ]
    return da.concatenate(blocks)


def in_process(chunks: list[int], gated: bool) -> np.ndarray:
    s = streamattn.CausalStream(D, DV, degree=DEGREE)
    total = np.zeros(DV)
    for i, r in enumerate(chunks):
        q, k, v = (rows(seed * 100003 + i, r, c) for seed, c in ((1, D), (2, D), (3, DV)))
        g = gate_rows(4 * 100003 + i, r) if gated else None
        total += s.update(q, k, v, log_gate=g).sum(axis=0)
    return total


def generation_only(chunks: list[int], gated: bool) -> float:
    t0 = time.perf_counter()
    for i, r in enumerate(chunks):
        for seed, c in ((1, D), (2, D), (3, DV)):
            rows(seed * 100003 + i, r, c)
        if gated:
            gate_rows(4 * 100003 + i, r)
    return time.perf_counter() - t0


def seconds(fn: Callable[[], object]) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def stage_costs(block: int, parts: int, gated: bool, repeats: int) -> dict[str, float]:
    """In-process cost of one block's rows, its segment and one scan step (medians)."""
    q, k, v = (rows(seed, block, c) for seed, c in ((1, D), (2, D), (3, DV)))
    g = gate_rows(4, block) if gated else None
    seg_t, rows_t, then_t = [], [], []
    prefix = streamattn.CausalSegment(D, DV, degree=DEGREE)
    for _ in range(repeats):
        seg = streamattn.CausalSegment(D, DV, degree=DEGREE)
        seg_t.append(seconds(lambda: seg.absorb(k, v, log_gate=g))[0])
        s = streamattn.CausalStream(D, DV, degree=DEGREE)
        rows_t.append(seconds(lambda: s.update(q, k, v, log_gate=g))[0])
        then_t.append(seconds(lambda: prefix.then(seg))[0])
    return {
        "rows": statistics.median(rows_t),
        "segment": statistics.median(seg_t),
        "then": statistics.median(then_t),
    }


def environment(args: argparse.Namespace) -> str:
    import dask
    import distributed

    info = streamattn.build_info()
    cpu = platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    return (
        f"`python bench/bench_dask.py{' --quick' if args.quick else ''}`: streamattn {info['version']}, "
        f"ISA path `{streamattn.get_isa()}` (available {info['isas_available']}); dask {dask.__version__}, "
        f"distributed {distributed.__version__}; numpy {np.__version__}; Python {platform.python_version()}; "
        f"{cpu}, {os.cpu_count()} CPUs (shared with other jobs); "
        f"{datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1 << 22, help="tokens (default 2^22)")
    parser.add_argument("--parts", type=int, default=16, help="row blocks P (default 16)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per variant (median; >= 3)")
    parser.add_argument("--quick", action="store_true", help="n = 2^18: a smoke test")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out" / "bench_dask.md")
    args = parser.parse_args(argv)
    if args.repeats < 3:
        parser.error("--repeats must be >= 3 (figures are medians)")
    if args.quick:
        args.n = min(args.n, 1 << 18)
    try:
        import dask
        import dask.array as da
        import distributed

        import streamattn.dask as sd
    except ImportError as e:
        print(f"bench_dask.py needs the dask extra (pip install '.[dask]'): {e}", file=sys.stderr)
        return 2

    chunks = block_sizes(args.n, args.parts)
    lines = [
        "# Dask: causal attention and sketches over worker processes",
        "",
        environment(args),
        "",
        f"One sequence of n = {args.n} tokens (2^{args.n.bit_length() - 1}) in P = {args.parts} row blocks; "
        f"d = {D}, dv = {DV}, Taylor degree {DEGREE} (t = {streamattn.CausalStream(D, DV).dim}), float32 inputs, "
        f"chunk 32. Times are medians of {args.repeats} interleaved runs, including the generation of the inputs "
        "(the same seeded generator on every side).",
        "",
    ]
    print(lines[2], flush=True)

    results: dict[tuple[str, bool], list[float]] = {}
    task_seconds: dict[tuple[int, bool], list[float]] = {}
    load_before = os.getloadavg()[0]
    sketch_times: dict[str, list[float]] = {}
    sums: dict[tuple[str, bool], np.ndarray] = {}
    clusters = {}
    try:
        for workers in (1, 2):
            cl = distributed.LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0"
            )
            clusters[workers] = (cl, distributed.Client(cl, set_as_default=False))

        def run_dask(workers: int, gated: bool) -> np.ndarray:
            client = clusters[workers][1]
            q, k, v = (lazy(da, dask, seed, chunks, c) for seed, c in ((1, D), (2, D), (3, DV)))
            g = lazy_gate(da, dask, 4, chunks) if gated else None
            out = sd.causal_attention(q, k, v, g, degree=DEGREE)
            with distributed.get_task_stream(client=client) as ts:
                total = client.compute(out.sum(axis=0)).result()
            busy = sum(ss["stop"] - ss["start"] for e in ts.data for ss in e["startstops"] if ss["action"] == "compute")
            task_seconds.setdefault((workers, gated), []).append(busy)
            return total

        def sketch_dask(workers: int):
            client = clusters[workers][1]
            x = lazy(da, dask, 5, chunks, D, int_rows)
            like = streamattn.CountSketch(rows=5, buckets=1024, seed=1, columns=D)
            return client.compute(sd.sketch(x, like, compute=False)).result()

        def sketch_local():
            cs = streamattn.CountSketch(rows=5, buckets=1024, seed=1, columns=D)
            start = 0
            for i, r in enumerate(chunks):
                cs.update_rows(start, int_rows(5 * 100003 + i, r, D))
                start += r
            return cs

        variants: list[tuple[str, Callable[[bool], np.ndarray]]] = [
            ("in-process CausalStream", lambda gated: in_process(chunks, gated)),
            ("dask, 1 worker process", lambda gated: run_dask(1, gated)),
            ("dask, 2 worker processes", lambda gated: run_dask(2, gated)),
        ]
        # Warm-up: imports and first-call allocations in every process.
        small = block_sizes(4096, 4)
        for workers in (1, 2):
            c = clusters[workers][1]
            c.compute(
                sd.causal_attention(*(lazy(da, dask, s, small, cc) for s, cc in ((1, D), (2, D), (3, DV)))).sum()
            ).result()
        for rep in range(args.repeats):
            for gated in (False, True):
                for name, fn in variants:
                    t, out = seconds(lambda: fn(gated))
                    results.setdefault((name, gated), []).append(t)
                    sums[(name, gated)] = np.asarray(out)
                    print(f"  run {rep + 1}: {name}, {'gated' if gated else 'ungated'}: {t:.2f} s", flush=True)
            for name, fn2 in (
                ("in-process update_rows", sketch_local),
                ("dask.sketch, 1 worker process", lambda: sketch_dask(1)),
                ("dask.sketch, 2 worker processes", lambda: sketch_dask(2)),
            ):
                t, sk = seconds(fn2)
                sketch_times.setdefault(name, []).append(t)
                if name == "in-process update_rows":
                    ref_table = sk.table
                elif not np.array_equal(sk.table, ref_table):
                    print(f"FAILED: {name} table differs from the in-process sketch", file=sys.stderr)
                    return 1
                print(f"  run {rep + 1}: {name}: {t:.2f} s", flush=True)
    finally:
        for cl, c in clusters.values():
            c.close()
            cl.close()

    for gated in (False, True):
        ref = sums[("in-process CausalStream", gated)]
        for name, _ in variants:
            err = float(np.max(np.abs(sums[(name, gated)] - ref)) / np.max(np.abs(ref)))
            if err > 1e-9:
                print(f"FAILED: {name} differs from the in-process stream by {err:.2e} (relative)", file=sys.stderr)
                return 1

    lines += [
        "## causal_attention",
        "",
        f"Load average of the machine (1 min) before and after the runs: {load_before:.1f} and "
        f"{os.getloadavg()[0]:.1f} (2 CPUs). Task time: the sum of the compute times of every task "
        "(all workers), i.e. the work done, whatever the parallelism.",
        "",
        "| variant | gating | median time (s) | tokens/s | speed-up vs in-process | efficiency per process "
        "| task time (s) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for gated in (False, True):
        base = statistics.median(results[("in-process CausalStream", gated)])
        for workers, (name, _) in zip((0, 1, 2), variants):
            t = statistics.median(results[(name, gated)])
            busy = f"{statistics.median(task_seconds[(workers, gated)]):.2f}" if workers else "-"
            lines.append(
                f"| {name} | {'log_gate' if gated else 'none'} | {t:.2f} | {args.n / t:,.0f} | {base / t:.2f}× "
                f"| {base / t / max(workers, 1):.0%} | {busy} |"
            )
    gen = statistics.median(generation_only(chunks, True) for _ in range(args.repeats))
    costs = stage_costs(chunks[0], args.parts, True, max(args.repeats, 5))
    lines += [
        "",
        f"Input generation alone (in-process, gated inputs): {gen:.2f} s of each run. "
        f"Per block of {chunks[0]} rows, in-process and gated: the rows (CausalStream.update) "
        f"{costs['rows'] * 1e3:.1f} ms, the block's segment (CausalSegment.absorb, the extra work of the "
        f"parallel algorithm) {costs['segment'] * 1e3:.1f} ms ({costs['segment'] / costs['rows']:.0%} of the rows), "
        f"one scan step (then, t × dv) {costs['then'] * 1e6:.0f} µs; the scan's {args.parts - 1} steps are "
        f"{(args.parts - 1) * costs['then'] / (args.parts * costs['rows']):.2%} of the in-process work.",
        "",
        "## sketch (CountSketch, 5 rows × 1024 buckets, 16 integer-valued float32 columns)",
        "",
        "| variant | median time (s) | rows/s | speed-up vs in-process |",
        "|---|---:|---:|---:|",
    ]
    base = statistics.median(sketch_times["in-process update_rows"])
    for name, ts in sketch_times.items():
        t = statistics.median(ts)
        lines.append(f"| {name} | {t:.2f} | {args.n / t:,.0f} | {base / t:.2f}× |")
    lines += ["", "Every sketch table equals the in-process one bit for bit; the sums of the outputs agree to 1e-9."]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
