"""Polynomial-attention models run exactly in constant memory (issue 9): the power kernel, the
normalizer options, gating, decode steps, multi-head streams with grouped KV, and Based against
flash-linear-attention's own reference (fla-core on CPU)."""

from __future__ import annotations

import math
import pickle
import warnings

import numpy as np
import pytest

import streamattn as sa


# --- references (float64, O(n^2)) ---------------------------------------------------------
def kernel_matrix(S: np.ndarray, g: int, kernel: str) -> np.ndarray:
    if kernel == "power":
        return S**g
    return sum(S**p / math.factorial(p) for p in range(g + 1))


def direct(Q, K, V, g, c, kernel="taylor", log_gate=None, eps=0.0, normalize=True):
    """Row i = sum_{j<=i} w_ij v_j / (sum_{j<=i} w_ij + eps), w_ij = kappa(c q_i.k_j) exp(G_i - G_j),
    G the cumulative log-gates (so the decay of key j at query i is exp(sum_{l=j+1..i} gamma_l))."""
    A = np.tril(kernel_matrix(c * Q @ K.T, g, kernel))
    if log_gate is not None:
        G = np.cumsum(log_gate)
        A = A * np.exp(np.tril(G[:, None] - G[None, :]))
    num = A @ V
    if not normalize:
        return num
    return num / (A.sum(axis=1, keepdims=True) + eps)


def rel(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a) - b)) / np.max(np.abs(b)))


def blocks(rng, n, lo=1, hi=97):
    sizes, a = [], 0
    while a < n:
        b = int(min(rng.integers(lo, hi), n - a))
        sizes.append(b)
        a += b
    return sizes


def run_blocks(cs, Q, K, V, sizes, gate=None):
    out, a = [], 0
    for b in sizes:
        g = None if gate is None else gate[a : a + b]
        out.append(cs.update(Q[a : a + b], K[a : a + b], V[a : a + b], log_gate=g))
        a += b
    return np.concatenate(out)


def run_steps(cs, Q, K, V, gate=None):
    return np.stack(
        [cs.step(Q[i], K[i], V[i], log_gate=None if gate is None else float(gate[i])) for i in range(len(Q))]
    )


# --- power kernel ---------------------------------------------------------------------------
@pytest.mark.parametrize("d, p", [(1, 2), (3, 2), (16, 2), (5, 4), (4, 6), (3, 8), (4, 0)])
def test_power_features_give_the_power_kernel(d, p, rng):
    c = 0.7
    tf = sa.TaylorFeatures(d, p, scale=c, kernel="power")
    assert tf.kernel == "power"
    assert tf.dim == math.comb(d + p - 1, p)
    X, Y = rng.normal(size=(20, d)), rng.normal(size=(30, d))
    ref = (c * X @ Y.T) ** p
    # A sum of t terms of both signs: the error scales with the largest entry, not each entry.
    np.testing.assert_allclose(tf.transform(X) @ tf.transform(Y).T, ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())
    # Only the degree-p monomials, in the Taylor map's order.
    e = tf.exponents()
    assert (e.sum(axis=1) == p).all() and len({tuple(r) for r in e}) == tf.dim


def test_based_symmetric_features_are_smaller_than_the_outer_product():
    assert sa.TaylorFeatures(16, 2).dim == 153  # 1 + 16 + 136, vs 1 + 16 + 256 for x (x) x
    assert sa.TaylorFeatures(16, 2, kernel="power").dim == 136


