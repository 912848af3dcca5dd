"""streamattn.torch (issue 17): torch tensors in and out of the streams, and fla-compatible ops
checked against fla-core 0.6.0's CPU reference functions (float32, <= 1e-5 relative) and against
float64 evaluations of the same formulas (<= 1e-10), in one call, in blocks through the state,
prefill + token-by-token decode, both layouts, odd T, gates on and off."""

from __future__ import annotations

import math

import numpy as np
import pytest

import streamattn as sa
from fla_helpers import import_fla, rel

pytestmark = pytest.mark.extras

B, H, D, DV = 2, 3, 8, 5


@pytest.fixture
def naive(th):
    return import_fla(
        based="fla.ops.based.naive",
        linear="fla.ops.linear_attn.naive",
        retention="fla.ops.retention.naive",
        simple_gla="fla.ops.simple_gla.naive",
    )


def qkv(th, T, dtype, seed, dv=DV, hkv=H, head_first=False):
    g = th.Generator().manual_seed(seed)
    shape = (lambda h, d: (B, h, T, d)) if head_first else (lambda h, d: (B, T, h, d))
    q = th.randn(shape(H, D), generator=g, dtype=dtype)
    k = th.randn(shape(hkv, D), generator=g, dtype=dtype)
    v = th.randn(shape(hkv, dv), generator=g, dtype=dtype)
    return q, k, v


def formula(q, k, v, kappa, log_gate=None, eps=0.0, normalize=True, scale=1.0):
    """float64 direct evaluation, (B, T, H, D) layout: o_i = sum_{j<=i} w_ij v_j [/ (sum w_ij + eps)],
    w_ij = kappa(scale q_i.k_j) exp(G_i - G_j), G the cumulative log-gates."""
    q, k, v = (np.asarray(x, dtype=np.float64) for x in (q, k, v))
    Bn, T, Hn, _ = q.shape
    out = np.empty((Bn, T, Hn, v.shape[3]))
    for b in range(Bn):
        for h in range(Hn):
            hk = h // (Hn // k.shape[2])
            A = np.tril(kappa(scale * q[b, :, h] @ k[b, :, hk].T))
            if log_gate is not None:
                G = np.cumsum(np.asarray(log_gate, dtype=np.float64)[b, :, h])
                A = A * np.exp(np.tril(G[:, None] - G[None, :]))
            num = A @ v[b, :, hk]
            out[b, :, h] = num / (A.sum(axis=1, keepdims=True) + eps) if normalize else num
    return out


def taylor2(s):
    return 1 + s + s * s / 2


# --- tensors in, tensors out ---------------------------------------------------------------------
def test_streams_take_and_return_torch_tensors(th):
    q, k, v = qkv(th, 37, th.float32, 1)
    s = sa.MultiHeadCausalStream(B * H, B * H, D, DV, eps=1e-6)
    o = s.update(q, k, v)
    assert isinstance(o, th.Tensor) and o.dtype == th.float32 and tuple(o.shape) == (B, 37, H, DV)
    # head b * H + h of the stream is batch b's head h; the same numbers as 3-D numpy heads
    q3, k3, v3 = (x.permute(0, 2, 1, 3).reshape(B * H, 37, -1).numpy() for x in (q, k, v))
    ref = sa.MultiHeadCausalStream(B * H, B * H, D, DV, eps=1e-6).update(q3, k3, v3)
    assert ref.dtype == np.float32
    assert np.array_equal(o.permute(0, 2, 1, 3).reshape(B * H, 37, DV).numpy(), ref)
    # head_first=True on (B, H, T, D) views of the same data (strided, not copied) gives the same rows
    s2 = sa.MultiHeadCausalStream(B * H, B * H, D, DV, eps=1e-6)
    o2 = s2.update(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), head_first=True)
    assert tuple(o2.shape) == (B, H, 37, DV) and np.array_equal(o2.transpose(1, 2).numpy(), o.numpy())
    # float64 in -> float64 out; 2-D functions too
    o64 = sa.poly_attention(q[0, :, 0].double(), k[0, :, 0].double(), v[0, :, 0].double(), degree=2, causal=True)
    assert isinstance(o64, th.Tensor) and o64.dtype == th.float64
    o32 = sa.exact_attention(q[0, :, 0], k[0, :, 0], v[0, :, 0], causal=True)
    assert isinstance(o32, th.Tensor) and o32.dtype == th.float32
    ref32 = sa.exact_attention(
        q[0, :, 0].numpy().astype(np.float64), k[0, :, 0].numpy(), v[0, :, 0].numpy(), causal=True
    )
    assert rel(o32.numpy(), ref32) < 1e-6
    cs = sa.CausalStream(D, DV)
    r = cs.update(q[0, :, 0], k[0, :, 0], v[0, :, 0])
    assert isinstance(r, th.Tensor) and r.dtype == th.float32
    step = cs.step(q[1, 0, 0], k[1, 0, 0], v[1, 0, 0])
    assert isinstance(step, th.Tensor) and step.dtype == th.float32 and tuple(step.shape) == (DV,)


