#!/usr/bin/env python3
"""The chunk size of CausalStream by shape: tokens/s for chunk 16 .. 256 (issue 16's chunk rule).

The causal stream computes each chunk of `chunk` rows through the state (two products of
chunk x t x dv) and inside the chunk directly (chunk^2 x (d + dv)); t = C(d + g, g) grows fast with
d, so the best chunk could depend on (t, dv, ISA). This bench times `CausalStream.update` over
n tokens for each chunk, shape and input dtype (float32 inputs take the float32 compute path),
all chunks of a shape interleaved round by round, medians of --repeats, and reports how far the
default chunk is from the best one. One thread is the default of a stream and the case the rule
is for; --threads 2 adds the 2-thread rates for comparison (a stream's results do not depend on
its thread count, so the default chunk cannot: it is the same for every thread count).

    python bench/bench_chunk.py                  # writes bench/out/bench_chunk.md
    python bench/bench_chunk.py --isa avx2 --append
    python bench/bench_chunk.py --quick          # n = 4096, 1 repeat (smoke)
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

OUT = Path(__file__).resolve().parent / "out" / "bench_chunk.md"
SHAPES = [(8, 64), (16, 16), (16, 64), (32, 32), (64, 64)]  # (d, dv); (16, 64) is Based's head
CHUNKS = [16, 32, 64, 128, 256]


def rates(d: int, dv: int, dtype, threads: int, n: int, repeats: int) -> dict[int, float]:
    rng = np.random.default_rng(d * 1000 + dv)
    Q, K = (rng.uniform(-0.5, 0.5, (n, d)).astype(dtype) for _ in range(2))
    V = rng.standard_normal((n, dv)).astype(dtype)
    times: dict[int, list[float]] = {c: [] for c in CHUNKS}
    for _ in range(repeats):
        for c in CHUNKS:
            s = streamattn.CausalStream(d, dv, degree=2, chunk=c, threads=threads)
            t0 = time.perf_counter()
            s.update(Q, K, V)
            times[c].append(time.perf_counter() - t0)
    return {c: n / statistics.median(v) for c, v in times.items()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--isa", default=None, help="force an ISA path (streamattn.set_isa); default: the best")
    p.add_argument("--append", action="store_true", help="append the table to --out instead of replacing it")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    if args.isa:
        streamattn.set_isa(args.isa)
    n = 4096 if args.quick else 32768
    repeats = 1 if args.quick else args.repeats
    isa = streamattn.get_isa()
    load0 = os.getloadavg()[0]
    rows = []
    worst = {th: 1.0 for th in args.threads}
    for d, dv in SHAPES:
        t = streamattn.CausalStream(d, dv, degree=2).dim
        default = streamattn.CausalStream(d, dv, degree=2).chunk  # chosen by t
        for dtype in (np.float32, np.float64):
            for th in args.threads:
                r = rates(d, dv, dtype, th, n, repeats)
                best = max(r, key=lambda c: r[c])
                share = r[default] / r[best]
                worst[th] = min(worst[th], share)
                cells = " | ".join(
                    (f"**{r[c] / 1e3:,.0f} k**" if c == best else f"{r[c] / 1e3:,.0f} k") for c in CHUNKS
                )
                rows.append(
                    f"| {d} | {dv} | {t} | {np.dtype(dtype).name} | {th} | {cells} | {best} | {default} | {share:.2f} |"
                )
                print(rows[-1], flush=True)
    load1 = os.getloadavg()[0]
    lines = [] if args.append else ["# bench/bench_chunk.py", ""]
    lines += [
        f"## ISA {isa}",
        "",
        f"streamattn {streamattn.__version__}, ISA {isa}; numpy {np.__version__}; "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs; "
        f"{datetime.datetime.now().isoformat(timespec='seconds')}. Load average (1 min) {load0:.2f} before "
        f"and {load1:.2f} after the run.",
        "",
        f"n = {n:,} tokens in one `update`, Taylor g = 2, compute = the inputs' dtype; tokens/s by chunk, "
        f"median of {repeats} interleaved runs, the best in bold; last columns: the default chunk "
        "(chosen by t) and its rate as a share of the best.",
        "",
        "| d | dv | t | dtype | threads | "
        + " | ".join(f"chunk {c}" for c in CHUNKS)
        + " | best | default | default / best |",
        "|---:|---:|---:|---|---:|" + "---:|" * len(CHUNKS) + "---:|---:|---:|",
        *rows,
        "",
        "Worst default / best over the shapes: "
        + ", ".join(f"{worst[th]:.2f} on {th} thread{'s' if th > 1 else ''}" for th in args.threads)
        + ".",
        "",
    ]
    text = "\n".join(lines)
    if not args.quick:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        if args.append and args.out.exists():
            args.out.write_text(args.out.read_text() + "\n" + text)
        else:
            args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