@pytest.mark.parametrize("p", [2, 4])
@pytest.mark.parametrize("gated", [False, True])
def test_power_attention_stream_and_step_equal_the_formula(p, gated, rng):
    n, d, dv = 300, 6, 5
    c = 1 / math.sqrt(d)
    Q, K, V = rng.normal(size=(n, d)), rng.normal(size=(n, d)), rng.normal(size=(n, dv))
    gate = -rng.exponential(0.05, size=n) if gated else None
    ref = direct(Q, K, V, p, c, "power", gate)
    one = sa.CausalStream(d, dv, degree=p, kernel="power", chunk=64)
    assert rel(one.update(Q, K, V, log_gate=gate), ref) < 1e-10
    cs = sa.CausalStream(d, dv, degree=p, kernel="power", chunk=64)
    assert rel(run_blocks(cs, Q, K, V, blocks(rng, n), gate), ref) < 1e-10
    st = sa.CausalStream(d, dv, degree=p, kernel="power", chunk=64)
    assert rel(run_steps(st, Q, K, V, gate), ref) < 1e-10
    # poly_attention runs the same stream.
    out = sa.poly_attention(Q, K, V, p, causal=True, kernel="power", log_gate=gate, chunk=64)
    assert rel(out, ref) < 1e-10


def test_power_attention_eps_and_unnormalized(rng):
    n, d, dv, c = 130, 4, 3, 0.5
    Q, K, V = rng.normal(size=(n, d)), rng.normal(size=(n, d)), rng.normal(size=(n, dv))
    gate = -rng.exponential(0.1, size=n)
    for eps, normalize in [(1e-3, True), (0.0, False)]:
        ref = direct(Q, K, V, 2, c, "power", gate, eps, normalize)
        cs = sa.CausalStream(d, dv, degree=2, scale=c, kernel="power", eps=eps, normalize=normalize, chunk=32)
        assert rel(run_blocks(cs, Q, K, V, blocks(rng, n), gate), ref) < 1e-10
        st = sa.CausalStream(d, dv, degree=2, scale=c, kernel="power", eps=eps, normalize=normalize)
        assert rel(run_steps(st, Q, K, V, gate), ref) < 1e-10
        out = sa.poly_attention(
            Q, K, V, 2, scale=c, causal=True, kernel="power", eps=eps, normalize=normalize, log_gate=gate, chunk=32
        )
        assert rel(out, ref) < 1e-10
    # Not causal: every key, normalizer options alike.
    A = (c * Q @ K.T) ** 2
    out = sa.poly_attention(Q, K, V, 2, scale=c, kernel="power", eps=0.5)
    assert rel(out, (A @ V) / (A.sum(1, keepdims=True) + 0.5)) < 1e-12


def test_gated_prefill_and_unequal_lengths(rng):
    nq, nk, d, dv, c = 70, 200, 5, 4, 0.4
    Q, K, V = rng.normal(size=(nq, d)), rng.normal(size=(nk, d)), rng.normal(size=(nk, dv))
    gate = -rng.exponential(0.02, size=nk)
    # Query i stands at key position i + nk - nq.
    full = direct(np.vstack([np.zeros((nk - nq, d)), Q]), K, V, 2, c, "taylor", gate)[nk - nq :]
    out = sa.poly_attention(Q, K, V, 2, scale=c, causal=True, log_gate=gate, chunk=48)
    assert rel(out, full) < 1e-10
    cs = sa.CausalStream(d, dv, scale=c, chunk=48)
    cs.prefill(K[: nk - nq], V[: nk - nq], log_gate=gate[: nk - nq])
    assert rel(run_steps(cs, Q, K[nk - nq :], V[nk - nq :], gate[nk - nq :]), full) < 1e-10


def test_kv_stream_power_kernel(rng):
    d, dv, c = 5, 3, 0.6
    Q, K, V = rng.normal(size=(10, d)), rng.normal(size=(80, d)), rng.normal(size=(80, dv))
    kv = sa.KVStream(d, dv, degree=4, scale=c, kernel="power")
    kv.add(K, V)
    A = (c * Q @ K.T) ** 4
    assert rel(kv.query(Q), (A @ V) / A.sum(1, keepdims=True)) < 1e-12
    back = sa.KVStream.from_bytes(kv.to_bytes())
    assert back.kernel == "power" and back.dim == kv.dim
    np.testing.assert_array_equal(back.query(Q), kv.query(Q))


