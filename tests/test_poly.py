"""The polynomial method (issue 5): Taylor features, exact reference attention, polynomial attention.

Every test is deterministic (fixed seeds, no statistics); tolerances are stated at each comparison.
The references here are small numpy implementations that exist only to check the C++ ones.
"""

from __future__ import annotations

import math
import resource

import numpy as np
import pytest

import streamattn as sa

SEED = 20240505


def gen(offset: int = 0) -> np.random.Generator:
    return np.random.default_rng(SEED + offset)


def taylor_poly(x: np.ndarray, g: int) -> np.ndarray:
    """P_g(x) = sum_{p<=g} x^p / p!."""
    return sum(x**p / math.factorial(p) for p in range(g + 1))


def naive_softmax(Q, K, V, c, causal=False):
    """Dense softmax attention with the bottom-right causal alignment (query i sees j <= i + nk - nq)."""
    S = c * (Q @ K.T)
    if causal:
        off = K.shape[0] - Q.shape[0]
        S = np.where(np.arange(K.shape[0])[None, :] <= np.arange(Q.shape[0])[:, None] + off, S, -np.inf)
    S = S - S.max(axis=1, keepdims=True)
    P = np.exp(S)
    return (P @ V) / P.sum(axis=1, keepdims=True)


def naive_poly(Q, K, V, c, g, causal=False):
    """D~^-1 A~ V with A~ = P_g(c Q K^T), masked like naive_softmax: the non-chunked computation."""
    A = taylor_poly(c * (Q @ K.T), g)
    if causal:
        off = K.shape[0] - Q.shape[0]
        A = np.where(np.arange(K.shape[0])[None, :] <= np.arange(Q.shape[0])[:, None] + off, A, 0.0)
    return (A @ V) / A.sum(axis=1, keepdims=True)


# ---------------------------------------------------------------------------------------------
# TaylorFeatures


@pytest.mark.parametrize("d", [1, 2, 3, 5, 8, 16])
@pytest.mark.parametrize("g", range(7))
def test_feature_inner_product_is_taylor_polynomial(d, g):
    if math.comb(d + g, g) > 200_000:
        pytest.skip("feature dimension too large for a unit test")
    c = 1.0 / math.sqrt(d)
    tf = sa.TaylorFeatures(d, g, c)
    assert tf.dim == math.comb(d + g, g)
    X = gen(d * 10 + g).standard_normal((12, d))
    F = tf.transform(X)
    assert F.shape == (12, tf.dim) and F.dtype == np.float64
    x = c * (X @ X.T)
    # 1e-12 relative to P_g(|x|), the size of the terms summed (equals P_g(x) for x >= 0, and is
    # the honest scale where odd-degree P_g(x) cancels to ~0 for x < 0).
    np.testing.assert_array_less(np.abs(F @ F.T - taylor_poly(x, g)), 1e-12 * taylor_poly(np.abs(x), g))


def test_feature_formula_and_monomial_order():
    d, g, c = 3, 4, 0.37
    tf = sa.TaylorFeatures(d, g, c)
    E = tf.exponents()
    assert E.shape == (tf.dim, d)
    # Documented order: by degree, then lexicographic in the sorted variable list (i1 <= ... <= ip).
    keys = []
    for alpha in E:
        vars_ = [i for i in range(d) for _ in range(alpha[i])]
        keys.append((len(vars_), vars_))
    assert keys == sorted(keys)
    assert len({tuple(a) for a in E}) == tf.dim  # every monomial once
    x = gen(1).standard_normal(d)
    expected = [
        c ** (a.sum() / 2) * np.prod(x**a) / math.sqrt(np.prod([math.factorial(int(ai)) for ai in a])) for a in E
    ]
    np.testing.assert_allclose(tf.transform(x[None, :])[0], expected, rtol=1e-14, atol=0)


def test_features_float32_input_and_views():
    tf = sa.TaylorFeatures(4, 3, 0.5)
    X = gen(2).standard_normal((9, 8))
    X32 = X.astype(np.float32)
    view = X32[:, ::2]  # strided, not contiguous
    np.testing.assert_array_equal(tf.transform(view), tf.transform(np.ascontiguousarray(view).astype(np.float64)))
    np.testing.assert_array_equal(tf.transform(np.asfortranarray(X[:, :4])), tf.transform(X[:, :4]))


