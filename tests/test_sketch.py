"""CountSketch, AMSSketch, GaussianSketch: definition, linearity, merge, bytes, bad input."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from scipy import stats

import streamattn
from streamattn import AMSSketch, CountSketch, GaussianSketch


def reference_table(cs: CountSketch, X: np.ndarray, start: int = 0) -> np.ndarray:
    """The definition, written out with the sketch's own hash functions."""
    X = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
    keys = np.arange(start, start + len(X), dtype=np.uint64)
    T = np.zeros((cs.rows, cs.buckets, X.shape[1]))
    for r in range(cs.rows):
        b = cs.bucket_hash(r).bucket(keys, cs.buckets)
        s = cs.sign_hash(r).sign(keys).astype(np.float64)
        np.add.at(T[r], b, s[:, None] * X)
    return T if cs.columns > 1 else T[..., 0]


# --- CountSketch -------------------------------------------------------------------------
def test_count_sketch_matches_its_definition(rng):
    cs = CountSketch(5, 37, seed=11, columns=3)
    X = rng.normal(size=(1000, 3))
    cs.update_rows(100, X)
    np.testing.assert_allclose(cs.table, reference_table(cs, X, 100), rtol=1e-12, atol=1e-12)


def test_count_sketch_vector_update_equals_update_rows(rng):
    x = rng.normal(size=500)
    a = CountSketch(4, 16, seed=3)
    a.update_rows(0, x)
    b = CountSketch(4, 16, seed=3)
    b.update(np.arange(500), x)
    np.testing.assert_allclose(a.table, b.table, rtol=1e-13, atol=1e-13)


def test_count_sketch_is_linear_and_order_free(rng):
    n = 2000
    x, y = rng.normal(size=n), rng.normal(size=n)
    sx, sy, sxy = (CountSketch(7, 50, seed=5, dim=n) for _ in range(3))
    sx.update_rows(0, x)
    sy.update_rows(0, y)
    sxy.update_rows(0, x + y)
    np.testing.assert_allclose(sx.table + sy.table, sxy.table, rtol=1e-12, atol=1e-12)
    # turnstile: the same updates in a shuffled order, split in repeated pieces
    idx = np.concatenate([np.arange(n), np.arange(n)])
    vals = np.concatenate([x + y - 1.0, np.ones(n)])
    perm = rng.permutation(len(idx))
    st = CountSketch(7, 50, seed=5, dim=n)
    for part in np.array_split(perm, 7):
        st.update(idx[part], vals[part])
    np.testing.assert_allclose(st.table, sxy.table, rtol=1e-10, atol=1e-10)


def test_count_sketch_recovers_isolated_heavy_coordinates():
    n = 100_000
    x = np.zeros(n)
    heavy = [0, 17, 4096, n - 1]
    x[heavy] = [5.0, -3.0, 100.0, 1e-3]
    cs = CountSketch(9, 64, seed=1, dim=n)
    cs.update_rows(0, x)
    np.testing.assert_allclose(cs.estimate(np.array(heavy)), x[heavy], rtol=0, atol=1e-12)


def test_count_sketch_merge_equals_whole_stream(rng):
    X = rng.normal(size=(3000, 2))
    whole = CountSketch(5, 40, seed=9, columns=2)
    whole.update_rows(0, X)
    a, b = CountSketch(5, 40, seed=9, columns=2), CountSketch(5, 40, seed=9, columns=2)
    a.update_rows(0, X[:1234])
    b.update_rows(1234, X[1234:])
    a.merge(b)
    np.testing.assert_allclose(a.table, whole.table, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "other, what",
    [
        (dict(rows=6, buckets=40, seed=9, columns=2), "shape"),
        (dict(rows=5, buckets=41, seed=9, columns=2), "shape"),
        (dict(rows=5, buckets=40, seed=9, columns=1), "shape"),
        (dict(rows=5, buckets=40, seed=10, columns=2), "seed"),
        (dict(rows=5, buckets=40, seed=9, columns=2, dim=100), "dim"),
    ],
)
def test_count_sketch_merge_refuses_incompatible(other, what):
    a = CountSketch(5, 40, seed=9, columns=2)
    a.update_rows(0, np.ones((3, 2)))
    before = a.to_bytes()
    with pytest.raises(ValueError, match=what if what != "shape" else "shape"):
        a.merge(CountSketch(**other))
    assert a.to_bytes() == before
    with pytest.raises(TypeError):
        a.merge(AMSSketch(4, 9))


def test_count_sketch_float32_accumulates_in_float64(rng):
    X32 = rng.normal(size=(5000, 4)).astype(np.float32)
    a, b = CountSketch(3, 20, seed=1, columns=4), CountSketch(3, 20, seed=1, columns=4)
    a.update_rows(0, X32)
    b.update_rows(0, X32.astype(np.float64))
    np.testing.assert_array_equal(a.table, b.table)


