"""The ``streamattn`` command line.

``streamattn run`` streams a long input (a seeded synthetic generator, or .npy files opened
memory-mapped) through a CausalStream or a KVStream in memory that does not depend on the number
of tokens, and reports the plan, throughput, state bytes, peak RSS and the probe certificate.
``streamattn plan`` prints the plan of a run alone.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from . import CausalStream, Certificate, KVStream, Plan, SparseRecoveryPlan, __version__, taylor_error
from ._plan import plan as make_plan

if TYPE_CHECKING:
    from typing import NoReturn

    from tqdm import tqdm

EXIT_USAGE = 2


class CliError(Exception):
    """A user error: printed on stderr, exit code 2."""


def _peak_rss_bytes() -> int:
    """High-water mark of this process's resident set.

    Linux: VmHWM of /proc/self/status, which belongs to this process's own address space
    (ru_maxrss survives exec, so a child of a large parent would report the parent's size).
    Elsewhere ru_maxrss (KiB on Linux, bytes on macOS).
    """
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource
    except ImportError:  # pragma: no cover - non-POSIX
        return -1
    rss = int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    return rss if sys.platform == "darwin" else rss * 1024


# --- inputs ---------------------------------------------------------------------------------
class SyntheticSource:
    """Seeded bounded-entry rows, generated tile by tile: rows(a, b) never depends on the block size.

    q and k entries are uniform in [-B, B] with B = sqrt(beta / (scale * d)), so every score obeys
    |scale * q.k| <= scale * max||q|| * max||k|| <= scale * d * B^2 = beta (the construction's beta,
    an upper bound the data nearly reaches); v entries are uniform in [-1, 1], so |V|_max <= 1.
    Tile i (TILE rows) comes from the generator seeded (seed, i), so any row range can be
    regenerated, which is how probe queries are read ahead.
    """

    TILE = 4096

    def __init__(self, n: int, d: int, dv: int, scale: float, beta: float, seed: int) -> None:
        self.n, self.d, self.dv, self.seed = n, d, dv, seed
        self.bound = math.sqrt(beta / (scale * d))
        self.beta = beta
        self._cache: tuple[int, tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None

    def _tile(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._cache is not None and self._cache[0] == i:
            return self._cache[1]
        rows = min(self.TILE, self.n - i * self.TILE)
        rng = np.random.default_rng([self.seed, i])
        b = self.bound
        t = (
            rng.uniform(-b, b, size=(rows, self.d)),
            rng.uniform(-b, b, size=(rows, self.d)),
            rng.uniform(-1.0, 1.0, size=(rows, self.dv)),
        )
        self._cache = (i, t)
        return t

    def _rows(self, which: int, a: int, b: int) -> np.ndarray:
        parts = []
        for i in range(a // self.TILE, (b - 1) // self.TILE + 1):
            lo = i * self.TILE
            parts.append(self._tile(i)[which][max(a, lo) - lo : min(b, lo + self.TILE) - lo])
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def q(self, a: int, b: int) -> np.ndarray:
        return self._rows(0, a, b)

    def k(self, a: int, b: int) -> np.ndarray:
        return self._rows(1, a, b)

    def v(self, a: int, b: int) -> np.ndarray:
        return self._rows(2, a, b)

    def q_at(self, positions: np.ndarray) -> np.ndarray:
        return np.stack([self.q(int(p), int(p) + 1)[0] for p in positions]) if len(positions) else np.zeros((0, self.d))

    def describe(self) -> str:
        return f"synthetic (seed {self.seed}; q, k ~ U[-{self.bound:.4g}, {self.bound:.4g}]^d, v ~ U[-1, 1]^dv)"


def _open_npy(path: str, name: str) -> np.ndarray:
    p = Path(path)
    if not p.is_file():
        raise CliError(f"--{name.lower()}-file {path}: no such file")
    try:
        a = np.load(p, mmap_mode="r", allow_pickle=False)
    except Exception as e:  # numpy raises ValueError/OSError/UnpicklingError for non-.npy files
        raise CliError(f"--{name.lower()}-file {path}: not a readable .npy file ({e})") from None
    if not isinstance(a, np.ndarray):
        raise CliError(f"--{name.lower()}-file {path}: expected one .npy array, not an .npz archive")
    if a.ndim != 2:
        raise CliError(f"--{name.lower()}-file {path}: {name} must be 2-D (rows x columns), got shape {a.shape}")
    if a.dtype not in (np.float32, np.float64):
        raise CliError(
            f"--{name.lower()}-file {path}: dtype {a.dtype} not supported; save {name} as float32 or float64"
        )
    return a


class NpySource:
    """Q, K, V from .npy files opened memory-mapped; rows are read block by block."""

    def __init__(self, q: str, k: str, v: str, mode: str) -> None:
        self.paths = (q, k, v)
        self.Q, self.K, self.V = _open_npy(q, "Q"), _open_npy(k, "K"), _open_npy(v, "V")
        if self.Q.shape[1] != self.K.shape[1]:
            raise CliError(
                f"Q has {self.Q.shape[1]} columns but K has {self.K.shape[1]}: queries and keys need the same d"
            )
        if self.K.shape[0] != self.V.shape[0]:
            raise CliError(f"K has {self.K.shape[0]} rows but V has {self.V.shape[0]}: one value row per key")
        if mode == "causal" and self.Q.shape[0] != self.K.shape[0]:
            raise CliError(
                f"causal mode needs one query per key: Q has {self.Q.shape[0]} rows, K has {self.K.shape[0]} "
                "(use --mode keys-first for cross attention)"
            )
        self.d, self.dv = self.Q.shape[1], self.V.shape[1]

    @staticmethod
    def _block(a: np.ndarray, lo: int, hi: int) -> np.ndarray:
        return np.asarray(a[lo:hi])  # a view of the map: only these rows are paged in

    def q(self, a: int, b: int) -> np.ndarray:
        return self._block(self.Q, a, b)

    def k(self, a: int, b: int) -> np.ndarray:
        return self._block(self.K, a, b)

    def v(self, a: int, b: int) -> np.ndarray:
        return self._block(self.V, a, b)

    def q_at(self, positions: np.ndarray) -> np.ndarray:
        return np.array(self.Q[np.asarray(positions, dtype=np.int64)], dtype=np.float64).reshape(-1, self.d)

    def max_row_norm(self, which: str, block: int, advance: Callable[[int], object] | None = None) -> float:
        a = self.Q if which == "Q" else self.K
        m = 0.0
        for lo in range(0, a.shape[0], block):
            x = np.asarray(a[lo : lo + block], dtype=np.float64)
            if x.size:
                m = max(m, float(np.sqrt(np.max(np.einsum("ij,ij->i", x, x)))))
            if advance is not None:
                advance(len(x))
        return m

    def describe(self) -> str:
        return "npy (memory-mapped: Q={}, K={}, V={})".format(*self.paths)


def _blocks(n: int, block: int) -> Iterator[tuple[int, int]]:
    for a in range(0, n, block):
        yield a, min(n, a + block)


def _call_block(fn: Callable[[], Any], a: int, b: int) -> Any:
    """Runs one block; a ValueError naming a row of the block (e.g. NaN) names the input's row."""
    try:
        return fn()
    except ValueError as e:
        msg = re.sub(r"\brow (\d+)", lambda m: f"row {a + int(m.group(1))}", str(e))
        raise CliError(f"in input rows [{a}, {b}): {msg}") from None


# --- numbers for humans ----------------------------------------------------------------------
def _num(x: float) -> str:
    """A float for a human: 4 significant digits (the JSON report keeps full precision)."""
    return f"{x:.4g}"


def _short(x: float) -> str:
    """The shortest text of x when it is short (0.3, 1e-06, 1.00001), else 4 significant digits."""
    r = repr(x)
    digits = r.split("e")[0].lstrip("-").replace(".", "").strip("0")
    return r if len(digits) <= 6 else _num(x)


# A float written with 15+ significant digits: the core writes its messages at precision 17, so
# --beta 0.3 comes back as 0.29999999999999999.
_LONG_FLOAT = re.compile(r"(?<![\w.])-?(?=(?:\d\.?){15})\d+\.\d+(?:[eE][+-]?\d+)?(?![\w.])")


def _human(text: str) -> str:
    """Text for a human: the 17-digit floats of the core's messages shortened."""
    return _LONG_FLOAT.sub(lambda m: _short(float(m.group(0))), text)


# --- run ------------------------------------------------------------------------------------
def _json_float(x: Any) -> Any:
    if isinstance(x, (float, np.floating)):
        x = float(x)
        return x if math.isfinite(x) else None
    return x


def _certificate_summary(cert: Certificate) -> dict[str, Any]:
    return {
        "probes": int(cert["probes"]),
        "evaluated": int(cert["evaluated"]),
        "max_abs_error": _json_float(cert["max_abs_error"]),
        "mean_abs_error": _json_float(cert["mean_abs_error"]),
        "max_rel_error": _json_float(cert["max_rel_error"]),
        "positions": [int(p) for p in cert["positions"]],
    }


def _stderr_is_tty() -> bool:
    isatty = getattr(sys.stderr, "isatty", None)
    try:
        return bool(isatty is not None and isatty())
    except (ValueError, OSError):  # a closed or detached stream
        return False


def _show_progress(args: argparse.Namespace) -> bool:
    """The bar goes to stderr: always in the text report; with --json only when stderr is a
    terminal (stdout stays one JSON object, and a script's captured stderr stays empty)."""
    if args.no_progress:
        return False
    return not args.json or _stderr_is_tty()


def _terminal_has_width() -> bool:
    """False for a terminal that reports 0 columns (a pty nobody sized), where tqdm's dynamic
    width would draw nothing at all."""
    try:
        return os.get_terminal_size(sys.stderr.fileno()).columns > 0
    except (AttributeError, ValueError, OSError):  # not a terminal, or no file descriptor (io.UnsupportedOperation)
        return True


def _progress(args: argparse.Namespace, total: int, desc: str, unit: str = "tok") -> tqdm[NoReturn]:
    from tqdm import tqdm

    sized = _terminal_has_width()
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        unit_scale=True,
        file=sys.stderr,
        disable=not _show_progress(args),
        dynamic_ncols=sized,
        ncols=None if sized else 80,
        leave=True,
    )


