"""Bad input never crashes or corrupts (issue 7): every public entry point, fed wrong dtypes,
shapes, sizes, non-finite values, out-of-range parameters, mismatched merges and calls in an
invalid state, raises ValueError/TypeError whose message names the argument, and an object whose
call was refused is unchanged (its to_bytes() before and after are equal). Strided, reversed,
broadcast, unaligned and byte-swapped views give the same result as contiguous input.

The battery is generated from small tables; `python -m pytest tests/test_bad_input.py -q` runs
several hundred cases in a few seconds.
"""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

import streamattn as sa
from samples import (
    DV,
    IDX,
    SK_VALS,
    VALS,
    D,
    K,
    Q,
    V,
    ams,
    arrays,
    causal,
    count_sketch,
    gaussian,
    kv_exact,
    kv_sketched,
    prefix_state,
    sparse_matrix,
    sparse_recovery,
)


def snapshot(obj):
    if obj is None:
        return None
    if isinstance(obj, sa.PolyPrefixState):  # no to_bytes: compare the whole state
        return (obj.tokens, obj.numerator_state.tobytes(), obj.normalizer_state.tobytes())
    if not hasattr(obj, "to_bytes"):  # immutable objects (KWiseHash, TaylorFeatures)
        return repr(obj)
    return obj.to_bytes()


def expect_refused(obj, call, exc, names):
    """call(obj) raises exc (ValueError/TypeError) naming one of `names`; obj is unchanged."""
    before = snapshot(obj)
    with pytest.raises(exc) as info:
        call(obj)
    assert isinstance(info.value, (ValueError, TypeError))
    msg = str(info.value)
    names = (names,) if isinstance(names, str) else names
    assert any(n in msg for n in names), f"message {msg!r} names none of {names}"
    assert snapshot(obj) == before, "a refused call changed the object"