# --- gating over a long stream ----------------------------------------------------------------
def test_gating_is_stable_over_a_million_tokens():
    """10^6 tokens, log_gate = -1e-3 each: decays over the whole stream reach e^-1000, yet
    every chunk's factors are relative to the chunk start. The last rows equal a float64 direct
    sum to 1e-9 on the float64 path, and to 1e-6 on the float32 path (float32 chunk products,
    measured 1.2e-7: the decayed state is a sum over the last ~10^3 tokens)."""
    rng = np.random.default_rng(9)
    n, d, dv, c = 1_000_000, 3, 2, 0.5
    Q = rng.normal(size=(n, d)).astype(np.float32)
    K = rng.normal(size=(n, d)).astype(np.float32)
    V = rng.normal(size=(n, dv)).astype(np.float32)
    gate = np.full(n, -1e-3)
    for compute, tol in (("float64", 1e-9), ("float32", 1e-6)):
        cs = sa.CausalStream(d, dv, degree=2, scale=c, compute=compute)
        step = 1 << 17
        for a in range(0, n - step, step):
            cs.update(Q[a : a + step], K[a : a + step], V[a : a + step], return_rows=False, log_gate=gate[a : a + step])
        a = (n - 1) // step * step
        # float64 queries for the last block: float64 rows out (float32 inputs alone give float32 rows)
        last = cs.update(Q[a:].astype(np.float64), K[a:], V[a:], log_gate=gate[a:])[-3:]
        assert last.dtype == np.float64
        Kd, Vd = K.astype(np.float64), V.astype(np.float64)
        for r, i in enumerate(range(n - 3, n)):
            x = c * Kd[: i + 1] @ Q[i].astype(np.float64)
            w = (1 + x + x * x / 2) * np.exp(-1e-3 * (i - np.arange(i + 1)))
            ref = (w @ Vd[: i + 1]) / w.sum()
            assert rel(last[r], ref) < tol, compute


# --- decode steps and park/resume ---------------------------------------------------------------
@pytest.mark.parametrize("kernel, degree", [("taylor", 2), ("power", 2)])
def test_step_park_resume_bit_for_bit(kernel, degree, rng):
    d, dv = 4, 6
    Q, K, V = rng.normal(size=(90, d)), rng.normal(size=(90, d)), rng.normal(size=(90, dv))
    gate = -rng.exponential(0.05, size=90)
    a = sa.CausalStream(d, dv, degree=degree, kernel=kernel, eps=1e-6, chunk=16)
    a.update(Q[:50], K[:50], V[:50], log_gate=gate[:50])
    a.step(Q[50], K[50], V[50], log_gate=float(gate[50]))
    b = sa.CausalStream.from_bytes(a.to_bytes())
    c = pickle.loads(pickle.dumps(a))
    assert (b.kernel, b.eps, b.normalize, b.tokens_seen) == (kernel, 1e-6, True, 51)
    for s in (b, c):
        assert s.to_bytes() == a.to_bytes()
    outs = []
    for s in (a, b, c):
        o = [s.step(Q[i], K[i], V[i], log_gate=float(gate[i])) for i in range(51, 70)]
        o.append(s.update(Q[70:], K[70:], V[70:], log_gate=gate[70:]))
        outs.append(np.vstack(o))
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_array_equal(outs[0], outs[2])
    assert a.to_bytes() == b.to_bytes() == c.to_bytes()
    assert "kernel='" + kernel in repr(a) and "eps=" in repr(a)


def test_normalize_false_roundtrips(rng):
    cs = sa.CausalStream(3, 2, normalize=False)
    cs.update(rng.normal(size=(5, 3)), rng.normal(size=(5, 3)), rng.normal(size=(5, 2)))
    back = sa.CausalStream.from_bytes(cs.to_bytes())
    assert back.normalize is False and back.eps == 0.0 and "normalize=False" in repr(back)