def test_import_streamattn_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, streamattn; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_bad_tensors_are_refused_clearly(th, st):
    q, k, v = qkv(th, 9, th.float32, 2)
    with pytest.raises(ValueError, match=r"meta.*\.cpu\(\)"):
        st.parallel_based(q.to("meta"), k, v)
    with pytest.raises(TypeError, match="dtype"):
        st.parallel_based(q.int(), k, v)
    with pytest.raises(TypeError, match="one dtype"):
        st.parallel_based(q.double(), k, v)
    with pytest.raises(ValueError, match="multiple of the key/value heads"):
        st.chunk_linear_attn(q, k[:, :, :2], v[:, :, :2], normalize=False)
    with pytest.raises(ValueError, match="4-D"):
        st.chunk_simple_gla(q[0], k[0], v[0])
    with pytest.raises(ValueError, match="g must have shape"):
        st.chunk_simple_gla(q, k, v, g=th.zeros(B, 9, H + 1))
    _, S = st.chunk_linear_attn(q, k, v, normalize=False, output_final_state=True)
    with pytest.raises(ValueError, match="state"):
        st.chunk_linear_attn(q, k, v, normalize=False, initial_state=S[..., :-1])
    with pytest.raises(TypeError, match=r"tuple \(S, z\)"):
        st.chunk_linear_attn(q, k, v, normalize=True, initial_state=S)
    # the stream: a wrong state or mismatched heads changes nothing
    s = sa.MultiHeadCausalStream(B * H, B * H, D, DV)
    s.update(q, k, v)
    before = s.to_bytes()
    with pytest.raises(ValueError, match="state must be"):
        s.set_state(np.zeros((B * H, s.dim + 1, DV + 1)))
    with pytest.raises(ValueError, match="batch x heads"):
        s.update(q[:, :, :2], k, v)
    with pytest.raises(ValueError, match="normalizer"):
        s.set_state(np.zeros((B * H, s.dim, DV)))
    with pytest.raises(TypeError, match="require grad"):
        s.update(q.clone().requires_grad_(), k, v)
    with pytest.raises(ValueError, match=r"Q is on a device.*\.cpu\(\)"):
        s.update(q.to("meta"), k, v)
    with pytest.raises(TypeError, match="float16"):
        s.update(q.half(), k, v)
    assert s.to_bytes() == before


# --- Based ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("use_norm", [True, False])
@pytest.mark.parametrize("head_first", [False, True])
def test_based_matches_fla_naive(th, st, naive, use_norm, head_first):
    q, k, v = qkv(th, 67, th.float32, 3, head_first=head_first)
    o = st.parallel_based(q, k, v, use_norm=use_norm, head_first=head_first)
    hf = (lambda x: x) if head_first else (lambda x: x.transpose(1, 2))
    ref = naive["based"].naive_parallel_based(hf(q), hf(k), hf(v), use_norm=use_norm)
    assert o.dtype == th.float32 and tuple(o.shape) == tuple(q.shape[:3]) + (DV,)
    assert rel(hf(o), ref) <= 1e-5


