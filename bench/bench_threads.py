#!/usr/bin/env python3
"""Threads inside one CausalStream: 2 threads against 1 (issue 16).

n = 65 536 tokens, d = dv = 64, Taylor degree 2 (t = 2 145 features), float32 inputs on the
float32 compute path and float64 inputs on the float64 path, the default chunk (chosen by t: 64
here), 32 and 128.
CausalStream(threads=1) and CausalStream(threads=2) are timed in turn round by round (interleaved),
medians of --repeats; the rows of both are checked bit-identical. The load average of the machine
is printed with the table: on a shared machine the second thread competes with other work.

The ceiling, in the same rounds at the default chunk: two threads=1 streams side by side (two
Python threads, each its own stream over the same inputs; update() releases the GIL), their wall
time against one stream's: 2 x t(1 stream) / t(2 side by side). That is what the second core adds
to this very work with nothing shared and no hand-off, on this machine at that minute; one stream
split over 2 threads cannot expect more. "of ceiling" = (2 / 1) / ceiling.

    python bench/bench_threads.py            # writes bench/out/bench_threads.md
    python bench/bench_threads.py --quick    # n = 8192, 1 repeat (smoke)
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import threading
import time
from pathlib import Path

import numpy as np

import streamattn

OUT = Path(__file__).resolve().parent / "out" / "bench_threads.md"
TARGET = 1.7  # 2 threads / 1 thread, d = 64


def side_by_side(d: int, chunk: int, Q, K, V) -> float:
    """Wall seconds of two threads=1 streams updating at once, one per Python thread."""
    streams = [streamattn.CausalStream(d, degree=2, chunk=chunk, threads=1) for _ in range(2)]
    workers = [threading.Thread(target=s.update, args=(Q, K, V)) for s in streams]
    t0 = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return time.perf_counter() - t0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--d", type=int, nargs="+", default=[64])
    args = p.parse_args(argv)
    n = 8192 if args.quick else 65536
    repeats = 1 if args.quick else args.repeats
    isa = streamattn.get_isa()
    load0 = os.getloadavg()
    rows = []
    ok = True
    for d in args.d:
        rng = np.random.default_rng(d)
        base = [rng.standard_normal((n, d)) * 0.5 for _ in range(3)]
        t = streamattn.CausalStream(d, degree=2).dim
        for dtype in (np.float32, np.float64):
            Q, K, V = (x.astype(dtype) for x in base)
            for chunk in (0, 32, 128, "prefill"):
                times: dict[int, list[float]] = {1: [], 2: []}
                pair: list[float] = []
                outs = {}
                for _ in range(repeats):
                    if chunk == 0:
                        pair.append(side_by_side(d, chunk, Q, K, V))
                    for threads in (1, 2):
                        if chunk == "prefill":
                            s = streamattn.CausalStream(d, degree=2, threads=threads)
                            t0 = time.perf_counter()
                            s.prefill(K, V)
                            times[threads].append(time.perf_counter() - t0)
                            outs[threads] = s.numerator_state
                            continue
                        s = streamattn.CausalStream(d, degree=2, chunk=chunk, threads=threads)
                        t0 = time.perf_counter()
                        outs[threads] = s.update(Q, K, V)
                        times[threads].append(time.perf_counter() - t0)
                same = np.array_equal(outs[1], outs[2])
                m1, m2 = statistics.median(times[1]), statistics.median(times[2])
                ratio = m1 / m2
                if d == 64 and chunk == 0:
                    ok &= ratio >= TARGET
                label = f"default ({s.chunk})" if chunk == 0 else chunk
                top = 2 * m1 / statistics.median(pair) if pair else None  # the machine's ceiling
                ceiling = f"{top:.2f}x" if top else "–"
                share = f"{ratio / top:.0%}" if top else "–"
                rows.append(
                    f"| {d} | {t} | {np.dtype(dtype).name} | {label} | {n / m1 / 1e3:.1f} k | {n / m2 / 1e3:.1f} k "
                    f"| **{ratio:.2f}x** | {ceiling} | {share} | {'yes' if same else 'NO'} |"
                )
                print(rows[-1], flush=True)
    load1 = os.getloadavg()
    lines = [
        "# bench/bench_threads.py",
        "",
        f"## ISA {isa}",
        "",
        f"streamattn {streamattn.__version__}, ISA {isa}; numpy {np.__version__}; "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs; "
        f"{datetime.datetime.now().isoformat(timespec='seconds')}. Load average (1 min) "
        f"{load0[0]:.2f} before and {load1[0]:.2f} after the run.",
        "",
        f"n = {n:,} tokens, dv = d, Taylor g = 2, compute = the inputs' dtype; tokens/s, median of {repeats} "
        "interleaved runs; rows of 1 and 2 threads compared bit for bit. chunk = prefill: `prefill(K, V)` "
        "(keys only, passes of up to 1024 rows, the state compared bit for bit), for the split's ceiling.",
        "",
        "Ceiling (default chunk): two threads=1 streams side by side, 2 x t(1) / t(2 side by side), in the "
        "same rounds; of ceiling = (2 / 1) / ceiling.",
        "",
        "| d | t | dtype | chunk | 1 thread | 2 threads | 2 / 1 | ceiling | of ceiling | same bits |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---|",
        *rows,
        "",
        f"Target 2 threads / 1 thread >= {TARGET:g}x at d = 64, default chunk: {'met' if ok else 'MISSED'} "
        "(ratios from one run).",
    ]
    text = "\n".join(lines) + "\n"
    if not args.quick:
        args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