def test_count_sketch_accepts_any_layout(rng):
    base = rng.normal(size=(400, 6))
    ref = CountSketch(3, 20, seed=2, columns=3)
    ref.update_rows(0, np.ascontiguousarray(base[:, ::2]))
    for view in (base[:, ::2], np.asfortranarray(base[:, ::2]), base[::-1][::-1, ::2]):
        cs = CountSketch(3, 20, seed=2, columns=3)
        cs.update_rows(0, view)
        np.testing.assert_array_equal(cs.table, ref.table)
    neg = base[::-1, ::2]
    cs = CountSketch(3, 20, seed=2, columns=3)
    cs.update_rows(0, neg[::-1])
    np.testing.assert_array_equal(cs.table, ref.table)


def test_count_sketch_bytes_and_pickle_round_trip(rng):
    cs = CountSketch(4, 33, seed=123456789, columns=2, dim=10**6)
    cs.update(rng.integers(0, 10**6, 100), rng.normal(size=(100, 2)))
    for back in (CountSketch.from_bytes(cs.to_bytes()), pickle.loads(pickle.dumps(cs))):
        assert back.to_bytes() == cs.to_bytes()
        assert (back.rows, back.buckets, back.columns, back.dim, back.seed) == (4, 33, 2, 10**6, 123456789)
        np.testing.assert_array_equal(back.table, cs.table)
    assert "CountSketch(rows=4, buckets=33" in repr(cs)
    assert cs.nbytes >= 4 * 33 * 2 * 8


