"""Sample objects shared by the tests and the fuzz harness: every builder returns a fresh object
with some state already streamed in (fixed seeds, so the bytes of each are the same every run).

* ``count_sketch()`` ... ``kv_sketched()`` with the arrays ``Q, K, V, IDX, VALS, SK_VALS`` (d = D,
  dv = DV): objects that tests/test_bad_input.py feeds bad input and then compares byte for byte.
* ``serialized_objects()``: one small object per serialized kind (with probes, output sketches and
  both KVStream states), a few hundred bytes to a few KB each, small enough to flip every bit of:
  tests/test_serialized_bytes.py attacks their bytes and fuzz/fuzz_from_bytes.py seeds its corpus
  with them, together with ``degenerate_objects()`` (degree 0, d = 1, nothing streamed).

Importable as ``samples`` from the tests (pytest puts tests/ on sys.path) and from fuzz/ (which
adds tests/ to sys.path, as for tests/framing.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np

import streamattn as sa

D, DV = 4, 3


def arrays(n: int = 8, seed: int = 7) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Q (n x D), K (n x D), V (n x DV): small normal entries, scores well inside every bound."""
    r = np.random.default_rng(seed)
    return (r.normal(size=(n, D)) * 0.4, r.normal(size=(n, D)) * 0.4, r.normal(size=(n, DV)))


Q, K, V = arrays()
IDX = np.array([3, 1, 4, 1, 5], dtype=np.int64)
VALS = np.array([0.5, -1.0, 2.0, 0.25, 1.5])
SK_VALS = np.stack([VALS, -VALS], axis=1)


# --- fresh objects with some state ---------------------------------------------------------
def count_sketch() -> sa.CountSketch:
    cs = sa.CountSketch(3, 16, seed=5, columns=2, dim=100)
    cs.update(IDX, np.stack([VALS, -VALS], axis=1))
    return cs


def ams() -> sa.AMSSketch:
    s = sa.AMSSketch(8, seed=3, columns=2)
    s.update_rows(0, np.ones((5, 2)))
    return s


def gaussian() -> sa.GaussianSketch:
    s = sa.GaussianSketch(8, seed=3, columns=2)
    s.update_rows(0, np.ones((5, 2)))
    return s


def sparse_recovery() -> sa.SparseRecovery:
    s = sa.SparseRecovery(100, 2, 0.5, seed=1)
    s.update(IDX, VALS)
    return s


def sparse_matrix() -> sa.SparseRecoveryMatrix:
    s = sa.SparseRecoveryMatrix(100, 2, 2, 0.5, seed=1)
    s.update(IDX, np.stack([VALS, VALS], axis=1))
    return s


def prefix_state() -> sa.PolyPrefixState:
    s = sa.PolyPrefixState(D, DV, 2)
    s.absorb(K, V)
    return s


def causal() -> sa.CausalStream:
    s = sa.CausalStream(D, DV, degree=2, chunk=4, probes=Q[:2], probe_positions=[3, 20], output_sketch=(2, 0.5), n=64)
    s.update(Q, K, V)
    return s


def kv_exact() -> sa.KVStream:
    s = sa.KVStream(D, DV, probes=Q[:2], output_sketch=(2, 0.5), n=64)
    s.add(K, V)
    return s


def kv_sketched() -> sa.KVStream:
    s = sa.KVStream(D, DV, state="sketched", sketch_size=16, seed=2)
    s.add(K, V)
    return s


# --- small objects of every serialized kind ------------------------------------------------
def serialized_objects() -> dict[str, Any]:
    """One small object per serialized kind (each a few hundred bytes to a few KB), by label."""
    d, dv = 3, 2
    r = np.random.default_rng(3)
    q, k, v = r.normal(size=(6, d)) * 0.5, r.normal(size=(6, d)) * 0.5, r.normal(size=(6, dv))
    cs = sa.CountSketch(2, 3, seed=1, columns=2, dim=50)
    cs.update([1, 7], [[1.0, 2.0], [3.0, -1.0]])
    ams = sa.AMSSketch(3, seed=2)
    ams.update_rows(0, np.ones((4, 2)))
    gs = sa.GaussianSketch(3, seed=2)
    gs.update_rows(5, np.ones((4, 1)))
    sr = sa.SparseRecovery(8, 1, 1.0, seed=3, rows=3, buckets=4)
    sr.update([2, 5], [1.0, -2.0])
    srm = sa.SparseRecoveryMatrix(8, 2, 1, 1.0, seed=3, rows=3, buckets=4)
    srm.update_rows(0, np.ones((3, 2)))
    causal = sa.CausalStream(
        d,
        dv,
        degree=2,
        chunk=4,
        probes=q[:2],
        probe_positions=[1, 9],
        output_sketch=sa.SparseRecoveryMatrix(16, dv, 1, 1.0, seed=4, rows=3, buckets=4),
    )
    causal.update(q, k, v)
    kv = sa.KVStream(
        d, dv, degree=2, probes=q[:1], output_sketch=sa.SparseRecoveryMatrix(16, dv, 1, 1.0, seed=4, rows=3, buckets=4)
    )
    kv.add(k, v)
    kv.query(q[:2])
    kvs = sa.KVStream(d, dv, degree=1, state="sketched", sketch="gaussian", sketch_size=3, seed=5)
    kvs.add(k, v)
    kva = sa.KVStream(d, dv, degree=1, state="sketched", sketch="ams", sketch_size=3, seed=5, probes=q[:1])
    kva.add(k, v)
    seg = sa.CausalSegment(d, dv, degree=2, first_token=7, chunk=4)
    seg.absorb(k, v, log_gate=[-0.1, 0.0, -0.2, -0.05, 0.0, -1.0])
    return {
        "CountSketch": cs,
        "AMSSketch": ams,
        "GaussianSketch": gs,
        "SparseRecovery": sr,
        "SparseRecoveryMatrix": srm,
        "CausalStream": causal,
        "KVStream exact": kv,
        "KVStream gaussian": kvs,
        "KVStream ams": kva,
        "CausalSegment": seg,
    }


def degenerate_objects() -> dict[str, Any]:
    """Valid objects at the edges of the formats: degree 0, d = dv = 1, a sketch of one row."""
    r = np.random.default_rng(1)
    _, k, v = r.normal(size=(5, 2)) * 0.5, r.normal(size=(5, 2)) * 0.5, r.normal(size=(5, 2))
    fresh = sa.CausalStream(2, 1, degree=0)
    kvg = sa.KVStream(1, 1, degree=0, state="sketched", sketch="gaussian", sketch_size=1, seed=5)
    kvg.add(k[:, :1], v[:, :1])
    return {"CausalStream degree 0, nothing streamed": fresh, "KVStream d = 1, gaussian sketch of 1 row": kvg}