def _resolve(args: argparse.Namespace) -> tuple[SyntheticSource | NpySource, dict[str, Any]]:
    """Validates the options, opens the input, estimates beta; returns (source, facts)."""
    if args.block < 1:
        raise CliError(f"--block must be >= 1, got {args.block}")
    if args.probes < 0:
        raise CliError(f"--probes must be >= 0, got {args.probes}")
    if args.state == "sketched" and args.mode != "keys-first":
        raise CliError("--state sketched is the keys-first (KVStream) layout: add --mode keys-first")
    if args.sketch_size is not None and args.state != "sketched":
        raise CliError("--sketch-size needs --state sketched")
    if args.eps1 is not None and args.k is None:
        raise CliError("--eps1 needs --k (the sparsity of the output columns)")
    if args.degree is not None and args.eps is not None:
        raise CliError("give --degree or --eps (which chooses the degree), not both")
    if args.eps is not None and not 0 < args.eps < 1:
        raise CliError(f"--eps must be in (0, 1), got {args.eps}")
    if args.beta is not None and not args.beta > 0:
        raise CliError(f"--beta must be > 0, got {args.beta}")
    files = [args.q, args.k_file, args.v]
    src: SyntheticSource | NpySource
    if any(files) and not all(files):
        raise CliError("--q-file, --k-file and --v-file go together: give all three .npy files or none")
    if all(files):
        src = NpySource(args.q, args.k_file, args.v, args.mode)
        for name, given, have in (("--d", args.d, src.d), ("--dv", args.dv, src.dv)):
            if given is not None and given != have:
                raise CliError(f"{name} {given} disagrees with the files ({have}); leave it out")
        n_keys = src.K.shape[0]
        n_q = src.Q.shape[0]
        if args.n is not None:
            if args.n < 1 or args.n > min(n_keys, n_q):
                raise CliError(f"--n {args.n}: the files hold {n_keys} keys and {n_q} queries")
            n_keys = n_q = args.n
        d, dv = src.d, src.dv
        scale = args.scale if args.scale is not None else 1 / math.sqrt(d)
        if args.beta is not None:
            beta, beta_source = args.beta, "given (--beta)"
        else:
            with _progress(args, src.Q.shape[0] + src.K.shape[0], "beta pre-pass", unit="row") as bar:
                beta = (
                    scale
                    * src.max_row_norm("Q", args.block, bar.update)
                    * src.max_row_norm("K", args.block, bar.update)
                )
            beta_source = "measured: scale * max||q|| * max||k|| over the files (a read-only pre-pass)"
    else:
        n_keys = n_q = args.n if args.n is not None else 1 << 20
        d = args.d if args.d is not None else 16
        dv = args.dv if args.dv is not None else d
        if n_keys < 1 or d < 1 or dv < 1:
            raise CliError("--n, --d and --dv must be >= 1")
        scale = args.scale if args.scale is not None else 1 / math.sqrt(d)
        beta = args.beta if args.beta is not None else 0.5
        beta_source = "synthetic: entries bounded so that scale * max||q|| * max||k|| <= beta"
        _check_scale_and_seed(args)
        src = SyntheticSource(n_keys, d, dv, scale, beta, args.seed)
    _check_scale_and_seed(args)
    return src, dict(n=n_keys, n_queries=n_q, d=d, dv=dv, scale=scale, beta=beta, beta_source=beta_source)


