#!/usr/bin/env python3
"""Threads inside one CausalStream: 2 threads against 1 (issue 16).

n = 65 536 tokens, d = dv = 64, Taylor degree 2 (t = 2 145 features), float32 inputs on the
float32 compute path and float64 inputs on the float64 path, the default chunk (chosen by t: 64
here), 32 and 128.
CausalStream(threads=1) and CausalStream(threads=2) are timed in turn round by round (interleaved),
medians of --repeats; the rows of both are checked bit-identical. The load average of the machine
is printed with the table: on a shared machine the second thread competes with other work.

    python bench/bench_threads.py            # writes bench/out/bench_threads.md
    python bench/bench_threads.py --quick    # n = 8192, 1 repeat (smoke)
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

import streamattn

OUT = Path(__file__).resolve().parent / "out" / "bench_threads.md"
TARGET = 1.7  # 2 threads / 1 thread, d = 64


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
                outs = {}
                for _ in range(repeats):
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
                rows.append(
                    f"| {d} | {t} | {np.dtype(dtype).name} | {label} | {n / m1 / 1e3:.1f} k | {n / m2 / 1e3:.1f} k "
                    f"| **{ratio:.2f}x** | {'yes' if same else 'NO'} |"
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
        "| d | t | dtype | chunk | 1 thread | 2 threads | 2 / 1 | same bits |",
        "|---|---:|---|---:|---:|---:|---:|---|",
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
