"""CausalStream and KVStream: exactness against direct formulas, block invariance, merge, bytes,
probe certificate, k-sparse output columns, plan, bad input."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

import streamattn as sa


def taylor(x: np.ndarray, g: int) -> np.ndarray:
    return sum(x**p / math.factorial(p) for p in range(g + 1))


def direct_causal(Q, K, V, g, c):
    """O(n^2) reference: row j = sum_{l<=j} P_g(c q_j.k_l) v_l / sum_{l<=j} P_g(c q_j.k_l)."""
    A = np.tril(taylor(c * Q @ K.T, g))
    return (A @ V) / A.sum(axis=1, keepdims=True)


def direct_keys_first(Q, K, V, g, c):
    A = taylor(c * Q @ K.T, g)
    return (A @ V) / A.sum(axis=1, keepdims=True)


def softmax_attention(Q, K, V, c, causal):
    S = c * Q @ K.T
    if causal:
        S = np.where(np.tril(np.ones_like(S, dtype=bool)), S, -np.inf)
    S = S - S.max(axis=1, keepdims=True)
    W = np.exp(S)
    return (W @ V) / W.sum(axis=1, keepdims=True)


def data(rng, n, d, dv, scale=0.4):
    return (rng.normal(size=(n, d)) * scale, rng.normal(size=(n, d)) * scale, rng.normal(size=(n, dv)))


def stream_in_blocks(cs, Q, K, V, sizes):
    out, a = [], 0
    for b in sizes:
        out.append(cs.update(Q[a : a + b], K[a : a + b], V[a : a + b]))
        a += b
    assert a == len(Q)
    return np.concatenate(out) if out else np.zeros((0, V.shape[1]))


# --- CausalStream -------------------------------------------------------------------------
@pytest.mark.parametrize("g", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("n, chunk", [(50, 64), (64, 64), (65, 64), (300, 32)])
def test_causal_stream_equals_direct_formula(g, n, chunk, rng):
    d, dv = 5, 3
    Q, K, V = data(rng, n, d, dv)
    c = 1 / math.sqrt(d)
    cs = sa.CausalStream(d, dv, degree=g, chunk=chunk)
    out = cs.update(Q, K, V)
    np.testing.assert_allclose(out, direct_causal(Q, K, V, g, c), rtol=1e-12, atol=1e-12)
    assert cs.tokens_seen == n


@pytest.mark.parametrize("compute, tol", [("float64", 1e-12), ("float32", 1e-5)])
@pytest.mark.parametrize("threads", [1, 3])
def test_causal_stream_feature_blocks_equal_direct_formula(compute, tol, threads, rng):
    # d = 12, degree 2: t = 91 features; dv = 768 makes t * dv >= 2^16, so chunks take the
    # inter-chunk part in feature blocks. float32: features, scores and values rounded to float32
    # (relative 6e-8 each) in sums of up to 200 terms of outputs of size ~1.
    n, d, dv = 200, 12, 768
    Q, K, V = data(rng, n, d, dv)
    cs = sa.CausalStream(d, dv, chunk=64, compute=compute, threads=threads)
    out = stream_in_blocks(cs, Q, K, V, [90, 90, 20])
    np.testing.assert_allclose(out, direct_causal(Q, K, V, 2, 1 / math.sqrt(d)), rtol=0, atol=tol)


def test_causal_stream_block_sizes_do_not_matter(rng):
    n, d, dv = 700, 6, 4
    Q, K, V = data(rng, n, d, dv)
    whole = sa.CausalStream(d, dv, degree=2, chunk=64).update(Q, K, V)
    ones = stream_in_blocks(sa.CausalStream(d, dv, degree=2, chunk=64), Q, K, V, [1] * n)
    sizes = []
    left = n
    while left:
        sizes.append(min(left, int(rng.integers(1, 150))))
        left -= sizes[-1]
    rnd = stream_in_blocks(sa.CausalStream(d, dv, degree=2, chunk=64), Q, K, V, sizes)
    for other in (ones, rnd):
        np.testing.assert_allclose(other, whole, rtol=1e-12, atol=1e-13)


def test_causal_stream_float32_accumulates_in_float64(rng):
    n, d, dv = 400, 4, 3
    Q, K, V = (x.astype(np.float32) for x in data(rng, n, d, dv))
    a = sa.CausalStream(d, dv, compute="float64").update(Q, K, V)
    b = sa.CausalStream(d, dv).update(Q.astype(np.float64), K.astype(np.float64), V.astype(np.float64))
    # float32 rows: the float64 result rounded once, straight into the array returned (float32
    # accumulation would be ~1e-5 off); the same values as the float64 rows rounded afterwards.
    assert a.dtype == np.float32
    np.testing.assert_allclose(a, b, rtol=2.0**-23, atol=1e-13)
    assert np.array_equal(a, b.astype(np.float32))


def test_causal_stream_float32_compute_path(rng):
    """float32 inputs run the float32 products by default (compute=None follows the dtype): the
    outputs are within 16 float32 roundings (16 * 2^-24 of the largest output; measured 1.2) of
    the float64 path, the state stays float64 and its bytes have the same layout."""
    n, d, dv = 400, 4, 3
    Q, K, V = (x.astype(np.float32) for x in data(rng, n, d, dv))
    s32, s64 = sa.CausalStream(d, dv), sa.CausalStream(d, dv, compute="float64")
    assert s32.compute is None and s64.compute == "float64"
    # float32 inputs give float32 rows; a float64 Q makes the reference's rows float64.
    a, b = s32.update(Q, K, V), s64.update(Q.astype(np.float64), K, V)
    assert a.dtype == np.float32 and b.dtype == np.float64
    assert np.max(np.abs(a - b)) <= 16 * 2.0**-24 * np.max(np.abs(b))
    assert not np.array_equal(a, b)  # the float32 path really ran
    assert s32.numerator_state.dtype == np.float64 and len(s32.to_bytes()) == len(s64.to_bytes())
    # compute="float32" on float64 inputs gives the float32 path's answer for the rounded inputs.
    c = sa.CausalStream(d, dv, compute="float32").update(*(x.astype(np.float64) for x in (Q, K, V)))
    assert np.max(np.abs(c - b)) <= 16 * 2.0**-24 * np.max(np.abs(b))
    # Not serialized: a restored stream follows its inputs' dtype again.
    assert sa.CausalStream.from_bytes(s64.to_bytes()).compute is None
    s64.compute = "float32"
    assert s64.compute == "float32"
    s64.compute = None
    assert s64.compute is None


def test_causal_stream_step_follows_compute(rng):
    """step() on the float32 path (float32 features, value and rank-one term, float32 read-out,
    float64 state and denominator) stays within 64 float32 roundings (64 * 2^-24 of the largest
    output; measured about 4) of the float64 step on the same values, gated too; it returns the
    inputs' dtype, and compute="float32" on float64 copies of the values gives the same bits."""
    n, d, dv = 300, 6, 5
    Q, K, V = (x.astype(np.float32) for x in data(rng, n, d, dv))
    gates = -rng.uniform(0.0, 0.05, n)
    for gated in (False, True):
        s32 = sa.CausalStream(d, dv)  # float32 inputs: the float32 path
        s64 = sa.CausalStream(d, dv, compute="float64")
        c32 = sa.CausalStream(d, dv, compute="float32")
        a, b, c = [], [], []
        for j in range(n):
            g = gates[j] if gated else None
            a.append(s32.step(Q[j], K[j], V[j], log_gate=g))
            b.append(s64.step(Q[j], K[j], V[j], log_gate=g))
            c.append(c32.step(*(x[j].astype(np.float64) for x in (Q, K, V)), log_gate=g))
        a, b, c = np.array(a), np.array(b), np.array(c)
        assert a.dtype == np.float32 and b.dtype == np.float32 and c.dtype == np.float64
        ref = b.astype(np.float64)
        # b went through float64 arithmetic and one final rounding; compare with a float64 run.
        ref64 = sa.CausalStream(d, dv, compute="float64")
        ref = np.array(
            [
                ref64.step(*(x[j].astype(np.float64) for x in (Q, K, V)), log_gate=gates[j] if gated else None)
                for j in range(n)
            ]
        )
        np.testing.assert_array_equal(b, ref.astype(np.float32))
        assert np.max(np.abs(a - ref)) <= 64 * 2.0**-24 * np.max(np.abs(ref))
        assert not np.array_equal(a, b)  # the float32 path really ran
        np.testing.assert_array_equal(c.astype(np.float32), a)
        # the state stays float64, within float32 rounding of the float64 one
        M32, M64 = s32.numerator_state, s64.numerator_state
        assert M32.dtype == np.float64
        assert np.max(np.abs(M32 - M64)) <= 64 * 2.0**-24 * np.max(np.abs(M64))
        # the float32 step and the float32 update agree to the same tolerance
        u = sa.CausalStream(d, dv).update(Q, K, V, log_gate=gates if gated else None)
        assert np.max(np.abs(a - u)) <= 64 * 2.0**-24 * np.max(np.abs(ref))