def _plan_for(args: argparse.Namespace, f: dict[str, Any]) -> tuple[Plan, Any]:
    k, eps1 = args.k, args.eps1
    if k is not None and eps1 is None:
        eps1 = 0.25
    p = make_plan(
        f["n_queries"],
        f["d"],
        f["dv"],
        k=k,
        eps1=eps1,
        delta=args.delta,
        beta=f["beta"],
        degree=args.degree,
        state=args.state,
        eps=args.eps,
        sketch=args.sketch,
        sketch_size=args.sketch_size,
        chunk=args.chunk or 0,
    )
    if args.eps is not None and not (p.taylor_eps is not None and p.taylor_eps <= args.eps):
        raise CliError(
            f"--eps {args.eps} is out of reach at beta = {f['beta']:.4g}: even degree 8 only reaches "
            f"eps(beta, 8) = {taylor_error(f['beta'], 8):.3g}. Lower beta (normalize q and k, or a smaller --scale) "
            "or give --degree and read the certificate"
        )
    return p, eps1


def _make_stream(
    args: argparse.Namespace,
    f: dict[str, Any],
    p: Plan,
    n: int,
    n_q: int,
    probes: np.ndarray | None,
    positions: np.ndarray,
    out_sketch: tuple[int, float] | None,
) -> CausalStream | KVStream:
    try:
        if args.mode == "causal":
            return CausalStream(
                f["d"],
                f["dv"],
                degree=p.degree,
                scale=f["scale"],
                chunk=args.chunk or 0,
                probes=probes,
                probe_positions=positions if probes is not None else None,
                output_sketch=out_sketch,
                n=n if out_sketch else None,
                seed=args.seed,
                delta=args.delta,
            )
        return KVStream(
            f["d"],
            f["dv"],
            degree=p.degree,
            scale=f["scale"],
            state=args.state,
            sketch=args.sketch,
            sketch_size=cast(int, p.sketch_size) if args.state == "sketched" else 256,
            seed=args.seed,
            probes=probes,
            output_sketch=out_sketch,
            n=n_q if out_sketch else None,
            delta=args.delta,
        )
    except ValueError as e:
        raise CliError(str(e)) from None


