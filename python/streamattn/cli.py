"""The ``streamattn`` command line."""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from . import CountSketch, __version__, build_info


def _peak_rss_bytes() -> int:
    try:
        import resource

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024
    except Exception:  # pragma: no cover - non-POSIX
        return -1


def _cmd_sketch_demo(args: argparse.Namespace) -> int:
    """Streams a synthetic n-vector with a few heavy coordinates through a CountSketch."""
    rng = np.random.default_rng(args.seed)
    n, block = args.n, 1 << 16
    heavy = np.sort(rng.choice(n, size=min(8, n), replace=False))
    cs = CountSketch(args.rows, args.buckets, seed=args.seed, dim=n)
    t0 = time.perf_counter()
    for start in range(0, n, block):
        x = rng.normal(scale=1e-3, size=min(block, n - start))
        hit = heavy[(heavy >= start) & (heavy < start + len(x))]
        x[hit - start] = 100.0
        cs.update_rows(start, x)
    seconds = time.perf_counter() - t0
    est = cs.estimate(heavy)
    report = {
        "tokens": n,
        "seconds": seconds,
        "tokens_per_second": n / seconds,
        "state_bytes": cs.nbytes,
        "peak_rss_bytes": _peak_rss_bytes(),
        "heavy_max_abs_error": float(np.max(np.abs(est - 100.0))),
        "isa": build_info()["isa_selected"],
    }
    if args.json:
        print(json.dumps(report))
    else:
        for k, v in report.items():
            print(f"{k:>20}: {v}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="streamattn", description=__doc__)
    parser.add_argument("--version", action="version", version=f"streamattn {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("sketch-demo", help="stream a synthetic vector through a CountSketch")
    p.add_argument("--n", type=int, default=1 << 22)
    p.add_argument("--rows", type=int, default=7)
    p.add_argument("--buckets", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_sketch_demo)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError) as e:
        print(f"streamattn: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