# --- array arguments ---------------------------------------------------------------------------
def bad_float_arrays(good: np.ndarray, name: str, ndim_fixed: bool = True, optional: bool = False):
    """(label, value, exception) for one float-array argument whose valid value is `good`."""
    out = [
        ("int", good.astype(np.int64), TypeError),
        ("bool", good > 0, TypeError),
        ("complex", good.astype(np.complex128), TypeError),
        ("object", good.astype(object), TypeError),
        ("float16", good.astype(np.float16), TypeError),
        ("longdouble", good.astype(np.longdouble), TypeError),
        ("str", "abc", TypeError),
        ("strings", np.array([["a"] * good.shape[-1]] * len(good)), TypeError),
        ("dict", {"a": 1}, TypeError),
        ("3-D", good[None], ValueError),
        ("0-D", np.float64(1.0), ValueError),
    ]
    if not optional:
        out.append(("None", None, TypeError))
    if good.ndim == 2:
        out.append(("extra column", np.hstack([good, good[:, :1]]), ValueError))
        if ndim_fixed:
            out.append(("1-D", good[0], ValueError))
    for label, v in (("nan", np.nan), ("+inf", np.inf), ("-inf", -np.inf)):
        x = good.astype(np.float64).copy()
        x.flat[x.size // 2] = v
        out.append((label, x, ValueError))
        out.append((label + " f32", x.astype(np.float32), ValueError))
    return [(f"{name}:{label}", value, exc) for label, value, exc in out]


def bad_index_arrays(good: np.ndarray, name: str, n: int):
    out = [
        ("float", good.astype(np.float64), TypeError),
        ("bool", good > 2, TypeError),
        ("complex", good.astype(np.complex128), TypeError),
        ("object", np.array([object()] * len(good)), TypeError),
        ("str", "abc", TypeError),
        ("2-D", good[None], ValueError),
        ("negative", np.where(np.arange(len(good)) == 1, -1, good), ValueError),
        ("== n", np.where(np.arange(len(good)) == 1, n, good), ValueError),
        ("huge", np.where(np.arange(len(good)) == 2, 2**62, good), ValueError),
        ("beyond int64", np.array([2**64 - 1] * len(good), dtype=np.uint64), ValueError),
    ]
    return [(f"{name}:{label}", value, exc) for label, value, exc in out]


# Every method that takes arrays: (label, factory, call(obj, **args), valid args, {arg: kind}).
# kind: "float" (2-D), "float1" (1-D or 2-D accepted), "vec" (1-D float), ("index", n).
ARRAY_ENTRIES = [
    (
        "exact_attention",
        None,
        lambda o, **a: sa.exact_attention(**a),
        dict(Q=Q, K=K, V=V),
        {"Q": "float", "K": "float", "V": "float any columns"},
    ),
    (
        "poly_attention",
        None,
        lambda o, **a: sa.poly_attention(degree=2, **a),
        dict(Q=Q, K=K, V=V),
        {"Q": "float", "K": "float", "V": "float any columns"},
    ),
    (
        "poly_attention causal",
        None,
        lambda o, **a: sa.poly_attention(degree=2, causal=True, **a),
        dict(Q=Q, K=K, V=V),
        {"Q": "float", "K": "float", "V": "float any columns"},
    ),
    (
        "TaylorFeatures.transform",
        lambda: sa.TaylorFeatures(D, 2),
        lambda o, **a: o.transform(**a),
        dict(X=Q),
        {"X": "float"},
    ),
    (
        "PolyPrefixState.absorb",
        prefix_state,
        lambda o, **a: o.absorb(**a),
        dict(K=K, V=V),
        {"K": "float", "V": "float"},
    ),
    ("PolyPrefixState.apply", prefix_state, lambda o, **a: o.apply(**a), dict(Q=Q), {"Q": "float"}),
    (
        "CountSketch.update",
        count_sketch,
        lambda o, **a: o.update(**a),
        dict(indices=IDX, values=SK_VALS),
        {"indices": ("index", 100), "values": "float"},
    ),
    ("CountSketch.update_rows", count_sketch, lambda o, **a: o.update_rows(3, **a), dict(X=SK_VALS), {"X": "float"}),
    (
        "CountSketch.estimate",
        count_sketch,
        lambda o, **a: o.estimate(**a),
        dict(indices=IDX),
        {"indices": ("index", 100)},
    ),
    ("AMSSketch.update_rows", ams, lambda o, **a: o.update_rows(7, **a), dict(X=SK_VALS), {"X": "float"}),
    ("GaussianSketch.update_rows", gaussian, lambda o, **a: o.update_rows(7, **a), dict(X=SK_VALS), {"X": "float"}),
    (
        "SparseRecovery.update",
        sparse_recovery,
        lambda o, **a: o.update(**a),
        dict(indices=IDX, values=VALS),
        {"indices": ("index", 100), "values": "vec"},
    ),
    (
        "SparseRecovery.update_dense",
        sparse_recovery,
        lambda o, **a: o.update_dense(10, **a),
        dict(x=VALS),
        {"x": "vec"},
    ),
    (
        "SparseRecovery.estimate",
        sparse_recovery,
        lambda o, **a: o.estimate(**a),
        dict(indices=IDX),
        {"indices": ("index", 100)},
    ),
    (
        "SparseRecoveryMatrix.update",
        sparse_matrix,
        lambda o, **a: o.update(**a),
        dict(indices=IDX, values=SK_VALS),
        {"indices": ("index", 100), "values": "float"},
    ),
    (
        "SparseRecoveryMatrix.update_rows",
        sparse_matrix,
        lambda o, **a: o.update_rows(10, **a),
        dict(X=SK_VALS),
        {"X": "float"},
    ),
    (
        "SparseRecoveryMatrix.estimate",
        sparse_matrix,
        lambda o, **a: o.estimate(**a),
        dict(indices=IDX),
        {"indices": ("index", 100)},
    ),
    (
        "CausalStream.update",
        causal,
        lambda o, **a: o.update(**a),
        dict(Q=Q, K=K, V=V),
        {"Q": "float", "K": "float", "V": "float"},
    ),
    (
        "CausalStream(probes)",
        None,
        lambda o, **a: sa.CausalStream(D, DV, probe_positions=[1, 2], **a),
        dict(probes=Q[:2]),
        {"probes": "float"},
    ),
    ("KVStream.add", kv_exact, lambda o, **a: o.add(**a), dict(K=K, V=V), {"K": "float", "V": "float"}),
    ("KVStream.add sketched", kv_sketched, lambda o, **a: o.add(**a), dict(K=K, V=V), {"K": "float", "V": "float"}),
    ("KVStream.query", kv_exact, lambda o, **a: o.query(**a), dict(Q=Q), {"Q": "float"}),
    ("KVStream(probes)", None, lambda o, **a: sa.KVStream(D, DV, **a), dict(probes=Q[:2]), {"probes": "float"}),
    ("KWiseHash.hash", lambda: sa.KWiseHash(4, 1), lambda o, **a: o.hash(**a), dict(keys=IDX), {"keys": ("keys", 0)}),
    (
        "SparseVector",
        None,
        lambda o, **a: sa.SparseVector(10, **a),
        dict(indices=np.array([1, 4]), values=np.array([1.0, 2.0])),
        {"indices": ("index", 10), "values": "vec"},
    ),
]


def array_cases():
    for label, factory, call, good, kinds in ARRAY_ENTRIES:
        for arg, kind in kinds.items():
            if kind in ("float", "float any columns"):
                bads = bad_float_arrays(good[arg], arg, optional=arg == "probes")
                if kind == "float any columns":
                    bads = [b for b in bads if "extra column" not in b[0]]
            elif kind == "vec":
                bads = [c for c in bad_float_arrays(good[arg], arg) if "3-D" not in c[0]]
                bads.append((f"{arg}:2-D", good[arg][:, None], ValueError))
            elif kind[0] == "index":
                bads = bad_index_arrays(good[arg], arg, kind[1])
                if label == "SparseVector":  # sortedness matters there
                    bads = [b for b in bads if "huge" not in b[0]]
            else:  # KWiseHash keys: any non-negative integer
                bads = [
                    b
                    for b in bad_index_arrays(good[arg], arg, 0)
                    if b[0].split(":")[1] in ("float", "bool", "complex", "object", "str", "2-D", "negative")
                ]
            for case_label, value, exc in bads:
                yield pytest.param(factory, call, {**good, arg: value}, exc, arg, id=f"{label}-{case_label}")


@pytest.mark.parametrize("factory, call, args, exc, name", list(array_cases()))
def test_bad_array_argument(factory, call, args, exc, name):
    obj = factory() if factory else None
    expect_refused(obj, lambda o: call(o, **args), exc, name)


# --- scalar arguments --------------------------------------------------------------------------
BAD_INTS = [
    ("float", 2.0, TypeError),
    ("bool", True, TypeError),
    ("str", "2", TypeError),
    ("complex", 2j, TypeError),
    ("array", np.array([2]), TypeError),
    ("negative", -1, ValueError),
    ("huge", 2**70, ValueError),
]
BAD_REALS = [
    ("nan", math.nan, ValueError),
    ("inf", math.inf, ValueError),
    ("-inf", -math.inf, ValueError),
    ("str", "0.5", TypeError),
    ("complex", 0.5j, TypeError),
    ("bool", True, TypeError),
    ("list", [0.5], TypeError),
]
BAD_SEEDS = [
    ("negative", -1, ValueError),
    ("2**64", 2**64, ValueError),
    ("float", 1.5, TypeError),
    ("str", "1", TypeError),
    ("None", None, TypeError),
    ("bool", False, TypeError),
]
BAD_BOOLS = [
    ("None", None, TypeError),
    ("int", 1, TypeError),
    ("str", "yes", TypeError),
    ("array", np.array([True, False]), TypeError),
]
BAD_STRS = [
    ("None", None, TypeError),
    ("int", 1, TypeError),
    ("bytes", b"standard", TypeError),
    ("unknown", "nope", ValueError),
]

# (label, factory, call(obj, value), valid value, name in message, bad table, extra bad values)
SCALAR_ENTRIES = [
    ("KWiseHash k", None, lambda o, v: sa.KWiseHash(v), 4, "k", BAD_INTS, [(1, ValueError), (65, ValueError)]),
    ("KWiseHash seed", None, lambda o, v: sa.KWiseHash(4, v), 1, "seed", BAD_SEEDS, []),
    (
        "KWiseHash.bucket b",
        lambda: sa.KWiseHash(4),
        lambda o, v: o.bucket(IDX, v),
        7,
        "b",
        BAD_INTS,
        [(0, ValueError), (2**32, ValueError)],
    ),
    (
        "KWiseHash.hash key",
        lambda: sa.KWiseHash(4),
        lambda o, v: o.hash(v),
        7,
        "keys",
        [b for b in BAD_INTS if b[0] in ("negative", "huge", "bool")],
        [],
    ),
    (
        "CountSketch rows",
        None,
        lambda o, v: sa.CountSketch(v, 16),
        3,
        "rows",
        BAD_INTS,
        [(0, ValueError), (1025, ValueError)],
    ),
    (
        "CountSketch buckets",
        None,
        lambda o, v: sa.CountSketch(3, v),
        16,
        "buckets",
        BAD_INTS,
        [(0, ValueError), (2**32, ValueError)],
    ),
    (
        "CountSketch columns",
        None,
        lambda o, v: sa.CountSketch(3, 16, columns=v),
        2,
        "columns",
        BAD_INTS,
        [(0, ValueError)],
    ),
    (
        "CountSketch dim",
        None,
        lambda o, v: sa.CountSketch(3, 16, dim=v),
        100,
        "dim",
        BAD_INTS,
        [(0, ValueError), (2**61, ValueError)],
    ),
    ("CountSketch seed", None, lambda o, v: sa.CountSketch(3, 16, seed=v), 1, "seed", BAD_SEEDS, []),
    (
        "CountSketch too large",
        None,
        lambda o, v: sa.CountSketch(8, v, columns=2**14),
        16,
        ("CountSketch", "bytes"),
        [],
        [(2**20, ValueError), (2**32 - 1, ValueError)],
    ),
    (
        "CountSketch.update_rows start",
        count_sketch,
        lambda o, v: o.update_rows(v, SK_VALS),
        3,
        "start",
        BAD_INTS,
        [(96, ValueError), (101, ValueError)],
    ),
    ("CountSketch.bucket_hash row", count_sketch, lambda o, v: o.bucket_hash(v), 1, "row", BAD_INTS, [(3, ValueError)]),
    ("AMSSketch s", None, lambda o, v: sa.AMSSketch(v), 8, "s", BAD_INTS, [(0, ValueError), (2**24 + 1, ValueError)]),
    ("AMSSketch seed", None, lambda o, v: sa.AMSSketch(8, v), 1, "seed", BAD_SEEDS, []),
    (
        "GaussianSketch columns",
        None,
        lambda o, v: sa.GaussianSketch(8, columns=v),
        2,
        "columns",
        BAD_INTS,
        [(0, ValueError)],
    ),
    (
        "GaussianSketch too large",
        None,
        lambda o, v: sa.GaussianSketch(2**24, columns=v),
        1,
        ("sketch", "bytes"),
        [],
        [(2**24, ValueError)],
    ),
    (
        "AMSSketch.update_rows start",
        ams,
        lambda o, v: o.update_rows(v, SK_VALS),
        7,
        "start",
        BAD_INTS,
        [(2**61 - 3, ValueError)],
    ),
    ("GaussianSketch.matrix count", gaussian, lambda o, v: o.matrix(0, v), 3, "count", BAD_INTS, []),
    (
        "SparseRecovery n",
        None,
        lambda o, v: sa.SparseRecovery(v, 2, 0.5),
        100,
        "n",
        BAD_INTS,
        [(0, ValueError), (2**61, ValueError)],
    ),
    (
        "SparseRecovery k",
        None,
        lambda o, v: sa.SparseRecovery(100, v, 0.5),
        2,
        "k",
        BAD_INTS,
        [(0, ValueError), (101, ValueError)],
    ),
    (
        "SparseRecovery eps",
        None,
        lambda o, v: sa.SparseRecovery(100, 2, v),
        0.5,
        "eps",
        BAD_REALS,
        [(0.0, ValueError), (1.5, ValueError), (-0.1, ValueError)],
    ),
    (
        "SparseRecovery delta",
        None,
        lambda o, v: sa.SparseRecovery(100, 2, 0.5, v),
        0.1,
        "delta",
        BAD_REALS,
        [(0.0, ValueError), (1.0, ValueError)],
    ),
    ("SparseRecovery seed", None, lambda o, v: sa.SparseRecovery(100, 2, 0.5, seed=v), 1, "seed", BAD_SEEDS, []),
    (
        "SparseRecovery rows",
        None,
        lambda o, v: sa.SparseRecovery(100, 2, 0.5, rows=v),
        5,
        "rows",
        BAD_INTS,
        [(0, ValueError), (1025, ValueError)],
    ),
    (
        "SparseRecovery bit_rows",
        None,
        lambda o, v: sa.SparseRecovery(100, 2, 0.5, rows=5, bit_rows=v),
        3,
        "bit_rows",
        BAD_INTS,
        [(6, ValueError)],
    ),
    (
        "SparseRecovery too large",
        None,
        lambda o, v: sa.SparseRecovery(2**60, v, 1e-3),
        1,
        ("bytes", "buckets"),
        [],
        [(10**5, ValueError)],
    ),
    (
        "SparseRecovery.update_dense start",
        sparse_recovery,
        lambda o, v: o.update_dense(v, VALS),
        10,
        "start",
        BAD_INTS,
        [(96, ValueError)],
    ),
    ("SparseRecovery.decode method", sparse_recovery, lambda o, v: o.decode(v), "standard", "method", BAD_STRS, []),
    (
        "SparseRecovery.decode threads",
        sparse_recovery,
        lambda o, v: o.decode(threads=v),
        1,
        "threads",
        BAD_INTS,
        [(2000, ValueError)],
    ),
    (
        "SparseRecoveryMatrix columns",
        None,
        lambda o, v: sa.SparseRecoveryMatrix(100, v, 2, 0.5),
        2,
        "columns",
        BAD_INTS,
        [(0, ValueError)],
    ),
    (
        "SparseRecoveryMatrix.decode_column",
        sparse_matrix,
        lambda o, v: o.decode_column(v),
        1,
        "column",
        BAD_INTS,
        [(2, ValueError)],
    ),
    (
        "sparse_recovery_plan k",
        None,
        lambda o, v: sa.sparse_recovery_plan(100, v, 0.5),
        2,
        "k",
        BAD_INTS,
        [(0, ValueError)],
    ),
    ("SparseVector n", None, lambda o, v: sa.SparseVector(v, [1], [1.0]), 10, "n", BAD_INTS, [(1, ValueError)]),
    ("TaylorFeatures d", None, lambda o, v: sa.TaylorFeatures(v, 2), 4, "d", BAD_INTS, [(0, ValueError)]),
    ("TaylorFeatures degree", None, lambda o, v: sa.TaylorFeatures(4, v), 2, "degree", BAD_INTS, [(9, ValueError)]),
    (
        "TaylorFeatures scale",
        None,
        lambda o, v: sa.TaylorFeatures(4, 2, scale=v),
        0.5,
        "scale",
        BAD_REALS,
        [(0.0, ValueError), (-1.0, ValueError)],
    ),
    (
        "TaylorFeatures max_bytes",
        None,
        lambda o, v: sa.TaylorFeatures(4, 2, max_bytes=v),
        10**6,
        ("max_bytes", "bytes"),
        BAD_INTS,
        [(0, ValueError), (8, ValueError)],
    ),
    (
        "TaylorFeatures too large",
        None,
        lambda o, v: sa.TaylorFeatures(v, 8),
        4,
        ("features", "bytes"),
        [],
        [(10**4, ValueError), (2**24, ValueError)],
    ),
    ("taylor_error beta", None, lambda o, v: sa.taylor_error(v, 2), 1.0, "beta", BAD_REALS, [(-1.0, ValueError)]),
    ("taylor_error degree", None, lambda o, v: sa.taylor_error(1.0, v), 2, "degree", BAD_INTS, [(9, ValueError)]),
    (
        "choose_degree eps",
        None,
        lambda o, v: sa.choose_degree(v, 1.0),
        0.1,
        "eps",
        BAD_REALS,
        [(0.0, ValueError), (-1.0, ValueError)],
    ),
    ("choose_degree beta", None, lambda o, v: sa.choose_degree(0.1, v), 1.0, "beta", BAD_REALS, [(-1.0, ValueError)]),
    (
        "choose_degree unreachable",
        None,
        lambda o, v: sa.choose_degree(1e-12, v),
        0.1,
        ("degree", "eps"),
        [],
        [(50.0, ValueError)],
    ),
    (
        "exact_attention scale",
        None,
        lambda o, v: sa.exact_attention(Q, K, V, scale=v),
        0.5,
        "scale",
        BAD_REALS,
        [(0.0, ValueError), (-1.0, ValueError)],
    ),
    ("exact_attention causal", None, lambda o, v: sa.exact_attention(Q, K, V, causal=v), True, "causal", BAD_BOOLS, []),
    (
        "poly_attention degree",
        None,
        lambda o, v: sa.poly_attention(Q, K, V, v),
        2,
        "degree",
        BAD_INTS,
        [(9, ValueError)],
    ),
    (
        "poly_attention scale",
        None,
        lambda o, v: sa.poly_attention(Q, K, V, 2, scale=v),
        0.5,
        "scale",
        BAD_REALS,
        [(0.0, ValueError), (-1.0, ValueError), (1e300, ValueError)],
    ),
    (
        "poly_attention chunk",
        None,
        lambda o, v: sa.poly_attention(Q, K, V, 2, causal=True, chunk=v),
        4,
        "chunk",
        BAD_INTS,
        [(-1, ValueError), (4097, ValueError)],
    ),
    (
        "poly_attention causal",
        None,
        lambda o, v: sa.poly_attention(Q, K, V, 2, causal=v),
        False,
        "causal",
        BAD_BOOLS,
        [],
    ),
    (
        "poly_attention return_stats",
        None,
        lambda o, v: sa.poly_attention(Q, K, V, 2, return_stats=v),
        False,
        "return_stats",
        BAD_BOOLS,
        [],
    ),
    (
        "poly_attention max_bytes",
        None,
        lambda o, v: sa.poly_attention(Q, K, V, 8, max_bytes=v),
        10**7,
        ("max_bytes", "bytes"),
        BAD_INTS,
        [(0, ValueError), (100, ValueError)],
    ),
    ("PolyPrefixState dv", None, lambda o, v: sa.PolyPrefixState(4, v, 2), 3, "dv", BAD_INTS, [(0, ValueError)]),
    (
        "CausalStream d",
        None,
        lambda o, v: sa.CausalStream(v),
        4,
        "d",
        BAD_INTS,
        [(0, ValueError), (2**16 + 1, ValueError)],
    ),
    ("CausalStream degree", None, lambda o, v: sa.CausalStream(4, degree=v), 2, "degree", BAD_INTS, [(9, ValueError)]),
    (
        "CausalStream scale",
        None,
        lambda o, v: sa.CausalStream(4, scale=v),
        0.5,
        "scale",
        BAD_REALS,
        [(0.0, ValueError), (-2.0, ValueError)],
    ),
    (
        "CausalStream chunk",
        None,
        lambda o, v: sa.CausalStream(4, chunk=v),
        8,
        "chunk",
        BAD_INTS,
        [(-1, ValueError), (4097, ValueError)],
    ),
    (
        "CausalStream seed",
        None,
        lambda o, v: sa.CausalStream(4, output_sketch=(1, 0.5), n=10, seed=v),
        1,
        "seed",
        BAD_SEEDS,
        [],
    ),
    (
        "CausalStream n",
        None,
        lambda o, v: sa.CausalStream(4, output_sketch=(1, 0.5), n=v),
        10,
        "n",
        BAD_INTS,
        [(0, ValueError)],
    ),
    (
        "CausalStream output k",
        None,
        lambda o, v: sa.CausalStream(4, output_sketch=(v, 0.5), n=10),
        1,
        "k",
        BAD_INTS,
        [(0, ValueError), (11, ValueError)],
    ),
    (
        "CausalStream output eps",
        None,
        lambda o, v: sa.CausalStream(4, output_sketch=(1, v), n=10),
        0.5,
        "eps",
        BAD_REALS,
        [(0.0, ValueError), (2.0, ValueError)],
    ),
    (
        "CausalStream delta",
        None,
        lambda o, v: sa.CausalStream(4, output_sketch=(1, 0.5), n=10, delta=v),
        0.1,
        "delta",
        BAD_REALS,
        [(1.0, ValueError)],
    ),
    (
        "CausalStream probe_positions",
        None,
        lambda o, v: sa.CausalStream(4, probes=Q[:2], probe_positions=v),
        [1, 2],
        "position",
        [],
        [([-1, 2], ValueError), ([1], ValueError), ([1.5, 2.0], TypeError)],
    ),
    (
        "CausalStream.update return_rows",
        causal,
        lambda o, v: o.update(Q, K, V, return_rows=v),
        True,
        "return_rows",
        BAD_BOOLS,
        [],
    ),
    (
        "CausalStream.sparse_columns method",
        causal,
        lambda o, v: o.sparse_columns(v),
        "standard",
        "method",
        BAD_STRS,
        [],
    ),
    ("KVStream state", None, lambda o, v: sa.KVStream(4, state=v), "exact", "state", BAD_STRS, []),
    ("KVStream sketch", None, lambda o, v: sa.KVStream(4, state="sketched", sketch=v), "ams", "sketch", BAD_STRS, []),
    (
        "KVStream sketch_size",
        None,
        lambda o, v: sa.KVStream(4, state="sketched", sketch_size=v),
        8,
        "sketch_size",
        BAD_INTS,
        [(0, ValueError)],
    ),
    (
        "KVStream sketch too large",
        None,
        lambda o, v: sa.KVStream(64, degree=4, state="sketched", sketch_size=v),
        8,
        ("bytes", "max_bytes"),
        [],
        [(2**24, ValueError)],
    ),
    (
        "KVStream first_token",
        None,
        lambda o, v: sa.KVStream(4, first_token=v),
        5,
        "first_token",
        BAD_INTS,
        [(2**61, ValueError)],
    ),
    ("KVStream seed", None, lambda o, v: sa.KVStream(4, state="sketched", seed=v), 1, "seed", BAD_SEEDS, []),
    ("plan n", None, lambda o, v: sa.plan(v, 4), 100, "n", BAD_INTS, [(0, ValueError)]),
    ("plan d", None, lambda o, v: sa.plan(100, v), 4, "d", BAD_INTS, [(0, ValueError)]),
    (
        "plan k",
        None,
        lambda o, v: sa.plan(100, 4, k=v, eps1=0.5),
        2,
        "k",
        BAD_INTS,
        [(0, ValueError), (101, ValueError)],
    ),
    (
        "plan eps1",
        None,
        lambda o, v: sa.plan(100, 4, k=2, eps1=v),
        0.5,
        "eps1",
        BAD_REALS,
        [(0.0, ValueError), (2.0, ValueError)],
    ),
    (
        "plan delta",
        None,
        lambda o, v: sa.plan(100, 4, delta=v),
        0.1,
        "delta",
        BAD_REALS,
        [(0.0, ValueError), (1.0, ValueError)],
    ),
    ("plan degree", None, lambda o, v: sa.plan(100, 4, degree=v), 2, "degree", BAD_INTS, [(9, ValueError)]),
    ("plan state", None, lambda o, v: sa.plan(100, 4, state=v), "exact", "state", BAD_STRS, []),
    ("plan too large", None, lambda o, v: sa.plan(100, v, degree=8), 4, ("t", "degree"), [], [(2**16, ValueError)]),
    ("set_isa", None, lambda o, v: sa.set_isa(v), "scalar", ("ISA", "name"), BAD_STRS, []),
]


def scalar_cases():
    for label, factory, call, good, name, table, extra in SCALAR_ENTRIES:
        yield pytest.param(factory, call, good, None, name, id=f"{label}-valid")
        for bad_label, value, exc in table:
            yield pytest.param(factory, call, value, exc, name, id=f"{label}-{bad_label}")
        for i, (value, exc) in enumerate(extra):
            yield pytest.param(factory, call, value, exc, name, id=f"{label}-extra{i}")


@pytest.mark.parametrize("factory, call, value, exc, name", list(scalar_cases()))
def test_bad_scalar_argument(factory, call, value, exc, name):
    obj = factory() if factory else None
    if exc is None:  # the table's valid value is accepted (so the bad ones fail for their own reason)
        call(obj, value)
        return
    expect_refused(obj, lambda o: call(o, value), exc, name)


# --- mismatched merges ---------------------------------------------------------------------------
MERGES = [
    ("CountSketch rows", count_sketch, lambda: sa.CountSketch(4, 16, seed=5, columns=2, dim=100), ValueError, "rows"),
    (
        "CountSketch buckets",
        count_sketch,
        lambda: sa.CountSketch(3, 32, seed=5, columns=2, dim=100),
        ValueError,
        "buckets",
    ),
    (
        "CountSketch columns",
        count_sketch,
        lambda: sa.CountSketch(3, 16, seed=5, columns=1, dim=100),
        ValueError,
        "columns",
    ),
    ("CountSketch dim", count_sketch, lambda: sa.CountSketch(3, 16, seed=5, columns=2, dim=101), ValueError, "dim"),
    ("CountSketch seed", count_sketch, lambda: sa.CountSketch(3, 16, seed=6, columns=2, dim=100), ValueError, "seed"),
    ("CountSketch kind", count_sketch, ams, TypeError, "other"),
    ("CountSketch None", count_sketch, lambda: None, TypeError, "other"),
    ("AMSSketch kind", ams, gaussian, TypeError, "other"),
    ("AMSSketch s", ams, lambda: sa.AMSSketch(9, seed=3, columns=2), ValueError, "s="),
    ("AMSSketch seed", ams, lambda: sa.AMSSketch(8, seed=4, columns=2), ValueError, "seed"),
    ("AMSSketch columns", ams, lambda: sa.AMSSketch(8, seed=3, columns=3), ValueError, "columns"),
    ("GaussianSketch seed", gaussian, lambda: sa.GaussianSketch(8, seed=4, columns=2), ValueError, "seed"),
    ("SparseRecovery n", sparse_recovery, lambda: sa.SparseRecovery(101, 2, 0.5, seed=1), ValueError, "n="),
    (
        "SparseRecovery k",
        sparse_recovery,
        lambda: sa.SparseRecovery(100, 3, 0.5, seed=1, buckets=16),
        ValueError,
        ("k=", "buckets"),
    ),
    (
        "SparseRecovery eps",
        sparse_recovery,
        lambda: sa.SparseRecovery(100, 2, 0.25, seed=1),
        ValueError,
        ("eps", "buckets"),
    ),
    ("SparseRecovery seed", sparse_recovery, lambda: sa.SparseRecovery(100, 2, 0.5, seed=2), ValueError, "seed"),
    ("SparseRecovery kind", sparse_recovery, sparse_matrix, TypeError, "other"),
    (
        "SparseRecoveryMatrix columns",
        sparse_matrix,
        lambda: sa.SparseRecoveryMatrix(100, 3, 2, 0.5, seed=1),
        ValueError,
        "columns",
    ),
    ("PolyPrefixState d", prefix_state, lambda: sa.PolyPrefixState(D + 1, DV, 2), ValueError, "d"),
    ("PolyPrefixState degree", prefix_state, lambda: sa.PolyPrefixState(D, DV, 4), ValueError, "degree"),
    ("PolyPrefixState scale", prefix_state, lambda: sa.PolyPrefixState(D, DV, 2, scale=0.3), ValueError, "scale"),
    ("KVStream kind", kv_exact, kv_sketched, ValueError, ("state", "sketched")),
    (
        "KVStream dv",
        kv_exact,
        lambda: sa.KVStream(D, DV + 1, probes=Q[:2], output_sketch=(2, 0.5), n=64),
        ValueError,
        "dv",
    ),
    (
        "KVStream degree",
        kv_exact,
        lambda: sa.KVStream(D, DV, degree=4, probes=Q[:2], output_sketch=(2, 0.5), n=64),
        ValueError,
        "degree",
    ),
    (
        "KVStream scale",
        kv_exact,
        lambda: sa.KVStream(D, DV, scale=0.3, probes=Q[:2], output_sketch=(2, 0.5), n=64),
        ValueError,
        "scale",
    ),
    ("KVStream probes", kv_exact, lambda: sa.KVStream(D, DV, output_sketch=(2, 0.5), n=64), ValueError, "probes"),
    (
        "KVStream other probes",
        kv_exact,
        lambda: sa.KVStream(D, DV, probes=Q[2:4], output_sketch=(2, 0.5), n=64),
        ValueError,
        "probes",
    ),
    ("KVStream output sketch", kv_exact, lambda: sa.KVStream(D, DV, probes=Q[:2]), ValueError, "output sketch"),
    (
        "KVStream output seed",
        kv_exact,
        lambda: sa.KVStream(D, DV, probes=Q[:2], output_sketch=(2, 0.5), n=64, seed=9),
        ValueError,
        "seed",
    ),
    (
        "KVStream sketch seed",
        kv_sketched,
        lambda: sa.KVStream(D, DV, state="sketched", sketch_size=16, seed=3, first_token=100),
        ValueError,
        "seed",
    ),
    (
        "KVStream sketch size",
        kv_sketched,
        lambda: sa.KVStream(D, DV, state="sketched", sketch_size=8, seed=2, first_token=100),
        ValueError,
        "s=",
    ),
    ("KVStream overlap", kv_sketched, kv_sketched, ValueError, "overlap"),
]


@pytest.mark.parametrize("factory, other, exc, name", [pytest.param(*m[1:], id=m[0]) for m in MERGES])
def test_mismatched_merge(factory, other, exc, name):
    obj, o = factory(), other()
    if isinstance(o, sa.KVStream) and o.tokens_seen == 0:
        o.add(K[:, : o.d], np.ones((len(K), o.dv)))
    other_before = snapshot(o) if o is not None else None
    expect_refused(obj, lambda x: x.merge(o), exc, name)
    if o is not None:
        assert snapshot(o) == other_before


def test_merge_after_query_is_refused():
    a, b = kv_exact(), kv_exact()
    a.query(Q[:2])
    expect_refused(a, lambda x: x.merge(b), ValueError, "quer")
    expect_refused(b, lambda x: x.merge(a), ValueError, "quer")


# --- calls in an invalid state -------------------------------------------------------------------
def test_query_before_any_key():
    expect_refused(sa.KVStream(D, DV), lambda s: s.query(Q), ValueError, "add")
    expect_refused(sa.PolyPrefixState(D, DV, 2), lambda s: s.apply(Q), ValueError, "absorb")


def test_certificate_and_sparse_columns_without_them():
    for s in (sa.CausalStream(D, DV), sa.KVStream(D, DV)):
        expect_refused(s, lambda x: x.certificate(), ValueError, "probes")
        expect_refused(s, lambda x: x.sparse_columns(), ValueError, "output_sketch")
        with pytest.raises(ValueError, match="output_sketch"):
            _ = s.output_sketch


def test_output_sketch_exhausted_then_continue():
    s = sa.CausalStream(D, DV, output_sketch=(2, 0.5), n=10)
    s.update(Q, K, V)
    expect_refused(s, lambda x: x.update(Q, K, V), ValueError, "n = 10")
    s.update(Q[:2], K[:2], V[:2])  # exactly fills it
    assert s.tokens_seen == 10
    kv = sa.KVStream(D, DV, output_sketch=(2, 0.5), n=4)
    kv.add(K, V)
    kv.query(Q[:3])
    expect_refused(kv, lambda x: x.query(Q[:2]), ValueError, "n = 4")


@pytest.mark.parametrize("make", [causal, kv_exact, kv_sketched, prefix_state, count_sketch, sparse_matrix])
def test_rejected_call_then_valid_calls_match_a_clean_object(make):
    """A refused call (NaN row in the middle of a block) leaves no trace: what follows gives the
    same bytes as an object that never saw it."""
    dirty, clean = make(), make()
    Qb, Kb, Vb = arrays(9, seed=11)
    Kb_bad = Kb.copy()
    Kb_bad[5, 1] = np.nan
    if isinstance(dirty, sa.CausalStream):
        ops = lambda s, k: s.update(Qb, k, Vb)  # noqa: E731
    elif isinstance(dirty, sa.KVStream):
        ops = lambda s, k: s.add(k, Vb)  # noqa: E731
    elif isinstance(dirty, sa.PolyPrefixState):
        ops = lambda s, k: s.absorb(k, Vb)  # noqa: E731
    elif isinstance(dirty, sa.CountSketch):
        ops = lambda s, k: s.update_rows(20, k[:, :2])  # noqa: E731
    else:
        ops = lambda s, k: s.update_rows(20, k[:, :2])  # noqa: E731
    with pytest.raises(ValueError, match="K|X|non-finite"):
        ops(dirty, Kb_bad)
    ops(dirty, Kb)
    ops(clean, Kb)
    assert snapshot(dirty) == snapshot(clean)


def test_odd_degree_failure_restores_the_stream():
    # Degree 1: P_1(x) = 1 + x < 0 for strongly anti-aligned q, k, so the normalizer can go <= 0.
    q = np.array([[3.0, 0, 0, 0]])
    k = np.array([[-3.0, 0, 0, 0]])
    s = sa.CausalStream(D, DV, degree=1, scale=1.0)
    s.update(Q[:2] * 0.1, K[:2] * 0.1, V[:2])
    before = s.to_bytes()
    with pytest.raises(ValueError, match="normalizer"):
        s.update(np.vstack([q, q]), np.vstack([k, k]), V[:2])
    assert s.to_bytes() == before
    s.update(Q[2:4] * 0.1, K[2:4] * 0.1, V[2:4])
    assert s.tokens_seen == 4


def test_unbounded_rows_are_refused_before_they_poison_the_state():
    """|x| so large that c|x|^2 > 1e30 would make M and s inf/NaN for good."""
    for obj, call, name in [
        (prefix_state(), lambda s: s.absorb(K * 1e200, V), "K"),
        (prefix_state(), lambda s: s.absorb(K, V * 1e200), "V"),
        (prefix_state(), lambda s: s.apply(Q * 1e200), "Q"),
        (causal(), lambda s: s.update(Q * 1e200, K, V), "Q"),
        (kv_exact(), lambda s: s.add(K * 1e200, V), "K"),
        (kv_sketched(), lambda s: s.add(K, V * 1e200), "V"),
        (kv_exact(), lambda s: s.query(Q * 1e200), "Q"),
        (None, lambda s: sa.poly_attention(Q * 1e200, K, V, 2), "Q"),
        (None, lambda s: sa.poly_attention(Q, K * 1e200, V, 2), "K"),
    ]:
        expect_refused(obj, call, ValueError, name)


def test_sparse_vector_unpickling_is_checked():
    v = sa.SparseVector(10, [1, 4], [1.0, 2.0])
    assert pickle.loads(pickle.dumps(v)) == v
    fn, args, state = v.__reduce_ex__(2)[:3]
    for bad, name in [
        ((10, [1, 40], [1.0, 2.0]), "indices"),
        ((10, [4, 1], [1.0, 2.0]), "increasing"),
        ((10, [1], [1.0, 2.0]), "same length"),
        ((-1, [1], [1.0]), "n"),
        ((10, [1], [np.nan]), "values"),
        ((10,), "pickle"),
    ]:
        w = sa.SparseVector.__new__(sa.SparseVector)
        with pytest.raises((ValueError, TypeError), match=name):
            w.__setstate__(bad)


# --- empty input and zero-length blocks ----------------------------------------------------------
def test_empty_arrays_and_zero_length_blocks_change_nothing():
    for obj, call in [
        (causal(), lambda s: s.update(Q[:0], K[:0], V[:0])),
        (kv_exact(), lambda s: s.add(K[:0], V[:0])),
        (kv_sketched(), lambda s: s.add(K[:0], V[:0])),
        (kv_exact(), lambda s: s.query(Q[:0])),
        (prefix_state(), lambda s: s.absorb(K[:0], V[:0])),
        (count_sketch(), lambda s: s.update(IDX[:0], SK_VALS[:0])),
        (count_sketch(), lambda s: s.update_rows(100, SK_VALS[:0])),
        (ams(), lambda s: s.update_rows(0, SK_VALS[:0])),
        (gaussian(), lambda s: s.update_rows(0, SK_VALS[:0])),
        (sparse_recovery(), lambda s: s.update(IDX[:0], VALS[:0])),
        (sparse_recovery(), lambda s: s.update_dense(100, VALS[:0])),
        (sparse_matrix(), lambda s: s.update_rows(0, SK_VALS[:0])),
    ]:
        before = snapshot(obj)
        call(obj)
        assert snapshot(obj) == before
    assert causal().update(Q[:0], K[:0], V[:0]).shape == (0, DV)
    assert kv_exact().query(Q[:0]).shape == (0, DV)
    assert sa.exact_attention(Q[:0], K, V).shape == (0, DV)
    assert sa.poly_attention(Q[:0], K, V, 2).shape == (0, DV)
    assert sa.TaylorFeatures(D, 2).transform(Q[:0]).shape == (0, 15)
    assert count_sketch().estimate(IDX[:0]).shape == (0, 2)
    assert sa.KWiseHash(2).hash(np.zeros(0, np.uint64)).shape == (0,)
    with pytest.raises(ValueError, match="K"):
        sa.exact_attention(Q, K[:0], V[:0])
    with pytest.raises(ValueError, match="K"):
        sa.poly_attention(Q, K[:0], V[:0], 2)
    with pytest.raises(ValueError, match="column"):
        sa.AMSSketch(4).update_rows(0, np.zeros((3, 0)))
    with pytest.raises(ValueError, match="d"):
        sa.exact_attention(Q[:, :0], K[:, :0], V)


# --- views: strided, reversed, F-order, broadcast, unaligned, byte-swapped ----------------------
def views(x: np.ndarray):
    """(label, view) pairs whose values equal np.ascontiguousarray(view)."""
    out = [
        ("F-order", np.asfortranarray(x)),
        ("reversed rows", x[::-1]),
        ("step 2 rows", np.repeat(x, 2, axis=0)[::2]),
        ("byte-swapped", x.astype(x.dtype.newbyteorder(">" if x.dtype.byteorder != ">" else "<"))),
    ]
    if x.ndim == 2:
        out += [
            ("reversed columns", x[:, ::-1]),
            ("reversed both", x[::-1, ::-1]),
            ("column slice", np.repeat(x, 2, axis=1)[:, ::2]),
            ("transposed copy view", np.ascontiguousarray(x.T).T),
            ("broadcast row", np.broadcast_to(x[:1], x.shape)),
        ]
    else:
        out.append(("broadcast", np.broadcast_to(x[:1], x.shape)))
    buf = np.zeros(x.nbytes + x.itemsize, dtype=np.uint8)
    un = np.frombuffer(buf.data, dtype=x.dtype, count=x.size, offset=1).reshape(x.shape)
    un[...] = x
    out.append(("unaligned", un))
    return out


def view_entries():
    # (label, factory, call(obj, *arrays) -> comparable, arrays)
    def res(obj, r):
        return snapshot(obj) if r is None else np.asarray(r)

    return [
        ("exact_attention", None, lambda o, q, k, v: sa.exact_attention(q, k, v), (Q, K, V)),
        ("exact_attention causal", None, lambda o, q, k, v: sa.exact_attention(q, k, v, causal=True), (Q, K, V)),
        ("poly_attention", None, lambda o, q, k, v: sa.poly_attention(q, k, v, 2), (Q, K, V)),
        (
            "poly_attention causal",
            None,
            lambda o, q, k, v: sa.poly_attention(q, k, v, 2, causal=True, chunk=3),
            (Q, K, V),
        ),
        ("TaylorFeatures.transform", lambda: sa.TaylorFeatures(D, 3), lambda o, x: o.transform(x), (Q,)),
        ("PolyPrefixState.absorb", prefix_state, lambda o, k, v: res(o, o.absorb(k, v)), (K, V)),
        ("PolyPrefixState.apply", prefix_state, lambda o, q: o.apply(q), (Q,)),
        ("CausalStream.update", causal, lambda o, q, k, v: (o.update(q, k, v), snapshot(o)), (Q, K, V)),
        ("KVStream.add", kv_exact, lambda o, k, v: res(o, o.add(k, v)), (K, V)),
        ("KVStream.add sketched", kv_sketched, lambda o, k, v: res(o, o.add(k, v)), (K, V)),
        ("KVStream.query", kv_exact, lambda o, q: (o.query(q), snapshot(o)), (Q,)),
        ("CountSketch.update", count_sketch, lambda o, x: res(o, o.update(IDX, x)), (SK_VALS,)),
        ("CountSketch.update_rows", count_sketch, lambda o, x: res(o, o.update_rows(30, x)), (SK_VALS,)),
        ("AMSSketch.update_rows", ams, lambda o, x: res(o, o.update_rows(30, x)), (SK_VALS,)),
        ("GaussianSketch.update_rows", gaussian, lambda o, x: res(o, o.update_rows(30, x)), (SK_VALS,)),
        ("SparseRecovery.update", sparse_recovery, lambda o, x: res(o, o.update(IDX, x)), (VALS,)),
        ("SparseRecovery.update_dense", sparse_recovery, lambda o, x: res(o, o.update_dense(30, x)), (VALS,)),
        ("SparseRecoveryMatrix.update_rows", sparse_matrix, lambda o, x: res(o, o.update_rows(30, x)), (SK_VALS,)),
    ]


def view_cases():
    for label, factory, call, arrs in view_entries():
        for pos in range(len(arrs)):
            for vlabel, _ in views(arrs[pos]):
                yield pytest.param(factory, call, arrs, pos, vlabel, id=f"{label}-{pos}-{vlabel}")
            yield pytest.param(factory, call, arrs, pos, "float32", id=f"{label}-{pos}-float32-views")


def same(a, b):
    if isinstance(a, tuple):
        return all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray):
        return a.shape == b.shape and np.array_equal(a, b)
    return a == b