# --- flash-linear-attention's Based reference ---------------------------------------------------
def _fla_based():
    torch = pytest.importorskip("torch")
    with warnings.catch_warnings():
        # fla warns at import that it found no GPU and falls back to CPU.
        warnings.simplefilter("ignore")
        naive = pytest.importorskip("fla.ops.based.naive")
    return torch, naive.naive_parallel_based


@pytest.mark.extras
@pytest.mark.parametrize("dtype, tol", [(np.float32, 1e-5), (np.float64, 1e-10)])
def test_based_equals_flash_linear_attention(dtype, tol):
    """fla's naive_parallel_based: q scaled by d^-1/2, kernel 1 + x + x^2/2 (Taylor degree 2),
    causal, output num / (den + 1e-6). Ours: degree 2, default scale, eps = 1e-6."""
    torch, naive_parallel_based = _fla_based()
    rng = np.random.default_rng(4096)
    B, H, F, DV = 2, 4, 16, 64
    for T in (1, 63, 64, 65, 1000, 4096):
        q = rng.normal(size=(B, H, T, F)).astype(dtype)
        k = rng.normal(size=(B, H, T, F)).astype(dtype)
        v = rng.normal(size=(B, H, T, DV)).astype(dtype)
        # One (batch, head) slice at a time keeps the reference's T x T matrix at 134 MB.
        ref = np.stack(
            [
                np.stack(
                    [
                        naive_parallel_based(*(torch.from_numpy(x[b : b + 1, h : h + 1]) for x in (q, k, v)))[
                            0, 0
                        ].numpy()
                        for h in range(H)
                    ]
                )
                for b in range(B)
            ]
        ).astype(np.float64)
        bh = np.random.default_rng(T)
        for b in range(B):
            for h in range(H):
                Q, K, V, R = q[b, h], k[b, h], v[b, h], ref[b, h]
                one = sa.CausalStream(F, DV, degree=2, eps=1e-6)
                assert rel(one.update(Q, K, V), R) < tol, (T, b, h, "one call")
                cs = sa.CausalStream(F, DV, degree=2, eps=1e-6, chunk=64)
                assert rel(run_blocks(cs, Q, K, V, blocks(bh, T, 1, 700)), R) < tol, (T, b, h, "blocks")
                if T >= 1000 and (b, h) != (0, 0):
                    continue  # steps through the long sequences once per T: enough, and fast
                m = T // 2
                st = sa.CausalStream(F, DV, degree=2, eps=1e-6)
                st.prefill(K[:m], V[:m])
                assert rel(run_steps(st, Q[m:], K[m:], V[m:]), R[m:]) < tol, (T, b, h, "prefill + step")
        # All heads of the batch at once: a multi-head stream with one kv head per query head.
        mh = sa.MultiHeadCausalStream(B * H, B * H, F, DV, degree=2, eps=1e-6)
        out = mh.update(q.reshape(B * H, T, F), k.reshape(B * H, T, F), v.reshape(B * H, T, DV))
        assert rel(out, ref.reshape(B * H, T, DV)) < tol, (T, "multi-head")