def test_based_state_blocks_and_decode_float64(th, st):
    q, k, v = qkv(th, 61, th.float64, 4)
    c = D**-0.5
    ref = formula(q, k, v, taylor2, eps=1e-6, scale=c)
    whole = st.parallel_based(q, k, v)
    assert rel(whole, ref) <= 1e-10
    # prefill 40 tokens, then 21 one-token decode calls, the state carried between calls
    o, S = st.parallel_based(q[:, :40], k[:, :40], v[:, :40], output_final_state=True)
    assert tuple(S.shape) == (B, H, math.comb(D + 2, 2), DV + 1) and S.dtype == th.float64
    rows = [o]
    for i in range(40, 61):
        r, S = st.parallel_based(
            q[:, i : i + 1], k[:, i : i + 1], v[:, i : i + 1], initial_state=S, output_final_state=True
        )
        rows.append(r)
    assert rel(th.cat(rows, dim=1), ref) <= 1e-10


# --- linear attention, any feature map ------------------------------------------------------------
FEATURE_MAPS = {
    "elu+1": lambda x: 1 + (x.clamp(max=0).exp() - 1) + x.clamp(min=0),
    "hedgehog-like": lambda x: x.softmax(-1),
    "identity": lambda x: x,
}


# (identity, normalize=True) is left out: that normalizer changes sign, both sides divide by ~0.
@pytest.mark.parametrize(
    "fmap, normalize", [("elu+1", True), ("elu+1", False), ("hedgehog-like", True), ("identity", False)]
)
def test_linear_attn_matches_fla_naive(th, st, naive, fmap, normalize):
    q, k, v = qkv(th, 45, th.float32, 5)
    phi = FEATURE_MAPS[fmap]
    q, k = phi(q), phi(k)
    ref, ref_state = naive["linear"].naive_recurrent_linear_attn(q, k, v, normalize=normalize, output_final_state=True)
    o, state = st.chunk_linear_attn(q, k, v, normalize=normalize, output_final_state=True)
    assert o.dtype == th.float32 and rel(o, ref) <= 1e-5
    if normalize:
        assert rel(state[0], ref_state[0]) <= 1e-5 and rel(state[1], ref_state[1]) <= 1e-5
    else:
        assert tuple(state.shape) == (B, H, D, DV) and rel(state, ref_state) <= 1e-5
    # continue from fla's own state: two halves == one call
    o1, s1 = naive["linear"].naive_recurrent_linear_attn(
        q[:, :20], k[:, :20], v[:, :20], normalize=normalize, output_final_state=True
    )
    o2, _ = st.fused_recurrent_linear_attn(q[:, 20:], k[:, 20:], v[:, 20:], initial_state=s1, normalize=normalize)
    assert rel(th.cat([o1, o2], dim=1), ref) <= 1e-5


def test_linear_attn_float64_blocks_head_first(th, st):
    q, k, v = qkv(th, 53, th.float64, 6, head_first=True)
    q, k = FEATURE_MAPS["elu+1"](q), FEATURE_MAPS["elu+1"](k)
    bthd = [x.transpose(1, 2) for x in (q, k, v)]
    ref = formula(*bthd, lambda s: s, eps=1e-10, scale=D**-0.5)
    state, rows = None, []
    for a, b in [(0, 17), (17, 18), (18, 53)]:
        o, state = st.chunk_linear_attn(
            q[:, :, a:b], k[:, :, a:b], v[:, :, a:b], initial_state=state, output_final_state=True, head_first=True
        )
        rows.append(o)
    assert rel(th.cat(rows, dim=2).transpose(1, 2), ref) <= 1e-10


# --- scalar-gated: Simple GLA and RetNet ----------------------------------------------------------
@pytest.mark.parametrize("gated", [True, False])
def test_simple_gla_matches_fla_naive(th, st, naive, gated):
    q, k, v = qkv(th, 71, th.float32, 7)
    gen = th.Generator().manual_seed(8)
    g = -th.rand(B, 71, H, generator=gen) * 0.2 if gated else th.zeros(B, 71, H)
    S0 = th.randn(B, H, D, DV, generator=gen)
    ref, ref_S = naive["simple_gla"].naive_chunk_simple_gla(q, k, v, g, initial_state=S0, output_final_state=True)
    o, S = st.chunk_simple_gla(q, k, v, g=g if gated else None, initial_state=S0, output_final_state=True)
    assert rel(o, ref) <= 1e-5 and rel(S, ref_S) <= 1e-5
    # prefill 50 then decode token by token == one call
    o1, s = st.fused_recurrent_simple_gla(
        q[:, :50], k[:, :50], v[:, :50], g=g[:, :50], initial_state=S0, output_final_state=True
    )
    rows = [o1]
    for i in range(50, 71):
        r, s = st.chunk_simple_gla(
            q[:, i : i + 1],
            k[:, i : i + 1],
            v[:, i : i + 1],
            g=g[:, i : i + 1],
            initial_state=s,
            output_final_state=True,
        )
        rows.append(r)
    assert rel(th.cat(rows, dim=1), ref) <= 1e-5