def test_causal_stream_compute_is_checked():
    with pytest.raises(ValueError, match="compute must be 'float32' or 'float64'"):
        sa.CausalStream(4, compute="float16")
    with pytest.raises(TypeError, match="compute must be a str"):
        sa.CausalStream(4, compute=32)
    with pytest.raises(ValueError, match="compute must be 'float32' or 'float64'"):
        sa.MultiHeadCausalStream(2, 1, 4, compute="half")


def test_causal_stream_state_size_does_not_grow(rng):
    d, dv = 4, 2
    cs = sa.CausalStream(d, dv, degree=2)
    Q, K, V = data(rng, 5000, d, dv)
    cs.update(Q[:10], K[:10], V[:10])
    small = (cs.nbytes, len(cs.to_bytes()))
    cs.update(Q[10:], K[10:], V[10:])
    assert (cs.nbytes, len(cs.to_bytes())) == small
    t = math.comb(d + 2, 2)
    assert cs.dim == t and cs.numerator_state.shape == (t, dv) and cs.normalizer_state.shape == (t,)


def test_causal_stream_checkpoint_resumes_bit_for_bit(rng):
    n, d, dv = 600, 5, 3
    Q, K, V = data(rng, n, d, dv)
    probes = Q[[3, 250, 599]]
    kw = dict(degree=2, chunk=32, probes=probes, probe_positions=[3, 250, 599], output_sketch=(2, 0.5), n=n)
    ref = sa.CausalStream(d, dv, **kw)
    full = stream_in_blocks(ref, Q, K, V, [100, 200, 300])
    cs = sa.CausalStream(d, dv, **kw)
    first = stream_in_blocks(cs, Q[:300], K[:300], V[:300], [100, 200])
    for back in (sa.CausalStream.from_bytes(cs.to_bytes()), pickle.loads(pickle.dumps(cs))):
        rest = back.update(Q[300:], K[300:], V[300:])
        np.testing.assert_array_equal(np.concatenate([first, rest]), full)
        assert back.to_bytes() == ref.to_bytes()