def test_feature_memory_limit_is_a_clear_error():
    with pytest.raises(ValueError, match=r"t = C\(d\+g, g\) = 12082785.*bytes.*max_bytes"):
        sa.TaylorFeatures(128, 4)
    t = math.comb(8 + 2, 2)
    with pytest.raises(ValueError, match="max_bytes"):
        sa.TaylorFeatures(8, 2, max_bytes=t * 8 * 8 - 1)
    assert sa.TaylorFeatures(8, 2, max_bytes=t * 8 * 8).dim == t  # the limit is adjustable


def test_feature_bad_arguments():
    with pytest.raises(ValueError, match="degree"):
        sa.TaylorFeatures(4, 9)
    with pytest.raises(ValueError, match="degree"):
        sa.TaylorFeatures(4, -1)
    with pytest.raises(ValueError, match="scale"):
        sa.TaylorFeatures(4, 2, 0.0)
    with pytest.raises(ValueError, match="scale"):
        sa.TaylorFeatures(4, 2, -1.0)
    with pytest.raises(ValueError, match="d must be"):
        sa.TaylorFeatures(0, 2)
    tf = sa.TaylorFeatures(4, 2)
    with pytest.raises(ValueError, match="4 columns"):
        tf.transform(np.zeros((3, 5)))
    with pytest.raises(TypeError, match="float32 or float64"):
        tf.transform(np.zeros((3, 4), dtype=np.int64))
    X = np.zeros((3, 4))
    X[2, 1] = np.nan
    with pytest.raises(ValueError, match="row 2, column 1"):
        tf.transform(X)


# ---------------------------------------------------------------------------------------------
# taylor_error, choose_degree


def test_taylor_error_formula_and_bound():
    for beta in [0.0, 0.1, 0.5, 1.0, 3.0]:
        for g in range(9):
            expected = math.exp(beta) * beta ** (g + 1) / math.factorial(g + 1)
            assert sa.taylor_error(beta, g) == pytest.approx(expected, rel=1e-14, abs=0)
            xs = np.linspace(-beta, beta, 101)
            # the Lagrange bound, plus 1e-14 relative for the rounding of exp and of P_g in float64
            assert np.all(np.abs(np.exp(xs) - taylor_poly(xs, g)) <= np.exp(xs) * (expected * (1 + 1e-12) + 1e-14))


def test_choose_degree():
    assert sa.choose_degree(1e-3, 0.5) == 4  # eps(0.5, 2) = 0.034, eps(0.5, 4) = 4.3e-4
    for eps in [1e-1, 1e-3, 1e-6, 1e-9]:
        for beta in [0.0, 0.05, 0.3, 1.0]:
            try:
                g = sa.choose_degree(eps, beta)
            except ValueError:
                assert sa.taylor_error(beta, 8) > eps
                continue
            assert g % 2 == 0 and 0 <= g <= 8
            assert sa.taylor_error(beta, g) <= eps
            if g >= 2:
                assert sa.taylor_error(beta, g - 2) > eps
    with pytest.raises(ValueError, match="no even degree <= 8.*degree 8 gives"):
        sa.choose_degree(1e-6, 3.0)
    with pytest.raises(ValueError, match="eps"):
        sa.choose_degree(0.0, 1.0)
    with pytest.raises(ValueError, match="beta"):
        sa.choose_degree(0.1, -1.0)


# ---------------------------------------------------------------------------------------------
# exact_attention


# causal needs nq <= nk (the error for nq > nk is tested in test_bad_inputs)
@pytest.mark.parametrize(
    "nq,nk,causal",
    [
        (nq, nk, c)
        for nq, nk in [(1, 1), (50, 50), (130, 700), (700, 130), (600, 1100)]
        for c in (False, True)
        if not (c and nq > nk)
    ],
)
def test_exact_attention_matches_naive(nq, nk, causal):
    r = gen(nq + nk)
    Q, K, V = r.standard_normal((nq, 16)), r.standard_normal((nk, 16)), r.standard_normal((nk, 5))
    out = sa.exact_attention(Q, K, V, causal=causal)
    ref = naive_softmax(Q, K, V, 1 / 4, causal)
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-12 * np.abs(V).max())


