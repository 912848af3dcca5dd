"""Numerics (docs/design.md §2.5, issue 7): float64 accumulation of the stream state (the fast version
of bench/bench_numerics.py, which runs n = 10^8), and float32 input within float32 rounding of
float64 input."""

from __future__ import annotations

import importlib.util
import pathlib

import numpy as np
import pytest

import streamattn as sa

BENCH = pathlib.Path(__file__).resolve().parents[1] / "bench" / "bench_numerics.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_numerics", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("kind", ["kv", "causal"])
def test_state_accumulation_matches_a_compensated_reference(kind):
    """2^20 float32 tokens in blocks of 2^15: the float64 state is within 1e-9 relative (in
    practice ~1e-14) of a longdouble reference computed from the same blocks."""
    r = load_bench().run(
        kind,
        n=1 << 20 if kind == "kv" else 1 << 18,
        d=4,
        dv=2,
        degree=2,
        block=1 << 15,
        seed=7,
        scale=0.5,
        mean_v=1.0,
        compute="float64",
    )
    assert r["rel_fro_M"] <= 1e-9 and r["rel_fro_s"] <= 1e-9, r
    assert r["s0_minus_n"] == 0.0  # the constant feature counts the tokens exactly


def test_float32_compute_state_accumulation():
    """The float32 compute path (the default for float32 inputs): every chunk's product is formed
    in float32 (~2^-24 relative per chunk) and added into the float64 state, so the errors of the
    chunks add like a random walk and the state's relative error falls with the number of chunks:
    measured 8.6e-9 at 2^18 tokens (1024 chunks of 256), bounded here by 5e-8; s (float64 sums)
    and its token count stay exact as on the float64 path."""
    r = load_bench().run(
        "causal", n=1 << 18, d=4, dv=2, degree=2, block=1 << 15, seed=7, scale=0.5, mean_v=1.0, compute="float32"
    )
    assert 1e-12 < r["rel_fro_M"] <= 5e-8, r
    assert r["rel_fro_s"] <= 1e-9 and r["s0_minus_n"] == 0.0, r


def test_the_reference_can_tell_float32_accumulation_apart():
    """Sanity check of the yardstick: summing the same contributions in float32 misses 1e-9."""
    rng = np.random.default_rng(1)
    x = (rng.standard_normal(1 << 20, dtype=np.float32) + 1).astype(np.float64)
    exact = np.sum(x.astype(np.longdouble))
    f32 = np.float32(0)
    for chunk in np.split(x.astype(np.float32), 64):
        f32 = np.float32(f32 + np.float32(chunk.sum(dtype=np.float32)))
    assert abs(float(f32) - float(exact)) / abs(float(exact)) > 1e-9
    assert abs(float(np.sum(x)) - float(exact)) / abs(float(exact)) < 1e-12


def data(seed, n=300, d=6, dv=3, scale=0.4):
    r = np.random.default_rng(seed)
    return r.normal(size=(n, d)) * scale, r.normal(size=(n, d)) * scale, r.normal(size=(n, dv))


U32 = 2.0**-24  # unit roundoff of float32


def f32(*xs):
    return [x.astype(np.float32) for x in xs]


def f64(*xs):
    return [x.astype(np.float64) for x in xs]


CALLS = [
    ("exact_attention", lambda q, k, v: sa.exact_attention(q, k, v)),
    ("exact_attention causal", lambda q, k, v: sa.exact_attention(q, k, v, causal=True)),
    ("poly_attention", lambda q, k, v: sa.poly_attention(q, k, v, 2)),
    ("poly_attention causal", lambda q, k, v: sa.poly_attention(q, k, v, 4, causal=True, chunk=64)),
    (
        "CausalStream",
        lambda q, k, v: sa.CausalStream(q.shape[1], v.shape[1], degree=2, chunk=50, compute="float64").update(q, k, v),
    ),
    ("KVStream", lambda q, k, v: (lambda s: (s.add(k, v), s.query(q))[1])(sa.KVStream(q.shape[1], v.shape[1]))),
    (
        "KVStream sketched",
        lambda q, k, v: (lambda s: (s.add(k, v), s.query(q))[1])(
            sa.KVStream(q.shape[1], v.shape[1], state="sketched", sketch_size=64, seed=3)
        ),
    ),
    (
        "PolyPrefixState",
        lambda q, k, v: (lambda s: (s.absorb(k, v), s.apply(q))[1])(sa.PolyPrefixState(q.shape[1], v.shape[1], 2)),
    ),
]


# Calls whose float32 inputs give float32 rows (issue 17); the others return float64.
FLOAT32_OUT = {
    "exact_attention",
    "exact_attention causal",
    "poly_attention",
    "poly_attention causal",
    "CausalStream",
    "KVStream",
    "KVStream sketched",
}


@pytest.mark.parametrize("name, call", CALLS, ids=[c[0] for c in CALLS])
def test_float32_input_equals_float64_input_of_the_same_values(name, call):
    """float32 arrays are widened exactly and everything runs in float64: the same values in
    float32 or float64 give the same answer up to float64 rounding. Where float32 inputs give
    float32 rows, those are the float64 result rounded once (within 2^-24 relative)."""
    q, k, v = f32(*data(1))
    a = call(q, k, v)
    b = call(*f64(q, k, v))
    if name in FLOAT32_OUT:
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=2.0**-23, atol=1e-30)
    else:
        assert a.dtype == np.float64
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name, call", CALLS, ids=[c[0] for c in CALLS])
def test_float32_input_within_float32_rounding_of_float64_input(name, call):
    """Rounding the inputs to float32 (relative change <= 2^-24 per entry) moves the outputs by a
    small multiple of 2^-24 times the output scale: the only float32 error is the input's."""
    q, k, v = data(2)
    ref = call(q, k, v)
    got = call(*f32(q, k, v))
    err = np.max(np.abs(got - ref)) / np.max(np.abs(ref))
    assert err <= 64 * U32, err


@pytest.mark.parametrize("degree, chunk", [(2, 32), (4, 50), (2, 300)])
def test_float32_compute_path_within_float32_rounding_of_float64(degree, chunk):
    """The float32 compute path (float32 features, scores and chunk products, float64 state and
    normalization) on float32 inputs stays within the same 64 * 2^-24 of the float64 answer as
    rounding the inputs alone; the multi-head stream runs the same path on every head."""
    q, k, v = data(2)
    ref = sa.CausalStream(6, 3, degree=degree, chunk=chunk, compute="float64").update(q, k, v)
    got = sa.CausalStream(6, 3, degree=degree, chunk=chunk).update(*f32(q, k, v))
    err = np.max(np.abs(got - ref)) / np.max(np.abs(ref))
    assert err <= 64 * U32, err
    mh = sa.MultiHeadCausalStream(2, 1, 6, 3, degree=degree, chunk=chunk, threads=1)
    assert mh.compute is None
    q32, k32, v32 = f32(q, k, v)
    out = mh.update(np.stack([q32, q32]), k32[None], v32[None])
    np.testing.assert_array_equal(out[0], got)
    np.testing.assert_array_equal(out[1], got)