def test_causal_certificate_equals_offline_exact_computation(rng):
    n, d, dv = 500, 4, 3
    Q, K, V = data(rng, n, d, dv, scale=1.0)
    pos = np.array([0, 77, 300, 499])
    probes = rng.normal(size=(4, d))
    cs = sa.CausalStream(d, dv, degree=2, chunk=64, probes=probes, probe_positions=pos)
    stream_in_blocks(cs, Q, K, V, [123, 377])
    cert = cs.certificate()
    c = 1 / math.sqrt(d)
    for i, p in enumerate(pos):
        exact = softmax_attention(probes[i : i + 1], K[: p + 1], V[: p + 1], c, causal=False)[0]
        approx = direct_keys_first(probes[i : i + 1], K[: p + 1], V[: p + 1], 2, c)[0]
        np.testing.assert_allclose(cert["exact"][i], exact, rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(cert["approx"][i], approx, rtol=1e-11, atol=1e-13)
    err = np.abs(cert["approx"] - cert["exact"])
    assert cert["max_abs_error"] == pytest.approx(err.max(), rel=1e-12)
    assert cert["mean_abs_error"] == pytest.approx(err.mean(), rel=1e-12)
    rel = np.linalg.norm(cert["approx"] - cert["exact"], axis=1) / np.linalg.norm(cert["exact"], axis=1)
    assert cert["max_rel_error"] == pytest.approx(rel.max(), rel=1e-12)
    assert cert["probes"] == 4 and cert["evaluated"] == 4
    # a probe equal to a stream query reproduces that output row
    cs2 = sa.CausalStream(d, dv, degree=2, chunk=64, probes=Q[[100]], probe_positions=[100])
    out2 = cs2.update(Q, K, V)
    np.testing.assert_allclose(cs2.certificate()["approx"][0], out2[100], rtol=1e-12)


def test_probes_not_yet_reached_are_not_evaluated(rng):
    d, dv = 3, 2
    Q, K, V = data(rng, 50, d, dv)
    cs = sa.CausalStream(d, dv, probes=Q[:2], probe_positions=[10, 1000])
    cs.update(Q, K, V)
    cert = cs.certificate()
    assert cert["evaluated"] == 1 and np.isnan(cert["approx"][1]).all()


def test_sparse_output_columns_meet_the_error_composition(rng):
    # Bounded entries (beta < 1): decoded column z vs true softmax column y satisfies
    # ||z - y|| <= (1 + eps1) OPT_y + (2 + eps1) ||x - y|| (docs/design.md §2.4), x the stream's column.
    n, d, dv, k, eps1 = 2000, 4, 3, 8, 0.5
    Q, K, V = (
        rng.uniform(-0.5, 0.5, size=(n, d)),
        rng.uniform(-0.5, 0.5, size=(n, d)),
        rng.uniform(-1, 1, size=(n, dv)),
    )
    V[rng.choice(n, 8, replace=False)] *= 40  # a few heavy rows so the columns are nearly sparse
    cs = sa.CausalStream(d, dv, degree=4, output_sketch=(k, eps1), n=n, seed=3)
    X = stream_in_blocks(cs, Q, K, V, [500, 1500])
    Y = softmax_attention(Q, K, V, 1 / math.sqrt(d), causal=True)
    for method in ("standard", "sublinear"):
        cols = cs.sparse_columns(method)
        assert len(cols) == dv
        for j, z in enumerate(cols):
            y, x = Y[:, j], X[:, j]
            opt = np.sqrt(np.sum(np.sort(y**2)[: n - k]))
            err = np.linalg.norm(z.to_dense() - y)
            assert err <= (1 + eps1) * opt + (2 + eps1) * np.linalg.norm(x - y) + 1e-12
            assert len(z) <= k


# --- KVStream -----------------------------------------------------------------------------
@pytest.mark.parametrize("g", [1, 2, 4])
def test_kv_stream_exact_state_equals_direct_formula(g, rng):
    d, dv = 5, 4
    Q, K, V = data(rng, 300, d, dv)
    kv = sa.KVStream(d, dv, degree=g)
    for a in range(0, 300, 77):
        kv.add(K[a : a + 77], V[a : a + 77])
    np.testing.assert_allclose(kv.query(Q[:20]), direct_keys_first(Q[:20], K, V, g, 1 / math.sqrt(d)), rtol=1e-12)
    assert kv.tokens_seen == 300 and kv.queries_answered == 20


@pytest.mark.parametrize("sketch", ["ams", "gaussian"])
def test_kv_stream_sketched_state_error_shrinks_with_s(sketch, rng):
    d, dv = 4, 3
    Q, K, V = data(rng, 2000, d, dv)
    ex = sa.KVStream(d, dv)
    ex.add(K, V)
    want = ex.query(Q[:50])
    errs = []
    for s in (64, 4096):
        e = []
        for seed in range(6):
            kv = sa.KVStream(d, dv, state="sketched", sketch=sketch, sketch_size=s, seed=seed)
            kv.add(K, V)
            e.append(np.abs(kv.query(Q[:50]) - want).max())
        errs.append(np.mean(e))
    # expected ratio sqrt(4096/64) = 8; a factor 3 margin each way over 6 seeds
    assert 8 / 3 < errs[0] / errs[1] < 8 * 3


def test_kv_stream_sketched_normalizer_is_exact(rng):
    d, dv = 3, 2
    _, K, V = data(rng, 500, d, dv)
    a, b = sa.KVStream(d, dv), sa.KVStream(d, dv, state="sketched", sketch_size=16)
    a.add(K, V)
    b.add(K, V)
    np.testing.assert_allclose(b.normalizer_state, a.normalizer_state, rtol=1e-12)


@pytest.mark.parametrize("state", ["exact", "sketched"])
def test_kv_stream_shards_merge_into_the_whole(state, rng):
    d, dv = 4, 3
    Q, K, V = data(rng, 1000, d, dv)
    whole = sa.KVStream(d, dv, state=state, seed=5)
    whole.add(K, V)
    a = sa.KVStream(d, dv, state=state, seed=5)
    b = sa.KVStream(d, dv, state=state, seed=5, first_token=600)
    a.add(K[:600], V[:600])
    b.add(K[600:], V[600:])
    a.merge(b)
    np.testing.assert_allclose(a.query(Q[:10]), whole.query(Q[:10]), rtol=1e-11)
    assert a.tokens_seen == 1000


def test_kv_stream_merge_refuses_incompatible(rng):
    d, dv = 4, 3
    _, K, V = data(rng, 10, d, dv)
    a = sa.KVStream(d, dv)
    a.add(K, V)
    before = a.to_bytes()
    for other, match in [
        (sa.KVStream(d, dv, degree=4), "degree"),
        (sa.KVStream(d, dv + 1), "dv"),
        (sa.KVStream(d, dv, scale=0.1), "scale"),
        (sa.KVStream(d, dv, state="sketched"), "sketched"),
    ]:
        with pytest.raises(ValueError, match=match):
            a.merge(other)
        assert a.to_bytes() == before
    s1 = sa.KVStream(d, dv, state="sketched", seed=1)
    s1.add(K, V)
    s2 = sa.KVStream(d, dv, state="sketched", seed=1)
    s2.add(K, V)
    with pytest.raises(ValueError, match="overlap"):
        s1.merge(s2)
    with pytest.raises(ValueError, match="seed"):
        s1.merge(sa.KVStream(d, dv, state="sketched", seed=2, first_token=100))


@pytest.mark.parametrize("state", ["exact", "sketched"])
def test_kv_stream_bytes_round_trip(state, rng):
    d, dv = 4, 3
    Q, K, V = data(rng, 100, d, dv)
    kv = sa.KVStream(d, dv, state=state, probes=Q[:2], output_sketch=(2, 0.5), n=50)
    kv.add(K[:60], V[:60])
    kv.query(Q[:5])
    back = sa.KVStream.from_bytes(kv.to_bytes())
    assert back.to_bytes() == kv.to_bytes()
    for s in (kv, back):
        s.add(K[60:], V[60:])
    np.testing.assert_array_equal(back.query(Q[5:9]), kv.query(Q[5:9]))
    assert pickle.loads(pickle.dumps(kv)).to_bytes() == kv.to_bytes()


def test_kv_certificate_against_exact_attention(rng):
    d, dv = 4, 3
    Q, K, V = data(rng, 800, d, dv)
    kv = sa.KVStream(d, dv, probes=Q[:5])
    kv.add(K[:300], V[:300])
    kv.add(K[300:], V[300:])
    cert = kv.certificate()
    c = 1 / math.sqrt(d)
    np.testing.assert_allclose(cert["exact"], softmax_attention(Q[:5], K, V, c, False), rtol=1e-12)
    np.testing.assert_allclose(cert["approx"], kv.query(Q[:5]), rtol=1e-12)


# --- bad input ------------------------------------------------------------------------------
def test_causal_stream_bad_input_leaves_it_unchanged(rng):
    d, dv = 4, 3
    Q, K, V = data(rng, 20, d, dv)
    cs = sa.CausalStream(d, dv, output_sketch=(2, 0.5), n=30)
    cs.update(Q[:5], K[:5], V[:5])
    before = cs.to_bytes()
    bad = Q[:3].copy()
    bad[1, 2] = np.nan
    cases = [
        (ValueError, "Q must have d", lambda: cs.update(Q[:3, :3], K[:3], V[:3])),
        (ValueError, "V must have dv", lambda: cs.update(Q[:3], K[:3], V[:3, :2])),
        (ValueError, "same number of rows", lambda: cs.update(Q[:3], K[:2], V[:3])),
        (ValueError, "row 1, column 2", lambda: cs.update(bad, K[:3], V[:3])),
        (ValueError, "K", lambda: cs.update(Q[:3], np.full((3, d), np.inf), V[:3])),
        (TypeError, "dtype", lambda: cs.update(Q[:3].astype(int), K[:3], V[:3])),
        (ValueError, "2-D", lambda: cs.update(Q[0], K[0], V[0])),
        (ValueError, "1e30", lambda: cs.update(Q[:3] * 1e20, K[:3], V[:3])),
        (ValueError, "output sketch covers", lambda: cs.update(*data(rng, 40, d, dv))),
    ]
    for exc, match, call in cases:
        with pytest.raises(exc, match=match):
            call()
        assert cs.to_bytes() == before
    for kwargs, match in [
        (dict(d=0), "d"),
        (dict(d=4, degree=9), "degree"),
        (dict(d=4, degree=-1), "degree"),
        (dict(d=4, scale=0.0), "scale"),
        (dict(d=4, scale=-1.0), "scale"),
        (dict(d=4, chunk=-1), "chunk"),
        (dict(d=4, probes=np.ones((2, 4))), "probe_positions"),
        (dict(d=4, probes=np.ones((2, 4)), probe_positions=[1]), "one entry per probe"),
        (dict(d=4, output_sketch=(2, 0.5)), "n="),
        (dict(d=4, output_sketch=(0, 0.5), n=10), "k"),
    ]:
        with pytest.raises(ValueError, match=match):
            sa.CausalStream(**kwargs)


def test_odd_degree_failure_restores_the_stream():
    d, dv = 1, 1
    cs = sa.CausalStream(d, dv, degree=1, scale=1.0)
    cs.update(np.array([[1.0]]), np.array([[1.0]]), np.array([[1.0]]))
    before = cs.to_bytes()
    # P_1(x) = 1 + x: q.k = -3 makes every normalizer of the next block negative
    with pytest.raises(ValueError, match="odd degree"):
        cs.update(np.array([[-3.0], [-3.0]]), np.array([[1.0], [1.0]]), np.array([[1.0], [1.0]]))
    assert cs.to_bytes() == before


def test_corrupted_stream_bytes_are_rejected(rng):
    d, dv = 2, 2
    Q, K, V = data(rng, 10, d, dv)
    for stream in (
        sa.CausalStream(d, dv, probes=Q[:1], probe_positions=[3]),
        sa.KVStream(d, dv, state="sketched", sketch_size=4),
    ):
        if isinstance(stream, sa.CausalStream):
            stream.update(Q, K, V)
        else:
            stream.add(K, V)
        data_ = stream.to_bytes()
        cls = type(stream)
        for cut in range(0, len(data_), 7):
            with pytest.raises(ValueError):
                cls.from_bytes(data_[:cut])
        for bit in range(0, len(data_) * 8, 13):
            flipped = bytearray(data_)
            flipped[bit // 8] ^= 1 << (bit % 8)
            with pytest.raises(ValueError):
                cls.from_bytes(bytes(flipped))
    with pytest.raises(ValueError, match="not a KVStream"):
        sa.KVStream.from_bytes(sa.CausalStream(2, 2).to_bytes())


# --- plan -----------------------------------------------------------------------------------
def test_plan_sizes_match_the_objects():
    p = sa.plan(n=10_000, d=8, dv=4, degree=2)
    assert p.t == math.comb(10, 2) and p.degree == 2
    assert p.state_bytes == sa.CausalStream(8, 4, degree=2).nbytes
    q = sa.plan(n=10_000, d=8, dv=4, k=5, eps1=0.5)
    sk = sa.SparseRecoveryMatrix(10_000, 4, 5, 0.5)
    assert q.output_sketch["nbytes"] == sk.nbytes and q.output_sketch["rows"] == sk.plan()["rows"]
    s = sa.plan(n=100, d=4, state="sketched", eps2=0.5, delta=0.1)
    assert s.sketch_size == math.ceil(2 / (0.1 * 0.25))
    assert set(p.as_dict()) >= {"degree", "t", "state_bytes", "taylor_eps", "attention_bound", "vacuous", "notes"}
    assert "Plan(n=10000" in repr(p)


def test_plan_reports_bounds_and_flags_vacuous_ones():
    ok = sa.plan(n=1000, d=8, beta=0.5, degree=4)
    eps = math.exp(0.5) * 0.5**5 / math.factorial(5)
    assert ok.taylor_eps == pytest.approx(eps) and not ok.vacuous
    assert ok.attention_bound == pytest.approx(2 * eps / (1 - eps))
    assert ok.column_bound == pytest.approx(math.sqrt(1000) * 2 * eps / (1 - eps))
    bad = sa.plan(n=1000, d=8, beta=2.0, degree=2)
    assert bad.vacuous and bad.attention_bound == math.inf and bad.suggested_degree == 6
    assert any("VACUOUS" in n and "degree 6" in n for n in bad.notes)
    hopeless = sa.plan(n=1000, d=8, beta=20.0)
    assert hopeless.vacuous and hopeless.suggested_degree is None
    assert any("no degree <= 8" in n for n in hopeless.notes)
    chosen = sa.plan(n=1000, d=8, beta=0.5, eps=1e-3)
    assert chosen.degree == sa.choose_degree(1e-3, 0.5)


def test_plan_rejects_bad_requests():
    for kwargs, match in [
        (dict(n=0, d=4), "n"),
        (dict(n=10, d=0), "d"),
        (dict(n=10, d=4, delta=1.5), "delta"),
        (dict(n=10, d=4, state="fuzzy"), "state"),
        (dict(n=10, d=4, beta=-1.0), "beta"),
        (dict(n=10, d=4, degree=12), "degree"),
        (dict(n=10, d=4, k=0), "k"),
    ]:
        with pytest.raises(ValueError, match=match):
            sa.plan(**kwargs)


@pytest.mark.parametrize("sketch", ["ams", "gaussian"])
def test_plan_state_bytes_equal_the_sketched_stream(sketch):
    # The plan counts what the stream holds: the sketch table, s, and (AMS) the sign hashes.
    p = sa.plan(4096, 8, state="sketched", sketch=sketch, sketch_size=64)
    kv = sa.KVStream(8, state="sketched", sketch=sketch, sketch_size=64)
    kv.add(np.zeros((3, 8)), np.zeros((3, 8)))
    assert p.state_bytes == kv.nbytes
    with pytest.raises(ValueError, match="sketch"):
        sa.plan(4096, 8, state="sketched", sketch="srht")  # type: ignore[arg-type]


# --- CausalSegment: block states composed as a scan (issue 18) -----------------------------------
@pytest.mark.parametrize("gated", [False, True])
def test_segment_scan_and_start_from_equal_one_stream(rng, gated):
    n, d, dv = 211, 4, 3
    Q, K = rng.normal(scale=0.4, size=(n, d)), rng.normal(scale=0.4, size=(n, d))
    V = rng.normal(size=(n, dv))
    gate = -rng.uniform(0.0, 0.3, size=n) if gated else None
    want = sa.CausalStream(d, dv, chunk=8).update(Q, K, V, log_gate=gate)
    bounds = [0, 1, 60, 61, 150, n]
    prefix, got = sa.CausalSegment(d, dv, chunk=8), []
    for a, b in zip(bounds[:-1], bounds[1:]):
        g = None if gate is None else gate[a:b]
        s = sa.CausalStream(d, dv, chunk=8)
        s.start_from(prefix)
        assert s.tokens_seen == a
        got.append(s.update(Q[a:b], K[a:b], V[a:b], log_gate=g))
        seg = sa.CausalSegment(d, dv, first_token=a, chunk=8)
        seg.absorb(K[a:b], V[a:b], log_gate=g)
        assert seg.log_decay == pytest.approx(0.0 if g is None else g.sum(), rel=1e-14, abs=0.0)
        prefix = prefix.then(seg)
    np.testing.assert_allclose(np.vstack(got), want, rtol=1e-12, atol=0)
    assert (prefix.first_token, prefix.tokens, prefix.end_token) == (0, n, n)
    whole = sa.CausalStream(d, dv, chunk=8)
    whole.prefill(K, V, log_gate=gate)
    np.testing.assert_allclose(prefix.numerator_state, whole.numerator_state, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(prefix.normalizer_state, whole.normalizer_state, rtol=1e-12, atol=1e-15)


def test_segment_composition_is_associative_and_pickles(rng):
    K, V = rng.normal(scale=0.5, size=(30, 3)), rng.normal(size=(30, 2))
    segs = []
    for a in (0, 10, 20):
        s = sa.CausalSegment(3, 2, first_token=a)
        s.absorb(K[a : a + 10], V[a : a + 10], log_gate=np.full(10, -0.05))
        segs.append(s)
    left, right = segs[0].then(segs[1]).then(segs[2]), segs[0].then(segs[1].then(segs[2]))
    np.testing.assert_allclose(left.numerator_state, right.numerator_state, rtol=1e-14, atol=0)
    assert left.log_decay == pytest.approx(-1.5, rel=1e-14)
    assert segs[0].tokens == 10  # then() leaves its operands unchanged
    back = pickle.loads(pickle.dumps(left))
    assert back.to_bytes() == left.to_bytes() and "tokens=[0, 30)" in repr(back)
    inplace = sa.CausalSegment.from_bytes(segs[0].to_bytes())
    inplace.append(segs[1])
    np.testing.assert_array_equal(inplace.numerator_state, segs[0].then(segs[1]).numerator_state)


def test_segment_bad_input(rng):
    a = sa.CausalSegment(3, 2)
    a.absorb(rng.normal(size=(5, 3)), rng.normal(size=(5, 2)))
    with pytest.raises(ValueError, match="adjacent"):
        a.then(sa.CausalSegment(3, 2, first_token=6))
    with pytest.raises(ValueError, match="degree"):
        a.then(sa.CausalSegment(3, 2, degree=4, first_token=5))
    with pytest.raises(ValueError, match="log_gate"):
        a.absorb(np.zeros((2, 3)), np.zeros((2, 2)), log_gate=[0.0, 0.5])
    with pytest.raises(ValueError, match="one entry per row"):
        a.absorb(np.zeros((2, 3)), np.zeros((2, 2)), log_gate=[0.0])
    with pytest.raises(ValueError, match="chunk"):
        sa.CausalSegment(3, 2, chunk=-1)
    assert a.tokens == 5  # refused calls changed nothing
    with pytest.raises(ValueError, match="starting at token 0"):
        sa.CausalStream(3, 2).start_from(sa.CausalSegment(3, 2, first_token=4))
    with pytest.raises(ValueError, match="same d, dv, degree, scale and kernel"):
        sa.CausalStream(3, 2, scale=0.1).start_from(a)
    with pytest.raises(ValueError, match="probes"):
        sa.CausalStream(3, 2, probes=np.zeros((1, 3)), probe_positions=[9]).start_from(a)
    used = sa.CausalStream(3, 2)
    used.prefill(np.zeros((1, 3)), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="not seen any token"):
        used.start_from(a)


def test_default_chunk_is_chosen_by_the_feature_count():
    # chunk 0 (the default): 32 below 256 features, 64 from 256 on, the same for every causal path
    # and every thread count; an explicit chunk is kept, and a restored stream keeps its chunk.
    rng = np.random.default_rng(11)
    for d, want in ((8, 32), (16, 32), (21, 32), (22, 64), (32, 64)):  # t = 45, 153, 253, 276, 561
        s = sa.CausalStream(d, degree=2)
        assert s.chunk == want, (d, s.dim)
        assert sa.CausalStream(d, degree=2, chunk=0).chunk == want
        assert sa.CausalSegment(d, d, degree=2).chunk == want
        assert sa.MultiHeadCausalStream(2, 2, d, d, degree=2).chunk == want
    assert sa.CausalStream(32, degree=2, chunk=7).chunk == 7
    X = rng.uniform(-0.3, 0.3, (3, 200, 32))
    auto = sa.CausalStream(32, degree=2, threads=2)
    rows = auto.update(*X)
    assert np.array_equal(rows, sa.CausalStream(32, degree=2, chunk=64).update(*X))
    assert np.array_equal(rows, sa.poly_attention(*X, 2, causal=True))
    assert sa.CausalStream.from_bytes(sa.CausalStream(32, degree=2, chunk=5).to_bytes()).chunk == 5