@pytest.mark.parametrize("factory, call, arrs, pos, vlabel", list(view_cases()))
def test_views_give_the_same_result_as_contiguous_input(factory, call, arrs, pos, vlabel):
    arrs = list(arrs)
    if vlabel == "float32":
        arrs = [a.astype(np.float32) for a in arrs]
        cand = [v for _, v in views(arrs[pos])]
    else:
        cand = [dict(views(arrs[pos]))[vlabel]]
    for view in cand:
        contiguous = list(arrs)
        contiguous[pos] = np.ascontiguousarray(view).astype(view.dtype.newbyteorder("="))
        strided = list(arrs)
        strided[pos] = view
        a = call(factory() if factory else None, *contiguous)
        b = call(factory() if factory else None, *strided)
        assert same(a, b), f"{vlabel} view gives a different result"


# --- from_bytes: argument types (corrupted bytes are tests/test_serialized_bytes.py) --------
FROM_BYTES = [
    sa.CountSketch,
    sa.AMSSketch,
    sa.GaussianSketch,
    sa.SparseRecovery,
    sa.SparseRecoveryMatrix,
    sa.CausalStream,
    sa.KVStream,
]


@pytest.mark.parametrize("cls", FROM_BYTES, ids=lambda c: c.__name__)
@pytest.mark.parametrize(
    "value, exc",
    [
        ("abc", TypeError),
        (None, TypeError),
        (123, TypeError),
        ([1, 2], TypeError),
        (np.zeros(4), TypeError),
        (b"", ValueError),
        (bytearray(b"SATN"), ValueError),
        (memoryview(b"x" * 40), ValueError),
    ],
)
def test_from_bytes_argument(cls, value, exc):
    with pytest.raises(exc, match="data|bytes"):
        cls.from_bytes(value)