def test_exact_attention_scale_and_huge_scores():
    r = gen(3)
    Q, K, V = r.standard_normal((200, 8)), r.standard_normal((900, 8)), r.standard_normal((900, 3))
    np.testing.assert_allclose(sa.exact_attention(Q, K, V, scale=1 / 8), naive_softmax(Q, K, V, 1 / 8), atol=1e-12)
    # Scores of +-1000: every row's top score is ~1000 and the rest reach -1000.
    Qb = Q / np.linalg.norm(Q, axis=1, keepdims=True)
    Kb = K / np.linalg.norm(K, axis=1, keepdims=True)
    for causal in [False, True]:
        out = sa.exact_attention(Qb, Kb, V, scale=1000.0, causal=causal)
        S = 1000.0 * Qb @ Kb.T
        assert S.max() > 900 and S.min() < -900
        assert np.all(np.isfinite(out))
        np.testing.assert_allclose(out, naive_softmax(Qb, Kb, V, 1000.0, causal), rtol=0, atol=1e-12)


def test_exact_attention_float32_and_mixed_dtypes():
    r = gen(4)
    Q, K, V = (r.standard_normal((40, 6)).astype(np.float32) for _ in range(3))
    out = sa.exact_attention(Q, K, V, causal=True)
    assert out.dtype == np.float32  # float32 inputs, float64 arithmetic, rounded once to float32
    ref = naive_softmax(Q.astype(np.float64), K.astype(np.float64), V.astype(np.float64), 1 / math.sqrt(6), True)
    np.testing.assert_allclose(out, ref, rtol=2.0**-23, atol=1e-12)
    np.testing.assert_allclose(
        sa.exact_attention(Q, K.astype(np.float64), V),
        naive_softmax(Q.astype(np.float64), K.astype(np.float64), V.astype(np.float64), 1 / math.sqrt(6)),
        atol=1e-12,
    )


def test_exact_attention_memory_is_not_quadratic():
    # n x n float64 would be 3.2 GB; the blocked computation adds well under 100 MB.
    n = 20_000
    r = gen(5)
    Q, K, V = r.standard_normal((n, 2)), r.standard_normal((n, 2)), r.standard_normal((n, 1))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = sa.exact_attention(Q, K, V, causal=True)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert (after - before) * 1024 < 100e6  # ru_maxrss is in KiB on Linux
    np.testing.assert_allclose(out[:300], naive_softmax(Q[:300], K[:300], V[:300], 1 / math.sqrt(2), True), atol=1e-12)


# ---------------------------------------------------------------------------------------------
# poly_attention


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("g", [0, 1, 2, 3, 4])
def test_poly_attention_equals_polynomial_reference(causal, g):
    r = gen(10 + g)
    Q, K, V = (0.5 * r.standard_normal((300, 6)) for _ in range(2)), None, None
    Q, K = next(Q), next(Q)
    V = r.standard_normal((300, 4))
    out = sa.poly_attention(Q, K, V, g, causal=causal, chunk=64)
    np.testing.assert_allclose(out, naive_poly(Q, K, V, 1 / math.sqrt(6), g, causal), rtol=0, atol=1e-11)


@pytest.mark.parametrize("n", [1, 63, 64, 65, 128, 129, 200])
def test_poly_causal_chunk_boundaries(n):
    """Chunked causal == non-chunked causal for n < chunk, n = chunk, n = chunk + 1, several chunks."""
    chunk = 64
    r = gen(100 + n)
    Q, K = 0.4 * r.standard_normal((n, 8)), 0.4 * r.standard_normal((n, 8))
    V = r.standard_normal((n, 3))
    for g in [2, 4]:
        out = sa.poly_attention(Q, K, V, g, causal=True, chunk=chunk)
        np.testing.assert_allclose(out, naive_poly(Q, K, V, 1 / math.sqrt(8), g, True), rtol=0, atol=1e-11)
    # the chunk size must not change the result (beyond rounding)
    a = sa.poly_attention(Q, K, V, 2, causal=True, chunk=1)
    b = sa.poly_attention(Q, K, V, 2, causal=True, chunk=1000)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("nq,nk", [(1, 50), (37, 300), (300, 301)])
def test_poly_causal_cross_alignment(nq, nk):
    r = gen(nq)
    Q, K = 0.4 * r.standard_normal((nq, 5)), 0.4 * r.standard_normal((nk, 5))
    V = r.standard_normal((nk, 2))
    out = sa.poly_attention(Q, K, V, 2, causal=True, chunk=32)
    np.testing.assert_allclose(out, naive_poly(Q, K, V, 1 / math.sqrt(5), 2, True), rtol=0, atol=1e-11)
    # non-causal cross attention, both shapes
    out = sa.poly_attention(K, Q, V[:nq], 2)
    np.testing.assert_allclose(out, naive_poly(K, Q, V[:nq], 1 / math.sqrt(5), 2), rtol=0, atol=1e-11)