def _run(args: argparse.Namespace) -> int:
    rss_after_import = _peak_rss_bytes()
    src, f = _resolve(args)
    p, eps1 = _plan_for(args, f)
    n, n_q, d, dv, g = f["n"], f["n_queries"], f["d"], f["dv"], p.degree
    block = args.block
    out_sketch = (args.k, eps1) if args.k is not None else None

    # Probe queries, read ahead at seeded positions: causal probes stand at their own position
    # (they see keys 0..pos), keys-first probes see every key.
    pr = np.random.default_rng([args.seed, 0x9E3779B9])
    p_count = min(args.probes, n_q)
    positions = np.sort(pr.choice(n_q, size=p_count, replace=False)) if p_count else np.zeros(0, np.int64)
    probes = src.q_at(positions) if p_count else None

    if not args.json:
        print(_human(str(p)))
        print(f"  input            {src.describe()}")
        print(f"  beta             {_num(f['beta'])} ({f['beta_source']})")
        print(f"  mode             {args.mode}, {n} tokens in blocks of {block}, {p_count} probes")
        print()
        sys.stdout.flush()

    # The state alone (no probes, no output sketch), measured on a bare twin built and dropped before
    # the stream itself, so that the report can say what the rest of stream.nbytes is.
    state_only = _make_stream(args, f, p, n, n_q, None, positions, None).nbytes
    stream = _make_stream(args, f, p, n, n_q, probes, positions, out_sketch)

    # Output rows are computed in every run (that is the work measured); they are kept only when
    # --out names a .npy file, written block by block through a memory map.
    out = None
    if args.out:
        try:
            out = np.lib.format.open_memmap(args.out, mode="w+", dtype=np.float64, shape=(n_q, dv))
        except OSError as e:
            raise CliError(f"--out {args.out}: cannot write ({e})") from None

    phases: dict[str, float] = {}
    t0 = time.perf_counter()
    # The lambdas below see this iteration's blocks (B023 notwithstanding): _call_block calls them at once.
    if args.mode == "causal":
        with _progress(args, n, "tokens") as bar:
            for a, b in _blocks(n, block):
                Q, K, V = src.q(a, b), src.k(a, b), src.v(a, b)
                rows = _call_block(
                    lambda: cast(CausalStream, stream).update(Q, K, V, return_rows=out is not None),  # noqa: B023
                    a,
                    b,
                )
                if out is not None:
                    out[a:b] = rows
                bar.update(b - a)
    else:
        with _progress(args, n, "keys") as bar:
            for a, b in _blocks(n, block):
                K, V = src.k(a, b), src.v(a, b)
                _call_block(lambda: cast(KVStream, stream).add(K, V), a, b)  # noqa: B023
                bar.update(b - a)
        phases["keys_seconds"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        with _progress(args, n_q, "queries") as bar:
            for a, b in _blocks(n_q, block):
                Q = src.q(a, b)
                rows = _call_block(lambda: cast(KVStream, stream).query(Q), a, b)  # noqa: B023
                if out is not None:
                    out[a:b] = rows
                bar.update(b - a)
        phases["queries_seconds"] = time.perf_counter() - t1
    seconds = time.perf_counter() - t0

    report: dict[str, Any] = {
        "command": "run",
        "version": __version__,
        "mode": args.mode,
        "state": args.state if args.mode == "keys-first" else "exact",
        "input": "npy" if isinstance(src, NpySource) else "synthetic",
        "tokens": int(n),
        "queries": int(n_q),
        "d": int(d),
        "dv": int(dv),
        "degree": int(g),
        "t": int(stream.dim),
        "block": int(block),
        "seed": int(args.seed),
        "beta": float(f["beta"]),
        "beta_source": f["beta_source"],
        "seconds": seconds,
        "tokens_per_second": n / seconds if seconds > 0 else None,
    }
    if args.mode == "keys-first":
        report["keys_per_second"] = n / phases["keys_seconds"] if phases["keys_seconds"] > 0 else None
        report["queries_per_second"] = n_q / phases["queries_seconds"] if phases["queries_seconds"] > 0 else None
        report.update(phases)
    if out is not None:
        out.flush()
        del out
        report["out"] = str(args.out)
    # state_bytes is everything the stream holds; the plan's "state" is the first part alone.
    total = int(stream.nbytes)
    sketch_bytes = int(cast(SparseRecoveryPlan, p.output_sketch)["nbytes"]) if out_sketch else 0
    report["state_bytes"] = total
    report["state_bytes_breakdown"] = {
        "state": int(state_only),
        "probes": total - int(state_only) - sketch_bytes,
        "output_sketch": sketch_bytes,
    }
    blob = stream.to_bytes()
    report["serialized_bytes"] = len(blob)
    if args.save_state:
        try:
            Path(args.save_state).write_bytes(blob)
        except OSError as e:
            raise CliError(f"--save-state {args.save_state}: cannot write ({e})") from None
        report["state_saved_to"] = str(args.save_state)
    del blob

    if out_sketch:
        t2 = time.perf_counter()
        cols = stream.sparse_columns(args.decode)
        dec = time.perf_counter() - t2
        report["sparse_columns"] = {
            "k": int(args.k),
            "eps1": float(eps1),
            "method": args.decode,
            "columns": len(cols),
            "decode_seconds": dec,
            "nnz": [len(c) for c in cols],
            "sketch_bytes": int(cast(SparseRecoveryPlan, p.output_sketch)["nbytes"]),
        }
        if args.columns_out:
            arrays: dict[str, Any] = {}
            for j, c in enumerate(cols):
                arrays[f"indices_{j}"], arrays[f"values_{j}"] = np.asarray(c.indices), np.asarray(c.values)
            np.savez(args.columns_out, n=np.int64(n_q), **arrays)
            report["sparse_columns"]["saved_to"] = str(args.columns_out)
    report["certificate"] = _certificate_summary(stream.certificate()) if p_count else None
    report["rss_after_import_bytes"] = rss_after_import
    report["peak_rss_bytes"] = _peak_rss_bytes()
    report["plan"] = {k: _json_float(v) for k, v in p.as_dict().items()}

    if args.json:
        print(json.dumps(report))
    else:
        _print_report(report, p)
    return 0


def _mib(x: int) -> str:
    return f"{x / 2**20:.1f} MiB" if x >= 0 else "n/a"


def _print_report(r: dict[str, Any], p: Plan) -> None:
    print(f"tokens           {r['tokens']} in {r['seconds']:.2f} s: {r['tokens_per_second']:.4g} tokens/s")
    if r["mode"] == "keys-first":
        print(f"                 keys {r['keys_per_second']:.4g}/s, queries {r['queries_per_second']:.4g}/s")
    parts = r["state_bytes_breakdown"]
    what = f"{parts['state']} state + {parts['probes']} probes"
    if parts["output_sketch"]:
        what += f" + {parts['output_sketch']} output sketch"
    print(f"state bytes      {r['state_bytes']} = {what}; independent of n")
    if parts["state"] != r["plan"]["state_bytes"]:
        print(f"                 (the plan counted {r['plan']['state_bytes']} bytes of state)")
    print(f"                 serialized {r['serialized_bytes']}")
    for key, what in (("out", "output rows written to"), ("state_saved_to", "state saved to")):
        if key in r:
            print(f"                 {what} {r[key]}")
    print(f"peak RSS         {_mib(r['peak_rss_bytes'])} (after import {_mib(r['rss_after_import_bytes'])})")
    sc = r.get("sparse_columns")
    if sc:
        print(
            f"sparse columns   {sc['columns']} columns, k = {sc['k']}, eps1 = {_num(sc['eps1'])}: nnz {sc['nnz']}, "
            f"decoded ({sc['method']}) in {sc['decode_seconds'] * 1e3:.2f} ms; sketch {sc['sketch_bytes']} bytes"
        )
        if "saved_to" in sc:
            print(f"                 saved to {sc['saved_to']}")
    c = r["certificate"]
    if c is None:
        print("certificate      none (--probes 0)")
        return
    fmt: Callable[[float | None], str] = lambda x: "n/a" if x is None else f"{x:.3e}"  # noqa: E731
    print(
        f"certificate      {c['evaluated']}/{c['probes']} probes: max |err| {fmt(c['max_abs_error'])}, "
        f"mean |err| {fmt(c['mean_abs_error'])}, max relative {fmt(c['max_rel_error'])}"
    )
    bound = p.attention_bound
    if bound is not None:
        if math.isfinite(bound):
            print(
                f"                 guaranteed: max |err| <= {bound:.3e} * |V|_max (Alman-Song, eps(beta, g) = "
                f"{p.taylor_eps:.3e})"
            )
        else:
            print(
                f"                 guaranteed: none — eps(beta, g) = {p.taylor_eps:.3g} >= 1 makes the bound "
                "vacuous; the certificate is the only error figure"
            )


# --- plan -----------------------------------------------------------------------------------
def _plan_cmd(args: argparse.Namespace) -> int:
    p = make_plan(
        args.n,
        args.d,
        args.dv,
        k=args.k,
        eps1=args.eps1,
        eps2=args.eps2,
        delta=args.delta,
        beta=args.beta,
        degree=args.degree,
        state=args.state,
        eps=args.eps,
        sketch=args.sketch,
        sketch_size=args.sketch_size,
        chunk=args.chunk or 0,
    )
    if args.json:
        print(json.dumps({k: _json_float(v) for k, v in p.as_dict().items()}))
    else:
        print(_human(str(p)))
    return 0


# --- parser ---------------------------------------------------------------------------------
def _check_scale_and_seed(args: argparse.Namespace) -> None:
    """Checked before they reach the generator (sqrt(beta/scale), numpy's seeding)."""
    if args.scale is not None and not (args.scale > 0 and math.isfinite(args.scale)):
        raise CliError(f"--scale must be a finite number > 0, got {args.scale}")
    if not 0 <= args.seed < 2**64:
        raise CliError(f"--seed must be in [0, 2**64), got {args.seed}")


def _tokens(s: str) -> int:
    """An integer, or a power of two written 2^k / 2**k."""
    t = s.replace("**", "^")
    try:
        if "^" in t:
            base, exp = t.split("^")
            return cast(int, int(base) ** int(exp))
        return int(float(s)) if "e" in t.lower() else int(t)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a token count: {s!r} (an integer, or 2^k)") from None


def _sparsity(s: str) -> int:
    if s.endswith(".npy"):
        raise argparse.ArgumentTypeError(
            f"--k is the sparsity of the output columns; give the keys file as --k-file {s}"
        )
    try:
        return int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--k takes an integer (the output-column sparsity), got {s!r}") from None


def _chunk_rows(s: str) -> int:
    try:
        rows = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--chunk takes a number of rows, got {s!r}") from None
    if rows < 1:
        raise argparse.ArgumentTypeError(f"--chunk takes rows >= 1 (leave it out for the default by shape), got {rows}")
    return rows


# Options that `run` and `plan` share, declared once: name -> add_argument keywords.
_SHARED: dict[str, dict[str, Any]] = {
    "--degree": dict(
        type=int, default=None, metavar="G", help="Taylor degree g, 0..8 (default 2, or as --eps chooses)"
    ),
    "--eps1": dict(type=float, default=None, metavar="E1", help="sparse-recovery eps1, with --k (default 0.25)"),
    "--delta": dict(type=float, default=0.01, help="failure probability of the sketches (default 0.01)"),
    "--chunk": dict(
        type=_chunk_rows,
        default=None,
        metavar="ROWS",
        help="causal intra-chunk rows (default by the feature count t: 32 below 256 features, else 64)",
    ),
    "--state": dict(
        choices=["exact", "sketched"],
        default="exact",
        help="keys-first state: exact (M, s) or the paper's sketched layout (default exact)",
    ),
    "--sketch": dict(
        choices=["ams", "gaussian"],
        default="ams",
        help="Psi of the sketched state; ams also holds its sign hashes (default ams)",
    ),
}


def _shared(group: Any, *names: str) -> None:
    for name in names:
        group.add_argument(name, **_SHARED[name])


def build_parser() -> argparse.ArgumentParser:
    """The parser. Every option's help says what it does and, once, its default ("(default X)"),
    written by hand so that defaults computed later (2^20 synthetic tokens, 1/sqrt(d), the plan's
    s = 256) read as they behave; tests/test_cli.py checks each against the parser's own default."""
    parser = argparse.ArgumentParser(prog="streamattn", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"streamattn {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{run,plan}")

    r = sub.add_parser(
        "run",
        help="stream a long input in constant memory and report throughput, memory and error",
        description="Stream a long input through a CausalStream (causal) or a KVStream (keys-first) in memory "
        "that does not depend on --n; print the plan, a progress bar, tokens/s, state bytes, peak RSS and the "
        "probe certificate (the measured error on probe queries).",
    )
    i = r.add_argument_group(
        "input", "A seeded synthetic generator, or three .npy files (--q-file, --k-file, --v-file together)."
    )
    i.add_argument(
        "--q-file",
        "--q",
        dest="q",
        metavar="Q.npy",
        help="queries, n x d, float32 or float64, memory-mapped (default none: the synthetic generator)",
    )
    i.add_argument(
        "--k-file",
        "--keys",
        dest="k_file",
        metavar="K.npy",
        help="keys, n x d, memory-mapped; --k is the output-column sparsity, as in plan() "
        "(default none: the synthetic generator)",
    )
    i.add_argument(
        "--v-file",
        "--v",
        dest="v",
        metavar="V.npy",
        help="values, n x dv, memory-mapped (default none: the synthetic generator)",
    )
    i.add_argument(
        "--n",
        type=_tokens,
        default=None,
        metavar="N",
        help="tokens, 2^k accepted (default 2^20 synthetic; with files, all their rows)",
    )
    i.add_argument(
        "--d", type=int, default=None, help="query/key dimension of the synthetic input (default 16; files set it)"
    )
    i.add_argument(
        "--dv", type=int, default=None, help="value dimension of the synthetic input (default d; files set it)"
    )
    i.add_argument(
        "--beta",
        type=float,
        default=None,
        metavar="B",
        help="score bound scale*max||q||*max||k||, which sets the guaranteed error (default 0.5 for the "
        "synthetic generator, whose entries it bounds; with files, measured by a read-only pre-pass)",
    )
    i.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="SEED",
        help="seed of the generator, probe positions and sketches (default 0)",
    )
    a = r.add_argument_group("attention")
    a.add_argument(
        "--mode",
        choices=["causal", "keys-first"],
        default="causal",
        help="causal: (q, k, v) blocks through a CausalStream; keys-first: every key into a KVStream, then the "
        "queries (default causal)",
    )
    _shared(a, "--degree")
    a.add_argument(
        "--eps",
        type=float,
        default=None,
        help="target Taylor error eps(beta, g): chooses the smallest even degree reaching it at the data's beta "
        "(default none: --degree decides)",
    )
    a.add_argument("--scale", type=float, default=None, metavar="C", help="score scale c (default 1/sqrt(d))")
    _shared(a, "--chunk", "--state", "--sketch")
    a.add_argument(
        "--sketch-size",
        type=int,
        default=None,
        metavar="S",
        help="rows s of the sketched state; the keys cost grows with s (default 256, the plan's)",
    )
    o = r.add_argument_group("output columns and certificate")
    o.add_argument(
        "--k",
        type=_sparsity,
        default=None,
        help="collect k-sparse output columns through a sparse-recovery sketch (default none: no columns)",
    )
    _shared(o, "--eps1", "--delta")
    o.add_argument(
        "--decode",
        choices=["sublinear", "standard"],
        default="sublinear",
        help="decoder of the output columns (default sublinear)",
    )
    o.add_argument(
        "--columns-out",
        metavar="FILE.npz",
        default=None,
        help="save the decoded columns (indices_j, values_j) to an .npz file (default none: not saved)",
    )
    o.add_argument(
        "--probes",
        type=int,
        default=8,
        metavar="P",
        help="probe queries at seeded positions, certified in the same pass; 0 for no certificate (default 8)",
    )
    x = r.add_argument_group("execution and results")
    x.add_argument(
        "--out",
        metavar="OUT.npy",
        default=None,
        help="write the output rows (queries x dv, float64) to a .npy file, block by block "
        "(default none: computed, then dropped)",
    )
    x.add_argument(
        "--save-state",
        metavar="FILE",
        default=None,
        help="write the final stream (to_bytes(); load with CausalStream/KVStream.from_bytes) "
        "(default none: not saved)",
    )
    x.add_argument(
        "--block", type=int, default=8192, metavar="ROWS", help="rows per block read and streamed (default 8192)"
    )
    x.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object on stdout instead of the text report; the progress bar still goes to "
        "stderr when it is a terminal (default off)",
    )
    x.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar (default off: a bar on stderr; with --json only when stderr is a terminal)",
    )
    r.set_defaults(func=_run)

    p = sub.add_parser(
        "plan",
        help="print the plan of a run (sizes, bytes, cost, guaranteed error) alone",
        description="Every size, cost and guaranteed error of a stream, before any data is read (streamattn.plan).",
    )
    p.add_argument("--n", type=_tokens, default=1 << 20, metavar="N", help="tokens, 2^k accepted (default 2^20)")
    p.add_argument("--d", type=int, default=16, help="query/key dimension (default 16)")
    p.add_argument("--dv", type=int, default=None, help="value dimension (default d)")
    p.add_argument(
        "--k",
        type=int,
        default=None,
        help="sparsity of the output columns: plans the output sketch (default none: no output sketch)",
    )
    _shared(p, "--eps1")
    p.add_argument(
        "--eps2",
        type=float,
        default=None,
        metavar="E2",
        help="sketched-state error target, which chooses s (default none: --sketch-size decides)",
    )
    _shared(p, "--delta")
    p.add_argument(
        "--beta",
        type=float,
        default=None,
        metavar="B",
        help="score bound scale*max||q||*max||k||: gives eps(beta, g) and the guaranteed error "
        "(default none: no guarantee)",
    )
    _shared(p, "--degree")
    p.add_argument(
        "--eps",
        type=float,
        default=None,
        help="target Taylor error: with --beta, chooses the smallest even degree reaching it "
        "(default none: --degree decides)",
    )
    _shared(p, "--state", "--sketch")
    p.add_argument(
        "--sketch-size",
        type=int,
        default=None,
        metavar="S",
        help="rows s of the sketched state; overrides --eps2 (default 256)",
    )
    _shared(p, "--chunk")
    p.add_argument(
        "--json", action="store_true", help="print the plan's fields as one JSON object (default off: the text plan)"
    )
    p.set_defaults(func=_plan_cmd)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse has printed usage and the error (or --help / --version)
        return int(e.code) if isinstance(e.code, int) else EXIT_USAGE
    try:
        return cast(int, args.func(args))
    except (CliError, ValueError, TypeError, OverflowError, OSError) as e:
        print(f"streamattn {args.command}: error: {_human(str(e))}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("streamattn: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
