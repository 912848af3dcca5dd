#!/usr/bin/env python3
"""CausalStream's float32 compute path against the float64 one and the PyTorch chunked form (issue 16).

n = 65 536 float32 tokens, d = dv in {32, 64}, Taylor degree 2, one thread for everything
(torch.set_num_threads(1); the stream has no threads inside). Measured side by side in one run,
the variants interleaved round by round, medians of --repeats:

  * CausalStream(compute="float32") and CausalStream(compute="float64") on the same float32 inputs,
    at the default chunk and at 64 and 128 rows;
  * the PyTorch chunked forms of bench/torch_chunked.py (features and direct intra-chunk part,
    chunks of 64, 128 and 256 rows), the best one taken;
  * a float32 GEMM of torch (one thread) with the shape of the stream's state product
    (4096 x t times t x dv), as the rate the products could reach.

A second table runs the same comparison on 2 threads: torch.set_num_threads(2) for the torch
forms and CausalStream(threads=2) for the stream (float32 compute), both interleaved in one run,
with each side's 2-thread / 1-thread scaling from the same run (the load average is printed: on a
shared machine the second thread competes with other work).

The state products' rate is given as 4 t dv flops per token (phi(Q) M and phi(K)^T V, 2 t dv
each) over the whole stream time, so it is a lower bound on the products' own rate (features,
intra-chunk block and normalization are charged to it too).

    python bench/bench_float32.py            # writes bench/out/bench_float32.md
    python bench/bench_float32.py --quick    # n = 8192, 1 repeat (smoke)
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

import streamattn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from torch_chunked import chunked_direct, chunked_features  # noqa: E402

OUT = Path(__file__).resolve().parent / "out" / "bench_float32.md"
TARGET = 2.0  # stream (float32) / best torch chunked


def interleaved(fns: dict, repeats: int) -> dict[str, float]:
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--isa", default=None, help="force an ISA path (streamattn.set_isa); default: the best")
    p.add_argument("--append", action="store_true", help="append the table to --out instead of replacing it")
    args = p.parse_args(argv)
    if args.isa:
        streamattn.set_isa(args.isa)
    n = 8192 if args.quick else 65536
    repeats = 1 if args.quick else args.repeats
    torch.set_num_threads(1)
    isa = streamattn.get_isa()
    lines = [] if args.append else ["# bench/bench_float32.py", ""]
    lines += [
        f"## ISA {isa}",
        "",
        f"streamattn {streamattn.__version__}, ISA {isa} (GEMM kernel float64 and float32: {isa}); torch "
        f"{torch.__version__}, 1 thread; numpy {np.__version__}; {platform.processor() or platform.machine()}; "
        f"{datetime.datetime.now().isoformat(timespec='seconds')}.",
        "",
        f"n = {n:,} float32 tokens, dv = d, Taylor g = 2, one thread each; tokens/s, median of {repeats} "
        "interleaved runs. The torch forms use the full d^2 outer-product features (t = 1 + d + d^2, as "
        "flash-linear-attention's Based); the stream uses the symmetric ones (t = C(d+2, 2)).",
        "",
        "| d | t | stream f32 (chunk) | stream f64 (chunk) | best torch (form, chunk) | f32/torch | f32/f64 "
        "| state products f32 | torch f32 GEMM | fraction |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    ok = True
    two: list[str] = []
    two_detail: list[str] = []
    for d in (32, 64):
        rng = np.random.default_rng(d)
        Q, K, V = (rng.standard_normal((n, d)).astype(np.float32) * 0.5 for _ in range(3))
        tq, tk, tv = (torch.from_numpy(x).unsqueeze(0) for x in (Q, K, V))
        scale = 1.0 / math.sqrt(d)
        t = streamattn.CausalStream(d, degree=2).dim
        fns = {}
        chunks = (32, 64, 128)
        for compute in ("float32", "float64"):
            for c in chunks:

                def run(compute=compute, c=c, threads=1):
                    s = streamattn.CausalStream(d, degree=2, chunk=c, compute=compute, threads=threads)
                    s.update(Q, K, V, return_rows=False)

                fns[f"stream {compute}/{c}"] = run
        torch_fns = {}
        for name, form in (("features", chunked_features), ("direct", chunked_direct)):
            for c in (64, 128, 256):

                def run_t(form=form, c=c):
                    with torch.no_grad():
                        form(tq, tk, tv, scale, "taylor", chunk=c)

                torch_fns[f"torch {name}/{c}"] = run_t
        fns.update(torch_fns)
        A = torch.randn(4096, t, dtype=torch.float32)
        B = torch.randn(t, d, dtype=torch.float32)
        fns["gemm"] = lambda: torch.mm(A, B)
        med = interleaved(fns, repeats)
        # 2 threads: torch.set_num_threads(2) and CausalStream(threads=2), float32, interleaved.
        fns2 = {f"stream2 float32/{c}": (lambda c=c: fns[f"stream float32/{c}"](threads=2)) for c in chunks}
        fns2.update({k.replace("torch", "torch2"): v for k, v in torch_fns.items()})
        load0 = os.getloadavg()[0]
        torch.set_num_threads(2)
        try:
            med2 = interleaved(fns2, repeats)
        finally:
            torch.set_num_threads(1)
        rate2 = {k: n / v for k, v in med2.items()}
        rate = {k: n / v for k, v in med.items() if k != "gemm"}
        gemm_gflops = 2 * 4096 * t * d / med["gemm"] / 1e9

        def best(prefix):
            k = max((k for k in rate if k.startswith(prefix)), key=lambda k: rate[k])
            return k, rate[k]

        k32, r32 = best("stream float32")
        k64, r64 = best("stream float64")
        kt, rt = best("torch")
        prod = 4 * t * d * r32 / 1e9
        ok &= r32 / rt >= TARGET
        lines.append(
            f"| {d} | {t} | {r32 / 1e3:.1f} k ({k32.split('/')[1]}) | {r64 / 1e3:.1f} k ({k64.split('/')[1]}) | "
            f"{rt / 1e3:.1f} k ({kt.split(' ')[1]}) | {r32 / rt:.2f}x | {r32 / r64:.2f}x | {prod:.1f} GFLOP/s | "
            f"{gemm_gflops:.1f} GFLOP/s | {prod / gemm_gflops:.0%} |"
        )
        detail = ", ".join(f"{k} {v / 1e3:.1f} k" for k, v in rate.items())
        lines.append("")
        lines.append(f"All variants at d = {d} (tokens/s): {detail}.")
        lines.append("")
        s2 = max((k for k in rate2 if k.startswith("stream2")), key=lambda k: rate2[k])
        t2 = max((k for k in rate2 if k.startswith("torch2")), key=lambda k: rate2[k])
        two.append(
            f"| {d} | {t} | {rate2[s2] / 1e3:.1f} k ({s2.split('/')[1]}) | {rate2[t2] / 1e3:.1f} k "
            f"({t2.split(' ')[1]}) | **{rate2[s2] / rate2[t2]:.2f}x** | {r32 / rt:.2f}x | {rate2[s2] / r32:.2f}x "
            f"| {rate2[t2] / rt:.2f}x | {load0:.2f} |"
        )
        two_detail.append(
            f"All 2-thread variants at d = {d} (tokens/s): "
            + ", ".join(f"{k} {v / 1e3:.1f} k" for k, v in rate2.items())
            + "."
        )
    lines.append(
        f"Target stream / best torch chunked >= {TARGET:g}x on one thread: {'met' if ok else 'MISSED'} "
        "(figures above; ratios from one run)."
    )
    lines += [
        "",
        f"### 2 threads, ISA {isa}",
        "",
        "The same inputs on 2 threads: torch.set_num_threads(2) for the torch forms, CausalStream(threads=2) "
        "(float32 compute) for the stream, interleaved in one run after the one-thread variants; the best "
        "chunk / form of each side at 2 threads. Scaling: each side's best 2-thread rate over its best "
        "1-thread rate above. Load: the 1-minute load average when the 2-thread runs started (2 logical CPUs).",
        "",
        "| d | t | stream 2 threads (chunk) | best torch 2 threads (form, chunk) | stream / torch, 2 threads "
        "| stream / torch, 1 thread | stream 2/1 | torch 2/1 | load |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        *two,
        "",
        *(x + "\n" for x in two_detail),
    ]
    text = "\n".join(lines) + "\n"
    if not args.quick:
        if args.append:
            with args.out.open("a") as f:
                f.write("\n" + text)
        else:
            args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