# --- multi-head with grouped KV -----------------------------------------------------------------
@pytest.mark.parametrize("gated", [False, True])
@pytest.mark.parametrize("kernel", ["taylor", "power"])
def test_multi_head_equals_per_head_streams_bit_for_bit(gated, kernel, rng):
    H, G, n, d, dv = 6, 2, 150, 5, 4
    Q = rng.normal(size=(H, n, d)).astype(np.float32)
    K = rng.normal(size=(G, n, d)).astype(np.float32)
    V = rng.normal(size=(G, n, dv)).astype(np.float32)
    gate = -rng.exponential(0.05, size=(H, n)) if gated else None
    mh = sa.MultiHeadCausalStream(H, G, d, dv, kernel=kernel, eps=1e-6, chunk=32, threads=3)
    heads = [sa.CausalStream(d, dv, kernel=kernel, eps=1e-6, chunk=32) for _ in range(H)]
    grp = H // G
    got, want = [], [[] for _ in range(H)]
    for a, b in [(0, 37), (37, 120)]:
        got.append(mh.update(Q[:, a:b], K[:, a:b], V[:, a:b], log_gate=None if gate is None else gate[:, a:b]))
        for h in range(H):
            g = None if gate is None else gate[h, a:b]
            want[h].append(heads[h].update(Q[h, a:b], K[h // grp, a:b], V[h // grp, a:b], log_gate=g))
    for i in range(120, n):
        got.append(mh.step(Q[:, i], K[:, i], V[:, i], log_gate=None if gate is None else gate[:, i])[:, None])
        for h in range(H):
            g = None if gate is None else float(gate[h, i])
            want[h].append(heads[h].step(Q[h, i], K[h // grp, i], V[h // grp, i], log_gate=g)[None])
    got = np.concatenate(got, axis=1)
    for h in range(H):
        np.testing.assert_array_equal(got[h], np.vstack(want[h]))
        assert mh.head(h).to_bytes() == heads[h].to_bytes()
    # Threads change nothing either; bytes round-trip.
    back = sa.MultiHeadCausalStream.from_bytes(mh.to_bytes())
    assert back.to_bytes() == mh.to_bytes() and back.tokens_seen == n
    assert pickle.loads(pickle.dumps(mh)).to_bytes() == mh.to_bytes()
    assert "kv_heads=2" in repr(mh)


def test_multi_head_layouts_and_dtypes(rng):
    H, G, n, d, dv = 4, 1, 40, 3, 2
    Q = rng.normal(size=(n, H, d)).transpose(1, 0, 2)  # strided views, no copy needed
    K = rng.normal(size=(G, n, d))
    V = rng.normal(size=(G, n, dv)).astype(np.float32)  # mixed dtypes -> float64
    a = sa.MultiHeadCausalStream(H, G, d, dv, threads=1).update(Q, K, V)
    b = sa.MultiHeadCausalStream(H, G, d, dv, threads=2).update(np.ascontiguousarray(Q), K, V.astype(np.float64))
    np.testing.assert_array_equal(a, b)
    assert a.shape == (H, n, dv)


# --- bad input: clear errors, nothing changes ---------------------------------------------------
def test_odd_power_is_refused():
    for make in (
        lambda: sa.TaylorFeatures(4, 3, kernel="power"),
        lambda: sa.CausalStream(4, kernel="power", degree=3),
        lambda: sa.KVStream(4, kernel="power", degree=3),
        lambda: sa.MultiHeadCausalStream(2, 1, 4, kernel="power", degree=5),
        lambda: sa.poly_attention(np.ones((2, 4)), np.ones((2, 4)), np.ones((2, 4)), 3, kernel="power"),
    ):
        with pytest.raises(ValueError, match="even degree"):
            make()
    with pytest.raises(ValueError, match="kernel must be 'taylor' or 'power'"):
        sa.CausalStream(4, kernel="exp")


def test_power_degree_one_is_linear_attention(rng):
    """kernel='power', degree=1: features sqrt(c) x, kernel c q.k (linear attention on given features)."""
    Q, K, V = np.abs(rng.normal(size=(3, 50, 4)))
    cs = sa.CausalStream(4, degree=1, kernel="power", scale=0.7, eps=1e-9)
    assert cs.dim == 4
    np.testing.assert_allclose(cs.update(Q, K, V), direct(Q, K, V, 1, 0.7, "power", eps=1e-9), rtol=1e-12)


def test_normalizer_options_are_validated():
    for kw, msg in [
        ({"eps": -1.0}, "eps must be"),
        ({"eps": float("nan")}, "eps"),
        ({"eps": 1e-6, "normalize": False}, "normalize=False"),
    ]:
        with pytest.raises(ValueError, match=msg):
            sa.CausalStream(4, **kw)
        with pytest.raises(ValueError, match=msg):
            sa.poly_attention(np.ones((2, 4)), np.ones((2, 4)), np.ones((2, 4)), 2, **kw)
    with pytest.raises(ValueError, match="causal"):
        sa.poly_attention(np.ones((2, 4)), np.ones((2, 4)), np.ones((2, 4)), 2, log_gate=np.zeros(2))
    with pytest.raises(ValueError, match="return_stats"):
        sa.poly_attention(np.ones((2, 4)), np.ones((2, 4)), np.ones((2, 4)), 2, kernel="power", return_stats=True)


def test_bad_gates_leave_the_stream_unchanged(rng):
    d, dv = 4, 3
    cs = sa.CausalStream(d, dv, chunk=8)
    Q, K, V = rng.normal(size=(20, d)), rng.normal(size=(20, d)), rng.normal(size=(20, dv))
    cs.update(Q[:10], K[:10], V[:10])
    before = cs.to_bytes()
    bad = np.zeros(10)
    for val, msg in [(0.5, "positive"), (np.nan, "NaN"), (-np.inf, "NaN/Inf")]:
        g = bad.copy()
        g[7] = val
        with pytest.raises(ValueError, match=r"log_gate\[7\]") as e:
            cs.update(Q[10:], K[10:], V[10:], log_gate=g)
        assert msg in str(e.value)
        with pytest.raises(ValueError, match=r"log_gate\[7\]"):
            cs.prefill(K[10:], V[10:], log_gate=g)
        with pytest.raises(ValueError, match="log_gate"):
            cs.step(Q[10], K[10], V[10], log_gate=val)
        assert cs.to_bytes() == before
    with pytest.raises(ValueError, match="one entry per row"):
        cs.update(Q[10:], K[10:], V[10:], log_gate=np.zeros(9))
    with pytest.raises(ValueError, match="1-D"):
        cs.update(Q[10:], K[10:], V[10:], log_gate=np.zeros((10, 1)))
    with pytest.raises(ValueError, match="entries"):
        cs.step(Q[10, :3], K[10], V[10])
    with pytest.raises(ValueError, match="dv = 3"):
        cs.step(Q[10], K[10], V[10, :2])
    with pytest.raises(ValueError, match="log_gate"):
        sa.poly_attention(Q, K, V, 2, causal=True, log_gate=np.zeros(19))
    assert cs.to_bytes() == before
    # Gates with probes: refused (the probes' exact reference is ungated softmax).
    pr = sa.CausalStream(d, dv, probes=Q[:1], probe_positions=[5])
    with pytest.raises(ValueError, match="probes"):
        pr.update(Q, K, V, log_gate=np.zeros(20))


def test_zero_normalizer_of_the_power_kernel(rng):
    cs = sa.CausalStream(3, 2, kernel="power")
    cs.update(rng.normal(size=(4, 3)), rng.normal(size=(4, 3)), rng.normal(size=(4, 2)))
    before = cs.to_bytes()
    Q = np.zeros((3, 3))  # every score (c q.k)^2 is 0
    with pytest.raises(ValueError, match="eps > 0"):
        cs.update(Q, np.ones((3, 3)), np.ones((3, 2)))
    with pytest.raises(ValueError, match="eps > 0"):
        cs.step(Q[0], np.ones(3), np.ones(2))
    assert cs.to_bytes() == before
    ok = sa.CausalStream(3, 2, kernel="power", eps=1e-6)
    np.testing.assert_array_equal(ok.step(Q[0], np.ones(3), np.ones(2)), 0.0)


def test_multi_head_bad_input_changes_nothing(rng):
    with pytest.raises(ValueError, match="multiple of kv_heads"):
        sa.MultiHeadCausalStream(6, 4, 3)
    H, G, n, d, dv = 4, 2, 10, 3, 2
    mh = sa.MultiHeadCausalStream(H, G, d, dv, kernel="power")
    Q, K, V = rng.normal(size=(H, n, d)), rng.normal(size=(G, n, d)), rng.normal(size=(G, n, dv))
    mh.update(Q, K, V)
    before = mh.to_bytes()
    gate = np.zeros((H, n))
    gate[3, 4] = 0.1
    bad_calls = [
        (lambda: mh.update(Q, K, V, log_gate=gate), "log_gate"),
        (lambda: mh.update(Q, K, V, log_gate=np.zeros((H, n - 1))), "heads x n"),
        (lambda: mh.update(Q[:3], K, V), "one block per query head"),
        (lambda: mh.update(Q, K[:, :-1], V), "K\\[0\\] must be"),
        (lambda: mh.update(Q, K, V[..., :1]), "V\\[0\\] must be"),
        (lambda: mh.update(Q[:, :, :2], K, V), "Q\\[0\\] must be"),
        (lambda: mh.update(Q[0], K, V), "3-D"),
        (lambda: mh.step(Q[:, 0], K[:1, 0], V[:, 0]), "kv_heads x d"),
        (lambda: mh.step(Q[:, 0], K[:, 0], V[:, 0], log_gate=np.full(H, np.nan)), "log_gate"),
        (lambda: mh.step(Q[:, 0], K[:, 0], V[:, 0], log_gate=np.zeros(H + 1)), "one entry per query head"),
        # Head 3's query is 0: its power-kernel normalizer would be 0; no head may change.
        (lambda: mh.step(np.vstack([Q[:3, 0], np.zeros((1, d))]), K[:, 0], V[:, 0]), "eps > 0"),
        (lambda: mh.update(np.concatenate([Q[:3], np.zeros((1, n, d))]), K, V), "eps > 0"),
    ]
    for call, msg in bad_calls:
        with pytest.raises(ValueError, match=msg):
            call()
        assert mh.to_bytes() == before
    with pytest.raises(ValueError, match="corrupted"):
        sa.MultiHeadCausalStream.from_bytes(before[:-9] + bytes([before[-9] ^ 1]) + before[-8:])


@pytest.mark.parametrize("layout", ["heads", "fla"])
def test_multi_head_large_inputs_checked_on_threads(layout):
    """Inputs of 2^18 entries and more are checked by the pool's threads, split by outer rows:
    a bad value anywhere (first and last head, first and last row, each array) is still found,
    named as the single-thread check names it, and no head changes."""
    H, n, d = 4, 70_000, 4  # 1.12 M entries per array
    mh = sa.MultiHeadCausalStream(H, H, d, threads=2)
    shape = (H, n, d) if layout == "heads" else (1, n, H, d)
    Q, K, V = (np.full(shape, 0.1, np.float32) for _ in range(3))
    mh.update(Q, K, V)
    before = mh.to_bytes()
    cases = [("Q", 0, 0, np.nan, "Q has a non-finite value"), ("Q", H - 1, n - 1, np.inf, "row 69999")]
    cases += [("K", H - 1, 5, 1e30, "K row 5 has scale"), ("V", 0, 0, -np.inf, "V has a non-finite value")]
    cases += [("V", 2, n - 1, np.nan, "row 69999")]
    arrays = {"Q": Q, "K": K, "V": V}
    for name, h, row, value, msg in cases:
        a = arrays[name]
        at = (h, row, d - 1) if layout == "heads" else (0, row, h, d - 1)
        a[at] = value
        with pytest.raises(ValueError, match=msg):
            mh.update(Q, K, V)
        assert mh.to_bytes() == before
        a[at] = 0.1


def test_multi_head_threads_can_be_set_and_are_checked():
    m = sa.MultiHeadCausalStream(4, 2, 8, threads=1)
    assert m.threads == 1
    m.threads = 2
    assert m.threads == 2
    with pytest.raises(ValueError, match="threads"):
        m.threads = -1
    with pytest.raises(TypeError, match="threads"):
        m.threads = 1.5
    assert m.threads == 2