def test_simple_gla_float64_head_first(th, st):
    q, k, v = qkv(th, 39, th.float64, 9, head_first=True)
    g = -th.rand(B, H, 39, generator=th.Generator().manual_seed(10), dtype=th.float64) * 0.5
    bthd = [x.transpose(1, 2) for x in (q, k, v)]
    ref = formula(*bthd, lambda s: s, log_gate=g.transpose(1, 2), normalize=False, scale=D**-0.5)
    o, _ = st.chunk_simple_gla(q, k, v, g=g, head_first=True)
    assert o.dtype == th.float64 and rel(o.transpose(1, 2), ref) <= 1e-10


def test_retention_matches_fla_naive(th, st, naive):
    q, k, v = qkv(th, 33, th.float32, 11, head_first=True)
    ref = naive["retention"].naive_retention(q, k, v)
    o, _ = st.chunk_retention(q, k, v, head_first=True)
    assert rel(o, ref) <= 1e-5
    o2, _ = st.fused_recurrent_retention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
    assert rel(o2.transpose(1, 2), ref) <= 1e-5


# --- power attention -------------------------------------------------------------------------------
@pytest.mark.parametrize("gated", [True, False])
def test_power_attention_float64(th, st, gated):
    q, k, v = qkv(th, 41, th.float64, 12)
    g = -th.rand(B, 41, H, generator=th.Generator().manual_seed(13), dtype=th.float64) if gated else None
    ref = formula(q, k, v, lambda s: s**2, log_gate=g, eps=1e-6, scale=D**-0.5)
    o, S = st.power_attention(
        q[:, :30], k[:, :30], v[:, :30], g=None if g is None else g[:, :30], output_final_state=True
    )
    o2, _ = st.power_attention(q[:, 30:], k[:, 30:], v[:, 30:], g=None if g is None else g[:, 30:], initial_state=S)
    assert tuple(S.shape) == (B, H, math.comb(D + 1, 2), DV + 1)
    assert rel(th.cat([o, o2], dim=1), ref) <= 1e-10


# ---- variable-length packing (cu_seqlens) -------------------------------------------------------


def _packed(th, lengths, dtype, seed, head_first=False, gated=False):
    """(1, T, H, D) q, k, v (and (1, T, H) log-gates) of sequences of `lengths` packed along T."""
    g = th.Generator().manual_seed(seed)
    T = sum(lengths)
    shape = (lambda d: (1, H, T, d)) if head_first else (lambda d: (1, T, H, d))
    q, k, v = th.randn(shape(D), generator=g, dtype=dtype), th.randn(shape(D), generator=g, dtype=dtype), None
    v = th.randn(shape(DV), generator=g, dtype=dtype)
    gate = None
    if gated:
        gate = -th.rand((1, H, T) if head_first else (1, T, H), generator=g, dtype=dtype) * 0.2
    cu = th.tensor([0, *np.cumsum(lengths).tolist()], dtype=th.int64)
    return q, k, v, gate, cu


def _state_at(state, n):
    return tuple(s[n : n + 1] for s in state) if isinstance(state, tuple) else state[n : n + 1]