def test_from_bytes_accepts_bytearray_and_memoryview():
    b = count_sketch().to_bytes()
    for x in (bytearray(b), memoryview(b)):
        assert sa.CountSketch.from_bytes(x).to_bytes() == b


@pytest.mark.parametrize(
    "make", [count_sketch, ams, gaussian, sparse_recovery, sparse_matrix, causal, kv_exact, kv_sketched]
)
def test_unpickling_garbage_is_a_clear_error(make):
    obj = make()
    fn, args = obj.__reduce_ex__(2)[:2]
    cls = type(obj)
    w = cls.__new__(cls)
    with pytest.raises((ValueError, TypeError)):
        w.__setstate__(b"garbage")
    with pytest.raises((ValueError, TypeError)):
        w.__setstate__("not bytes")


# --- the command line -----------------------------------------------------------------------------
CLI_BAD_VALUES = {
    "--n": ["0", "-1", "2.5", "nan", str(2**70), "lots"],
    "--d": ["0", "-3", str(2**20), "x"],
    "--dv": ["0", "-1", str(2**20)],
    "--degree": ["-1", "9", "2.0"],
    "--eps": ["0", "-1", "nan", "inf"],
    "--scale": ["0", "-1", "nan", "inf"],
    "--chunk": ["0", "-1", "100000"],
    "--seed": ["-1", str(2**64), "1.5"],
    "--beta": ["-1", "nan", "inf"],
    "--delta": ["0", "1", "nan", "-0.5"],
    "--block": ["0", "-8"],
    "--probes": ["-1", "x"],
}
RUN_BASE = ["run", "--n", "64", "--d", "4", "--no-progress", "--json"]


