"""streamattn.dask: sketches, key/value states and causal attention over Dask (docs/dask.md).

Every state of the library is a linear sketch or a sum, so it merges: a Dask array split into row
blocks is processed block by block on any workers, and the pieces are combined into exactly what
one pass over the whole array gives (up to the rounding of a different order of additions).

* ``sketch(x, like)``: each row block fills a copy of the empty sketch ``like`` at its row
  offset; the copies are merged in a tree.
* ``kv_state(K, V, **params)``: one KVStream per row block (``first_token`` = the block's
  offset), merged in a tree.
* ``causal_attention(Q, K, V, log_gate=None, **params)``: each block's CausalSegment (its state
  and total log-decay), an exclusive scan over the segments, then a CausalStream per block that
  starts from its incoming prefix and emits the block's rows: a Dask array with Q's row chunks.
* ``map_sequences(sequences, directory, **params)``: many independent sequences, each streamed
  by one task into its own ``.npy`` file block by block.

The mathematics lives in the C++ core (CausalSegment, CausalStream.start_from, merge); this module
only builds the task graph. Every input is checked on the client before any task runs. Needs the
``dask`` extra: ``pip install "streamattn[dask]"``.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable, Sequence
from typing import Any, Union

import numpy as np

from ._core import (
    AMSSketch,
    CausalSegment,
    CausalStream,
    CountSketch,
    GaussianSketch,
    KVStream,
    MultiHeadCausalStream,
    SparseRecovery,
    SparseRecoveryMatrix,
)

try:
    import dask.array as da
    import dask.bag as db
    import dask.base
    from dask.delayed import Delayed, delayed
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        'streamattn.dask needs Dask: pip install "streamattn[dask]" (or "dask[array,distributed]")'
    ) from exc

__all__ = ["causal_attention", "kv_state", "map_sequences", "sketch"]

Sketch = Union[CountSketch, AMSSketch, GaussianSketch, SparseRecovery, SparseRecoveryMatrix]

# The method of each sketch that adds rows at a given row offset.
_ROW_UPDATE = {
    CountSketch: "update_rows",
    AMSSketch: "update_rows",
    GaussianSketch: "update_rows",
    SparseRecovery: "update_dense",
    SparseRecoveryMatrix: "update_rows",
}
DEFAULT_SPLIT_EVERY = 8
# Rows a map_sequences task streams at once.
DEFAULT_BLOCK_ROWS = 65536


# --- checks (client side, before any task runs) -------------------------------------------------
def _require_dask_array(x: object, name: str, ndim: Sequence[int]) -> da.Array:
    if not isinstance(x, da.Array):
        raise TypeError(
            f"{name} must be a dask.array.Array, got {type(x).__name__}; wrap an in-memory array with "
            f"dask.array.from_array({name}, chunks=(rows_per_block, -1)) or use the single-process API"
        )
    if x.ndim not in ndim:
        want = " or ".join(str(n) for n in ndim)
        raise ValueError(f"{name} must have {want} dimensions, got shape {x.shape}")
    if any(np.isnan(c) for axis in x.chunks for c in axis):
        raise ValueError(f"{name} has unknown chunk sizes; call {name}.compute_chunk_sizes() first")
    return x


def _one_column_chunk(x: da.Array) -> da.Array:
    """Row blocks hold whole rows: columns in one chunk (a rechunk only where they are split)."""
    if x.ndim == 2 and len(x.chunks[1]) > 1:
        return x.rechunk({1: -1})
    return x


def _require_same_rows(arrays: dict[str, da.Array], first: str) -> None:
    ref = arrays[first]
    for name, x in arrays.items():
        if x.shape[0] != ref.shape[0]:
            raise ValueError(f"{name} has {x.shape[0]} rows and {first} has {ref.shape[0]}: they must have as many")
        if x.chunks[0] != ref.chunks[0]:
            raise ValueError(
                f"{name} and {first} must be split into the same row blocks: {name} has row chunks "
                f"{x.chunks[0]}, {first} has {ref.chunks[0]}; rechunk one like the other, e.g. "
                f"{name} = {name}.rechunk({{0: {first}.chunks[0]}})"
            )


def _require_split_every(split_every: int) -> int:
    if isinstance(split_every, bool) or not isinstance(split_every, (int, np.integer)) or split_every < 2:
        raise ValueError(f"split_every must be an integer >= 2 (states merged per task), got {split_every!r}")
    return int(split_every)


def _offsets(chunks: tuple[int, ...], start: int = 0) -> list[int]:
    out, pos = [], start
    for c in chunks:
        out.append(pos)
        pos += int(c)
    return out


def _blocks(x: da.Array) -> list[Delayed]:
    """The row blocks of x (columns in one chunk) as Delayed objects, in row order."""
    return list(np.asarray(_one_column_chunk(x).to_delayed(optimize_graph=False)).reshape(-1))


def _is_empty(like: Sketch) -> bool:
    if isinstance(like, CountSketch):
        return not np.any(like.table)
    if isinstance(like, (AMSSketch, GaussianSketch)):
        return like.tokens == 0
    return not np.any(like.count_sketch.table)


# --- tree merge ---------------------------------------------------------------------------------
def _merged(*parts: Any) -> Any:
    """A new object: the first part merged with the others (the inputs are left unchanged, so a
    rescheduled task sees the same inputs)."""
    out = copy.deepcopy(parts[0])
    for p in parts[1:]:
        out.merge(p)
    return out


def _tree_merge(parts: list[Delayed], split_every: int, name: str) -> Delayed:
    level = 0
    while len(parts) > 1:
        parts = [
            delayed(_merged, pure=True)(*parts[i : i + split_every], dask_key_name=f"{name}-merge-{level}-{i}")
            for i in range(0, len(parts), split_every)
        ]
        level += 1
    return parts[0]


# --- 1. sketches --------------------------------------------------------------------------------
# Sketches that take turnstile updates (indices, values).
_TURNSTILE = (CountSketch, SparseRecovery, SparseRecoveryMatrix)


def _fill(like: Sketch, start: int, block: np.ndarray) -> Sketch:
    out = copy.deepcopy(like)
    getattr(out, _ROW_UPDATE[type(like)])(start, block)
    return out


def _fill_updates(like: Sketch, updates: Iterable[tuple[Any, Any]]) -> Sketch:
    out = copy.deepcopy(like)
    for indices, values in updates:
        out.update(indices, values)  # type: ignore[union-attr]
    return out


def _sketch_updates(bag: Any, like: Sketch, split_every: int, compute: bool) -> Sketch | Delayed:
    if not isinstance(like, _TURNSTILE):
        kinds = ", ".join(t.__name__ for t in _TURNSTILE)
        raise TypeError(f"turnstile updates need like to be an empty {kinds}; got {type(like).__name__}")
    token = dask.base.tokenize(bag.name, like.to_bytes(), split_every)
    name = f"streamattn-sketch-updates-{token}"
    like_d = delayed(like, pure=True, name=f"{name}-like")
    parts = [
        delayed(_fill_updates, pure=True)(like_d, part, dask_key_name=f"{name}-fill-{i}")
        for i, part in enumerate(bag.to_delayed())
    ]
    out = _tree_merge(parts, split_every, name) if parts else like_d
    return out.compute() if compute else out


def sketch(
    x: da.Array | db.Bag, like: Sketch, *, split_every: int = DEFAULT_SPLIT_EVERY, compute: bool = True
) -> Sketch | Delayed:
    """The sketch of the rows of the Dask array ``x`` (n or n x c, split into row blocks), as ``like``
    (an empty CountSketch, AMSSketch, GaussianSketch, SparseRecovery or SparseRecoveryMatrix that
    fixes every parameter and the seed) would hold after ``update_rows(0, x)`` (``update_dense``
    for SparseRecovery). Each row block fills a copy of ``like`` at its row offset; the copies are
    merged ``split_every`` at a time. ``compute=False`` returns the Delayed result instead.

    ``x`` may also be a ``dask.bag.Bag`` of turnstile updates ``(indices, values)``, as ``like.update``
    takes them (CountSketch, SparseRecovery, SparseRecoveryMatrix): each partition applies its
    updates to a copy of ``like``, and the copies merge the same way.
    """
    if type(like) not in _ROW_UPDATE:
        kinds = ", ".join(t.__name__ for t in _ROW_UPDATE)
        raise TypeError(f"like must be an empty {kinds}; got {type(like).__name__}")
    split_every = _require_split_every(split_every)
    if not _is_empty(like):
        raise ValueError(
            f"like must be an empty {type(like).__name__} (it fixes the parameters and the seed only): each row "
            "block fills a copy of it, so its contents would be counted once per block; merge it into the result "
            "instead"
        )
    if isinstance(x, db.Bag):
        return _sketch_updates(x, like, split_every, compute)
    x = _require_dask_array(x, "x", (1, 2))
    n = x.shape[0]
    if n > 0:
        # The same checks a block's task will run (dtype, columns, row range), on one row of zeros.
        probe = copy.deepcopy(like)
        getattr(probe, _ROW_UPDATE[type(like)])(n - 1, np.zeros((1, *x.shape[1:]), dtype=x.dtype))
    token = dask.base.tokenize(x.name, like.to_bytes(), split_every)
    name = f"streamattn-sketch-{token}"
    like_d = delayed(like, pure=True, name=f"{name}-like")
    parts = [
        delayed(_fill, pure=True)(like_d, start, block, dask_key_name=f"{name}-fill-{i}")
        for i, (start, block) in enumerate(zip(_offsets(x.chunks[0]), _blocks(x)))
    ]
    if not parts:
        out: Delayed = like_d
    else:
        out = _tree_merge(parts, split_every, name)
    return out.compute() if compute else out


# --- 2. key/value states ------------------------------------------------------------------------
def _kv_block(params: dict[str, Any], first_token: int, K: np.ndarray, V: np.ndarray) -> KVStream:
    s = KVStream(K.shape[1], V.shape[1], first_token=first_token, **params)
    s.add(K, V)
    return s


def kv_state(
    K: da.Array,
    V: da.Array,
    *,
    first_token: int = 0,
    split_every: int = DEFAULT_SPLIT_EVERY,
    compute: bool = True,
    **params: Any,
) -> KVStream | Delayed:
    """The KVStream of keys ``K`` (n x d) and values ``V`` (n x dv), Dask arrays with the same row
    blocks: one KVStream per block (key j of block b is token first_token + offset_b + j), merged
    ``split_every`` at a time. ``params`` are KVStream's (degree, scale, state, sketch,
    sketch_size, seed, kernel, max_bytes, ...); d and dv come from the arrays. The result queries
    like any KVStream. ``compute=False`` returns the Delayed result instead.
    """
    for key in ("d", "dv"):
        if key in params:
            raise TypeError(f"kv_state takes {key} from the arrays' shapes; do not pass {key}=")
    K = _require_dask_array(K, "K", (2,))
    V = _require_dask_array(V, "V", (2,))
    _require_same_rows({"K": K, "V": V}, "K")
    split_every = _require_split_every(split_every)
    # The parameters, dtypes and shapes are checked by the C++ core on the client: a stream built
    # with them, fed no rows.
    probe = KVStream(K.shape[1], V.shape[1], first_token=first_token, **params)
    probe.add(np.zeros((0, K.shape[1]), K.dtype), np.zeros((0, V.shape[1]), V.dtype))
    if K.shape[0] == 0:
        return probe if compute else delayed(probe)
    token = dask.base.tokenize(K.name, V.name, first_token, sorted(params.items(), key=lambda kv: kv[0]), split_every)
    name = f"streamattn-kv-state-{token}"
    parts = [
        delayed(_kv_block, pure=True)(params, start, k, v, dask_key_name=f"{name}-block-{i}")
        for i, (start, k, v) in enumerate(zip(_offsets(K.chunks[0], first_token), _blocks(K), _blocks(V)))
    ]
    out = _tree_merge(parts, split_every, name)
    return out.compute() if compute else out


# --- 3. causal attention over one long sequence -------------------------------------------------
_SEGMENT_PARAMS = ("degree", "scale", "chunk", "max_bytes", "kernel")
_STREAM_PARAMS = (*_SEGMENT_PARAMS, "eps", "normalize", "compute")


def _segment(
    params: dict[str, Any], first_token: int, K: np.ndarray, V: np.ndarray, gate: np.ndarray | None
) -> CausalSegment:
    seg = CausalSegment(K.shape[1], V.shape[1], first_token=first_token, **params)
    seg.absorb(K, V, log_gate=gate)
    return seg


def _then(prefix: CausalSegment, segment: CausalSegment) -> CausalSegment:
    return prefix.then(segment)


def _rows(
    params: dict[str, Any],
    prefix: CausalSegment,
    Q: np.ndarray,
    K: np.ndarray,
    V: np.ndarray,
    gate: np.ndarray | None,
) -> np.ndarray:
    s = CausalStream(K.shape[1], V.shape[1], **params)
    s.start_from(prefix)
    return s.update(Q, K, V, log_gate=gate)


def causal_attention(
    Q: da.Array,
    K: da.Array,
    V: da.Array,
    log_gate: da.Array | None = None,
    *,
    degree: int = 2,
    scale: float | None = None,
    chunk: int = CausalStream.default_chunk,
    kernel: str = "taylor",
    eps: float = 0.0,
    normalize: bool = True,
    max_bytes: int | None = None,
    compute: str | None = None,
) -> da.Array:
    """Causal attention of one long sequence split into row blocks: the rows CausalStream
    (same parameters) would emit for ``Q`` (n x d), ``K`` (n x d), ``V`` (n x dv) and the optional
    per-token ``log_gate`` (n), as a lazy Dask array (n x dv; float32 when Q, K and V all are,
    else float64) with Q's row chunks. Equal to the single stream to rounding with
    ``compute="float64"``; the float32 products (the default for float32 inputs) round at other
    token boundaries than a single stream does, so rows agree to the float32 path's tolerance.

    Three stages: every block's CausalSegment (its keys' state and its total log-decay, in
    parallel); an exclusive scan over the segments (one t x dv scale-and-add per block); every
    block's rows from a CausalStream started at its incoming prefix (in parallel). Q, K, V and
    log_gate must have the same row blocks.

    MultiHeadCausalStream's layout is accepted too: Q (heads, n, d), K (kv_heads, n, d),
    V (kv_heads, n, dv), log_gate (heads, n) -> (heads, n, dv), query head h reading kv head
    h // (heads // kv_heads); every query head is its own scan.
    """
    params: dict[str, Any] = {
        "degree": degree,
        "scale": scale,
        "chunk": chunk,
        "kernel": kernel,
        "eps": eps,
        "normalize": normalize,
        "max_bytes": max_bytes,
        "compute": compute,
    }
    Q = _require_dask_array(Q, "Q", (2, 3))
    if Q.ndim == 3:
        return _multi_head(Q, K, V, log_gate, params)
    Q = _require_dask_array(Q, "Q", (2,))
    K = _require_dask_array(K, "K", (2,))
    V = _require_dask_array(V, "V", (2,))
    arrays = {"Q": Q, "K": K, "V": V}
    if log_gate is not None:
        arrays["log_gate"] = _require_dask_array(log_gate, "log_gate", (1,))
    _require_same_rows(arrays, "Q")
    if Q.shape[1] != K.shape[1]:
        raise ValueError(f"Q and K must have the same number of columns d: Q has {Q.shape[1]}, K has {K.shape[1]}")
    return _causal(Q, K, V, log_gate, params)


def _multi_head(Q: da.Array, K: da.Array, V: da.Array, log_gate: da.Array | None, params: dict[str, Any]) -> da.Array:
    K = _require_dask_array(K, "K", (3,))
    V = _require_dask_array(V, "V", (3,))
    if log_gate is not None:
        log_gate = _require_dask_array(log_gate, "log_gate", (2,))
    heads, n, d = Q.shape
    kv_heads, dv = K.shape[0], V.shape[2]
    if V.shape[0] != kv_heads:
        raise ValueError(f"K and V must have the same number of kv heads: K has {kv_heads}, V has {V.shape[0]}")
    if log_gate is not None and log_gate.shape[0] != heads:
        raise ValueError(f"log_gate must have one row per query head ({heads}), got {log_gate.shape[0]}")
    # The C++ core checks heads, kv_heads (a divisor of heads) and every parameter on the client,
    # and maps query heads onto kv heads.
    mh = MultiHeadCausalStream(heads, kv_heads, K.shape[2], dv, **params)
    arrays = {"Q": Q[0], "K": K[0], "V": V[0]}
    if log_gate is not None:
        arrays["log_gate"] = log_gate[0]
    _require_same_rows(arrays, "Q")
    if d != K.shape[2]:
        raise ValueError(f"Q and K must have the same number of columns d: Q has {d}, K has {K.shape[2]}")
    outs = [
        _causal(Q[h], K[mh.kv_head(h)], V[mh.kv_head(h)], None if log_gate is None else log_gate[h], params)
        for h in range(heads)
    ]
    return da.stack(outs, axis=0)


# Up to this many segments the scan is a chain (P - 1 compositions one after the other); beyond, a
# log-depth scan by recursive doubling (about P log2 P compositions, ceil(log2 P) rounds).
CHAIN_SCAN_MAX = 16


def _exclusive_scan(empty: Delayed, segments: list[Delayed], name: str) -> list[Delayed]:
    """prefix_0 = empty, prefix_b = segment_0 then ... then segment_{b-1}: every prefix starts at
    token 0, as CausalStream.start_from needs."""
    if len(segments) <= CHAIN_SCAN_MAX:
        prefixes = [empty]
        for i, seg in enumerate(segments):
            prefixes.append(delayed(_then, pure=True)(prefixes[-1], seg, dask_key_name=f"{name}-prefix-{i + 1}"))
        return prefixes
    # Recursive doubling: after round r, cur[i] covers segments max(0, i - 2^(r+1) + 1) .. i, and
    # cur[i - step] ends exactly where cur[i] starts, so every composition is of adjacent segments.
    cur, step, level = list(segments), 1, 0
    while step < len(cur):
        cur = [
            cur[i]
            if i < step
            else delayed(_then, pure=True)(cur[i - step], cur[i], dask_key_name=f"{name}-scan-{level}-{i}")
            for i in range(len(cur))
        ]
        step, level = 2 * step, level + 1
    return [empty, *cur]


def _causal(Q: da.Array, K: da.Array, V: da.Array, log_gate: da.Array | None, params: dict[str, Any]) -> da.Array:
    d, dv = K.shape[1], V.shape[1]
    seg_params = {k: params[k] for k in _SEGMENT_PARAMS}
    # The C++ core checks every parameter and the dtypes on the client, on zero rows.
    empty = CausalSegment(d, dv, first_token=0, **seg_params)
    zq, zk, zv = np.zeros((0, d), Q.dtype), np.zeros((0, d), K.dtype), np.zeros((0, dv), V.dtype)
    zg = None if log_gate is None else np.zeros(0, log_gate.dtype)
    empty.absorb(zk, zv, log_gate=zg)
    # ... and the dtype of the rows (float32 when the float inputs all are, else float64).
    dtype = CausalStream(d, dv, **params).update(zq, zk, zv, log_gate=zg).dtype

    token = dask.base.tokenize(Q.name, K.name, V.name, None if log_gate is None else log_gate.name, params)
    name = f"streamattn-causal-{token}"
    offsets = _offsets(Q.chunks[0])
    qb, kb, vb = _blocks(Q), _blocks(K), _blocks(V)
    gb: list[Delayed | None] = [None] * len(qb) if log_gate is None else list(_blocks(log_gate))
    segments = [
        delayed(_segment, pure=True)(seg_params, offsets[i], kb[i], vb[i], gb[i], dask_key_name=f"{name}-segment-{i}")
        for i in range(len(qb) - 1)
    ]
    prefixes = _exclusive_scan(delayed(empty, pure=True, name=f"{name}-prefix-0"), segments, name)
    outputs = []
    for i, rows in enumerate(Q.chunks[0]):
        out = delayed(_rows, pure=True)(
            params, prefixes[i], qb[i], kb[i], vb[i], gb[i], dask_key_name=f"{name}-rows-{i}"
        )
        outputs.append(da.from_delayed(out, shape=(int(rows), dv), dtype=dtype, name=f"{name}-out-{i}"))
    if not outputs:
        return da.zeros((0, dv), dtype=dtype, chunks=((0,), (dv,)))
    return da.concatenate(outputs, axis=0)


# --- 4. many independent sequences --------------------------------------------------------------
def _stream_to_npy(params: dict[str, Any], block_rows: int, path: str, sequence: tuple[np.ndarray, ...]) -> str:
    Q, K, V = sequence[:3]
    gate = sequence[3] if len(sequence) > 3 else None
    s = CausalStream(K.shape[1], V.shape[1], **params)
    dtype = s.update(Q[:0], K[:0], V[:0], log_gate=None if gate is None else gate[:0]).dtype
    out = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=(Q.shape[0], V.shape[1]))
    for a in range(0, Q.shape[0], block_rows):
        b = min(a + block_rows, Q.shape[0])
        g = None if gate is None else gate[a:b]
        out[a:b] = s.update(Q[a:b], K[a:b], V[a:b], log_gate=g)
    out.flush()
    del out
    return path


def map_sequences(
    sequences: Iterable[Any],
    directory: str | os.PathLike[str],
    *,
    block_rows: int = DEFAULT_BLOCK_ROWS,
    compute: bool = True,
    **params: Any,
) -> list[str] | list[Delayed]:
    """Causal attention of many independent sequences, one task per sequence: each task streams its
    sequence through a CausalStream (``params``: degree, scale, chunk, kernel, eps, normalize,
    max_bytes) ``block_rows`` rows at a time and writes the rows into ``directory/<i>.npy`` as they
    come, so no output is gathered on the client. ``sequences``: an iterable of (Q, K, V) or
    (Q, K, V, log_gate) tuples, in memory or Delayed (e.g. ``dask.delayed(load)(i)`` for sequence i,
    so each sequence is read by the task that streams it).
    Returns the paths (``compute=False``: the Delayed paths).
    """
    if isinstance(block_rows, bool) or not isinstance(block_rows, (int, np.integer)) or block_rows < 1:
        raise ValueError(f"block_rows must be an integer >= 1, got {block_rows!r}")
    unknown = sorted(set(params) - set(_STREAM_PARAMS))
    if unknown:
        raise TypeError(f"map_sequences got unknown stream parameters {unknown}; it accepts {list(_STREAM_PARAMS)}")
    CausalStream(1, 1, **params)  # the C++ core checks the parameters on the client
    directory = os.fspath(directory)
    os.makedirs(directory, exist_ok=True)
    tasks = [
        delayed(_stream_to_npy, pure=True)(params, int(block_rows), os.path.join(directory, f"{i}.npy"), seq)
        for i, seq in enumerate(sequences)
    ]
    if not compute:
        return tasks
    return list(dask.base.compute(*tasks))
