#!/usr/bin/env python3
"""Glue overhead of the torch path (issue 17): Based prefill from (B, T, H, D) float32 torch tensors,
three ways, on the same shapes and threads:

  * bare stream: MultiHeadCausalStream.update on (B*H, T, D) float32 numpy arrays already in the
    stream's head layout (its own time);
  * hand glue: permute/reshape to (B*H, T, D) and .numpy(), the stream, then the rows viewed back
    to (B, T, H, dv) as a contiguous float32 tensor (what a user wrote before the streams took
    tensors);
  * streamattn.torch.parallel_based(q, k, v): tensors in, float32 tensor out, no reshaping, in fla's
    (B, T, H, D) layout (each head's rows strided by H*D) and with head_first=True (B, H, T, D).

    python bench/bench_torch.py [--tokens 4096] [--batch 2] [--heads 8] [--repeats 15] [--fixed-order]
        # writes bench/out/bench_torch.md (--out -: print only)
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import time
from pathlib import Path

import numpy as np
import torch

import streamattn as sa
import streamattn.torch as st

OUT = Path(__file__).resolve().parent / "out" / "bench_torch.md"


def interleaved_seconds(fns, repeats: int, shuffle: bool = True, seed: int = 0) -> list[float]:
    """Median seconds of each function, the functions run in turn (so that a load that comes and goes
    on a shared machine falls on all of them alike), in a new random order every round: in a fixed
    order a function always runs after the same one and pays for what that one left in the caches
    (the hand glue writes ~75 MB; the path run right after it measured up to ~10 % slower)."""
    for fn in fns:
        fn()
    times: list[list[float]] = [[] for _ in fns]
    order = list(range(len(fns)))
    rng = random.Random(seed)
    for _ in range(repeats):
        if shuffle:
            rng.shuffle(order)
        for i in order:
            t0 = time.perf_counter()
            fns[i]()
            times[i].append(time.perf_counter() - t0)
    return [statistics.median(t) for t in times]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=4096)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--feature-dim", type=int, default=16)
    ap.add_argument("--value-dim", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument(
        "--fixed-order", action="store_true", help="run the paths in the same order every round (not shuffled)"
    )
    ap.add_argument("--out", default=str(OUT), help="markdown file to write ('-': print only)")
    args = ap.parse_args()
    B, T, H, D, DV = args.batch, args.tokens, args.heads, args.feature_dim, args.value_dim
    g = torch.Generator().manual_seed(0)
    q, k = (torch.randn(B, T, H, D, generator=g) for _ in range(2))
    v = torch.randn(B, T, H, DV, generator=g)
    heads = [x.permute(0, 2, 1, 3).reshape(B * H, T, -1).numpy() for x in (q, k, v)]

    def stream() -> sa.MultiHeadCausalStream:
        return sa.MultiHeadCausalStream(B * H, B * H, D, DV, degree=2, eps=1e-6)

    def bare() -> None:
        stream().update(*heads)

    def glue() -> torch.Tensor:
        q3, k3, v3 = (x.permute(0, 2, 1, 3).reshape(B * H, T, -1).numpy() for x in (q, k, v))
        out = stream().update(q3, k3, v3)
        return torch.from_numpy(np.asarray(out)).view(B, H, T, DV).transpose(1, 2).float().contiguous()

    def ours() -> torch.Tensor:
        return st.parallel_based(q, k, v)

    qh, kh, vh = (x.transpose(1, 2).contiguous() for x in (q, k, v))

    def ours_head_first() -> torch.Tensor:
        return st.parallel_based(qh, kh, vh, head_first=True)

    a, b = glue(), ours()
    assert b.dtype == torch.float32 and float((a - b).abs().max()) <= 1e-6 * float(a.abs().max())
    t_bare, t_glue, t_ours, t_hf = interleaved_seconds(
        [bare, glue, ours, ours_head_first], args.repeats, shuffle=not args.fixed_order
    )
    isa = sa.get_isa()
    lines = [
        "# Cost of the torch path",
        "",
        f"Based prefill, B = {B}, T = {T}, H = {H}, D = {D}, dv = {DV}, float32 tensors, "
        f"threads = {stream().threads}, medians of {args.repeats} interleaved runs "
        f"({'in a fixed order' if args.fixed_order else 'in a shuffled order each round'}); streamattn "
        f"{sa.__version__}, ISA {isa}, torch {torch.__version__}, {platform.machine()}. "
        "Command: `python bench/bench_torch.py`.",
        "",
        "| path | seconds | / bare stream |",
        "| --- | --- | --- |",
    ]
    for name, t in (
        ("bare stream (numpy, (B·H, T, D) heads layout)", t_bare),
        ("hand glue (reshape, `.numpy()`, back to a float32 tensor)", t_glue),
        ("`parallel_based`, fla's (B, T, H, D)", t_ours),
        ("`parallel_based`, `head_first=True` (B, H, T, D)", t_hf),
    ):
        lines.append(f"| {name} | {t:.3f} | {t / t_bare:.2f} |")
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if args.out != "-":
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