def cli_cases():
    for opt, values in CLI_BAD_VALUES.items():
        for v in values:
            argv = RUN_BASE + [opt, v]
            if opt == "--n":
                argv = ["run", "--d", "4", "--no-progress", "--json", opt, v]
            if opt == "--eps":
                argv += ["--beta", "0.5"]
            yield pytest.param(argv, opt, id=f"run {opt} {v}")
    for opt, v in [
        ("--n", "0"),
        ("--n", "-5"),
        ("--d", "0"),
        ("--k", "0"),
        ("--eps1", "2"),
        ("--eps2", "0"),
        ("--delta", "1"),
        ("--degree", "10"),
        ("--beta", "nan"),
        ("--sketch-size", "0"),
        ("--chunk", "0"),
        ("--state", "x"),
        ("--d", str(2**20)),
        ("--n", str(2**70)),
    ]:
        yield pytest.param(["plan", opt, v] + (["--k", "2"] if opt == "--eps1" else []), opt, id=f"plan {opt} {v}")


@pytest.mark.parametrize("argv, opt", list(cli_cases()))
def test_cli_bad_values_exit_2_naming_the_option(argv, opt, capsys):
    from streamattn.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "error" in err
    names = {opt, opt.lstrip("-"), opt.lstrip("-").replace("-", "_")}
    assert any(n in err for n in names), err