def test_count_sketch_corrupted_bytes_are_rejected():
    cs = CountSketch(2, 3, seed=1)
    cs.update([0, 1], [1.0, 2.0])
    data = cs.to_bytes()
    for cut in range(len(data)):
        with pytest.raises(ValueError):
            CountSketch.from_bytes(data[:cut])
    for bit in range(len(data) * 8):
        flipped = bytearray(data)
        flipped[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(ValueError):
            CountSketch.from_bytes(bytes(flipped))
    with pytest.raises(ValueError, match="AMSSketch"):
        CountSketch.from_bytes(AMSSketch(3, 1).to_bytes())
    with pytest.raises(TypeError):
        CountSketch.from_bytes("not bytes")


def test_count_sketch_bad_input_leaves_it_unchanged(rng):
    cs = CountSketch(3, 10, seed=0, dim=100)
    cs.update_rows(0, rng.normal(size=10))
    before = cs.to_bytes()
    bad_calls = [
        (TypeError, "dtype", lambda: cs.update_rows(0, np.arange(5))),
        (TypeError, "dtype", lambda: cs.update_rows(0, np.ones(5, dtype=complex))),
        (TypeError, "dtype", lambda: cs.update_rows(0, np.array(["a", "b"]))),
        (ValueError, "non-finite", lambda: cs.update_rows(0, np.array([1.0, np.nan]))),
        (ValueError, "row 1", lambda: cs.update_rows(0, np.array([1.0, np.inf]))),
        (ValueError, "exceed dim", lambda: cs.update_rows(95, np.ones(10))),
        (ValueError, "start", lambda: cs.update_rows(-1, np.ones(2))),
        (ValueError, "outside", lambda: cs.update([0, 100], [1.0, 1.0])),
        (ValueError, "outside", lambda: cs.update([-1], [1.0])),
        (ValueError, "non-finite", lambda: cs.update([0, 1], [1.0, np.nan])),
        (ValueError, "one row per index", lambda: cs.update([0, 1, 2], [1.0, 2.0])),
        (ValueError, "columns", lambda: cs.update_rows(0, np.ones((2, 2)))),
        (ValueError, "3-D", lambda: cs.update_rows(0, np.ones((2, 1, 1)))),
        (TypeError, "indices", lambda: cs.update(np.array([0.5]), [1.0])),
    ]
    for exc, match, call in bad_calls:
        with pytest.raises(exc, match=match):
            call()
        assert cs.to_bytes() == before
    for kwargs, match in [
        (dict(rows=0, buckets=5), "rows"),
        (dict(rows=3, buckets=0), "buckets"),
        (dict(rows=3, buckets=2**32), "buckets"),
        (dict(rows=3, buckets=5, seed=-1), "seed"),
        (dict(rows=3, buckets=5, columns=0), "columns"),
        (dict(rows=3, buckets=5, dim=0), "dim"),
    ]:
        with pytest.raises(ValueError, match=match):
            CountSketch(**kwargs)


def test_count_sketch_empty_updates_are_no_ops():
    cs = CountSketch(3, 10, seed=0, columns=2)
    before = cs.to_bytes()
    cs.update_rows(5, np.zeros((0, 2)))
    cs.update(np.zeros(0, dtype=np.int64), np.zeros((0, 2)))
    assert cs.to_bytes() == before


def test_count_sketch_identical_on_every_isa(rng, each_isa):
    X = rng.normal(size=(1001, 3))
    tables = []
    for isa in each_isa:
        streamattn.set_isa(isa)
        cs = CountSketch(5, 31, seed=8, columns=3)
        cs.update_rows(7, X)
        tables.append(cs.to_bytes())
    assert all(t == tables[0] for t in tables)


# --- AMS and Gaussian sketches ----------------------------------------------------------
@pytest.mark.parametrize("cls", [AMSSketch, GaussianSketch])
def test_dense_sketch_is_psi_times_x(cls, rng):
    X = rng.normal(size=(700, 5))
    sk = cls(48, seed=4)
    sk.update_rows(10, X[:300])
    sk.update_rows(310, X[300:])
    psi = sk.matrix(10, 700)
    assert psi.shape == (48, 700)
    np.testing.assert_allclose(sk.value, psi @ X, rtol=1e-12, atol=1e-10)
    assert sk.tokens == 700 and sk.columns == 5


def test_ams_entries_are_scaled_signs():
    psi = AMSSketch(64, seed=1).matrix(0, 1000)
    np.testing.assert_array_equal(np.abs(psi), np.full_like(psi, 1 / 8))
    assert abs(psi.mean()) * 8 < 4.5 / np.sqrt(psi.size)  # 4.5 sigma: false failure ~7e-6


def test_gaussian_entries_are_standard_normal_over_sqrt_s():
    s = 50
    z = GaussianSketch(s, seed=3).matrix(12345, 4000).ravel() * np.sqrt(s)
    # Kolmogorov-Smirnov against N(0, 1) on 2*10^5 entries; fail below p = 1e-4.
    assert stats.kstest(z, "norm").pvalue > 1e-4
    # odd s: the last row has no partner and is still N(0,1)
    z1 = GaussianSketch(3, seed=3).matrix(0, 30000)[2] * np.sqrt(3)
    assert stats.kstest(z1, "norm").pvalue > 1e-4


@pytest.mark.parametrize("cls", [AMSSketch, GaussianSketch])
def test_approximate_matrix_product_error_shrinks_like_inverse_sqrt_s(cls, rng):
    n = 2000
    A, B = rng.normal(size=(n, 6)), rng.normal(size=(n, 4))
    exact = A.T @ B
    scale = np.linalg.norm(A) * np.linalg.norm(B)
    errs = {}
    for s in (32, 512):
        e = []
        for seed in range(12):
            sa, sb = cls(s, seed=seed), cls(s, seed=seed)
            sa.update_rows(0, A)
            sb.update_rows(0, B)
            e.append(np.linalg.norm(sa.value.T @ sb.value - exact) / scale)
        errs[s] = float(np.mean(e))
    # Expected ratio sqrt(512/32) = 4; the mean of 12 trials is within [2.5, 6.4] with
    # overwhelming probability (each relative error concentrates at ~1/sqrt(s)).
    assert 2.5 < errs[32] / errs[512] < 6.4
    assert errs[512] < 3 / np.sqrt(512)


@pytest.mark.parametrize("cls", [AMSSketch, GaussianSketch])
def test_dense_sketch_merge_bytes_and_bad_input(cls, rng):
    X = rng.normal(size=(100, 3))
    a, b, whole = cls(16, seed=2), cls(16, seed=2), cls(16, seed=2)
    a.update_rows(0, X[:40])
    b.update_rows(40, X[40:])
    whole.update_rows(0, X)
    a.merge(b)
    np.testing.assert_allclose(a.value, whole.value, rtol=1e-12, atol=1e-12)
    back = cls.from_bytes(a.to_bytes())
    assert back.to_bytes() == a.to_bytes()
    assert pickle.loads(pickle.dumps(a)).to_bytes() == a.to_bytes()
    before = a.to_bytes()
    for exc, call in [
        (ValueError, lambda: a.merge(cls(17, seed=2))),
        (ValueError, lambda: a.merge(cls(16, seed=3))),
        (ValueError, lambda: a.update_rows(0, np.ones((2, 4)))),
        (ValueError, lambda: a.update_rows(0, np.full((2, 3), np.nan))),
        (TypeError, lambda: a.update_rows(0, np.ones((2, 3), dtype=np.int32))),
    ]:
        with pytest.raises(exc):
            call()
        assert a.to_bytes() == before
    other = GaussianSketch if cls is AMSSketch else AMSSketch
    with pytest.raises(ValueError, match="not a"):
        cls.from_bytes(other(16, seed=2).to_bytes())
    with pytest.raises(ValueError, match="s"):
        cls(0)


@pytest.mark.parametrize("start", [0, 3, 2**40 + 5, 2**61 - 1 - 5000])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_count_sketch_update_rows_is_bitwise_update_with_consecutive_indices(start, dtype, rng):
    # update_rows evaluates hashes of consecutive keys by forward differences; update hashes
    # each key with Horner's rule. Both must give the same exact residues, hence equal bits.
    n = 5000  # several 1024-row blocks and a ragged tail
    X = rng.normal(size=(n, 3)).astype(dtype)
    a, b = CountSketch(5, 257, seed=31, columns=3), CountSketch(5, 257, seed=31, columns=3)
    a.update_rows(start, X[:, ::1])
    b.update(np.arange(start, start + n, dtype=np.uint64).astype(np.int64), X)
    np.testing.assert_array_equal(a.table, b.table)
    c = CountSketch(5, 257, seed=31, columns=3)
    c.update_rows(start, np.asfortranarray(X))
    np.testing.assert_array_equal(a.table, c.table)