@pytest.mark.parametrize("head_first", [False, True])
@pytest.mark.parametrize(
    "op", ["parallel_based", "chunk_linear_attn", "chunk_linear_attn_plain", "chunk_simple_gla", "chunk_retention",
           "power_attention"],
)  # fmt: skip
def test_cu_seqlens_equals_one_call_per_sequence(th, st, op, head_first):
    # Packed sequences (one of length 0) each start from their own initial state and end in their own
    # final state: the same outputs and states as one call per sequence, to the last bit.
    lengths = [5, 0, 9, 1, 6]
    gated = op in ("chunk_simple_gla", "power_attention")
    q, k, v, gate, cu = _packed(th, lengths, th.float64, 3, head_first, gated)
    t_dim = 2 if head_first else 1
    positive = op.startswith("chunk_linear_attn")  # features of a feature map: the normalizer stays > 0

    def call(q, k, v, gate, init, cu_seqlens):
        kw = {"head_first": head_first, "cu_seqlens": cu_seqlens}
        if positive:
            q, k = q.abs(), k.abs()
        if op == "parallel_based":
            return st.parallel_based(q, k, v, initial_state=init, output_final_state=True, **kw)
        if op == "chunk_linear_attn":
            return st.chunk_linear_attn(q, k, v, initial_state=init, output_final_state=True, **kw)
        if op == "chunk_linear_attn_plain":
            return st.chunk_linear_attn(q, k, v, initial_state=init, output_final_state=True, normalize=False, **kw)
        if op == "chunk_simple_gla":
            return st.chunk_simple_gla(q, k, v, g=gate, initial_state=init, output_final_state=True, **kw)
        if op == "chunk_retention":
            return st.chunk_retention(q, k, v, initial_state=init, output_final_state=True, **kw)
        return st.power_attention(q, k, v, g=gate, initial_state=init, output_final_state=True, **kw)

    # Initial states: the final states of a first packed call on other data.
    q0, k0, v0, gate0, _ = _packed(th, lengths, th.float64, 4, head_first, gated)
    _, init = call(q0, k0, v0, gate0, None, cu)
    o, final = call(q, k, v, gate, init, cu)
    assert o.shape == q.shape[:3] + (DV,) if not head_first else o.shape == (1, H, sum(lengths), DV)
    offsets = cu.tolist()
    for n, (a, b) in enumerate(zip(offsets, offsets[1:])):
        part = [x.narrow(t_dim, a, b - a) for x in (q, k, v)]
        gpart = None if gate is None else gate.narrow(2 if head_first else 1, a, b - a)
        o1, s1 = call(*part, gpart, _state_at(init, n), None)
        assert th.equal(o.narrow(t_dim, a, b - a), o1)
        for got, want in zip(final if isinstance(final, tuple) else (final,), s1 if isinstance(s1, tuple) else (s1,)):
            assert th.equal(got[n : n + 1], want)
    # A zero-length sequence hands its initial state through unchanged.
    for got, want in zip(final if isinstance(final, tuple) else (final,), init if isinstance(init, tuple) else (init,)):
        assert th.allclose(got[1], want[1], rtol=0, atol=1e-15)


def test_cu_seqlens_float32_matches_fla_naive_per_sequence(th, st, naive):
    lengths = [7, 12, 3]
    q, k, v, gate, cu = _packed(th, lengths, th.float32, 5, gated=True)
    o, _ = st.chunk_simple_gla(q, k, v, g=gate, cu_seqlens=cu)
    assert o.dtype == th.float32
    offsets = cu.tolist()
    for a, b in zip(offsets, offsets[1:]):
        want, _ = naive["simple_gla"].naive_recurrent_simple_gla(
            q[:, a:b], k[:, a:b], v[:, a:b], gate[:, a:b], scale=D**-0.5
        )
        assert rel(o[:, a:b], want) <= 1e-5


def test_cu_seqlens_bad_input_is_refused(th, st):
    q, k, v, _, cu = _packed(th, [4, 5], th.float32, 6)
    with pytest.raises(ValueError, match="batch size must be 1"):
        st.parallel_based(q.expand(2, -1, -1, -1), k.expand(2, -1, -1, -1), v.expand(2, -1, -1, -1), cu_seqlens=cu)
    with pytest.raises(ValueError, match="rise from 0 to T = 9"):
        st.parallel_based(q, k, v, cu_seqlens=th.tensor([0, 5, 4, 9]))
    with pytest.raises(ValueError, match="rise from 0 to T = 9"):
        st.parallel_based(q, k, v, cu_seqlens=th.tensor([0, 4, 8]))
    with pytest.raises(ValueError, match="1-D integer tensor"):
        st.parallel_based(q, k, v, cu_seqlens=th.tensor([0.0, 9.0]))
    with pytest.raises(TypeError, match="cu_seqlens must be a torch.Tensor"):
        st.parallel_based(q, k, v, cu_seqlens=[0, 4, 9])
    with pytest.raises(ValueError, match="one state per sequence"):
        st.chunk_simple_gla(q, k, v, initial_state=th.zeros(3, H, D, DV), cu_seqlens=cu)