def test_poly_float32_accumulates_in_float64():
    r = gen(7)
    Q, K = (0.3 * r.standard_normal((500, 8)).astype(np.float32) for _ in range(2))
    V = r.standard_normal((500, 4)).astype(np.float32)
    for causal in [False, True]:
        out = sa.poly_attention(Q, K, V, 4, causal=causal, chunk=100)
        ref = sa.poly_attention(*(x.astype(np.float64) for x in (Q, K, V)), 4, causal=causal, chunk=100)
        # float32 rows: the float64 result rounded once (float32 accumulation would be ~1e-5 off)
        assert out.dtype == np.float32
        np.testing.assert_allclose(out, ref, rtol=2.0**-23, atol=1e-13)


@pytest.mark.parametrize("causal", [False, True])
def test_poly_error_within_bound_and_falls_with_degree(causal):
    # Bounded entries: |q_i|, |k_i| <= B with c d B^2 = 0.8 = beta bound; measured beta is below it.
    d, n = 8, 400
    c = 1 / math.sqrt(d)
    B = math.sqrt(0.8 / (c * d))
    r = gen(8)
    Q, K = r.uniform(-B, B, (n, d)), r.uniform(-B, B, (n, d))
    V = r.uniform(-1, 1, (n, 3))
    exact = sa.exact_attention(Q, K, V, causal=causal)
    errors = []
    for g in range(7):
        out, st = sa.poly_attention(Q, K, V, g, causal=causal, return_stats=True, chunk=128)
        err = np.abs(out - exact).max()
        assert st["beta"] < 0.8 and st["degree"] == g and st["dim"] == math.comb(d + g, g)
        assert st["eps"] == pytest.approx(sa.taylor_error(st["beta"], g), rel=1e-15)
        assert err <= st["bound"], (g, err, st)
        errors.append(err)
    assert all(b < a for a, b in zip(errors, errors[1:])), errors
    assert errors[-1] < 1e-6


def test_poly_stats_vacuous_bound_is_inf():
    r = gen(9)
    Q, K, V = 3 * r.standard_normal((20, 4)), 3 * r.standard_normal((20, 4)), r.standard_normal((20, 2))
    _, st = sa.poly_attention(Q, K, V, 2, return_stats=True)
    assert st["eps"] >= 1 and st["bound"] == math.inf
    assert st["beta"] == pytest.approx(
        0.5 * np.linalg.norm(Q, axis=1).max() * np.linalg.norm(K, axis=1).max(), rel=1e-14
    )


def test_poly_odd_degree_negative_normalizer_raises():
    # g = 1: P_1(x) = 1 + x < 0 for every pair when c q.k < -1.
    Q = np.full((4, 2), 2.0)
    K = np.full((5, 2), -2.0)
    V = np.ones((5, 1))
    for causal in [False, True]:
        with pytest.raises(ValueError, match=r"normalizer.*row [0-9]+.*odd degree"):
            sa.poly_attention(Q, K, V, 1, causal=causal)
    # the same data with an even degree is fine
    assert np.all(np.isfinite(sa.poly_attention(Q, K, V, 2)))


def test_poly_memory_limit():
    Q = np.zeros((2, 128))
    with pytest.raises(ValueError, match=r"t = C\(d\+g, g\) = 12082785"):
        sa.poly_attention(Q, Q, Q, 4)


# ---------------------------------------------------------------------------------------------
# Bad input (both attention functions)


@pytest.mark.parametrize("fn", ["exact", "poly"])
def test_bad_inputs(fn):
    def call(Q, K, V, **kw):
        if fn == "exact":
            return sa.exact_attention(Q, K, V, **kw)
        return sa.poly_attention(Q, K, V, kw.pop("degree", 2), **kw)

    r = gen(11)
    Q, K, V = r.standard_normal((10, 4)), r.standard_normal((12, 4)), r.standard_normal((12, 3))
    with pytest.raises(ValueError, match="K must have as many columns as Q"):
        call(Q, K[:, :3], V)
    with pytest.raises(ValueError, match="V must have as many rows as K"):
        call(Q, K, V[:11])
    with pytest.raises(ValueError, match="2-D"):
        call(Q[0], K, V)
    with pytest.raises(ValueError, match="at least one row"):
        call(Q, K[:0], V[:0])
    with pytest.raises(ValueError, match="n_q <= n_k"):
        call(K, Q, V[:10], causal=True)
    for bad in [np.nan, np.inf, -np.inf]:
        for name, arr in [("Q", Q), ("K", K), ("V", V)]:
            a = arr.copy()
            a[3, 2] = bad
            args = {"Q": Q, "K": K, "V": V, name: a}
            with pytest.raises(ValueError, match=f"{name} has a non-finite value .* at row 3, column 2"):
                call(args["Q"], args["K"], args["V"])
    for scale in [0.0, -1.0]:
        with pytest.raises(ValueError, match="scale must be"):
            call(Q, K, V, scale=scale)
    with pytest.raises(ValueError, match="scale must be finite"):
        call(Q, K, V, scale=float("nan"))
    with pytest.raises(TypeError, match="dtype float32 or float64"):
        call(Q.astype(np.int32), K, V)
    if fn == "poly":
        for g in [-1, 9]:
            with pytest.raises(ValueError, match=r"degree must be in \[0, 8\]"):
                call(Q, K, V, degree=g)
        with pytest.raises(TypeError, match="degree must be an integer"):
            call(Q, K, V, degree=2.0)
        with pytest.raises(ValueError, match="chunk"):
            call(Q, K, V, chunk=-1)


# ---------------------------------------------------------------------------------------------
# PolyPrefixState (the state the streaming modes build on)


def test_prefix_state_absorb_apply_merge():
    r = gen(12)
    d, dv, g = 6, 3, 4
    K, V, Q = 0.5 * r.standard_normal((250, d)), r.standard_normal((250, dv)), 0.5 * r.standard_normal((40, d))
    st = sa.PolyPrefixState(d, dv, g)
    assert st.tokens == 0 and st.dim == math.comb(d + g, g)
    assert st.nbytes == 8 * st.dim * (dv + 1)
    with pytest.raises(ValueError, match="empty"):
        st.apply(Q)
    st.absorb(K[:100], V[:100])
    st.absorb(K[100:], V[100:])
    assert st.tokens == 250
    np.testing.assert_allclose(st.apply(Q), sa.poly_attention(Q, K, V, g), rtol=0, atol=1e-12)
    F = sa.TaylorFeatures(d, g).transform(K)
    np.testing.assert_allclose(st.numerator_state, F.T @ V, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(st.normalizer_state, F.sum(axis=0), rtol=1e-12, atol=1e-12)

    a, b = sa.PolyPrefixState(d, dv, g), sa.PolyPrefixState(d, dv, g)
    a.absorb(K[:70], V[:70])
    b.absorb(K[70:], V[70:])
    a.merge(b)
    assert a.tokens == 250
    np.testing.assert_allclose(a.apply(Q), st.apply(Q), rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="same d, dv, degree, scale and kernel"):
        a.merge(sa.PolyPrefixState(d, dv, 2))
    a.reset()
    assert a.tokens == 0 and not a.numerator_state.any()
    assert "PolyPrefixState(d=6, dv=3, degree=4" in repr(st)


def test_prefix_state_rejected_absorb_changes_nothing():
    r = gen(13)
    st = sa.PolyPrefixState(4, 2, 2)
    K, V = r.standard_normal((20, 4)), r.standard_normal((20, 2))
    st.absorb(K, V)
    M, s = st.numerator_state, st.normalizer_state
    Kbad = K.copy()
    Kbad[19, 0] = np.nan
    for args in [(Kbad, V), (K, V[:19]), (K[:, :3], V), (K, V[:, :1])]:
        with pytest.raises(ValueError):
            st.absorb(*args)
    assert st.tokens == 20
    np.testing.assert_array_equal(st.numerator_state, M)
    np.testing.assert_array_equal(st.normalizer_state, s)


def test_prefix_state_token_by_token_is_causal_attention():
    """Absorb one row, answer the next query: the causal recurrence, here with intra-chunk size 1."""
    r = gen(14)
    n, d = 30, 4
    Q, K, V = 0.5 * r.standard_normal((n, d)), 0.5 * r.standard_normal((n, d)), r.standard_normal((n, 2))
    st = sa.PolyPrefixState(d, 2, 2)
    rows = []
    for j in range(n):
        st.absorb(K[j : j + 1], V[j : j + 1])
        rows.append(st.apply(Q[j : j + 1])[0])
    np.testing.assert_allclose(np.array(rows), sa.poly_attention(Q, K, V, 2, causal=True, chunk=8), atol=1e-12)
